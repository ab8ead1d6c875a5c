import { createRng, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { assignBehaviours, attackUpdate, labelPermutation, parseAdversarialSpec } from './adversarial.js';
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
  });

  it('refuses malformed specs with CLIENT_BAD_CONFIG', () => {
    for (const bad of ['flip:0.2', 'sign-flip', 'sign-flip:1.5', 'sign-flip:0.2:3', 'scaling:0.1:x', 'gaussian-noise:0.1:-1', 'label-flip:0.1:2:3']) {
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
});
