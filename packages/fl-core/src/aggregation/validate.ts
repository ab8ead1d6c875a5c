/**
 * Input checks shared by the aggregation functions. Every check runs before any output is
 * allocated, so a rejected call changes nothing and reports a coded {@link FlCoreError}.
 */
import { FlCoreError } from '../errors.js';
import { allFinite } from '../params.js';

/** Throws unless there is at least one update and all have the same length; returns that length. */
export function checkUpdates(fn: string, updates: readonly Float32Array[]): number {
  const first = updates[0];
  if (first === undefined) throw new FlCoreError('AGG_NO_UPDATES', `${fn}: no updates to aggregate`);
  const length = first.length;
  for (let k = 1; k < updates.length; k++) {
    const len = updates[k]!.length;
    if (len !== length) {
      throw new FlCoreError('PARAMS_MISMATCH', `${fn}: update ${k} has ${len} values, update 0 has ${length}`);
    }
  }
  return length;
}

/**
 * Throws `PARAMS_NON_FINITE` naming the first update that holds NaN or ±Infinity. Order-statistic
 * rules need it: NaN compares false both ways, so selection would silently return a finite value
 * that is not the median (or trimmed mean, or Krum choice) of anything.
 */
export function checkFinite(fn: string, updates: readonly Float32Array[]): void {
  for (let k = 0; k < updates.length; k++) {
    if (!allFinite(updates[k]!)) throw new FlCoreError('PARAMS_NON_FINITE', `${fn}: update ${k} holds NaN or Infinity`);
  }
}

/** Throws unless `vector` has `length` values. */
export function checkLength(fn: string, what: string, vector: Float32Array, length: number): void {
  if (vector.length !== length) {
    throw new FlCoreError('PARAMS_MISMATCH', `${fn}: ${what} has ${vector.length} values, expected ${length}`);
  }
}

/**
 * Weights divided by their sum. Each weight must be finite and non-negative and the sum positive;
 * the sum is taken in float64 so that millions of examples per client do not lose precision.
 */
export function normalisedWeights(fn: string, weights: readonly number[], count: number): Float64Array {
  if (weights.length !== count) {
    throw new FlCoreError('AGG_BAD_WEIGHTS', `${fn}: ${weights.length} weights for ${count} updates`);
  }
  let total = 0;
  for (let k = 0; k < count; k++) {
    const w = weights[k]!;
    if (!Number.isFinite(w) || w < 0) throw new FlCoreError('AGG_BAD_WEIGHTS', `${fn}: weight ${k} must be finite and >= 0, got ${w}`);
    total += w;
  }
  if (!(total > 0) || !Number.isFinite(total)) throw new FlCoreError('AGG_BAD_WEIGHTS', `${fn}: weights must have a positive finite sum, got ${total}`);
  const out = new Float64Array(count);
  for (let k = 0; k < count; k++) out[k] = weights[k]! / total;
  return out;
}

/** Throws `AGG_BAD_CONFIG` unless `value` is a finite number satisfying `ok`. */
export function checkOption(fn: string, name: string, value: number, ok: (v: number) => boolean, expected: string): void {
  if (!Number.isFinite(value) || !ok(value)) {
    throw new FlCoreError('AGG_BAD_CONFIG', `${fn}: ${name} must be ${expected}, got ${value}`);
  }
}
