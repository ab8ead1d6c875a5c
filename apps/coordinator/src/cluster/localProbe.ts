/**
 * Trust probing where uploads arrive: a cluster node that does not lead a task probes each upload
 * its own clients send (the candidate global + Δ on the task's probe set, in this node's evaluator,
 * queued as on the leader: engine/arrivalProbe.ts) before passing the upload to the leader, so
 * probing spreads over every node's evaluator instead of queueing on the leader's. The leader uses
 * the outcome only when it was measured against the global its round started from (the hash travels
 * with it), and probes everything else itself.
 *
 * A node's evaluator runs the same model on the same probe set with candidates padded to the same
 * pass size, so an outcome measured here is bit-identical to the leader's own (the cluster's
 * rounds keep a single node's hashes). An upload this node cannot decode or probe goes on without
 * an outcome: the leader judges it as always.
 */
import type { Parameters } from '@chorus/fl-core';
import type { ParsedUpdate } from '@chorus/protocol';
import { fastCrc32 } from '../codec/fastCrc32.js';
import { ArrivalProbe } from '../engine/arrivalProbe.js';
import { decodeGlobal } from '../engine/checkpoint.js';
import { validateUpdate } from '../engine/validateUpdate.js';
import type { ProbeOutcome, TaskEvaluator } from '../model/taskEvaluator.js';
import type { TaskConfig } from '@chorus/protocol';
import type { ReplicatedStore } from './replicatedStore.js';

/** An outcome measured on the node the upload arrived at, with the global it was measured against. */
export interface RelayedProbe {
  readonly globalHash: string;
  readonly outcome: ProbeOutcome;
}

/** Probes uploads of one task on this node; see the module comment. */
export class LocalProbe {
  /** The last global decoded (rounds are sequential: one suffices). */
  private cached: { sha256: string; tensors: Parameters } | null = null;
  private readonly arrival: ArrivalProbe;

  constructor(
    private readonly task: TaskConfig,
    model: TaskEvaluator & Required<Pick<TaskEvaluator, 'probeCandidates'>>,
    private readonly store: ReplicatedStore,
  ) {
    this.arrival = new ArrivalProbe(model.probeCandidates.bind(model));
  }

  /** The upload's outcome against its round's global (the checkpoint of the round before), or null when it cannot be measured here. */
  async probe(clientId: string, update: ParsedUpdate, modalities: readonly string[]): Promise<RelayedProbe | null> {
    const global = await this.globalOf(update.serverRound);
    if (!global) return null;
    let delta: Parameters;
    try {
      delta = validateUpdate(update.update, {
        taskId: this.task.id,
        serverRound: update.serverRound,
        clientId,
        modalities,
        global: global.tensors,
        maxUpdateBytes: this.task.maxUpdateBytes,
        normBound: this.task.normBound,
        crc32: fastCrc32,
      }).delta;
    } catch {
      return null;
    }
    // Queued with the other uploads arriving here, so a burst goes to the evaluator in full passes.
    const measured = await this.arrival.measure(global.sha256, global.tensors, delta);
    return measured ? { globalHash: global.sha256, outcome: measured.outcome } : null;
  }

  private async globalOf(serverRound: number): Promise<{ sha256: string; tensors: Parameters } | null> {
    let checkpoint = this.store.getCheckpoint(this.task.id, serverRound - 1);
    if (!checkpoint) {
      await this.store.sync();
      checkpoint = this.store.getCheckpoint(this.task.id, serverRound - 1);
    }
    if (!checkpoint) return null;
    if (this.cached?.sha256 !== checkpoint.sha256) this.cached = { sha256: checkpoint.sha256, tensors: decodeGlobal(checkpoint.bytes) };
    return this.cached;
  }
}
