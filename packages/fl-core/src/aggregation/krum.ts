/** Krum and Multi-Krum selection of client updates — Blanchard, El Mhamdi, Guerraoui, Stainer 2017, arXiv:1703.02757. */
import { FlCoreError } from '../errors.js';
import { checkFinite, checkOption, checkUpdates, normalisedWeights } from './validate.js';

/** Options of {@link krum}. */
export interface KrumOptions {
  /** f, the number of Byzantine updates tolerated; needs n > 2f + 2 updates. */
  readonly numByzantine: number;
  /** m, how many best-scored updates to average (1 = Krum, more = Multi-Krum); default 1, at most n − f. */
  readonly numToKeep?: number;
  /** Weights (e.g. example counts) for averaging the kept updates; default equal. */
  readonly weights?: readonly number[];
}

/** What {@link krum} chose and why. */
export interface KrumResult {
  /** Weighted mean of the kept updates (a copy of the single best one for plain Krum). */
  readonly aggregate: Float32Array;
  /** Indices of the kept updates, best score first. */
  readonly selected: readonly number[];
  /** Per update: sum of squared distances to its n − f − 2 nearest other updates (lower is better). */
  readonly scores: readonly number[];
}

/**
 * The f that n updates can run Krum with: min(f, ⌊(n − 3)/2⌋), the largest f' <= f with n > 2f' + 2,
 * and 0 when n <= 2 (no f' satisfies the bound; see the Krum strategy for what it does then).
 */
export function boundedNumByzantine(numUpdates: number, numByzantine: number): number {
  return Math.max(0, Math.min(numByzantine, Math.floor((numUpdates - 3) / 2)));
}

/** Coordinates per block of the pairwise distance pass; n blocks of this size stay in L2. */
const BLOCK = 1024;

/**
 * All pairwise squared distances ‖u_i − u_j‖², each of the n(n−1)/2 pairs computed once, as an
 * n × n row-major matrix. Coordinates go in blocks so every block of every update is read from
 * cache for its n − 1 pairs instead of from memory.
 */
export function pairwiseSquaredDistances(updates: readonly Float32Array[]): Float64Array {
  const length = checkUpdates('pairwiseSquaredDistances', updates);
  const n = updates.length;
  const dist = new Float64Array(n * n);
  for (let start = 0; start < length; start += BLOCK) {
    const end = Math.min(start + BLOCK, length);
    for (let a = 0; a < n; a++) {
      const x = updates[a]!;
      let b = a + 1;
      // Two partners per pass share each load of x[i].
      for (; b + 1 < n; b += 2) {
        const y = updates[b]!;
        const z = updates[b + 1]!;
        let sy = 0;
        let sz = 0;
        for (let i = start; i < end; i++) {
          const xi = x[i]!;
          const dy = xi - y[i]!;
          const dz = xi - z[i]!;
          sy += dy * dy;
          sz += dz * dz;
        }
        dist[a * n + b] = dist[a * n + b]! + sy;
        dist[a * n + b + 1] = dist[a * n + b + 1]! + sz;
      }
      if (b < n) {
        const y = updates[b]!;
        let sy = 0;
        for (let i = start; i < end; i++) {
          const dy = x[i]! - y[i]!;
          sy += dy * dy;
        }
        dist[a * n + b] = dist[a * n + b]! + sy;
      }
    }
  }
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) dist[b * n + a] = dist[a * n + b]!;
  return dist;
}

/**
 * Krum (numToKeep = 1) or Multi-Krum: scores each update by the summed squared distance to its
 * n − f − 2 nearest neighbours and averages the m best.
 *
 * Updates holding NaN or ±Infinity are refused with `PARAMS_NON_FINITE` rather than ranked: a NaN
 * update has NaN distance to everyone, which would also poison the scores of honest updates and make
 * the ordering meaningless (a NaN difference is neither below nor above anything). Strategies reject
 * such results before they get here. Finite float32 inputs give finite scores (a squared float32
 * difference is below 5e77, far from float64's limit), so the score order is a total order.
 *
 * Throws `AGG_NO_UPDATES`, `PARAMS_MISMATCH`, `PARAMS_NON_FINITE`, `AGG_BAD_CONFIG` (bad f or m),
 * `AGG_TOO_FEW_CLIENTS` (n <= 2f + 2) or `AGG_BAD_WEIGHTS`; never mutates its input.
 */
export function krum(updates: readonly Float32Array[], options: KrumOptions): KrumResult {
  const { numByzantine, numToKeep = 1 } = options;
  checkOption('krum', 'numByzantine', numByzantine, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  const length = checkUpdates('krum', updates);
  const n = updates.length;
  if (n <= 2 * numByzantine + 2) {
    throw new FlCoreError('AGG_TOO_FEW_CLIENTS', `krum: needs more than 2f + 2 = ${2 * numByzantine + 2} updates for f = ${numByzantine}, got ${n}`);
  }
  checkOption('krum', 'numToKeep', numToKeep, (v) => Number.isInteger(v) && v >= 1 && v <= n - numByzantine, `an integer in [1, n − f = ${n - numByzantine}]`);
  const weights = normalisedWeights('krum', options.weights ?? new Array<number>(n).fill(1), n);
  checkFinite('krum', updates);

  const dist = pairwiseSquaredDistances(updates);
  const neighbours = n - numByzantine - 2;
  const scores: number[] = [];
  const row = new Float64Array(n - 1);
  for (let a = 0; a < n; a++) {
    for (let b = 0, r = 0; b < n; b++) if (b !== a) row[r++] = dist[a * n + b]!;
    row.sort();
    let s = 0;
    for (let r = 0; r < neighbours; r++) s += row[r]!;
    scores.push(s);
  }
  // Scores are finite (checked input), so this is a total order; ties go to the lower index so the
  // choice does not depend on sort stability.
  const order = scores.map((_, k) => k).sort((a, b) => scores[a]! - scores[b]! || a - b);
  const selected = order.slice(0, numToKeep);

  let keptWeight = 0;
  for (const k of selected) keptWeight += weights[k]!;
  if (!(keptWeight > 0)) throw new FlCoreError('AGG_BAD_WEIGHTS', 'krum: the kept updates all have zero weight');
  const acc = new Float64Array(length);
  for (const k of selected) {
    const u = updates[k]!;
    const w = weights[k]! / keptWeight;
    for (let i = 0; i < length; i++) acc[i] = acc[i]! + w * u[i]!;
  }
  const aggregate = new Float32Array(length);
  for (let i = 0; i < length; i++) aggregate[i] = acc[i]!;
  return { aggregate, selected, scores };
}
