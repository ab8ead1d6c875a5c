import { describe, expect, it } from 'vitest';
import { createRng, dirichlet, gaussian, shuffled } from './rng.js';

describe('rng', () => {
  it('is reproducible from a seed and differs across seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('gaussian has mean ≈ 0 and variance ≈ 1', () => {
    const rng = createRng(7);
    const n = 20000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = gaussian(rng);
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.05);
  });

  it('dirichlet samples sum to 1 and small alpha concentrates mass', () => {
    const rng = createRng(1);
    const p = dirichlet(rng, 0.05, 10);
    expect(p.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 10);
    expect(Math.max(...p)).toBeGreaterThan(0.5);
  });

  it('shuffled permutes a copy', () => {
    const items = [1, 2, 3, 4, 5, 6];
    const out = shuffled(createRng(3), items);
    expect([...out].sort()).toEqual(items);
    expect(items).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
