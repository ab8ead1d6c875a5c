import { describe, expect, it } from 'vitest';
import { DEMO_PARTITION_CLIENTS, demoSliceIndices, seedOf } from './volunteerSession.js';

describe('seedOf', () => {
  it('is FNV-1a folded to 31 bits', () => {
    // FNV-1a 32-bit of "" is 0x811c9dc5 and of "a" is 0xe40c292c.
    expect(seedOf('')).toBe(0x811c9dc5 & 0x7fffffff);
    expect(seedOf('a')).toBe(0xe40c292c & 0x7fffffff);
  });
});

describe('demoSliceIndices', () => {
  const labels = Array.from({ length: 4000 }, (_, i) => i % 10);

  it('takes at most the asked number of distinct, ascending, in-range indices, the same for the same seed', () => {
    const slice = demoSliceIndices(labels, 12345, 100);
    expect(slice.length).toBeLessThanOrEqual(100);
    expect(slice.length).toBeGreaterThan(0);
    expect(new Set(slice).size).toBe(slice.length);
    expect(slice.every((v, i) => v >= 0 && v < labels.length && (i === 0 || slice[i - 1]! < v))).toBe(true);
    expect(demoSliceIndices(labels, 12345, 100)).toEqual(slice);
  });

  it('gives different installs different slices', () => {
    const a = new Set(demoSliceIndices(labels, 1, 100));
    const b = demoSliceIndices(labels, 2, 100);
    expect(b.filter((i) => a.has(i)).length).toBeLessThan(b.length);
    expect(DEMO_PARTITION_CLIENTS).toBeGreaterThan(1);
  });
});
