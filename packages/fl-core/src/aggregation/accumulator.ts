/**
 * Streaming weighted mean (the running form of FedAvg — McMahan et al. 2017, arXiv:1602.05629).
 * Updates are added one at a time as they arrive, so the server holds O(parameters) memory
 * whatever the number of clients; sums are kept in float64.
 */
import { FlCoreError } from '../errors.js';
import { checkLength, checkOption } from './validate.js';

/** A running Σ w_k u_k and Σ w_k over updates of one fixed length. */
export interface WeightedMeanAccumulator {
  /** Number of values each update must have. */
  readonly length: number;
  /** Updates added so far (zero-weight ones included). */
  readonly count: number;
  /** Σ w_k so far. */
  readonly totalWeight: number;
  /** Adds `weight · update`; rejects a wrong length or a negative/non-finite weight without changing the sums. */
  add(update: Float32Array, weight: number): void;
  /** The weighted mean so far, as a new vector; throws `AGG_NO_UPDATES` or `AGG_BAD_WEIGHTS` (zero total). */
  mean(): Float32Array;
  /** Forgets every update added so far. */
  reset(): void;
}

/** Creates an empty streaming weighted-mean accumulator for updates of `length` values. */
export function createWeightedMeanAccumulator(length: number): WeightedMeanAccumulator {
  checkOption('createWeightedMeanAccumulator', 'length', length, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  const sums = new Float64Array(length);
  let count = 0;
  let totalWeight = 0;
  return {
    length,
    get count() {
      return count;
    },
    get totalWeight() {
      return totalWeight;
    },
    add(update, weight) {
      checkLength('WeightedMeanAccumulator.add', 'update', update, length);
      if (!Number.isFinite(weight) || weight < 0) {
        throw new FlCoreError('AGG_BAD_WEIGHTS', `WeightedMeanAccumulator.add: weight must be finite and >= 0, got ${weight}`);
      }
      if (!Number.isFinite(totalWeight + weight)) {
        throw new FlCoreError('AGG_BAD_WEIGHTS', `WeightedMeanAccumulator.add: total weight overflows at ${totalWeight} + ${weight}`);
      }
      if (weight > 0) for (let i = 0; i < length; i++) sums[i] = sums[i]! + weight * update[i]!;
      count++;
      totalWeight += weight;
    },
    mean() {
      if (count === 0) throw new FlCoreError('AGG_NO_UPDATES', 'WeightedMeanAccumulator.mean: no updates added');
      if (!(totalWeight > 0)) throw new FlCoreError('AGG_BAD_WEIGHTS', 'WeightedMeanAccumulator.mean: weights sum to zero');
      const out = new Float32Array(length);
      const inv = 1 / totalWeight;
      for (let i = 0; i < length; i++) out[i] = sums[i]! * inv;
      return out;
    },
    reset() {
      sums.fill(0);
      count = 0;
      totalWeight = 0;
    },
  };
}
