/** Trust-weighted aggregation wrapper over FedMM-X's dynamic trust score T_k — Balija 2025, arXiv:2503.19564. */
import { FlCoreError } from '../errors.js';
import { groupOf } from '../params.js';
import type { Parameters } from '../params.js';
import { scoreTrust } from '../trust/trustScore.js';
import type { CandidateProbeOutputs, ProbeSet, TrustConfig } from '../trust/trustScore.js';
import { checkServerRound, screenFitResults } from './base.js';
import type { AggregateFitResult, FitFailure, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** What the server prepared for a round's trust scoring. */
export interface TrustRoundContext {
  /** The server's root-data update (FLTrust reference); without it the round's median is the reference. */
  readonly rootUpdate?: Parameters;
  /** The server-held probe set; clients' probe outputs are read from `signals.probe`. */
  readonly probe?: ProbeSet;
}

/** The key in {@link FitResult.signals} holding the server's {@link CandidateProbeOutputs} for that client. */
export const PROBE_SIGNAL = 'probe';

function probeOf(result: FitResult): CandidateProbeOutputs | undefined {
  const probe = result.signals?.[PROBE_SIGNAL];
  if (probe === undefined) return undefined;
  const p = probe as Partial<CandidateProbeOutputs>;
  const explanationsOk = p.explanations === undefined || (Array.isArray(p.explanations) && p.explanations.every((e) => e instanceof Float32Array));
  if (typeof probe !== 'object' || probe === null || !(p.probabilities instanceof Float32Array) || !explanationsOk) {
    throw new FlCoreError('TRUST_BAD_INPUT', `TrustWeighting: signals.${PROBE_SIGNAL} of '${result.clientId}' is not CandidateProbeOutputs`);
  }
  return p as CandidateProbeOutputs;
}

/**
 * Weights each client by n_k·T_k with the trust score of {@link scoreTrust} (server-measured
 * agreement, probe quality, calibration, explanation consistency, smoothed over rounds), then lets
 * the inner strategy aggregate with those weights as example counts. Clients with zero trust are
 * left out; a round where nobody can be trusted yields no model. Trust history is part of the
 * exported state, and each client's T_k is reported in the result's `trust` field. The history is
 * updated even when the round yields no model: distrust is evidence too.
 */
export class TrustWeighting extends StrategyWrapper {
  readonly name: string;
  private history = new Map<string, number>();
  private context: { serverRound: number; value: TrustRoundContext } | null = null;

  constructor(
    inner: Strategy,
    private readonly trustConfig: TrustConfig = {},
  ) {
    super(inner);
    // Validates the configuration now rather than in the first round.
    scoreTrust({ clients: [], history: new Map() }, trustConfig);
    this.name = `fedmm-x(${inner.name})`;
  }

  /** Sets the root update and probe set for `serverRound` (both optional). */
  setRoundContext(serverRound: number, context: TrustRoundContext): void {
    checkServerRound('TrustWeighting.setRoundContext', serverRound);
    this.context = { serverRound, value: context };
  }

  /** T_k per client seen so far. */
  trustScores(): ReadonlyMap<string, number> {
    return new Map(this.history);
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    checkServerRound(`${this.name}.aggregateFit`, serverRound);
    const { valid, rejected } = screenFitResults(global, results);
    if (valid.length === 0) return null;
    const context = this.context?.serverRound === serverRound ? this.context.value : {};
    const scored = scoreTrust(
      {
        clients: valid.map((r) => {
          const probe = probeOf(r);
          return { clientId: r.clientId, numExamples: r.numExamples, update: r.delta, ...(probe ? { probe } : {}) };
        }),
        history: this.history,
        ...(context.rootUpdate ? { rootUpdate: context.rootUpdate } : {}),
        ...(context.probe ? { probe: context.probe } : {}),
      },
      this.trustConfig,
    );
    this.history = scored.history;
    const weights = scored.weights;
    if (!weights) return null;

    const trusted = valid.flatMap((r, k) => (weights[k]! > 0 ? [{ ...r, numExamples: weights[k]! }] : []));
    const out = this.inner.aggregateFit(serverRound, global, trusted, failures);
    if (!out) return null;
    this.recordRound(serverRound);
    const untrusted = valid.filter((_, k) => !(weights[k]! > 0));
    return {
      ...out,
      rejected: [...rejected, ...untrusted.map((r) => ({ clientId: r.clientId, code: 'UNTRUSTED' as const, message: 'trust score is zero this round' }))],
      trust: scored.clients.map((c) => ({ clientId: c.clientId, trust: c.trust })),
      metrics: {
        ...out.metrics,
        numResults: valid.length,
        numUntrusted: untrusted.length,
        numRejected: rejected.length,
        numExamples: valid.reduce((n, r) => n + r.numExamples, 0),
        // The inner strategy saw trust weights in place of example counts; report the real groups' senders.
        ...Object.fromEntries(out.groups.map((g) => [`clients:${g.group}`, trusted.filter((r) => r.delta.some((t) => groupOf(t.name) === g.group)).length])),
      },
    };
  }

  protected override exportExtra(): Readonly<Record<string, unknown>> {
    return { history: [...this.history.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
  }

  protected override importExtra(extra: Readonly<Record<string, unknown>> | undefined): () => void {
    const history = extra?.history;
    const ok =
      Array.isArray(history) &&
      history.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'number' && e[1] >= 0 && e[1] <= 1);
    if (!ok) throw new FlCoreError('AGG_BAD_STATE', `${this.name}.importState: extra.history must be [clientId, trust in [0, 1]] pairs`);
    const next = new Map(history as [string, number][]);
    return () => {
      this.history = next;
    };
  }
}
