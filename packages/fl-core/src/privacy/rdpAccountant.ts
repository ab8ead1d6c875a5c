/**
 * RDP accountant for the sampled Gaussian mechanism — Mironov, Talwar & Zhang 2019, arXiv:1908.10530.
 *
 * One round of DP-FedAvg with Poisson client sampling at rate q and noise multiplier z is the
 * sampled Gaussian mechanism; its Rényi DP at order α is log(A_α)/(α − 1), with A_α computed in
 * log space as in §3.3 of the paper: a finite binomial sum for integer α and a two-sided series of
 * erfc terms for fractional α — the same algorithm as `compute_rdp` in TF Privacy and Opacus, so the
 * numbers agree with theirs. q = 1 gives the plain Gaussian mechanism, RDP = α/(2z²) exactly.
 * RDP composes by addition over rounds.
 *
 * Conversion to (ε, δ)-DP, minimised over the tracked orders, is selectable:
 * - `'improved'` (default): ε = RDP_α + log((α − 1)/α) − (log δ + log α)/(α − 1) — Balle, Barthe,
 *   Gaboardi, Hsu & Sato 2020, arXiv:1905.09982, Thm 21 (equivalently Canonne, Kamath & Steinke
 *   2020, arXiv:2004.00010), as Opacus and Google's dp_accounting use; never worse than the classic one
 *   for α > 1. Like dp_accounting it also reports ε = 0 when √(1 − e^(−RDP_α)) ≤ δ (a KL bound).
 * - `'classic'`: ε = RDP_α + log(1/δ)/(α − 1) — Mironov 2017, arXiv:1702.07476, Prop. 3.
 *
 * The accountant is plain data ({@link RdpAccountant}); every function returns a new value.
 */
import { FlCoreError } from '../errors.js';
import { logAdd, logErfc, logSub } from './logSpace.js';

/** Orders tracked by default: 1.1 … 10.9 in steps of 0.1 and 12 … 63 (Opacus's defaults), plus 128 … 1024 for small-ε regimes. */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
  128,
  256,
  512,
  1024,
]);

/** One mechanism invocation per round: Poisson sampling at `samplingRate`, Gaussian noise std = noiseMultiplier × sensitivity. */
export interface SampledGaussian {
  /** Probability q ∈ [0, 1] that a given client takes part in a round (expected clients / total clients). */
  readonly samplingRate: number;
  /** Noise standard deviation divided by the L2 sensitivity (z ≥ 0). */
  readonly noiseMultiplier: number;
}

/** RDP ledger: the orders tracked, the RDP composed so far at each, and the rounds recorded. Plain data, safe to serialise. */
export interface RdpAccountant {
  readonly orders: readonly number[];
  readonly rdp: readonly number[];
  readonly rounds: number;
}

/** Which RDP → (ε, δ) conversion to use (see the file header). */
export type RdpConversion = 'improved' | 'classic';

/** ε for a target δ and the order that achieved it (`null` when every order's RDP is infinite). */
export interface PrivacySpent {
  readonly epsilon: number;
  readonly delta: number;
  readonly bestOrder: number | null;
}

function bad(fn: string, message: string): never {
  throw new FlCoreError('PRIVACY_BAD_CONFIG', `${fn}: ${message}`);
}

function checkMechanism(fn: string, mechanism: SampledGaussian): void {
  const { samplingRate: q, noiseMultiplier: z } = mechanism;
  if (!(q >= 0 && q <= 1)) bad(fn, `samplingRate must be in [0, 1], got ${q}`);
  if (!(z >= 0 && Number.isFinite(z))) bad(fn, `noiseMultiplier must be a finite number ≥ 0, got ${z}`);
}

function checkOrders(fn: string, orders: readonly number[]): void {
  if (orders.length === 0) bad(fn, 'needs at least one order');
  for (const a of orders) if (!(a > 1)) bad(fn, `orders must be > 1, got ${a}`);
}

/** log A_α for integer α: Σ_i C(α,i) q^i (1−q)^(α−i) exp((i² − i)/(2σ²)). */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinom = 0;
  for (let i = 0; i <= alpha; i++) {
    logA = logAdd(logA, logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma));
    logBinom += Math.log(alpha - i) - Math.log(i + 1);
  }
  return logA;
}

/** log A_α for fractional α: the two half-line integrals split at z0, each expanded in generalised binomial terms. */
function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let logAbsCoef = 0;
  let coefSign = 1;
  for (let i = 0; ; i++) {
    if (i > 100_000) bad('computeRdp', `series for order ${alpha} did not converge`);
    const j = alpha - i;
    const logT0 = logAbsCoef + i * logQ + j * log1mQ;
    const logT1 = logAbsCoef + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coefSign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    // C(α, i+1) = C(α, i)·(α − i)/(i + 1); the sign flips each time α − i is negative.
    logAbsCoef += Math.log(Math.abs(alpha - i)) - Math.log(i + 1);
    if (alpha - i < 0) coefSign = -coefSign;
  }
  return logAdd(logA0, logA1);
}

function rdpAtOrder(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of `rounds` compositions of the sampled Gaussian mechanism at each order (may hold Infinity). */
export function computeRdp(mechanism: SampledGaussian, orders: readonly number[] = DEFAULT_RDP_ORDERS, rounds = 1): number[] {
  checkMechanism('computeRdp', mechanism);
  checkOrders('computeRdp', orders);
  if (!Number.isInteger(rounds) || rounds < 0) bad('computeRdp', `rounds must be an integer ≥ 0, got ${rounds}`);
  // 0 rounds spend nothing, even where one round would be infinite (Infinity · 0 is NaN).
  if (rounds === 0) return orders.map(() => 0);
  return orders.map((a) => rdpAtOrder(mechanism.samplingRate, mechanism.noiseMultiplier, a) * rounds);
}

/** Smallest ε over the orders such that the composed mechanism is (ε, δ)-DP. */
export function epsilonFromRdp(orders: readonly number[], rdp: readonly number[], delta: number, conversion: RdpConversion = 'improved'): PrivacySpent {
  const fn = 'epsilonFromRdp';
  checkOrders(fn, orders);
  if (orders.length !== rdp.length) bad(fn, `orders and rdp lengths differ (${orders.length} vs ${rdp.length})`);
  if (!(delta > 0 && delta < 1)) bad(fn, `delta must be in (0, 1), got ${delta}`);
  if (conversion !== 'improved' && conversion !== 'classic') bad(fn, `unknown conversion '${String(conversion)}'`);
  let best = Infinity;
  let bestOrder: number | null = null;
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k]!;
    const r = rdp[k]!;
    if (!(r >= 0)) bad(fn, `rdp at order ${a} must be ≥ 0, got ${r}`);
    if (r === Infinity || a === Infinity) continue;
    let eps: number;
    if (conversion === 'classic') eps = r - Math.log(delta) / (a - 1);
    // KL ≤ RDP_α and TV ≤ √(1 − e^(−KL)) (Bretagnolle–Huber): when that TV bound is already ≤ δ the
    // mechanism is (0, δ)-DP — as dp_accounting does; it also makes "nothing spent" report ε = 0.
    else if (delta * delta + Math.expm1(-r) >= 0) eps = 0;
    else eps = r + Math.log1p(-1 / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { epsilon: Math.max(0, best), delta, bestOrder };
}

/** An accountant with nothing spent, tracking `orders`. */
export function createRdpAccountant(orders: readonly number[] = DEFAULT_RDP_ORDERS): RdpAccountant {
  checkOrders('createRdpAccountant', orders);
  return { orders: [...orders], rdp: orders.map(() => 0), rounds: 0 };
}

/** The accountant after `rounds` more rounds of `mechanism` (the input is not changed). */
export function recordRounds(accountant: RdpAccountant, mechanism: SampledGaussian, rounds = 1): RdpAccountant {
  // An accountant may come back from storage; a malformed one must not turn into NaN silently.
  if (accountant.rdp.length !== accountant.orders.length || !accountant.rdp.every((r) => r >= 0) || !Number.isInteger(accountant.rounds)) {
    bad('recordRounds', 'accountant is malformed (rdp must be ≥ 0, one per order, and rounds an integer)');
  }
  const added = computeRdp(mechanism, accountant.orders, rounds);
  return { orders: accountant.orders, rdp: accountant.rdp.map((r, k) => r + added[k]!), rounds: accountant.rounds + rounds };
}

/** (ε, δ) spent so far by the accountant's rounds. */
export function privacySpent(accountant: RdpAccountant, delta: number, conversion: RdpConversion = 'improved'): PrivacySpent {
  return epsilonFromRdp(accountant.orders, accountant.rdp, delta, conversion);
}

/** Options of {@link epsilonPerRound}. */
export interface EpsilonPerRoundOptions extends SampledGaussian {
  /** Rounds to report (≥ 1). */
  readonly rounds: number;
  /** Target δ ∈ (0, 1). */
  readonly delta: number;
  readonly orders?: readonly number[];
  readonly conversion?: RdpConversion;
}

/** ε after each of rounds 1 … `rounds` of the same mechanism (entry t − 1 is ε after round t). */
export function epsilonPerRound(options: EpsilonPerRoundOptions): Float64Array {
  const { rounds, delta } = options;
  if (!Number.isInteger(rounds) || rounds < 1) bad('epsilonPerRound', `rounds must be an integer ≥ 1, got ${rounds}`);
  const orders = options.orders ?? DEFAULT_RDP_ORDERS;
  const perRound = computeRdp(options, orders, 1);
  const out = new Float64Array(rounds);
  for (let t = 1; t <= rounds; t++) {
    out[t - 1] = epsilonFromRdp(
      orders,
      perRound.map((r) => r * t),
      delta,
      options.conversion,
    ).epsilon;
  }
  return out;
}
