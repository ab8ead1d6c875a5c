/**
 * The seam between the round engine and aggregation. {@link Aggregator} is the part of fl-core's
 * Flower-style `Strategy` contract the engine calls (`aggregateFit(serverRound, global, results,
 * failures)` plus state export/import), declared structurally so any fl-core strategy object fits it
 * unchanged: swapping one in is the one line that builds the aggregator.
 *
 * {@link createGroupMeanAggregator} is the built-in rule: FedAvg (McMahan et al. 2017,
 * arXiv:1602.05629) applied per parameter group — each group is the example-weighted mean of the
 * deltas of the clients that sent it, added to the global; a group nobody sent keeps its value.
 */
import { FlCoreError, axpy, flatten, layoutOf, splitByGroup, unflatten } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';

/** One client's accepted update (fl-core `FitResult`). */
export interface FitResult {
  readonly clientId: string;
  readonly numExamples: number;
  /** Local parameters − the round's global parameters, for the groups the client trained. */
  readonly delta: Parameters;
  readonly metrics?: Readonly<Record<string, number>>;
  readonly signals?: Readonly<Record<string, unknown>>;
}

/** A selected client that delivered nothing usable (fl-core `FitFailure`). */
export interface FitFailure {
  readonly clientId: string;
  readonly code: string;
  readonly message?: string;
}

/** What a round's aggregation produced (the fields of fl-core's `AggregateFitResult` the engine reads). */
export interface AggregateOutcome {
  readonly parameters: Tensor[];
  /** The strategy's own figures; stored as `strategy.<name>`. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Figures the server measured around the strategy (ε, probe time); stored under their own names. */
  readonly serverMetrics?: Readonly<Record<string, number>>;
  /** T_k of each client scored this round. */
  readonly trust?: readonly { readonly clientId: string; readonly trust: number }[];
}

/**
 * JSON half of a strategy's exported state (fl-core `StrategyStateJson`). Only `strategy` is read
 * here; every other field is stored as serialized and handed back unchanged on import.
 */
export interface AggregatorStateJson {
  readonly strategy: string;
}

/** A strategy's server state: JSON plus tensors (fl-core `StrategyState`). */
export interface AggregatorState {
  readonly json: AggregatorStateJson;
  readonly tensors: Parameters;
}

/** What the round engine needs from a strategy. */
export interface Aggregator {
  readonly name: string;
  /**
   * New global parameters, or null ("no new model") when nothing usable remains. May answer with a
   * promise when it waits on measurements made elsewhere (the server's probe of each candidate);
   * a rejection counts as a failed attempt.
   */
  aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateOutcome | null | Promise<AggregateOutcome | null>;
  /** A copy of the server state, enough to resume with identical weights. */
  exportState(): AggregatorState;
  /** Restores an exported state; throws and changes nothing if it does not fit. */
  importState(state: AggregatorState): void;
}

/** An {@link Aggregator} whose `aggregateFit` never returns a promise. */
export interface SyncAggregator extends Aggregator {
  aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateOutcome | null;
}

/** Per-group example-weighted mean of deltas, added to the global (see the module comment). */
export function createGroupMeanAggregator(): SyncAggregator {
  let roundsAggregated = 0;
  let lastServerRound: number | null = null;
  return {
    name: 'group-mean',
    aggregateFit(serverRound, global, results) {
      const usable = results.filter((r) => r.numExamples > 0 && r.delta.length > 0);
      if (usable.length === 0) return null;
      const next: Tensor[] = [];
      const byGroup = splitByGroup(global);
      let groupsUpdated = 0;
      for (const tensors of byGroup.values()) {
        const layout = layoutOf(tensors);
        const contributions: { delta: Float32Array; weight: number }[] = [];
        for (const r of usable) {
          const part = r.delta.filter((t) => tensors.some((g) => g.name === t.name));
          if (part.length === 0) continue;
          // Order the client's tensors like the global's so flat offsets line up.
          const ordered = tensors.map((g) => part.find((t) => t.name === g.name));
          if (ordered.some((t) => t === undefined)) continue;
          contributions.push({ delta: flatten(ordered as Tensor[]), weight: r.numExamples });
        }
        const flatGlobal = flatten(tensors);
        if (contributions.length > 0) {
          const total = contributions.reduce((s, c) => s + c.weight, 0);
          for (const c of contributions) axpy(flatGlobal, c.weight / total, c.delta);
          groupsUpdated++;
        }
        next.push(...unflatten(flatGlobal, layout));
      }
      // Keep the global's tensor order whatever the grouping order was.
      const byName = new Map(next.map((t) => [t.name, t]));
      roundsAggregated++;
      lastServerRound = serverRound;
      return {
        parameters: global.map((t) => byName.get(t.name)!),
        metrics: { numResults: usable.length, groupsUpdated },
      };
    },
    exportState() {
      return { json: { strategy: 'group-mean', version: 1, roundsAggregated, lastServerRound }, tensors: [] };
    },
    importState(state) {
      const json = state.json as AggregatorStateJson & { readonly roundsAggregated?: unknown; readonly lastServerRound?: unknown };
      if (json.strategy !== 'group-mean' || typeof json.roundsAggregated !== 'number') {
        throw new FlCoreError('AGG_BAD_STATE', `group-mean: cannot import state of '${String(json.strategy)}'`);
      }
      roundsAggregated = json.roundsAggregated;
      lastServerRound = typeof json.lastServerRound === 'number' ? json.lastServerRound : null;
    },
  };
}
