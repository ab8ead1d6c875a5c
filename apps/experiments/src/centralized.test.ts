import * as tf from '@tensorflow/tfjs';
import { createRng, parametersDelta } from '@chorus/fl-core';
import { ArrayDataset, buildDigitsEncoder, evaluateLocally } from '@chorus/client';
import { MultimodalModel, buildImageEncoder } from '@chorus/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateByModality, restrictModalities, trainOnUnion, unionBatch, unionEpoch } from './centralized.js';
import { isExperimentsError } from './errors.js';
import { trainedParameters } from './fedummTraining.js';

describe('unionEpoch', () => {
  it('shuffles every example of every dataset together, each once, and cuts batches', () => {
    const batches = unionEpoch([3, 2], 2, createRng(1));

    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
    const seen = batches
      .flat()
      .map((e) => `${e.dataset}:${e.index}`)
      .sort();
    expect(seen).toEqual(['0:0', '0:1', '0:2', '1:0', '1:1']);
    expect(unionEpoch([3, 2], 2, createRng(1))).toEqual(batches);
  });

  it('mixes the datasets inside a batch (not one client per batch)', () => {
    // Two datasets of 8: with batches of 4 cut from the shuffled union, some batch holds both.
    const batches = unionEpoch([8, 8], 4, createRng(3));

    expect(batches.some((b) => new Set(b.map((e) => e.dataset)).size === 2)).toBe(true);
  });

  it('refuses a batch size below 1 or a negative size', () => {
    expect(() => unionEpoch([3], 0, createRng(1))).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
    expect(() => unionEpoch([-1], 2, createRng(1))).toThrow(/sizes\[0\]/);
  });
});

describe('unionBatch', () => {
  it('zero-fills a modality an example lacks and marks it absent', async () => {
    // Arrange: dataset 0 has text only, dataset 1 has audio only (2 frames × 1 band).
    const text = new ArrayDataset(Int32Array.from([7, 8]), { text: { values: Int32Array.from([1, 2, 3, 4]), shape: [2, 2] } });
    const audio = new ArrayDataset(Int32Array.from([9]), { audio: { values: Float32Array.from([0.5, 0.25]), shape: [1, 2, 1] } });

    // Act
    const batch = await unionBatch(
      [text, audio],
      [
        { dataset: 1, index: 0 },
        { dataset: 0, index: 1 },
      ],
      ['image', 'text', 'audio'],
    );

    // Assert
    try {
      expect(batch.image).toBeUndefined();
      expect(Array.from(batch.text!.dataSync())).toEqual([0, 0, 3, 4]);
      expect(Array.from(batch.audio!.dataSync())).toEqual([0.5, 0.25, 0, 0]);
      expect(Array.from(batch.present!.dataSync())).toEqual([0, 0, 1, 0, 1, 0]);
      expect(Array.from(batch.labels!.dataSync())).toEqual([9, 8]);
    } finally {
      tf.dispose(Object.values(batch) as tf.Tensor[]);
    }
  });
});

// Images whose label is which half is bright: top → 0, bottom → 1.
function images(labels: number[]): ArrayDataset {
  const values = new Float32Array(labels.length * 28 * 28);
  labels.forEach((y, i) => {
    for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) values[i * 784 + r * 28 + c] = r < 14 === (y === 0) ? 1 : 0;
  });
  return new ArrayDataset(Int32Array.from(labels), { image: { values, shape: [labels.length, 28, 28, 1] } });
}

describe('trainOnUnion, restrictModalities and evaluateByModality', () => {
  let model: MultimodalModel;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const base = buildDigitsEncoder('image', 0);
    model = new MultimodalModel({ numClasses: 2, encoders: { image: { base } }, conceptDim: 2, namHiddenUnits: 4, loraRank: 2, learningRate: 0.01 });
    base.dispose();
  });
  afterAll(() => model.dispose());

  it('takes one step per batch of the union and lowers the training loss, leaking no tensor', async () => {
    const a = images([0, 1, 0, 1]);
    const b = images([1, 1, 0, 0]);
    const lossBefore = (await evaluateLocally(model, a, [0, 1, 2, 3])).loss;
    await trainOnUnion({ model, datasets: [a, b], epochs: 1, batchSize: 4, seed: 2 }); // creates the optimiser's slots
    const tensors = tf.memory().numTensors;

    const result = await trainOnUnion({ model, datasets: [a, b], epochs: 4, batchSize: 2, seed: 3 });

    expect(result.numSteps).toBe(4 * 4); // 8 examples in batches of 2
    expect(tf.memory().numTensors).toBe(tensors);
    expect((await evaluateLocally(model, a, [0, 1, 2, 3])).loss).toBeLessThan(lossBefore);
    const scores = await evaluateByModality(model, a);
    expect(scores.byModality).toEqual({ image: scores.all });
  });

  it('refuses a dataset without the model’s modalities and leaves the model unchanged', async () => {
    const text = new ArrayDataset(Int32Array.from([0]), { text: { values: new Int32Array(8), shape: [1, 8] } });
    const before = model.adapterParameters().map((t) => Array.from(t.values));

    await expect(trainOnUnion({ model, datasets: [images([0]), text], epochs: 1, batchSize: 1, seed: 0 })).rejects.toMatchObject({
      code: 'EXPERIMENTS_BAD_INPUT',
    });
    expect(model.adapterParameters().map((t) => Array.from(t.values))).toEqual(before);
  });

  it('restrictModalities keeps only the asked inputs and refuses one the dataset lacks', async () => {
    const ds = new ArrayDataset(Int32Array.from([3, 4]), {
      text: { values: Int32Array.from([1, 2, 3, 4]), shape: [2, 2] },
      audio: { values: new Float32Array(2 * 3), shape: [2, 3, 1] },
    });

    const onlyText = restrictModalities(ds, ['text']);
    const batch = await onlyText.read([1]);

    expect(onlyText.modalities).toEqual(['text']);
    expect(batch.audio).toBeUndefined();
    expect(Array.from(batch.text!.values)).toEqual([3, 4]);
    expect(Array.from(batch.labels)).toEqual([4]);
    expect(() => restrictModalities(ds, ['image'])).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
  });
});

describe('trainOnUnion in both training modes', () => {
  const base = buildImageEncoder({ inputShape: [8, 8, 1], filters: [4, 4], pointwiseFilters: 4, hiddenUnits: 16, embeddingDim: 8, seed: 3 });
  afterAll(() => base.dispose());
  const data = (n: number, offset: number): ArrayDataset =>
    new ArrayDataset(
      Int32Array.from({ length: n }, (_, i) => (i + offset) % 3),
      { image: { values: Float32Array.from({ length: n * 64 }, (_, i) => Math.abs(Math.sin(i * 1.3 + offset))), shape: [n, 8, 8, 1] } },
    );

  it('trains the adapters only, or every base weight too, over the union of the datasets', async () => {
    // Arrange
    const make = (): MultimodalModel =>
      new MultimodalModel({ numClasses: 3, encoders: { image: { base } }, conceptDim: 3, namHiddenUnits: 4, loraRank: 1, learningRate: 0.01 });
    const lora = make();
    const full = make();
    const datasets = [data(5, 0), data(3, 1)];
    // Engine variable names differ between models, so each is compared with its own snapshot.
    const baseOf = (m: MultimodalModel) => trainedParameters(m, 'full').filter((t) => t.name.startsWith('base/'));
    const before = new Map([lora, full].map((m) => [m, baseOf(m)]));
    // Act
    const loraRun = await trainOnUnion({ model: lora, datasets, epochs: 2, batchSize: 2, mode: 'adapters', seed: 1 });
    await trainOnUnion({ model: full, datasets, epochs: 1, batchSize: 4, mode: 'full', seed: 1 });
    // Assert: 2 epochs × 4 mixed batches of the 8 examples; base weights unchanged by LoRA, moved by full fine-tuning.
    expect(loraRun.numSteps).toBe(8);
    expect(loraRun.numExamples).toBe(16);
    const moved = (m: MultimodalModel): number => parametersDelta(baseOf(m), before.get(m)!).filter((t) => t.values.some((v) => v !== 0)).length;
    expect(moved(lora)).toBe(0);
    expect(moved(full)).toBeGreaterThan(before.get(full)!.length / 2);
    expect(trainedParameters(lora, 'adapters').map((t) => t.name)).toEqual(lora.adapterNames());
    lora.dispose();
    full.dispose();
  });

  it('refuses no datasets and an unknown mode with coded errors', async () => {
    const model = new MultimodalModel({ numClasses: 3, encoders: { image: { base } }, conceptDim: 2, namHiddenUnits: 2, loraRank: 1 });
    const errors = await Promise.all([
      trainOnUnion({ model, datasets: [], epochs: 1, batchSize: 2, mode: 'adapters', seed: 1 }).catch((e: unknown) => e),
      trainOnUnion({ model, datasets: [data(2, 0)], epochs: 1, batchSize: 2, mode: 'lora' as never, seed: 1 }).catch((e: unknown) => e),
    ]);
    expect(errors.every((e) => isExperimentsError(e, 'EXPERIMENTS_BAD_INPUT'))).toBe(true);
    model.dispose();
  });
});
