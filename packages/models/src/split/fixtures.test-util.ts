/** Tiny split-learning models and batches shared by this folder's tests: 2 modalities (image, audio) as 5-feature vectors, c = 4, d = 8, B = 6. */
import * as tf from '@tensorflow/tfjs';
import type { Modality } from '../encoders.js';
import { MultimodalModel, type MultimodalBatch, type MultimodalModelConfig } from '../model.js';
import { EdgeFusion, type EdgeFusionConfig } from './edgeFusion.js';

export const SPLIT = { batch: 6, features: 5, conceptDim: 4, modelDim: 8, classes: 2, modalities: ['image', 'audio'] as Modality[] };

/** A frozen two-layer dense encoder of a 5-feature vector (stands in for a pretrained one). */
function denseBase(name: string, seed: number): tf.Sequential {
  const base = tf.sequential({ name });
  base.add(
    tf.layers.dense({
      name: 'hidden',
      inputShape: [SPLIT.features],
      units: 8,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
      biasInitializer: tf.initializers.constant({ value: 0.1 }),
    }),
  );
  base.add(tf.layers.dense({ name: 'embedding', units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
  return base;
}

/** A model over image and audio feature vectors with adapters on both dense layers, and a way to release it with its bases. */
export function splitModel(overrides: Partial<MultimodalModelConfig> = {}): { model: MultimodalModel; dispose: () => void } {
  const bases = [denseBase('image_base', 1), denseBase('audio_base', 3)] as const;
  const model = new MultimodalModel({
    numClasses: SPLIT.classes,
    conceptDim: SPLIT.conceptDim,
    namHiddenUnits: 4,
    loraRank: 2,
    loraAlpha: 4,
    encoders: { image: { base: bases[0], targets: ['hidden', 'embedding'] }, audio: { base: bases[1], targets: ['hidden', 'embedding'] } },
    seed: 5,
    ...overrides,
  });
  return {
    model,
    dispose: () => {
      model.dispose();
      bases.forEach((b) => b.dispose());
    },
  };
}

export function splitEdge(overrides: Partial<EdgeFusionConfig> = {}): EdgeFusion {
  return new EdgeFusion({ modalities: SPLIT.modalities, tokenDim: SPLIT.conceptDim, modelDim: SPLIT.modelDim, seed: 3, ...overrides });
}

/** Random tokens [B, M, c] in the tanh range and a mask with image absent from example 1 and audio from examples 2 and 4. */
export function randomCut(seed = 1, batch = SPLIT.batch): { tokens: tf.Tensor3D; mask: tf.Tensor2D } {
  const rows = Array.from({ length: batch }, (_, b) => [b === 1 ? 0 : 1, b === 2 || b === 4 ? 0 : 1]);
  const mask = tf.tensor2d(rows);
  const tokens = tf.tidy(() => tf.mul(tf.randomUniform([batch, SPLIT.modalities.length, SPLIT.conceptDim], -1, 1, 'float32', seed), tf.expandDims(mask, 2)));
  return { tokens: tokens as tf.Tensor3D, mask };
}

/**
 * A labelled toy batch: image and audio features N(0, 1); the label is 1 exactly when the first
 * image feature is positive, so it is separable from the image alone. `present` (optional) is [B, 2].
 */
export function toyBatch(seed: number, size = SPLIT.batch, present?: number[][]): MultimodalBatch {
  return tf.tidy(() => {
    const image = tf.randomNormal([size, SPLIT.features], 0, 1, 'float32', seed);
    const audio = tf.randomNormal([size, SPLIT.features], 0, 1, 'float32', seed + 1000);
    const labels = tf.cast(tf.greater(tf.reshape(tf.slice(image, [0, 0], [size, 1]), [size]), 0), 'int32');
    const batch: MultimodalBatch = { image, audio, labels };
    if (present) batch.present = tf.tensor2d(present);
    return batch as unknown as tf.TensorContainerObject;
  }) as unknown as MultimodalBatch;
}

export function disposeBatch(batch: MultimodalBatch): void {
  tf.dispose(Object.values(batch) as tf.Tensor[]);
}

/** Largest absolute difference between two arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
