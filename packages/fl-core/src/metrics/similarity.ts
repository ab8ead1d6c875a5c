/**
 * Similarity metrics built on params.ts's cosine: the mean row-wise cosine of two matrices, and
 * FedMM-X's explanation consistency (EC) — Balija 2025, arXiv:2503.19564, §6.2: the cosine between
 * the explanation vectors two modalities give for the same input, averaged over inputs (and here over
 * every pair of modalities).
 */
import { cosineSimilarity } from '../params.js';
import { badInput, columnsOf } from './validate.js';

/**
 * Mean over rows of the cosine between row i of `a` and row i of `b` (both row-major
 * `numRows × dim`). A row that is all zeros contributes 0, as in {@link cosineSimilarity}.
 */
export function meanRowCosine(a: Float32Array, b: Float32Array, numRows: number): number {
  const fn = 'meanRowCosine';
  if (a.length !== b.length) badInput(fn, `matrices hold different numbers of values (${a.length} vs ${b.length})`);
  const dim = columnsOf(fn, a, numRows, 'matrix');
  let total = 0;
  for (let r = 0; r < numRows; r++) {
    const x = a.subarray(r * dim, (r + 1) * dim);
    const y = b.subarray(r * dim, (r + 1) * dim);
    const c = cosineSimilarity(x, y);
    if (Number.isNaN(c)) badInput(fn, `row ${r} holds NaN or Infinity`);
    total += c;
  }
  return total / numRows;
}

/**
 * Explanation consistency in [−1, 1] over a whole probe set: {@link meanRowCosine} averaged over
 * every pair of the given per-modality explanation matrices (each row-major `numInputs × dim`, one
 * row per probe input). (`@chorus/models`' `explanationConsistency` is the per-example EC of one
 * pair of modalities of a model's explanation.)
 */
export function meanExplanationConsistency(explanations: readonly Float32Array[], numInputs: number): number {
  if (explanations.length < 2) badInput('meanExplanationConsistency', `needs explanations from at least 2 modalities, got ${explanations.length}`);
  let total = 0;
  let pairs = 0;
  for (let i = 0; i < explanations.length; i++) {
    for (let j = i + 1; j < explanations.length; j++) {
      total += meanRowCosine(explanations[i]!, explanations[j]!, numInputs);
      pairs++;
    }
  }
  return total / pairs;
}
