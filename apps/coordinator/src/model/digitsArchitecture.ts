/**
 * The demo model's architecture constants and fresh encoders, as packages/models/src/demo.ts defines
 * them. That module is not among @chorus/models' exports yet, so the coordinator keeps this copy;
 * digitsArchitecture.test.ts fails as soon as the two disagree.
 */
import type * as tf from '@tensorflow/tfjs';
import { buildAudioEncoder, buildImageEncoder, buildTextEncoder, frameCount } from '@chorus/models';
import type { LogMelConfig, Modality } from '@chorus/models';

/** Name of the base in task files (`model.base`). */
export const DIGITS_BASE = 'chorus-digits-v1';
/** Samples per clip fed to the log-mel front end (clips are cropped or zero-padded to 1 s). */
export const DIGITS_AUDIO_SAMPLES = 16000;
/** Log-mel settings of the demo. */
export const DIGITS_LOG_MEL: Required<Pick<LogMelConfig, 'sampleRate' | 'frameLength' | 'hopLength' | 'fftLength' | 'numMels'>> = {
  sampleRate: 16000,
  frameLength: 400,
  hopLength: 160,
  fftLength: 512,
  numMels: 40,
};
/** Tokens per caption. */
export const DIGITS_CAPTION_TOKENS = 16;
/** Embedding size d of every demo encoder. */
export const DIGITS_EMBEDDING_DIM = 64;
/** Seed of the fresh encoders every party builds when no pretrained base is shipped (the pretraining script's). */
export const DIGITS_BASE_SEED = 0;

/** Fresh (untrained) demo encoders, identical to packages/models' `buildDigitsEncoders(seed)`. */
export function buildDigitsEncoders(seed = DIGITS_BASE_SEED): Record<Modality, tf.Sequential> {
  return {
    image: buildImageEncoder({ inputShape: [28, 28, 1], filters: [32, 64], pointwiseFilters: 64, hiddenUnits: 256, embeddingDim: DIGITS_EMBEDDING_DIM, seed }),
    text: buildTextEncoder({ inputDim: 100, hiddenUnits: 256, embeddingDim: DIGITS_EMBEDDING_DIM, seed: seed + 10 }),
    audio: buildAudioEncoder({
      numFrames: frameCount(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL.frameLength, DIGITS_LOG_MEL.hopLength),
      numMels: DIGITS_LOG_MEL.numMels,
      filters: [16, 32],
      pointwiseFilters: 8,
      hiddenUnits: 256,
      embeddingDim: DIGITS_EMBEDDING_DIM,
      seed: seed + 20,
    }),
  };
}
