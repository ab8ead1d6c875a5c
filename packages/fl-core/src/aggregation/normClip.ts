/** Norm clipping of client updates (norm-bounded aggregation) — Sun, Kairouz, Suresh, McMahan 2019, arXiv:1911.07963. */
import { checkOption } from './validate.js';

/** Euclidean norm, accumulated in float64. */
function l2(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** One update clipped by {@link clipToNorm}. */
export interface ClippedUpdate {
  /** A new vector: the update scaled by `factor`. */
  readonly clipped: Float32Array;
  /** The update's norm before clipping. */
  readonly norm: number;
  /** min(1, maxNorm / norm): 1 when the update was already inside the ball. */
  readonly factor: number;
}

/**
 * Scales `update` into the L2 ball of radius `maxNorm` (unchanged if already inside), as a new
 * vector. Throws `AGG_BAD_CONFIG` unless maxNorm is finite and > 0; never mutates its input.
 */
export function clipToNorm(update: Float32Array, maxNorm: number): ClippedUpdate {
  checkOption('clipToNorm', 'maxNorm', maxNorm, (v) => v > 0, 'finite and > 0');
  const norm = l2(update);
  const factor = norm > maxNorm ? maxNorm / norm : 1;
  const clipped = new Float32Array(update.length);
  if (factor === 1) clipped.set(update);
  else for (let i = 0; i < update.length; i++) clipped[i] = update[i]! * factor;
  return { clipped, norm, factor };
}

/** Clips every update into the L2 ball of radius `maxNorm` (see {@link clipToNorm}); never mutates its input. */
export function normClip(updates: readonly Float32Array[], maxNorm: number): ClippedUpdate[] {
  checkOption('normClip', 'maxNorm', maxNorm, (v) => v > 0, 'finite and > 0');
  return updates.map((u) => clipToNorm(u, maxNorm));
}
