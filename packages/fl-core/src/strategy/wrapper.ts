/**
 * Shared plumbing for strategies that wrap another (clipping, differential privacy, trust): every
 * hook delegates to the inner strategy, and the state nests the inner state's JSON under `inner`
 * while passing its tensors through, so a wrapped strategy checkpoints like a plain one.
 */
import type { Parameters } from '../params.js';
import { checkStateJson } from './base.js';
import type {
  AggregateEvaluateResult,
  AggregateFitResult,
  ConfigureFitInput,
  EvaluateResult,
  FitFailure,
  FitPlan,
  FitResult,
  Strategy,
  StrategyState,
} from './types.js';
import { FlCoreError } from '../errors.js';

/** A strategy that delegates to `inner`; subclasses override the hooks they change. */
export abstract class StrategyWrapper implements Strategy {
  abstract readonly name: string;
  private roundsAggregated = 0;
  private lastServerRound: number | null = null;

  constructor(readonly inner: Strategy) {}

  configureFit(input: ConfigureFitInput): FitPlan {
    return this.inner.configureFit(input);
  }

  /**
   * Passes an arriving result on. The inner strategy may be handed other deltas at the close (a
   * clipped copy): it then finds nothing computed for them, which costs time, not bits. A wrapper
   * whose inner strategy never sees the clients' deltas (differential privacy's release) overrides this.
   */
  observeFit(serverRound: number, global: Parameters, result: FitResult): void {
    this.inner.observeFit?.(serverRound, global, result);
  }

  aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    const out = this.inner.aggregateFit(serverRound, global, results, failures);
    if (out) this.recordRound(serverRound);
    return out;
  }

  aggregateEvaluate(serverRound: number, results: readonly EvaluateResult[], failures: readonly FitFailure[]): AggregateEvaluateResult | null {
    return this.inner.aggregateEvaluate(serverRound, results, failures);
  }

  /** Counts a round that produced a model (for the exported state). */
  protected recordRound(serverRound: number): void {
    this.roundsAggregated++;
    this.lastServerRound = serverRound;
  }

  /**
   * Wrapper-specific JSON state, built afresh on each call: it is handed out as it is (no copy), so
   * it must share no mutable object with the wrapper (strings and numbers, and new arrays and
   * objects of them).
   */
  protected exportExtra(): Readonly<Record<string, unknown>> | undefined {
    return undefined;
  }

  /** Validates and returns a setter for wrapper-specific JSON state; throw `AGG_BAD_STATE` to refuse. */
  protected importExtra(_extra: Readonly<Record<string, unknown>> | undefined): () => void {
    return () => {};
  }

  exportState(): StrategyState {
    const inner = this.inner.exportState();
    const extra = this.exportExtra();
    return {
      json: {
        strategy: this.name,
        version: 1,
        roundsAggregated: this.roundsAggregated,
        lastServerRound: this.lastServerRound,
        ...(extra ? { extra: extra as Record<string, unknown> } : {}),
        inner: inner.json,
      },
      tensors: inner.tensors,
    };
  }

  importState(state: StrategyState): void {
    const fn = `${this.name}.importState`;
    checkStateJson(fn, state.json, this.name);
    const { inner } = state.json;
    if (!inner) throw new FlCoreError('AGG_BAD_STATE', `${fn}: the state has no inner strategy state`);
    const applyExtra = this.importExtra(state.json.extra);
    // The inner import is the last thing that can throw, and it changes nothing when it does.
    this.inner.importState({ json: inner, tensors: state.tensors });
    applyExtra();
    this.roundsAggregated = state.json.roundsAggregated;
    this.lastServerRound = state.json.lastServerRound;
  }
}
