/** Tiny models and batches shared by this package's tests (hand-sized so every test runs in milliseconds on the CPU backend). */
import * as tf from '@tensorflow/tfjs';
import { MODALITIES, TextEmbedder, buildAudioEncoder, buildImageEncoder, buildTextEncoder, type Modality } from './encoders.js';
import { MultimodalModel, type MultimodalBatch, type MultimodalModelConfig } from './model.js';

export const TINY = { batch: 4, image: [8, 8, 1] as [number, number, number], vocab: 6, wordDim: 4, length: 5, frames: 8, mels: 8, classes: 3 };

export function tinyEmbedder(): TextEmbedder {
  const values = new Float32Array(TINY.vocab * TINY.wordDim);
  for (let i = TINY.wordDim; i < values.length; i++) values[i] = Math.sin(i * 1.7);
  return new TextEmbedder(values, TINY.wordDim);
}

export function tinyModel(embedder: TextEmbedder, overrides: Partial<MultimodalModelConfig> = {}): MultimodalModel {
  return new MultimodalModel({
    numClasses: TINY.classes,
    conceptDim: 2,
    namHiddenUnits: 4,
    loraRank: 2,
    loraAlpha: 4,
    learningRate: 0.01,
    textEmbedder: embedder,
    encoders: {
      image: { base: buildImageEncoder({ inputShape: TINY.image, filters: [2, 3], pointwiseFilters: 3, hiddenUnits: 8, embeddingDim: 6, seed: 1 }) },
      text: { base: buildTextEncoder({ inputDim: TINY.wordDim, hiddenUnits: 8, embeddingDim: 6, seed: 2 }) },
      audio: {
        base: buildAudioEncoder({ numFrames: TINY.frames, numMels: TINY.mels, filters: [2, 2], pointwiseFilters: 2, hiddenUnits: 8, embeddingDim: 6, seed: 3 }),
      },
    },
    seed: 5,
    ...overrides,
  });
}

export function tinyBatch(seed = 1, fields: readonly Modality[] = MODALITIES): MultimodalBatch {
  const b = TINY.batch;
  const batch: MultimodalBatch = { labels: tf.tensor1d([0, 1, 2, 1].slice(0, b), 'int32') };
  if (fields.includes('image')) batch.image = tf.randomUniform([b, ...TINY.image], 0, 1, 'float32', seed);
  if (fields.includes('text'))
    batch.text = tf.tensor2d(
      [
        [1, 2, 0, 0, 0],
        [3, 3, 4, 0, 0],
        [5, 1, 2, 3, 4],
        [2, 0, 0, 0, 0],
      ],
      [b, TINY.length],
      'int32',
    );
  if (fields.includes('audio')) batch.audio = tf.randomNormal([b, TINY.frames, TINY.mels], 0, 1, 'float32', seed + 1);
  return batch;
}

export function disposeBatch(batch: MultimodalBatch): void {
  tf.dispose(Object.values(batch) as tf.Tensor[]);
}

/** Runs `act` with every synchronous tensor read throwing, as a stand-in for a WebGPU tab where such reads return zeros. */
export async function withoutSyncReads<T>(act: () => Promise<T>): Promise<T> {
  const proto = tf.Tensor.prototype;
  const { dataSync, arraySync } = proto;
  const refuse = (): never => {
    throw new Error('synchronous tensor read');
  };
  proto.dataSync = refuse;
  proto.arraySync = refuse;
  try {
    return await act();
  } finally {
    proto.dataSync = dataSync;
    proto.arraySync = arraySync;
  }
}
