/**
 * Quantity-skewed partition: client dataset sizes drawn from a Dirichlet (as in Li, Diao, Chen & He
 * 2022, arXiv:2102.02079) or a heavy-tailed power law (Pareto), samples otherwise IID.
 *
 * Each client first receives `minSamplesPerClient` samples; the rest are shared in proportion to
 * the drawn weights by the largest-remainder method, then a seeded shuffle of all indices is cut
 * into runs of those sizes.
 */
import { dirichlet, shuffled, type Rng } from '../rng.js';
import { badConfig, checkInteger, checkPositive, cutBySizes, range, sizesFromWeights, sortClients, type ClientPartition } from './common.js';

/** How client sizes are drawn. */
export type QuantityDistribution =
  /** Sizes ∝ a Dir(α·1_K) draw: small α → a few large clients. */
  | { readonly kind: 'dirichlet'; readonly alpha: number }
  /** Sizes ∝ independent Pareto(shape = exponent, scale = 1) draws: smaller exponent → heavier tail. */
  | { readonly kind: 'powerLaw'; readonly exponent: number };

/** Options of {@link quantitySkewPartition}. */
export interface QuantitySkewPartitionOptions {
  /** Number of samples, indexed 0 … numSamples − 1. */
  readonly numSamples: number;
  /** Number of clients (≥ 1). */
  readonly numClients: number;
  /** Distribution of client sizes. */
  readonly distribution: QuantityDistribution;
  /** Samples every client gets before the skewed share (default 1). */
  readonly minSamplesPerClient?: number;
}

function weightsOf(fn: string, rng: Rng, numClients: number, distribution: QuantityDistribution): Float64Array {
  if (distribution.kind === 'dirichlet') {
    checkPositive(fn, 'alpha', distribution.alpha);
    return dirichlet(rng, distribution.alpha, numClients);
  }
  if (distribution.kind === 'powerLaw') {
    checkPositive(fn, 'exponent', distribution.exponent);
    // Inverse-CDF Pareto draws (1 − u)^(−1/a), kept in log space and scaled by the largest: a small
    // exponent would otherwise overflow to Infinity. Only the ratios matter.
    const logWeights = Array.from({ length: numClients }, () => -Math.log(1 - rng()) / distribution.exponent);
    const largest = Math.max(...logWeights);
    return Float64Array.from(logWeights, (w) => Math.exp(w - largest));
  }
  return badConfig(fn, `unknown distribution kind '${(distribution as { kind: unknown }).kind as string}'`);
}

/** IID samples with skewed client sizes. */
export function quantitySkewPartition(rng: Rng, options: QuantitySkewPartitionOptions): ClientPartition {
  const fn = 'quantitySkewPartition';
  const { numSamples, numClients, distribution } = options;
  const minSamples = options.minSamplesPerClient ?? 1;
  checkInteger(fn, 'numSamples', numSamples, 0);
  checkInteger(fn, 'numClients', numClients, 1);
  checkInteger(fn, 'minSamplesPerClient', minSamples, 0);
  if (minSamples * numClients > numSamples) {
    badConfig(fn, `${numClients} clients × ${minSamples} samples exceeds the ${numSamples} samples available`);
  }
  const weights = weightsOf(fn, rng, numClients, distribution);
  const sizes = sizesFromWeights(numSamples, weights, minSamples);
  return sortClients(cutBySizes(shuffled(rng, range(numSamples)), sizes));
}
