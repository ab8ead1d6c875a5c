/**
 * Exact, order-free weighted sums of float32 vectors with integer weights: Σ_k w_k·u_k held as a
 * wide fixed-point integer per coordinate (a Kulisch-style accumulator), so adding updates in any
 * order, or summing disjoint subsets apart and merging the partial sums, gives the same bits. This
 * is what lets several coordinator nodes each sum their own clients' updates and the leader combine
 * the partial sums into exactly the model one node would have made.
 *
 * Representation: a float32 is ±m·2^(b−149) with m < 2^24 and b ∈ [0, 253]; times an integer weight
 * below 2^53 (split in 26-bit halves) each product is an integer below 2^53 shifted by at most 279
 * bits. Coordinate i holds {@link EXACT_LIMBS} float64 limbs, limb j worth 2^(32j−149), stored limb-major
 * (limb j of every coordinate together, so adding a vector streams a few limb planes); every limb
 * is an integer below 2^53 in magnitude, so each addition is exact. A carry pass (run before limbs
 * could outgrow 2^53) brings limbs 0..10 into [0, 2^32) and leaves the sign in the top limb: one
 * canonical form per value, from which the float64 value is read by one fixed procedure.
 */
import { FlCoreError } from '../errors.js';
import { checkLength, checkOption } from './validate.js';

/** Limbs per coordinate: 12 × 32 bits cover 2^-149 … 2^235 with room for 2^20 more carries. */
export const EXACT_LIMBS = 12;
const LIMB = 2 ** 32;
const INV_LIMB = 2 ** -32;
const HALF = 2 ** 26;
/** Deposits between carry passes: each puts < 2^32 into a limb, so limbs stay below 2^52. */
const CARRY_EVERY = 2 ** 20;
const POW2 = Array.from({ length: 32 }, (_, r) => 2 ** r);
const MAGIC = 0x31535843; // 'CXS1' little-endian

/** An exact Σ w_k·u_k (and the count of vectors added) over vectors of one fixed length. */
export class ExactSum {
  readonly length: number;
  private readonly limbs: Float64Array;
  /** Deposits since the last carry pass (bounds every limb's magnitude). */
  private pending = 0;
  private normalised = true;

  constructor(length: number) {
    checkOption('ExactSum', 'length', length, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
    this.length = length;
    this.limbs = new Float64Array(length * EXACT_LIMBS);
  }

  /**
   * Adds `weight · values`. `weight` must be an integer in [0, 2^53); throws `AGG_BAD_WEIGHTS`,
   * `PARAMS_MISMATCH` (wrong length) or `PARAMS_NON_FINITE` and changes nothing.
   */
  add(values: Float32Array, weight: number): void {
    checkLength('ExactSum.add', 'values', values, this.length);
    if (!Number.isSafeInteger(weight) || weight < 0) {
      throw new FlCoreError('AGG_BAD_WEIGHTS', `ExactSum.add: weight must be an integer in [0, 2^53), got ${weight}`);
    }
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < bits.length; i++) {
      if (((bits[i]! >>> 23) & 0xff) === 0xff) throw new FlCoreError('PARAMS_NON_FINITE', `ExactSum.add: value ${i} is NaN or Infinity`);
    }
    if (weight === 0) return;
    const low = weight % HALF;
    const high = (weight - low) / HALF;
    const deposits = high > 0 ? 2 : 1;
    if (this.pending + deposits > CARRY_EVERY) this.carry();
    const limbs = this.limbs;
    const stride = this.length;
    for (let i = 0; i < bits.length; i++) {
      const x = bits[i]!;
      const e = (x >>> 23) & 0xff;
      let m = x & 0x7fffff;
      if (e === 0 && m === 0) continue;
      if (e !== 0) m |= 0x800000;
      // A normal value is m·2^(e−150), i.e. offset e−1 in units of 2^-149; a subnormal one offset 0.
      const offset = e === 0 ? 0 : e - 1;
      const negative = x >>> 31 === 1;
      if (low > 0) deposit(limbs, i, stride, low * m, offset, negative);
      if (high > 0) deposit(limbs, i, stride, high * m, offset + 26, negative);
    }
    this.pending += deposits;
    this.normalised = false;
  }

  /** Adds another sum of the same length into this one (exactly); `other` keeps its value. */
  merge(other: ExactSum): void {
    if (other.length !== this.length) {
      throw new FlCoreError('PARAMS_MISMATCH', `ExactSum.merge: lengths differ (${this.length} vs ${other.length})`);
    }
    if (this.pending + other.pending + 1 > CARRY_EVERY) {
      this.carry();
      other.carry();
    }
    const a = this.limbs;
    const b = other.limbs;
    for (let j = 0; j < a.length; j++) a[j] = a[j]! + b[j]!;
    this.pending += Math.max(other.pending, 1);
    this.normalised = false;
  }

  /** Σ w_k·u_k[i] for every i, divided by `divisor` and rounded to float32, as a new vector. */
  quotient(divisor: number): Float32Array {
    if (!(divisor > 0) || !Number.isFinite(divisor))
      throw new FlCoreError('AGG_BAD_WEIGHTS', `ExactSum.quotient: divisor must be finite and > 0, got ${divisor}`);
    this.carry();
    const out = new Float32Array(this.length);
    const magnitude = new Float64Array(EXACT_LIMBS);
    for (let i = 0; i < this.length; i++) out[i] = readValue(this.limbs, i, this.length, magnitude) / divisor;
    return out;
  }

  /** The canonical bytes of this sum (equal sums, equal bytes); {@link decodeExactSum} reads them back. */
  encode(): Uint8Array {
    this.carry();
    const magnitude = new Float64Array(EXACT_LIMBS);
    // Worst case: 2 header bytes and every limb per coordinate.
    const out = new Uint8Array(8 + this.length * (2 + 4 * EXACT_LIMBS));
    const view = new DataView(out.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, this.length, true);
    let at = 8;
    for (let i = 0; i < this.length; i++) {
      const negative = signedMagnitude(this.limbs, i, this.length, magnitude);
      let first = 0;
      while (first < EXACT_LIMBS && magnitude[first] === 0) first++;
      let last = EXACT_LIMBS - 1;
      while (last >= first && magnitude[last] === 0) last--;
      const count = last - first + 1;
      out[at++] = (negative ? 0x80 : 0) | count;
      out[at++] = count === 0 ? 0 : first;
      for (let j = first; j <= last; j++, at += 4) view.setUint32(at, magnitude[j]!, true);
    }
    return out.slice(0, at);
  }

  /** Brings every limb into canonical form (value unchanged). */
  private carry(): void {
    if (this.normalised) return;
    const limbs = this.limbs;
    const stride = this.length;
    // Limb by limb, low to high: each plane's carries go into the next before it is carried itself.
    for (let j = 0; j < EXACT_LIMBS - 1; j++) {
      const row = j * stride;
      for (let k = row; k < row + stride; k++) {
        const c = Math.floor(limbs[k]! * INV_LIMB);
        limbs[k] = limbs[k]! - c * LIMB;
        limbs[k + stride] = limbs[k + stride]! + c;
      }
    }
    this.pending = 0;
    this.normalised = true;
  }

  /** Sets coordinate `i` from a magnitude (limbs in [0, 2^32)) and a sign; the decoder's way in. */
  private setCoordinate(i: number, magnitude: Float64Array, negative: boolean): void {
    for (let j = 0; j < EXACT_LIMBS; j++) this.limbs[j * this.length + i] = negative ? -magnitude[j]! : magnitude[j]!;
    this.normalised = false;
    this.pending = 1;
  }

  /** Reads the bytes of {@link ExactSum.encode}; throws a coded `CODEC_*` error on anything else. */
  static decode(bytes: Uint8Array, expectedLength: number): ExactSum {
    const bad = (code: 'CODEC_BAD_MAGIC' | 'CODEC_TRUNCATED' | 'CODEC_BAD_HEADER' | 'CODEC_BAD_LENGTH' | 'CODEC_TRAILING_BYTES', message: string) =>
      new FlCoreError(code, `decodeExactSum: ${message}`);
    if (bytes.byteLength < 8) throw bad('CODEC_TRUNCATED', `${bytes.byteLength} bytes, need at least 8`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== MAGIC) throw bad('CODEC_BAD_MAGIC', 'not an exact sum');
    const length = view.getUint32(4, true);
    if (length !== expectedLength) throw bad('CODEC_BAD_LENGTH', `holds ${length} values, expected ${expectedLength}`);
    const sum = new ExactSum(length);
    const magnitude = new Float64Array(EXACT_LIMBS);
    let at = 8;
    for (let i = 0; i < length; i++) {
      if (at + 2 > bytes.byteLength) throw bad('CODEC_TRUNCATED', `coordinate ${i} is cut off`);
      const head = bytes[at]!;
      const first = bytes[at + 1]!;
      at += 2;
      const count = head & 0x7f;
      const negative = (head & 0x80) !== 0;
      if (first + count > EXACT_LIMBS || (count === 0 && (first !== 0 || negative))) throw bad('CODEC_BAD_HEADER', `coordinate ${i} has a malformed header`);
      if (at + 4 * count > bytes.byteLength) throw bad('CODEC_TRUNCATED', `coordinate ${i} is cut off`);
      magnitude.fill(0);
      for (let j = 0; j < count; j++, at += 4) magnitude[first + j] = view.getUint32(at, true);
      // Canonical bytes never start or end a run with a zero limb.
      if (count > 0 && (magnitude[first] === 0 || magnitude[first + count - 1] === 0)) throw bad('CODEC_BAD_HEADER', `coordinate ${i} is not canonical`);
      sum.setCoordinate(i, magnitude, negative);
    }
    if (at !== bytes.byteLength) throw bad('CODEC_TRAILING_BYTES', `${bytes.byteLength - at} bytes after the last coordinate`);
    sum.carry();
    return sum;
  }
}

/** Adds (or subtracts) the integer `product` (< 2^53) shifted left by `offset` bits into coordinate `i`'s limbs. */
function deposit(limbs: Float64Array, i: number, stride: number, product: number, offset: number, negative: boolean): void {
  const at = (offset >>> 5) * stride + i;
  // Exact: a power-of-two scaling of an integer below 2^53, then floors of exact quotients.
  const x = product * POW2[offset & 31]!;
  const t1 = Math.floor(x * INV_LIMB);
  const lo = x - t1 * LIMB;
  const hi = Math.floor(t1 * INV_LIMB);
  const mid = t1 - hi * LIMB;
  if (negative) {
    limbs[at] = limbs[at]! - lo;
    limbs[at + stride] = limbs[at + stride]! - mid;
    limbs[at + 2 * stride] = limbs[at + 2 * stride]! - hi;
  } else {
    limbs[at] = limbs[at]! + lo;
    limbs[at + stride] = limbs[at + stride]! + mid;
    limbs[at + 2 * stride] = limbs[at + 2 * stride]! + hi;
  }
}

/**
 * Writes the magnitude of canonical coordinate `i` into `magnitude` (limbs in [0, 2^32)) and
 * returns whether it is negative. The top limb carries the sign; a negative value is negated and carried.
 */
function signedMagnitude(limbs: Float64Array, i: number, stride: number, magnitude: Float64Array): boolean {
  const negative = limbs[(EXACT_LIMBS - 1) * stride + i]! < 0;
  if (!negative) {
    for (let j = 0; j < EXACT_LIMBS; j++) magnitude[j] = limbs[j * stride + i]!;
    return false;
  }
  let borrow = 0;
  for (let j = 0; j < EXACT_LIMBS; j++) {
    let v = -limbs[j * stride + i]! - borrow;
    borrow = 0;
    if (j < EXACT_LIMBS - 1 && v < 0) {
      v += LIMB;
      borrow = 1;
    }
    magnitude[j] = v;
  }
  return true;
}

/** The float64 value of canonical coordinate `i`: its top three limbs, by one fixed sequence of roundings. */
function readValue(limbs: Float64Array, i: number, stride: number, magnitude: Float64Array): number {
  const negative = signedMagnitude(limbs, i, stride, magnitude);
  let top = EXACT_LIMBS - 1;
  while (top >= 0 && magnitude[top] === 0) top--;
  if (top < 0) return 0;
  const low = Math.max(top - 2, 0);
  let v = 0;
  for (let j = top; j >= low; j--) v = v * LIMB + magnitude[j]!;
  const scaled = v * 2 ** (32 * low - 149);
  return negative ? -scaled : scaled;
}
