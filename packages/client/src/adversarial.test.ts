import { createRng, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import {
  alieUpdate,
  alieZ,
  assignBehaviours,
  attackUpdate,
  behaviourInRound,
  bootstrapDataset,
  coordinateMeanStd,
  ipmUpdate,
  labelPermutation,
  normalQuantile,
  parseAdversarialSpec,
} from './adversarial.js';
import type { AdversarialBehaviour } from './adversarial.js';
import { ArrayDataset } from './dataset.js';
import { isClientError } from './errors.js';

const delta = (): Tensor[] => [tensor('image/a', [2], new Float32Array([1, -2])), tensor('fusion/b', [1], new Float32Array([0.5]))];
const values = (ts: Tensor[]): number[][] => ts.map((t) => Array.from(t.values));

describe('attackUpdate', () => {
  it('sign-flip uploads −Δ, scaling factor·Δ, free-rider zeros, label-flip Δ unchanged', () => {
    // Arrange
    const input = delta();
    // Act
    const flipped = attackUpdate(input, { kind: 'sign-flip' }, createRng(1));
    const scaled = attackUpdate(input, { kind: 'scaling', factor: -3 }, createRng(1));
    const zero = attackUpdate(input, { kind: 'free-rider' }, createRng(1));
    const labelFlip = attackUpdate(input, { kind: 'label-flip' }, createRng(1));
    // Assert
    expect(values(flipped)).toEqual([[-1, 2], [-0.5]]);
    expect(values(scaled)).toEqual([[-3, 6], [-1.5]]);
    expect(values(zero)).toEqual([[0, 0], [0]]);
    expect(values(labelFlip)).toEqual([[1, -2], [0.5]]);
    expect(flipped.map((t) => [t.name, t.shape])).toEqual([
      ['image/a', [2]],
      ['fusion/b', [1]],
    ]);
    expect(values(input)).toEqual([[1, -2], [0.5]]); // input untouched
  });

  it('gaussian-noise adds seeded N(0, σ²) noise: reproducible, zero at σ = 0, spread ≈ σ', () => {
    // Arrange
    const big = [tensor('text/w', [4000], new Float32Array(4000).fill(1))];
    // Act
    const a = attackUpdate(big, { kind: 'gaussian-noise', sigma: 2 }, createRng(7));
    const b = attackUpdate(big, { kind: 'gaussian-noise', sigma: 2 }, createRng(7));
    const none = attackUpdate(big, { kind: 'gaussian-noise', sigma: 0 }, createRng(7));
    // Assert
    expect(a[0]!.values).toEqual(b[0]!.values);
    expect(none[0]!.values.every((v) => v === 1)).toBe(true);
    const noise = Array.from(a[0]!.values, (v) => v - 1);
    const mean = noise.reduce((s, v) => s + v, 0) / noise.length;
    const std = Math.sqrt(noise.reduce((s, v) => s + (v - mean) ** 2, 0) / noise.length);
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(std).toBeGreaterThan(1.85);
    expect(std).toBeLessThan(2.15);
  });

  it('an honest client (null) uploads a copy of Δ', () => {
    const input = delta();
    const out = attackUpdate(input, null, createRng(1));
    expect(values(out)).toEqual(values(input));
    expect(out[0]!.values).not.toBe(input[0]!.values);
  });
});

describe('ipm', () => {
  it('uploads −ε·Δ, through attackUpdate and directly', () => {
    // Arrange
    const input = delta();
    // Act
    const viaAttack = attackUpdate(input, { kind: 'ipm', epsilon: 0.5 }, createRng(1));
    const strong = ipmUpdate(input, 4);
    // Assert
    expect(values(viaAttack)).toEqual([[-0.5, 1], [-0.25]]);
    expect(values(strong)).toEqual([[-4, 8], [-2]]);
    expect(values(input)).toEqual([[1, -2], [0.5]]);
    expect(() => ipmUpdate(input, 0)).toThrow(expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }) as Error);
  });
});

describe('alie', () => {
  it('normalQuantile matches tabulated Φ⁻¹ and is odd around 1/2', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.6)).toBeCloseTo(0.253347, 5);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 5);
    expect(normalQuantile(0.3)).toBeCloseTo(-normalQuantile(0.7), 8);
    expect(() => normalQuantile(1)).toThrow(/normalQuantile/);
  });

  it("alieZ follows the paper's s = ⌊n/2 + 1⌋ − m, z = Φ⁻¹((n − s)/n)", () => {
    // n = 10, m = 2: s = 4, z = Φ⁻¹(0.6); m = 4: s = 2, z = Φ⁻¹(0.8); n = 50, m = 24: s = 2, z = Φ⁻¹(0.96).
    expect(alieZ(10, 2)).toBeCloseTo(0.253347, 5);
    expect(alieZ(10, 4)).toBeCloseTo(0.841621, 5);
    expect(alieZ(50, 24)).toBeCloseTo(1.750686, 5);
    // A colluding majority would need s ≤ 0: s is kept at 1 (z = Φ⁻¹(0.9) for n = 10).
    expect(alieZ(10, 8)).toBeCloseTo(1.281552, 5);
    expect(alieZ(1, 1)).toBe(0);
    expect(() => alieZ(10, 11)).toThrow(expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }) as Error);
  });

  it('coordinateMeanStd and alieUpdate give mean − z·std with the sample std', () => {
    // Arrange: coordinate 1 sees 1, 3 (mean 2, std √2); coordinate 2 sees 4, 4 (std 0).
    const replicates = [[tensor('w', [2], new Float32Array([1, 4]))], [tensor('w', [2], new Float32Array([3, 4]))]];
    // Act
    const { mean, std } = coordinateMeanStd(replicates);
    const attacked = alieUpdate(replicates, 1);
    // Assert
    expect(Array.from(mean[0]!.values)).toEqual([2, 4]);
    expect(std[0]!.values[0]).toBeCloseTo(Math.SQRT2, 6);
    expect(std[0]!.values[1]).toBe(0);
    expect(attacked[0]!.values[0]).toBeCloseTo(2 - Math.SQRT2, 6);
    expect(attacked[0]!.values[1]).toBe(4);
    expect(attacked.map((t) => [t.name, t.shape])).toEqual([['w', [2]]]);
    expect(values(alieUpdate(replicates, 0))).toEqual([[2, 4]]);
    expect(() => coordinateMeanStd(replicates.slice(0, 1))).toThrow(/at least 2/);
    expect(() => coordinateMeanStd([replicates[0]!, [tensor('v', [2])]])).toThrow(/differ/);
    expect(() => attackUpdate(delta(), { kind: 'alie', z: 1, replicates: 4 }, createRng(1))).toThrow(/alieUpdate/);
  });

  it('bootstrapDataset resamples with replacement, reproducibly, and reads through to the data', async () => {
    // Arrange: example i has label i and pixel value i.
    const dataset = new ArrayDataset(Int32Array.from([0, 1, 2, 3, 4]), { image: { values: Float32Array.from([0, 1, 2, 3, 4]), shape: [5, 1] } });
    // Act
    const a = bootstrapDataset(dataset, createRng(3));
    const b = bootstrapDataset(dataset, createRng(3));
    const batch = await a.read([0, 1, 2, 3, 4]);
    // Assert
    expect(a.numExamples).toBe(5);
    expect(a.modalities).toEqual(['image']);
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
    expect(Array.from(a.labels).every((l) => l >= 0 && l < 5)).toBe(true);
    expect(Array.from(batch.labels)).toEqual(Array.from(a.labels));
    expect(Array.from(batch.image!.values)).toEqual(Array.from(a.labels));
    // Over many draws some example repeats (5 draws from 5 are all distinct with probability 4.8%).
    const repeats = [1, 2, 3, 4, 5, 6, 7, 8].some((seed) => new Set(bootstrapDataset(dataset, createRng(seed)).labels).size < 5);
    expect(repeats).toBe(true);
  });
});

describe('behaviourInRound', () => {
  it('delayed-sign-flip is honest up to round K and sign-flip from round K + 1', () => {
    // Arrange
    const delayed: AdversarialBehaviour = { kind: 'delayed-sign-flip', honestRounds: 3 };
    // Act
    const byRound = [1, 2, 3, 4, 5].map((r) => behaviourInRound(delayed, r));
    // Assert
    expect(byRound).toEqual([null, null, null, { kind: 'sign-flip' }, { kind: 'sign-flip' }]);
    expect(behaviourInRound({ kind: 'delayed-sign-flip', honestRounds: 0 }, 1)).toEqual({ kind: 'sign-flip' });
    expect(behaviourInRound({ kind: 'scaling', factor: 2 }, 1)).toEqual({ kind: 'scaling', factor: 2 });
    expect(behaviourInRound(null, 9)).toBeNull();
    expect(values(attackUpdate(delta(), delayed, createRng(1)))).toEqual([[-1, 2], [-0.5]]);
  });
});

describe('labelPermutation', () => {
  it('is a seeded bijection that moves every label', () => {
    for (const seed of [1, 2, 3]) {
      const map = labelPermutation(10, createRng(seed));
      expect([...map].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect([...map].every((to, from) => to !== from)).toBe(true);
      expect(labelPermutation(10, createRng(seed))).toEqual(map);
    }
    expect(Array.from(labelPermutation(2, createRng(5)))).toEqual([1, 0]);
  });
});

describe('parseAdversarialSpec and assignBehaviours', () => {
  it('parses KIND:FRACTION[:PARAM] with defaults', () => {
    expect(parseAdversarialSpec('sign-flip:0.2')).toEqual({ behaviour: { kind: 'sign-flip' }, fraction: 0.2 });
    expect(parseAdversarialSpec('scaling:0.1:-5')).toEqual({ behaviour: { kind: 'scaling', factor: -5 }, fraction: 0.1 });
    expect(parseAdversarialSpec('scaling:0.1')).toEqual({ behaviour: { kind: 'scaling', factor: 10 }, fraction: 0.1 });
    expect(parseAdversarialSpec('gaussian-noise:0.3:0.5')).toEqual({ behaviour: { kind: 'gaussian-noise', sigma: 0.5 }, fraction: 0.3 });
    expect(parseAdversarialSpec('free-rider:1')).toEqual({ behaviour: { kind: 'free-rider' }, fraction: 1 });
    expect(parseAdversarialSpec('alie:0.2')).toEqual({ behaviour: { kind: 'alie', z: null, replicates: 4 }, fraction: 0.2 });
    expect(parseAdversarialSpec('alie:0.2:1.5')).toEqual({ behaviour: { kind: 'alie', z: 1.5, replicates: 4 }, fraction: 0.2 });
    expect(parseAdversarialSpec('ipm:0.4')).toEqual({ behaviour: { kind: 'ipm', epsilon: 0.5 }, fraction: 0.4 });
    expect(parseAdversarialSpec('ipm:0.4:100')).toEqual({ behaviour: { kind: 'ipm', epsilon: 100 }, fraction: 0.4 });
    expect(parseAdversarialSpec('delayed-sign-flip:0.2')).toEqual({ behaviour: { kind: 'delayed-sign-flip', honestRounds: 3 }, fraction: 0.2 });
    expect(parseAdversarialSpec('delayed-sign-flip:0.2:5')).toEqual({ behaviour: { kind: 'delayed-sign-flip', honestRounds: 5 }, fraction: 0.2 });
  });

  it('refuses malformed specs with CLIENT_BAD_CONFIG', () => {
    for (const bad of [
      'flip:0.2',
      'sign-flip',
      'sign-flip:1.5',
      'sign-flip:0.2:3',
      'scaling:0.1:x',
      'gaussian-noise:0.1:-1',
      'label-flip:0.1:2:3',
      'alie:0.2:-1',
      'ipm:0.2:0',
      'delayed-sign-flip:0.2:1.5',
      'delayed-sign-flip:0.2:-1',
    ]) {
      expect(() => parseAdversarialSpec(bad), bad).toThrow(expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }) as Error);
    }
  });

  it('gives each spec round(fraction·K) distinct clients, reproducibly', () => {
    // Arrange
    const specs = [parseAdversarialSpec('sign-flip:0.2'), parseAdversarialSpec('free-rider:0.3')];
    // Act
    const assigned = assignBehaviours(10, specs, 4);
    // Assert
    expect(assigned.filter((b) => b?.kind === 'sign-flip')).toHaveLength(2);
    expect(assigned.filter((b) => b?.kind === 'free-rider')).toHaveLength(3);
    expect(assigned.filter((b) => b === null)).toHaveLength(5);
    expect(assignBehaviours(10, specs, 4)).toEqual(assigned);
    let err: unknown;
    try {
      assignBehaviours(4, [parseAdversarialSpec('sign-flip:0.7'), parseAdversarialSpec('free-rider:0.7')], 1); // 3 + 3 of 4
    } catch (e) {
      err = e;
    }
    expect(isClientError(err, 'CLIENT_BAD_CONFIG')).toBe(true);
  });

  it("gives alie colluders the paper's z for the number of clients and of colluders, unless the spec set one", () => {
    // Act
    const assigned = assignBehaviours(10, [parseAdversarialSpec('alie:0.2'), parseAdversarialSpec('ipm:0.1')], 4);
    const fixed = assignBehaviours(10, [parseAdversarialSpec('alie:0.4:2')], 4);
    // Assert: 2 colluders of 10 → z = Φ⁻¹(0.6).
    const colluders = assigned.filter((b) => b?.kind === 'alie');
    expect(colluders).toHaveLength(2);
    for (const b of colluders) expect(b?.kind === 'alie' && b.z).toBeCloseTo(0.253347, 5);
    expect(fixed.filter((b) => b?.kind === 'alie' && b.z === 2)).toHaveLength(4);
  });
});
