import { describe, expect, it } from 'vitest';
import { isFlCoreError } from './errors.js';
import fc from 'fast-check';
import {
  allFinite,
  assertSameLayout,
  axpy,
  clipFactor,
  contiguousView,
  clipParametersToNorm,
  clipToNorm,
  cosineFromSums,
  cosineSimilarity,
  dot,
  cosineSimilarityOfParts,
  flatten,
  groupOf,
  layoutOf,
  parametersDelta,
  parametersNorm,
  splitByGroup,
  squaredNorm,
  tensor,
  unflatten,
} from './params.js';
import { expectFlCoreError } from './errors.test-util.js';

const update = (image: number[], text: number[]) => [
  tensor('image/w', [image.length], Float32Array.from(image)),
  tensor('text/w', [text.length], Float32Array.from(text)),
];

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

describe('shared primitives: norm, clip, cosine, delta', () => {
  it('parametersNorm is the norm of the flattened tensors', () => {
    expect(parametersNorm(update([3], [4]))).toBe(5);
    expect(parametersNorm([])).toBe(0);
  });

  it('cosineFromSums of dot products is cosineSimilarity bit for bit, so a norm computed once can serve many pairs', () => {
    const vector = fc.array(fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(
        vector.chain((a) =>
          fc.tuple(
            fc.constant(a),
            fc.array(fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { minLength: a.length, maxLength: a.length }),
          ),
        ),
        ([xs, ys]) => {
          const a = Float32Array.from(xs);
          const b = Float32Array.from(ys);
          expect(Object.is(cosineFromSums(dot(a, b), dot(a, a), dot(b, b)), cosineSimilarity(a, b))).toBe(true);
        },
      ),
    );
  });

  it('clipFactor is min(1, maxNorm / norm), passing non-finite norms on', () => {
    expect(clipFactor(5, 1)).toBeCloseTo(0.2, 15);
    expect(clipFactor(0.5, 1)).toBe(1);
    expect(clipFactor(Number.NaN, 1)).toBe(1);
    expect(clipFactor(Infinity, 1)).toBe(0);
  });

  it('clipToNorm scales a flat vector onto the ball as a copy', () => {
    const v = new Float32Array([3, 4]);

    const out = clipToNorm(v, 1);
    const inside = clipToNorm(v, 10);

    expect(out).toMatchObject({ norm: 5 });
    expect(Array.from(out.clipped)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(inside.factor).toBe(1);
    expect(inside.clipped).not.toBe(v);
    expect(Array.from(v)).toEqual([3, 4]);
    expectFlCoreError(() => clipToNorm(v, 0), 'AGG_BAD_CONFIG');
  });

  it('clipParametersToNorm scales the whole update onto the ball and leaves small ones alone', () => {
    // ‖(3, 4)‖ = 5 across two tensors.
    const big = update([3], [4]);

    const clipped = clipParametersToNorm(big, 1);
    const untouched = clipParametersToNorm(big, 10);

    expect(clipped.norm).toBe(5);
    expect(clipped.factor).toBeCloseTo(0.2, 12);
    expect(Array.from(clipped.clipped[0]!.values)).toEqual([Math.fround(0.6)]);
    expect(Array.from(clipped.clipped[1]!.values)).toEqual([Math.fround(0.8)]);
    expect(untouched.factor).toBe(1);
    expect(untouched.clipped[0]!.values).not.toBe(big[0]!.values);
    expect(Array.from(big[0]!.values)).toEqual([3]);
    expectFlCoreError(() => clipParametersToNorm(big, Number.NaN), 'AGG_BAD_CONFIG');
  });

  it('clipping never leaves a finite vector outside the ball (property)', () => {
    const value = fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 8 }), fc.double({ min: 1e-3, max: 1e3, noNaN: true }), (xs, maxNorm) => {
        const { clipped, norm: before } = clipToNorm(Float32Array.from(xs), maxNorm);
        const after = parametersNorm([tensor('w', [clipped.length], clipped)]);
        expect(after).toBeLessThanOrEqual(maxNorm * (1 + 1e-6));
        if (before <= maxNorm) expect(Array.from(clipped)).toEqual(Array.from(Float32Array.from(xs)));
      }),
    );
  });

  it('cosineSimilarityOfParts equals the cosine of the concatenations', () => {
    const a = [new Float32Array([1, 2]), new Float32Array([3])];
    const b = [new Float32Array([-1, 0]), new Float32Array([2])];

    const parts = cosineSimilarityOfParts([
      [a[0]!, b[0]!],
      [a[1]!, b[1]!],
    ]);

    expect(parts).toBeCloseTo(cosineSimilarity(new Float32Array([1, 2, 3]), new Float32Array([-1, 0, 2])), 12);
    expect(cosineSimilarityOfParts([])).toBe(0);
    expectFlCoreError(() => cosineSimilarityOfParts([[a[0]!, b[1]!]]), 'PARAMS_MISMATCH');
  });

  it('parametersDelta is local − global in the global order, by name', () => {
    const global = update([1, 2], [10]);
    const local = [tensor('text/w', [1], new Float32Array([7])), tensor('image/w', [2], new Float32Array([4, 0]))];

    const delta = parametersDelta(local, global);

    expect(delta.map((t) => [t.name, Array.from(t.values)])).toEqual([
      ['image/w', [3, -2]],
      ['text/w', [-3]],
    ]);
    expectFlCoreError(() => parametersDelta(local.slice(0, 1), global), 'PARAMS_MISMATCH');
    expectFlCoreError(() => parametersDelta([tensor('image/w', [1]), local[0]!], global), 'PARAMS_MISMATCH');
  });
});

describe('contiguousView and squaredNorm', () => {
  it('views tensors that lie back to back in one buffer, and refuses gaps, other buffers and reordering', () => {
    const row = new Float32Array([1, 2, 3, 4, 5, 6]);
    const a = { name: 'g/a', shape: [2], values: row.subarray(0, 2) };
    const b = { name: 'g/b', shape: [3], values: row.subarray(2, 5) };
    const gap = { name: 'g/c', shape: [1], values: row.subarray(5, 6) };
    const view = contiguousView([a, b])!;
    expect([...view]).toEqual([1, 2, 3, 4, 5]);
    expect(view.buffer).toBe(row.buffer);
    expect(contiguousView([a, gap])).toBeNull();
    expect(contiguousView([b, a])).toBeNull();
    expect(contiguousView([a, { name: 'g/x', shape: [3], values: new Float32Array(3) }])).toBeNull();
    expect(contiguousView([])).toBeNull();
  });

  it('sums squares of any length exactly for small integers', () => {
    for (let n = 0; n < 11; n++) {
      const a = Float32Array.from({ length: n }, (_, i) => i - 3);
      expect(squaredNorm(a)).toBe([...a].reduce((s, x) => s + x * x, 0));
    }
  });
});
