import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import type { DecodedImage } from './png.js';
import { resizeImage } from './resize.js';

const grey = (width: number, height: number, values: number[]): DecodedImage => ({ width, height, channels: 1, data: Uint8Array.from(values) });

describe('resizeImage', () => {
  it('area-averages when shrinking', () => {
    // Arrange: 2×2 → 1×1 is the mean, (0 + 100 + 200 + 255) / 4 = 138.75
    const img = grey(2, 2, [0, 100, 200, 255]);
    // Act
    const out = resizeImage(img, { height: 1, width: 1, channels: 1, dtype: 'uint8' });
    // Assert
    expect([...out]).toEqual([139]);
  });

  it('weights partly covered pixels by their coverage', () => {
    // 3 → 2 columns: each output covers 1.5 source pixels, so (2a + b) / 3 and (b + 2c) / 3
    const out = resizeImage(grey(3, 1, [30, 60, 90]), { height: 1, width: 2, channels: 1, dtype: 'float32' });
    expect(out[0]).toBeCloseTo(40 / 255, 6);
    expect(out[1]).toBeCloseTo(80 / 255, 6);
  });

  it('takes 2×2 block means from 4×4 down to 2×2', () => {
    const img = grey(4, 4, [0, 4, 8, 12, 4, 8, 12, 16, 20, 20, 40, 40, 20, 20, 40, 40]);
    expect([...resizeImage(img, { height: 2, width: 2, channels: 1, dtype: 'uint8' })]).toEqual([4, 12, 20, 40]);
  });

  it('interpolates bilinearly with half-pixel centres when growing', () => {
    // 2 → 4: centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) → 0, 25, 75, 100
    const out = resizeImage(grey(2, 1, [0, 100]), { height: 1, width: 4, channels: 1, dtype: 'uint8' });
    expect([...out]).toEqual([0, 25, 75, 100]);
  });

  it('converts RGB to BT.601 luma and grey to RGB', () => {
    const red: DecodedImage = { width: 1, height: 1, channels: 3, data: Uint8Array.of(255, 0, 0) };
    expect([...resizeImage(red, { height: 1, width: 1, channels: 1, dtype: 'uint8' })]).toEqual([76]); // 0.299 · 255 = 76.2
    expect([...resizeImage(grey(1, 1, [9]), { height: 1, width: 1, channels: 3, dtype: 'uint8' })]).toEqual([9, 9, 9]);
  });

  it('grows one axis while shrinking the other', () => {
    // 1×2 (w×h) column [0; 200] → 2×1: rows averaged to 100, then copied across
    expect([...resizeImage(grey(1, 2, [0, 200]), { height: 1, width: 2, channels: 1, dtype: 'uint8' })]).toEqual([100, 100]);
  });

  it('refuses an unusable target with LOADER_BAD_CONFIG', () => {
    let caught: unknown;
    try {
      resizeImage(grey(1, 1, [0]), { height: 0, width: 2, channels: 1, dtype: 'uint8' });
    } catch (err) {
      caught = err;
    }
    expect(isDatasetError(caught, 'LOADER_BAD_CONFIG')).toBe(true);
  });
});
