/**
 * Wire format for a client update (a delta), a global model, a client's representations of a
 * public batch (FedAFD family), or one half of a device–edge split step (FedUMM); int8 is symmetric per-tensor
 * quantisation — Wu, Judd, Zhang, Isaev & Micikevicius, 2020, "Integer Quantization for Deep Learning
 * Inference: Principles and Empirical Evaluation" (arXiv:2004.09602).
 *
 * Layout, version 1. Integers are little-endian and unsigned; `str` is a u8 length followed by that many
 * printable ASCII bytes (0x20–0x7e), so no text codec is needed and no string exceeds 255 characters.
 *
 *   magic "CHRS" | version u16 | kind u8 (1 delta, 2 model, 3 representations, 4 split) | encoding u8 (1 fp32, 2 fp16, 3 int8)
 *   | round u32 (the step number for a split) | taskId str (non-empty)
 *   | clientId str (non-empty for a delta, representations or split, empty for a model)
 *   | tensorCount u32
 *   per tensor: name str (non-empty, unique) | rank u8 (≤ 8) | dims u32 × rank
 *               | scale f32 (int8 only) | elementCount u32 (= product of dims) | payload
 *   crc32 u32 of every byte before it
 *
 * A `representations` message carries only tensors named `rep/<modality>` (a modality of
 * MODALITIES) of rank 2, [B, D]; which modalities and which B and D a round expects is checked by
 * `validateRepresentations`, not here.
 *
 * A `split` message carries the cut-layer tensors of one step of a device–edge split (FedUMM, Su et al.
 * 2026, arXiv:2601.15390 §3.3), named `split/<name>` (see split/names.ts), with the step number in
 * `round`; which tensors and shapes a step expects is checked by `decodeSplitPayload`, not here.
 *
 * Payloads: fp32 as is; fp16 round-to-nearest-even (see fp16.ts); int8 as q ∈ [−127, 127] with
 * value = q · scale and scale = maxAbs / 127 (float32, nudged up when rounding would push a value past 127).
 * Error bounds: fp32 is exact; fp16 relative error ≤ 2^-11 for normal-range values (absolute ≤ 2^-25
 * below 2^-14); int8 absolute error ≤ scale / 2 per element, plus the float32 rounding of q · scale
 * (≤ 2^-24 relative).
 *
 * The decoder is written for hostile input. It rejects anything longer than `maxBytes` before reading
 * it, then walks the structure checking every declared size against the bytes left (and the limits)
 * before allocating, then verifies the checksum, and only then allocates and decodes the payloads.
 * Every failure is an `FlCoreError` with a `CODEC_*` code; the input is never modified.
 *   CODEC_TOO_LARGE       input over maxBytes; more tensors than maxTensors; more elements than maxElements
 *   CODEC_TRUNCATED       input ends inside a fixed-width field (the last 4 bytes are always the checksum)
 *   CODEC_BAD_LENGTH      a string, tensor count or payload declares more bytes than remain
 *   CODEC_BAD_MAGIC / CODEC_BAD_VERSION / CODEC_BAD_ENCODING   unknown magic, version, encoding
 *   CODEC_BAD_HEADER      unknown kind, bad or missing string, duplicate tensor name, negative scale,
 *                         a representations tensor not named rep/<modality>, a split tensor not named split/<name>
 *   CODEC_BAD_SHAPE       rank over 8, dims whose product overflows u32 or differs from elementCount,
 *                         a representations tensor whose rank is not 2
 *   CODEC_NON_FINITE      NaN/±Infinity in a payload or an int8 scale
 *   CODEC_OUT_OF_RANGE    an int8 scale so large that 127 · scale overflows float32 (encoder: fp16 overflow)
 *   CODEC_BAD_ENCODING    also: an int8 payload byte of −128, which symmetric quantisation never writes
 *   CODEC_CHECKSUM        CRC-32 mismatch
 *   CODEC_TRAILING_BYTES  bytes between the last tensor and the checksum
 *   CODEC_BAD_CONFIG      invalid limits or options (a caller bug, not bad input)
 *
 * The checksum function is injectable (`DecodeLimits.crc32`, `EncodeOptions.crc32`) so a host with a
 * native CRC-32 (Node's `zlib.crc32`) can pass it in while this module stays free of I/O and host APIs;
 * the default is the portable crc32.ts. An injected function must compute the same CRC-32: it only
 * replaces how the value is computed, never whether it is compared.
 */
import { FlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { squaredNorm } from '../params.js';
import { modalityOfRepresentationTensor } from '../representation/names.js';
import { isSplitTensorName } from '../split/names.js';
import type { Layout, Parameters, Tensor } from '../params.js';
import { crc32 } from './crc32.js';
import { FP16_MAX, HALF_OVERFLOW, halfFromFloatBits, halfToFloatTable } from './fp16.js';

/** The bytes every message starts with: ASCII "CHRS". */
export const CODEC_MAGIC = 'CHRS';
/** The format version this module writes and the only one it reads. */
export const CODEC_FORMAT_VERSION = 1;
/** Longest task id, client id or tensor name (bounded by the u8 length prefix). */
export const CODEC_MAX_STRING_LENGTH = 255;
/** Highest tensor rank the format carries. */
export const CODEC_MAX_RANK = 8;

/**
 * What a message carries: a client's update delta, the coordinator's global model, a client's
 * representations of the round's public batch (tensors `rep/<modality>`, [B, D]), or one half of a
 * device–edge split step (tensors `split/<name>`).
 */
export type UpdateKind = 'delta' | 'model' | 'representations' | 'split';
/** How tensor values are stored on the wire. */
export type UpdateEncoding = 'fp32' | 'fp16' | 'int8';

/** A message to encode. */
export interface UpdateMessage {
  /**
   * `'delta'` for a client update, `'model'` for a global model, `'representations'` for a client's
   * public-batch representations, `'split'` for cut-layer tensors of a device–edge split step.
   */
  readonly kind: UpdateKind;
  /** Task the message belongs to: 1–255 printable ASCII characters. */
  readonly taskId: string;
  /** Server round (a split's step number), an integer in [0, 2^32). */
  readonly round: number;
  /** Sending client for a delta, representations or split (1–255 printable ASCII characters); `''` for a model. */
  readonly clientId: string;
  /** Wire encoding of every tensor's values. */
  readonly encoding: UpdateEncoding;
  /** Tensors to send, in order; names unique, values finite. */
  readonly tensors: Parameters;
}

/** The header of a decoded message: everything but the tensor values. */
export interface DecodedUpdateHeader {
  readonly kind: UpdateKind;
  readonly taskId: string;
  readonly round: number;
  readonly clientId: string;
  readonly encoding: UpdateEncoding;
}

/** A decoded message: header fields plus float32 tensors (dequantised when sent as fp16 or int8). */
export interface DecodedUpdate extends DecodedUpdateHeader {
  readonly tensors: Tensor[];
}

/**
 * CRC-32 (zlib/PNG polynomial) of `bytes` as an unsigned 32-bit integer, e.g. Node's `zlib.crc32`;
 * must equal {@link crc32} on every input.
 */
export type Crc32Function = (bytes: Uint8Array) => number;

/** Options of {@link encodeUpdate}. */
export interface EncodeOptions {
  /** Checksum to write (default: the portable {@link crc32}). */
  readonly crc32?: Crc32Function;
}

/** Bounds the decoder enforces before allocating anything, and the checksum it verifies with. */
export interface DecodeLimits {
  /** Longest input accepted, in bytes; checked before any byte is read. */
  readonly maxBytes: number;
  /** Most tensors accepted (default: as many as the bytes can hold). */
  readonly maxTensors?: number;
  /** Most scalars accepted over all tensors (default: as many as the bytes can hold). */
  readonly maxElements?: number;
  /**
   * Checksum to verify with (default: the portable {@link crc32}). Decoding checksums every byte it
   * accepts, so on a server a native CRC-32 is most of the difference in decode time.
   */
  readonly crc32?: Crc32Function;
}

const MAGIC_BYTES = [0x43, 0x48, 0x52, 0x53] as const;
const KIND_CODES: Readonly<Record<UpdateKind, number>> = { delta: 1, model: 2, representations: 3, split: 4 };
const KINDS: readonly (UpdateKind | undefined)[] = [undefined, 'delta', 'model', 'representations', 'split'];
const ENCODING_CODES: Readonly<Record<UpdateEncoding, number>> = { fp32: 1, fp16: 2, int8: 3 };
const ENCODINGS: readonly (UpdateEncoding | undefined)[] = [undefined, 'fp32', 'fp16', 'int8'];
const BYTES_PER_ELEMENT: Readonly<Record<UpdateEncoding, number>> = { fp32: 4, fp16: 2, int8: 1 };
const U32_MAX = 0xffffffff;
const F32_MIN_SUBNORMAL = 2 ** -149;
// magic, version, kind, encoding, round, two string lengths, tensor count
const FIXED_HEADER_BYTES = 4 + 2 + 1 + 1 + 4 + 1 + 1 + 4;
const CHECKSUM_BYTES = 4;

// A fp32 payload is a plain memcpy on little-endian hosts (all current browsers and Node platforms);
// the DataView path keeps the format correct elsewhere.
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function fail(code: FlCoreErrorCode, message: string): never {
  throw new FlCoreError(code, message);
}

function isAsciiString(s: unknown, minLength: number): s is string {
  if (typeof s !== 'string' || s.length < minLength || s.length > CODEC_MAX_STRING_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// A representations message names each tensor after a modality and carries a B × D matrix.
function checkRepresentationTensor(fn: string, name: string, rank: number): void {
  if (modalityOfRepresentationTensor(name) === null) fail('CODEC_BAD_HEADER', `${fn}: representations tensor '${name}' is not named rep/<modality>`);
  if (rank !== 2) fail('CODEC_BAD_SHAPE', `${fn}: representations tensor '${name}' has rank ${rank}, expected 2 ([B, D])`);
}

// A split message names each tensor split/<name>; which names and shapes a step needs is the receiver's check.
function checkSplitTensor(fn: string, name: string): void {
  if (!isSplitTensorName(name)) fail('CODEC_BAD_HEADER', `${fn}: split tensor '${name}' is not named split/<name>`);
}

function preview(s: unknown): string {
  return typeof s === 'string' ? JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s) : typeof s;
}

// ---------------------------------------------------------------------------------------------
// Encoding

interface Plan {
  readonly byteLength: number;
  readonly kindCode: number;
  readonly encodingCode: number;
}

// Structural validation shared by encodeUpdate and encodedByteLength; values are checked while writing.
function plan(msg: UpdateMessage): Plan {
  // hasOwn first: a kind such as 'toString' must not resolve through the prototype.
  if (!Object.hasOwn(KIND_CODES, msg.kind)) fail('CODEC_BAD_HEADER', `encodeUpdate: unknown kind ${preview(msg.kind)}`);
  if (!Object.hasOwn(ENCODING_CODES, msg.encoding)) fail('CODEC_BAD_ENCODING', `encodeUpdate: unknown encoding ${preview(msg.encoding)}`);
  const kindCode = KIND_CODES[msg.kind];
  const encodingCode = ENCODING_CODES[msg.encoding];
  if (!Number.isInteger(msg.round) || msg.round < 0 || msg.round > U32_MAX)
    fail('CODEC_BAD_HEADER', `encodeUpdate: round must be an integer in [0, 2^32), got ${msg.round}`);
  if (!isAsciiString(msg.taskId, 1)) fail('CODEC_BAD_HEADER', `encodeUpdate: taskId must be 1–255 printable ASCII characters, got ${preview(msg.taskId)}`);
  if (msg.kind !== 'model' ? !isAsciiString(msg.clientId, 1) : msg.clientId !== '') {
    fail(
      'CODEC_BAD_HEADER',
      `encodeUpdate: clientId must be ${msg.kind !== 'model' ? `1–255 printable ASCII characters for ${msg.kind}` : "'' for a model"}, got ${preview(msg.clientId)}`,
    );
  }
  if (!Array.isArray(msg.tensors) || msg.tensors.length > U32_MAX) fail('CODEC_BAD_HEADER', 'encodeUpdate: tensors must be an array');

  const width = BYTES_PER_ELEMENT[msg.encoding];
  const scaleBytes = msg.encoding === 'int8' ? 4 : 0;
  let byteLength = FIXED_HEADER_BYTES + msg.taskId.length + msg.clientId.length + CHECKSUM_BYTES;
  const seen = new Set<string>();
  for (const t of msg.tensors) {
    if (!isAsciiString(t.name, 1)) fail('CODEC_BAD_HEADER', `encodeUpdate: tensor name must be 1–255 printable ASCII characters, got ${preview(t.name)}`);
    if (seen.has(t.name)) fail('CODEC_BAD_HEADER', `encodeUpdate: duplicate tensor name '${t.name}'`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || t.shape.length > CODEC_MAX_RANK) fail('CODEC_BAD_SHAPE', `encodeUpdate: '${t.name}' must have rank ≤ ${CODEC_MAX_RANK}`);
    if (msg.kind === 'representations') checkRepresentationTensor('encodeUpdate', t.name, t.shape.length);
    else if (msg.kind === 'split') checkSplitTensor('encodeUpdate', t.name);
    let elements = 1;
    for (const d of t.shape) {
      if (!Number.isInteger(d) || d < 0 || d > U32_MAX)
        fail('CODEC_BAD_SHAPE', `encodeUpdate: '${t.name}' has dimension ${d}, expected an integer in [0, 2^32)`);
      elements *= d;
    }
    if (!(t.values instanceof Float32Array) || t.values.length !== elements) {
      fail(
        'CODEC_BAD_SHAPE',
        `encodeUpdate: '${t.name}' has shape [${t.shape.join(',')}] (${elements} elements) but ${t.values instanceof Float32Array ? t.values.length : 'no Float32Array of'} values`,
      );
    }
    byteLength += 1 + t.name.length + 1 + 4 * t.shape.length + scaleBytes + 4 + width * elements;
  }
  return { byteLength, kindCode, encodingCode };
}

/** Exact size in bytes of `encodeUpdate(msg)`, without encoding; throws the same structural errors. */
export function encodedByteLength(msg: UpdateMessage): number {
  return plan(msg).byteLength;
}

function writeString(out: Uint8Array, pos: number, s: string): number {
  out[pos++] = s.length;
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}

function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (x - x !== 0) return i;
  }
  return -1;
}

/**
 * Symmetric int8 scale for a tensor whose largest magnitude is `maxAbs`: maxAbs / 127 in float32, nudged
 * up by one float32 step when rounding (which only bites for subnormal scales) would leave
 * maxAbs / scale ≥ 127.5, i.e. a quantised value past 127.
 */
export function int8ScaleFor(maxAbs: number): number {
  if (maxAbs === 0) return 0;
  let s = Math.fround(maxAbs / 127);
  if (s === 0) s = F32_MIN_SUBNORMAL;
  if (maxAbs / s >= 127.5) {
    // Positive float32s are ordered like their bit patterns, so +1 on the bits is the next float32 up.
    const bits = new Uint32Array(new Float32Array([s]).buffer);
    bits[0] = bits[0]! + 1;
    s = new Float32Array(bits.buffer)[0]!;
  }
  return s;
}

// True when 127 · scale rounds to Infinity in float32, i.e. the largest quantised value would not be finite.
function int8ScaleOverflows(scale: number): boolean {
  return Math.fround(127 * scale) === Number.POSITIVE_INFINITY;
}

/** Encodes `msg` into a new buffer; refuses bad headers, names, shapes, non-finite or unrepresentable values. */
export function encodeUpdate(msg: UpdateMessage, options: EncodeOptions = {}): Uint8Array {
  const checksum = checkCrc32('encodeUpdate', options.crc32);
  const { byteLength, kindCode, encodingCode } = plan(msg);
  const out = new Uint8Array(byteLength);
  const view = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  view.setUint16(4, CODEC_FORMAT_VERSION, true);
  out[6] = kindCode;
  out[7] = encodingCode;
  view.setUint32(8, msg.round, true);
  let pos = writeString(out, 12, msg.taskId);
  pos = writeString(out, pos, msg.clientId);
  view.setUint32(pos, msg.tensors.length, true);
  pos += 4;

  for (const t of msg.tensors) {
    const values = t.values;
    const bad = firstNonFinite(values);
    if (bad >= 0) fail('CODEC_NON_FINITE', `encodeUpdate: '${t.name}'[${bad}] is ${values[bad]}`);
    pos = writeString(out, pos, t.name);
    out[pos++] = t.shape.length;
    for (const d of t.shape) {
      view.setUint32(pos, d, true);
      pos += 4;
    }
    if (msg.encoding === 'int8') pos = writeInt8(out, view, pos, values, t.name);
    else {
      view.setUint32(pos, values.length, true);
      pos += 4;
      pos = msg.encoding === 'fp32' ? writeFp32(out, view, pos, values) : writeFp16(view, pos, values, t.name);
    }
  }
  view.setUint32(pos, checksum(out.subarray(0, pos)) >>> 0, true);
  return out;
}

function writeFp32(out: Uint8Array, view: DataView, pos: number, values: Float32Array): number {
  if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), pos);
  else for (let i = 0; i < values.length; i++) view.setFloat32(pos + 4 * i, values[i]!, true);
  return pos + 4 * values.length;
}

function writeFp16(view: DataView, pos: number, values: Float32Array, name: string): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const h = halfFromFloatBits(bits[i]!);
    // Non-finite values were refused before writing, so the only failure left is overflow.
    if (h === HALF_OVERFLOW) fail('CODEC_OUT_OF_RANGE', `encodeUpdate: '${name}'[${i}] = ${values[i]} is beyond the fp16 range (±${FP16_MAX})`);
    view.setUint16(pos + 2 * i, h, true);
  }
  return pos + 2 * values.length;
}

function writeInt8(out: Uint8Array, view: DataView, pos: number, values: Float32Array, name: string): number {
  let maxAbs = 0;
  for (let i = 0; i < values.length; i++) maxAbs = Math.max(maxAbs, Math.abs(values[i]!));
  const s = int8ScaleFor(maxAbs);
  if (int8ScaleOverflows(s)) {
    fail('CODEC_OUT_OF_RANGE', `encodeUpdate: '${name}' has magnitude ${maxAbs}, too close to the float32 limit for an int8 scale`);
  }
  view.setFloat32(pos, s, true);
  view.setUint32(pos + 4, values.length, true);
  pos += 8;
  for (let i = 0; i < values.length; i++) {
    // Division, not multiplication by 1/s: the scale/2 error bound is stated for round(x / s).
    const v = s === 0 ? 0 : values[i]! / s;
    const q = v < 0 ? -Math.round(-v) : Math.round(v);
    out[pos + i] = Math.max(-127, Math.min(127, q)) & 0xff;
  }
  return pos + values.length;
}

// ---------------------------------------------------------------------------------------------
// Decoding

function checkLimit(fn: string, name: string, value: number | undefined, required: boolean): number {
  if (value === undefined && !required) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || !(Number.isSafeInteger(value) || value === Number.POSITIVE_INFINITY) || value < 0) {
    fail('CODEC_BAD_CONFIG', `${fn}: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

function checkCrc32(fn: string, value: unknown): Crc32Function {
  if (value === undefined) return crc32;
  if (typeof value !== 'function') fail('CODEC_BAD_CONFIG', `${fn}: crc32 must be a function, got ${typeof value}`);
  return value as Crc32Function;
}

// Reads fixed-width fields from the body, i.e. everything before the trailing 4-byte checksum.
// Each read names its field for the error it may raise; the name is put together only then (a
// server decodes thousands of uploads a second, and most of them are sound).
class BodyReader {
  pos = 0;
  readonly view: DataView;
  /** The tensor the next reads belong to: its index until its name is read, then its name (neither: the header). */
  tensorIndex = -1;
  tensorName: string | null = null;

  constructor(
    readonly fn: string,
    readonly bytes: Uint8Array,
    readonly end: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  remaining(): number {
    return Math.max(0, this.end - this.pos);
  }

  /** The field `what` (with `index`, e.g. a dimension's) of the current tensor or of the header, for an error message. */
  label(what: string, index?: number): string {
    const field = index === undefined ? what : `${what} ${index}`;
    return this.tensorName !== null ? `'${this.tensorName}' ${field}` : this.tensorIndex >= 0 ? `tensor ${this.tensorIndex} ${field}` : field;
  }

  need(n: number, what: string, index?: number): void {
    if (this.pos + n > this.end) {
      fail('CODEC_TRUNCATED', `${this.fn}: ${this.label(what, index)} needs ${n} bytes at offset ${this.pos}, but the body ends at ${Math.max(0, this.end)}`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string, index?: number): number {
    this.need(4, what, index);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  // Length-prefixed printable ASCII; the length is checked against the bytes left before reading.
  str(what: string, minLength: number): string {
    if (this.pos + 1 > this.end) {
      fail('CODEC_TRUNCATED', `${this.fn}: ${this.label(what)} length needs 1 bytes at offset ${this.pos}, but the body ends at ${Math.max(0, this.end)}`);
    }
    const len = this.bytes[this.pos++]!;
    if (len > this.remaining()) fail('CODEC_BAD_LENGTH', `${this.fn}: ${this.label(what)} declares ${len} bytes, ${this.remaining()} remain`);
    if (len < minLength) fail('CODEC_BAD_HEADER', `${this.fn}: ${this.label(what)} is empty`);
    const start = this.pos;
    for (let i = start; i < start + len; i++) {
      const c = this.bytes[i]!;
      if (c < 0x20 || c > 0x7e)
        fail('CODEC_BAD_HEADER', `${this.fn}: ${this.label(what)} has byte 0x${c.toString(16)} at offset ${i}; only printable ASCII is allowed`);
    }
    this.pos += len;
    // apply, not spread: a few times faster for names this short, and a server decodes dozens per upload.
    return String.fromCharCode.apply(null, this.bytes.subarray(start, start + len) as unknown as number[]);
  }
}

interface TensorEntry {
  readonly name: string;
  readonly shape: number[];
  readonly count: number;
  readonly scale: number;
  readonly offset: number;
}

/** A message whose structure and checksum have been verified; payloads not yet read. */
interface ParsedMessage {
  readonly header: DecodedUpdateHeader;
  readonly entries: readonly TensorEntry[];
  readonly view: DataView;
}

/**
 * Pass 1 of both decoders: limits, header, every tensor's structure against the bytes left, then the
 * checksum. Allocation is bounded by the input size (at most one entry per minimal tensor); nothing
 * is written anywhere.
 */
function parseMessage(fn: string, bytes: Uint8Array, limits: DecodeLimits): ParsedMessage {
  if (typeof limits !== 'object' || limits === null) fail('CODEC_BAD_CONFIG', `${fn}: limits are required`);
  const maxBytes = checkLimit(fn, 'maxBytes', limits.maxBytes, true);
  const maxTensors = checkLimit(fn, 'maxTensors', limits.maxTensors, false);
  const maxElements = checkLimit(fn, 'maxElements', limits.maxElements, false);
  const checksum = checkCrc32(fn, limits.crc32);
  if (!(bytes instanceof Uint8Array)) fail('CODEC_BAD_CONFIG', `${fn}: input must be a Uint8Array`);
  if (bytes.length > maxBytes) fail('CODEC_TOO_LARGE', `${fn}: input is ${bytes.length} bytes, limit is ${maxBytes}`);

  if (bytes.length < MAGIC_BYTES.length) fail('CODEC_TRUNCATED', `${fn}: input is ${bytes.length} bytes, shorter than the magic`);
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) fail('CODEC_BAD_MAGIC', `${fn}: input does not start with "${CODEC_MAGIC}"`);
  }
  const r = new BodyReader(fn, bytes, bytes.length - CHECKSUM_BYTES);
  r.pos = MAGIC_BYTES.length;

  const version = r.u16('version');
  if (version !== CODEC_FORMAT_VERSION) fail('CODEC_BAD_VERSION', `${fn}: format version ${version}, this decoder reads ${CODEC_FORMAT_VERSION}`);
  const kindCode = r.u8('kind');
  const kind = KINDS[kindCode];
  if (kind === undefined) fail('CODEC_BAD_HEADER', `${fn}: unknown kind ${kindCode}`);
  const encodingCode = r.u8('encoding');
  const encoding = ENCODINGS[encodingCode];
  if (encoding === undefined) fail('CODEC_BAD_ENCODING', `${fn}: unknown encoding ${encodingCode}`);
  const round = r.u32('round');
  const taskId = r.str('taskId', 1);
  const clientId = r.str('clientId', 0);
  if ((kind !== 'model') !== clientId.length > 0) {
    fail('CODEC_BAD_HEADER', `${fn}: a ${kind} message must ${kind !== 'model' ? 'name its client' : 'have an empty clientId'}`);
  }

  const tensorCount = r.u32('tensor count');
  if (tensorCount > maxTensors) fail('CODEC_TOO_LARGE', `${fn}: ${tensorCount} tensors, limit is ${maxTensors}`);
  const width = BYTES_PER_ELEMENT[encoding];
  const scaleBytes = encoding === 'int8' ? 4 : 0;
  // Smallest possible tensor: a 1-character name, rank 0, the element count and the scale if any.
  const minTensorBytes = 1 + 1 + 1 + scaleBytes + 4;
  if (tensorCount * minTensorBytes > r.remaining()) {
    fail('CODEC_BAD_LENGTH', `${fn}: ${tensorCount} tensors cannot fit in the ${r.remaining()} bytes that remain`);
  }

  const entries: TensorEntry[] = [];
  const names = new Set<string>();
  let totalElements = 0;
  for (let k = 0; k < tensorCount; k++) {
    r.tensorIndex = k;
    r.tensorName = null;
    const name = r.str('name', 1);
    if (names.has(name)) fail('CODEC_BAD_HEADER', `${fn}: duplicate tensor name '${name}'`);
    names.add(name);
    r.tensorName = name;
    const rank = r.u8('rank');
    if (rank > CODEC_MAX_RANK) fail('CODEC_BAD_SHAPE', `${fn}: '${name}' has rank ${rank}, at most ${CODEC_MAX_RANK} is allowed`);
    if (kind === 'representations') checkRepresentationTensor(fn, name, rank);
    else if (kind === 'split') checkSplitTensor(fn, name);
    const shape: number[] = [];
    let product = 1;
    for (let d = 0; d < rank; d++) {
      const dim = r.u32('dimension', d);
      shape.push(dim);
      product *= dim; // exact while ≤ 2^53; anything past U32_MAX is refused below either way
    }
    if (product > U32_MAX) fail('CODEC_BAD_SHAPE', `${fn}: '${name}' has shape [${shape.join(',')}], whose size overflows 2^32`);
    let scale = 1;
    if (encoding === 'int8') {
      scale = r.f32('scale');
      if (!Number.isFinite(scale)) fail('CODEC_NON_FINITE', `${fn}: '${name}' has int8 scale ${scale}`);
      if (scale < 0) fail('CODEC_BAD_HEADER', `${fn}: '${name}' has negative int8 scale ${scale}`);
      if (int8ScaleOverflows(scale)) fail('CODEC_OUT_OF_RANGE', `${fn}: '${name}' has int8 scale ${scale}, which overflows float32 when dequantised`);
    }
    const count = r.u32('element count');
    if (count !== product) fail('CODEC_BAD_SHAPE', `${fn}: '${name}' declares ${count} elements for shape [${shape.join(',')}] (${product})`);
    totalElements += count;
    if (totalElements > maxElements) fail('CODEC_TOO_LARGE', `${fn}: more than ${maxElements} elements in total`);
    const payloadBytes = count * width;
    if (payloadBytes > r.remaining()) fail('CODEC_BAD_LENGTH', `${fn}: '${name}' declares a ${payloadBytes}-byte payload, ${r.remaining()} bytes remain`);
    entries.push({ name, shape, count, scale, offset: r.pos });
    r.pos += payloadBytes;
  }

  if (r.pos < r.end) fail('CODEC_TRAILING_BYTES', `${fn}: ${r.end - r.pos} bytes after the last tensor`);
  const declared = r.view.getUint32(r.end, true);
  // `>>> 0`: an injected function that answers a signed 32-bit integer still compares equal.
  const actual = checksum(bytes.subarray(0, r.end)) >>> 0;
  if (declared !== actual) fail('CODEC_CHECKSUM', `${fn}: checksum 0x${declared.toString(16)} does not match the content (0x${actual.toString(16)})`);
  return { header: { kind, taskId, round, clientId, encoding }, entries, view: r.view };
}

/** Decodes and validates one message, refusing anything malformed with a `CODEC_*` error; never reads past `limits`. */
export function decodeUpdate(bytes: Uint8Array, limits: DecodeLimits): DecodedUpdate {
  const { header, entries, view } = parseMessage('decodeUpdate', bytes, limits);
  const { encoding } = header;
  // Pass 2: the message is structurally sound and intact; allocate and decode.
  const tensors: Tensor[] = [];
  for (const e of entries) {
    const values = new Float32Array(e.count);
    if (encoding === 'fp32') readFp32(bytes, e.offset, values, LITTLE_ENDIAN_HOST);
    else if (encoding === 'fp16') readFp16(view, e.offset, values);
    else readInt8(bytes, e.offset, values, e.scale, e.name);
    const bad = encoding === 'int8' ? -1 : firstNonFinite(values);
    if (bad >= 0) fail('CODEC_NON_FINITE', `decodeUpdate: '${e.name}'[${bad}] is ${values[bad]}`);
    tensors.push({ name: e.name, shape: e.shape, values });
  }
  return { ...header, tensors };
}

/** Where {@link decodeUpdateInto} writes: a flat vector and the layout the message must match. */
export interface DecodeIntoTarget {
  /**
   * The tensors the message must carry, each exactly once, and where each goes in `out` (see
   * `layoutOf`); the message may list them in any order.
   */
  readonly layout: Layout;
  /** Receives the values; exactly `layout.size` long. */
  readonly out: Float32Array;
  /**
   * When true the message may carry any subset of the layout's tensors (none included), each at most
   * once; the values of the tensors it leaves out are not written. Default false: all of them.
   */
  readonly partial?: boolean;
  /**
   * True when `out` holds nothing worth keeping (a free arena row): values are written first and
   * checked where they land, which saves a pass over the payload and reads no unaligned floats, but
   * a refused message may leave part of itself in `out`. Default false: every check runs before the
   * first write, so on any error `out` is unchanged.
   */
  readonly scratch?: boolean;
}

/** What {@link decodeUpdateInto} returns: the header, which layout tensors came, and their squared norm. */
export interface DecodedIntoHeader extends DecodedUpdateHeader {
  /** Index into `layout.names` of each tensor the message carried, in message order. */
  readonly tensorIndices: readonly number[];
  /**
   * Σ x² in float64 over every value written, i.e. the squared L2 norm of what the message carried.
   * It comes free with the finiteness check (see {@link decodeUpdateInto}), so a caller that bounds
   * norms need not read the values again.
   */
  readonly sumOfSquares: number;
}

interface LayoutSlot {
  readonly index: number;
  readonly shape: readonly number[];
  readonly offset: number;
}

/**
 * Decodes one message straight into `target.out` at the offsets of `target.layout`, with every check
 * of {@link decodeUpdate}, and returns its header. All checks, values included, run before the first
 * write, so on any error `out` is unchanged (unless `target.scratch`). Besides the `CODEC_*` codes it
 * throws `PARAMS_MISMATCH` when the tensors' names or shapes differ from the layout (or, unless
 * `partial`, one is missing), and `CODEC_BAD_CONFIG` for a target whose layout does not fit `out`.
 *
 * With `scratch` the values are checked after they are written, by summing their squares in float64:
 * a float32 squared is below 2^256, so even 2^32 of them sum far below the float64 limit: the sum is
 * finite exactly when every value is, and one pass gives both the check and
 * {@link DecodedIntoHeader.sumOfSquares}.
 */
export function decodeUpdateInto(bytes: Uint8Array, limits: DecodeLimits, target: DecodeIntoTarget): DecodedIntoHeader {
  const fn = 'decodeUpdateInto';
  const slots = checkTarget(fn, target);
  const { header, entries, view } = parseMessage(fn, bytes, limits);
  const { encoding } = header;
  // Pass 2: match the message against the layout; pass 3: check every value; only then write.
  const matched: LayoutSlot[] = [];
  for (const e of entries) {
    const slot = slots.get(e.name);
    if (slot === undefined) fail('PARAMS_MISMATCH', `${fn}: unexpected tensor '${e.name}'`);
    if (slot.shape.length !== e.shape.length || slot.shape.some((d, i) => d !== e.shape[i])) {
      fail('PARAMS_MISMATCH', `${fn}: '${e.name}' has shape [${e.shape.join(',')}], expected [${slot.shape.join(',')}]`);
    }
    matched.push(slot);
  }
  // Names are unique (pass 1), so equal counts mean every layout tensor is present.
  if (target.partial !== true && entries.length !== slots.size) {
    const sent = new Set(entries.map((e) => e.name));
    const missing = target.layout.names.filter((n) => !sent.has(n));
    fail('PARAMS_MISMATCH', `${fn}: missing tensors [${missing.join(', ')}]`);
  }
  const scratch = target.scratch === true;
  if (!scratch) {
    for (const e of entries) {
      const bad =
        encoding === 'fp32'
          ? firstNonFiniteFp32(view, e.offset, e.count)
          : encoding === 'fp16'
            ? firstNonFiniteFp16(view, e.offset, e.count)
            : firstInt8Minus128(bytes, e.offset, e.count);
      if (bad < 0) continue;
      if (encoding === 'int8') fail('CODEC_BAD_ENCODING', `${fn}: '${e.name}'[${bad}] is the int8 byte −128; symmetric quantisation uses [−127, 127]`);
      fail('CODEC_NON_FINITE', `${fn}: '${e.name}'[${bad}] is not finite`);
    }
  }
  const { out } = target;
  let sumOfSquares = 0;
  entries.forEach((e, k) => {
    const offset = matched[k]!.offset;
    const dst = out.subarray(offset, offset + e.count);
    if (encoding === 'fp32') readFp32(bytes, e.offset, dst, LITTLE_ENDIAN_HOST);
    else if (encoding === 'fp16') readFp16(view, e.offset, dst);
    else readInt8(bytes, e.offset, dst, e.scale, e.name);
    const sq = squaredNorm(dst);
    // Only reachable with scratch: otherwise every value was checked above.
    if (!Number.isFinite(sq)) fail('CODEC_NON_FINITE', `${fn}: '${e.name}'[${firstNonFinite(dst)}] is not finite`);
    sumOfSquares += sq;
  });
  return { ...header, tensorIndices: matched.map((m) => m.index), sumOfSquares };
}

// A layout is checked and indexed once, then reused: a server decodes every upload of a round (and
// every round) against the same layout object. Layouts are read-only by type; one mutated after its
// first use would not be noticed.
const layoutSlots = new WeakMap<Layout, Map<string, LayoutSlot>>();

/** Name → (index, shape, offset) of a decode target, after checking that the layout tiles `out` exactly. */
function checkTarget(fn: string, target: DecodeIntoTarget): Map<string, LayoutSlot> {
  if (typeof target !== 'object' || target === null || !(target.out instanceof Float32Array))
    fail('CODEC_BAD_CONFIG', `${fn}: target needs a layout and a Float32Array out`);
  const { layout, out } = target;
  if (typeof layout !== 'object' || layout === null) fail('CODEC_BAD_CONFIG', `${fn}: target needs a layout`);
  if (layout.size !== out.length) fail('CODEC_BAD_CONFIG', `${fn}: out has ${out.length} values, the layout needs ${layout.size}`);
  const known = layoutSlots.get(layout);
  if (known !== undefined) return known;
  const slots = new Map<string, LayoutSlot>();
  let next = 0;
  for (let k = 0; k < layout.names.length; k++) {
    const name = layout.names[k]!;
    const shape = layout.shapes[k];
    const offset = layout.offsets[k];
    if (shape === undefined || offset !== next || slots.has(name))
      fail('CODEC_BAD_CONFIG', `${fn}: layout entry ${k} ('${name}') is not where the previous one ends, or repeats a name`);
    let count = 1;
    for (const d of shape) count *= d;
    next += count;
    slots.set(name, { index: k, shape, offset });
  }
  if (next !== layout.size) fail('CODEC_BAD_CONFIG', `${fn}: layout tensors hold ${next} values, its size says ${layout.size}`);
  layoutSlots.set(layout, slots);
  return slots;
}

// Exponent bits all ones is NaN or ±Infinity. The payload may sit at any byte offset, so a
// Uint32Array view only when it happens to be aligned.
function firstNonFiniteFp32(view: DataView, offset: number, count: number): number {
  const at = view.byteOffset + offset;
  if (LITTLE_ENDIAN_HOST && at % 4 === 0) {
    const words = new Uint32Array(view.buffer, at, count);
    for (let i = 0; i < count; i++) if ((words[i]! & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  for (let i = 0; i < count; i++) if ((view.getUint32(offset + 4 * i, true) & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

function firstNonFiniteFp16(view: DataView, offset: number, count: number): number {
  for (let i = 0; i < count; i++) if ((view.getUint16(offset + 2 * i, true) & 0x7c00) === 0x7c00) return i;
  return -1;
}

function firstInt8Minus128(bytes: Uint8Array, offset: number, count: number): number {
  for (let i = 0; i < count; i++) if (bytes[offset + i] === 0x80) return i;
  return -1;
}

/** Copies a little-endian fp32 payload into `out`: one memcpy on little-endian hosts, DataView reads otherwise. */
export function readFp32(bytes: Uint8Array, offset: number, out: Float32Array, memcpy: boolean): void {
  if (memcpy) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes.subarray(offset, offset + out.byteLength));
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(offset + 4 * i, true);
}

function readFp16(view: DataView, offset: number, out: Float32Array): void {
  const table = halfToFloatTable();
  for (let i = 0; i < out.length; i++) out[i] = table[view.getUint16(offset + 2 * i, true)]!;
}

function readInt8(bytes: Uint8Array, offset: number, out: Float32Array, scale: number, name: string): void {
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + offset, out.length);
  for (let i = 0; i < out.length; i++) {
    const v = q[i]!;
    if (v === -128) fail('CODEC_BAD_ENCODING', `decodeUpdate: '${name}'[${i}] is the int8 byte −128; symmetric quantisation uses [−127, 127]`);
    out[i] = v * scale;
  }
}
