/** Coordinate-wise median of client updates — Yin, Chen, Ramchandran, Bartlett 2018, arXiv:1803.01498. */
import { blockSize, gatherBlock, minInRange, selectInPlace } from './select.js';
import { checkUpdates } from './validate.js';

/**
 * Coordinate-wise median (mean of the two middle values when the count is even), robust to fewer
 * than half the updates being arbitrary. Updates are assumed finite (strategies reject the rest).
 * Throws `AGG_NO_UPDATES` or `PARAMS_MISMATCH`; never mutates its input.
 */
export function median(updates: readonly Float32Array[]): Float32Array {
  const length = checkUpdates('median', updates);
  const n = updates.length;
  const out = new Float32Array(length);
  if (n === 1) {
    out.set(updates[0]!);
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
      // The upper middle value is the smallest of what selection left above the lower one.
      out[start + j] = even ? (lower + minInRange(scratch, lo + lowerRank + 1, hi)) / 2 : lower;
    }
  }
  return out;
}
