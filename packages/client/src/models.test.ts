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

describe('a split task’s global model', () => {
  it('reads the same layout and global tensors with the edge’s `edge/*` and the task head `fusion/split_head/*` beside them', () => {
    // Arrange: an image-only model's parameters, plus what a split task's global adds.
    const base = buildDigitsEncoder('image', 0);
    const model = new MultimodalModel({ numClasses: 4, encoders: { image: { base } }, conceptDim: 3, namHiddenUnits: 5, loraRank: 2 });
    base.dispose();
    try {
      const params = model.adapterParameters();
      const split = [
        ...params,
        tensor('fusion/split_head/kernel', [8, 4]),
        tensor('fusion/split_head/bias', [4]),
        tensor('edge/in/kernel', [3, 8]),
        tensor('edge/image/adapter_a', [3, 2]),
        tensor('edge/align_token', [8]),
      ];
      // Act
      const layout = inferAdapterLayout(split);
      const own = globalFor(model, split);
      // Assert
      expect(layout).toEqual(inferAdapterLayout(params));
      expect(own.map((t) => t.name)).toEqual(model.adapterNames());
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
    const request = {
      modalities: ['image' as const],
      numClasses: 4,
      adapterRank: 2,
      namConcepts: 3,
      namHiddenUnits: 8,
      head: 'linear' as const,
      learningRate: 0.01,
      seed: 0,
    };
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
      expect(() => inferAdapterLayout([...params, tensor('fusion/nam/beta', [4])])).toThrow(
        expect.objectContaining({ code: 'CLIENT_MODEL_MISMATCH' }) as Error,
      );
    } finally {
      model.dispose();
      factory.dispose();
    }
  });
});

describe('the LoRA α of a request', () => {
  const request = { modalities: ['image' as const], numClasses: 4, adapterRank: 2, namConcepts: 3, namHiddenUnits: 5, learningRate: 0.01, seed: 0 };

  it('scales every LoRA branch by α / rank: the request’s α first, then the factory’s, then 8', async () => {
    // Arrange
    const { createDigitsModelFactory } = await import('./models.js');
    const plain = createDigitsModelFactory();
    const four = createDigitsModelFactory({ adapterAlpha: 4 });
    try {
      // Act
      const built = [
        await plain.create({ ...request, adapterAlpha: 16 }),
        await four.create({ ...request, adapterAlpha: 16 }),
        await four.create(request),
        await plain.create(request),
      ];
      const scalings = built.map((m) => [...new Set(m.loraLayers().map(({ layer }) => layer.scaling))]);
      const alphas = built.map((m) => m.loraAlpha);
      built.forEach((m) => m.dispose());
      // Assert: rank 2, so α 16 → 8, α 4 → 2, α 8 → 4, on every adapted layer alike.
      expect(alphas).toEqual([16, 16, 4, 8]);
      expect(scalings).toEqual([[8], [8], [2], [4]]);
    } finally {
      plain.dispose();
      four.dispose();
    }
  });

  it('makes the same adapter weights change each adapted layer twice as much at α 16 as at α 8', async () => {
    // Arrange: one set of adapter weights with LoRA B non-zero, loaded into models at α 8 and α 16.
    const { createDigitsModelFactory } = await import('./models.js');
    const factory = createDigitsModelFactory();
    const eight = await factory.create({ ...request, adapterAlpha: 8 });
    const sixteen = await factory.create({ ...request, adapterAlpha: 16 });
    const weights = eight.adapterParameters().map((t) => (t.name.endsWith('/lora_b') ? { ...t, values: t.values.map((_, i) => 0.01 * ((i % 7) - 3)) } : t));
    eight.setAdapterParameters(weights);
    sixteen.setAdapterParameters(weights);
    try {
      // Act: ΔW = (α / r)·AᵀBᵀ of every adapted layer.
      const deltas = (m: typeof eight): Float32Array[] => m.loraLayers().map(({ layer }) => tf.tidy(() => layer.deltaKernel().dataSync() as Float32Array));
      const [at8, at16] = [deltas(eight), deltas(sixteen)];
      // Assert
      expect(at8.length).toBeGreaterThan(0);
      at8.forEach((d8, i) => {
        const d16 = at16[i]!;
        expect(d8.some((v) => v !== 0)).toBe(true);
        d8.forEach((v, j) => expect(d16[j]).toBeCloseTo(2 * v, 6));
      });
    } finally {
      [eight, sixteen].forEach((m) => m.dispose());
      factory.dispose();
    }
  });

  it('refuses an α that is not a finite number > 0 with CLIENT_BAD_CONFIG, before loading anything', async () => {
    // Arrange
    const { createDigitsModelFactory } = await import('./models.js');
    let loads = 0;
    const factory = createDigitsModelFactory({ loadBase: () => (loads++, Promise.resolve(null)) });
    const codes: (string | undefined)[] = [];
    // Act
    for (const adapterAlpha of [0, -8, Number.NaN, Number.POSITIVE_INFINITY]) {
      codes.push(
        await factory.create({ ...request, adapterAlpha }).then(
          (m) => (m.dispose(), undefined),
          (e: unknown) => (isClientError(e) ? e.code : 'other'),
        ),
      );
    }
    // Assert
    expect(codes).toEqual(['CLIENT_BAD_CONFIG', 'CLIENT_BAD_CONFIG', 'CLIENT_BAD_CONFIG', 'CLIENT_BAD_CONFIG']);
    expect(loads).toBe(0);
    expect(() => createDigitsModelFactory({ adapterAlpha: 0 })).toThrow(expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }) as Error);
    factory.dispose();
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
