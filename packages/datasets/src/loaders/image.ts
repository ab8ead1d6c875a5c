/**
 * Image decoding by content, not by file name: the first bytes decide PNG or JPEG, so a `.jpg`
 * that is really a PNG still loads and a text file named `.png` is refused as unsupported.
 */

import jpeg from 'jpeg-js';
import { DatasetError } from './errors.js';
import { decodePng, isPng } from './png.js';
import type { DecodedImage } from './png.js';

/** Default cap on decoded pixels (a 16-megapixel photo); larger images are LOADER_TOO_LARGE. */
export const DEFAULT_MAX_PIXELS = 4096 * 4096;

/** True when `bytes` starts with a JPEG start-of-image marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

function sniffOther(bytes: Uint8Array): string {
  const ascii = String.fromCharCode(...bytes.subarray(0, 12));
  if (ascii.startsWith('GIF8')) return 'a GIF';
  if (ascii.startsWith('BM')) return 'a BMP';
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return 'a WebP';
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WAVE') return 'a WAV';
  return 'not a PNG or JPEG';
}

/**
 * Reads the frame header (SOFn) of a JPEG without decoding it, so the pixel limit is enforced
 * before the decoder allocates anything.
 */
function jpegFrame(bytes: Uint8Array): { width: number; height: number; components: number } {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) throw new DatasetError('LOADER_CORRUPT', `JPEG marker expected at byte ${pos}`);
    const marker = bytes[pos + 1] as number;
    if (marker === 0xff) {
      pos += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2;
      continue;
    }
    const length = ((bytes[pos + 2] as number) << 8) | (bytes[pos + 3] as number);
    if (length < 2 || pos + 2 + length > bytes.length)
      throw new DatasetError('LOADER_CORRUPT', `JPEG segment at byte ${pos} declares ${length} bytes past the end`);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (marker > 0xc2) throw new DatasetError('LOADER_UNSUPPORTED', `JPEG coding SOF${marker - 0xc0} (lossless or arithmetic) is not supported`);
      if (length < 8) throw new DatasetError('LOADER_CORRUPT', 'JPEG frame header is too short');
      const height = ((bytes[pos + 5] as number) << 8) | (bytes[pos + 6] as number);
      const width = ((bytes[pos + 7] as number) << 8) | (bytes[pos + 8] as number);
      const components = bytes[pos + 9] as number;
      if (width === 0 || height === 0) throw new DatasetError('LOADER_CORRUPT', `JPEG frame declares ${width}×${height}`);
      return { width, height, components };
    }
    pos += 2 + length;
  }
  throw new DatasetError('LOADER_CORRUPT', 'JPEG has no frame header (truncated?)');
}

/** Decodes a baseline or progressive JPEG to 8-bit RGB, or grey when it has one component. */
export function decodeJpeg(bytes: Uint8Array, maxPixels: number): DecodedImage {
  if (!isJpeg(bytes)) throw new DatasetError('LOADER_CORRUPT', 'not a JPEG (bad start marker)');
  const frame = jpegFrame(bytes);
  if (frame.width * frame.height > maxPixels) {
    throw new DatasetError('LOADER_TOO_LARGE', `${frame.width}×${frame.height} pixels is over the limit of ${maxPixels}`);
  }
  // tolerantDecoding off: a truncated scan must fail rather than come back half grey.
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxResolutionInMP: maxPixels / 1e6 + 1 });
  } catch (err) {
    throw new DatasetError('LOADER_CORRUPT', `JPEG data is malformed (${err instanceof Error ? err.message : String(err)})`);
  }
  if (decoded.width !== frame.width || decoded.height !== frame.height) {
    throw new DatasetError('LOADER_CORRUPT', `JPEG decoded to ${decoded.width}×${decoded.height}, header says ${frame.width}×${frame.height}`);
  }
  if (frame.components !== 1) return { width: decoded.width, height: decoded.height, channels: 3, data: decoded.data };
  const data = new Uint8Array(decoded.width * decoded.height);
  for (let p = 0; p < data.length; p++) data[p] = decoded.data[3 * p] as number;
  return { width: decoded.width, height: decoded.height, channels: 1, data };
}

/** Decodes a PNG or JPEG (chosen by content); anything else is LOADER_UNSUPPORTED. */
export async function decodeImage(bytes: Uint8Array, maxPixels: number = DEFAULT_MAX_PIXELS): Promise<DecodedImage> {
  if (bytes.length === 0) throw new DatasetError('LOADER_EMPTY', 'the file is empty');
  if (isPng(bytes)) return decodePng(bytes, maxPixels);
  if (isJpeg(bytes)) return decodeJpeg(bytes, maxPixels);
  throw new DatasetError('LOADER_UNSUPPORTED', `${sniffOther(bytes)} (only PNG and JPEG images are read)`);
}
