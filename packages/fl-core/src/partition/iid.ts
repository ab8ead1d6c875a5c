/**
 * IID partition: a seeded shuffle of all samples dealt into near-equal parts (sizes differ by at
 * most one; the first `numSamples mod numClients` clients get the extra sample).
 */
import { shuffled, type Rng } from '../rng.js';
import { checkInteger, cutBySizes, range, sortClients, type ClientPartition } from './common.js';

/** Options of {@link iidPartition}. */
export interface IidPartitionOptions {
  /** Number of samples, indexed 0 … numSamples − 1. */
  readonly numSamples: number;
  /** Number of clients (≥ 1). */
  readonly numClients: number;
}

/** Uniformly random, near-equal split of `numSamples` indices over `numClients` clients. */
export function iidPartition(rng: Rng, options: IidPartitionOptions): ClientPartition {
  const { numSamples, numClients } = options;
  checkInteger('iidPartition', 'numSamples', numSamples, 0);
  checkInteger('iidPartition', 'numClients', numClients, 1);
  const base = Math.floor(numSamples / numClients);
  const extra = numSamples % numClients;
  const sizes = range(numClients).map((j) => base + (j < extra ? 1 : 0));
  return sortClients(cutBySizes(shuffled(rng, range(numSamples)), sizes));
}
