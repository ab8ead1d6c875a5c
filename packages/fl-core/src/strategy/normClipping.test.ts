import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { FedAvg } from './fedAvg.js';
import { NormClipping } from './normClipping.js';
import type { MaxNorm } from './normClipping.js';
import { TrustWeighting } from './trustWeighting.js';
import type { FitResult } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const fit = (clientId: string, numExamples: number, ...delta: Parameters[number][]): FitResult => ({ clientId, numExamples, delta });
const global = [t('image/w', 0, 0, 0), t('text/w', 1, 1)];
const imageOf = (params: Parameters): number[] => Array.from(params.find((p) => p.name === 'image/w')!.values);
const distance = (a: readonly number[], b: readonly number[]): number => Math.hypot(...a.map((x, i) => x - b[i]!));
const hypot = (v: readonly number[]): number => Math.hypot(...v);

/** A round of `vectors` (image deltas) with example counts `weights`, client j's delta scaled by `factor`. */
function round(vectors: readonly number[][], weights: readonly number[], j: number, factor: number): FitResult[] {
  return vectors.map((v, k) => fit(`c${k}`, weights[k]!, t('image/w', ...(k === j ? v.map((x) => x * factor) : v))));
}

/** Runs one round through a fresh clip(fedavg) with `maxNorm` (the reference, when used, is `root`). */
function aggregate(maxNorm: MaxNorm, results: FitResult[], root: number[]): { image: number[]; bound: number } {
  const strategy = new NormClipping(new FedAvg(), { maxNorm });
  strategy.setRootUpdate(1, [t('image/w', ...root)]);
  const out = strategy.aggregateFit(1, global, results, [])!;
  return { image: imageOf(out.parameters), bound: typeof maxNorm === 'number' ? maxNorm : out.metrics['clipBound']! };
}

const coordinate = fc.double({ min: -5, max: 5, noNaN: true });
const vector = fc.array(coordinate, { minLength: 3, maxLength: 3 }).filter((v) => hypot(v) > 1e-3);
// Any factor: shrinking, flipping, zeroing and blowing up by up to a million.
const factor = fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constantFrom(0, -1, 10, -1e6, 1e6));
const roundArb = fc.integer({ min: 3, max: 7 }).chain((n) =>
  fc.record({
    vectors: fc.array(vector, { minLength: n, maxLength: n }),
    weights: fc.array(fc.integer({ min: 1, max: 50 }), { minLength: n, maxLength: n }),
    j: fc.integer({ min: 0, max: n - 1 }),
    factor,
    root: vector,
  }),
);
// float32 arithmetic on values up to 5e6 in magnitude, before clipping.
const slack = (bound: number): number => 1e-4 * (1 + bound);

describe('NormClipping bounds what one client can move, under any weights', () => {
  for (const maxNorm of [0.5, 'reference'] as const) {
    it(`a client scaling its update by any factor moves the aggregate by at most its weight share × the bound (${maxNorm}; property)`, () => {
      fc.assert(
        fc.property(roundArb, ({ vectors, weights, j, factor: c, root }) => {
          const total = weights.reduce((a, b) => a + b, 0);
          const share = weights[j]! / total;
          // Arrange: the same round with client j's update absent (zero, same weight) and scaled by c.
          const zero = aggregate(maxNorm, round(vectors, weights, j, 0), root);
          const scaled = aggregate(maxNorm, round(vectors, weights, j, c), root);
          // Assert: the bound never depends on client j, and its term moves the mean by ≤ p_j·B.
          expect(scaled.bound).toBe(zero.bound);
          expect(distance(scaled.image, zero.image)).toBeLessThanOrEqual(share * scaled.bound + slack(scaled.bound));
        }),
        { numRuns: 150 },
      );
    });
  }

  it('under the median bound, no factor lifts the bound above the other clients’ norms or moves the aggregate further than the bounds allow (property)', () => {
    fc.assert(
      fc.property(roundArb, ({ vectors, weights, j, factor: c, root }) => {
        const total = weights.reduce((a, b) => a + b, 0);
        const share = weights[j]! / total;
        const others = Math.max(...vectors.filter((_, k) => k !== j).map(hypot));
        const honest = aggregate('median', round(vectors, weights, j, 1), root);
        const scaled = aggregate('median', round(vectors, weights, j, c), root);
        // The median of n ≥ 3 norms lies within the others' norms whatever client j sends.
        expect(scaled.bound).toBeLessThanOrEqual(others * (1 + 1e-6));
        // The whole aggregate step is a weighted mean of vectors inside the ball.
        expect(hypot(scaled.image)).toBeLessThanOrEqual(scaled.bound + slack(scaled.bound));
        // j's own term moves by ≤ p_j·(B_c + B_1); every other term by ≤ its weight·|B_c − B_1|.
        const allowed = share * (scaled.bound + honest.bound) + (1 - share) * Math.abs(scaled.bound - honest.bound);
        expect(distance(scaled.image, honest.image)).toBeLessThanOrEqual(allowed + slack(scaled.bound));
      }),
      { numRuns: 150 },
    );
  });
});

describe('NormClipping per group to the median norm', () => {
  const g3 = [t('image/w', 0, 0, 0), t('text/w', 1, 1), t('audio/w', 0)];

  it('holds a group with fewer than three senders to the median whole-delta norm as well', () => {
    // Arrange: image from a, b, c (norms 1, 2, 3 → median 2); audio from x alone, scaled to 40. Whole
    // norms: a 1, b 2, c 3, x 40 → median 2.5, so x's audio is clipped to 2.5 instead of its own 40.
    const results = [
      fit('a', 1, t('image/w', 1, 0, 0)),
      fit('b', 1, t('image/w', 0, 2, 0)),
      fit('c', 1, t('image/w', 0, 0, 3)),
      fit('x', 1, t('audio/w', -40)),
    ];
    const strategy = new NormClipping(new FedAvg(), { maxNorm: 'median', perGroup: true });
    // Act
    const out = strategy.aggregateFit(1, g3, results, [])!;
    // Assert
    expect(out.metrics).toMatchObject({ 'image:clipBound': 2, 'audio:clipBound': 2.5 });
    expect(Array.from(out.parameters.find((p) => p.name === 'audio/w')!.values)).toEqual([-2.5]);
  });

  it('a lone sender of a group scaled by any factor moves that group by at most the other clients’ largest norm (property)', () => {
    fc.assert(
      fc.property(fc.array(vector, { minLength: 2, maxLength: 6 }), fc.array(coordinate, { minLength: 1, maxLength: 1 }), factor, (others, audio, c) => {
        const results = [...others.map((v, k) => fit(`c${k}`, 1 + k, t('image/w', ...v))), fit('x', 3, t('audio/w', audio[0]! * c))];
        const out = new NormClipping(new FedAvg(), { maxNorm: 'median', perGroup: true }).aggregateFit(1, g3, results, [])!;
        const step = Math.abs(out.parameters.find((p) => p.name === 'audio/w')!.values[0]!);
        expect(step).toBeLessThanOrEqual(Math.max(...others.map(hypot)) * (1 + 1e-6) + 1e-6);
      }),
      { numRuns: 150 },
    );
  });
});

describe('NormClipping to the reference norm', () => {
  it('clips each group to the norm of the root update’s group, and reports where the bound came from', () => {
    // Arrange: image root norm 1 (0, 0, 1); the root update has no text group, so text falls back to the median.
    const strategy = new NormClipping(new FedAvg(), { maxNorm: 'reference', perGroup: true });
    strategy.setRootUpdate(1, [t('image/w', 0, 0, 1)]);
    const results = [
      fit('a', 1, t('image/w', 3, 4, 0), t('text/w', 3, 4)),
      fit('b', 1, t('image/w', 0, 0.5, 0), t('text/w', 0, 1)),
      fit('c', 1, t('image/w', 0, 0, 0.5), t('text/w', 2, 0)),
    ];
    // Act
    const out = strategy.aggregateFit(1, global, results, [])!;
    // Assert: a's image delta to norm 1 → (0.6, 0.8, 0); text norms 5, 1, 2 → median 2, a's text to (1.2, 1.6).
    expect(imageOf(out.parameters).map((x) => +x.toFixed(6))).toEqual([0.2, +(1.3 / 3).toFixed(6), +(0.5 / 3).toFixed(6)]);
    const text = Array.from(out.parameters.find((p) => p.name === 'text/w')!.values).map((x) => +x.toFixed(6));
    expect(text).toEqual([+(1 + 3.2 / 3).toFixed(6), +(1 + 2.6 / 3).toFixed(6)]);
    expect(out.metrics).toMatchObject({
      'image:clipBound': 1,
      'image:clipBoundFromReference': 1,
      'text:clipBound': 2,
      'text:clipBoundFromReference': 0,
      numClipped: 1,
    });
    expect(strategy.name).toBe('clip-reference(fedavg)');
  });

  it('uses a root update only in the round it was set for, and refuses a non-finite one', () => {
    const strategy = new NormClipping(new FedAvg(), { maxNorm: 'reference' });
    strategy.setRootUpdate(1, [t('image/w', 0.1, 0, 0)]);
    const results = [fit('a', 1, t('image/w', 3, 4, 0)), fit('b', 1, t('image/w', 0, 1, 0)), fit('c', 1, t('image/w', 0, 0, 2))];
    const out = strategy.aggregateFit(2, global, results, [])!;
    expect(out.metrics).toMatchObject({ clipBound: 2, clipBoundFromReference: 0 });
    expect(() => strategy.setRootUpdate(3, [t('image/w', Number.NaN, 0, 0)])).toThrowError(/PARAMS_NON_FINITE/);
    expect(() => new NormClipping(new FedAvg(), { maxNorm: 'mean' as MaxNorm })).toThrowError(/AGG_BAD_CONFIG/);
  });

  it('around trust weighting, a ×1000 update that keeps its trust moves the model by at most its weight share × the root norm', () => {
    // Arrange: agreement-only trust against the root update (1, 0, 0); the attacker's update is close in
    // direction (so it keeps a high trust) but a thousand times larger.
    const weights = { agreement: 1, quality: 0, lossImprovement: 0, calibration: 0, explanation: 0 };
    const root = [t('image/w', 1, 0, 0)];
    const honest = [fit('h1', 2, t('image/w', 1, 0.2, 0)), fit('h2', 2, t('image/w', 1, -0.2, 0)), fit('h3', 2, t('image/w', 0.8, 0, 0.1))];
    const attacker = fit('x', 2, t('image/w', 1000, 300, 0));
    const clipped = new NormClipping(new FedAvg(), { maxNorm: 'reference' });
    const strategy = new TrustWeighting(clipped, { weights, historyDecay: 0 });
    clipped.setRootUpdate(1, root);
    strategy.setRoundContext(1, { rootUpdate: root });
    // Act
    const out = strategy.aggregateFit(1, global, [...honest, attacker], [])!;
    // Assert: p_x = n_x·T_x / Σ n·T; the honest clients alone (same weights) would give the model `without`.
    const trust = new Map(out.trust!.map((c) => [c.clientId, c.trust]));
    const share = trust.get('x')! / [...trust.values()].reduce((a, b) => a + b, 0);
    expect(share).toBeGreaterThan(0.2);
    const honestTerms = honest.map((h) => {
      const v = Array.from(h.delta[0]!.values);
      const scale = Math.min(1, 1 / hypot(v));
      return v.map((x) => (x * scale * trust.get(h.clientId)!) / [...trust.values()].reduce((a, b) => a + b, 0));
    });
    const without = [0, 1, 2].map((i) => honestTerms.reduce((s, v) => s + v[i]!, 0));
    expect(distance(imageOf(out.parameters), without)).toBeLessThanOrEqual(share * 1 + 1e-6);
    expect(hypot(imageOf(out.parameters))).toBeLessThanOrEqual(1 + 1e-6);
  });
});
