/**
 * IEEE 754 binary16 ("half") conversion with round-to-nearest-even — IEEE Std 754-2008, §3.6 and §4.3.1.
 *
 * Error bounds (what the codec documents and tests): for |x| in the fp16 normal range
 * [2^-14, 65504], |x − half(x)| ≤ 2^-11·|x|; below it (subnormals, step 2^-24),
 * |x − half(x)| ≤ 2^-25. Finite values with |x| ≥ 65520 would round to ±Infinity, so they are refused
 * with `CODEC_OUT_OF_RANGE` instead of being silently turned into Infinity; NaN and ±Infinity are
 * refused with `CODEC_NON_FINITE`. Inputs are taken as float32 (the tensors on the wire are float32),
 * so a JS number is first rounded to float32.
 */
import { FlCoreError } from '../errors.js';

/** Largest finite fp16 value. */
export const FP16_MAX = 65504;

/** Returned by {@link halfFromFloatBits} for NaN or ±Infinity. */
export const HALF_NON_FINITE = -1;
/** Returned by {@link halfFromFloatBits} for finite values beyond the fp16 range. */
export const HALF_OVERFLOW = -2;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * fp16 bits for the float32 with bit pattern `f`, or a negative sentinel ({@link HALF_NON_FINITE},
 * {@link HALF_OVERFLOW}); the codec's hot loop calls this so that it can report the offending index.
 */
export function halfFromFloatBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const abs = f & 0x7fffffff;
  if (abs >= 0x7f800000) return HALF_NON_FINITE;
  // 0x477ff000 is 65520, the midpoint between 65504 and 2^16; ties go to the even neighbour, 2^16 = Inf.
  if (abs >= 0x477ff000) return HALF_OVERFLOW;
  if (abs < 0x38800000) {
    // Below 2^-14: fp16 subnormal (or zero). 2^-25 itself is a tie between 0 and 2^-24 → 0 (even).
    if (abs <= 0x33000000) return sign;
    const exp = abs >>> 23;
    const mant = (abs & 0x7fffff) | 0x800000;
    const shift = 126 - exp; // 14..24: aligns the 24-bit significand to units of 2^-24
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let q = mant >>> shift;
    if (rem > half || (rem === half && (q & 1) === 1)) q++;
    return sign | q; // q may reach 0x400, which is exactly the smallest normal's bit pattern
  }
  let q = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
  const rem = abs & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent; overflow was excluded above.
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++;
  return sign | q;
}

/** fp16 bit pattern of `x` (rounded to float32 first), round-to-nearest-even; throws a coded error if not representable. */
export function float32ToFloat16Bits(x: number): number {
  scratchF32[0] = x;
  const h = halfFromFloatBits(scratchU32[0]!);
  if (h === HALF_NON_FINITE) throw new FlCoreError('CODEC_NON_FINITE', `float32ToFloat16Bits: got ${x}`);
  if (h === HALF_OVERFLOW) throw new FlCoreError('CODEC_OUT_OF_RANGE', `float32ToFloat16Bits: ${x} is beyond the fp16 range (±${FP16_MAX})`);
  return h;
}

/** The value of fp16 bit pattern `bits` (low 16 bits used); exponent 31 gives ±Infinity or NaN. */
export function float16BitsToFloat32(bits: number): number {
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

// All 65,536 fp16 values as float32 (256 KiB), built on first decode: a table lookup per element is
// the cheapest exact conversion in JS.
let halfTable: Float32Array | undefined;

/** Lookup table from fp16 bits to value, shared by decoders. */
export function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = float16BitsToFloat32(h);
    halfTable = t;
  }
  return halfTable;
}
