import { describe, expect, it } from 'vitest';
import { formatMeanStd, markdownTable, meanStd } from './stats.js';

describe('meanStd', () => {
  it('gives the sample standard deviation', () => {
    const r = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(r.mean).toBe(5);
    expect(r.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(r.n).toBe(8);
  });

  it('formats percent with spread, a single value without, and nothing as a dash', () => {
    expect(formatMeanStd([0.9, 0.8], { scale: 100 })).toBe('85.0 ± 7.1');
    expect(formatMeanStd([0.5])).toBe('0.5');
    expect(formatMeanStd([])).toBe('—');
  });
});

describe('markdownTable', () => {
  it('escapes pipes inside cells', () => {
    expect(markdownTable(['a', 'b'], [['x|y', 1]])).toBe('| a | b |\n| --- | --- |\n| x\\|y | 1 |\n');
  });
});
