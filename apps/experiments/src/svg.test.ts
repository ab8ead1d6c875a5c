import { describe, expect, it } from 'vitest';
import { isExperimentsError } from './errors.js';
import { barChart, escapeXml, lineChart, niceTicks } from './svg.js';

const count = (svg: string, tag: string): number => svg.split(`<${tag} `).length - 1;

describe('niceTicks', () => {
  it('steps by 1, 2 or 5 × 10^k and covers the range', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.13, 0.52)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    expect(niceTicks(1, 10)).toEqual([0, 2, 4, 6, 8, 10]);
  });

  it('refuses an empty range with a coded error', () => {
    expect(() => niceTicks(1, 1)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
  });
});

describe('escapeXml', () => {
  it('escapes the five XML specials', () => {
    expect(escapeXml(`<a & "b" 'c'>`)).toBe('&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;');
  });
});

describe('lineChart', () => {
  const options = {
    title: 'Accuracy <by> round & method',
    xLabel: 'round',
    yLabel: 'accuracy',
    series: [
      {
        name: 'FedAvg',
        points: [
          { x: 2, y: 0.5 },
          { x: 1, y: 0.2 },
          { x: 3, y: 0.9 },
        ],
      },
      {
        name: 'FedMM-X',
        points: [
          { x: 1, y: 0.3, low: 0.2, high: 0.4 },
          { x: 3, y: 0.8, low: 0.7, high: 0.9 },
        ],
        dashed: true,
      },
    ],
    yMin: 0,
    yMax: 1,
  };

  it('draws one line per series, a band for spread, a dashed stroke and escaped text', () => {
    const svg = lineChart(options);

    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(count(svg, 'polyline')).toBe(2);
    expect(count(svg, 'polygon')).toBe(1);
    expect(count(svg, 'circle')).toBe(5);
    expect(svg).toContain('stroke-dasharray="5 3"');
    expect(svg).toContain('Accuracy &lt;by&gt; round &amp; method');
    expect(svg).not.toContain('<by>');
  });

  it('sorts points by x and maps the y range onto the plot (0 at the bottom, 1 at the top)', () => {
    const svg = lineChart({ ...options, series: [options.series[0]!] });

    // Plot: left 64, right 720 − 16 − 100 (legend) = 604, top 40, bottom 380 − 56 = 324.
    expect(svg).toContain('<polyline points="64,267.2 334,182 604,68.4"');
  });

  it('is deterministic', () => {
    expect(lineChart(options)).toBe(lineChart(options));
  });

  it('refuses non-finite values and charts without points', () => {
    const nan = { ...options, series: [{ name: 'x', points: [{ x: 1, y: Number.NaN }] }] };
    expect(() => lineChart(nan)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
    let caught: unknown;
    try {
      lineChart({ ...options, series: [] });
    } catch (err) {
      caught = err;
    }
    expect(isExperimentsError(caught, 'EXPERIMENTS_BAD_INPUT')).toBe(true);
  });

  it('handles a single point (x range padded, whisker for its spread)', () => {
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [{ x: 5, y: 2, low: 1, high: 3 }] }] });

    expect(count(svg, 'polygon')).toBe(0);
    expect(svg).toMatch(/<line x1="([\d.]+)" x2="\1" y1="[\d.]+" y2="[\d.]+" stroke="#4e79a7"\/>/);
  });
});

describe('barChart', () => {
  const options = {
    title: 'Table 1',
    yLabel: 'accuracy',
    groups: ['image', 'text', 'audio'],
    series: [
      { name: 'FedAvg', values: [0.5, null, 1], errors: [0.1, null, 0] },
      { name: 'FedMM-X', values: [0.25, 0.75, 1] },
    ],
    yMin: 0,
    yMax: 1,
  };

  it('draws a bar per value, n/a for null and a whisker per positive error', () => {
    const svg = barChart(options);

    expect(count(svg, 'rect')).toBe(1 + 5 + 2); // background, bars, legend swatches
    expect(svg).toContain('>n/a</text>');
    expect(svg.match(/stroke="#222222"/g)?.length).toBe(1);
  });

  it('grows bars from zero with heights proportional to the values', () => {
    const svg = barChart({ ...options, series: [{ name: 'a', values: [0.5, 0.25, 1] }] });

    // Plot height 284 px for [0, 1].
    expect(svg).toContain('height="142"');
    expect(svg).toContain('height="71"');
    expect(svg).toContain('height="284"');
  });

  it('refuses a series whose length is not the number of groups, or a negative error', () => {
    expect(() => barChart({ ...options, series: [{ name: 'a', values: [1, 2] }] })).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
    expect(() => barChart({ ...options, series: [{ name: 'a', values: [1, 2, 3], errors: [0, -1, 0] }] })).toThrow(/error 1/);
  });

  it('is deterministic', () => {
    expect(barChart(options)).toBe(barChart(options));
  });
});

describe('lineChart series colours', () => {
  const points = [
    { x: 1, y: 0.2 },
    { x: 2, y: 0.4 },
  ];

  it('draws a series in its own colour and width, legend included', () => {
    const svg = lineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        { name: 'a', points, colour: '#123456', strokeWidth: 3 },
        { name: 'b', points },
      ],
    });

    expect(svg.match(/stroke="#123456"/g)?.length).toBe(2);
    expect(svg).toContain('stroke="#123456" stroke-width="3"');
  });

  it.each([['red'], ['#12345'], ['#1234567']])('refuses colour %j with a coded error', (colour) => {
    expect(() => lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points, colour }] })).toThrow(
      expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }),
    );
  });

  it('refuses a stroke width that is not positive', () => {
    expect(() => lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points, strokeWidth: 0 }] })).toThrow(/strokeWidth/);
  });
});
