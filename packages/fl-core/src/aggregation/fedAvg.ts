/**
 * FedAvg, the example-weighted mean of client updates — McMahan et al. 2017, arXiv:1602.05629.
 * Two kernels with the same semantics: WebAssembly SIMD where available, scalar JavaScript otherwise.
 */
import { FEDAVG_BLOCK, FEDAVG_ROW_STRIDE, FEDAVG_ROWS_PER_PASS } from '../simd/kernelBytes.js';
import { simdKernels } from '../simd/kernels.js';
import type { SimdKernels } from '../simd/kernels.js';
import { checkUpdates, normalisedWeights } from './validate.js';

/**
 * Coordinates per block of the scalar kernel. The float64 partial sums of one block stay in L1 while
 * every update is streamed through it once, so memory traffic is one read of each update plus one
 * write of the result.
 */
const BLOCK = 2048;

/**
 * How far the SIMD kernel may differ from exact arithmetic, as a multiple of Σ_k w_k·|u_k[i]| (weights
 * normalised): products and their sums over eight updates are float32 (weight rounding, product
 * rounding and a depth-3 add tree: at most 5 units of 2^-24), plus the final rounding to float32.
 * The scalar kernel's error is the final rounding alone.
 */
export const FEDAVG_SIMD_RELATIVE_TOLERANCE = 8 * 2 ** -24;

/**
 * Example-weighted mean Σ w_k u_k / Σ w_k of equally long updates. Uses the WebAssembly SIMD kernel
 * where available (within {@link FEDAVG_SIMD_RELATIVE_TOLERANCE} of the scalar one), else scalar
 * JavaScript accumulating in float64.
 * Throws `AGG_NO_UPDATES`, `PARAMS_MISMATCH` (lengths differ) or `AGG_BAD_WEIGHTS`; never mutates its input.
 */
export function fedAvg(updates: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const kernels = simdKernels();
  return kernels === null ? fedAvgScalar(updates, weights) : weightedMeanSimd(kernels, updates, weights);
}

/** {@link fedAvg} on the WebAssembly SIMD kernel; returns null where WebAssembly SIMD is unavailable. */
export function fedAvgSimd(updates: readonly Float32Array[], weights: readonly number[]): Float32Array | null {
  const kernels = simdKernels();
  return kernels === null ? null : weightedMeanSimd(kernels, updates, weights);
}

/** The positive-weight updates and their normalised weights; zero weights contribute nothing. */
function liveUpdates(
  fn: string,
  updates: readonly Float32Array[],
  weights: readonly number[],
): { length: number; live: Float32Array[]; liveWeights: number[] } {
  const length = checkUpdates(fn, updates);
  const w = normalisedWeights(fn, weights, updates.length);
  const live: Float32Array[] = [];
  const liveWeights: number[] = [];
  for (let k = 0; k < updates.length; k++) {
    if (w[k]! > 0) {
      live.push(updates[k]!);
      liveWeights.push(w[k]!);
    }
  }
  return { length, live, liveWeights };
}

/**
 * The SIMD weighted mean. WebAssembly reads only its own memory, so each block of eight updates is
 * copied into eight staged rows there (a memcpy of data read once anyway) and summed by one kernel
 * call while it is hot in L2; that copy is part of what is measured. Rows sit at a fixed stride so
 * the kernel addresses them with immediate offsets.
 */
function weightedMeanSimd(kernels: SimdKernels, updates: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const { length, live, liveWeights: w } = liveUpdates('fedAvg', updates, weights);
  const out = new Float32Array(length);
  const acc = 0;
  const rows = FEDAVG_BLOCK * 8;
  kernels.reserve(rows + FEDAVG_ROWS_PER_PASS * FEDAVG_ROW_STRIDE);
  const f32 = kernels.f32();
  const f64 = kernels.f64();
  const rowAt = (r: number): number => (rows + r * FEDAVG_ROW_STRIDE) >>> 2;
  const n = live.length;
  for (let start = 0; start < length; start += FEDAVG_BLOCK) {
    const end = Math.min(start + FEDAVG_BLOCK, length);
    const size = end - start;
    // Kernels run whole lanes of four; the lanes past `size` sum stale values and are never read.
    f64.fill(0, 0, (size + 3) & ~3);
    let k = 0;
    for (; k + FEDAVG_ROWS_PER_PASS <= n; k += FEDAVG_ROWS_PER_PASS) {
      for (let r = 0; r < FEDAVG_ROWS_PER_PASS; r++) f32.set(live[k + r]!.subarray(start, end), rowAt(r));
      kernels.weightedSum8(acc, rows, w[k]!, w[k + 1]!, w[k + 2]!, w[k + 3]!, w[k + 4]!, w[k + 5]!, w[k + 6]!, w[k + 7]!, size);
    }
    for (; k < n; k++) {
      f32.set(live[k]!.subarray(start, end), rowAt(0));
      kernels.weightedSum1(acc, rows, w[k]!, size);
    }
    out.set(f64.subarray(0, size), start);
  }
  return out;
}

/** {@link fedAvg} on the scalar JavaScript kernel, float64 accumulation (the fallback, and the reference in tests). */
export function fedAvgScalar(updates: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const { length, live, liveWeights } = liveUpdates('fedAvg', updates, weights);
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
