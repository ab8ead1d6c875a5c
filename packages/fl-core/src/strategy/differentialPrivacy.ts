/** Server-side DP wrapper over DP-FedAvg with RDP accounting — McMahan, Ramage, Talwar, Zhang 2018, arXiv:1710.06963. */
import { FlCoreError } from '../errors.js';
import { groupOf } from '../params.js';
import type { Parameters } from '../params.js';
import { dpFedAvg } from '../privacy/dpFedAvg.js';
import { createRdpAccountant, privacySpent, recordRounds } from '../privacy/rdpAccountant.js';
import type { RdpAccountant } from '../privacy/rdpAccountant.js';
import type { Rng } from '../rng.js';
import { checkServerRound, screenFitResults } from './base.js';
import type { AggregateFitResult, ConfigureFitInput, FitFailure, FitPlan, FitResult, GroupSummary, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** Options of {@link DifferentialPrivacy}. */
export interface DifferentialPrivacyOptions {
  /** S: each client's whole delta is clipped to this L2 norm. */
  readonly clipNorm: number;
  /** z: noise std divided by the per-client sensitivity S/(qW). */
  readonly noiseMultiplier: number;
  /** q in (0, 1]: each available client is sampled independently with this probability (Poisson sampling, as the accountant assumes). */
  readonly samplingRate: number;
  /** qW: the expected number of clients per round, the fixed denominator of the release. */
  readonly expectedClientsPerRound: number;
  /** δ at which the spent ε is reported in each round's metrics. */
  readonly targetDelta: number;
  /**
   * The noise source for a round. Taking the round number lets a resumed run draw the same noise;
   * the coordinator should back it with a cryptographically secure generator in production.
   */
  readonly noiseRng: (serverRound: number) => Rng;
  /** RDP orders to track; default the accountant's defaults. */
  readonly orders?: readonly number[];
}

const RELEASE_ID = 'dp-release';

/**
 * User-level DP around a server strategy: the round's deltas are clipped, summed over the fixed
 * denominator qW and noised by {@link dpFedAvg}; the inner strategy then receives that one noised
 * release as its only result and applies its server rule to it (FedAvg adds it, FedAvgM/FedAdam
 * use it as the pseudo-gradient) — post-processing, so the guarantee holds. Robust rules (median,
 * Krum) see a single vector and are pointless inside it. Clients are Poisson-sampled in
 * `configureFit`; each round that releases a model is recorded in the RDP accountant, and `epsilon`
 * joins the round metrics. Example counts are not used (they would raise the sensitivity).
 */
export class DifferentialPrivacy extends StrategyWrapper {
  readonly name: string;
  private readonly options: DifferentialPrivacyOptions;
  private accountant: RdpAccountant;

  constructor(inner: Strategy, options: DifferentialPrivacyOptions) {
    super(inner);
    const bad = (message: string): never => {
      throw new FlCoreError('PRIVACY_BAD_CONFIG', `DifferentialPrivacy: ${message}`);
    };
    if (!(options.samplingRate > 0 && options.samplingRate <= 1)) bad(`samplingRate must be in (0, 1], got ${options.samplingRate}`);
    if (!(options.targetDelta > 0 && options.targetDelta < 1)) bad(`targetDelta must be in (0, 1), got ${options.targetDelta}`);
    if (typeof options.noiseRng !== 'function') bad('noiseRng must be a function of the round number');
    // Validates clipNorm, noiseMultiplier and expectedClientsPerRound with the privacy module's own checks.
    dpFedAvg(() => 0.5, [], {
      clipNorm: options.clipNorm,
      noiseMultiplier: options.noiseMultiplier,
      expectedClientsPerRound: options.expectedClientsPerRound,
      template: [],
    });
    this.options = options;
    this.accountant = createRdpAccountant(options.orders);
    this.name = `dp(${inner.name})`;
  }

  /** (ε, δ) spent so far at the target δ. */
  get epsilon(): number {
    return privacySpent(this.accountant, this.options.targetDelta).epsilon;
  }

  override configureFit(input: ConfigureFitInput): FitPlan {
    // The inner rule supplies the round config only; the sample is this wrapper's alone, so no draw
    // of the rng is spent on a sample that would be thrown away.
    const plan = this.inner.configureFit({ ...input, availableClients: [] });
    const available = [...new Set(input.availableClients)].sort();
    // One independent draw per available client, in sorted order: Poisson sampling at exactly the
    // rate the accountant records, and a round waits for every client it sampled.
    const clientIds = available.filter(() => input.rng() < this.options.samplingRate);
    return { serverRound: plan.serverRound, clientIds, target: clientIds.length, config: plan.config };
  }

  /** The inner strategy aggregates one noised release, made at the close: an arriving result's delta is not what it will see. */
  override observeFit(): void {}

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    checkServerRound(`${this.name}.aggregateFit`, serverRound);
    const { valid, rejected } = screenFitResults(global, results);
    if (valid.length === 0) return null;
    const { clipNorm, noiseMultiplier, expectedClientsPerRound, samplingRate, targetDelta } = this.options;
    const release = dpFedAvg(
      this.options.noiseRng(serverRound),
      valid.map((r) => r.delta),
      { clipNorm, noiseMultiplier, expectedClientsPerRound, template: global },
    );
    const out = this.inner.aggregateFit(serverRound, global, [{ clientId: RELEASE_ID, numExamples: 1, delta: release.update }], []);
    // Nothing released, nothing spent.
    if (!out) return null;
    this.accountant = recordRounds(this.accountant, { samplingRate, noiseMultiplier });
    this.recordRound(serverRound);

    const epsilon = privacySpent(this.accountant, targetDelta).epsilon;
    const groups: GroupSummary[] = out.groups.map((g) => {
      const { clientScores: _ignored, ...rest } = g;
      const senders = valid.filter((r) => r.delta.some((t) => groupOf(t.name) === g.group));
      return { ...rest, clientIds: g.status === 'kept' ? [] : senders.map((r) => r.clientId) };
    });
    return {
      parameters: out.parameters,
      groups,
      rejected,
      metrics: {
        ...out.metrics,
        numResults: valid.length,
        numFailures: failures.length,
        numRejected: rejected.length,
        numExamples: valid.reduce((n, r) => n + r.numExamples, 0),
        numClipped: release.numClipped,
        noiseStd: release.noiseStd,
        epsilon,
        delta: targetDelta,
      },
      privacy: { epsilon, delta: targetDelta, samplingRate, releases: this.accountant.rounds },
    };
  }

  protected override exportExtra(): Readonly<Record<string, unknown>> {
    return { accountant: { orders: [...this.accountant.orders], rdp: [...this.accountant.rdp], rounds: this.accountant.rounds } };
  }

  protected override importExtra(extra: Readonly<Record<string, unknown>> | undefined): () => void {
    const acc = extra?.accountant as { orders?: unknown; rdp?: unknown; rounds?: unknown } | undefined;
    const numbers = (x: unknown): x is number[] => Array.isArray(x) && x.every((v) => typeof v === 'number' && v >= 0 && Number.isFinite(v));
    if (
      !acc ||
      !numbers(acc.orders) ||
      !numbers(acc.rdp) ||
      acc.orders.length !== acc.rdp.length ||
      !Number.isInteger(acc.rounds) ||
      (acc.rounds as number) < 0
    ) {
      throw new FlCoreError('AGG_BAD_STATE', `${this.name}.importState: extra.accountant must hold orders, rdp (one per order, >= 0) and an integer rounds`);
    }
    const next: RdpAccountant = { orders: [...acc.orders], rdp: [...acc.rdp], rounds: acc.rounds as number };
    return () => {
      this.accountant = next;
    };
  }
}
