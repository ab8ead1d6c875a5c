/**
 * Hierarchical aggregation, a node's half: for an exact-sum task (FedAvg or FedProx with
 * `exactSum`, probation allowed), a node that does not lead the task validates its own clients' uploads
 * against the global the round started from, keeps their deltas, and tells the leader only each
 * upload's header, size and norm. When the round closes, the leader asks each node for the exact
 * partial sum of the kept uploads it holds (fl-core's `PartialFit`) instead of receiving every
 * update; exact sums make the model bit for bit the one a single node makes.
 *
 * An upload this node cannot judge (its replica does not yet hold the round's global, or the upload
 * fails a check) is not held: the caller relays the whole upload and the leader judges it as ever,
 * so a refusal keeps its code and record. Uploads are kept per attempt; the leader's acceptance of
 * an upload retires every other attempt's, and its refusal forgets the upload.
 */
import type { FitResult, PartialAggregation, RunningPartialFit, Strategy, StrategyState } from '@chorus/fl-core';
import { encodePartialFit } from '@chorus/fl-core';
import type { ParsedUpdate, TaskConfig } from '@chorus/protocol';
import { CoordinatorError } from '../errors.js';
import { decodeStrategyState } from '../engine/checkpoint.js';
import type { PartialSumRequest } from './relay.js';
import { ReplicaGlobal } from './replicaGlobal.js';
import type { ReplicaGlobalModel } from './replicaGlobal.js';
import type { ReplicatedStore } from './replicatedStore.js';

/** What the leader is told of an upload held here. */
export interface HeldFacts {
  readonly norm: number;
  readonly byteLength: number;
}

/** The uploads of one attempt held here, and their running partial sum. */
interface Attempt {
  readonly held: Map<string, FitResult>;
  /** Every held upload summed as it arrived (null once one was dropped: the close then sums afresh). */
  running: RunningPartialFit | null;
  /** The leader accepted one of its uploads: it is the leader's open attempt (or was). */
  confirmed: boolean;
}

/** One task's uploads held on this node; see the module comment. */
export class HeldUpdates {
  private readonly globals: ReplicaGlobal;
  /** By round id. Only the leader's word moves on: an attempt whose upload it accepts retires every other. */
  private readonly attempts = new Map<string, Attempt>();
  /** The strategy's state before any round: what a round-0 global (stored without one) starts from. */
  private readonly initialState: StrategyState;

  /**
   * `strategy` is a fresh instance of the task's strategy (its `partials` defined): each attempt's
   * partial sums are built in the state stored with the global the attempt started from (a
   * probation wrapper's contribution counts), as the leader's strategy holds it then.
   */
  constructor(
    private readonly task: TaskConfig,
    private readonly strategy: Strategy,
    store: Pick<ReplicatedStore, 'getCheckpoint' | 'sync'>,
  ) {
    this.globals = new ReplicaGlobal(task.id, store);
    this.initialState = strategy.exportState();
  }

  /** The strategy's partial sums in the state stored with `global` (its initial state where none is); throws when that state does not fit. */
  private partialsAt(global: ReplicaGlobalModel): PartialAggregation {
    this.strategy.importState(global.strategyState ? decodeStrategyState(global.strategyState) : this.initialState);
    const partials = this.strategy.partials;
    if (!partials) throw new CoordinatorError('CLUSTER_UNAVAILABLE', `task ${this.task.id}'s strategy gives no partial sums`);
    return partials;
  }

  /** Uploads held now (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const a of this.attempts.values()) n += a.held.size;
    return n;
  }

  /**
   * Validates and keeps an upload; its facts for the leader, or null when this node cannot judge it
   * (relay it whole). An upload naming another attempt than the others is kept apart, so a stale or
   * forged round id cannot displace the open attempt's uploads before the leader has judged it.
   */
  async take(clientId: string, update: ParsedUpdate, modalities: readonly string[]): Promise<HeldFacts | null> {
    // A second upload for the attempt must not replace the first: the leader refuses it whole (DUPLICATE_UPDATE).
    if (this.attempts.get(update.roundId)?.held.has(clientId)) return null;
    const checked = await this.globals.validate(this.task, clientId, update, modalities);
    if (!checked) return null;
    const { global, valid } = checked;
    let attempt = this.attempts.get(update.roundId);
    if (!attempt) {
      let running: RunningPartialFit;
      try {
        running = this.partialsAt(global).start(update.serverRound, global.tensors);
      } catch {
        // A strategy state this node cannot read: the leader judges this attempt's uploads whole.
        return null;
      }
      attempt = { held: new Map(), running, confirmed: false };
      this.attempts.set(update.roundId, attempt);
    }
    if (attempt.held.has(clientId)) return null;
    const result: FitResult = { clientId, numExamples: update.numExamples, delta: valid.delta, ...(update.metrics ? { metrics: update.metrics } : {}) };
    attempt.held.set(clientId, result);
    // Summed now, while the round waits for others, so its close only reads the sums.
    attempt.running?.add(result);
    return { norm: valid.norm, byteLength: update.update.byteLength };
  }

  /**
   * The leader's verdict on a held upload: accepted, its attempt is the open one and every other
   * is forgotten; refused, the upload is forgotten (and its attempt, when nothing of it was accepted).
   */
  settle(clientId: string, roundId: string, accepted: boolean): void {
    const attempt = this.attempts.get(roundId);
    if (!attempt) return;
    if (accepted) {
      attempt.confirmed = true;
      for (const id of [...this.attempts.keys()]) if (id !== roundId) this.attempts.delete(id);
      return;
    }
    if (attempt.held.delete(clientId)) attempt.running = null;
    if (attempt.held.size === 0 && !attempt.confirmed) this.attempts.delete(roundId);
  }

  /**
   * The partial sum of `request.clientIds`' uploads as bytes. Throws `CLUSTER_UNAVAILABLE` when
   * this node holds no upload of that attempt, another global, or not every upload asked for.
   */
  async partial(request: PartialSumRequest): Promise<Uint8Array> {
    const attempt = this.attempts.get(request.roundId);
    if (!attempt) throw new CoordinatorError('CLUSTER_UNAVAILABLE', `this node holds no upload of attempt ${request.roundId}`);
    const global = await this.globals.of(request.serverRound);
    if (global?.sha256 !== request.globalHash)
      throw new CoordinatorError('CLUSTER_UNAVAILABLE', `this node does not hold the global round ${request.serverRound} started from`);
    const results = request.clientIds.map((id) => {
      const r = attempt.held.get(id);
      if (!r) throw new CoordinatorError('CLUSTER_UNAVAILABLE', `this node holds no upload of '${id}' for ${request.roundId}`);
      return r;
    });
    // Every held upload asked for (the usual case): the running sums are the answer.
    const running = attempt.running;
    if (running && running.serverRound === request.serverRound && new Set(request.clientIds).size === attempt.held.size && running.size === attempt.held.size) {
      return encodePartialFit(running.build());
    }
    return encodePartialFit(this.partialsAt(global).partial(request.serverRound, global.tensors, results));
  }
}
