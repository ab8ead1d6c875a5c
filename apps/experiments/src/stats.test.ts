import { describe, expect, it } from 'vitest';
import { formatMeanStd, formatPaired, markdownTable, meanBandPoints, meanStd, pairedDifference, pairedReading, tQuantile975 } from './stats.js';

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

describe('tQuantile975', () => {
  it('gives the table values, and the next lower tabulated df in between', () => {
    expect(tQuantile975(1)).toBe(12.706);
    expect(tQuantile975(4)).toBe(2.776);
    expect(tQuantile975(30)).toBe(2.042);
    expect(tQuantile975(45)).toBe(2.021);
    expect(tQuantile975(1000)).toBe(1.96);
  });

  it('refuses a df below 1 or not an integer with a coded error', () => {
    expect(() => tQuantile975(0)).toThrow(/EXPERIMENTS_BAD_INPUT/);
    expect(() => tQuantile975(2.5)).toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});

describe('pairedDifference', () => {
  it('pairs by seed and gives mean ± t·s/√n (checked by hand)', () => {
    // a − b per seed: 1, 2, 3 (seed 9 only in a, ignored); mean 2, s = 1, t(2) = 4.303, half-width 4.303 / √3 = 2.4843.
    const a = [
      { seed: 3, value: 13 },
      { seed: 1, value: 11 },
      { seed: 2, value: 12 },
      { seed: 9, value: 50 },
    ];
    const b = [
      { seed: 1, value: 10 },
      { seed: 2, value: 10 },
      { seed: 3, value: 10 },
    ];
    const d = pairedDifference(a, b);
    expect(d.seeds).toEqual([1, 2, 3]);
    expect(d.differences).toEqual([1, 2, 3]);
    expect(d.mean).toBe(2);
    expect(d.std).toBeCloseTo(1, 12);
    expect(d.low).toBeCloseTo(2 - 2.4843, 4);
    expect(d.high).toBeCloseTo(2 + 2.4843, 4);
    expect(d.includesZero).toBe(true);
  });

  it('excludes 0 when every seed moves the same way by a steady amount', () => {
    // Differences 0.9, 1.1: mean 1, s = 0.1414, t(1) = 12.706, half-width 12.706 · 0.1414 / √2 = 1.2706: [−0.27, 2.27] includes 0.
    const wide = pairedDifference(
      [
        { seed: 1, value: 1.9 },
        { seed: 2, value: 2.1 },
      ],
      [
        { seed: 1, value: 1 },
        { seed: 2, value: 1 },
      ],
    );
    expect(wide.high - wide.mean).toBeCloseTo(1.2706, 3);
    expect(wide.includesZero).toBe(true);
    // Five seeds of 1.0, 1.1, 0.9, 1.0, 1.0: mean 1, s = 0.0707, t(4) = 2.776, half-width 0.0878: [0.912, 1.088].
    const seeds = [1, 2, 3, 4, 5];
    const narrow = pairedDifference(
      seeds.map((seed, i) => ({ seed, value: [1, 1.1, 0.9, 1, 1][i]! })),
      seeds.map((seed) => ({ seed, value: 0 })),
    );
    expect(narrow.low).toBeCloseTo(1 - 0.08778, 4);
    expect(narrow.includesZero).toBe(false);
    expect(formatPaired(narrow, { scale: 100 })).toBe('+100.0 [+91.2, +108.8]');
    expect(pairedReading('X', 'Y', narrow)).toMatch(/excludes 0, so over these 5 seeds X is above Y/);
    expect(pairedReading('X', 'Y', wide)).toMatch(/includes 0/);
  });

  it('gives no interval for one seed and refuses a seed named twice', () => {
    const one = pairedDifference([{ seed: 1, value: 0.5 }], [{ seed: 1, value: 0.25 }]);
    expect(one.n).toBe(1);
    expect(one.includesZero).toBeNull();
    expect(formatPaired(one, { scale: 100 })).toBe('+25.0 (1 seed, no interval)');
    expect(() =>
      pairedDifference(
        [
          { seed: 1, value: 0 },
          { seed: 1, value: 1 },
        ],
        [],
      ),
    ).toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});

describe('meanBandPoints', () => {
  it('gives each round with values its mean, a ±1 std band from two values on, and leaves out empty rounds', () => {
    const perRound = [[0.2, 0.4], [], [0.5]];
    const points = meanBandPoints(3, (i) => perRound[i]!);
    expect(points.map((p) => p.x)).toEqual([1, 3]);
    expect(points[0]!.y).toBeCloseTo(0.3, 12);
    expect(points[0]!.low).toBeCloseTo(0.3 - Math.sqrt(0.02), 12);
    expect(points[0]!.high).toBeCloseTo(0.3 + Math.sqrt(0.02), 12);
    expect(points[1]).toEqual({ x: 3, y: 0.5 });
  });
});
