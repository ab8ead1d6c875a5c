/**
 * Test support for the representation methods: the hand-checkable two-client fixture (B = 2, D = 2)
 * and seeded random matrices. Used only by this folder's tests.
 */
import { createRng, gaussian } from '../rng.js';

/** Global rows g_0 = (1, 0), g_1 = (0, 1). */
export const G = new Float32Array([1, 0, 0, 1]);
/** Client A: r_0 = (1, 1) (between both samples), r_1 = (0, 1) (exactly sample 1's direction). */
export const A = new Float32Array([1, 1, 0, 1]);
/** Client B: r_0 = (1, 0) (exactly sample 0's direction), r_1 = (1, 1) (between both). */
export const B = new Float32Array([1, 0, 1, 1]);
/** Eq. 7 with τ = 1 for a row pointing exactly at its own sample: e / (e + 1). */
export const S_EXACT = Math.E / (Math.E + 1);
/** Eq. 7 for a row at 45° to both samples: 1/2 whatever τ. */
export const S_BETWEEN = 0.5;

/** Row-major numRows × dim standard-normal values from a seeded generator. */
export function randomMatrix(seed: number, numRows: number, dim: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: numRows * dim }, () => gaussian(rng));
}

/** `base` plus `noiseScale` × a seeded standard-normal matrix. */
export function perturbed(base: Float32Array, seed: number, noiseScale: number): Float32Array {
  const rng = createRng(seed);
  return base.map((v) => v + noiseScale * gaussian(rng));
}
