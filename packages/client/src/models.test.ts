import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { tensor } from '@chorus/fl-core';
import { MultimodalModel } from '@chorus/models';
import { beforeAll, describe, expect, it } from 'vitest';
import { isClientError } from './errors.js';
import { buildDigitsEncoder, globalFor, inferAdapterLayout } from './models.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('inferAdapterLayout and globalFor', () => {
  it('read the layout off a model’s own parameters and refuse a global that lacks one', () => {
    // Arrange: an image-only model, rank 2, 3 concepts, hidden 5, 4 classes.
    const base = buildDigitsEncoder('image', 0);
    const model = new MultimodalModel({ numClasses: 4, encoders: { image: { base } }, conceptDim: 3, namHiddenUnits: 5, loraRank: 2 });
    base.dispose();
    try {
      const params = model.adapterParameters();
      // Act
      const layout = inferAdapterLayout(params);
      // Assert
      expect(layout).toEqual({ modalities: ['image'], numClasses: 4, adapterRank: 2, namConcepts: 3, namHiddenUnits: 5, head: 'nam' });
      expect(globalFor(model, params).map((t) => t.name)).toEqual(model.adapterNames());
      const missing = params.filter((t) => t.name !== 'fusion/nam/beta');
      let err: unknown;
      try {
        globalFor(model, missing);
      } catch (e) {
        err = e;
      }
      expect(isClientError(err, 'CLIENT_MODEL_MISMATCH')).toBe(true);
      expect(() => inferAdapterLayout([tensor('fusion/nam/beta', [4])])).toThrow(expect.objectContaining({ code: 'CLIENT_MODEL_MISMATCH' }) as Error);
    } finally {
      model.dispose();
    }
  });
});

describe('the linear head', () => {
  it('is read off the global model’s names, and the factory builds the same layout from it', async () => {
    // Arrange: an image-only linear-head model, rank 2, 3 concepts, 4 classes.
    const { createDigitsModelFactory } = await import('./models.js');
    const factory = createDigitsModelFactory();
    const request = { modalities: ['image' as const], numClasses: 4, adapterRank: 2, namConcepts: 3, namHiddenUnits: 8, head: 'linear' as const, learningRate: 0.01, seed: 0 };
    const model = await factory.create(request);
    try {
      const params = model.adapterParameters();
      // Act
      const layout = inferAdapterLayout(params);
      const rebuilt = await factory.create({ ...layout, learningRate: 0.01, seed: 1 });
      // Assert
      expect(layout).toEqual({ modalities: ['image'], numClasses: 4, adapterRank: 2, namConcepts: 3, namHiddenUnits: 0, head: 'linear' });
      expect(rebuilt.adapterNames()).toEqual(model.adapterNames());
      expect(model.adapterNames()).toContain('image/linear/kernel');
      rebuilt.dispose();
      expect(() => inferAdapterLayout([...params, tensor('fusion/nam/beta', [4])])).toThrow(expect.objectContaining({ code: 'CLIENT_MODEL_MISMATCH' }) as Error);
    } finally {
      model.dispose();
      factory.dispose();
    }
  });
});

describe('toModelBatch', () => {
  it('feeds label-flip clients their labels through the permutation, and nothing else changes', async () => {
    // Arrange
    const { toModelBatch } = await import('./training.js');
    const host = { size: 3, labels: new Int32Array([0, 1, 2]), text: { values: new Int32Array([5, 6, 7]), shape: [3, 1] } };
    const before = tf.memory().numTensors;
    // Act
    const honest = toModelBatch(host, ['text']);
    const flipped = toModelBatch(host, ['text'], new Int32Array([2, 0, 1]));
    // Assert
    expect(Array.from(honest.labels!.dataSync())).toEqual([0, 1, 2]);
    expect(Array.from(flipped.labels!.dataSync())).toEqual([2, 0, 1]);
    expect(Array.from(flipped.text!.dataSync())).toEqual([5, 6, 7]);
    tf.dispose([...Object.values(honest), ...Object.values(flipped)] as tf.Tensor[]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
