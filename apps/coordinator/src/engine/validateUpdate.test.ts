import { createUpdateArena, crc32, encodeUpdate, layoutOf, tensor } from '@chorus/fl-core';
import type { Tensor, UpdateArena } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '@chorus/protocol';
import { fastCrc32 } from '../codec/fastCrc32.js';
import { isCoordinatorError } from '../errors.js';
import { validateUpdate } from './validateUpdate.js';
import type { UpdateExpectations } from './validateUpdate.js';

const global: Tensor[] = [
  tensor('image/a', [2, 2], new Float32Array([1, 2, 3, 4])),
  tensor('image/b', [2], new Float32Array([0, 0])),
  tensor('text/a', [3], new Float32Array([0, 0, 0])),
  tensor('fusion/w', [1], new Float32Array([5])),
];
const expectations: UpdateExpectations = { taskId: 't', serverRound: 4, clientId: 'c1', modalities: ['image'], global, maxUpdateBytes: 1024, normBound: 3 };

function encode(tensors: Tensor[], header: Partial<{ taskId: string; round: number; clientId: string; kind: 'delta' | 'model' }> = {}): Uint8Array {
  return encodeUpdate({ kind: 'delta', taskId: 't', round: 4, clientId: 'c1', encoding: 'fp32', tensors, ...header });
}

const imageDelta = (v: number): Tensor[] => [tensor('image/a', [2, 2], new Float32Array(4).fill(v)), tensor('image/b', [2], new Float32Array(2).fill(v))];

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return 'ok';
}

// Every check runs on both paths: a fresh array per upload, and an arena of each kernel (rows in WebAssembly memory or plain arrays).
const PATHS: [string, () => Partial<UpdateExpectations>][] = [
  ['a fresh array', () => ({})],
  ['an arena (auto kernel)', () => ({ arena: createUpdateArena({ layout: layoutOf(global), capacity: 4 }) })],
  ['an arena (scalar kernel)', () => ({ arena: createUpdateArena({ layout: layoutOf(global), capacity: 4, kernel: 'scalar' }) })],
];

describe.each(PATHS)('validateUpdate into %s', (_, path) => {
  it('accepts a delta over the client’s modality plus shared groups and reports its norm', () => {
    // Arrange: six values of 0.5 plus fusion 0.5 → ‖·‖ = sqrt(7 · 0.25)
    const bytes = encode([...imageDelta(0.5), tensor('fusion/w', [1], new Float32Array([0.5]))]);
    // Act
    const valid = validateUpdate(bytes, { ...expectations, ...path() });
    // Assert
    expect(valid.delta.map((t) => t.name)).toEqual(['image/a', 'image/b', 'fusion/w']);
    expect(valid.delta.map((t) => Array.from(t.values))).toEqual([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5], [0.5]]);
    expect(valid.norm).toBeCloseTo(Math.sqrt(7 * 0.25), 6);
    // Decoded once, into one row: every tensor is a view of the same buffer.
    expect(new Set(valid.delta.map((t) => t.values.buffer)).size).toBe(1);
  });

  it('maps each failure to its code', () => {
    // Arrange: one arena (or none) for every case, so each refusal must leave its row free
    const checked = { ...expectations, ...path() };
    const nan = encode(imageDelta(0.5));
    const view = new DataView(nan.buffer);
    // The last payload float before the checksum is image/b[1].
    view.setFloat32(nan.length - 8, Number.NaN, true);
    view.setUint32(nan.length - 4, crc32(nan.subarray(0, nan.length - 4)), true);
    // Act / Assert
    expect(codeOf(() => validateUpdate(new Uint8Array(2000), checked))).toBe('UPDATE_TOO_LARGE');
    expect(codeOf(() => validateUpdate(new Uint8Array([67, 72, 82, 83, 0]), checked))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(nan, checked))).toBe('UPDATE_NON_FINITE');
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.1), { round: 3 }), checked))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.1), { clientId: 'c2' }), checked))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.1), { kind: 'model', clientId: '' }), checked))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(encode([]), checked))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('image/a', [4], new Float32Array(4)), tensor('image/b', [2])]), checked))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('image/a', [2, 2])]), checked))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('text/a', [3])]), checked))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('audio/x', [1])]), checked))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode(imageDelta(2)), checked))).toBe('UPDATE_NORM');
    expect(checked.arena?.count ?? 0).toBe(0);
    expect(codeOf(() => validateUpdate(encode(imageDelta(2)), { ...checked, normBound: null }))).toBe('ok');
    expect(validateUpdate(encode(imageDelta(0.5)), checked).row).toBe(checked.arena ? 1 : undefined);
  });

  it('refuses more elements than the global holds before decoding payloads', () => {
    // Arrange: a tensor list longer than the global's
    const many = [...imageDelta(0), tensor('text/a', [3]), tensor('fusion/w', [1]), tensor('fusion/extra', [1])];
    // Act / Assert
    expect(codeOf(() => validateUpdate(encode(many), { ...expectations, ...path(), modalities: ['image', 'text'] }))).toBe('UPDATE_TOO_LARGE');
  });

  it('verifies with the CRC-32 it is given and still refuses a wrong checksum', () => {
    // Arrange
    let calls = 0;
    const counted = (bytes: Uint8Array): number => {
      calls++;
      return fastCrc32(bytes);
    };
    const withCrc = { ...expectations, ...path(), crc32: counted };
    const corrupt = encode(imageDelta(0.5));
    corrupt[corrupt.length - 1]! ^= 0x01;
    // Act / Assert
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.5)), withCrc))).toBe('ok');
    expect(codeOf(() => validateUpdate(corrupt, withCrc))).toBe('UPDATE_MALFORMED');
    expect(calls).toBe(2);
  });
});

describe('validateUpdate into an arena', () => {
  const arenaFor = (capacity: number): UpdateArena => createUpdateArena({ layout: layoutOf(global), capacity });

  it('returns views of the arena row, which counts, and leaves the groups not sent at zero', () => {
    // Arrange
    const arena = arenaFor(2);
    const bytes = encode([tensor('fusion/w', [1], new Float32Array([0.25])), ...imageDelta(0.5)]);
    // Act
    const valid = validateUpdate(bytes, { ...expectations, arena, crc32: fastCrc32 });
    // Assert: row = image/a (4), image/b (2), text/a (3), fusion/w (1)
    expect(valid.row).toBe(0);
    expect(arena.count).toBe(1);
    expect(valid.delta.map((t) => t.name)).toEqual(['fusion/w', 'image/a', 'image/b']);
    expect(valid.delta.map((t) => t.shape)).toEqual([[1], [2, 2], [2]]);
    expect(valid.delta.every((t) => t.values.buffer === arena.row(0).buffer)).toBe(true);
    expect(Array.from(arena.row(0))).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0.25]);
    expect(valid.norm).toBeCloseTo(Math.sqrt(6 * 0.25 + 0.0625), 6);
  });

  it('gives a refused upload’s row to the next accepted one', () => {
    // Arrange
    const arena = arenaFor(2);
    validateUpdate(encode(imageDelta(0.1)), { ...expectations, arena });
    // Act: an update over the norm bound, then a good one from another client
    const refused = codeOf(() => validateUpdate(encode(imageDelta(2)), { ...expectations, arena }));
    const next = validateUpdate(encode(imageDelta(0.3), { clientId: 'c2' }), { ...expectations, clientId: 'c2', arena });
    // Assert
    expect(refused).toBe('UPDATE_NORM');
    expect(next.row).toBe(1);
    expect(arena.count).toBe(2);
    expect(arena.row(1)[0]).toBeCloseTo(0.3, 6);
  });

  it('decodes into a fresh array once the arena is full, rather than grow it under earlier views', () => {
    // Arrange
    const arena = arenaFor(1);
    const first = validateUpdate(encode(imageDelta(0.1)), { ...expectations, arena });
    // Act
    const second = validateUpdate(encode(imageDelta(0.2), { clientId: 'c2' }), { ...expectations, clientId: 'c2', arena });
    // Assert
    expect(second.row).toBeUndefined();
    expect(arena.count).toBe(1);
    expect(arena.capacity).toBe(1);
    expect(first.delta[0]!.values[0]).toBeCloseTo(0.1, 6);
    expect(second.delta[0]!.values[0]).toBeCloseTo(0.2, 6);
  });

  it('refuses an arena whose layout is not the global’s as a server error', () => {
    // Arrange
    const arena = createUpdateArena({ layout: layoutOf(global.slice(0, 3)), capacity: 1 });
    // Act
    let error: unknown;
    try {
      validateUpdate(encode(imageDelta(0.1)), { ...expectations, arena });
    } catch (err) {
      error = err;
    }
    // Assert
    expect(isCoordinatorError(error, 'CONFIG_INVALID')).toBe(true);
  });
});

describe('validateUpdate with server-only groups (a split task’s edge)', () => {
  const splitGlobal: Tensor[] = [
    tensor('image/a', [2], new Float32Array([1, 2])),
    tensor('edge/w', [2], new Float32Array([0, 0])),
    tensor('edge/b', [1], new Float32Array([0])),
    tensor('fusion/split_head/w', [1], new Float32Array([0])),
  ];
  const splitExpectations: UpdateExpectations = { ...expectations, global: splitGlobal, normBound: null };
  const deviceDelta = (): Tensor[] => [tensor('image/a', [2], new Float32Array([0.5, 0.5])), tensor('fusion/split_head/w', [1], new Float32Array([0.5]))];
  const edgeDelta = (): Tensor[] => [tensor('edge/w', [2], new Float32Array([1, 1])), tensor('edge/b', [1], new Float32Array([1]))];
  const SPLIT_PATHS: [string, () => Partial<UpdateExpectations>][] = [
    ['a fresh array', () => ({})],
    ['an arena', () => ({ arena: createUpdateArena({ layout: layoutOf(splitGlobal), capacity: 2 }) })],
  ];

  it.each(SPLIT_PATHS)('refuses an update that sends edge tensors with UPDATE_SHAPE, and accepts it without them (into %s)', (_, path) => {
    // Arrange
    const checked = { ...splitExpectations, ...path(), serverGroups: ['edge'] };
    // Act
    const withEdge = codeOf(() => validateUpdate(encode([...deviceDelta(), ...edgeDelta()]), checked));
    const edgeOnly = codeOf(() => validateUpdate(encode(edgeDelta()), checked));
    const deviceOnly = validateUpdate(encode(deviceDelta()), checked);
    // Assert
    expect(withEdge).toBe('UPDATE_SHAPE');
    expect(edgeOnly).toBe('UPDATE_SHAPE');
    expect(deviceOnly.delta.map((t) => t.name)).toEqual(['image/a', 'fusion/split_head/w']);
    // The refusals left their rows free: the accepted update took the first.
    expect(deviceOnly.row).toBe(checked.arena ? 0 : undefined);
  });

  it('names the tensor and the group in the refusal', () => {
    // Act
    let error: unknown;
    try {
      validateUpdate(encode(edgeDelta()), { ...splitExpectations, serverGroups: ['edge'] });
    } catch (err) {
      error = err;
    }
    // Assert
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toMatch(/'edge\/w'.*'edge'/);
  });

  it('treats the edge as any shared group without serverGroups, or with an empty list', () => {
    // Arrange
    const bytes = encode([...deviceDelta(), ...edgeDelta()]);
    // Act
    const plain = validateUpdate(bytes, splitExpectations);
    const empty = validateUpdate(bytes, { ...splitExpectations, serverGroups: [] });
    // Assert
    expect(plain.delta.map((t) => t.name)).toEqual(['image/a', 'fusion/split_head/w', 'edge/w', 'edge/b']);
    expect(empty.norm).toBeCloseTo(plain.norm, 12);
    expect(plain.norm).toBeCloseTo(Math.sqrt(3 * 0.25 + 3), 6);
  });
});
