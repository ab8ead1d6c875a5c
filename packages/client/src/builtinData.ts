/**
 * Built-in dataset samples (packages/datasets) turned into a client's {@link ArrayDataset}: pixels
 * scaled to [0, 1], captions cut to the demo's length, clips turned into log-mel features once — the
 * same preprocessing the coordinator applies to its probe and test sets.
 */
import type { DigitsSample, FashionMmSample, FashionSample, SpamSample } from '@chorus/datasets';
import type { Modality } from '@chorus/models';
import { ArrayDataset } from './dataset.js';
import type { ArrayDatasetInputs } from './dataset.js';
import { ClientError } from './errors.js';
import { DIGITS_CAPTION_TOKENS, digitsLogMel } from './models.js';

/** A sample of any built-in dataset. */
export type BuiltinSample = DigitsSample | FashionSample | SpamSample | FashionMmSample;

const PIXELS = 28 * 28;

/** The `modalities` of `samples` as a local dataset; throws `CLIENT_DATASET` when a sample lacks one. */
export async function datasetFromSamples(samples: readonly BuiltinSample[], modalities: readonly Modality[]): Promise<ArrayDataset> {
  const n = samples.length;
  const inputs: { -readonly [K in keyof ArrayDatasetInputs]: ArrayDatasetInputs[K] } = {};
  if (modalities.includes('image')) {
    const values = new Float32Array(n * PIXELS);
    samples.forEach((s, i) => {
      if (!('image' in s)) throw new ClientError('CLIENT_DATASET', `sample ${s.index} has no image`);
      for (let j = 0; j < PIXELS; j++) values[i * PIXELS + j] = s.image[j]! / 255;
    });
    inputs.image = { values, shape: [n, 28, 28, 1] };
  }
  if (modalities.includes('text')) {
    const values = new Int32Array(n * DIGITS_CAPTION_TOKENS);
    samples.forEach((s, i) => {
      const tokens = 'caption' in s ? s.caption : 'tokens' in s ? s.tokens : null;
      if (!tokens) throw new ClientError('CLIENT_DATASET', `sample ${s.index} has no text`);
      const len = Math.min(tokens.length, DIGITS_CAPTION_TOKENS);
      for (let j = 0; j < len; j++) values[i * DIGITS_CAPTION_TOKENS + j] = tokens[j]!;
    });
    inputs.text = { values, shape: [n, DIGITS_CAPTION_TOKENS] };
  }
  if (modalities.includes('audio')) {
    const clips = samples.map((s) => {
      if (!('audio' in s)) throw new ClientError('CLIENT_DATASET', `sample ${s.index} has no audio`);
      return s.audio;
    });
    inputs.audio = await digitsLogMel(clips);
  }
  return new ArrayDataset(
    Int32Array.from(samples, (s) => s.label),
    inputs,
  );
}
