/** Newcomer probation against cheap pseudonyms — Friedman & Resnick 2001, "The Social Cost of Cheap Pseudonyms" (J. Econ. Manag. Strategy 10(2)). */
import { FlCoreError } from '../errors.js';
import type { Parameters } from '../params.js';
import type { AggregateFitResult, FitFailure, FitResult, PartialAggregation, Strategy } from './types.js';
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
 * `numOnProbation` and `meanProbationFactor` to the round metrics. Over an exact-sum strategy the
 * counts are scaled by whole numbers instead (P · factor), and partial sums are forwarded.
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
    const exact = this.inner.partials !== undefined;
    const ids = results.map((r) => r.clientId);
    const factors = ids.map((id) => this.factorOf(id));
    const out = super.aggregateFit(
      serverRound,
      global,
      results.map((r) => this.weighted(r, exact)),
      failures,
    );
    return out && this.settle(out, ids, factors);
  }

  /**
   * Forwarded when the inner strategy sums exactly: each result's count is scaled by the whole
   * number min(P, rounds + 1) (P times the factor: the mean is the same), so the partial sums stay
   * exact; whoever builds a partial must hold this wrapper's state of the round's start.
   */
  get partials(): PartialAggregation | undefined {
    const inner = this.inner.partials;
    if (!inner) return undefined;
    return {
      partial: (serverRound, global, results) =>
        inner.partial(
          serverRound,
          global,
          results.map((r) => this.weighted(r, true)),
        ),
      start: (serverRound, global) => {
        const running = inner.start(serverRound, global);
        return {
          serverRound: running.serverRound,
          get size() {
            return running.size;
          },
          add: (r) => running.add(this.weighted(r, true)),
          build: () => running.build(),
        };
      },
      aggregatePartials: (serverRound, global, partials, failures) => {
        const ids = partials.flatMap((p) => [...p.entries.map((e) => e.clientId), ...p.rejected.map((r) => r.clientId)]);
        const factors = ids.map((id) => this.factorOf(id));
        const out = inner.aggregatePartials(serverRound, global, partials, failures);
        if (out) this.recordRound(serverRound);
        return out && this.settle(out, ids, factors);
      },
    };
  }

  private factorOf(clientId: string): number {
    return probationFactor(this.contributed.get(clientId) ?? 0, this.probationRounds);
  }

  /** `r` with its count scaled: by the factor, or (an exact sum's whole numbers) by P · factor. */
  private weighted(r: FitResult, exact: boolean): FitResult {
    if (this.probationRounds <= 1) return r;
    const contributed = this.contributed.get(r.clientId) ?? 0;
    if (exact) return { ...r, numExamples: r.numExamples * Math.min(this.probationRounds, contributed + 1) };
    const factor = probationFactor(contributed, this.probationRounds);
    return factor === 1 ? r : { ...r, numExamples: r.numExamples * factor };
  }

  /** Counts the round for every client it did not set aside, and adds the probation figures. */
  private settle(out: AggregateFitResult, ids: readonly string[], factors: readonly number[]): AggregateFitResult {
    const rejected = new Set(out.rejected.map((r) => r.clientId));
    for (const id of ids) if (!rejected.has(id)) this.contributed.set(id, (this.contributed.get(id) ?? 0) + 1);
    return {
      ...out,
      metrics: {
        ...out.metrics,
        numOnProbation: factors.filter((f) => f < 1).length,
        meanProbationFactor: factors.length === 0 ? 1 : factors.reduce((s, f) => s + f, 0) / factors.length,
      },
    };
  }

  /**
   * The counts as an object `{ clientId: rounds }`, so a store can keep the state of each round as
   * what changed since the last (the round's clients) rather than every identity again.
   */
  protected override exportExtra(): Readonly<Record<string, unknown>> {
    return { contributed: Object.fromEntries([...this.contributed.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
  }

  /** Reads the counts as an object, or as the `[clientId, rounds]` pairs states exported before. */
  protected override importExtra(extra: Readonly<Record<string, unknown>> | undefined): () => void {
    const contributed = extra?.contributed;
    const count = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 0;
    let entries: [string, number][] | null = null;
    if (Array.isArray(contributed)) {
      if (contributed.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && count(e[1]))) entries = contributed as [string, number][];
    } else if (typeof contributed === 'object' && contributed !== null) {
      const pairs = Object.entries(contributed);
      if (pairs.every(([, n]) => count(n))) entries = pairs as [string, number][];
    }
    if (!entries) throw new FlCoreError('AGG_BAD_STATE', `${this.name}.importState: extra.contributed must map client ids to rounds ≥ 0`);
    const next = new Map(entries);
    return () => {
      this.contributed = next;
    };
  }
}
