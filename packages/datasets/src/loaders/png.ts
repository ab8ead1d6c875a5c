/**
 * PNG decoder (ISO/IEC 15948, W3C PNG 2nd ed.) over plain bytes, for browser and Node alike:
 * every bit depth and colour type, Adam7 interlacing, chunk CRCs checked. Output is 8-bit grey or
 * RGB; alpha is dropped (as PIL's `convert('RGB')` does) so user files match Python pipelines.
 */

import { DatasetError } from './errors.js';
import { inflate } from './inflate.js';

/** A decoded image: `height × width × channels` bytes, row-major, channels interleaved. */
export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when `bytes` starts with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function u32be(bytes: Uint8Array, at: number): number {
  return (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>> 0;
}

interface Header {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

const ALLOWED_DEPTHS: Record<number, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
// Adam7 passes as [xStart, yStart, xStep, yStep].
const ADAM7: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

function parseHeader(bytes: Uint8Array, at: number, length: number, maxPixels: number): Header {
  if (length !== 13) throw new DatasetError('LOADER_CORRUPT', `IHDR is ${length} bytes, not 13`);
  const width = u32be(bytes, at);
  const height = u32be(bytes, at + 4);
  const [bitDepth, colorType, compression, filter, interlace] = [8, 9, 10, 11, 12].map((o) => bytes[at + o] as number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new DatasetError('LOADER_CORRUPT', `IHDR declares an invalid size ${width}×${height}`);
  }
  if (width * height > maxPixels) {
    throw new DatasetError('LOADER_TOO_LARGE', `${width}×${height} pixels is over the limit of ${maxPixels}`);
  }
  if (!ALLOWED_DEPTHS[colorType]?.includes(bitDepth)) {
    throw new DatasetError('LOADER_CORRUPT', `IHDR has colour type ${colorType} with bit depth ${bitDepth}`);
  }
  if (compression !== 0 || filter !== 0 || interlace > 1) {
    throw new DatasetError('LOADER_UNSUPPORTED', `IHDR method fields ${compression}/${filter}/${interlace} are not PNG's`);
  }
  return { width, height, bitDepth, colorType, interlaced: interlace === 1 };
}

function passSizes(header: Header): { xStart: number; yStart: number; xStep: number; yStep: number; w: number; h: number }[] {
  const passes = header.interlaced ? ADAM7 : [[0, 0, 1, 1] as const];
  return passes.map(([xStart, yStart, xStep, yStep]) => ({
    xStart,
    yStart,
    xStep,
    yStep,
    w: header.width > xStart ? Math.ceil((header.width - xStart) / xStep) : 0,
    h: header.height > yStart ? Math.ceil((header.height - yStart) / yStep) : 0,
  }));
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undoes the per-row filter of one scanline in place; `prev` is the previous unfiltered row or null. */
function unfilterRow(raw: Uint8Array, row: number, prev: number, stride: number, bpp: number): void {
  const type = raw[row - 1] as number;
  for (let i = 0; i < stride; i++) {
    const x = raw[row + i] as number;
    const a = i >= bpp ? (raw[row + i - bpp] as number) : 0;
    const b = prev >= 0 ? (raw[prev + i] as number) : 0;
    const c = prev >= 0 && i >= bpp ? (raw[prev + i - bpp] as number) : 0;
    let predicted: number;
    switch (type) {
      case 0:
        predicted = 0;
        break;
      case 1:
        predicted = a;
        break;
      case 2:
        predicted = b;
        break;
      case 3:
        predicted = (a + b) >>> 1;
        break;
      case 4:
        predicted = paeth(a, b, c);
        break;
      default:
        throw new DatasetError('LOADER_CORRUPT', `unknown scanline filter type ${type}`);
    }
    raw[row + i] = (x + predicted) & 0xff;
  }
}

/**
 * Decodes a PNG into 8-bit grey (colour types 0, 4) or RGB (2, 3, 6). Throws LOADER_CORRUPT for a
 * bad signature, CRC, chunk length or image data, LOADER_TOO_LARGE when IHDR declares more than
 * `maxPixels` pixels (checked before anything is allocated).
 */
export async function decodePng(bytes: Uint8Array, maxPixels: number): Promise<DecodedImage> {
  if (!isPng(bytes)) throw new DatasetError('LOADER_CORRUPT', 'not a PNG (bad signature)');
  let header: Header | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  let ended = false;
  let pos = 8;
  while (pos < bytes.length && !ended) {
    if (pos + 12 > bytes.length) throw new DatasetError('LOADER_CORRUPT', `truncated chunk header at byte ${pos}`);
    const length = u32be(bytes, pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (length > bytes.length - pos - 12) {
      throw new DatasetError('LOADER_CORRUPT', `chunk ${JSON.stringify(type)} declares ${length} bytes but only ${bytes.length - pos - 12} remain`);
    }
    const data = pos + 8;
    if (crc32(bytes, pos + 4, data + length) !== u32be(bytes, data + length)) {
      throw new DatasetError('LOADER_CORRUPT', `chunk ${JSON.stringify(type)} fails its CRC`);
    }
    if (header === undefined && type !== 'IHDR') throw new DatasetError('LOADER_CORRUPT', `first chunk is ${JSON.stringify(type)}, not IHDR`);
    switch (type) {
      case 'IHDR':
        if (header !== undefined) throw new DatasetError('LOADER_CORRUPT', 'second IHDR chunk');
        header = parseHeader(bytes, data, length, maxPixels);
        break;
      case 'PLTE':
        if (length === 0 || length % 3 !== 0 || length > 768) throw new DatasetError('LOADER_CORRUPT', `PLTE is ${length} bytes`);
        palette = bytes.subarray(data, data + length);
        break;
      case 'IDAT':
        idat.push(bytes.subarray(data, data + length));
        idatBytes += length;
        break;
      case 'IEND':
        ended = true;
        break;
      default:
        // Bit 5 of the first letter clear marks a critical chunk a decoder must understand.
        if ((type.charCodeAt(0) & 0x20) === 0) throw new DatasetError('LOADER_UNSUPPORTED', `unknown critical chunk ${JSON.stringify(type)}`);
    }
    pos = data + length + 4;
  }
  if (header === undefined) throw new DatasetError('LOADER_CORRUPT', 'no IHDR chunk');
  if (!ended) throw new DatasetError('LOADER_CORRUPT', 'no IEND chunk (file truncated?)');
  if (idatBytes === 0) throw new DatasetError('LOADER_CORRUPT', 'no image data (IDAT)');
  if (header.colorType === 3 && palette === undefined) throw new DatasetError('LOADER_CORRUPT', 'palette image without PLTE');

  const spp = SAMPLES_PER_PIXEL[header.colorType] as number;
  const bitsPerPixel = spp * header.bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = passSizes(header);
  const expected = passes.reduce((sum, p) => sum + (p.w === 0 ? 0 : p.h * (1 + Math.ceil((p.w * bitsPerPixel) / 8))), 0);

  const compressed = new Uint8Array(idatBytes);
  let offset = 0;
  for (const part of idat) {
    compressed.set(part, offset);
    offset += part.byteLength;
  }
  let raw: Uint8Array;
  try {
    raw = await inflate(compressed, 'deflate', expected);
  } catch (err) {
    if (err instanceof DatasetError && err.code === 'LOADER_TOO_LARGE') throw new DatasetError('LOADER_CORRUPT', 'more image data than IHDR declares');
    throw err;
  }
  if (raw.length < expected) throw new DatasetError('LOADER_CORRUPT', `image data ends early (${raw.length} of ${expected} bytes)`);

  const channels: 1 | 3 = header.colorType === 0 || header.colorType === 4 ? 1 : 3;
  const out = new Uint8Array(header.width * header.height * channels);
  const depth = header.bitDepth;
  const greyScale = depth < 8 && header.colorType === 0 ? 255 / ((1 << depth) - 1) : 1;
  const mask = (1 << depth) - 1;
  const pal = palette;
  const sample = (rowStart: number, index: number): number => {
    if (depth === 8) return raw[rowStart + index] as number;
    if (depth === 16) return Math.round((((raw[rowStart + 2 * index] as number) << 8) | (raw[rowStart + 2 * index + 1] as number)) / 257);
    const bit = index * depth;
    return ((raw[rowStart + (bit >> 3)] as number) >> (8 - depth - (bit & 7))) & mask;
  };
  let rowStart = 0;
  for (const pass of passes) {
    if (pass.w === 0) continue;
    const stride = Math.ceil((pass.w * bitsPerPixel) / 8);
    let prev = -1;
    for (let j = 0; j < pass.h; j++) {
      const row = rowStart + 1;
      unfilterRow(raw, row, prev, stride, bpp);
      const y = pass.yStart + j * pass.yStep;
      for (let i = 0; i < pass.w; i++) {
        const o = (y * header.width + pass.xStart + i * pass.xStep) * channels;
        if (header.colorType === 3) {
          const entry = sample(row, i);
          if (pal === undefined || 3 * entry + 2 >= pal.length) throw new DatasetError('LOADER_CORRUPT', `palette index ${entry} out of range`);
          out[o] = pal[3 * entry] as number;
          out[o + 1] = pal[3 * entry + 1] as number;
          out[o + 2] = pal[3 * entry + 2] as number;
        } else if (channels === 1) {
          out[o] = Math.round(sample(row, i * spp) * greyScale);
        } else {
          out[o] = sample(row, i * spp);
          out[o + 1] = sample(row, i * spp + 1);
          out[o + 2] = sample(row, i * spp + 2);
        }
      }
      prev = row;
      rowStart += 1 + stride;
    }
  }
  return { width: header.width, height: header.height, channels, data: out };
}
