/** Norm clipping of client updates (norm-bounded aggregation) — Sun, Kairouz, Suresh, McMahan 2019, arXiv:1911.07963. */
import { clipToNorm } from '../params.js';
import type { ClippedUpdate } from '../params.js';
import { checkOption } from './validate.js';

/** Clips every update into the L2 ball of radius `maxNorm` (see {@link clipToNorm}); never mutates its input. */
export function normClip(updates: readonly Float32Array[], maxNorm: number): ClippedUpdate[] {
  checkOption('normClip', 'maxNorm', maxNorm, (v) => v > 0, 'finite and > 0');
  return updates.map((u) => clipToNorm(u, maxNorm));
}
