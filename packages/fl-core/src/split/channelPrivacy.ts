/**
 * Per-example (ε, δ) of the device–edge secure interface — Su et al. 2026 (FedUMM), arXiv:2601.15390 §3.3; RDP accounting of the Gaussian mechanism (Mironov 2017, arXiv:1702.07476).
 *
 * What is protected: one example of a device against whoever reads what the device sends (the edge,
 * or anyone on the channel). Adjacency is replace-one: two datasets differ in one example's inputs
 * and label. Every release of that example's row (its tokens [M, c] forward, its fused-feature
 * gradient [d] backward) is clipped to L2 norm C and noised with N(0, (zC)² I) by `privatizeRows`;
 * replacing the example moves the row by up to 2C, so each release is a Gaussian mechanism with
 * effective noise multiplier z/2 — un-subsampled (q = 1), since the edge sees which rows a batch
 * holds. Releases compose: the RDP of `releasesPerExample` releases adds up.
 *
 * Assumptions the bound needs, which this module cannot check:
 *  - rows are per example: the device's computation mixes no examples (no batch statistics), and its
 *    loss is a sum of per-example terms, so replacing one example changes only its own rows; what the
 *    edge returns is post-processing of earlier releases and costs nothing;
 *  - every release uses the same z (a mix would need the RDP of each, summed);
 *  - the presence mask `split/mask` [B, M] is released WITHOUT noise: which modalities an example
 *    holds is not protected, only the values behind them.
 */
import { FlCoreError } from '../errors.js';
import { computeRdp, DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../privacy/rdpAccountant.js';
import type { PrivacySpent } from '../privacy/rdpAccountant.js';

/** Options of {@link splitChannelPrivacy}. */
export interface SplitChannelPrivacyOptions {
  /** z ≥ 0 of every release (noise std z · C for clip C); 0 gives ε = Infinity once anything is released. */
  readonly noiseMultiplier: number;
  /** How many times one example's clipped, noised row is sent (see {@link splitReleasesPerExample}); an integer ≥ 0. */
  readonly releasesPerExample: number;
  /** Target δ ∈ (0, 1). */
  readonly delta: number;
  /** RDP orders to minimise ε over (default: the accountant's {@link DEFAULT_RDP_ORDERS}). */
  readonly orders?: readonly number[];
}

/** Options of {@link splitReleasesPerExample}. */
export interface SplitReleaseCount {
  /** Local epochs per round: each visits every example once. */
  readonly epochs: number;
  /** Rounds the device takes part in. */
  readonly rounds: number;
  /** Noised directions per visit: 2 (tokens forward, fused gradients backward), or 1 when only one is noised. */
  readonly directions: number;
}

function bad(message: string): never {
  throw new FlCoreError('PRIVACY_BAD_CONFIG', message);
}

function checkCount(fn: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) bad(`${fn}: ${name} must be an integer ≥ 0, got ${value}`);
}

/** epochs × rounds × directions: how many noised rows of one example a device sends. */
export function splitReleasesPerExample(count: SplitReleaseCount): number {
  const fn = 'splitReleasesPerExample';
  checkCount(fn, 'epochs', count.epochs);
  checkCount(fn, 'rounds', count.rounds);
  if (count.directions !== 1 && count.directions !== 2) bad(`${fn}: directions must be 1 or 2, got ${count.directions}`);
  const releases = count.epochs * count.rounds * count.directions;
  if (!Number.isSafeInteger(releases)) bad(`${fn}: ${releases} releases is past the safe integer range`);
  return releases;
}

/** (ε, δ) for one example of `releasesPerExample` Gaussian releases of its row with noise multiplier z (sensitivity 2C). */
export function splitChannelPrivacy(options: SplitChannelPrivacyOptions): PrivacySpent {
  const fn = 'splitChannelPrivacy';
  const { noiseMultiplier, releasesPerExample, delta } = options;
  if (!(typeof noiseMultiplier === 'number' && noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier)))
    bad(`${fn}: noiseMultiplier must be a finite number ≥ 0, got ${String(noiseMultiplier)}`);
  checkCount(fn, 'releasesPerExample', releasesPerExample);
  if (!(delta > 0 && delta < 1)) bad(`${fn}: delta must be in (0, 1), got ${delta}`);
  const orders = options.orders ?? DEFAULT_RDP_ORDERS;
  // Replace-one adjacency: the clipped row moves by up to 2C, so σ / Δ = zC / 2C = z / 2.
  const rdp = computeRdp({ samplingRate: 1, noiseMultiplier: noiseMultiplier / 2 }, orders, releasesPerExample);
  return epsilonFromRdp(orders, rdp, delta);
}
