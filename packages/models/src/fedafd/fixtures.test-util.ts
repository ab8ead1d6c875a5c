/** Tiny FedAFD clients, servers and batches shared by this folder's tests (hand-sized so each file runs in seconds on the CPU backend). */
import * as tf from '@tensorflow/tfjs';
import { TextEmbedder, buildImageEncoder, type Modality } from '../encoders.js';
import type { MultimodalBatch } from '../model.js';
import type { FedAfdClientOptions, FedAfdClientSpec } from './client.js';
import type { FedAfdServerConfig } from './server.js';

/** D = 8 as 2 GFF groups; 8×8 images, 8×8 log-mel frames, captions of 5 ids over a 6-word vocabulary of 4-d embeddings. */
export const SMALL = { dim: 8, batch: 4, image: [8, 8, 1] as [number, number, number], audio: [8, 8] as [number, number], vocab: 6, wordDim: 4, length: 5 };

export const SMALL_GLOBAL = { hiddenUnits: 8, imageFilters: [2, 2] as [number, number], textFilters: 4, audioFilters: [2, 2] as [number, number] };

export function smallEmbedder(): TextEmbedder {
  const values = new Float32Array(SMALL.vocab * SMALL.wordDim);
  for (let i = SMALL.wordDim; i < values.length; i++) values[i] = Math.sin(i * 1.7);
  return new TextEmbedder(values, SMALL.wordDim);
}

/** A small image base standing in for the pretrained demo encoder. */
export function smallImageBase(): tf.Sequential {
  return buildImageEncoder({ inputShape: SMALL.image, filters: [2, 3], pointwiseFilters: 3, hiddenUnits: 8, embeddingDim: 6, seed: 9 });
}

export function smallSpec(kind: FedAfdClientSpec['kind'], arch: string, overrides: Partial<FedAfdClientSpec> = {}): FedAfdClientSpec {
  return {
    kind,
    arch,
    dim: SMALL.dim,
    numClasses: 3,
    hiddenUnits: 6,
    filters: [2, 3],
    fusionGroups: 2,
    discriminatorHiddenUnits: 5,
    learningRate: 0.01,
    seed: 1,
    ...overrides,
  };
}

export function smallOptions(embedder: TextEmbedder, imageBase?: tf.LayersModel): FedAfdClientOptions {
  return { imageShape: SMALL.image, audioShape: SMALL.audio, textEmbedder: embedder, global: SMALL_GLOBAL, ...(imageBase ? { imageBase } : {}) };
}

export function smallServerConfig(embedder: TextEmbedder, overrides: Partial<FedAfdServerConfig> = {}): FedAfdServerConfig {
  return { dim: SMALL.dim, imageShape: SMALL.image, audioShape: SMALL.audio, textEmbedder: embedder, ...SMALL_GLOBAL, learningRate: 0.01, ...overrides };
}

const CAPTIONS = [
  [1, 2, 0, 0, 0],
  [3, 3, 4, 0, 0],
  [5, 1, 2, 3, 4],
  [2, 0, 0, 0, 0],
];

/** A batch of every modality with labels [0, 1, 2, 1]; images, clips and captions differ per example. */
export function smallBatch(seed = 1, modalities: readonly Modality[] = ['image', 'text', 'audio']): MultimodalBatch {
  const b = SMALL.batch;
  const batch: MultimodalBatch = { labels: tf.tensor1d([0, 1, 2, 1], 'int32') };
  if (modalities.includes('image')) batch.image = tf.randomUniform([b, ...SMALL.image], 0, 1, 'float32', seed);
  if (modalities.includes('text')) batch.text = tf.tensor2d(CAPTIONS, [b, SMALL.length], 'int32');
  if (modalities.includes('audio')) batch.audio = tf.randomNormal([b, ...SMALL.audio], 0, 1, 'float32', seed + 1);
  return batch;
}

/** Random unit rows [rows, D] standing in for the server's representations of a public batch. */
export function unitRows(rows: number, seed: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.randomNormal([rows, SMALL.dim], 0, 1, 'float32', seed);
    return tf.div(x, tf.norm(x, 'euclidean', 1, true)).dataSync() as Float32Array;
  });
}

export function disposeBatch(batch: MultimodalBatch): void {
  tf.dispose(Object.values(batch) as tf.Tensor[]);
}
