/**
 * Shared pieces of the partitioners: argument checks and the splitting of an index list by
 * proportions. Every partitioner returns one ascending index array per client, and every index in
 * [0, numSamples) appears in exactly one of them.
 */
import { FlCoreError } from '../errors.js';

/** Sample indices held by each client: `partition[client]` is ascending, and the arrays are disjoint and cover every sample. */
export type ClientPartition = number[][];

/** Throws `PARTITION_BAD_CONFIG` with the function name in front of the message. */
export function badConfig(fn: string, message: string): never {
  throw new FlCoreError('PARTITION_BAD_CONFIG', `${fn}: ${message}`);
}

/** Checks that `value` is an integer ≥ `min`. */
export function checkInteger(fn: string, name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) badConfig(fn, `${name} must be an integer ≥ ${min}, got ${value}`);
}

/** Checks that `value` is finite and > 0. */
export function checkPositive(fn: string, name: string, value: number): void {
  if (!(value > 0 && Number.isFinite(value))) badConfig(fn, `${name} must be a finite number > 0, got ${value}`);
}

/** Checks labels are non-negative integers and returns the indices of each distinct label, labels ascending. */
export function indicesByLabel(fn: string, labels: ArrayLike<number>): number[][] {
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0) badConfig(fn, `label ${i} is ${y}, expected a non-negative integer`);
    const list = byLabel.get(y);
    if (list) list.push(i);
    else byLabel.set(y, [i]);
  }
  return [...byLabel.keys()].sort((a, b) => a - b).map((y) => byLabel.get(y)!);
}

/**
 * Cuts `indices` into consecutive runs whose lengths follow `proportions` (non-negative, summing to
 * ~1), cutting at ⌊n·cumulative⌋ as NumPy-based reference code does; the last run takes the rest so
 * nothing is lost to rounding.
 */
export function splitByProportions(indices: readonly number[], proportions: ArrayLike<number>): number[][] {
  const out: number[][] = [];
  let cumulative = 0;
  let start = 0;
  for (let j = 0; j < proportions.length; j++) {
    cumulative += proportions[j]!;
    const end = j === proportions.length - 1 ? indices.length : Math.min(indices.length, Math.floor(cumulative * indices.length));
    out.push(indices.slice(start, Math.max(start, end)));
    start = Math.max(start, end);
  }
  return out;
}

/**
 * Integer sizes summing to `total`, each ≥ `minimum`, with the remainder shared in proportion to
 * `weights` by the largest-remainder method (ties to the lower index).
 */
export function sizesFromWeights(total: number, weights: ArrayLike<number>, minimum: number): number[] {
  const k = weights.length;
  let weightSum = 0;
  for (let j = 0; j < k; j++) weightSum += weights[j]!;
  const rest = total - minimum * k;
  const sizes: number[] = [];
  const remainders: number[] = [];
  let assigned = 0;
  for (let j = 0; j < k; j++) {
    const exact = weightSum > 0 ? (rest * weights[j]!) / weightSum : rest / k;
    const whole = Math.floor(exact);
    sizes.push(minimum + whole);
    remainders.push(exact - whole);
    assigned += whole;
  }
  const order = remainders.map((r, j) => j).sort((a, b) => remainders[b]! - remainders[a]! || a - b);
  for (let i = 0; i < rest - assigned; i++) sizes[order[i % k]!]!++;
  return sizes;
}

/** Sorts each client's indices ascending, in place, and returns the partition. */
export function sortClients(partition: number[][]): ClientPartition {
  for (const client of partition) client.sort((a, b) => a - b);
  return partition;
}

/** Cuts `indices` into consecutive runs of the given sizes (which must sum to its length). */
export function cutBySizes(indices: readonly number[], sizes: readonly number[]): number[][] {
  const out: number[][] = [];
  let start = 0;
  for (const size of sizes) {
    out.push(indices.slice(start, start + size));
    start += size;
  }
  return out;
}

/** [0, 1, …, n − 1]. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
