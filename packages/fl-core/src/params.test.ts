import { describe, expect, it } from 'vitest';
import { isFlCoreError } from './errors.js';
import {
  allFinite,
  assertSameLayout,
  axpy,
  cosineSimilarity,
  flatten,
  groupOf,
  layoutOf,
  splitByGroup,
  tensor,
  unflatten,
} from './params.js';

describe('params', () => {
  it('flatten and unflatten round-trip names, shapes and values', () => {
    const params = [tensor('image/a', [2, 2], new Float32Array([1, 2, 3, 4])), tensor('text/b', [3], new Float32Array([5, 6, 7]))];

    const flat = flatten(params);
    const back = unflatten(flat, layoutOf(params));

    expect(Array.from(flat)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(back).toEqual(params);
  });

  it('groups by the first path segment', () => {
    expect(groupOf('image/conv1/lora_a')).toBe('image');
    expect(groupOf('bias')).toBe('shared');
    const groups = splitByGroup([tensor('image/a', [1]), tensor('text/a', [1]), tensor('image/b', [1])]);
    expect([...groups.keys()]).toEqual(['image', 'text']);
    expect(groups.get('image')!.map((t) => t.name)).toEqual(['image/a', 'image/b']);
  });

  it('rejects a tensor whose values do not fill its shape', () => {
    expect(() => tensor('x', [2, 3], new Float32Array(5))).toThrowError(/PARAMS_MISMATCH/);
  });

  it('names the mismatching tensor', () => {
    const expected = [tensor('a', [2]), tensor('b', [3])];
    try {
      assertSameLayout(expected, [tensor('a', [2]), tensor('b', [4])]);
      expect.unreachable();
    } catch (err) {
      expect(isFlCoreError(err, 'PARAMS_MISMATCH')).toBe(true);
      expect(String(err)).toContain("'b'");
    }
  });

  it('vector ops compute by hand-checkable values', () => {
    const out = new Float32Array([1, 1]);
    axpy(out, 2, new Float32Array([3, -1]));
    expect(Array.from(out)).toEqual([7, -1]);
    expect(cosineSimilarity(new Float32Array([1, 0]), new Float32Array([0, 1]))).toBe(0);
    expect(cosineSimilarity(new Float32Array([2, 2]), new Float32Array([1, 1]))).toBeCloseTo(1, 12);
    expect(allFinite(new Float32Array([0, 1, -2]))).toBe(true);
    expect(allFinite(new Float32Array([0, Number.NaN]))).toBe(false);
    expect(allFinite(new Float32Array([Number.NEGATIVE_INFINITY]))).toBe(false);
  });

  it('allFinite finds a bad value in every unrolled lane and in the tail', () => {
    for (let length = 0; length <= 9; length++) {
      const values = Float32Array.from({ length }, (_, i) => (i % 2 === 0 ? -3.4e38 : i));
      expect(allFinite(values)).toBe(true);
      for (let at = 0; at < length; at++) {
        for (const bad of [Number.NaN, Infinity, -Infinity]) {
          const poisoned = values.slice();
          poisoned[at] = bad;
          expect(allFinite(poisoned), `length ${length}, ${bad} at ${at}`).toBe(false);
        }
      }
    }
  });
});
