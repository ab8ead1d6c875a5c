import { describe, expect, it } from 'vitest';
import { fitLength, normaliseRange, normaliseSigned, pcm16ToFloat, waveformPeaks } from './signal.js';

describe('signal helpers', () => {
  it('crops long clips and zero-pads short ones', () => {
    expect(Array.from(fitLength(Float32Array.from([1, 2, 3, 4]), 2))).toEqual([1, 2]);
    expect(Array.from(fitLength(Float32Array.from([1, 2]), 4))).toEqual([1, 2, 0, 0]);
    expect(() => fitLength(new Float32Array(1), 0)).toThrow(/WEB_BAD_SAMPLE/);
  });

  it('takes min and max per bucket', () => {
    const { min, max } = waveformPeaks(Float32Array.from([0, 1, -1, 0.5, 0.25, -0.25]), 3);
    expect(Array.from(min)).toEqual([0, -1, -0.25]);
    expect(Array.from(max)).toEqual([1, 0.5, 0.25]);
  });

  it('normalises by peak magnitude and by range', () => {
    expect(Array.from(normaliseSigned([2, -4, 1]))).toEqual([0.5, -1, 0.25]);
    expect(Array.from(normaliseSigned([0, 0]))).toEqual([0, 0]);
    expect(Array.from(normaliseRange([2, 4, 3]))).toEqual([0, 1, 0.5]);
    expect(Array.from(normaliseRange([5, 5]))).toEqual([0, 0]);
  });

  it('scales int16 PCM to [-1, 1)', () => {
    expect(Array.from(pcm16ToFloat(Int16Array.from([-32768, 0, 16384])))).toEqual([-1, 0, 0.5]);
  });
});
