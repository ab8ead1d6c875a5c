/**
 * Band-limited resampling by windowed-sinc interpolation (Smith, "Digital Audio Resampling Home
 * Page", CCRMA 2002 — the method behind resampy and libsamplerate's sinc converters). The kernel is
 * a Kaiser-windowed sinc (β = 8.6, about 86 dB stop-band, 16 zero crossings a side) whose cut-off is
 * 0.9 × the lower of the two Nyquist frequencies, so downsampling low-passes before it decimates
 * and tones above the new Nyquist are removed rather than aliased.
 */

import { DatasetError } from './errors.js';

const ZERO_CROSSINGS = 16;
const KAISER_BETA = 8.6;
const ROLLOFF = 0.9;
const TABLE_STEPS = 512; // kernel samples per zero crossing; linear interpolation between them

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

const KERNEL = (() => {
  const table = new Float64Array(ZERO_CROSSINGS * TABLE_STEPS + 2);
  const norm = besselI0(KAISER_BETA);
  for (let k = 0; k < table.length; k++) {
    const u = k / TABLE_STEPS;
    const sinc = k === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
    const r = u / ZERO_CROSSINGS;
    table[k] = r >= 1 ? 0 : (sinc * besselI0(KAISER_BETA * Math.sqrt(1 - r * r))) / norm;
  }
  return table;
})();

function kernelAt(u: number): number {
  const pos = u * TABLE_STEPS;
  const k = Math.floor(pos);
  if (k >= ZERO_CROSSINGS * TABLE_STEPS) return 0;
  const frac = pos - k;
  return (KERNEL[k] as number) * (1 - frac) + (KERNEL[k + 1] as number) * frac;
}

/**
 * Resamples `input` from `fromRate` to `toRate` Hz (see the file header for the filter). The output
 * has round(length × toRate / fromRate) samples; signal beyond either end is taken as silence.
 */
export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (!(Number.isFinite(fromRate) && fromRate > 0 && Number.isFinite(toRate) && toRate > 0)) {
    throw new DatasetError('LOADER_BAD_CONFIG', `resample needs positive finite rates, got ${fromRate} → ${toRate}`);
  }
  if (fromRate === toRate) return input.slice();
  const ratio = toRate / fromRate;
  const bandwidth = ROLLOFF * Math.min(1, ratio); // cut-off as a fraction of the input Nyquist
  const reach = ZERO_CROSSINGS / bandwidth; // kernel half-width in input samples
  const outLength = input.length === 0 ? 0 : Math.max(1, Math.round(input.length * ratio));
  const out = new Float32Array(outLength);
  for (let m = 0; m < outLength; m++) {
    const t = (m * fromRate) / toRate;
    const first = Math.max(0, Math.ceil(t - reach));
    const last = Math.min(input.length - 1, Math.floor(t + reach));
    let sum = 0;
    for (let k = first; k <= last; k++) sum += (input[k] as number) * kernelAt(Math.abs(t - k) * bandwidth);
    out[m] = sum * bandwidth;
  }
  return out;
}
