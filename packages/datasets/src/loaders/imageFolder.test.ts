import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './image.js';
import { loadImageFolder } from './imageFolder.js';
import { sourceFromBytes, sourceFromText } from './source.js';
import type { SourceFile } from './source.js';

function png(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const image = new PNG({ width, height });
  for (let p = 0; p < width * height; p++) image.data.set([...rgb, 255], 4 * p);
  return new Uint8Array(PNG.sync.write(image));
}

function jpg(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], 4 * p);
  return new Uint8Array(jpeg.encode({ width, height, data }, 100).data);
}

describe('decodeImage', () => {
  it('decodes a JPEG to RGB within JPEG rounding', async () => {
    const img = await decodeImage(jpg(16, 8, [200, 40, 40]));
    expect([img.width, img.height, img.channels]).toEqual([16, 8, 3]);
    expect(Math.abs((img.data[0] as number) - 200)).toBeLessThanOrEqual(3);
    expect(Math.abs((img.data[1] as number) - 40)).toBeLessThanOrEqual(3);
  });

  it('refuses truncated and oversized JPEGs with their codes', async () => {
    const good = jpg(16, 16, [1, 2, 3]);
    await expect(decodeImage(good.subarray(0, good.length - 40))).rejects.toMatchObject({ code: 'LOADER_CORRUPT' });
    await expect(decodeImage(good, 100)).rejects.toMatchObject({ code: 'LOADER_TOO_LARGE' });
    await expect(decodeImage(good.subarray(0, 30))).rejects.toMatchObject({ code: 'LOADER_CORRUPT' });
  });

  it('names what a non-image is', async () => {
    await expect(decodeImage(new TextEncoder().encode('GIF89a......'))).rejects.toThrow(/a GIF/);
  });
});

describe('loadImageFolder', () => {
  it('loads good files by class folder and skips bad ones with their codes', async () => {
    // Arrange
    const brokenPng = png(4, 4, [0, 0, 0]);
    const files: SourceFile[] = [
      sourceFromBytes('pets/dogs/d1.png', png(3, 3, [0, 0, 255])),
      sourceFromBytes('pets/cats/c2.jpeg', jpg(8, 8, [255, 0, 0])),
      sourceFromBytes('pets/cats/c1.png', png(2, 2, [255, 255, 255])),
      sourceFromBytes('pets/dogs/broken.png', brokenPng.subarray(0, brokenPng.length - 20)),
      sourceFromBytes('pets/dogs/empty.png', new Uint8Array(0)),
      sourceFromText('pets/dogs/notes.txt', 'not an image'),
      { path: 'pets/dogs/huge.png', size: 1e9, read: () => Promise.reject(new Error('must not be read')) },
      sourceFromBytes('pets/.DS_Store', Uint8Array.of(0, 0, 0, 1)),
    ];
    // Act
    const result = await loadImageFolder(files, { target: { height: 2, width: 2, channels: 1, dtype: 'uint8' }, maxFileBytes: 1 << 20 });
    // Assert
    expect(result.classNames).toEqual(['cats', 'dogs']);
    expect(result.shape).toEqual([2, 2, 1]);
    expect(result.samples.map((s) => [s.path, s.label])).toEqual([
      ['pets/cats/c1.png', 0],
      ['pets/cats/c2.jpeg', 0],
      ['pets/dogs/d1.png', 1],
    ]);
    expect([...(result.samples[0]?.pixels ?? [])]).toEqual([255, 255, 255, 255]);
    expect([...(result.samples[2]?.pixels ?? [])]).toEqual([29, 29, 29, 29]); // 0.114 · 255 = 29.07
    expect(Math.abs((result.samples[1]?.pixels[0] ?? 0) - 76)).toBeLessThanOrEqual(2);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['pets/dogs/broken.png', 'LOADER_CORRUPT'],
      ['pets/dogs/empty.png', 'LOADER_EMPTY'],
      ['pets/dogs/huge.png', 'LOADER_TOO_LARGE'],
      ['pets/dogs/notes.txt', 'LOADER_UNSUPPORTED'],
    ]);
    expect(result.skipped[0]?.message).toMatch(/^pets\/dogs\/broken\.png: /);
  });

  it('keeps the task class ids and skips folders outside them', async () => {
    const files = [
      sourceFromBytes('b/x.png', png(1, 1, [0, 0, 0])),
      sourceFromBytes('z/y.png', png(1, 1, [0, 0, 0])),
      sourceFromBytes('top.png', png(1, 1, [0, 0, 0])),
    ];
    const result = await loadImageFolder(files, { target: { height: 1, width: 1, channels: 3, dtype: 'float32' }, classNames: ['a', 'b'] });
    expect(result.samples.map((s) => s.label)).toEqual([1]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['top.png', 'LOADER_BAD_LABEL'],
      ['z/y.png', 'LOADER_BAD_LABEL'],
    ]);
  });
});
