import { describe, expect, it } from 'vitest';
import { roundRng, sampleClients, selectionSize } from './sampling.js';

describe('selectionSize', () => {
  it('over-selects by rounding up and never invites more than are waiting', () => {
    expect(selectionSize(100, 10, 0.25)).toEqual({ invite: 13, target: 10 });
    expect(selectionSize(11, 10, 0.5)).toEqual({ invite: 11, target: 10 });
    expect(selectionSize(3, 10, 0.5)).toEqual({ invite: 3, target: 3 });
    expect(selectionSize(5, 4, 0)).toEqual({ invite: 4, target: 4 });
  });
});

describe('sampleClients', () => {
  it('draws distinct ids, the same for the same seed, round and attempt whatever the join order', () => {
    // Arrange
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
    // Act
    const a = sampleClients(roundRng(7, 3, 1), ids, 10);
    const b = sampleClients(roundRng(7, 3, 1), [...ids].reverse(), 10);
    const otherAttempt = sampleClients(roundRng(7, 3, 2), ids, 10);
    // Assert
    expect(a).toHaveLength(10);
    expect(new Set(a).size).toBe(10);
    expect(a.every((id) => ids.includes(id))).toBe(true);
    expect(b).toEqual(a);
    expect(otherAttempt).not.toEqual(a);
  });

  it('returns everyone when asked for more than are available', () => {
    expect(sampleClients(roundRng(1, 1, 1), ['b', 'a'], 5).sort()).toEqual(['a', 'b']);
  });
});
