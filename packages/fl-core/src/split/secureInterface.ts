/**
 * The secure interface of FedUMM's device–edge split — Su et al. 2026, arXiv:2601.15390 §3.3 ("differential privacy mechanisms and gradient compression for both forward and backward passes").
 *
 * A device sends per-example cut-layer rows (tokens [B, M, c] with a presence mask [B, M]; later the
 * loss's gradients w.r.t. the fused features [B, d]) to an edge that returns fused features [B, d] and
 * token gradients [B, M, c]. What the device sends is clipped per example and noised
 * ({@link privatizeRows}), then compressed by the codec (kind `split`, tensors of {@link SPLIT_TENSORS});
 * what the edge sends is only compressed. Each receiver checks a payload against what the step
 * expects ({@link decodeSplitPayload}). The (ε, δ) of the device's releases is in channelPrivacy.ts.
 *
 * Failures are `FlCoreError`s; inputs are never modified.
 *   SPLIT_BAD_CONFIG    privatizeRows: clipNorm not > 0 (Infinity only without noise), noiseMultiplier not a
 *                       finite number ≥ 0, numRows not a non-negative integer dividing the values, no rng;
 *                       decodeSplitPayload: a malformed expectation (a caller bug, not bad input)
 *   SPLIT_NON_FINITE    privatizeRows: a row holding NaN or ±Infinity
 *   SPLIT_BAD_PAYLOAD   decodeSplitPayload: a valid codec message of another kind than `split`
 *   SPLIT_WRONG_SENDER  decodeSplitPayload: another task or another client than expected
 *   SPLIT_WRONG_STEP    decodeSplitPayload: another step than expected
 *   SPLIT_BAD_SHAPE     decodeSplitPayload: an expected tensor missing, an unexpected one, or another shape
 *   CODEC_*             from the codec, unchanged: over maxBytes, malformed, non-finite, checksum, a tensor
 *                       not named split/<name> …
 */
import { decodeUpdate, encodedByteLength, encodeUpdate } from '../codec/codec.js';
import type { Crc32Function, DecodeLimits, EncodeOptions, UpdateEncoding, UpdateMessage } from '../codec/codec.js';
import { FlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { clipFactor, norm } from '../params.js';
import type { Parameters } from '../params.js';
import { gaussian } from '../rng.js';
import type { Rng } from '../rng.js';
import { isSplitTensorName } from './names.js';

/** How one direction of the interface releases per-example rows. */
export interface RowRelease {
  /** Per-example L2 clip C > 0; Infinity (no clipping) only with noiseMultiplier 0. */
  readonly clipNorm: number;
  /** z ≥ 0: every element gets Gaussian noise of std z · C; 0 adds none. */
  readonly noiseMultiplier: number;
}

/** What {@link privatizeRows} returns. */
export interface PrivatizedRows {
  /** A new array: the rows clipped, then noised. */
  readonly values: Float32Array;
  /** Rows whose L2 norm exceeded C and were scaled down. */
  readonly numClipped: number;
}

/** One half of a split step, as {@link encodeSplitPayload} sends it. */
export interface SplitPayload {
  readonly taskId: string;
  readonly clientId: string;
  /** The step number, an integer in [0, 2^32); travels as the codec's `round`. */
  readonly step: number;
  readonly encoding: UpdateEncoding;
  /** Tensors named `split/<name>` (see {@link SPLIT_TENSORS}); values finite. */
  readonly tensors: Parameters;
}

/** One tensor a step expects: its name and exact shape. */
export interface SplitTensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** What {@link decodeSplitPayload} checks a payload against. */
export interface SplitExpectation {
  readonly taskId: string;
  /** The device the step belongs to (sender of tokens and fused gradients, receiver of the edge's half). */
  readonly clientId: string;
  readonly step: number;
  /** Largest payload accepted, in bytes; checked before any byte is read. */
  readonly maxBytes: number;
  /** Exactly these tensors, each exactly this shape, in any order. */
  readonly tensors: readonly SplitTensorSpec[];
  /** CRC-32 the codec verifies with (e.g. a native one on a server); fl-core's portable one by default. */
  readonly crc32?: Crc32Function;
}

const U32_MAX = 0xffffffff;

function fail(code: FlCoreErrorCode, message: string): never {
  throw new FlCoreError(code, message);
}

function quoted(s: unknown): string {
  return typeof s === 'string' ? JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s) : typeof s;
}

function checkRelease(fn: string, release: RowRelease): void {
  if (typeof release !== 'object' || release === null) fail('SPLIT_BAD_CONFIG', `${fn}: release must be { clipNorm, noiseMultiplier }`);
  const { clipNorm, noiseMultiplier } = release;
  if (!(typeof noiseMultiplier === 'number' && noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier)))
    fail('SPLIT_BAD_CONFIG', `${fn}: noiseMultiplier must be a finite number ≥ 0, got ${String(noiseMultiplier)}`);
  if (!(typeof clipNorm === 'number' && clipNorm > 0)) fail('SPLIT_BAD_CONFIG', `${fn}: clipNorm must be > 0, got ${String(clipNorm)}`);
  // Noise is z · C: without a finite clip there is no sensitivity to scale it to.
  if (noiseMultiplier > 0 && !Number.isFinite(noiseMultiplier * clipNorm))
    fail('SPLIT_BAD_CONFIG', `${fn}: clipNorm ${clipNorm} with noiseMultiplier ${noiseMultiplier} gives no finite noise std; use a finite clipNorm`);
}

/**
 * Clips each of `numRows` contiguous rows of `values` to L2 norm ≤ C, then adds i.i.d. N(0, (zC)²) to
 * every element, drawing in element order; returns a new array and never mutates `values`.
 */
export function privatizeRows(values: Float32Array, numRows: number, rng: Rng, release: RowRelease): PrivatizedRows {
  const fn = 'privatizeRows';
  checkRelease(fn, release);
  if (!(values instanceof Float32Array)) fail('SPLIT_BAD_CONFIG', `${fn}: values must be a Float32Array`);
  if (!Number.isSafeInteger(numRows) || numRows < 0) fail('SPLIT_BAD_CONFIG', `${fn}: numRows must be an integer ≥ 0, got ${numRows}`);
  if (numRows === 0 ? values.length !== 0 : values.length % numRows !== 0)
    fail('SPLIT_BAD_CONFIG', `${fn}: ${values.length} values do not split into ${numRows} rows of equal length`);
  const { clipNorm, noiseMultiplier } = release;
  if (noiseMultiplier > 0 && typeof rng !== 'function') fail('SPLIT_BAD_CONFIG', `${fn}: rng must be a function, got ${typeof rng}`);

  const rowLength = numRows === 0 ? 0 : values.length / numRows;
  const out = new Float32Array(values.length);
  let numClipped = 0;
  for (let r = 0; r < numRows; r++) {
    const start = r * rowLength;
    const row = values.subarray(start, start + rowLength);
    // A float32 squared cannot overflow float64, so the norm is finite exactly when the row is.
    const rowNorm = norm(row);
    if (!Number.isFinite(rowNorm)) fail('SPLIT_NON_FINITE', `${fn}: row ${r} holds NaN or Infinity`);
    const factor = clipFactor(rowNorm, clipNorm);
    if (factor === 1) {
      out.set(row, start);
      continue;
    }
    // float32 rounding may leave the row up to ~1e-7 (relative) over C; that slack is far below the
    // noise and, as in DP-SGD implementations, not accounted for.
    numClipped++;
    for (let i = 0; i < rowLength; i++) out[start + i] = row[i]! * factor;
  }
  if (noiseMultiplier > 0) {
    const std = noiseMultiplier * clipNorm;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + std * gaussian(rng);
  }
  return { values: out, numClipped };
}

function splitMessage(msg: SplitPayload): UpdateMessage {
  return { kind: 'split', taskId: msg.taskId, clientId: msg.clientId, round: msg.step, encoding: msg.encoding, tensors: msg.tensors };
}

/** Encodes one half of a split step as a codec message of kind `split` (round = step); codec errors propagate. */
export function encodeSplitPayload(msg: SplitPayload, options?: EncodeOptions): Uint8Array {
  return encodeUpdate(splitMessage(msg), options);
}

/** Exact size in bytes of `encodeSplitPayload(msg)`, without encoding (for cost accounting). */
export function splitPayloadBytes(msg: SplitPayload): number {
  return encodedByteLength(splitMessage(msg));
}

function checkExpectation(fn: string, expect: SplitExpectation): Map<string, readonly number[]> {
  if (typeof expect !== 'object' || expect === null) fail('SPLIT_BAD_CONFIG', `${fn}: an expectation is required`);
  if (typeof expect.taskId !== 'string' || expect.taskId === '') fail('SPLIT_BAD_CONFIG', `${fn}: taskId must be a non-empty string`);
  if (typeof expect.clientId !== 'string' || expect.clientId === '') fail('SPLIT_BAD_CONFIG', `${fn}: clientId must be a non-empty string`);
  if (!Number.isInteger(expect.step) || expect.step < 0 || expect.step > U32_MAX)
    fail('SPLIT_BAD_CONFIG', `${fn}: step must be an integer in [0, 2^32), got ${String(expect.step)}`);
  if (!Array.isArray(expect.tensors) || expect.tensors.length === 0) fail('SPLIT_BAD_CONFIG', `${fn}: tensors must be a non-empty array`);
  const shapes = new Map<string, readonly number[]>();
  for (const t of expect.tensors) {
    const name: unknown = typeof t === 'object' && t !== null ? t.name : undefined;
    if (typeof name !== 'string' || !isSplitTensorName(name)) fail('SPLIT_BAD_CONFIG', `${fn}: expected tensor ${quoted(name)} is not named split/<name>`);
    if (shapes.has(t.name)) fail('SPLIT_BAD_CONFIG', `${fn}: tensor '${t.name}' is expected twice`);
    if (!Array.isArray(t.shape) || !t.shape.every((d: number) => Number.isInteger(d) && d >= 0 && d <= U32_MAX))
      fail('SPLIT_BAD_CONFIG', `${fn}: tensor '${t.name}' needs a shape of integers in [0, 2^32)`);
    shapes.set(t.name, t.shape);
  }
  return shapes;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Decodes one half of a split step with the codec's hostile-input decoder and checks it is the
 * expected step of the expected task and client, carrying exactly the expected tensors and shapes;
 * returns name → values in the expectation's order.
 */
export function decodeSplitPayload(bytes: Uint8Array, expect: SplitExpectation): Map<string, Float32Array> {
  const fn = 'decodeSplitPayload';
  const shapes = checkExpectation(fn, expect);
  const limits: DecodeLimits = expect.crc32 === undefined ? { maxBytes: expect.maxBytes } : { maxBytes: expect.maxBytes, crc32: expect.crc32 };
  // Bounded by maxBytes before anything is read; refuses non-finite values and names other than split/<name>.
  const decoded = decodeUpdate(bytes, limits);
  if (decoded.kind !== 'split') fail('SPLIT_BAD_PAYLOAD', `${fn}: expected a split message, got a ${decoded.kind} message`);
  if (decoded.taskId !== expect.taskId) fail('SPLIT_WRONG_SENDER', `${fn}: message is for task ${quoted(decoded.taskId)}, expected ${quoted(expect.taskId)}`);
  if (decoded.clientId !== expect.clientId)
    fail('SPLIT_WRONG_SENDER', `${fn}: message is for client ${quoted(decoded.clientId)}, expected ${quoted(expect.clientId)}`);
  if (decoded.round !== expect.step) fail('SPLIT_WRONG_STEP', `${fn}: message is for step ${decoded.round}, expected ${expect.step}`);

  const received = new Map<string, Float32Array>();
  for (const t of decoded.tensors) {
    const shape = shapes.get(t.name);
    if (shape === undefined) fail('SPLIT_BAD_SHAPE', `${fn}: unexpected tensor '${t.name}'`);
    if (!sameShape(t.shape, shape)) fail('SPLIT_BAD_SHAPE', `${fn}: '${t.name}' has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`);
    received.set(t.name, t.values);
  }
  // Names are unique in a decoded message, so equal counts mean every expected tensor came.
  if (received.size !== shapes.size) {
    const missing = [...shapes.keys()].filter((name) => !received.has(name));
    fail('SPLIT_BAD_SHAPE', `${fn}: missing tensors [${missing.join(', ')}]`);
  }
  return new Map([...shapes.keys()].map((name) => [name, received.get(name)!]));
}
