/**
 * Brings a decoded image to a task's input shape. Each axis is resized on its own: area averaging
 * (every source pixel weighted by how much of it the output pixel covers) where the axis shrinks,
 * so small digits and thin strokes are not aliased away, and bilinear interpolation with
 * half-pixel centres (TF/PyTorch `align_corners=false`) where it grows. Colour becomes grey with
 * ITU-R BT.601 luma weights, the same as PIL's `convert('L')`.
 */

import { DatasetError } from './errors.js';
import type { DecodedImage } from './png.js';

/** The shape and number type a task wants its images in. */
export interface ImageTarget {
  /** Output rows, ≥ 1. */
  readonly height: number;
  /** Output columns, ≥ 1. */
  readonly width: number;
  /** 1 for grey, 3 for RGB. */
  readonly channels: 1 | 3;
  /** `uint8` keeps 0‥255; `float32` scales to [0, 1]. */
  readonly dtype: 'uint8' | 'float32';
}

/** Pixels in `height × width × channels` order, in the target's number type. */
export type Pixels = Uint8Array | Float32Array;

/** Throws LOADER_BAD_CONFIG unless `target` describes a usable shape. */
export function checkImageTarget(target: ImageTarget): void {
  const ok =
    Number.isInteger(target.height) &&
    target.height >= 1 &&
    target.height <= 16384 &&
    Number.isInteger(target.width) &&
    target.width >= 1 &&
    target.width <= 16384 &&
    (target.channels === 1 || target.channels === 3) &&
    (target.dtype === 'uint8' || target.dtype === 'float32');
  if (!ok) {
    throw new DatasetError(
      'LOADER_BAD_CONFIG',
      `image target ${JSON.stringify(target)} needs integer height/width in 1‥16384, channels 1|3, dtype uint8|float32`,
    );
  }
}

interface Contribution {
  readonly first: number;
  readonly weights: Float64Array;
}

/** For each output coordinate, the run of source coordinates it reads and their weights. */
function contributions(inSize: number, outSize: number): Contribution[] {
  const scale = inSize / outSize;
  const result: Contribution[] = [];
  for (let j = 0; j < outSize; j++) {
    if (scale > 1) {
      const start = j * scale;
      const end = (j + 1) * scale;
      const first = Math.floor(start);
      const last = Math.min(inSize - 1, Math.ceil(end) - 1);
      const weights = new Float64Array(last - first + 1);
      for (let i = first; i <= last; i++) weights[i - first] = (Math.min(i + 1, end) - Math.max(i, start)) / scale;
      result.push({ first, weights });
    } else {
      const centre = Math.min(Math.max((j + 0.5) * scale - 0.5, 0), inSize - 1);
      const first = Math.floor(centre);
      const frac = centre - first;
      result.push(first + 1 < inSize ? { first, weights: Float64Array.of(1 - frac, frac) } : { first, weights: Float64Array.of(1) });
    }
  }
  return result;
}

/** Resizes, converts channels and quantises `image` to `target` (see the file header for the method). */
export function resizeImage(image: DecodedImage, target: ImageTarget): Pixels {
  checkImageTarget(target);
  const { width: w0, height: h0 } = image;
  const c = target.channels;
  const src = new Float32Array(w0 * h0 * c);
  for (let p = 0; p < w0 * h0; p++) {
    if (image.channels === c) {
      for (let k = 0; k < c; k++) src[p * c + k] = image.data[p * c + k] as number;
    } else if (c === 1) {
      src[p] = 0.299 * (image.data[3 * p] as number) + 0.587 * (image.data[3 * p + 1] as number) + 0.114 * (image.data[3 * p + 2] as number);
    } else {
      const v = image.data[p] as number;
      src[3 * p] = v;
      src[3 * p + 1] = v;
      src[3 * p + 2] = v;
    }
  }
  const { width: w1, height: h1 } = target;
  const across = contributions(w0, w1);
  const down = contributions(h0, h1);
  const rows = new Float32Array(h0 * w1 * c);
  for (let y = 0; y < h0; y++) {
    for (let x = 0; x < w1; x++) {
      const { first, weights } = across[x] as Contribution;
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let t = 0; t < weights.length; t++) sum += (weights[t] as number) * (src[(y * w0 + first + t) * c + k] as number);
        rows[(y * w1 + x) * c + k] = sum;
      }
    }
  }
  const out = target.dtype === 'uint8' ? new Uint8Array(h1 * w1 * c) : new Float32Array(h1 * w1 * c);
  for (let y = 0; y < h1; y++) {
    const { first, weights } = down[y] as Contribution;
    for (let x = 0; x < w1 * c; x++) {
      let sum = 0;
      for (let t = 0; t < weights.length; t++) sum += (weights[t] as number) * (rows[(first + t) * w1 * c + x] as number);
      out[y * w1 * c + x] = target.dtype === 'uint8' ? Math.min(255, Math.max(0, Math.round(sum))) : Math.min(1, Math.max(0, sum / 255));
    }
  }
  return out;
}
