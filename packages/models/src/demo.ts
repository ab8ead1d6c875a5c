/**
 * The demo task's model sizes (built-in spoken & written digits: 28×28 image, 1 s of 16 kHz speech,
 * a short caption over the 100-d GloVe vocabulary; 10 classes). Shared by the pretraining script,
 * the benchmark and the apps so that every client builds the same architecture and adapter names.
 * The encoders are sized so that one client's full adapter update (LoRA r = 4 on two layers per
 * encoder, concept projections and the NAM head) stays under 1% of the model.
 */
import type * as tf from '@tensorflow/tfjs';
import { frameCount, type LogMelConfig } from './audio.js';
import { buildAudioEncoder, buildImageEncoder, buildTextEncoder, type Modality } from './encoders.js';

/** Classes of the digits task. */
export const DIGITS_NUM_CLASSES = 10;
/** Samples per clip fed to the log-mel front end (clips are cropped or zero-padded to 1 s). */
export const DIGITS_AUDIO_SAMPLES = 16000;
/** Log-mel settings of the demo (25 ms frames every 10 ms, 40 mel bands). */
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
/** Name of the demo base in task files (`model.base`). */
export const DIGITS_BASE = 'chorus-digits-v1';
/** Seed of the fresh encoders every party builds when no pretrained base is shipped (the pretraining script's). */
export const DIGITS_BASE_SEED = 0;

/** One fresh (untrained) demo encoder; the three use seeds `seed`, `seed + 10`, `seed + 20` (image, text, audio). */
export function buildDigitsEncoder(modality: Modality, seed = 0): tf.Sequential {
  switch (modality) {
    case 'image':
      return buildImageEncoder({
        inputShape: [28, 28, 1],
        filters: [32, 64],
        pointwiseFilters: 64,
        hiddenUnits: 256,
        embeddingDim: DIGITS_EMBEDDING_DIM,
        seed,
      });
    case 'text':
      return buildTextEncoder({ inputDim: 100, hiddenUnits: 256, embeddingDim: DIGITS_EMBEDDING_DIM, seed: seed + 10 });
    case 'audio':
      return buildAudioEncoder({
        numFrames: frameCount(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL.frameLength, DIGITS_LOG_MEL.hopLength),
        numMels: DIGITS_LOG_MEL.numMels,
        filters: [16, 32],
        pointwiseFilters: 8,
        hiddenUnits: 256,
        embeddingDim: DIGITS_EMBEDDING_DIM,
        seed: seed + 20,
      });
  }
}

/** Fresh (untrained) demo encoders; pretrained ones ship under packages/models/weights (see `loadDigitsBase`). */
export function buildDigitsEncoders(seed = 0): Record<Modality, tf.Sequential> {
  return { image: buildDigitsEncoder('image', seed), text: buildDigitsEncoder('text', seed), audio: buildDigitsEncoder('audio', seed) };
}
