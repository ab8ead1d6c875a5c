/**
 * FedAvg over an update arena's rows, read in place — McMahan et al. 2017, arXiv:1602.05629.
 * Same semantics as {@link fedAvg}: the SIMD kernel is within FEDAVG_SIMD_RELATIVE_TOLERANCE of the
 * scalar float64 result, and the scalar path (no WebAssembly SIMD) is the scalar kernel itself.
 */
import { FlCoreError } from '../errors.js';
import { FEDAVG_BLOCK, FEDAVG_ROWS_PER_PASS } from '../simd/kernelBytes.js';
import type { ArenaKernels } from '../simd/kernels.js';
import { ARENA_SCRATCH_BYTES, arenaInternals } from '../simd/updateArena.js';
import type { UpdateArena } from '../simd/updateArena.js';
import { fedAvgScalar } from './fedAvg.js';
import { normalisedWeights } from './validate.js';

/**
 * Example-weighted mean of the arena's rows (weights[k] for row k; a zero weight leaves that row
 * out and costs nothing), written to `out` when given (numParams long) or to a new array.
 * Throws `AGG_NO_UPDATES`, `AGG_BAD_WEIGHTS` or `PARAMS_MISMATCH` (out's length) before writing anything.
 */
export function fedAvgArena(arena: UpdateArena, weights: readonly number[], out?: Float32Array): Float32Array {
  const fn = 'fedAvgArena';
  const { kernels, rowAddress } = arenaInternals(arena);
  const n = arena.count;
  if (n === 0) throw new FlCoreError('AGG_NO_UPDATES', `${fn}: the arena holds no updates`);
  const w = normalisedWeights(fn, weights, n);
  const length = arena.numParams;
  if (out !== undefined && (!(out instanceof Float32Array) || out.length !== length)) {
    throw new FlCoreError('PARAMS_MISMATCH', `${fn}: out must be a Float32Array of ${length} values`);
  }
  const result = out ?? new Float32Array(length);
  if (kernels === null) {
    const rows = Array.from({ length: n }, (_, k) => arena.row(k));
    result.set(fedAvgScalar(rows, weights));
    return result;
  }
  const live: number[] = [];
  const liveWeights: number[] = [];
  for (let k = 0; k < n; k++) {
    if (w[k]! > 0) {
      live.push(rowAddress(k));
      liveWeights.push(w[k]!);
    }
  }
  weightedMeanInPlace(kernels, live, liveWeights, result);
  return result;
}

/**
 * Blocks of FEDAVG_BLOCK coordinates: the float64 sums of one block (32 KiB) stay in L1 while every
 * live row streams through it, eight rows per kernel call, so each row is read once from memory.
 */
function weightedMeanInPlace(kernels: ArenaKernels, rows: readonly number[], w: readonly number[], out: Float32Array): void {
  // The arena does not grow during this call, so one view of the sums serves every block.
  const sums = new Float64Array(kernels.buffer(), 0, ARENA_SCRATCH_BYTES / 8);
  const n = rows.length;
  const length = out.length;
  for (let start = 0; start < length; start += FEDAVG_BLOCK) {
    const size = Math.min(FEDAVG_BLOCK, length - start);
    const byteStart = 4 * start;
    // Kernels run whole lanes of four; lanes past `size` read the row padding and are never copied out.
    sums.fill(0, 0, (size + 3) & ~3);
    let k = 0;
    for (; k + FEDAVG_ROWS_PER_PASS <= n; k += FEDAVG_ROWS_PER_PASS) {
      kernels.weightedSumRows8(
        0,
        rows[k]! + byteStart,
        rows[k + 1]! + byteStart,
        rows[k + 2]! + byteStart,
        rows[k + 3]! + byteStart,
        rows[k + 4]! + byteStart,
        rows[k + 5]! + byteStart,
        rows[k + 6]! + byteStart,
        rows[k + 7]! + byteStart,
        w[k]!,
        w[k + 1]!,
        w[k + 2]!,
        w[k + 3]!,
        w[k + 4]!,
        w[k + 5]!,
        w[k + 6]!,
        w[k + 7]!,
        size,
      );
    }
    for (; k < n; k++) kernels.weightedSum1(0, rows[k]! + byteStart, w[k]!, size);
    out.set(sums.subarray(0, size), start);
  }
}
