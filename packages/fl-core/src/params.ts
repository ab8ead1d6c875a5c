/**
 * Named tensors and the flat vector operations aggregation is built from.
 *
 * A model's trainable state is a list of {@link Tensor}s (a `Float32Array` with a shape and a name).
 * Names are slash-separated paths whose first segment is the parameter group (`image/…`, `text/…`,
 * `audio/…`, `fusion/…`); a client that lacks a modality sends no tensors of that group. Vector
 * operations are flat loops over typed arrays that write into a caller-owned `out` and allocate
 * nothing per element; their inputs are never mutated (an `out` may alias an input).
 *
 * This module is the one home of the primitives every package shares: the norm ({@link norm},
 * {@link parametersNorm}), the clip ({@link clipFactor}, {@link clipToNorm},
 * {@link clipParametersToNorm}), the cosine ({@link cosineSimilarity},
 * {@link cosineSimilarityOfParts}) and the delta ({@link parametersDelta}). Import them; do not
 * write the loop again.
 */
import { FlCoreError } from './errors.js';

/** One named tensor: row-major float32 values with their shape. */
export interface Tensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** An ordered list of named tensors: a model, an update, or one group of either. */
export type Parameters = readonly Tensor[];

/** Where each tensor lives inside the flat vector made by {@link flatten}. */
export interface Layout {
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly offsets: readonly number[];
  readonly size: number;
}

/** Group a tensor belongs to: the name's first path segment, or `'shared'` when it has none. */
export function groupOf(name: string): string {
  const slash = name.indexOf('/');
  return slash > 0 ? name.slice(0, slash) : 'shared';
}

/** Number of elements a shape holds (1 for a scalar's empty shape). */
export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Builds a tensor, checking that `values` holds exactly as many elements as `shape` says. */
export function tensor(name: string, shape: readonly number[], values?: Float32Array): Tensor {
  const size = numElements(shape);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new FlCoreError('PARAMS_MISMATCH', `tensor: shape of '${name}' must be non-negative integers, got [${shape.join(',')}]`);
  }
  const data = values ?? new Float32Array(size);
  if (data.length !== size) {
    throw new FlCoreError('PARAMS_MISMATCH', `tensor: '${name}' has ${data.length} values for shape [${shape.join(',')}] (${size})`);
  }
  return { name, shape: [...shape], values: data };
}

/** Total number of scalars in `params`. */
export function parameterCount(params: Parameters): number {
  let n = 0;
  for (const t of params) n += t.values.length;
  return n;
}

/** Deep copy: new arrays, same names and shapes. */
export function cloneParameters(params: Parameters): Tensor[] {
  return params.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.slice() }));
}

/** Same names and shapes as `params`, all zeros. */
export function zerosLike(params: Parameters): Tensor[] {
  return params.map((t) => ({ name: t.name, shape: [...t.shape], values: new Float32Array(t.values.length) }));
}

/** The layout {@link flatten} uses for `params`. */
export function layoutOf(params: Parameters): Layout {
  const offsets: number[] = [];
  let size = 0;
  for (const t of params) {
    offsets.push(size);
    size += t.values.length;
  }
  return { names: params.map((t) => t.name), shapes: params.map((t) => [...t.shape]), offsets, size };
}

/** Concatenates every tensor's values into one new vector, in list order. */
export function flatten(params: Parameters): Float32Array {
  const out = new Float32Array(parameterCount(params));
  let offset = 0;
  for (const t of params) {
    out.set(t.values, offset);
    offset += t.values.length;
  }
  return out;
}

/**
 * The tensors' values as one view when they lie back to back in one buffer (an update decoded into
 * an arena row, or tensors sliced from one flat vector), else null; lets a caller skip `flatten`'s copy.
 */
export function contiguousView(params: Parameters): Float32Array | null {
  const first = params[0];
  if (!first) return null;
  const buffer = first.values.buffer;
  let end = first.values.byteOffset + first.values.byteLength;
  let length = first.values.length;
  for (let i = 1; i < params.length; i++) {
    const v = params[i]!.values;
    if (v.buffer !== buffer || v.byteOffset !== end) return null;
    end += v.byteLength;
    length += v.length;
  }
  return new Float32Array(buffer, first.values.byteOffset, length);
}

/** Splits a flat vector back into tensors (views are copied, so the result owns its memory). */
export function unflatten(flat: Float32Array, layout: Layout): Tensor[] {
  if (flat.length !== layout.size) {
    throw new FlCoreError('PARAMS_MISMATCH', `unflatten: vector has ${flat.length} values, layout needs ${layout.size}`);
  }
  return layout.names.map((name, i) => {
    const start = layout.offsets[i]!;
    const shape = layout.shapes[i]!;
    return { name, shape: [...shape], values: flat.slice(start, start + numElements(shape)) };
  });
}

/** True when both lists have the same names and shapes in the same order. */
export function sameLayout(a: Parameters, b: Parameters): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.shape.length !== y.shape.length) return false;
    for (let d = 0; d < x.shape.length; d++) if (x.shape[d] !== y.shape[d]) return false;
  }
  return true;
}

/** Throws `PARAMS_MISMATCH` unless `actual` has `expected`'s names and shapes, naming the first difference. */
export function assertSameLayout(expected: Parameters, actual: Parameters, context = 'parameters'): void {
  if (sameLayout(expected, actual)) return;
  const byName = new Map(expected.map((t) => [t.name, t]));
  for (const t of actual) {
    const e = byName.get(t.name);
    if (!e) throw new FlCoreError('PARAMS_MISMATCH', `${context}: unexpected tensor '${t.name}'`);
    if (e.shape.join(',') !== t.shape.join(',')) {
      throw new FlCoreError('PARAMS_MISMATCH', `${context}: '${t.name}' has shape [${t.shape.join(',')}], expected [${e.shape.join(',')}]`);
    }
  }
  throw new FlCoreError(
    'PARAMS_MISMATCH',
    `${context}: expected tensors [${expected.map((t) => t.name).join(', ')}], got [${actual.map((t) => t.name).join(', ')}]`,
  );
}

/** Tensors by group, each group keeping list order. */
export function splitByGroup(params: Parameters): Map<string, Tensor[]> {
  const groups = new Map<string, Tensor[]>();
  for (const t of params) {
    const g = groupOf(t.name);
    const list = groups.get(g);
    if (list) list.push(t);
    else groups.set(g, [t]);
  }
  return groups;
}

/** The groups present in `params`, in first-seen order. */
export function groupsOf(params: Parameters): string[] {
  return [...splitByGroup(params).keys()];
}

// ---------------------------------------------------------------------------------------------
// Flat vector operations. Sums are accumulated in float64 (JS numbers) for accuracy.

function checkLengths(fn: string, a: Float32Array | Float64Array, b: Float32Array | Float64Array): void {
  if (a.length !== b.length) throw new FlCoreError('PARAMS_MISMATCH', `${fn}: lengths differ (${a.length} vs ${b.length})`);
}

/** out = a + b. */
export function add(out: Float32Array, a: Float32Array, b: Float32Array): Float32Array {
  checkLengths('add', a, b);
  checkLengths('add', out, a);
  for (let i = 0; i < out.length; i++) out[i] = a[i]! + b[i]!;
  return out;
}

/** out = a − b. */
export function sub(out: Float32Array, a: Float32Array, b: Float32Array): Float32Array {
  checkLengths('sub', a, b);
  checkLengths('sub', out, a);
  for (let i = 0; i < out.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

/** out = s · a. */
export function scale(out: Float32Array, a: Float32Array, s: number): Float32Array {
  checkLengths('scale', out, a);
  for (let i = 0; i < out.length; i++) out[i] = a[i]! * s;
  return out;
}

/** out += alpha · x (BLAS axpy, in place on `out`). */
export function axpy(out: Float32Array, alpha: number, x: Float32Array): Float32Array {
  checkLengths('axpy', out, x);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! + alpha * x[i]!;
  return out;
}

/** Σ a_i b_i. */
export function dot(a: Float32Array, b: Float32Array): number {
  checkLengths('dot', a, b);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Σ a_i². */
export function squaredNorm(a: Float32Array): number {
  // Four partial sums break the loop-carried dependency (about twice as fast); the order is fixed, so
  // the result is the same on every run.
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  const end = n - (n % 4);
  let i = 0;
  for (; i < end; i += 4) {
    const x0 = a[i]!;
    const x1 = a[i + 1]!;
    const x2 = a[i + 2]!;
    const x3 = a[i + 3]!;
    s0 += x0 * x0;
    s1 += x1 * x1;
    s2 += x2 * x2;
    s3 += x3 * x3;
  }
  for (; i < n; i++) s0 += a[i]! * a[i]!;
  return s0 + s1 + (s2 + s3);
}

/** Euclidean norm ‖a‖₂. */
export function norm(a: Float32Array): number {
  return Math.sqrt(squaredNorm(a));
}

/** ‖a − b‖₂² (b may be a float64 vector, e.g. a running centre). */
export function squaredDistance(a: Float32Array, b: Float32Array | Float64Array): number {
  checkLengths('squaredDistance', a, b);
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s;
}

/** Running sums of a cosine: Σ a_i b_i, Σ a_i², Σ b_i². */
interface CosineSums {
  ab: number;
  aa: number;
  bb: number;
}

function addCosineSums(sums: CosineSums, a: Float32Array, b: Float32Array): void {
  let { ab, aa, bb } = sums;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  sums.ab = ab;
  sums.aa = aa;
  sums.bb = bb;
}

function cosineOf({ ab, aa, bb }: CosineSums): number {
  return cosineFromSums(ab, aa, bb);
}

/** The cosine of two vectors from their dot product and squared norms; 0 when either norm is 0 (as {@link cosineSimilarity} gives it). */
export function cosineFromSums(ab: number, aa: number, bb: number): number {
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/** Cosine similarity of two vectors; 0 when either is all zeros. */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  checkLengths('cosineSimilarity', a, b);
  const sums = { ab: 0, aa: 0, bb: 0 };
  addCosineSums(sums, a, b);
  return cosineOf(sums);
}

/**
 * Cosine similarity of two vectors given in matching parts (e.g. the tensors two updates share),
 * as if each side were concatenated, without concatenating; 0 when either side is all zeros or
 * there are no parts. Throws `PARAMS_MISMATCH` when the two halves of a pair differ in length.
 */
export function cosineSimilarityOfParts(pairs: Iterable<readonly [Float32Array, Float32Array]>): number {
  const sums = { ab: 0, aa: 0, bb: 0 };
  for (const [a, b] of pairs) {
    checkLengths('cosineSimilarityOfParts', a, b);
    addCosineSums(sums, a, b);
  }
  return cosineOf(sums);
}

/** ‖params‖₂ over all tensors together, as if flattened. */
export function parametersNorm(params: Parameters): number {
  let s = 0;
  for (const t of params) s += squaredNorm(t.values);
  return Math.sqrt(s);
}

/**
 * min(1, maxNorm / norm): the factor that scales a vector of L2 norm `norm` into the ball of
 * radius `maxNorm`, 1 when it is already inside. A NaN norm gives 1 and an infinite one 0, so a
 * non-finite vector stays non-finite for a later check to refuse.
 */
export function clipFactor(norm: number, maxNorm: number): number {
  return norm > maxNorm ? maxNorm / norm : 1;
}

function checkMaxNorm(fn: string, maxNorm: number): void {
  if (!(maxNorm > 0 && Number.isFinite(maxNorm))) throw new FlCoreError('AGG_BAD_CONFIG', `${fn}: maxNorm must be finite and > 0, got ${maxNorm}`);
}

/** A vector or a list of tensors scaled into an L2 ball by {@link clipToNorm} or {@link clipParametersToNorm}. */
export interface Clipped<T> {
  /** New arrays: the input scaled by `factor`. */
  readonly clipped: T;
  /** The input's L2 norm before clipping. */
  readonly norm: number;
  /** {@link clipFactor} of that norm: 1 when the input was already inside the ball. */
  readonly factor: number;
}

/** One flat update clipped by {@link clipToNorm}. */
export type ClippedUpdate = Clipped<Float32Array>;

/** Tensors clipped together by {@link clipParametersToNorm}. */
export type ClippedParameters = Clipped<Tensor[]>;

/**
 * Scales `update` into the L2 ball of radius `maxNorm` (unchanged if already inside), as a new
 * vector. Throws `AGG_BAD_CONFIG` unless maxNorm is finite and > 0; never mutates its input.
 */
export function clipToNorm(update: Float32Array, maxNorm: number): ClippedUpdate {
  checkMaxNorm('clipToNorm', maxNorm);
  const n = norm(update);
  const factor = clipFactor(n, maxNorm);
  const clipped = factor === 1 ? update.slice() : scale(new Float32Array(update.length), update, factor);
  return { clipped, norm: n, factor };
}

/**
 * Scales all of `params` together (one L2 norm over every tensor) into the ball of radius
 * `maxNorm`, as new tensors. Throws `AGG_BAD_CONFIG` unless maxNorm is finite and > 0; never
 * mutates its input.
 */
export function clipParametersToNorm(params: Parameters, maxNorm: number): ClippedParameters {
  checkMaxNorm('clipParametersToNorm', maxNorm);
  const n = parametersNorm(params);
  const factor = clipFactor(n, maxNorm);
  const clipped = params.map((t) => ({
    name: t.name,
    shape: [...t.shape],
    values: factor === 1 ? t.values.slice() : scale(new Float32Array(t.values.length), t.values, factor),
  }));
  return { clipped, norm: n, factor };
}

/**
 * local − global, tensor by tensor in `global`'s order, as new tensors: the update a client trained.
 * Throws `PARAMS_MISMATCH` when `local` lacks one of `global`'s tensors or holds it in another shape;
 * tensors only `local` has are ignored.
 */
export function parametersDelta(local: Parameters, global: Parameters): Tensor[] {
  const byName = new Map(local.map((t) => [t.name, t]));
  return global.map((g) => {
    const l = byName.get(g.name);
    if (!l) throw new FlCoreError('PARAMS_MISMATCH', `parametersDelta: local parameters lack '${g.name}'`);
    if (l.shape.join(',') !== g.shape.join(',')) {
      throw new FlCoreError('PARAMS_MISMATCH', `parametersDelta: '${g.name}' has shape [${l.shape.join(',')}] locally, [${g.shape.join(',')}] globally`);
    }
    return { name: g.name, shape: [...g.shape], values: sub(new Float32Array(g.values.length), l.values, g.values) };
  });
}

/** True when no value is NaN or ±Infinity. */
export function allFinite(a: Float32Array): boolean {
  // x · 0 is ±0 for finite x and NaN for NaN and ±Infinity, and NaN survives every sum. Four
  // branch-free accumulators run about 2.5× faster than a per-element test (it guards every robust
  // aggregation, so it is on the hot path); the price is no early exit on the rare bad input.
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const end = a.length & ~3;
  let i = 0;
  for (; i < end; i += 4) {
    s0 += a[i]! * 0;
    s1 += a[i + 1]! * 0;
    s2 += a[i + 2]! * 0;
    s3 += a[i + 3]! * 0;
  }
  for (; i < a.length; i++) s0 += a[i]! * 0;
  return s0 + s1 + s2 + s3 === 0;
}

/** Throws `PARAMS_NON_FINITE` naming the first tensor that holds NaN or ±Infinity. */
export function assertFinite(params: Parameters, context = 'parameters'): void {
  for (const t of params) {
    if (!allFinite(t.values)) throw new FlCoreError('PARAMS_NON_FINITE', `${context}: '${t.name}' holds NaN or Infinity`);
  }
}
