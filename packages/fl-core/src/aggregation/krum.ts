/** Krum and Multi-Krum selection of client updates — Blanchard, El Mhamdi, Guerraoui, Stainer 2017, arXiv:1703.02757. */
import { FlCoreError } from '../errors.js';
import { medianOfNumbers } from './median.js';
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

/** One parameter group's updates and the clients that sent them, for {@link multiKrumSelect}. */
export interface KrumGroup {
  /** The group's flat update of each sender (all the same length). */
  readonly updates: readonly Float32Array[];
  /** The client index (in [0, numClients)) of each update, no index twice. */
  readonly clients: readonly number[];
}

/** Options of {@link multiKrumSelect}. */
export interface KrumSelectionOptions {
  /** f, the Byzantine clients assumed: a group of n_g senders scores each over its max(1, n_g − f − 2) nearest neighbours. */
  readonly numByzantine: number;
  /** m, how many clients to select (1 … numClients); Multi-Krum's m = n − f. */
  readonly numToSelect: number;
}

/** What {@link multiKrumSelect} chose and why. */
export interface KrumSelectionResult {
  /** Client indices selected, best combined score first. */
  readonly selected: readonly number[];
  /** Per client: the mean of its per-group normalised Krum scores (1, a typical client, when no group scored it). */
  readonly scores: readonly number[];
}

/**
 * Multi-Krum as a selection of clients when clients send different parameter groups (modalities):
 * in each group with two or more senders every sender gets its Krum score (summed squared distance to
 * its max(1, n_g − f − 2) nearest fellow senders), divided by the group's median score so that groups
 * of different sizes and scales weigh alike (by the mean when the median is 0, e.g. when most senders
 * are identical; all 0 when every score is). A client's score is the mean over the groups it sent;
 * the m clients with the lowest scores are selected (ties to the lower index). Unlike per-group Krum,
 * a small group cannot shrink f to 0 and keep everybody: a client far from its fellows in the groups it
 * sent is left out of every group. Like Krum, colluders sending near-identical updates score well.
 *
 * Throws `AGG_BAD_CONFIG` (bad f, m or client index), `PARAMS_MISMATCH` (lengths differ within a group)
 * or `PARAMS_NON_FINITE`; never mutates its input.
 */
export function multiKrumSelect(numClients: number, groups: readonly KrumGroup[], options: KrumSelectionOptions): KrumSelectionResult {
  const { numByzantine, numToSelect } = options;
  checkOption('multiKrumSelect', 'numClients', numClients, (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
  checkOption('multiKrumSelect', 'numByzantine', numByzantine, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  checkOption('multiKrumSelect', 'numToSelect', numToSelect, (v) => Number.isInteger(v) && v >= 1 && v <= numClients, `an integer in [1, ${numClients}]`);
  groups.forEach((g, i) => {
    if (g.clients.length !== g.updates.length)
      throw new FlCoreError('AGG_BAD_CONFIG', `multiKrumSelect: group ${i} has ${g.updates.length} updates and ${g.clients.length} clients`);
    if (g.updates.length === 0) return;
    checkUpdates('multiKrumSelect', g.updates);
    checkFinite('multiKrumSelect', g.updates);
    const seen = new Set<number>();
    for (const c of g.clients) {
      if (!Number.isInteger(c) || c < 0 || c >= numClients || seen.has(c)) {
        throw new FlCoreError('AGG_BAD_CONFIG', `multiKrumSelect: group ${i} names client ${c} twice or outside [0, ${numClients})`);
      }
      seen.add(c);
    }
  });

  const sums = new Float64Array(numClients);
  const counts = new Uint32Array(numClients);
  for (const g of groups) {
    const n = g.updates.length;
    if (n < 2) continue;
    const dist = pairwiseSquaredDistances(g.updates);
    const neighbours = Math.max(1, n - numByzantine - 2);
    const row = new Float64Array(n - 1);
    const raw: number[] = [];
    for (let a = 0; a < n; a++) {
      for (let b = 0, r = 0; b < n; b++) if (b !== a) row[r++] = dist[a * n + b]!;
      row.sort();
      let s = 0;
      for (let r = 0; r < neighbours; r++) s += row[r]!;
      raw.push(s);
    }
    const median = medianOfNumbers(raw);
    const scale = median > 0 ? median : raw.reduce((s, v) => s + v, 0) / n;
    g.clients.forEach((c, j) => {
      sums[c] = sums[c]! + (scale > 0 ? raw[j]! / scale : 0);
      counts[c] = counts[c]! + 1;
    });
  }
  const scores = Array.from(sums, (s, c) => (counts[c]! > 0 ? s / counts[c]! : 1));
  // Finite inputs give finite scores, so this is a total order.
  const order = scores.map((_, c) => c).sort((a, b) => scores[a]! - scores[b]! || a - b);
  return { selected: order.slice(0, numToSelect), scores };
}
