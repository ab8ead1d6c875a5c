/**
 * Coordinate-wise median of client updates — Yin, Chen, Ramchandran, Bartlett 2018, arXiv:1803.01498.
 * Two kernels with the same semantics: WebAssembly SIMD where available, scalar JavaScript otherwise.
 */
import { MEDIAN_MAX_HALF, MEDIAN_TILE_GROUPS } from '../simd/kernelBytes.js';
import { simdMedianKernel } from '../simd/kernels.js';
import type { SimdMedianKernel } from '../simd/kernels.js';
import { blockSize, gatherBlock, minInRange, selectInPlace } from './select.js';
import { checkFinite, checkUpdates } from './validate.js';
import { FlCoreError } from '../errors.js';

/** Most updates the SIMD kernel takes (two sorted halves of its largest size); more use quickselect. */
export const MEDIAN_SIMD_MAX_UPDATES = 2 * MEDIAN_MAX_HALF;

/**
 * Coordinates staged per SIMD block, a multiple of a tile's 4·MEDIAN_TILE_GROUPS. Measured on
 * 100 × 1,000,000: staging took 51 ms with 1,024 and 25 ms with 4,096 (a memcpy of it all, 18 ms),
 * because every `Float32Array.set` call has a fixed cost; the median ran 180 vs 143 ms.
 */
const SIMD_BLOCK = 4096;

/**
 * Coordinate-wise median (mean of the two middle values when the count is even), robust to fewer
 * than half the updates being arbitrary (finite) values. Updates holding NaN or ±Infinity are
 * refused (strategies reject them as results first), since selection cannot order NaN. Uses the WebAssembly SIMD kernel where available and there are at most
 * {@link MEDIAN_SIMD_MAX_UPDATES} updates. Both kernels return the same bits; a zero median is +0, so
 * the result depends only on the values, not on their order.
 * Throws `AGG_NO_UPDATES`, `PARAMS_MISMATCH` or `PARAMS_NON_FINITE`; never mutates its input.
 */
export function median(updates: readonly Float32Array[]): Float32Array {
  const length = checkMedian(updates);
  const kernel = updates.length > 1 && updates.length <= MEDIAN_SIMD_MAX_UPDATES ? simdMedianKernel() : null;
  return kernel === null ? medianScalarChecked(updates, length) : medianSimdChecked(kernel, updates, length);
}

/**
 * {@link median} on the WebAssembly SIMD kernel; returns null where WebAssembly SIMD is unavailable
 * or there are more than {@link MEDIAN_SIMD_MAX_UPDATES} updates.
 */
export function medianSimd(updates: readonly Float32Array[]): Float32Array | null {
  const length = checkMedian(updates);
  const kernel = updates.length <= MEDIAN_SIMD_MAX_UPDATES ? simdMedianKernel() : null;
  return kernel === null ? null : medianSimdChecked(kernel, updates, length);
}

/** {@link median} on the scalar JavaScript kernel (the fallback, and the reference in tests). */
export function medianScalar(updates: readonly Float32Array[]): Float32Array {
  return medianScalarChecked(updates, checkMedian(updates));
}

/** The input checks every median entry point runs before allocating; returns the update length. */
function checkMedian(updates: readonly Float32Array[]): number {
  const length = checkUpdates('median', updates);
  checkFinite('median', updates);
  return length;
}

/** Quickselect per coordinate over a coordinate-major scratch block. */
function medianScalarChecked(updates: readonly Float32Array[], length: number): Float32Array {
  const n = updates.length;
  const out = new Float32Array(length);
  if (n === 1) {
    for (let i = 0; i < length; i++) out[i] = updates[0]![i]! + 0;
    return out;
  }
  const lowerRank = (n - 1) >>> 1;
  const even = n % 2 === 0;
  const block = blockSize(n);
  const scratch = new Float32Array(block * n);
  for (let start = 0; start < length; start += block) {
    const size = Math.min(block, length - start);
    gatherBlock(updates, start, size, scratch);
    for (let j = 0, lo = 0; j < size; j++, lo += n) {
      const hi = lo + n - 1;
      selectInPlace(scratch, lo, hi, lo + lowerRank);
      const lower = scratch[lo + lowerRank]!;
      // The upper middle value is the smallest of what selection left above the lower one. Adding
      // +0 after rounding to float32 turns −0 (also a mean that underflows) into +0, so the result
      // does not depend on which of tied zeros selection kept.
      out[start + j] = (even ? Math.fround((lower + minInRange(scratch, lo + lowerRank + 1, hi)) / 2) : lower) + 0;
    }
  }
  return out;
}

/**
 * The SIMD median. A block of coordinates of every update is copied, update-major as it already is,
 * into staged rows, so four neighbouring coordinates of one update are one f32x4 lane group; rows
 * up to the next power of two (at least 32) hold +∞, which sorts last and leaves the ranks below
 * it alone. The kernel sorts each half of the rows with a bitonic network (compare-exchanges are
 * pmin/pmax, no data-dependent branch) and reads the middle ranks off the two sorted halves.
 */
function medianSimdChecked(kernel: SimdMedianKernel, updates: readonly Float32Array[], length: number): Float32Array {
  const n = updates.length;
  const out = new Float32Array(length);
  let half = 16;
  while (2 * half < n) half *= 2;
  const rowBytes = 16 * MEDIAN_TILE_GROUPS;
  // One cache line of padding per row keeps a column's values out of a single L1 set.
  const stride = SIMD_BLOCK * 4 + 64;
  const scratch = 2 * half * stride;
  const result = scratch + (2 * half + 3) * rowBytes;
  const { kernels } = kernel;
  kernels.reserve(result + SIMD_BLOCK * 4);
  const f32 = kernels.f32();
  // Other kernels share this memory, so the padding rows and −∞ sentinels are written on every call.
  f32.fill(Infinity, (n * stride) >>> 2, scratch >>> 2);
  f32.fill(-Infinity, scratch >>> 2, (scratch + rowBytes) >>> 2);
  f32.fill(-Infinity, (scratch + (half + 1) * rowBytes) >>> 2, (scratch + (half + 2) * rowBytes) >>> 2);
  const rank = ((n - 1) >>> 1) + 1;
  const even = n % 2 === 0;
  for (let start = 0; start < length; start += SIMD_BLOCK) {
    const end = Math.min(start + SIMD_BLOCK, length);
    const size = end - start;
    for (let k = 0; k < n; k++) f32.set(updates[k]!.subarray(start, end), (k * stride) >>> 2);
    // Lanes past `size` in the last tile carry stale values and are never read back.
    kernel.medianColumns(0, stride, (size + 3) >>> 2, half, rank, even, scratch, result);
    out.set(f32.subarray(result >>> 2, (result >>> 2) + size), start);
  }
  return out;
}

/** The median of a non-empty list of numbers (the mean of the middle two for an even count); does not mutate `values`. */
export function medianOfNumbers(values: readonly number[]): number {
  if (values.length === 0) throw new FlCoreError('AGG_NO_UPDATES', 'medianOfNumbers: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
