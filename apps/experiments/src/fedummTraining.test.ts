import { describe, expect, it } from 'vitest';
import { encodedBytes, medianOf } from './fedummTraining.js';

describe('encodedBytes and medianOf', () => {
  it('sizes an update about 4, 2 and 1 bytes per value in fp32, fp16 and int8', () => {
    const values = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i));
    const tensors = [{ name: 'image/w', shape: [4096], values }];

    const [fp32, fp16, int8] = (['fp32', 'fp16', 'int8'] as const).map((e) => encodedBytes(tensors, e));

    expect(fp32).toBeGreaterThanOrEqual(4 * 4096);
    expect(fp32).toBeLessThan(4 * 4096 + 200);
    expect(fp16! / fp32!).toBeCloseTo(0.5, 1);
    expect(int8! / fp32!).toBeCloseTo(0.25, 1);
  });

  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
    expect(medianOf([])).toBeNaN();
  });
});
