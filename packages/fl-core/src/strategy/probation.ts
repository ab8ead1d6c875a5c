/** Newcomer probation against cheap pseudonyms — Friedman & Resnick 2001, "The Social Cost of Cheap Pseudonyms" (J. Econ. Manag. Strategy 10(2)). */
import { FlCoreError } from '../errors.js';
import type { Parameters } from '../params.js';
import type { AggregateFitResult, FitFailure, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** The weight factor of a client that contributed to `contributed` aggregated rounds, under `probationRounds`. */
export function probationFactor(contributed: number, probationRounds: number): number {
  if (probationRounds <= 1) return 1;
  return Math.min(1, (contributed + 1) / probationRounds);
}

/**
 * Scales each client's example count by {@link probationFactor}: a new identity counts 1/P of a
 * settled one in its first round and earns full weight after contributing to P − 1 rounds that
 * produced a model, so identities opened in bulk just before an attack start nearly weightless.
 * Only strategies that weight by example counts (FedAvg and its server-optimiser variants, FedMM-X's
 * trust weighting) honour the factor; median, trimmed mean and Krum ignore weights. The counts are
 * the wrapper's exported state; a round that yields no model counts for nobody. Adds
 * `numOnProbation` and `meanProbationFactor` to the round metrics.
 */
export class Probation extends StrategyWrapper {
  readonly name: string;
  private contributed = new Map<string, number>();

  /** Throws `AGG_BAD_CONFIG` unless `probationRounds` is an integer ≥ 0 (0 and 1 change nothing). */
  constructor(
    inner: Strategy,
    readonly probationRounds: number,
  ) {
    super(inner);
    if (!(Number.isInteger(probationRounds) && probationRounds >= 0)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `Probation: probationRounds must be an integer ≥ 0, got ${probationRounds}`);
    }
    this.name = `probation(${inner.name})`;
  }

  /** Rounds each client has contributed to so far. */
  contributions(): ReadonlyMap<string, number> {
    return new Map(this.contributed);
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    const factors = results.map((r) => probationFactor(this.contributed.get(r.clientId) ?? 0, this.probationRounds));
    const scaled = results.map((r, k) => (factors[k] === 1 ? r : { ...r, numExamples: r.numExamples * factors[k]! }));
    const out = super.aggregateFit(serverRound, global, scaled, failures);
    if (!out) return null;
    const rejected = new Set(out.rejected.map((r) => r.clientId));
    const next = new Map(this.contributed);
    for (const r of results) if (!rejected.has(r.clientId)) next.set(r.clientId, (next.get(r.clientId) ?? 0) + 1);
    this.contributed = next;
    return {
      ...out,
      metrics: {
        ...out.metrics,
        numOnProbation: factors.filter((f) => f < 1).length,
        meanProbationFactor: factors.length === 0 ? 1 : factors.reduce((s, f) => s + f, 0) / factors.length,
      },
    };
  }

  protected override exportExtra(): Readonly<Record<string, unknown>> {
    return { contributed: [...this.contributed.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
  }

  protected override importExtra(extra: Readonly<Record<string, unknown>> | undefined): () => void {
    const contributed = extra?.contributed;
    const ok =
      Array.isArray(contributed) &&
      contributed.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && Number.isInteger(e[1]) && (e[1] as number) >= 0);
    if (!ok) throw new FlCoreError('AGG_BAD_STATE', `${this.name}.importState: extra.contributed must be [clientId, rounds ≥ 0] pairs`);
    const next = new Map(contributed as [string, number][]);
    return () => {
      this.contributed = next;
    };
  }
}
