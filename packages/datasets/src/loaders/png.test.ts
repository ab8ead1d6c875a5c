import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import { concatBytes, pngChunk, rawPng } from './fixtures.js';
import { decodePng } from './png.js';

const LIMIT = 1 << 20;

/** A pngjs-encoded image from RGBA pixels. */
function pngjsImage(width: number, height: number, rgba: number[], colorType: 0 | 2 | 4 | 6, bitDepth: 8 | 16 = 8): Uint8Array {
  const png = new PNG({ width, height });
  // pngjs reads 16-bit input as native-endian uint16 over the buffer's whole ArrayBuffer.
  png.data = bitDepth === 8 ? Buffer.from(rgba) : Buffer.from(Uint16Array.from(rgba, (v) => v * 257).buffer);
  return new Uint8Array(PNG.sync.write(png, { colorType, bitDepth, inputHasAlpha: true }));
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'none';
  } catch (err) {
    return isDatasetError(err) ? err.code : `untyped: ${String(err)}`;
  }
}

describe('decodePng', () => {
  it('decodes an RGBA pngjs image to RGB, dropping alpha', async () => {
    // Arrange: red, green / blue, half-transparent white
    const bytes = pngjsImage(2, 2, [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 128], 6);
    // Act
    const img = await decodePng(bytes, LIMIT);
    // Assert
    expect([img.width, img.height, img.channels]).toEqual([2, 2, 3]);
    expect([...img.data]).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
  });

  it('decodes grey pngjs images at 8 and 16 bits', async () => {
    const rgba = [0, 0, 0, 255, 100, 100, 100, 255, 200, 200, 200, 255, 255, 255, 255, 255];
    for (const depth of [8, 16] as const) {
      const img = await decodePng(pngjsImage(2, 2, rgba, 0, depth), LIMIT);
      expect(img.channels).toBe(1);
      expect([...img.data]).toEqual([0, 100, 200, 255]);
    }
  });

  it('decodes RGB with 16-bit samples by rounding to 8 bits', async () => {
    // 0x1234 / 257 = 18.13 → 18; 0xfffe / 257 = 254.99 → 255; 0x0080 / 257 = 0.498 → 0
    const bytes = rawPng({ width: 1, height: 1, bitDepth: 16, colorType: 2, scanlines: [0, 0x12, 0x34, 0xff, 0xfe, 0x00, 0x80] });
    expect([...(await decodePng(bytes, LIMIT)).data]).toEqual([18, 255, 0]);
  });

  it('expands 1-bit and 4-bit grey to 0‥255', async () => {
    // 1 bit, 3 pixels 1,0,1 packed MSB first: 0b10100000
    const one = await decodePng(rawPng({ width: 3, height: 1, bitDepth: 1, colorType: 0, scanlines: [0, 0b10100000] }), LIMIT);
    expect([...one.data]).toEqual([255, 0, 255]);
    // 4 bit: 0x3 → 51, 0xf → 255
    const four = await decodePng(rawPng({ width: 2, height: 1, bitDepth: 4, colorType: 0, scanlines: [0, 0x3f] }), LIMIT);
    expect([...four.data]).toEqual([51, 255]);
  });

  it('looks palette indices up in PLTE', async () => {
    const bytes = rawPng({ width: 2, height: 1, bitDepth: 2, colorType: 3, palette: [10, 20, 30, 40, 50, 60], scanlines: [0, 0b01000000] });
    expect([...(await decodePng(bytes, LIMIT)).data]).toEqual([40, 50, 60, 10, 20, 30]);
  });

  it('undoes Sub, Up, Average and Paeth filters', async () => {
    // 2×4 grey, true pixels rows: [10,20] [30,50] [40,90] [45,100]
    const scanlines = [
      1,
      10,
      10, // Sub: 10, 10+10
      2,
      20,
      30, // Up: 10+20, 20+30
      3,
      25,
      45, // Average: 25 + floor((0+30)/2) = 40; 45 + floor((40+50)/2) = 90
      4,
      5,
      10, // Paeth
    ];
    // Paeth row (prev 40,90): x0: a=0,b=40,c=0 → p=40 → b → 5+40=45; x1: a=45,b=90,c=40 → p=95, pa=50,pb=5,pc=55 → b → 10+90=100
    const img = await decodePng(rawPng({ width: 2, height: 4, bitDepth: 8, colorType: 0, scanlines }), LIMIT);
    expect([...img.data]).toEqual([10, 20, 30, 50, 40, 90, 45, 100]);
  });

  it('de-interlaces Adam7', async () => {
    // 3×3 grey, pixel (x,y) = 10·y + x. Passes present for 3×3: 1 (0,0), 4 (2,0), 5 (0,2),(2,2), 6 (1,0),(1,2), 7 rows 1: (0,1),(1,1),(2,1)
    const scanlines = [0, 0, /* pass 4 */ 0, 2, /* pass 5 */ 0, 20, 22, /* pass 6 */ 0, 1, 0, 21, /* pass 7 */ 0, 10, 11, 12];
    const img = await decodePng(rawPng({ width: 3, height: 3, bitDepth: 8, colorType: 0, interlace: 1, scanlines }), LIMIT);
    expect([...img.data]).toEqual([0, 1, 2, 10, 11, 12, 20, 21, 22]);
  });

  it('refuses bad files with their codes', async () => {
    const good = rawPng({ width: 2, height: 1, bitDepth: 8, colorType: 0, scanlines: [0, 1, 2] });
    const flipped = good.slice();
    flipped[good.length - 20] = (flipped[good.length - 20] as number) ^ 0xff; // inside IDAT → CRC fails
    const lying = good.slice();
    new DataView(lying.buffer).setUint32(33, 0x7ffffff0); // IDAT length field claims ~2 GB
    const huge = rawPng({ width: 100_000, height: 100_000, bitDepth: 8, colorType: 0, scanlines: [0] });
    const short = rawPng({ width: 4, height: 4, bitDepth: 8, colorType: 0, scanlines: [0, 1, 2, 3, 4] });
    const long = rawPng({ width: 1, height: 1, bitDepth: 8, colorType: 0, scanlines: [0, 1, 0, 2] });
    const badFilter = rawPng({ width: 1, height: 1, bitDepth: 8, colorType: 0, scanlines: [7, 1] });
    const badDepth = rawPng({ width: 1, height: 1, bitDepth: 3, colorType: 0, scanlines: [0, 1] });
    const noPalette = rawPng({ width: 1, height: 1, bitDepth: 8, colorType: 3, scanlines: [0, 0] });
    const badIndex = rawPng({ width: 1, height: 1, bitDepth: 8, colorType: 3, palette: [1, 2, 3], scanlines: [0, 5] });
    const critical = rawPng({ width: 1, height: 1, bitDepth: 8, colorType: 0, scanlines: [0, 1], extraChunks: [pngChunk('ABCD', new Uint8Array(1))] });
    const ancillary = rawPng({ width: 1, height: 1, bitDepth: 8, colorType: 0, scanlines: [0, 1], extraChunks: [pngChunk('tEXt', new Uint8Array(3))] });
    const cases: [Uint8Array, string][] = [
      [good.subarray(0, good.length - 12), 'LOADER_CORRUPT'], // no IEND
      [good.subarray(0, 30), 'LOADER_CORRUPT'], // cut inside IHDR
      [flipped, 'LOADER_CORRUPT'],
      [lying, 'LOADER_CORRUPT'],
      [huge, 'LOADER_TOO_LARGE'],
      [short, 'LOADER_CORRUPT'],
      [long, 'LOADER_CORRUPT'],
      [badFilter, 'LOADER_CORRUPT'],
      [badDepth, 'LOADER_CORRUPT'],
      [noPalette, 'LOADER_CORRUPT'],
      [badIndex, 'LOADER_CORRUPT'],
      [critical, 'LOADER_UNSUPPORTED'],
      [concatBytes(Uint8Array.of(1, 2, 3)), 'LOADER_CORRUPT'],
      [ancillary, 'none'],
    ];
    for (const [bytes, code] of cases) expect(await codeOf(decodePng(bytes, LIMIT))).toBe(code);
  });
});
