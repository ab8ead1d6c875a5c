/**
 * Trust-weighted aggregation weights after FedMM-X's dynamic trust score T_k — Balija 2025, arXiv:2503.19564, §4 and §6.3.
 *
 * FedMM-X weights clients by a trust score built from explanation consistency, confidence
 * calibration and history. Here every signal is one the server measures itself — on the update it
 * received and on a server-held probe set evaluated with the candidate model (global + Δ_k) — and
 * never a number the client reports. For client k in a round:
 *
 *   a_k = max(0, cos(Δ_k, r))                   agreement; r = root update if given (FLTrust),
 *                                               else the coordinate-wise median of the round's updates
 *                                               (`agreementReference` can demand the root or the median)
 *   q_k = acc(candidate_k on probe)             quality (top-1 accuracy)
 *   l_k = min(1, exp(NLL_0 − NLL_k))            loss improvement: 1 if the candidate's probe NLL is no
 *                                               worse than the current model's NLL_0, decaying as it gets worse
 *   c_k = 1 − ECE(candidate_k on probe)         calibration (equal-width bins)
 *   e_k = max(0, EC(candidate_k on probe))      explanation consistency across modalities (centred over
 *                                               the classes, so blind to offsets softmax ignores)
 *
 *   s_k = Σ_{j∈P_k} w_j·x_{k,j} / Σ_{j∈P_k} w_j   over the signals P_k present for k
 *   s_k = 0 if gated: agreement present and a_k = 0 (the update points away from the reference)
 *   T_k = β·T_prev,k + (1 − β)·s_k                T_prev,k = prior for a client never seen
 *   p_k = n_k·T_k / Σ_j n_j·T_j                   aggregation weights
 *
 * A signal is present when its input is: agreement needs a root update or at least
 * `minClientsForMedian` updates holding the same tensors (under `agreementReference: 'root'` only the
 * root update: a median formed when attackers are the majority is their own update, so a round
 * without the server's evidence then has no agreement signal, and no gate); q, c need the candidate's probe
 * probabilities; l also needs the current model's probe probabilities; e needs per-modality
 * explanations. If no signal with positive weight is present, s_k is undefined and T_k = T_prev,k.
 * Clients absent from a round keep their T unchanged. FedUMM's n_k·q_k weighting (Su et al. 2026,
 * arXiv:2601.15390) is the case weights = {quality: 1, others 0}, β = 0.
 *
 * n_k (numExamples) is the one claimed quantity: it scales the weight but never the trust score;
 * a strategy that distrusts it can cap it before calling.
 */
import { FlCoreError } from '../errors.js';
import { expectedCalibrationError } from '../metrics/calibration.js';
import { accuracy, predictedClasses } from '../metrics/classification.js';
import { negativeLogLikelihood } from '../metrics/logLoss.js';
import { meanExplanationConsistency } from '../metrics/similarity.js';
import { assertFinite, type Parameters } from '../params.js';
import { agreementScore, medianReference, rootReference } from './agreement.js';

/** The round-score signals, each in [0, 1]. */
export const TRUST_SIGNALS = ['agreement', 'quality', 'lossImprovement', 'calibration', 'explanation'] as const;

/** One of {@link TRUST_SIGNALS}. */
export type TrustSignal = (typeof TRUST_SIGNALS)[number];

/** Per-client trust history: client id → T_k after the last round the client took part in. */
export type TrustHistory = ReadonlyMap<string, number>;

/** Configuration of {@link scoreTrust}; every field has a default. */
export interface TrustConfig {
  /** Weight of each signal in s_k (≥ 0; renormalised over the signals present). Defaults: agreement 1, quality 1, lossImprovement 1, calibration 0.5, explanation 0.5. */
  readonly weights?: Readonly<Partial<Record<TrustSignal, number>>>;
  /** History decay β ∈ [0, 1): the share of T_k carried over from the previous round (default 0.5). */
  readonly historyDecay?: number;
  /** T_prev for a client with no history, in [0, 1] (default 0.5). */
  readonly prior?: number;
  /** Zero the round score of a client whose agreement is 0 (default true). */
  readonly agreementGate?: boolean;
  /** Fewest updates holding a tensor for the median to serve as its reference (default 3). */
  readonly minClientsForMedian?: number;
  /** Bins of the calibration error (default 15). */
  readonly calibrationBins?: number;
  /**
   * The agreement reference: `'auto'` (default) the root update when the round has one, else the
   * median of the round's updates; `'root'` only the server's root update, which survives an
   * attacker majority; `'median'` always the median.
   */
  readonly agreementReference?: AgreementReference;
}

/** Which reference agreement compares updates with; see {@link TrustConfig.agreementReference}. */
export type AgreementReference = 'auto' | 'root' | 'median';

const AGREEMENT_REFERENCES: readonly AgreementReference[] = ['auto', 'root', 'median'];

/**
 * What the server computed by running the candidate model (current global model + this client's
 * update) on its own probe set. There is deliberately no field for anything the client measured.
 */
export interface CandidateProbeOutputs {
  /** Row-major `numProbe × numClasses` predicted probabilities. */
  readonly probabilities: Float32Array;
  /** Per-modality explanation vectors, each row-major `numProbe × dim` (at least two modalities for EC). */
  readonly explanations?: readonly Float32Array[];
}

/** What the server holds about one client in one round. */
export interface ClientRoundEvidence {
  readonly clientId: string;
  /** Examples the client trained on (n_k); claimed by the client, used only to scale its weight. */
  readonly numExamples: number;
  /** The update Δ_k the server received (a flat vector may be passed as one tensor). */
  readonly update: Parameters;
  /** The server's evaluation of the candidate model on the probe set, when it ran one. */
  readonly probe?: CandidateProbeOutputs;
}

/** The server-held probe set. */
export interface ProbeSet {
  /** True class of each probe sample. */
  readonly labels: ArrayLike<number>;
  /** The current global model's probabilities on the probe set (enables loss improvement). */
  readonly baselineProbabilities?: Float32Array;
}

/** One round's input to {@link scoreTrust}. */
export interface TrustRoundInput {
  readonly clients: readonly ClientRoundEvidence[];
  /** T_k from earlier rounds; not modified. */
  readonly history: TrustHistory;
  /** Server-computed update on server data (FLTrust root update): the agreement reference when given. */
  readonly rootUpdate?: Parameters;
  /** Needed for any probe-based signal. */
  readonly probe?: ProbeSet;
}

/** Each signal's value for one client, `null` where its input was absent. */
export type TrustComponents = { readonly [S in TrustSignal]: number | null };

/** One client's trust breakdown, for aggregation and for the dashboard. */
export interface ClientTrust {
  readonly clientId: string;
  readonly components: TrustComponents;
  /** s_k, or `null` when no weighted signal was present. */
  readonly roundScore: number | null;
  /** True when the agreement gate zeroed s_k. */
  readonly gated: boolean;
  /** T_prev,k (the prior for a new client). */
  readonly previousTrust: number;
  /** T_k after this round. */
  readonly trust: number;
}

/** Result of {@link scoreTrust}. */
export interface TrustRoundResult {
  /** One entry per input client, in input order. */
  readonly clients: ClientTrust[];
  /** p_k in input order, summing to 1; `null` when every n_k·T_k is 0 (no client can be trusted: skip the round). */
  readonly weights: number[] | null;
  /** The history with this round's T_k written in (a new map). */
  readonly history: Map<string, number>;
  /** Which reference the agreement used: the root update, the median, or none. */
  readonly reference: 'root' | 'median' | null;
}

const DEFAULT_WEIGHTS: Readonly<Record<TrustSignal, number>> = { agreement: 1, quality: 1, lossImprovement: 1, calibration: 0.5, explanation: 0.5 };

/** A {@link TrustConfig} with every default filled in. */
export interface ResolvedTrustConfig {
  readonly weights: Readonly<Record<TrustSignal, number>>;
  readonly historyDecay: number;
  readonly prior: number;
  readonly agreementGate: boolean;
  readonly minClientsForMedian: number;
  readonly calibrationBins: number;
  readonly agreementReference: AgreementReference;
}

function badConfig(message: string): never {
  throw new FlCoreError('TRUST_BAD_CONFIG', `scoreTrust: ${message}`);
}

function badInput(message: string): never {
  throw new FlCoreError('TRUST_BAD_INPUT', `scoreTrust: ${message}`);
}

/** Checks a {@link TrustConfig} and fills in its defaults; throws `TRUST_BAD_CONFIG`. */
export function resolveTrustConfig(config: TrustConfig = {}): ResolvedTrustConfig {
  const weights = { ...DEFAULT_WEIGHTS };
  for (const [name, w] of Object.entries(config.weights ?? {})) {
    if (!(TRUST_SIGNALS as readonly string[]).includes(name)) badConfig(`unknown signal '${name}'`);
    if (!(w !== undefined && w >= 0 && Number.isFinite(w))) badConfig(`weight of ${name} must be a finite number ≥ 0, got ${w}`);
    weights[name as TrustSignal] = w;
  }
  const historyDecay = config.historyDecay ?? 0.5;
  if (!(historyDecay >= 0 && historyDecay < 1)) badConfig(`historyDecay must be in [0, 1), got ${historyDecay}`);
  const prior = config.prior ?? 0.5;
  if (!(prior >= 0 && prior <= 1)) badConfig(`prior must be in [0, 1], got ${prior}`);
  const minClientsForMedian = config.minClientsForMedian ?? 3;
  if (!Number.isInteger(minClientsForMedian) || minClientsForMedian < 1) badConfig(`minClientsForMedian must be an integer ≥ 1, got ${minClientsForMedian}`);
  const calibrationBins = config.calibrationBins ?? 15;
  if (!Number.isInteger(calibrationBins) || calibrationBins < 1) badConfig(`calibrationBins must be an integer ≥ 1, got ${calibrationBins}`);
  const agreementReference = config.agreementReference ?? 'auto';
  if (!AGREEMENT_REFERENCES.includes(agreementReference))
    badConfig(`agreementReference must be one of ${AGREEMENT_REFERENCES.join(', ')}, got ${String(agreementReference)}`);
  return { weights, historyDecay, prior, agreementGate: config.agreementGate ?? true, minClientsForMedian, calibrationBins, agreementReference };
}

function checkInput(input: TrustRoundInput): void {
  const ids = new Set<string>();
  input.clients.forEach((c, k) => {
    if (ids.has(c.clientId)) badInput(`client id '${c.clientId}' appears twice`);
    ids.add(c.clientId);
    if (!(c.numExamples >= 0 && Number.isFinite(c.numExamples))) badInput(`numExamples of '${c.clientId}' must be a finite number ≥ 0, got ${c.numExamples}`);
    assertFinite(c.update, `scoreTrust update ${k}`);
    if (c.probe && !input.probe) badInput(`'${c.clientId}' has probe outputs but the round has no probe set`);
  });
  for (const [id, t] of input.history) if (!(t >= 0 && t <= 1)) badInput(`history of '${id}' must be in [0, 1], got ${t}`);
  if (input.rootUpdate) assertFinite(input.rootUpdate, 'scoreTrust rootUpdate');
}

function probeSignals(probe: ProbeSet, outputs: CandidateProbeOutputs, baselineNll: number | null, bins: number): Omit<TrustComponents, 'agreement'> {
  const n = probe.labels.length;
  const probabilities = outputs.probabilities;
  const quality = accuracy(predictedClasses(probabilities, n), probe.labels);
  const calibration = 1 - expectedCalibrationError(probabilities, probe.labels, { numBins: bins });
  const lossImprovement = baselineNll === null ? null : Math.min(1, Math.exp(baselineNll - negativeLogLikelihood(probabilities, probe.labels)));
  const explanation = outputs.explanations ? Math.max(0, meanExplanationConsistency(outputs.explanations, n, { centred: true })) : null;
  return { quality, lossImprovement, calibration, explanation };
}

/**
 * One round of trust scoring: per-client signals, round score s_k, smoothed trust T_k and
 * aggregation weights p_k (formulas in the file header). Pure: inputs are not modified. Throws
 * `TRUST_BAD_CONFIG`, `TRUST_BAD_INPUT`, `PARAMS_MISMATCH`, `PARAMS_NON_FINITE` or (for malformed
 * probe arrays) `METRICS_BAD_INPUT` before computing anything.
 */
export function scoreTrust(input: TrustRoundInput, config: TrustConfig = {}): TrustRoundResult {
  const cfg = resolveTrustConfig(config);
  checkInput(input);
  const updates = input.clients.map((c) => c.update);
  const useRoot = input.rootUpdate !== undefined && cfg.agreementReference !== 'median';
  const reference = useRoot
    ? rootReference(input.rootUpdate!, updates)
    : cfg.agreementReference === 'root'
      ? new Map<string, Float32Array>()
      : medianReference(updates, cfg.minClientsForMedian);
  const baselineNll = input.probe?.baselineProbabilities ? negativeLogLikelihood(input.probe.baselineProbabilities, input.probe.labels) : null;
  // Probe metrics validate their arrays, so computing every client's signals first keeps a bad input from leaving partial results.
  const components: TrustComponents[] = input.clients.map((c) => {
    const agreement = agreementScore(c.update, reference);
    const fromProbe =
      c.probe && input.probe
        ? probeSignals(input.probe, c.probe, baselineNll, cfg.calibrationBins)
        : { quality: null, lossImprovement: null, calibration: null, explanation: null };
    return { agreement, ...fromProbe };
  });

  const history = new Map(input.history);
  const clients = input.clients.map((c, k): ClientTrust => {
    const comp = components[k]!;
    let weighted = 0;
    let totalWeight = 0;
    for (const signal of TRUST_SIGNALS) {
      const x = comp[signal];
      const w = cfg.weights[signal];
      if (x !== null && w > 0) {
        weighted += w * x;
        totalWeight += w;
      }
    }
    const gated = cfg.agreementGate && comp.agreement === 0;
    const roundScore = gated ? 0 : totalWeight > 0 ? weighted / totalWeight : null;
    const previousTrust = input.history.get(c.clientId) ?? cfg.prior;
    const trust = roundScore === null ? previousTrust : cfg.historyDecay * previousTrust + (1 - cfg.historyDecay) * roundScore;
    history.set(c.clientId, trust);
    return { clientId: c.clientId, components: comp, roundScore, gated, previousTrust, trust };
  });

  const raw = input.clients.map((c, k) => c.numExamples * clients[k]!.trust);
  const total = raw.reduce((a, b) => a + b, 0);
  const weights = total > 0 && Number.isFinite(total) ? raw.map((r) => r / total) : null;
  const usedReference = reference.size === 0 ? null : useRoot ? 'root' : 'median';
  return { clients, weights, history, reference: usedReference };
}
