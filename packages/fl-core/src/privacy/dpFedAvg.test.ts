import { describe, expect, it } from 'vitest';
import type { FlCoreErrorCode } from '../errors.js';
import { tensor, type Parameters } from '../params.js';
import { createRng } from '../rng.js';
import { dpFedAvg, dpFedAvgNoiseStd } from './dpFedAvg.js';
import { expectFlCoreError } from '../errors.test-util.js';

/** {@link expectFlCoreError} with this module's usual code. */
const expectCode = (fn: () => unknown, code: FlCoreErrorCode = 'PRIVACY_BAD_CONFIG'): void => expectFlCoreError(fn, code);

const update = (image: number[], text: number[]): Parameters => [
  tensor('image/w', [image.length], Float32Array.from(image)),
  tensor('text/w', [text.length], Float32Array.from(text)),
];

describe('dpFedAvg', () => {
  it('with zero noise is the clipped sum over the fixed denominator', () => {
    // Arrange: client A (3, 4) is clipped to (0.6, 0.8); client B (0.1, 0) is not. Expected 4 clients per round.
    const updates = [update([3], [4]), update([0.1], [0])];
    // Act
    const result = dpFedAvg(createRng(1), updates, { clipNorm: 1, noiseMultiplier: 0, expectedClientsPerRound: 4 });
    // Assert
    expect(result.noiseStd).toBe(0);
    expect(result.update[0]!.values[0]).toBeCloseTo((0.6 + 0.1) / 4, 6);
    expect(result.update[1]!.values[0]).toBeCloseTo(0.8 / 4, 6);
    expect(result.updateNorms[0]).toBe(5);
    expect(result.numClipped).toBe(1);
    expect(Array.from(updates[0]![0]!.values)).toEqual([3]);
  });

  it('adds Gaussian noise with std z·S/(qW), reproducibly from the seed', () => {
    // Arrange: one zero update of 20 000 coordinates, so the output is pure noise.
    const zeros: Parameters = [tensor('fusion/w', [20000])];
    const options = { clipNorm: 2, noiseMultiplier: 1.5, expectedClientsPerRound: 10 };
    // Act
    const a = dpFedAvg(createRng(7), [zeros], options);
    const b = dpFedAvg(createRng(7), [zeros], options);
    // Assert: σ = 1.5·2/10 = 0.3.
    expect(a.noiseStd).toBeCloseTo(0.3, 12);
    expect(dpFedAvgNoiseStd(options)).toBeCloseTo(0.3, 12);
    const v = a.update[0]!.values;
    let s2 = 0;
    for (const x of v) s2 += x * x;
    expect(Math.sqrt(s2 / v.length)).toBeCloseTo(0.3, 2);
    expect(b.update[0]!.values.every((x, i) => x === v[i])).toBe(true);
    expect(dpFedAvg(createRng(8), [zeros], options).update[0]!.values[0]).not.toBe(v[0]);
  });

  it('with a template treats omitted tensors as zero deltas and still noises every tensor', () => {
    const template: Parameters = [tensor('image/w', [1]), tensor('text/w', [1])];
    const imageOnly: Parameters = [tensor('image/w', [1], Float32Array.from([0.4]))];
    const exact = dpFedAvg(createRng(1), [imageOnly], { clipNorm: 1, noiseMultiplier: 0, expectedClientsPerRound: 2, template });
    expect(exact.update.map((t) => t.name)).toEqual(['image/w', 'text/w']);
    expect(exact.update[0]!.values[0]).toBeCloseTo(0.2, 6);
    expect(exact.update[1]!.values[0]).toBe(0);
    const noised = dpFedAvg(createRng(1), [], { clipNorm: 1, noiseMultiplier: 1, expectedClientsPerRound: 2, template });
    expect(noised.update.every((t) => t.values[0] !== 0)).toBe(true);
  });

  it('refuses bad options, mismatched layouts and an empty round without a template', () => {
    const ok = update([1], [1]);
    expectCode(() => dpFedAvg(createRng(1), [ok], { clipNorm: -1, noiseMultiplier: 1, expectedClientsPerRound: 1 }));
    expectCode(() => dpFedAvg(createRng(1), [ok], { clipNorm: 1, noiseMultiplier: Number.NaN, expectedClientsPerRound: 1 }));
    expectCode(() => dpFedAvg(createRng(1), [ok], { clipNorm: 1, noiseMultiplier: 1, expectedClientsPerRound: 0 }));
    expectCode(() => dpFedAvg(createRng(1), [ok, update([1, 2], [1])], { clipNorm: 1, noiseMultiplier: 1, expectedClientsPerRound: 1 }), 'PARAMS_MISMATCH');
    expectCode(
      () => dpFedAvg(createRng(1), [ok], { clipNorm: 1, noiseMultiplier: 1, expectedClientsPerRound: 1, template: [tensor('image/w', [1])] }),
      'PARAMS_MISMATCH',
    );
    expectCode(() => dpFedAvg(createRng(1), [update([Infinity], [1])], { clipNorm: 1, noiseMultiplier: 1, expectedClientsPerRound: 1 }), 'PARAMS_NON_FINITE');
    expectCode(() => dpFedAvg(createRng(1), [], { clipNorm: 1, noiseMultiplier: 1, expectedClientsPerRound: 1 }), 'AGG_NO_UPDATES');
  });
});
