/** Centered clipping, a robust aggregator — Karimireddy, He, Jaggi 2021, arXiv:2012.10333. */
import { clipFactor, squaredDistance } from '../params.js';
import { checkLength, checkOption, checkUpdates, normalisedWeights } from './validate.js';

/** Options of {@link centeredClip}. */
export interface CenteredClipOptions {
  /** τ, the clipping radius around the current centre. */
  readonly clipRadius: number;
  /** L, how many clipping iterations to run; default 1 (the paper's choice with momentum). */
  readonly iterations?: number;
  /** v₀, the starting centre (e.g. the previous round's aggregate); default zeros. */
  readonly center?: Float32Array;
  /** Weights of the updates; default equal. */
  readonly weights?: readonly number[];
}

/**
 * Centered clipping: v ← v + Σ w_i (x_i − v) · min(1, τ / ‖x_i − v‖), repeated L times from v₀, with
 * normalised weights w_i. An update far from the centre moves it by at most τ·w_i. Throws
 * `AGG_NO_UPDATES`, `PARAMS_MISMATCH`, `AGG_BAD_CONFIG` or `AGG_BAD_WEIGHTS`; never mutates its input.
 */
export function centeredClip(updates: readonly Float32Array[], options: CenteredClipOptions): Float32Array {
  const { clipRadius, iterations = 1 } = options;
  checkOption('centeredClip', 'clipRadius', clipRadius, (v) => v > 0, 'finite and > 0');
  checkOption('centeredClip', 'iterations', iterations, (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
  const length = checkUpdates('centeredClip', updates);
  if (options.center) checkLength('centeredClip', 'center', options.center, length);
  const weights = normalisedWeights('centeredClip', options.weights ?? new Array<number>(updates.length).fill(1), updates.length);

  const center = new Float64Array(length);
  if (options.center) for (let i = 0; i < length; i++) center[i] = options.center[i]!;
  const step = new Float64Array(length);
  for (let it = 0; it < iterations; it++) {
    step.fill(0);
    for (let k = 0; k < updates.length; k++) {
      const x = updates[k]!;
      const c = weights[k]! * clipFactor(Math.sqrt(squaredDistance(x, center)), clipRadius);
      if (c === 0) continue;
      for (let i = 0; i < length; i++) step[i] = step[i]! + c * (x[i]! - center[i]!);
    }
    for (let i = 0; i < length; i++) center[i] = center[i]! + step[i]!;
  }
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = center[i]!;
  return out;
}
