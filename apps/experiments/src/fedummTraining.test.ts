import * as tf from '@tensorflow/tfjs';
import { ArrayDataset } from '@chorus/client';
import { parametersDelta } from '@chorus/fl-core';
import { MultimodalModel, buildImageEncoder } from '@chorus/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isExperimentsError } from './errors.js';
import { encodedBytes, epochBatches, medianOf, trainCentralized, trainedParameters } from './fedummTraining.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

function attempt(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return null;
}

describe('epochBatches', () => {
  it('cuts each dataset into batches of its own and covers every example once', () => {
    // Act
    const batches = epochBatches([5, 3], 2, 7);
    // Assert: 3 batches of dataset 0 (2, 2, 1) and 2 of dataset 1 (2, 1).
    expect(batches).toHaveLength(5);
    for (const [dataset, size] of [
      [0, 5],
      [1, 3],
    ] as const) {
      const seen = batches.filter((b) => b.dataset === dataset).flatMap((b) => b.indices);
      expect([...seen].sort()).toEqual(Array.from({ length: size }, (_, i) => i));
    }
    expect(batches.every((b) => b.indices.length <= 2)).toBe(true);
    expect(epochBatches([5, 3], 2, 7)).toEqual(batches);
  });

  it('refuses a batch size below 1 with a coded error', () => {
    expect(
      isExperimentsError(
        attempt(() => epochBatches([3], 0, 1)),
        'EXPERIMENTS_BAD_INPUT',
      ),
    ).toBe(true);
  });
});

describe('encodedBytes and medianOf', () => {
  it('sizes an update about 4, 2 and 1 bytes per value in fp32, fp16 and int8', () => {
    const values = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i));
    const tensors = [{ name: 'image/w', shape: [4096], values }];

    const [fp32, fp16, int8] = (['fp32', 'fp16', 'int8'] as const).map((e) => encodedBytes(tensors, e));

    expect(fp32).toBeGreaterThanOrEqual(4 * 4096);
    expect(fp32).toBeLessThan(4 * 4096 + 200);
    expect(fp16! / fp32!).toBeCloseTo(0.5, 1);
    expect(int8! / fp32!).toBeCloseTo(0.25, 1);
  });

  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
    expect(medianOf([])).toBeNaN();
  });
});

describe('trainCentralized', () => {
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
    const loraRun = await trainCentralized({ model: lora, datasets, epochs: 2, batchSize: 2, mode: 'adapters', seed: 1 });
    await trainCentralized({ model: full, datasets, epochs: 1, batchSize: 4, mode: 'full', seed: 1 });
    // Assert: 2 epochs × (3 + 2) batches; base weights unchanged by LoRA, moved by full fine-tuning.
    expect(loraRun.numSteps).toBe(10);
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
      trainCentralized({ model, datasets: [], epochs: 1, batchSize: 2, mode: 'adapters', seed: 1 }).catch((e: unknown) => e),
      trainCentralized({ model, datasets: [data(2, 0)], epochs: 1, batchSize: 2, mode: 'lora' as never, seed: 1 }).catch((e: unknown) => e),
    ]);
    expect(errors.every((e) => isExperimentsError(e, 'EXPERIMENTS_BAD_INPUT'))).toBe(true);
    model.dispose();
  });
});
