import { crc32, decodeUpdate, encodeUpdate, isFlCoreError, tensor } from '@chorus/fl-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chooseCrc32, fastCrc32, nativeCrc32Available } from './fastCrc32.js';

describe('fastCrc32', () => {
  it('is the native CRC-32 on this Node (engines asks for ≥ 20.19, which has zlib.crc32)', () => {
    expect(nativeCrc32Available).toBe(true);
  });

  it('equals fl-core’s crc32 on random bytes, subarray views included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat({ max: 16 }), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        return fastCrc32(bytes) === crc32(bytes) && fastCrc32(view) === crc32(view);
      }),
      { numRuns: 300, seed: 12 },
    );
    expect(fastCrc32(Uint8Array.from('123456789', (c) => c.charCodeAt(0)))).toBe(0xcbf43926);
  });

  it('falls back to fl-core’s crc32 where Node has no native one', () => {
    expect(chooseCrc32(undefined)).toBe(crc32);
  });

  it('lets the codec round-trip and still refuses a wrong checksum', () => {
    const bytes = encodeUpdate(
      { kind: 'delta', taskId: 't', round: 1, clientId: 'c', encoding: 'fp32', tensors: [tensor('w', [3], new Float32Array([1, 2, 3]))] },
      { crc32: fastCrc32 },
    );
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 2]! ^= 0x40;

    const decoded = decodeUpdate(bytes, { maxBytes: 1024, crc32: fastCrc32 });
    let code = 'no error';
    try {
      decodeUpdate(corrupt, { maxBytes: 1024, crc32: fastCrc32 });
    } catch (err) {
      code = isFlCoreError(err) ? err.code : 'not an FlCoreError';
    }

    expect(bytes).toEqual(
      encodeUpdate({ kind: 'delta', taskId: 't', round: 1, clientId: 'c', encoding: 'fp32', tensors: [tensor('w', [3], new Float32Array([1, 2, 3]))] }),
    );
    expect(Array.from(decoded.tensors[0]!.values)).toEqual([1, 2, 3]);
    expect(code).toBe('CODEC_CHECKSUM');
  });
});
