/** Minimum-trust filter inside FedMM-X's trust-weighted aggregation — Balija 2025, arXiv:2503.19564. */
import { FlCoreError } from '../errors.js';
import type { Parameters } from '../params.js';
import type { AggregateFitResult, FitFailure, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/**
 * Leaves out every result whose current trust (read from `trustOf`, which the enclosing
 * {@link TrustWeighting} has just updated) is below `minTrust`, and reports each as rejected with
 * code `UNTRUSTED`. A client `trustOf` does not know counts as trust 0. It sits directly inside the
 * trust wrapper, which scores the round before calling its inner strategy. When nobody is left, or
 * the inner strategy produces no model, the round produces no model (`null`), as Flower does.
 * Adds `numBelowMinTrust` to the round metrics.
 */
export class TrustThreshold extends StrategyWrapper {
  readonly name: string;

  /** Throws `AGG_BAD_CONFIG` unless `minTrust` is a number in [0, 1]. */
  constructor(
    inner: Strategy,
    readonly minTrust: number,
    private readonly trustOf: (clientId: string) => number | undefined,
  ) {
    super(inner);
    if (!(minTrust >= 0 && minTrust <= 1)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `TrustThreshold: minTrust must be in [0, 1], got ${minTrust}`);
    }
    this.name = `mintrust(${inner.name})`;
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    const kept = results.filter((r) => (this.trustOf(r.clientId) ?? 0) >= this.minTrust);
    if (kept.length === 0) return null;
    const out = super.aggregateFit(serverRound, global, kept, failures);
    if (!out) return null;
    const dropped = results.filter((r) => !kept.includes(r));
    return {
      ...out,
      rejected: [
        ...out.rejected,
        ...dropped.map((r) => ({ clientId: r.clientId, code: 'UNTRUSTED' as const, message: `trust below minTrust ${this.minTrust}` })),
      ],
      metrics: { ...out.metrics, numBelowMinTrust: dropped.length },
    };
  }
}
