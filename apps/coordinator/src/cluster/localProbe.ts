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
import type { ParsedUpdate } from '@chorus/protocol';
import { ArrivalProbe } from '../engine/arrivalProbe.js';
import type { ProbeOutcome, TaskEvaluator } from '../model/taskEvaluator.js';
import type { TaskConfig } from '@chorus/protocol';
import { ReplicaGlobal } from './replicaGlobal.js';
import type { ReplicatedStore } from './replicatedStore.js';

/** An outcome measured on the node the upload arrived at, with the global it was measured against. */
export interface RelayedProbe {
  readonly globalHash: string;
  readonly outcome: ProbeOutcome;
}

/** Probes uploads of one task on this node; see the module comment. */
export class LocalProbe {
  private readonly globals: ReplicaGlobal;
  private readonly arrival: ArrivalProbe;

  constructor(
    private readonly task: TaskConfig,
    model: TaskEvaluator & Required<Pick<TaskEvaluator, 'probeCandidates'>>,
    store: ReplicatedStore,
  ) {
    this.globals = new ReplicaGlobal(task.id, store);
    this.arrival = new ArrivalProbe(model.probeCandidates.bind(model));
  }

  /** The upload's outcome against its round's global (the checkpoint of the round before), or null when it cannot be measured here. */
  async probe(clientId: string, update: ParsedUpdate, modalities: readonly string[]): Promise<RelayedProbe | null> {
    const checked = await this.globals.validate(this.task, clientId, update, modalities);
    if (!checked) return null;
    const { global, valid } = checked;
    // Queued with the other uploads arriving here, so a burst goes to the evaluator in full passes.
    const measured = await this.arrival.measure(global.sha256, global.tensors, valid.delta);
    return measured ? { globalHash: global.sha256, outcome: measured.outcome } : null;
  }
}
