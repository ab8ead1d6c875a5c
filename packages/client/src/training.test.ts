import * as tf from '@tensorflow/tfjs';
import { createRng, shuffled } from '@chorus/fl-core';
import { MultimodalModel, buildImageEncoder, buildTextEncoder, TextEmbedder } from '@chorus/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArrayDataset } from './dataset.js';
import { isClientError } from './errors.js';
import { forEachLocalBatch, trainLocally } from './training.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('trainLocally loss options (modalWeight, modalLoss, interpretabilityWeight)', () => {
  // Two modalities, so L_modal (agreement between them) exists.
  const embedder = new TextEmbedder(
    Float32Array.from({ length: 5 * 3 }, (_, i) => (i < 3 ? 0 : Math.sin(i))),
    3,
  );
  const image = buildImageEncoder({ inputShape: [8, 8, 1], filters: [2, 2], pointwiseFilters: 2, hiddenUnits: 8, embeddingDim: 4, seed: 1 });
  const text = buildTextEncoder({ inputDim: 3, hiddenUnits: 8, embeddingDim: 4, seed: 2 });
  afterAll(() => [embedder, image, text].forEach((x) => x.dispose()));
  const dataset = new ArrayDataset(Int32Array.from([0, 1, 2, 1, 0, 2]), {
    image: { values: Float32Array.from({ length: 6 * 64 }, (_, i) => Math.abs(Math.sin(i))), shape: [6, 8, 8, 1] },
    text: { values: Int32Array.from([1, 2, 3, 4, 2, 0, 1, 1, 4, 3, 2, 0]), shape: [6, 2] },
  });
  const model = (): MultimodalModel =>
    new MultimodalModel({
      numClasses: 3,
      encoders: { image: { base: image }, text: { base: text } },
      textEmbedder: embedder,
      conceptDim: 2,
      namHiddenUnits: 4,
      loraRank: 1,
    });

  it('reports L_modal as 0 with weight 0 and above 0 by default', async () => {
    // Arrange
    const off = model();
    const on = model();
    // Act
    const offRun = await trainLocally({ model: off, dataset, localEpochs: 1, batchSize: 3, rng: createRng(1), modalWeight: 0 });
    const onRun = await trainLocally({ model: on, dataset, localEpochs: 1, batchSize: 3, rng: createRng(1) });
    // Assert
    expect(offRun.numSteps).toBe(2);
    expect(offRun.meanModalLoss).toBe(0);
    expect(onRun.meanModalLoss).toBeGreaterThan(0);
    off.dispose();
    on.dispose();
  });

  it('refuses a negative weight, a bad L_intp weight or an unknown L_modal variant with CLIENT_BAD_CONFIG before training', async () => {
    const m = model();
    const before = m.adapterParameters();
    const common = { model: m, dataset, localEpochs: 1, batchSize: 3, rng: createRng(1) };

    const errors = await Promise.all(
      [{ modalWeight: -1 }, { interpretabilityWeight: -0.5 }, { interpretabilityWeight: Number.NaN }, { modalLoss: 'kl' as never }].map((bad) =>
        trainLocally({ ...common, ...bad }).catch((e: unknown) => e),
      ),
    );

    for (const err of errors) expect(isClientError(err, 'CLIENT_BAD_CONFIG'), String(err)).toBe(true);
    expect(m.adapterParameters().map((t) => Array.from(t.values))).toEqual(before.map((t) => Array.from(t.values)));
    m.dispose();
  });

  it('trains with L_intp at its weight (reported above 0; 0 when off) and with the distill L_modal variant', async () => {
    // Arrange
    const [plain, intp, distill] = [model(), model(), model()];
    const common = { dataset, localEpochs: 1, batchSize: 3 };
    // Act
    const plainRun = await trainLocally({ ...common, model: plain!, rng: createRng(1) });
    const intpRun = await trainLocally({ ...common, model: intp!, rng: createRng(1), interpretabilityWeight: 0.5 });
    const distillRun = await trainLocally({ ...common, model: distill!, rng: createRng(1), modalLoss: 'distill' });
    // Assert
    expect(plainRun.meanInterpretabilityLoss).toBe(0);
    expect(intpRun.meanInterpretabilityLoss).toBeGreaterThan(0);
    expect(intpRun.meanLoss).toBeGreaterThan(plainRun.meanLoss);
    expect(distillRun.meanModalLoss).toBeGreaterThan(0);
    expect(distillRun.meanModalLoss).not.toBeCloseTo(plainRun.meanModalLoss, 4);
    for (const m of [plain, intp, distill]) m!.dispose();
  });
});

describe('forEachLocalBatch', () => {
  const dataset = new ArrayDataset(Int32Array.from([0, 1, 2, 3, 4, 5, 6]), { audio: { values: new Float32Array(7), shape: [7, 1] } });

  it('visits every example once an epoch in batches of batchSize, drawing all the epochs’ shuffles before the first batch', async () => {
    // Arrange
    const rng = createRng(3);
    const seen: { at: string; labels: number[]; next: number }[] = [];
    // Act: the label of each example is its index; `next` is the generator's next draw at each batch.
    const { stopped } = await forEachLocalBatch({ dataset, localEpochs: 2, batchSize: 3, rng }, (host, at) => {
      seen.push({ at: `${at.epoch}/${at.numEpochs}:${at.batch}/${at.numBatches}`, labels: Array.from(host.labels), next: rng() });
      return Promise.resolve();
    });
    // Assert
    const reference = createRng(3);
    const orders = [shuffled(reference, [0, 1, 2, 3, 4, 5, 6]), shuffled(reference, [0, 1, 2, 3, 4, 5, 6])];
    expect(stopped).toBe(false);
    expect(seen.map((s) => s.at)).toEqual(['1/2:1/3', '1/2:2/3', '1/2:3/3', '2/2:1/3', '2/2:2/3', '2/2:3/3']);
    expect(seen.slice(0, 3).flatMap((s) => s.labels)).toEqual(orders[0]);
    expect(seen.slice(3).flatMap((s) => s.labels)).toEqual(orders[1]);
    expect(seen.map((s) => s.labels.length)).toEqual([3, 3, 1, 3, 3, 1]);
    // What the visitor draws comes after both shuffles, in order.
    expect(seen.map((s) => s.next)).toEqual(Array.from({ length: 6 }, () => reference()));
  });

  it('stops before the next batch when asked, and refuses bad batching with CLIENT_BAD_CONFIG', async () => {
    // Arrange
    let visits = 0;
    // Act
    const { stopped } = await forEachLocalBatch({ dataset, localEpochs: 3, batchSize: 2, rng: createRng(1), shouldStop: () => visits >= 2 }, () => {
      visits++;
      return Promise.resolve();
    });
    const bad = await forEachLocalBatch({ dataset, localEpochs: 1, batchSize: 0, rng: createRng(1) }, () => Promise.resolve()).catch((e: unknown) => e);
    // Assert
    expect(stopped).toBe(true);
    expect(visits).toBe(2);
    expect(isClientError(bad, 'CLIENT_BAD_CONFIG')).toBe(true);
  });
});
