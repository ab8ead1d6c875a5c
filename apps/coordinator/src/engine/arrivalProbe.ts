/**
 * Trust probing as uploads arrive, on the node that leads the task: each accepted upload's
 * candidate (the round's global + Δ) is probed in the task's evaluator while the round waits for
 * its other uploads, so when the last one arrives only the candidates still queued remain on the
 * round's critical path. (Other nodes of a cluster probe the uploads their own clients send in the
 * same way before relaying them: cluster/localProbe.ts.)
 *
 * Candidates queue while the evaluator is busy and go to it together, up to `maxBatch` per request,
 * so under a burst of uploads the evaluator runs full passes. A candidate's outputs do not depend
 * on the candidates probed with it (passes are padded to a fixed size: packages/models
 * cachedProbe.ts), so the outcomes are the same bits as a probe of the whole round at its close.
 * A request that fails (the evaluator died) resolves its candidates to `undefined`: the round's
 * measurer then probes them itself, as it does every candidate without an outcome.
 */
import type { Parameters } from '@chorus/fl-core';
import type { ProbeOutcome } from '../model/evaluatorMessages.js';

/** An outcome measured on arrival, with its share of the evaluator time of the request it was in. */
export interface ArrivalMeasurement {
  readonly outcome: ProbeOutcome;
  readonly ms: number;
}

interface Queued {
  readonly globalHash: string;
  readonly global: Parameters;
  readonly delta: Parameters;
  readonly resolve: (measured: ArrivalMeasurement | undefined) => void;
}

/** Probes one task's candidates as they arrive; see the module comment. */
export class ArrivalProbe {
  private queue: Queued[] = [];
  private busy = false;

  constructor(
    private readonly probeCandidates: (global: Parameters, deltas: readonly Parameters[]) => Promise<ProbeOutcome[]>,
    private readonly maxBatch = 32,
  ) {}

  /** Candidates waiting for the evaluator (not counting a request in flight). */
  get queued(): number {
    return this.queue.length;
  }

  /** The outcome of `global` + `delta`, measured when the evaluator is next free; `undefined` when it could not be. */
  measure(globalHash: string, global: Parameters, delta: Parameters): Promise<ArrivalMeasurement | undefined> {
    return new Promise((resolve) => {
      this.queue.push({ globalHash, global, delta, resolve });
      this.pump();
    });
  }

  /** Drops the queued candidates (a new attempt opens: they belong to the one before), resolving them to `undefined`. */
  clear(): void {
    const dropped = this.queue;
    this.queue = [];
    for (const q of dropped) q.resolve(undefined);
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    // One request carries candidates of one global.
    const { globalHash, global } = this.queue[0]!;
    let n = 0;
    while (n < this.queue.length && n < this.maxBatch && this.queue[n]!.globalHash === globalHash) n++;
    const batch = this.queue.splice(0, n);
    this.busy = true;
    const started = performance.now();
    this.probeCandidates(
      global,
      batch.map((q) => q.delta),
    )
      .then(
        (outcomes) => {
          const ms = (performance.now() - started) / batch.length;
          batch.forEach((q, i) => q.resolve(outcomes.length === batch.length ? { outcome: outcomes[i]!, ms } : undefined));
        },
        () => {
          for (const q of batch) q.resolve(undefined);
        },
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }
}
