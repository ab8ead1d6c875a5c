import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { isFlCoreError } from '../errors.js';
import { EXACT_LIMBS, ExactSum } from './exactSum.js';
import { fedAvgScalar } from './fedAvg.js';

/** Σ w·v exactly, in units of 2^-149, from the float32's own bits. */
function exactUnits(terms: readonly { values: Float32Array; weight: number }[], i: number): bigint {
  let total = 0n;
  for (const { values, weight } of terms) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)[i]!;
    const e = (bits >>> 23) & 0xff;
    const m = BigInt(e === 0 ? bits & 0x7fffff : (bits & 0x7fffff) | 0x800000);
    const units = (m * BigInt(weight)) << BigInt(e === 0 ? 0 : e - 1);
    total += bits >>> 31 ? -units : units;
  }
  return total;
}

/** The value each coordinate of an encoded sum holds, in units of 2^-149. */
function encodedUnits(bytes: Uint8Array): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(4, true);
  const out: bigint[] = [];
  let at = 8;
  for (let i = 0; i < length; i++) {
    const head = bytes[at]!;
    const first = bytes[at + 1]!;
    at += 2;
    let v = 0n;
    for (let j = 0; j < (head & 0x7f); j++, at += 4) v += BigInt(view.getUint32(at, true)) << BigInt(32 * (first + j));
    out.push(head & 0x80 ? -v : v);
  }
  return out;
}

const float32s = (length: number) => fc.float32Array({ minLength: length, maxLength: length, noDefaultInfinity: true, noNaN: true });
const weights = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

function sumOf(terms: readonly { values: Float32Array; weight: number }[], length: number): ExactSum {
  const sum = new ExactSum(length);
  for (const t of terms) sum.add(t.values, t.weight);
  return sum;
}

describe('ExactSum', () => {
  it('holds Σ w·v exactly, for any float32 (subnormals, extremes) and any whole weight below 2^53', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ values: float32s(5), weight: weights }), { minLength: 1, maxLength: 12 }), (terms) => {
        const units = encodedUnits(sumOf(terms, 5).encode());
        for (let i = 0; i < 5; i++) expect(units[i]).toBe(exactUnits(terms, i));
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same bits in any order and any split into merged parts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ values: float32s(4), weight: weights }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(3), { minLength: 10, maxLength: 10 }),
        (terms, parts) => {
          const whole = sumOf(terms, 4);
          const reversed = sumOf([...terms].reverse(), 4);
          const pieces = [0, 1, 2, 3].map((p) =>
            sumOf(
              terms.filter((_, k) => parts[k] === p),
              4,
            ),
          );
          const merged = new ExactSum(4);
          for (const p of pieces.reverse()) merged.merge(ExactSum.decode(p.encode(), 4));
          expect(reversed.encode()).toEqual(whole.encode());
          expect(merged.encode()).toEqual(whole.encode());
          const total = terms.reduce((n, t) => n + t.weight, 0) || 1;
          expect(merged.quotient(total)).toEqual(whole.quotient(total));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps what float arithmetic loses: a tiny term beside two huge ones that cancel', () => {
    const sum = new ExactSum(1);
    sum.add(Float32Array.of(1e30), 1);
    sum.add(Float32Array.of(1e-30), 1);
    sum.add(Float32Array.of(-1e30), 1);
    expect(1e30 + 1e-30 - 1e30).toBe(0);
    expect(sum.quotient(1)[0]).toBe(Math.fround(1e-30));
  });

  it('agrees with the float64 mean to within one float32 step', () => {
    const rng = fc.sample(
      fc.array(
        fc.record({ values: fc.float32Array({ minLength: 64, maxLength: 64, min: -1, max: 1, noNaN: true }), weight: fc.integer({ min: 1, max: 500 }) }),
        { minLength: 1, maxLength: 20 },
      ),
      { numRuns: 20, seed: 7 },
    );
    for (const terms of rng) {
      const total = terms.reduce((n, t) => n + t.weight, 0);
      const exact = sumOf(terms, 64).quotient(total);
      const float = fedAvgScalar(
        terms.map((t) => t.values),
        terms.map((t) => t.weight),
      );
      for (let i = 0; i < 64; i++) expect(Math.abs(exact[i]! - float[i]!)).toBeLessThanOrEqual(2 ** -23 * Math.max(Math.abs(float[i]!), 2 ** -126));
    }
  });

  it('stays exact past carry passes (limbs would outgrow 2^53 without them)', () => {
    const sum = new ExactSum(1);
    // A shift of 31 bits puts an odd amount just under 2^32 into one limb per deposit, so without
    // carries that limb passes 2^53 and its float64 sum rounds.
    const value = Float32Array.of((2 ** 24 - 1) * 2 ** -22);
    const weight = 2 ** 26 - 3;
    const n = 3 * 2 ** 20;
    for (let k = 0; k < n; k++) sum.add(value, weight);
    expect(encodedUnits(sum.encode())[0]).toBe(exactUnits([{ values: value, weight }], 0) * BigInt(n));
    expect(sum.quotient(n * weight)[0]).toBe(value[0]);
  });

  it('refuses a fractional, negative or unsafe weight, a wrong length, NaN or Infinity, and changes nothing', () => {
    const sum = new ExactSum(2);
    sum.add(Float32Array.of(1.5, -2), 3);
    const before = sum.encode();
    expectFlCoreError(() => sum.add(Float32Array.of(1, 1), 0.5), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => sum.add(Float32Array.of(1, 1), -1), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => sum.add(Float32Array.of(1, 1), 2 ** 53), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => sum.add(Float32Array.of(1), 1), 'PARAMS_MISMATCH');
    expectFlCoreError(() => sum.add(Float32Array.of(1, Number.NaN), 1), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => sum.add(Float32Array.of(Number.POSITIVE_INFINITY, 1), 1), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => sum.merge(new ExactSum(3)), 'PARAMS_MISMATCH');
    expectFlCoreError(() => sum.quotient(0), 'AGG_BAD_WEIGHTS');
    expect(sum.encode()).toEqual(before);
    expect(Array.from(sum.quotient(3))).toEqual([1.5, -2]);
  });

  it('reads back only canonical bytes of the expected length', () => {
    const sum = new ExactSum(3);
    sum.add(Float32Array.of(1, -0.25, 0), 7);
    const bytes = sum.encode();
    expect(ExactSum.decode(bytes, 3).encode()).toEqual(bytes);
    const tampered = (at: number, value: number) => {
      const copy = bytes.slice();
      copy[at] = value;
      return copy;
    };
    expectFlCoreError(() => ExactSum.decode(bytes, 4), 'CODEC_BAD_LENGTH');
    expectFlCoreError(() => ExactSum.decode(tampered(0, 0), 3), 'CODEC_BAD_MAGIC');
    expectFlCoreError(() => ExactSum.decode(bytes.subarray(0, bytes.byteLength - 1), 3), 'CODEC_TRUNCATED');
    expectFlCoreError(() => ExactSum.decode(Uint8Array.of(...bytes, 0), 3), 'CODEC_TRAILING_BYTES');
    // Coordinate 0 is one limb: claiming it starts at limb 12 runs past the accumulator.
    expectFlCoreError(() => ExactSum.decode(tampered(9, EXACT_LIMBS), 3), 'CODEC_BAD_HEADER');
    // A zero limb leading a run is not canonical.
    expectFlCoreError(
      () =>
        ExactSum.decode(
          tampered(10, 0).map((b, i) => (i >= 10 && i < 14 ? 0 : b)),
          3,
        ),
      'CODEC_BAD_HEADER',
    );
    // The empty coordinate (the third) must not be negative.
    const last = bytes.byteLength - 2;
    expectFlCoreError(() => ExactSum.decode(tampered(last, 0x80), 3), 'CODEC_BAD_HEADER');
  });

  it('answers any bytes with a sum or a coded error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const withMagic = Uint8Array.of(0x43, 0x58, 0x53, 0x31, 2, 0, 0, 0, ...bytes);
        for (const b of [bytes, withMagic]) {
          try {
            ExactSum.decode(b, 2);
          } catch (err) {
            expect(isFlCoreError(err)).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
