/**
 * The artifact file format. One artifact is a 32-byte header followed by `count` fixed-size
 * records, little-endian:
 *
 *   0  'CHDS'            magic
 *   4  u8  version       = 1
 *   5  u8  dtype code    (see DTYPES)
 *   6  u8  rank          of one record, 0..4
 *   7  u8  reserved      = 0
 *   8  u32 count         number of records
 *  12  u32 × 4 dims      record shape, unused dims 0
 *  28  u32 reserved      = 0
 *
 * Records have a fixed size so a reader can fetch any record (or run of records) with one byte-range
 * request; variable-length data (audio clips) is stored as scalars plus a separate offsets artifact.
 */

import { float16BitsToFloat32, float32ToFloat16Bits } from '@chorus/fl-core';
import { DatasetError } from './errors.js';

/** Element types an artifact can hold. */
export type Dtype = 'uint8' | 'int16' | 'uint16' | 'uint32' | 'float16';

/** Element types with their header code and width in bytes (order fixes the codes; append only). */
export const DTYPES: readonly { readonly dtype: Dtype; readonly code: number; readonly bytes: number }[] = [
  { dtype: 'uint8', code: 1, bytes: 1 },
  { dtype: 'int16', code: 2, bytes: 2 },
  { dtype: 'uint16', code: 3, bytes: 2 },
  { dtype: 'uint32', code: 4, bytes: 4 },
  { dtype: 'float16', code: 5, bytes: 2 },
];

export const ARTIFACT_MAGIC = 'CHDS';
export const ARTIFACT_VERSION = 1;
export const HEADER_BYTES = 32;
const MAX_RANK = 4;

/** What an artifact header says. */
export interface ArtifactHeader {
  readonly dtype: Dtype;
  readonly count: number;
  readonly recordShape: readonly number[];
}

/** Width in bytes of one element of `dtype`. */
export function bytesPerElement(dtype: Dtype): number {
  const spec = DTYPES.find((d) => d.dtype === dtype);
  if (spec === undefined) throw new DatasetError('ARTIFACT_BAD_HEADER', `bytesPerElement: unknown dtype ${String(dtype)}`);
  return spec.bytes;
}

/** Number of elements in one record of the given shape (1 for a scalar record). */
export function recordElements(recordShape: readonly number[]): number {
  let n = 1;
  for (const d of recordShape) n *= d;
  return n;
}

/** Size in bytes of one record. */
export function recordBytes(header: Pick<ArtifactHeader, 'dtype' | 'recordShape'>): number {
  return recordElements(header.recordShape) * bytesPerElement(header.dtype);
}

/** Total file size in bytes of an artifact with this header. */
export function artifactBytes(header: ArtifactHeader): number {
  return HEADER_BYTES + header.count * recordBytes(header);
}

/** Encodes an artifact header. */
export function encodeHeader(header: ArtifactHeader): Uint8Array {
  const spec = DTYPES.find((d) => d.dtype === header.dtype);
  if (spec === undefined) throw new DatasetError('ARTIFACT_BAD_HEADER', `encodeHeader: unknown dtype ${String(header.dtype)}`);
  if (header.recordShape.length > MAX_RANK) {
    throw new DatasetError('ARTIFACT_BAD_HEADER', `encodeHeader: rank ${header.recordShape.length} exceeds ${MAX_RANK}`);
  }
  const out = new Uint8Array(HEADER_BYTES);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = ARTIFACT_MAGIC.charCodeAt(i);
  out[4] = ARTIFACT_VERSION;
  out[5] = spec.code;
  out[6] = header.recordShape.length;
  view.setUint32(8, header.count, true);
  header.recordShape.forEach((d, i) => view.setUint32(12 + 4 * i, d, true));
  return out;
}

/** Decodes and checks an artifact header; throws a coded {@link DatasetError} on anything malformed. */
export function decodeHeader(bytes: Uint8Array, path = 'artifact'): ArtifactHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new DatasetError('ARTIFACT_TRUNCATED', `${path}: header needs ${HEADER_BYTES} bytes, got ${bytes.length}`);
  }
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== ARTIFACT_MAGIC.charCodeAt(i)) throw new DatasetError('ARTIFACT_BAD_MAGIC', `${path}: not a dataset artifact`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (bytes[4] !== ARTIFACT_VERSION) throw new DatasetError('ARTIFACT_BAD_HEADER', `${path}: unsupported version ${String(bytes[4])}`);
  const spec = DTYPES.find((d) => d.code === bytes[5]);
  if (spec === undefined) throw new DatasetError('ARTIFACT_BAD_HEADER', `${path}: unknown dtype code ${String(bytes[5])}`);
  const rank = bytes[6] ?? 0;
  if (rank > MAX_RANK || bytes[7] !== 0 || view.getUint32(28, true) !== 0) {
    throw new DatasetError('ARTIFACT_BAD_HEADER', `${path}: malformed header (rank ${rank})`);
  }
  const recordShape: number[] = [];
  for (let i = 0; i < MAX_RANK; i++) {
    const d = view.getUint32(12 + 4 * i, true);
    if (i < rank && d === 0) throw new DatasetError('ARTIFACT_BAD_HEADER', `${path}: zero dimension ${i}`);
    if (i >= rank && d !== 0) throw new DatasetError('ARTIFACT_BAD_HEADER', `${path}: dimension ${i} beyond rank ${rank}`);
    if (i < rank) recordShape.push(d);
  }
  return { dtype: spec.dtype, count: view.getUint32(8, true), recordShape };
}

/** Encodes a whole artifact: header then the little-endian elements of `values`. */
export function encodeArtifact(header: ArtifactHeader, values: ArrayLike<number>): Uint8Array {
  const expected = header.count * recordElements(header.recordShape);
  if (values.length !== expected) {
    throw new DatasetError('ARTIFACT_MISMATCH', `encodeArtifact: header implies ${expected} elements, got ${values.length}`);
  }
  const out = new Uint8Array(artifactBytes(header));
  out.set(encodeHeader(header), 0);
  const view = new DataView(out.buffer, HEADER_BYTES);
  const width = bytesPerElement(header.dtype);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    const at = i * width;
    switch (header.dtype) {
      case 'uint8':
        view.setUint8(at, v);
        break;
      case 'int16':
        view.setInt16(at, v, true);
        break;
      case 'uint16':
        view.setUint16(at, v, true);
        break;
      case 'uint32':
        view.setUint32(at, v, true);
        break;
      case 'float16':
        view.setUint16(at, float32ToFloat16BitsSaturating(v), true);
        break;
    }
  }
  return out;
}

/** Typed array each dtype decodes to (float16 widens to Float32Array). */
export type DecodedArray = Uint8Array | Int16Array | Uint16Array | Uint32Array | Float32Array;

/** Decodes little-endian elements of `dtype` from `bytes` into a fresh typed array. */
export function decodeElements(dtype: Dtype, bytes: Uint8Array): DecodedArray {
  const width = bytesPerElement(dtype);
  if (bytes.length % width !== 0) {
    throw new DatasetError('ARTIFACT_TRUNCATED', `decodeElements: ${bytes.length} bytes is not a whole number of ${dtype}`);
  }
  const n = bytes.length / width;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  switch (dtype) {
    case 'uint8':
      return bytes.slice();
    case 'int16': {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      return out;
    }
    case 'uint16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
      return out;
    }
    case 'uint32': {
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getUint32(4 * i, true);
      return out;
    }
    case 'float16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = float16BitsToFloat32(view.getUint16(2 * i, true));
      return out;
    }
  }
}

/**
 * IEEE 754 binary16 bits of `value`, rounded to nearest even by fl-core's `float32ToFloat16Bits`;
 * where the wire codec refuses, an artifact saturates instead: beyond the fp16 range to ±Infinity,
 * NaN to a quiet NaN.
 */
export function float32ToFloat16BitsSaturating(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const x = Math.fround(value);
  // 65520 is the midpoint between 65504 (the largest half) and 2^16; from there on it rounds to Infinity.
  if (Math.abs(x) >= 65520) return (x < 0 ? 0x8000 : 0) | 0x7c00;
  return float32ToFloat16Bits(x);
}
