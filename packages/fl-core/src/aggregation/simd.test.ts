import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { FEDAVG_BLOCK } from '../simd/kernelBytes.js';
import { wasmSimdAvailable } from '../simd/kernels.js';
import { FEDAVG_SIMD_RELATIVE_TOLERANCE, fedAvg, fedAvgScalar, fedAvgSimd } from './fedAvg.js';
import { trimmedMean, trimmedMeanScalar, trimmedMeanSimd } from './trimmedMean.js';
import { expectFlCoreError } from '../errors.test-util.js';

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);

/** `count` updates of `length` values: a per-update offset plus noise, so order statistics differ per coordinate. */
function randomUpdates(seed: number, count: number, length: number, quantum = 0): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => {
    const offset = rng() - 0.5;
    const u = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      const x = offset + (rng() - 0.5) * 0.2;
      // A coarse quantum makes ties common, which the extreme passes must keep exactly.
      u[i] = quantum > 0 ? Math.round(x / quantum) * quantum : x;
    }
    return u;
  });
}

function simdOrThrow(out: Float32Array | null): Float32Array {
  if (out === null) throw new Error('WebAssembly SIMD unavailable');
  return out;
}

/** One float32 rounding apart: |a − b| ≤ 2^-23·|b| (plus a floor for values near zero). */
function expectWithinOneRounding(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const bound = 2 ** -23 * Math.abs(expected[i]!) + 1e-30;
    if (!(Math.abs(actual[i]! - expected[i]!) <= bound)) expect.unreachable(`index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('scalar kernels (the fallback where WebAssembly SIMD is missing)', () => {
  it('fedAvgScalar is the example-weighted mean, exact on every block and unroll remainder', () => {
    const updates = Array.from({ length: 11 }, (_, k) => new Float32Array(5000).fill(k));

    expect(Array.from(fedAvgScalar([f32(1, 2, 3, 4), f32(3, 0, -3, 8), f32(5, 4, 0, -6)], [1, 1, 2]))).toEqual([3.5, 2.5, 0, 0]);
    expect(
      fedAvgScalar(
        updates,
        updates.map(() => 1),
      ).every((x) => x === 5),
    ).toBe(true);
  });

  it('trimmedMeanScalar drops the cut smallest and largest per coordinate', () => {
    const rows = [f32(1, 2), f32(3, 0), f32(5, 4), f32(0, 0), f32(10, -10)];

    const out = trimmedMeanScalar(rows, 0.2);

    expect(out[0]).toBe(3);
    expect(out[1]).toBeCloseTo(2 / 3, 6);
  });

  it('reject bad input with coded errors', () => {
    expectFlCoreError(() => fedAvgScalar([f32(1), f32(2)], [1, -1]), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => trimmedMeanScalar([f32(1), f32(2)], 0.5), 'AGG_BAD_CONFIG');
  });
});

describe('WebAssembly SIMD kernels', () => {
  it('are available on the Node versions the project supports', () => {
    expect(wasmSimdAvailable()).toBe(true);
  });
});

describe.runIf(wasmSimdAvailable())('fedAvg on the SIMD kernel', () => {
  it('is the example-weighted mean on a hand-checkable case', () => {
    // (u0 + u1 + 2·u2) / 4, every product and sum exact in float32.
    const out = simdOrThrow(fedAvgSimd([f32(1, 2, 3, 4), f32(3, 0, -3, 8), f32(5, 4, 0, -6)], [1, 1, 2]));
    expect(Array.from(out)).toEqual([3.5, 2.5, 0, 0]);
  });

  it('matches the scalar kernel within the stated tolerance across blocks, passes and leftovers', () => {
    // 19 updates = two passes of eight plus three leftovers; the length spans three blocks and
    // ends in a partial lane group.
    const length = 2 * FEDAVG_BLOCK + 7;
    const updates = randomUpdates(7, 19, length);
    const rng = createRng(8);
    const weights = updates.map((_, k) => (k === 4 ? 0 : 1 + Math.floor(rng() * 1000)));
    const total = weights.reduce((a, b) => a + b, 0);

    const simd = simdOrThrow(fedAvgSimd(updates, weights));
    const scalar = fedAvgScalar(updates, weights);

    expect(simd.length).toBe(length);
    for (let i = 0; i < length; i++) {
      let absSum = 0;
      for (let k = 0; k < updates.length; k++) absSum += (weights[k]! / total) * Math.abs(updates[k]![i]!);
      if (!(Math.abs(simd[i]! - scalar[i]!) <= FEDAVG_SIMD_RELATIVE_TOLERANCE * absSum)) expect.unreachable(`index ${i}: ${simd[i]} vs ${scalar[i]}`);
    }
  });

  it('ignores zero-weight updates, even non-finite ones, like the scalar kernel', () => {
    const out = simdOrThrow(fedAvgSimd([f32(2, 4), f32(Infinity, Number.NaN)], [3, 0]));
    expect(Array.from(out)).toEqual([2, 4]);
  });

  it('is what fedAvg returns here, and leaves its input unchanged', () => {
    const updates = randomUpdates(3, 9, 101);
    const copies = updates.map((u) => u.slice());
    const weights = updates.map((_, k) => k + 1);

    const viaDefault = fedAvg(updates, weights);
    const viaSimd = simdOrThrow(fedAvgSimd(updates, weights));

    expect(Array.from(viaDefault)).toEqual(Array.from(viaSimd));
    updates.forEach((u, k) => expect(Array.from(u)).toEqual(Array.from(copies[k]!)));
  });

  it('rejects bad input with the same codes as the scalar kernel', () => {
    expectFlCoreError(() => fedAvgSimd([], []), 'AGG_NO_UPDATES');
    expectFlCoreError(() => fedAvgSimd([f32(1, 2), f32(1)], [1, 1]), 'PARAMS_MISMATCH');
    expectFlCoreError(() => fedAvgSimd([f32(1), f32(2)], [1]), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => fedAvgSimd([f32(1), f32(2)], [0, 0]), 'AGG_BAD_WEIGHTS');
  });
});

describe.runIf(wasmSimdAvailable())('trimmedMean on the SIMD kernel', () => {
  it('drops the cut smallest and largest per coordinate on a hand-checkable case', () => {
    // β = 0.2 of 5 cuts one from each end: column 0 is {1,3,5,0,10} → mean of {1,3,5} = 3.
    const rows = [f32(1, 2, 3, 4), f32(3, 0, -3, 8), f32(5, 4, 0, -6), f32(0, 0, 0, 0), f32(10, -10, 1, 1)];
    const out = simdOrThrow(trimmedMeanSimd(rows, 0.2));
    expect(out[0]).toBe(3);
    expect(out[1]).toBeCloseTo(2 / 3, 6);
    expect(out[2]).toBeCloseTo(1 / 3, 6);
    expect(out[3]).toBeCloseTo(5 / 3, 6);
  });

  it('keeps tied values exactly: a column of equal values averages to that value', () => {
    const rows = [f32(7, 1), f32(7, 1), f32(7, 9), f32(7, 1), f32(7, 1)];
    expect(Array.from(simdOrThrow(trimmedMeanSimd(rows, 0.2)))).toEqual([7, 1]);
  });

  it('matches the scalar kernel for every chain of list sizes, with ties, across blocks', () => {
    // cut 0 (mean only), 1, 3 (2+1), 7 (4+2+1), 10 (8+2) and 15 (8+4+2+1).
    for (const [count, trimFraction] of [
      [9, 0],
      [9, 0.15],
      [20, 0.15],
      [31, 0.23],
      [100, 0.1],
      [40, 0.39],
    ] as const) {
      const length = 1500 + count;
      const updates = randomUpdates(count, count, length, count % 2 ? 0 : 1 / 64);

      const simd = simdOrThrow(trimmedMeanSimd(updates, trimFraction));
      const scalar = trimmedMeanScalar(updates, trimFraction);

      expectWithinOneRounding(simd, scalar);
    }
  });

  it('agrees with the scalar kernel on arbitrary small inputs (property)', () => {
    const value = fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }).chain((d) => fc.array(fc.array(value, { minLength: d, maxLength: d }), { minLength: 1, maxLength: 24 })),
        fc.double({ min: 0, max: 0.49, noNaN: true }),
        (items, trimFraction) => {
          fc.pre(2 * Math.floor(trimFraction * items.length) < items.length);
          const rows = items.map((r) => Float32Array.from(r));
          const copies = rows.map((r) => r.slice());

          const simd = simdOrThrow(trimmedMeanSimd(rows, trimFraction));

          expectWithinOneRounding(simd, trimmedMeanScalar(rows, trimFraction));
          rows.forEach((r, k) => expect(Array.from(r)).toEqual(Array.from(copies[k]!)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is what trimmedMean returns for small cuts', () => {
    const updates = randomUpdates(5, 30, 257);
    expect(Array.from(trimmedMean(updates, 0.2))).toEqual(Array.from(simdOrThrow(trimmedMeanSimd(updates, 0.2))));
  });

  it('rejects bad input with the same codes as the scalar kernel', () => {
    expectFlCoreError(() => trimmedMeanSimd([f32(1), f32(2)], 0.5), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => trimmedMeanSimd([f32(1), f32(2)], Number.NaN), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => trimmedMeanSimd([], 0.1), 'AGG_NO_UPDATES');
    expectFlCoreError(() => trimmedMeanSimd([f32(1, 2), f32(1)], 0.1), 'PARAMS_MISMATCH');
    expectFlCoreError(() => trimmedMeanSimd([f32(1, 2), f32(Number.NaN, 2), f32(3, 3)], 0.34), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => trimmedMeanScalar([f32(1, 2), f32(Number.NaN, 2), f32(3, 3)], 0.34), 'PARAMS_NON_FINITE');
  });
});
