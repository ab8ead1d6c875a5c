/** Small array helpers for the viewer's plots; pure, so they are tested without a browser. */
import { WebClientError } from '../lib/errors.js';

/** The first `length` samples of `samples`, zero-padded when shorter (the model takes fixed-length clips). */
export function fitLength(samples: Float32Array, length: number): Float32Array {
  if (!Number.isInteger(length) || length <= 0) throw new WebClientError('WEB_BAD_SAMPLE', `fitLength: length must be a positive integer, got ${length}`);
  const out = new Float32Array(length);
  out.set(samples.subarray(0, Math.min(length, samples.length)));
  return out;
}

/** Min and max of each of `buckets` equal slices of `samples`, for drawing a waveform at any width. */
export function waveformPeaks(samples: Float32Array, buckets: number): { min: Float32Array; max: Float32Array } {
  if (!Number.isInteger(buckets) || buckets <= 0)
    throw new WebClientError('WEB_BAD_SAMPLE', `waveformPeaks: buckets must be a positive integer, got ${buckets}`);
  const min = new Float32Array(buckets);
  const max = new Float32Array(buckets);
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * samples.length) / buckets);
    const end = Math.max(start + 1, Math.floor(((b + 1) * samples.length) / buckets));
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = start; i < end && i < samples.length; i++) {
      lo = Math.min(lo, samples[i]!);
      hi = Math.max(hi, samples[i]!);
    }
    min[b] = Number.isFinite(lo) ? lo : 0;
    max[b] = Number.isFinite(hi) ? hi : 0;
  }
  return { min, max };
}

/** `values` scaled by the largest magnitude into [-1, 1] (all zeros stay zeros). */
export function normaliseSigned(values: ArrayLike<number>): Float32Array {
  let peak = 0;
  for (let i = 0; i < values.length; i++) peak = Math.max(peak, Math.abs(values[i]!));
  const out = new Float32Array(values.length);
  if (peak === 0 || !Number.isFinite(peak)) return out;
  for (let i = 0; i < values.length; i++) out[i] = values[i]! / peak;
  return out;
}

/** `values` mapped linearly onto [0, 1] by their own min and max (a constant array maps to zeros). */
export function normaliseRange(values: ArrayLike<number>): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]!);
    hi = Math.max(hi, values[i]!);
  }
  const out = new Float32Array(values.length);
  if (!(hi > lo)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i]! - lo) / (hi - lo);
  return out;
}

/** Int16 PCM to floats in [-1, 1). */
export function pcm16ToFloat(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! / 32768;
  return out;
}
