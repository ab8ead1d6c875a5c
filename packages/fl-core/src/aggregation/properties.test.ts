import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { centeredClip } from './centeredClip.js';
import { fedAvg } from './fedAvg.js';
import { flTrust } from './flTrust.js';
import { krum } from './krum.js';
import { median } from './median.js';
import { normClip } from './normClip.js';
import { selectInPlace, selectTwoInPlace } from './select.js';
import { trimmedMean } from './trimmedMean.js';

const value = fc.float({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true });

/** n updates of d values each in [−1, 1]. */
const updatesArb = (minN: number, maxN: number) =>
  fc.integer({ min: 1, max: 6 }).chain((d) => fc.array(fc.array(value, { minLength: d, maxLength: d }), { minLength: minN, maxLength: maxN }));

const toF32 = (rows: number[][]): Float32Array[] => rows.map((r) => Float32Array.from(r));

/** −0 and +0 are equal values, and which of them lands in a slot depends on input order: compare values. */
const zeroSigned = (xs: ArrayLike<number>): number[] => Array.from(xs, (x) => x + 0);

/** A permutation of 0..n−1 drawn by fast-check. */
const withPermutation = <T>(arb: fc.Arbitrary<T[]>) =>
  arb.chain((items) =>
    fc
      .shuffledSubarray(
        items.map((_, k) => k),
        { minLength: items.length, maxLength: items.length },
      )
      .map((perm) => ({ items, perm })),
  );

function expectAllClose(a: Float32Array, b: Float32Array, tol = 1e-6): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]!)));
}

/** Lowest and highest value per coordinate over `rows`. */
function coordinateRange(rows: readonly Float32Array[]): { lo: number[]; hi: number[] } {
  const d = rows[0]!.length;
  const lo = new Array<number>(d).fill(Infinity);
  const hi = new Array<number>(d).fill(-Infinity);
  for (const r of rows)
    for (let i = 0; i < d; i++) {
      lo[i] = Math.min(lo[i]!, r[i]!);
      hi[i] = Math.max(hi[i]!, r[i]!);
    }
  return { lo, hi };
}

function expectWithin(out: Float32Array, rows: readonly Float32Array[], tol = 1e-6): void {
  const { lo, hi } = coordinateRange(rows);
  for (let i = 0; i < out.length; i++) {
    expect(out[i]!).toBeGreaterThanOrEqual(lo[i]! - tol);
    expect(out[i]!).toBeLessThanOrEqual(hi[i]! + tol);
  }
}

/** Honest updates in [−1, 1] plus f Byzantine ones, and f itself. */
const byzantineArb = (maxN: number, byzantine: (n: number) => number, far: boolean) =>
  fc.integer({ min: 1, max: 6 }).chain((d) =>
    fc.integer({ min: 3, max: maxN }).chain((n) => {
      const f = byzantine(n);
      const bad = far
        ? fc.array(fc.oneof(fc.double({ min: 100, max: 1e6, noNaN: true }), fc.double({ min: -1e6, max: -100, noNaN: true })), { minLength: d, maxLength: d })
        : fc.array(fc.float({ min: Math.fround(-1e30), max: Math.fround(1e30), noNaN: true, noDefaultInfinity: true }), { minLength: d, maxLength: d });
      return fc.record({
        honest: fc.array(fc.array(value, { minLength: d, maxLength: d }), { minLength: n - f, maxLength: n - f }),
        byzantine: fc.array(bad, { minLength: f, maxLength: f }),
        f: fc.constant(f),
      });
    }),
  );

describe('aggregation properties', () => {
  it('selection puts the right order statistics in place', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 60 }), fc.nat(), fc.nat(), (xs, r1, r2) => {
        const sorted = [...xs].map(Math.fround).sort((a, b) => a - b);
        const a = Float32Array.from(xs);
        const rank = r1 % xs.length;
        selectInPlace(a, 0, xs.length - 1, rank);
        expect(a[rank]! + 0).toBe(sorted[rank]! + 0);
        const b = Float32Array.from(xs);
        const [lo, hi] = [Math.min(rank, r2 % xs.length), Math.max(rank, r2 % xs.length)];
        selectTwoInPlace(b, 0, xs.length - 1, lo, hi);
        expect(zeroSigned(b.slice(lo, hi + 1)).sort((x, y) => x - y)).toEqual(zeroSigned(sorted.slice(lo, hi + 1)));
      }),
    );
  });

  it('results do not depend on client order', () => {
    fc.assert(
      fc.property(withPermutation(updatesArb(5, 9)), fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 9, maxLength: 9 }), ({ items, perm }, w) => {
        const rows = toF32(items);
        const weights = rows.map((_, k) => w[k]!);
        const permuted = perm.map((k) => rows[k]!);
        const permutedWeights = perm.map((k) => weights[k]!);
        expectAllClose(fedAvg(permuted, permutedWeights), fedAvg(rows, weights));
        expect(zeroSigned(median(permuted))).toEqual(zeroSigned(median(rows)));
        expectAllClose(trimmedMean(permuted, 0.2), trimmedMean(rows, 0.2));
        expectAllClose(krum(permuted, { numByzantine: 1, numToKeep: 2 }).aggregate, krum(rows, { numByzantine: 1, numToKeep: 2 }).aggregate);
        expectAllClose(flTrust(permuted, rows[0]!).aggregate, flTrust(rows, rows[0]!).aggregate);
        expectAllClose(centeredClip(permuted, { clipRadius: 0.5, weights: permutedWeights }), centeredClip(rows, { clipRadius: 0.5, weights }));
      }),
    );
  });

  it('weights of a weighted mean sum to 1: a constant vector comes back unchanged', () => {
    fc.assert(
      fc.property(
        fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 20 }),
        (c, weights) => {
          fc.pre(weights.some((w) => w > 0));
          const rows = weights.map(() => new Float32Array(3).fill(c));
          expectAllClose(fedAvg(rows, weights), Float32Array.from([c, c, c]));
          if (rows.length > 2)
            expectAllClose(krum(rows, { numByzantine: 0, numToKeep: 2, weights: weights.map((w) => w + 1) }).aggregate, Float32Array.from([c, c, c]));
        },
      ),
    );
  });

  it('median stays within the honest range with f < n/2 arbitrary updates', () => {
    fc.assert(
      fc.property(
        byzantineArb(15, (n) => Math.floor((n - 1) / 2), false),
        ({ honest, byzantine }) => {
          const rows = toF32(honest);
          expectWithin(median([...toF32(byzantine), ...rows]), rows);
        },
      ),
    );
  });

  it('trimmed mean stays within the honest range when it trims at least f per end', () => {
    fc.assert(
      fc.property(
        byzantineArb(15, (n) => Math.floor(0.3 * n), false),
        ({ honest, byzantine }) => {
          const rows = toF32(honest);
          expectWithin(trimmedMean([...rows, ...toF32(byzantine)], 0.3), rows, 1e-5);
        },
      ),
    );
  });

  it('Krum and Multi-Krum pick honest updates when n > 2f + 2 and the Byzantine ones are outliers', () => {
    fc.assert(
      fc.property(
        byzantineArb(15, (n) => Math.floor((n - 3) / 2), true),
        fc.nat(),
        ({ honest, byzantine, f }, m) => {
          const rows = toF32(honest);
          const all = [...toF32(byzantine), ...rows];
          const numToKeep = 1 + (m % (all.length - f));
          const { aggregate, selected } = krum(all, { numByzantine: f, numToKeep });
          expect(selected.every((k) => k >= f)).toBe(true);
          expectWithin(aggregate, rows);
        },
      ),
    );
  });

  it('median, trimmed mean and Krum refuse any update holding NaN or ±Infinity', () => {
    const bad = fc.constantFrom(Number.NaN, Infinity, -Infinity);
    fc.assert(
      fc.property(updatesArb(5, 9), bad, fc.nat(), fc.nat(), (items, x, at, where) => {
        const rows = toF32(items);
        const k = at % rows.length;
        const poisoned = rows.map((r, j) => (j === k ? r.map((v, i) => (i === where % r.length ? x : v)) : r));
        for (const run of [() => median(poisoned), () => trimmedMean(poisoned, 0.2), () => krum(poisoned, { numByzantine: 1 })]) {
          expect(run).toThrowError(/PARAMS_NON_FINITE/);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('no algorithm mutates its input', () => {
    fc.assert(
      fc.property(updatesArb(5, 8), (items) => {
        const rows = toF32(items);
        const copies = rows.map((r) => r.slice());
        const weights = rows.map((_, k) => k + 1);
        const weightsCopy = [...weights];
        fedAvg(rows, weights);
        median(rows);
        trimmedMean(rows, 0.25);
        krum(rows, { numByzantine: 1, numToKeep: 2, weights });
        flTrust(rows.slice(1), rows[0]!);
        normClip(rows, 0.1);
        centeredClip(rows, { clipRadius: 0.1, center: rows[0]!, iterations: 2, weights });
        rows.forEach((r, k) => expect(Array.from(r)).toEqual(Array.from(copies[k]!)));
        expect(weights).toEqual(weightsCopy);
      }),
    );
  });
});
