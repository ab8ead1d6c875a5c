/** Coordinate-wise trimmed mean of client updates — Yin, Chen, Ramchandran, Bartlett 2018, arXiv:1803.01498. */
import { FlCoreError } from '../errors.js';
import { blockSize, gatherBlock, selectTwoInPlace } from './select.js';
import { checkOption, checkUpdates } from './validate.js';

/**
 * Per coordinate, drops the ⌊β·n⌋ largest and ⌊β·n⌋ smallest values and averages the rest; robust
 * to up to ⌊β·n⌋ arbitrary updates. β must lie in [0, 0.5) and leave at least one value. Updates are
 * assumed finite (strategies reject the rest). Throws `AGG_NO_UPDATES`, `PARAMS_MISMATCH` or
 * `AGG_BAD_CONFIG`; never mutates its input.
 */
export function trimmedMean(updates: readonly Float32Array[], trimFraction: number): Float32Array {
  checkOption('trimmedMean', 'trimFraction', trimFraction, (v) => v >= 0 && v < 0.5, 'in [0, 0.5)');
  const length = checkUpdates('trimmedMean', updates);
  const n = updates.length;
  const cut = Math.floor(trimFraction * n);
  if (2 * cut >= n) {
    throw new FlCoreError('AGG_BAD_CONFIG', `trimmedMean: trimming ${cut} from each end of ${n} updates leaves nothing`);
  }
  const out = new Float32Array(length);
  const kept = n - 2 * cut;
  const inv = 1 / kept;
  const block = blockSize(n);
  const scratch = new Float32Array(block * n);
  for (let start = 0; start < length; start += block) {
    const size = Math.min(block, length - start);
    gatherBlock(updates, start, size, scratch);
    for (let j = 0, lo = 0; j < size; j++, lo += n) {
      const hi = lo + n - 1;
      if (cut > 0) {
        // Puts the `cut` smallest below lo + cut and the `cut` largest above hi − cut.
        selectTwoInPlace(scratch, lo, hi, lo + cut, hi - cut);
      }
      let sum = 0;
      for (let i = lo + cut; i <= hi - cut; i++) sum += scratch[i]!;
      out[start + j] = sum * inv;
    }
  }
  return out;
}
