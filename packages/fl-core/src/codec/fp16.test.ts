import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFlCoreError } from '../errors.js';
import { FP16_MAX, float16BitsToFloat32, float32ToFloat16Bits } from './fp16.js';

const isFinitePattern = (h: number): boolean => (h & 0x7c00) !== 0x7c00;

describe('fp16', () => {
  it('converts hand-checkable values both ways', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(0.5)).toBe(0x3800);
    expect(float32ToFloat16Bits(FP16_MAX)).toBe(0x7bff);
    expect(float32ToFloat16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float16BitsToFloat32(0x3555)).toBe(0.333251953125);
    expect(float16BitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16BitsToFloat32(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
  });

  it('round-trips every finite fp16 bit pattern exactly', () => {
    const wrong: number[] = [];
    let checked = 0;
    for (let h = 0; h < 65536; h++) {
      if (!isFinitePattern(h)) continue;
      if (float32ToFloat16Bits(float16BitsToFloat32(h)) !== h) wrong.push(h);
      checked++;
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(65536 - 2 * 1024);
  });

  it('rounds every tie between adjacent fp16 values to the even one', () => {
    // Midpoints need 12 significant bits, so they are exact in float32 and are true ties.
    const wrong: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (float16BitsToFloat32(h) + float16BitsToFloat32(h + 1)) / 2;
      const even = (h & 1) === 0 ? h : h + 1;
      if (float32ToFloat16Bits(mid) !== even || float32ToFloat16Bits(-mid) !== (even | 0x8000)) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds just off a tie to the nearer neighbour', () => {
    // 1 + 2^-11 is the tie between 1 (0x3c00) and 1 + 2^-10 (0x3c01); one float32 step either side decides it.
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -23)).toBe(0x3c01);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0); // tie between 0 and 2^-24
    expect(float32ToFloat16Bits(2 ** -25 + 2 ** -40)).toBe(1);
  });

  it('keeps values up to 65519.99 (they round to 65504) and refuses 65520 and beyond', () => {
    expect(float32ToFloat16Bits(65519.99)).toBe(0x7bff);
    for (const x of [65520, -65520, 1e6, 3.4e38]) {
      expect(() => float32ToFloat16Bits(x)).toThrowError(/CODEC_OUT_OF_RANGE/);
    }
    for (const x of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => float32ToFloat16Bits(x)).toThrowError(/CODEC_NON_FINITE/);
    }
  });

  it('stays within the stated error bounds (relative 2^-11 normal, absolute 2^-25 subnormal)', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -65519, max: 65519 }), (x) => {
        const y = float16BitsToFloat32(float32ToFloat16Bits(x));
        const err = Math.abs(x - y);
        if (Math.abs(x) >= 2 ** -14) expect(err).toBeLessThanOrEqual(2 ** -11 * Math.abs(x));
        else expect(err).toBeLessThanOrEqual(2 ** -25);
      }),
      { numRuns: 5000 },
    );
  });

  it('throws coded errors only', () => {
    try {
      float32ToFloat16Bits(1e9);
      expect.unreachable();
    } catch (err) {
      expect(isFlCoreError(err, 'CODEC_OUT_OF_RANGE')).toBe(true);
    }
  });
});
