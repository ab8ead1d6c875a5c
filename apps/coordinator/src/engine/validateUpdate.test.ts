import { crc32, encodeUpdate, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '@chorus/protocol';
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

describe('validateUpdate', () => {
  it('accepts a delta over the client’s modality plus shared groups and reports its norm', () => {
    // Arrange: six values of 0.5 plus fusion 0.5 → ‖·‖ = sqrt(7 · 0.25)
    const bytes = encode([...imageDelta(0.5), tensor('fusion/w', [1], new Float32Array([0.5]))]);
    // Act
    const valid = validateUpdate(bytes, expectations);
    // Assert
    expect(valid.delta.map((t) => t.name)).toEqual(['image/a', 'image/b', 'fusion/w']);
    expect(valid.norm).toBeCloseTo(Math.sqrt(7 * 0.25), 6);
  });

  it('maps each failure to its code', () => {
    // Arrange
    const nan = encode(imageDelta(0.5));
    const view = new DataView(nan.buffer);
    // The last payload float before the checksum is image/b[1].
    view.setFloat32(nan.length - 8, Number.NaN, true);
    view.setUint32(nan.length - 4, crc32(nan.subarray(0, nan.length - 4)), true);
    // Act / Assert
    expect(codeOf(() => validateUpdate(new Uint8Array(2000), expectations))).toBe('UPDATE_TOO_LARGE');
    expect(codeOf(() => validateUpdate(new Uint8Array([67, 72, 82, 83, 0]), expectations))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(nan, expectations))).toBe('UPDATE_NON_FINITE');
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.1), { round: 3 }), expectations))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.1), { clientId: 'c2' }), expectations))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(encode(imageDelta(0.1), { kind: 'model', clientId: '' }), expectations))).toBe('UPDATE_MALFORMED');
    expect(codeOf(() => validateUpdate(encode([]), expectations))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('image/a', [4], new Float32Array(4)), tensor('image/b', [2])]), expectations))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('image/a', [2, 2])]), expectations))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('text/a', [3])]), expectations))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode([tensor('audio/x', [1])]), expectations))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => validateUpdate(encode(imageDelta(2)), expectations))).toBe('UPDATE_NORM');
    expect(codeOf(() => validateUpdate(encode(imageDelta(2)), { ...expectations, normBound: null }))).toBe('ok');
  });

  it('refuses more elements than the global holds before decoding payloads', () => {
    // Arrange: a tensor list longer than the global's
    const many = [...imageDelta(0), tensor('text/a', [3]), tensor('fusion/w', [1]), tensor('fusion/extra', [1])];
    // Act / Assert
    expect(codeOf(() => validateUpdate(encode(many), { ...expectations, modalities: ['image', 'text'] }))).toBe('UPDATE_TOO_LARGE');
  });
});
