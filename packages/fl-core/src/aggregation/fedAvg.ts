/** FedAvg, the example-weighted mean of client updates — McMahan et al. 2017, arXiv:1602.05629. */
import { checkUpdates, normalisedWeights } from './validate.js';

/**
 * Coordinates per block. The float64 partial sums of one block stay in L1 while every update is
 * streamed through it once, so memory traffic is one read of each update plus one write of the result.
 */
const BLOCK = 2048;

/**
 * Example-weighted mean Σ w_k u_k / Σ w_k of equally long updates, accumulated in float64.
 * Throws `AGG_NO_UPDATES`, `PARAMS_MISMATCH` (lengths differ) or `AGG_BAD_WEIGHTS`; never mutates its input.
 */
export function fedAvg(updates: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const length = checkUpdates('fedAvg', updates);
  const w = normalisedWeights('fedAvg', weights, updates.length);
  // Zero-weight updates contribute nothing; dropping them up front keeps the inner loop branch-free.
  const live: Float32Array[] = [];
  const liveWeights: number[] = [];
  for (let k = 0; k < updates.length; k++) {
    if (w[k]! > 0) {
      live.push(updates[k]!);
      liveWeights.push(w[k]!);
    }
  }
  const out = new Float32Array(length);
  const acc = new Float64Array(Math.min(BLOCK, length));
  const n = live.length;
  for (let start = 0; start < length; start += BLOCK) {
    const end = Math.min(start + BLOCK, length);
    const size = end - start;
    acc.fill(0, 0, size);
    let k = 0;
    // Eight updates per pass: one load/store of the partial sum per eight products, and a
    // balanced add tree so the products do not wait on each other.
    for (; k + 8 <= n; k += 8) {
      const a = live[k]!;
      const b = live[k + 1]!;
      const c = live[k + 2]!;
      const d = live[k + 3]!;
      const e = live[k + 4]!;
      const f = live[k + 5]!;
      const g = live[k + 6]!;
      const h = live[k + 7]!;
      const wa = liveWeights[k]!;
      const wb = liveWeights[k + 1]!;
      const wc = liveWeights[k + 2]!;
      const wd = liveWeights[k + 3]!;
      const we = liveWeights[k + 4]!;
      const wf = liveWeights[k + 5]!;
      const wg = liveWeights[k + 6]!;
      const wh = liveWeights[k + 7]!;
      for (let i = start; i < end; i++) {
        const j = i - start;
        acc[j] = acc[j]! + (wa * a[i]! + wb * b[i]! + (wc * c[i]! + wd * d[i]!) + (we * e[i]! + wf * f[i]! + (wg * g[i]! + wh * h[i]!)));
      }
    }
    for (; k < n; k++) {
      const a = live[k]!;
      const wa = liveWeights[k]!;
      for (let j = 0, i = start; j < size; j++, i++) acc[j] = acc[j]! + wa * a[i]!;
    }
    for (let j = 0, i = start; j < size; j++, i++) out[i] = acc[j]!;
  }
  return out;
}
