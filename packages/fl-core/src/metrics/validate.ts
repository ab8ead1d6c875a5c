/**
 * Input checks shared by the metrics. Every metric refuses malformed input with `METRICS_BAD_INPUT`
 * before computing anything, so a caller never gets a number built from misaligned arrays.
 */
import { FlCoreError } from '../errors.js';

/** Throws `METRICS_BAD_INPUT` with the function name in front of the message. */
export function badInput(fn: string, message: string): never {
  throw new FlCoreError('METRICS_BAD_INPUT', `${fn}: ${message}`);
}

/** Checks that there is at least one sample and that both arrays hold one entry per sample. */
export function checkSameLength(fn: string, a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  if (a.length !== b.length) badInput(fn, `${what} lengths differ (${a.length} vs ${b.length})`);
  if (a.length === 0) badInput(fn, 'no samples');
  return a.length;
}

/** Checks that every label is an integer class index in [0, numClasses) (any non-negative integer when numClasses is omitted). */
export function checkLabels(fn: string, labels: ArrayLike<number>, numClasses?: number): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || (numClasses !== undefined && y >= numClasses)) {
      badInput(fn, `label ${i} is ${y}, expected an integer in [0, ${numClasses ?? '∞'})`);
    }
  }
}

/**
 * Number of columns of a row-major `numRows × ?` matrix stored in `values`; throws unless the
 * length divides evenly into at least one column per row.
 */
export function columnsOf(fn: string, values: ArrayLike<number>, numRows: number, what: string): number {
  if (numRows === 0) badInput(fn, 'no samples');
  const cols = values.length / numRows;
  if (!Number.isInteger(cols) || cols < 1) {
    badInput(fn, `${what} has ${values.length} values, not a whole number of rows of ${numRows} samples`);
  }
  return cols;
}

/** Tolerance on a probability row's sum: float32 softmax outputs over many classes drift by ~1e-6. */
const ROW_SUM_TOLERANCE = 1e-3;

/** Checks that each row of a row-major probability matrix is finite, in [0, 1] and sums to 1 (within 1e-3). */
export function checkProbabilityRows(fn: string, probabilities: ArrayLike<number>, numClasses: number): void {
  const numRows = probabilities.length / numClasses;
  for (let r = 0; r < numRows; r++) {
    let sum = 0;
    for (let c = 0; c < numClasses; c++) {
      const p = probabilities[r * numClasses + c]!;
      if (!(p >= 0 && p <= 1)) badInput(fn, `probability [${r}, ${c}] is ${p}, expected a number in [0, 1]`);
      sum += p;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) badInput(fn, `probability row ${r} sums to ${sum}, expected 1`);
  }
}
