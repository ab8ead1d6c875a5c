import { describe, expect, it } from 'vitest';
import { createWeightedMeanAccumulator } from './accumulator.js';
import { centeredClip } from './centeredClip.js';
import { fedAvg } from './fedAvg.js';
import { fedAvgM } from './fedAvgM.js';
import { fedAdagrad, fedAdam, fedYogi, initialFedOptState } from './fedOpt.js';
import { flTrust } from './flTrust.js';
import { krum, pairwiseSquaredDistances } from './krum.js';
import { median } from './median.js';
import { clipToNorm } from '../params.js';
import { normClip } from './normClip.js';
import { trimmedMean } from './trimmedMean.js';
import { expectFlCoreError } from '../errors.test-util.js';

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);
const list = (v: Float32Array): number[] => Array.from(v);

/** 3 clients × 4 parameters, small integers so every expected value is checkable by hand. */
const u0 = f32(1, 2, 3, 4);
const u1 = f32(3, 0, -3, 8);
const u2 = f32(5, 4, 0, -6);
const u3 = f32(0, 0, 0, 0);
const u4 = f32(10, -10, 1, 1);

function expectClose(actual: Float32Array, expected: number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
}

describe('fedAvg', () => {
  it('is the example-weighted mean', () => {
    // (u0 + u1 + 2·u2) / 4
    expect(list(fedAvg([u0, u1, u2], [1, 1, 2]))).toEqual([3.5, 2.5, 0, 0]);
  });

  it('covers every block and unroll remainder', () => {
    // 11 updates (8 + 3 in the unrolled loops) of 5000 values (more than two blocks).
    const updates = Array.from({ length: 11 }, (_, k) => new Float32Array(5000).fill(k));
    const out = fedAvg(
      updates,
      updates.map(() => 1),
    );
    expect(out.every((x) => x === 5)).toBe(true);
  });

  it('rejects bad input with coded errors', () => {
    expectFlCoreError(() => fedAvg([], []), 'AGG_NO_UPDATES');
    expectFlCoreError(() => fedAvg([u0, f32(1, 2)], [1, 1]), 'PARAMS_MISMATCH');
    expectFlCoreError(() => fedAvg([u0, u1], [1]), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => fedAvg([u0, u1], [1, -1]), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => fedAvg([u0, u1], [0, 0]), 'AGG_BAD_WEIGHTS');
    expectFlCoreError(() => fedAvg([u0, u1], [1, Number.NaN]), 'AGG_BAD_WEIGHTS');
  });
});

describe('createWeightedMeanAccumulator', () => {
  it('streams to the same mean as fedAvg', () => {
    const acc = createWeightedMeanAccumulator(4);
    acc.add(u0, 1);
    acc.add(u1, 1);
    acc.add(u2, 2);
    expect(acc.count).toBe(3);
    expect(acc.totalWeight).toBe(4);
    expect(list(acc.mean())).toEqual([3.5, 2.5, 0, 0]);
  });

  it('rejects a bad add without changing its sums, and resets', () => {
    const acc = createWeightedMeanAccumulator(4);
    acc.add(u0, 2);
    expectFlCoreError(() => acc.add(f32(1), 1), 'PARAMS_MISMATCH');
    expectFlCoreError(() => acc.add(u1, -1), 'AGG_BAD_WEIGHTS');
    expect(acc.count).toBe(1);
    expect(list(acc.mean())).toEqual(list(u0));
    acc.reset();
    expectFlCoreError(() => acc.mean(), 'AGG_NO_UPDATES');
    acc.add(u1, 0);
    expectFlCoreError(() => acc.mean(), 'AGG_BAD_WEIGHTS');
  });
});

describe('median', () => {
  it('takes the middle value for odd n and the mean of the two middle values for even n', () => {
    expect(list(median([u0, u1, u2]))).toEqual([3, 2, 0, 4]);
    expect(list(median([u0, u1, u2, u3]))).toEqual([2, 1, 0, 2]);
    expect(list(median([u2]))).toEqual(list(u2));
  });

  it('handles columns longer than the insertion-sort cut-off and ties', () => {
    // 25 updates: coordinate 0 holds 0..24 shuffled, coordinate 1 all 7.
    const values = [12, 3, 24, 0, 18, 7, 5, 21, 9, 1, 15, 11, 2, 20, 6, 23, 14, 4, 17, 10, 8, 22, 13, 16, 19];
    const updates = values.map((v) => f32(v, 7));
    expect(list(median(updates))).toEqual([12, 7]);
  });

  it('rejects bad input', () => {
    expectFlCoreError(() => median([]), 'AGG_NO_UPDATES');
    expectFlCoreError(() => median([u0, f32(1)]), 'PARAMS_MISMATCH');
  });

  it('refuses NaN and ±Infinity instead of returning a finite wrong value', () => {
    // Selection cannot order NaN: unchecked, the SIMD kernel answered +Infinity (its padding) here.
    expectFlCoreError(() => median([f32(1), f32(Number.NaN), f32(3), f32(5)]), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => median([u0, u1, f32(0, Infinity, 0, 0)]), 'PARAMS_NON_FINITE');
  });
});

describe('trimmedMean', () => {
  it('drops the cut smallest and largest per coordinate', () => {
    // β = 0.2 of 5 cuts one from each end.
    expectClose(trimmedMean([u0, u1, u2, u3, u4], 0.2), [3, 2 / 3, 1 / 3, 5 / 3]);
  });

  it('is the plain mean when nothing is cut', () => {
    expectClose(trimmedMean([u0, u1, u2], 0.1), [3, 2, 0, 2]);
  });

  it('rejects a trim fraction out of range', () => {
    expectFlCoreError(() => trimmedMean([u0, u1], 0.5), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => trimmedMean([u0, u1], -0.1), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => trimmedMean([u0, u1], Number.NaN), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => trimmedMean([], 0.1), 'AGG_NO_UPDATES');
  });

  it('refuses NaN and ±Infinity, whether or not the cut would have dropped them', () => {
    // Unchecked, [1, NaN, 3, 5, 2] at β = 0.2 came out as a finite 2.
    expectFlCoreError(() => trimmedMean([f32(1), f32(Number.NaN), f32(3), f32(5), f32(2)], 0.2), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => trimmedMean([u0, u1, u2, u3, f32(Number.NaN, 0, 0, 0)], 0.2), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => trimmedMean([u0, u1, u2, u3, f32(0, 0, -Infinity, 0)], 0.2), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => trimmedMean([u0, f32(Number.NaN, 0, 0, 0)], 0), 'PARAMS_NON_FINITE');
  });
});

describe('krum', () => {
  // Four honest points near the origin and one far away; f = 1, so each score sums 2 neighbours.
  const points = [f32(0, 0), f32(1, 0), f32(0, 2), f32(1, 1), f32(10, 10)];

  it('computes each pairwise distance once, symmetric with a zero diagonal', () => {
    const d = pairwiseSquaredDistances(points);
    expect(d[0 * 5 + 1]).toBe(1);
    expect(d[1 * 5 + 0]).toBe(1);
    expect(d[2 * 5 + 4]).toBe(164);
    expect(d[3 * 5 + 3]).toBe(0);
  });

  it('picks the update with the smallest neighbour score', () => {
    const { aggregate, selected, scores } = krum(points, { numByzantine: 1 });
    expect(scores).toEqual([3, 2, 6, 3, 326]);
    expect(selected).toEqual([1]);
    expect(list(aggregate)).toEqual([1, 0]);
  });

  it('Multi-Krum averages the m best, ties broken by index', () => {
    const { aggregate, selected } = krum(points, { numByzantine: 1, numToKeep: 3 });
    expect(selected).toEqual([1, 0, 3]);
    expectClose(aggregate, [2 / 3, 1 / 3]);
  });

  it('Multi-Krum weights the kept updates', () => {
    const { aggregate } = krum(points, { numByzantine: 1, numToKeep: 2, weights: [3, 1, 1, 1, 1] });
    expectClose(aggregate, [0.25, 0]);
  });

  it('enforces n > 2f + 2 and a sane m', () => {
    expectFlCoreError(() => krum(points, { numByzantine: 2 }), 'AGG_TOO_FEW_CLIENTS');
    expectFlCoreError(() => krum(points, { numByzantine: 1, numToKeep: 5 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => krum(points, { numByzantine: -1 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => krum(points, { numByzantine: 0.5 }), 'AGG_BAD_CONFIG');
  });

  it('refuses a NaN or infinite update rather than ranking it', () => {
    // A NaN score compared as a tie, so index 0 (the NaN update) used to be selected first.
    const poisoned = [f32(Number.NaN, 0), ...points.slice(1)];
    expectFlCoreError(() => krum(poisoned, { numByzantine: 1 }), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => krum(poisoned, { numByzantine: 1, numToKeep: 3 }), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => krum([...points.slice(0, 4), f32(Infinity, 0)], { numByzantine: 1 }), 'PARAMS_NON_FINITE');
  });
});

describe('flTrust', () => {
  it('scores by ReLU cosine to the root update and rescales to its norm', () => {
    const root = f32(1, 0);
    const { aggregate, trustScores } = flTrust([f32(2, 0), f32(0, 3), f32(-1, 0), f32(3, 3), f32(0, 0)], root);
    expect(trustScores[0]).toBeCloseTo(1, 12);
    expect(trustScores.slice(1, 3)).toEqual([0, 0]);
    expect(trustScores[3]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(trustScores[4]).toBe(0);
    // (1·[1, 0] + (1/√2)·[1/√2, 1/√2]) / (1 + 1/√2)
    const total = 1 + Math.SQRT1_2;
    expectClose(aggregate, [1.5 / total, 0.5 / total]);
  });

  it('does not move the model when nothing is trusted', () => {
    const { aggregate } = flTrust([f32(-1, 0)], f32(1, 0));
    expect(list(aggregate)).toEqual([0, 0]);
  });

  it('rejects a root update of another length', () => {
    expectFlCoreError(() => flTrust([f32(1, 0)], f32(1)), 'PARAMS_MISMATCH');
  });
});

describe('normClip', () => {
  it('scales only updates outside the ball', () => {
    const [outside, inside] = normClip([f32(3, 4), f32(0.3, 0.4)], 1);
    expectClose(outside!.clipped, [0.6, 0.8]);
    expect(outside!.norm).toBeCloseTo(5, 12);
    expect(outside!.factor).toBeCloseTo(0.2, 12);
    expect(inside!.factor).toBe(1);
    expectClose(inside!.clipped, [0.3, 0.4]);
  });

  it('rejects a non-positive radius', () => {
    expectFlCoreError(() => clipToNorm(f32(1), 0), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => normClip([f32(1)], Number.POSITIVE_INFINITY), 'AGG_BAD_CONFIG');
  });
});

describe('centeredClip', () => {
  it('clips each update around the centre before averaging', () => {
    // [2, 0] is inside τ = 3, [100, 0] is clipped to [3, 0]: (0 + 2 + 3) / 3.
    expectClose(centeredClip([f32(0, 0), f32(2, 0), f32(100, 0)], { clipRadius: 3 }), [5 / 3, 0]);
  });

  it('iterates from a given centre', () => {
    // From v₀ = [1, 0] with τ large it is the plain mean after one step, and stays there.
    const updates = [f32(0, 0), f32(3, 3)];
    expectClose(centeredClip(updates, { clipRadius: 100, center: f32(1, 0), iterations: 3 }), [1.5, 1.5]);
  });

  it('rejects bad options', () => {
    expectFlCoreError(() => centeredClip([f32(1)], { clipRadius: 0 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => centeredClip([f32(1)], { clipRadius: 1, iterations: 0 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => centeredClip([f32(1)], { clipRadius: 1, center: f32(1, 2) }), 'PARAMS_MISMATCH');
  });
});

describe('fedAvgM', () => {
  it('accumulates server momentum across rounds', () => {
    const first = fedAvgM(f32(1, 2), null, { serverMomentum: 0.9 });
    expect(list(first.step)).toEqual([1, 2]);
    const second = fedAvgM(f32(1, 0), first.momentum, { serverMomentum: 0.9, serverLearningRate: 0.5 });
    // v = 0.9·[1, 2] + [1, 0] = [1.9, 1.8]; step = 0.5·v
    expectClose(second.momentum, [1.9, 1.8]);
    expectClose(second.step, [0.95, 0.9]);
  });

  it('rejects bad options and a mismatched momentum', () => {
    expectFlCoreError(() => fedAvgM(f32(1), null, { serverMomentum: 1 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => fedAvgM(f32(1), f32(1, 2), { serverMomentum: 0.5 }), 'PARAMS_MISMATCH');
  });
});

describe('fedOpt', () => {
  const options = { serverLearningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 };

  it('FedAdam, FedYogi and FedAdagrad take the paper’s first step', () => {
    const adam = fedAdam(f32(1), null, options);
    expect(adam.state.m[0]).toBeCloseTo(0.1, 7);
    expect(adam.state.v[0]).toBeCloseTo(0.99e-6 + 0.01, 7);
    expect(adam.step[0]).toBeCloseTo(0.01 / (Math.sqrt(0.99e-6 + 0.01) + 1e-3), 6);
    // Yogi: v − (1 − β₂)·Δ²·sign(v − Δ²) = 1e-6 + 0.01
    expect(fedYogi(f32(1), null, options).state.v[0]).toBeCloseTo(1e-6 + 0.01, 7);
    const adagrad = fedAdagrad(f32(1), null, options);
    expect(adagrad.state.v[0]).toBeCloseTo(1 + 1e-6, 6);
    expect(adagrad.step[0]).toBeCloseTo(0.01 / (Math.sqrt(1 + 1e-6) + 1e-3), 6);
  });

  it('carries state explicitly and starts from v = τ²', () => {
    const state = initialFedOptState(2, 0.1);
    expect(list(state.v)).toEqual([Math.fround(0.01), Math.fround(0.01)]);
    const next = fedAdam(f32(1, -1), state, { tau: 0.1 });
    expect(list(state.m)).toEqual([0, 0]);
    expect(next.step[0]).toBeGreaterThan(0);
    expect(next.step[1]).toBeLessThan(0);
  });

  it('rejects bad hyper-parameters and state', () => {
    expectFlCoreError(() => fedAdam(f32(1), null, { beta1: 1 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => fedAdam(f32(1), null, { tau: 0 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => fedAdam(f32(1), initialFedOptState(2), {}), 'PARAMS_MISMATCH');
  });
});
