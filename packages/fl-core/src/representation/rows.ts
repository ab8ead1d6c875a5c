/**
 * Row-wise matrix helpers shared by the representation methods: shape checks, row cosines, the B × B
 * cross-cosine matrix, norm matching and a numerically stable softmax. Matrices are row-major
 * `Float32Array`s of B × D; results are float64 so that per-sample weights sum to 1 to ~1e-15.
 */
import { FlCoreError } from '../errors.js';
import { cosineSimilarity, norm } from '../params.js';

/** Throws `REP_BAD_INPUT` with the function name in front of the message. */
export function badRepresentationInput(fn: string, message: string): never {
  throw new FlCoreError('REP_BAD_INPUT', `${fn}: ${message}`);
}

/** Checks B and D (positive integers) and that `values` is a `Float32Array` of B × D finite values. */
export function checkMatrix(fn: string, values: unknown, numSamples: number, dim: number, what: string): asserts values is Float32Array {
  if (!Number.isSafeInteger(numSamples) || numSamples < 1) badRepresentationInput(fn, `numSamples must be a positive integer, got ${String(numSamples)}`);
  if (!Number.isSafeInteger(dim) || dim < 1) badRepresentationInput(fn, `dim must be a positive integer, got ${String(dim)}`);
  if (!(values instanceof Float32Array)) badRepresentationInput(fn, `${what} must be a Float32Array`);
  if (values.length !== numSamples * dim) badRepresentationInput(fn, `${what} has ${values.length} values, expected ${numSamples} × ${dim}`);
  const bad = firstNonFinite(values);
  if (bad >= 0) badRepresentationInput(fn, `${what}[${bad}] is ${values[bad]}`);
}

/** Index of the first NaN or ±Infinity in `values`, or −1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (x - x !== 0) return i;
  }
  return -1;
}

function row(x: Float32Array, i: number, dim: number): Float32Array {
  return x.subarray(i * dim, (i + 1) * dim);
}

/** cos(a_i, b_i) for every row i (0 where either row is all zeros). */
export function rowCosines(a: Float32Array, b: Float32Array, numSamples: number, dim: number): Float64Array {
  const out = new Float64Array(numSamples);
  for (let i = 0; i < numSamples; i++) out[i] = cosineSimilarity(row(a, i, dim), row(b, i, dim));
  return out;
}

function unitRows(x: Float32Array, numSamples: number, dim: number): Float64Array {
  const out = new Float64Array(numSamples * dim);
  for (let i = 0; i < numSamples; i++) {
    const n = norm(row(x, i, dim));
    if (n === 0) continue;
    for (let d = 0; d < dim; d++) out[i * dim + d] = x[i * dim + d]! / n;
  }
  return out;
}

/**
 * Calls `visit(i, c)` for each row i of `a` with c[j] = cos(a_i, g_j) over every row j of `g` (0
 * where either row is all zeros). `c` is one buffer reused for every row: O(B·D) memory instead of
 * the B × B matrix, for O(B²·D) time.
 */
export function forEachCosineRow(a: Float32Array, g: Float32Array, numSamples: number, dim: number, visit: (i: number, cosines: Float64Array) => void): void {
  const ua = unitRows(a, numSamples, dim);
  const ug = unitRows(g, numSamples, dim);
  const cosines = new Float64Array(numSamples);
  // Four partial sums break the loop-carried dependency (as in params.ts's squaredNorm); the order
  // is fixed, so results are the same on every run.
  const end = dim - (dim % 4);
  for (let i = 0; i < numSamples; i++) {
    const ai = i * dim;
    for (let j = 0; j < numSamples; j++) {
      const gj = j * dim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let d = 0;
      for (; d < end; d += 4) {
        s0 += ua[ai + d]! * ug[gj + d]!;
        s1 += ua[ai + d + 1]! * ug[gj + d + 1]!;
        s2 += ua[ai + d + 2]! * ug[gj + d + 2]!;
        s3 += ua[ai + d + 3]! * ug[gj + d + 3]!;
      }
      for (; d < dim; d++) s0 += ua[ai + d]! * ug[gj + d]!;
      cosines[j] = s0 + s1 + (s2 + s3);
    }
    visit(i, cosines);
  }
}

/** The B × B matrix C with C[i·B + j] = cos(a_i, g_j) (0 where either row is all zeros). */
export function crossCosines(a: Float32Array, g: Float32Array, numSamples: number, dim: number): Float64Array {
  const out = new Float64Array(numSamples * numSamples);
  forEachCosineRow(a, g, numSamples, dim, (i, cosines) => out.set(cosines, i * numSamples));
  return out;
}

/**
 * A copy of `x` whose row i is rescaled to ‖reference_i‖ (direction kept). A zero row stays zero;
 * a row whose reference is zero becomes zero. Makes a client's scale irrelevant to the teacher.
 */
export function matchRowNorms(x: Float32Array, reference: Float32Array, numSamples: number, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < numSamples; i++) {
    const n = norm(row(x, i, dim));
    if (n === 0) continue;
    const f = norm(row(reference, i, dim)) / n;
    for (let d = 0; d < dim; d++) out[i * dim + d] = x[i * dim + d]! * f;
  }
  return out;
}

/** Softmax of `logits` (any finite values) into `out` (which may be `logits`), computed stably by subtracting the maximum. */
export function softmaxInto(logits: ArrayLike<number>, out: Float64Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < logits.length; k++) max = Math.max(max, logits[k]!);
  let total = 0;
  for (let k = 0; k < logits.length; k++) {
    out[k] = Math.exp(logits[k]! - max);
    total += out[k]!;
  }
  for (let k = 0; k < logits.length; k++) out[k] = out[k]! / total;
  return out;
}

/** Softmax of `logits` (any finite values) into a new array. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  return softmaxInto(logits, new Float64Array(logits.length));
}
