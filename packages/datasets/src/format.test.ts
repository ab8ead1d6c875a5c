import fc from 'fast-check';
import { float16BitsToFloat32 } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';

import { isDatasetError } from './errors.js';
import { HEADER_BYTES, decodeElements, decodeHeader, encodeArtifact, encodeHeader, float32ToFloat16BitsSaturating } from './format.js';

describe('artifact header', () => {
  it('round-trips dtype, count and record shape', () => {
    const header = { dtype: 'uint16' as const, count: 3, recordShape: [2, 5] };

    const bytes = encodeHeader(header);

    expect(bytes.length).toBe(HEADER_BYTES);
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe('CHDS');
    expect(decodeHeader(bytes)).toEqual(header);
  });

  it('refuses a short header, a wrong magic, an unknown dtype and a dimension past the rank', () => {
    const good = encodeHeader({ dtype: 'uint8', count: 1, recordShape: [4] });
    const badMagic = good.slice();
    badMagic[0] = 0x58;
    const badDtype = good.slice();
    badDtype[5] = 99;
    const pastRank = good.slice();
    pastRank[16] = 7;

    expect(() => decodeHeader(good.subarray(0, 31))).toThrow(expect.objectContaining({ code: 'ARTIFACT_TRUNCATED' }));
    expect(() => decodeHeader(badMagic)).toThrow(expect.objectContaining({ code: 'ARTIFACT_BAD_MAGIC' }));
    expect(() => decodeHeader(badDtype)).toThrow(expect.objectContaining({ code: 'ARTIFACT_BAD_HEADER' }));
    expect(() => decodeHeader(pastRank)).toThrow(expect.objectContaining({ code: 'ARTIFACT_BAD_HEADER' }));
  });

  it('either decodes random bytes or throws a coded DatasetError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.boolean(), (bytes, withMagic) => {
        if (withMagic && bytes.length >= 4) bytes.set([0x43, 0x48, 0x44, 0x53], 0);
        try {
          const header = decodeHeader(bytes);
          expect(header.recordShape.length).toBeLessThanOrEqual(4);
        } catch (err) {
          expect(isDatasetError(err)).toBe(true);
        }
      }),
    );
  });
});

describe('elements', () => {
  it('encodes little-endian and decodes back for every dtype', () => {
    const int16 = encodeArtifact({ dtype: 'int16', count: 2, recordShape: [] }, [-2, 258]);
    const uint32 = encodeArtifact({ dtype: 'uint32', count: 1, recordShape: [] }, [0x01020304]);

    expect([...int16.subarray(HEADER_BYTES)]).toEqual([0xfe, 0xff, 0x02, 0x01]);
    expect([...uint32.subarray(HEADER_BYTES)]).toEqual([4, 3, 2, 1]);
    expect([...decodeElements('int16', int16.subarray(HEADER_BYTES))]).toEqual([-2, 258]);
    expect([...decodeElements('uint32', uint32.subarray(HEADER_BYTES))]).toEqual([0x01020304]);
  });

  it('refuses a value count that disagrees with the header, and a ragged byte length', () => {
    expect(() => encodeArtifact({ dtype: 'uint8', count: 2, recordShape: [3] }, [1, 2, 3])).toThrow(expect.objectContaining({ code: 'ARTIFACT_MISMATCH' }));
    expect(() => decodeElements('uint16', new Uint8Array(3))).toThrow(expect.objectContaining({ code: 'ARTIFACT_TRUNCATED' }));
  });
});

describe('float16', () => {
  it('matches hand-checked IEEE 754 binary16 bit patterns', () => {
    expect(float32ToFloat16BitsSaturating(1)).toBe(0x3c00);
    expect(float32ToFloat16BitsSaturating(-2)).toBe(0xc000);
    expect(float32ToFloat16BitsSaturating(0.5)).toBe(0x3800);
    expect(float32ToFloat16BitsSaturating(65504)).toBe(0x7bff);
    expect(float32ToFloat16BitsSaturating(65520)).toBe(0x7c00); // rounds past the largest finite half
    expect(float32ToFloat16BitsSaturating(-1e6)).toBe(0xfc00); // saturates where the wire codec refuses
    expect(float32ToFloat16BitsSaturating(Number.NaN)).toBe(0x7e00);
    expect(float32ToFloat16BitsSaturating(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16BitsSaturating(2 ** -26)).toBe(0x0000);
    expect(float32ToFloat16BitsSaturating(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float32ToFloat16BitsSaturating(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(float16BitsToFloat32(0x3555)).toBeCloseTo(1 / 3, 3);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
  });

  it('round-trips every finite half exactly', () => {
    let mismatches = 0;
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue;
      if (float32ToFloat16BitsSaturating(float16BitsToFloat32(bits)) !== bits) mismatches++;
    }

    expect(mismatches).toBe(0);
  });
});
