/**
 * Similarity metrics built on params.ts's cosine: the mean row-wise cosine of two matrices, and
 * FedMM-X's explanation consistency (EC) — Balija 2025, arXiv:2503.19564, §6.2: the cosine between
 * the explanation vectors two modalities give for the same input, averaged over inputs (and here over
 * every pair of modalities).
 *
 * An explanation vector is a modality's additive contribution to the K class logits. Adding the same
 * constant to all K entries of one such vector adds it to every logit, which softmax ignores: the
 * model's predictions do not change, but the raw cosine does (a large shared offset drives it towards
 * ±1 whatever the modalities say about the classes). EC therefore centres each vector over the class
 * axis before the cosine (the Pearson correlation of the two vectors across classes), which makes it
 * invariant to exactly that offset; the raw cosine stays available for comparison.
 */
import { cosineSimilarity } from '../params.js';
import { badInput, columnsOf } from './validate.js';

/** How rows are compared: `centred` subtracts each row's mean before the cosine (default false). */
export interface RowCosineOptions {
  readonly centred?: boolean;
}

/** Options of the explanation-consistency metrics: `centred` (default true) centres each vector over the classes first. */
export interface ExplanationConsistencyOptions {
  readonly centred?: boolean;
}

function centredCopy(x: Float32Array): Float32Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  // Float64 mean, then one rounding per entry: a constant row becomes exactly zero.
  return x.map((v) => v - mean);
}

/**
 * Cosine of `a − mean(a)` and `b − mean(b)` (Pearson correlation of the entries); 0 when either
 * vector is constant. Invariant to adding a constant to every entry of either vector.
 */
export function centredCosineSimilarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) badInput('centredCosineSimilarity', `vectors have different lengths (${a.length} vs ${b.length})`);
  return cosineSimilarity(centredCopy(a), centredCopy(b));
}

/**
 * Mean over rows of the cosine (centred with `{centred: true}`) between row i of `a` and row i of
 * `b` (both row-major `numRows × dim`). A row that is all zeros (constant, when centred)
 * contributes 0, as in {@link cosineSimilarity}.
 */
export function meanRowCosine(a: Float32Array, b: Float32Array, numRows: number, options: RowCosineOptions = {}): number {
  const fn = 'meanRowCosine';
  if (a.length !== b.length) badInput(fn, `matrices hold different numbers of values (${a.length} vs ${b.length})`);
  const dim = columnsOf(fn, a, numRows, 'matrix');
  const similarity = options.centred ? centredCosineSimilarity : cosineSimilarity;
  let total = 0;
  for (let r = 0; r < numRows; r++) {
    const x = a.subarray(r * dim, (r + 1) * dim);
    const y = b.subarray(r * dim, (r + 1) * dim);
    const c = similarity(x, y);
    if (Number.isNaN(c)) badInput(fn, `row ${r} holds NaN or Infinity`);
    total += c;
  }
  return total / numRows;
}

/**
 * Explanation consistency in [−1, 1] over a whole probe set: {@link meanRowCosine} averaged over
 * every pair of the given per-modality explanation matrices (each row-major `numInputs × K`, one
 * row of class contributions per probe input), centred over the classes unless `{centred: false}`
 * (see the file header). (`@chorus/models`' `explanationConsistency` is the per-example EC of one
 * pair of modalities of a model's explanation.)
 */
export function meanExplanationConsistency(explanations: readonly Float32Array[], numInputs: number, options: ExplanationConsistencyOptions = {}): number {
  if (explanations.length < 2) badInput('meanExplanationConsistency', `needs explanations from at least 2 modalities, got ${explanations.length}`);
  const centred = options.centred ?? true;
  let total = 0;
  let pairs = 0;
  for (let i = 0; i < explanations.length; i++) {
    for (let j = i + 1; j < explanations.length; j++) {
      total += meanRowCosine(explanations[i]!, explanations[j]!, numInputs, { centred });
      pairs++;
    }
  }
  return total / pairs;
}
