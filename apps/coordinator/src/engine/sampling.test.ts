import { describe, expect, it } from 'vitest';
import { roundRng, waitingRoomSize } from './sampling.js';

describe('waitingRoomSize', () => {
  it('waits for an over-selected cohort, rounded up', () => {
    expect(waitingRoomSize({ clientsPerRound: 10, overSelection: 0.25 })).toBe(13);
    expect(waitingRoomSize({ clientsPerRound: 4, overSelection: 0 })).toBe(4);
  });
});

describe('roundRng', () => {
  it('gives each (seed, round, attempt) its own reproducible stream', () => {
    const draw = (seed: number, round: number, attempt: number): number[] => {
      const rng = roundRng(seed, round, attempt);
      return [rng(), rng(), rng()];
    };
    expect(draw(7, 3, 1)).toEqual(draw(7, 3, 1));
    expect(draw(7, 3, 2)).not.toEqual(draw(7, 3, 1));
    expect(draw(7, 4, 1)).not.toEqual(draw(7, 3, 1));
    expect(draw(8, 3, 1)).not.toEqual(draw(7, 3, 1));
  });
});
