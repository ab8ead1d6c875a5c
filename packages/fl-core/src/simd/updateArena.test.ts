import { describe, expect, it } from 'vitest';
import { encodeUpdate } from '../codec/codec.js';
import type { DecodeLimits } from '../codec/codec.js';
import { crc32 } from '../codec/crc32.js';
import { isFlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { layoutOf, tensor } from '../params.js';
import type { Tensor } from '../params.js';
import { createUpdateArena } from './updateArena.js';

const KERNELS = ['auto', 'scalar'] as const;
const LIMITS: DecodeLimits = { maxBytes: 4096 };
// Layout a: [2] then b: [2]; a row is [a0, a1, b0, b1].
const LAYOUT = layoutOf([tensor('a', [2]), tensor('b', [2])]);

function message(clientId: string, tensors: Tensor[]): Uint8Array {
  return encodeUpdate({ kind: 'delta', taskId: 'task', round: 1, clientId, encoding: 'fp32', tensors });
}

const full = (clientId: string, a: number[], b: number[]): Uint8Array =>
  message(clientId, [tensor('a', [2], new Float32Array(a)), tensor('b', [2], new Float32Array(b))]);

function codeOf(fn: () => unknown): FlCoreErrorCode | 'refused by accept' | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (isFlCoreError(err)) return err.code;
    if (err instanceof Error && err.message === 'refused') return 'refused by accept';
    throw err;
  }
}

describe.each(KERNELS)('UpdateArena.decode, %s kernel', (kernel) => {
  it('runs accept on the written row before counting it, with the header and the tensors carried', () => {
    const arena = createUpdateArena({ layout: LAYOUT, capacity: 2, kernel });
    const seen: { clientId: string; row: number; tensorIndices: readonly number[]; values: number[]; countDuring: number }[] = [];

    const decoded = arena.decode(full('c1', [1, 2], [3, 4]), LIMITS, {
      accept: (d, values) =>
        seen.push({ clientId: d.clientId, row: d.row, tensorIndices: d.tensorIndices, values: Array.from(values), countDuring: arena.count }),
    });

    expect(seen).toEqual([{ clientId: 'c1', row: 0, tensorIndices: [0, 1], values: [1, 2, 3, 4], countDuring: 0 }]);
    expect(decoded.row).toBe(0);
    expect(arena.count).toBe(1);
  });

  it('leaves the row free when accept throws, so the next message takes it', () => {
    const arena = createUpdateArena({ layout: LAYOUT, capacity: 2, kernel });
    arena.decode(full('c1', [1, 2], [3, 4]), LIMITS);

    const refused = codeOf(() =>
      arena.decode(full('c2', [9, 9], [9, 9]), LIMITS, {
        accept: () => {
          throw new Error('refused');
        },
      }),
    );
    const next = arena.decode(full('c3', [5, 6], [7, 8]), LIMITS);

    expect(refused).toBe('refused by accept');
    expect(next.row).toBe(1);
    expect(arena.count).toBe(2);
    expect(Array.from(arena.row(0))).toEqual([1, 2, 3, 4]);
    expect(Array.from(arena.row(1))).toEqual([5, 6, 7, 8]);
  });

  it('leaves the row free when the codec refuses the message', () => {
    const arena = createUpdateArena({ layout: LAYOUT, capacity: 1, kernel });
    const corrupt = full('c1', [1, 2], [3, 4]);
    corrupt[corrupt.length - 1]! ^= 0xff;

    expect(codeOf(() => arena.decode(corrupt, LIMITS))).toBe('CODEC_CHECKSUM');
    expect(arena.count).toBe(0);
    expect(arena.decode(full('c2', [1, 1], [1, 1]), LIMITS).row).toBe(0);
  });

  it('zeroes what a partial message leaves out, even over an earlier round’s values', () => {
    const arena = createUpdateArena({ layout: LAYOUT, capacity: 1, kernel });
    arena.decode(full('c1', [1, 2], [3, 4]), LIMITS);
    arena.clear();

    const decoded = arena.decode(message('c2', [tensor('b', [2], new Float32Array([5, 6]))]), LIMITS, { partial: true });

    expect(decoded.tensorIndices).toEqual([1]);
    expect(Array.from(arena.row(0))).toEqual([0, 0, 5, 6]);
  });

  it('refuses a partial message unless asked to accept one', () => {
    const arena = createUpdateArena({ layout: LAYOUT, capacity: 1, kernel });

    expect(codeOf(() => arena.decode(message('c1', [tensor('a', [2], new Float32Array([1, 2]))]), LIMITS))).toBe('PARAMS_MISMATCH');
    expect(arena.count).toBe(0);
  });

  it('verifies with the checksum function passed in the limits', () => {
    const arena = createUpdateArena({ layout: LAYOUT, capacity: 1, kernel });
    let calls = 0;
    const counted = (bytes: Uint8Array): number => {
      calls++;
      return crc32(bytes);
    };

    arena.decode(full('c1', [1, 2], [3, 4]), { ...LIMITS, crc32: counted });

    expect(calls).toBe(1);
  });
});
