/**
 * Test support for the codec: a byte-level builder that can write malformed messages, checksum
 * re-sealing, a walker that finds the length and count fields of a valid encoding, and fast-check
 * arbitraries for valid messages. Used only by the codec's tests.
 */
import fc from 'fast-check';
import type { Tensor } from '../params.js';
import { MODALITIES } from '../partition/modality.js';
import type { UpdateEncoding, UpdateKind, UpdateMessage } from './codec.js';
import { crc32 } from './crc32.js';

/** One tensor written field by field; any field can lie. */
export interface RawTensor {
  readonly name?: string | readonly number[];
  readonly rank?: number;
  readonly dims: readonly number[];
  /** Written only when the message's encoding byte is 3 (int8). */
  readonly scale?: number;
  readonly count?: number;
  readonly payload?: readonly number[];
}

/** A message written field by field; defaults give a valid fp32 delta with no tensors. */
export interface RawMessage {
  readonly magic?: readonly number[];
  readonly version?: number;
  readonly kind?: number;
  readonly encoding?: number;
  readonly round?: number;
  readonly taskId?: string | readonly number[];
  readonly clientId?: string | readonly number[];
  readonly tensorCount?: number;
  readonly tensors?: readonly RawTensor[];
  readonly trailing?: readonly number[];
  /** Checksum to write instead of the correct one. */
  readonly checksum?: number;
}

const codes = (s: string | readonly number[]): number[] => (typeof s === 'string' ? Array.from(s, (c) => c.charCodeAt(0)) : [...s]);
const u16 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff];
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** Little-endian float32 bytes of `values`. */
export function f32Bytes(values: readonly number[]): number[] {
  return [...new Uint8Array(new Float32Array(values).buffer)];
}

/** Little-endian bytes of fp16 bit patterns. */
export function f16Bytes(bits: readonly number[]): number[] {
  return bits.flatMap(u16);
}

/** Assembles `m` byte by byte and appends its checksum (correct unless `m.checksum` says otherwise). */
export function rawMessage(m: RawMessage): Uint8Array {
  const encoding = m.encoding ?? 1;
  const tensors = m.tensors ?? [];
  const out: number[] = [...(m.magic ?? codes('CHRS')), ...u16(m.version ?? 1), m.kind ?? 1, encoding, ...u32(m.round ?? 0)];
  for (const s of [m.taskId ?? 't', m.clientId ?? 'c']) {
    const c = codes(s);
    out.push(c.length, ...c);
  }
  out.push(...u32(m.tensorCount ?? tensors.length));
  for (const t of tensors) {
    const name = codes(t.name ?? 'w');
    out.push(name.length, ...name, t.rank ?? t.dims.length);
    for (const d of t.dims) out.push(...u32(d));
    if (encoding === 3) out.push(...f32Bytes([t.scale ?? 1]));
    out.push(...u32(t.count ?? t.dims.reduce((a, b) => a * b, 1)), ...(t.payload ?? []));
  }
  out.push(...(m.trailing ?? []));
  const body = Uint8Array.from(out);
  return Uint8Array.from([...body, ...u32(m.checksum ?? crc32(body))]);
}

/** A copy of `bytes` whose last 4 bytes are the correct checksum of the rest (inputs under 4 bytes are copied as is). */
export function reseal(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.length < 4) return out;
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

/** Where a header or size field sits in a valid encoding. */
export interface Field {
  readonly offset: number;
  readonly width: 1 | 2 | 4;
  readonly kind: 'version' | 'kind' | 'encoding' | 'length' | 'count' | 'rank' | 'dim' | 'scale';
}

/** The fields of a valid encoding that a corrupted length or count would live in. */
export function fieldsOf(bytes: Uint8Array): Field[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [
    { offset: 4, width: 2, kind: 'version' },
    { offset: 6, width: 1, kind: 'kind' },
    { offset: 7, width: 1, kind: 'encoding' },
  ];
  const int8 = bytes[7] === 3;
  const width = bytes[7] === 1 ? 4 : bytes[7] === 2 ? 2 : 1;
  let pos = 12;
  for (let s = 0; s < 2; s++) {
    fields.push({ offset: pos, width: 1, kind: 'length' });
    pos += 1 + bytes[pos]!;
  }
  const count = view.getUint32(pos, true);
  fields.push({ offset: pos, width: 4, kind: 'count' });
  pos += 4;
  // Bounded by the input too: the walker also runs on inputs that earlier mutations have corrupted.
  for (let k = 0; k < count && pos < bytes.length; k++) {
    fields.push({ offset: pos, width: 1, kind: 'length' });
    pos += 1 + bytes[pos]!;
    const rank = bytes[pos]!;
    fields.push({ offset: pos, width: 1, kind: 'rank' });
    pos += 1;
    for (let d = 0; d < rank && pos < bytes.length; d++, pos += 4) fields.push({ offset: pos, width: 4, kind: 'dim' });
    if (int8) {
      fields.push({ offset: pos, width: 4, kind: 'scale' });
      pos += 4;
    }
    const elements = view.getUint32(pos, true);
    fields.push({ offset: pos, width: 4, kind: 'count' });
    pos += 4 + elements * width;
  }
  return fields;
}

/** Printable-ASCII strings of the given length range. */
export function asciiString(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength, maxLength });
}

/** A tensor with up to `maxRank` small dimensions and float32 values in [−maxAbs, maxAbs] (NaN-free). */
export function tensorArb(maxAbs: number, maxRank = 3, maxDim = 4): fc.Arbitrary<Tensor> {
  return fc.record({ name: asciiString(1, 12), shape: fc.array(fc.integer({ min: 0, max: maxDim }), { maxLength: maxRank }) }).chain(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return fc
      .float32Array({ min: Math.fround(-maxAbs), max: Math.fround(maxAbs), noNaN: true, minLength: n, maxLength: n })
      .map((values): Tensor => ({ name, shape, values }));
  });
}

/** A representations tensor: `rep/<modality>` with shape [B, D] (small) and values in [−maxAbs, maxAbs]. */
export function representationTensorArb(maxAbs: number, maxDim = 4): fc.Arbitrary<Tensor> {
  return fc
    .record({ modality: fc.constantFrom(...MODALITIES), rows: fc.integer({ min: 0, max: maxDim }), cols: fc.integer({ min: 0, max: maxDim }) })
    .chain(({ modality, rows, cols }) =>
      fc
        .float32Array({ min: Math.fround(-maxAbs), max: Math.fround(maxAbs), noNaN: true, minLength: rows * cols, maxLength: rows * cols })
        .map((values): Tensor => ({ name: `rep/${modality}`, shape: [rows, cols], values })),
    );
}

/** A split tensor: `split/<name>` (lower-case, digits, `_`) with up to `maxRank` small dimensions. */
export function splitTensorArb(maxAbs: number, maxRank = 3, maxDim = 4): fc.Arbitrary<Tensor> {
  const suffix = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789_'), minLength: 1, maxLength: 10 });
  return fc.tuple(suffix, tensorArb(maxAbs, maxRank, maxDim)).map(([name, t]): Tensor => ({ ...t, name: `split/${name}` }));
}

function tensorArbFor(kind: UpdateKind, maxAbs: number): fc.Arbitrary<Tensor> {
  return kind === 'representations' ? representationTensorArb(maxAbs) : kind === 'split' ? splitTensorArb(maxAbs) : tensorArb(maxAbs);
}

/** A valid message for `encoding` whose values stay within `maxAbs`: a delta, a model, representations or a split. */
export function messageArb(encoding: UpdateEncoding, maxAbs: number, maxTensors = 4): fc.Arbitrary<UpdateMessage> {
  return fc
    .record({
      kind: fc.constantFrom<UpdateKind>('delta', 'model', 'representations', 'split'),
      taskId: asciiString(1, 16),
      round: fc.nat({ max: 0xffffffff }),
      clientId: asciiString(1, 16),
    })
    .chain((m) =>
      fc
        .uniqueArray(tensorArbFor(m.kind, maxAbs), {
          selector: (t) => t.name,
          maxLength: Math.min(maxTensors, m.kind === 'representations' ? MODALITIES.length : maxTensors),
        })
        .map((tensors): UpdateMessage => ({ ...m, tensors, clientId: m.kind === 'model' ? '' : m.clientId, encoding })),
    );
}
