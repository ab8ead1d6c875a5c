import { describe, expect, it } from 'vitest';
import { recallAtK, retrievalMetrics } from './retrievalMetrics.js';

// Query 1's caption is beaten by caption 0 (0.8 > 0.5); every column's own entry is its maximum.
const SIM = [0.9, 0.1, 0.2, 0.8, 0.5, 0.1, 0.3, 0.2, 0.7];

describe('retrievalMetrics', () => {
  it('computes recalls in both directions and rsum on a hand-made matrix', () => {
    const m = retrievalMetrics(SIM, 3);

    expect(m.i2tR1).toBeCloseTo(200 / 3, 6);
    expect(m.i2tR5).toBe(100);
    expect(m.t2iR1).toBe(100);
    expect(m.t2iR10).toBe(100);
    expect(m.rsum).toBeCloseTo(200 / 3 + 500, 6);
    expect(m.numPairs).toBe(3);
  });

  it('counts a query as found at k when fewer than k candidates beat its match', () => {
    expect(recallAtK(SIM, 3, 1, 'row')).toBeCloseTo(200 / 3, 6);
    expect(recallAtK(SIM, 3, 2, 'row')).toBe(100);
    expect(recallAtK(SIM, 3, 1, 'column')).toBe(100);
  });

  it('gives ties to the true match', () => {
    expect(recallAtK([1, 1, 1, 1], 2, 1)).toBe(100);
  });

  it('refuses a matrix of the wrong size, non-finite values and a bad k', () => {
    expect(() => retrievalMetrics([1, 2, 3], 2)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(() => retrievalMetrics([1, NaN, 0, 1], 2)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(() => recallAtK(SIM, 3, 0)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_CONFIG' }));
  });
});
