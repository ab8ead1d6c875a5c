import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { wasmSimdAvailable } from '../simd/kernels.js';
import { MEDIAN_SIMD_MAX_UPDATES, median, medianScalar, medianSimd } from './median.js';
import { expectFlCoreError } from '../errors.test-util.js';

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);
const list = (v: Float32Array): number[] => Array.from(v);

/** Sort-based reference: rank (n−1)/2, or the float64 mean of the two middle values, in float32; zero as +0. */
function sortedMedian(updates: readonly Float32Array[]): Float32Array {
  const n = updates.length;
  const out = new Float32Array(updates[0]!.length);
  const column = new Float64Array(n);
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < n; k++) column[k] = updates[k]![i]!;
    column.sort();
    const r = (n - 1) >>> 1;
    out[i] = Math.fround(n % 2 === 1 ? column[r]! : (column[r]! + column[r + 1]!) / 2) + 0;
  }
  return out;
}

/** `count` updates of `length` values; a coarse `quantum` (0: none) makes ties common. */
function randomUpdates(seed: number, count: number, length: number, quantum: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => {
    const offset = rng() - 0.5;
    return Float32Array.from({ length }, () => {
      const x = offset + (rng() - 0.5) * 0.2;
      return quantum > 0 ? Math.round(x / quantum) * quantum : x;
    });
  });
}

function simdOrThrow(out: Float32Array | null): Float32Array {
  if (out === null) throw new Error('WebAssembly SIMD unavailable');
  return out;
}

describe('medianScalar (the fallback)', () => {
  it('takes the middle value for odd n and the mean of the two middle values for even n', () => {
    const rows = [f32(1, 2, 3, 4), f32(3, 0, -3, 8), f32(5, 4, 0, -6), f32(0, 0, 0, 0)];

    expect(list(medianScalar(rows.slice(0, 3)))).toEqual([3, 2, 0, 4]);
    expect(list(medianScalar(rows))).toEqual([2, 1, 0, 2]);
  });

  it('returns a zero median as +0', () => {
    const out = medianScalar([f32(-0, 0), f32(-0, -0), f32(1, -0)]);

    expect(Object.is(out[0], 0)).toBe(true);
    expect(Object.is(out[1], 0)).toBe(true);
  });
});

describe.runIf(wasmSimdAvailable())('median on the SIMD kernel', () => {
  it('takes the middle value for odd n and the mean of the two middle values for even n', () => {
    const rows = [f32(1, 2, 3, 4), f32(3, 0, -3, 8), f32(5, 4, 0, -6), f32(0, 0, 0, 0)];

    expect(list(simdOrThrow(medianSimd(rows.slice(0, 3))))).toEqual([3, 2, 0, 4]);
    expect(list(simdOrThrow(medianSimd(rows)))).toEqual([2, 1, 0, 2]);
    expect(list(simdOrThrow(medianSimd([f32(7, -1)])))).toEqual([7, -1]);
  });

  it('finds the middle of columns longer than one sorted run, with ties', () => {
    // 25 updates: coordinate 0 holds 0..24 shuffled, coordinate 1 all 7, coordinate 2 thirteen 1s then twelve 2s.
    const values = [12, 3, 24, 0, 18, 7, 5, 21, 9, 1, 15, 11, 2, 20, 6, 23, 14, 4, 17, 10, 8, 22, 13, 16, 19];
    const updates = values.map((v, k) => f32(v, 7, k < 13 ? 1 : 2));

    expect(list(simdOrThrow(medianSimd(updates)))).toEqual([12, 7, 1]);
    // Without update 0 (a 12 and a 1), 24 values: the means of 11 and 13, of 7 and 7, of 1 and 2.
    expect(list(simdOrThrow(medianSimd(updates.slice(1))))).toEqual([12, 7, 1.5]);
  });

  it('takes the mean of the middle values in float64, as the scalar kernel does', () => {
    // 3e38 + 3e38 overflows float32 but not float64.
    const rows = [f32(3e38), f32(3e38), f32(-1), f32(3.4e38)];

    expect(list(simdOrThrow(medianSimd(rows)))).toEqual([Math.fround(3e38)]);
    expect(list(medianScalar(rows))).toEqual([Math.fround(3e38)]);
  });

  it('returns a zero median as +0, whichever zeros are tied in the middle', () => {
    const out = simdOrThrow(medianSimd([f32(-0, 0, -0), f32(-0, -0, 0), f32(1, -0, 5), f32(-0, -0, -3)]));

    expect(list(out).map((x) => Object.is(x, 0))).toEqual([true, true, true]);
  });

  it('matches the sort-based reference and the scalar kernel for every count it covers, with ties', () => {
    // 37 coordinates: nine full lane groups and one partial, inside one tile-rounded block.
    for (let n = 1; n <= MEDIAN_SIMD_MAX_UPDATES; n++) {
      const updates = randomUpdates(n, n, 37, 1 / 16);

      const simd = simdOrThrow(medianSimd(updates));

      expect(list(simd), `n = ${n}`).toEqual(list(sortedMedian(updates)));
      expect(list(simd), `n = ${n}`).toEqual(list(medianScalar(updates)));
    }
  });

  it('matches the scalar kernel across staged blocks and partial tiles', () => {
    for (const n of [3, 64, 100, 128]) {
      const updates = randomUpdates(1000 + n, n, 2 * 4096 + 7, 0);

      expect(list(simdOrThrow(medianSimd(updates))), `n = ${n}`).toEqual(list(medianScalar(updates)));
    }
  });

  it('is what median returns here, falls back to quickselect above its limit, and leaves its input unchanged', () => {
    const updates = randomUpdates(5, 9, 101, 0);
    const copies = updates.map((u) => u.slice());
    const many = randomUpdates(6, MEDIAN_SIMD_MAX_UPDATES + 1, 10, 1 / 8);

    expect(list(median(updates))).toEqual(list(simdOrThrow(medianSimd(updates))));
    expect(medianSimd(many)).toBeNull();
    expect(list(median(many))).toEqual(list(sortedMedian(many)));
    updates.forEach((u, k) => expect(list(u)).toEqual(list(copies[k]!)));
  });

  it('matches the scalar kernel bit for bit on random columns (property)', () => {
    const tied = fc.constantFrom(-2, -1, -0, 0, 0.5, 1, 3);
    const wide = fc.float({ min: Math.fround(-1e30), max: Math.fround(1e30), noNaN: true, noDefaultInfinity: true });
    const updatesArb = fc
      .tuple(fc.integer({ min: 1, max: MEDIAN_SIMD_MAX_UPDATES }), fc.integer({ min: 1, max: 9 }), fc.boolean())
      .chain(([n, d, ties]) => fc.array(fc.array(ties ? tied : wide, { minLength: d, maxLength: d }), { minLength: n, maxLength: n }));
    fc.assert(
      fc.property(updatesArb, (rows) => {
        const updates = rows.map((r) => Float32Array.from(r));

        const simd = simdOrThrow(medianSimd(updates));

        expect(list(simd)).toEqual(list(medianScalar(updates)));
        expect(list(simd)).toEqual(list(sortedMedian(updates)));
      }),
      { numRuns: 200 },
    );
  });

  it('rejects bad input with the same codes as the scalar kernel', () => {
    expectFlCoreError(() => medianSimd([]), 'AGG_NO_UPDATES');
    expectFlCoreError(() => medianSimd([f32(1, 2), f32(1)]), 'PARAMS_MISMATCH');
    expectFlCoreError(() => medianScalar([]), 'AGG_NO_UPDATES');
    expectFlCoreError(() => medianScalar([f32(1, 2), f32(1)]), 'PARAMS_MISMATCH');
    expectFlCoreError(() => medianSimd([f32(1, 2), f32(Number.NaN, 2), f32(3, 3)]), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => medianScalar([f32(1, 2), f32(Number.NaN, 2), f32(3, 3)]), 'PARAMS_NON_FINITE');
  });
});
