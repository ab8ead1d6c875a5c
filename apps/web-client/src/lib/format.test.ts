import { describe, expect, it } from 'vitest';
import { divergingRgba, heatRgb } from './palette.js';
import { formatBytes, formatPercent, fractionDone } from './format.js';

describe('format', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(formatBytes(-1)).toBe('—');
  });

  it('formats fractions as percentages and clamps progress', () => {
    expect(formatPercent(0.1234)).toBe('12.3%');
    expect(formatPercent(Number.NaN)).toBe('—');
    expect(fractionDone(3, 4)).toBe(0.75);
    expect(fractionDone(5, 4)).toBe(1);
    expect(fractionDone(1, 0)).toBe(0);
  });
});

describe('palette', () => {
  it('maps signed values to blue (negative) and red (positive) with alpha by magnitude', () => {
    expect(divergingRgba(1)).toEqual([213, 94, 0, 255]);
    expect(divergingRgba(-0.5)).toEqual([0, 114, 178, 128]);
    expect(divergingRgba(0)[3]).toBe(0);
    expect(divergingRgba(Number.NaN)[3]).toBe(0);
  });

  it('ramps the heat map from near-black to pale yellow', () => {
    expect(heatRgb(0)).toEqual([0, 0, 4]);
    expect(heatRgb(1)).toEqual([252, 253, 191]);
    expect(heatRgb(2)).toEqual([252, 253, 191]);
  });
});
