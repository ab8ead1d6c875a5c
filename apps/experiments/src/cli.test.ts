import { describe, expect, it } from 'vitest';
import { SECTIONS, startOrder } from './cli.js';
import type { SectionEntry } from './section.js';

describe('startOrder', () => {
  const run = (): never => {
    throw new Error('not run');
  };
  const sections: SectionEntry[] = [
    { id: 'a', run, quickMinutes: 2 },
    { id: 'b', run, quickMinutes: 5 },
    { id: 'c', run },
    { id: 'd', run, quickMinutes: 5 },
  ];

  it('starts the longest quick grid first, ties and unknown costs in report order', () => {
    expect(startOrder(['a', 'b', 'c', 'd'], sections)).toEqual(['b', 'd', 'a', 'c']);
    expect(startOrder(['c', 'a'], sections)).toEqual(['a', 'c']);
    expect(startOrder([], sections)).toEqual([]);
  });

  it('gives every built-in section a measured quick cost', () => {
    expect(SECTIONS.every((s) => (s.quickMinutes ?? 0) > 0)).toBe(true);
    expect(startOrder(SECTIONS.map((s) => s.id)).sort()).toEqual(SECTIONS.map((s) => s.id).sort());
  });
});
