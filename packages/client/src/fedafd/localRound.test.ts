import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { FedAfdServerModel, createFedAfdClient } from '@chorus/models';
import type { FedAfdClient, FedAfdStepInput, RepresentationArrays } from '@chorus/models';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ArrayDataset } from '../dataset.js';
import { toModelBatch } from '../training.js';
import type { HostBatch, LocalDataset } from '../dataset.js';
import { TINY, only, tinyData, tinyEmbedder, tinyOptions, tinyPublic, tinyServerConfig, tinySpec, unitRows } from './fixtures.test-util.js';
import { checkFedAfdRound, evaluateFedAfdClient, roundGlobalModalities, runFedAfdLocalRound } from './localRound.js';
import type { FedAfdLocalRoundOptions, FedAfdLocalRoundResult } from './localRound.js';

const embedder = tinyEmbedder();
let images: LocalDataset;
let pairs: ArrayDataset;
let pub: HostBatch;
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
  pairs = tinyData(8);
  images = await only(tinyData(8), ['image']);
  pub = await tinyPublic(6);
});
afterAll(() => embedder.dispose());

function globalOf(client: FedAfdClient, rows = 6): RepresentationArrays {
  return Object.fromEntries(roundGlobalModalities(client).map((m, i) => [m, unitRows(rows, 10 + i)]));
}

/** A round's options for `client`; the clock ticks 5 ms a call. */
function roundOptions(client: FedAfdClient, dataset: LocalDataset, overrides: Partial<FedAfdLocalRoundOptions> = {}): FedAfdLocalRoundOptions {
  let t = 100;
  return {
    client,
    dataset,
    publicBatch: pub,
    globalPublic: globalOf(client),
    localEpochs: 2,
    batchSize: 3,
    rng: createRng(7),
    now: () => (t += 5),
    ...overrides,
  };
}

async function weightsOf(client: FedAfdClient): Promise<number[][]> {
  return (await client.exportWeights()).map((t) => Array.from(t.values));
}

describe('runFedAfdLocalRound', () => {
  it('trains an image classifier and returns its unit public representations and local metrics', async () => {
    // Arrange
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    // Act
    const result = await runFedAfdLocalRound(roundOptions(client, images));
    // Assert: only the client's own modality, [B, D].
    expect(Object.keys(result!.representations)).toEqual(['image']);
    const reps = result!.representations.image!;
    expect(reps).toHaveLength(6 * TINY.dim);
    for (let r = 0; r < 6; r++) expect(Math.hypot(...reps.subarray(r * TINY.dim, (r + 1) * TINY.dim))).toBeCloseTo(1, 4);
    const m = result!.metrics;
    // 2 epochs × ⌈8 / 3⌉ batches; the fake clock's two readings 5 ms apart.
    expect(m).toMatchObject({ numSteps: 6, numExamples: 8, evalExamples: 8, milliseconds: 5 });
    expect(m.loss).toBeCloseTo(m.taskLoss + 0.5 * m.adversarialLoss, 4);
    expect(m.discriminatorLoss).toBeGreaterThan(0);
    expect(m.accuracy).toBeGreaterThanOrEqual(0);
    expect(m.i2tR1).toBeUndefined();
    client.dispose();
  });

  it('reports recalls for a retrieval client and representations of both its modalities', async () => {
    // Arrange
    const client = createFedAfdClient(tinySpec('image-text-retrieval', 'cnn+bag-mlp', { temperature: 0.2 }), tinyOptions(embedder));
    // Act
    const result = await runFedAfdLocalRound(roundOptions(client, pairs, { evalExamples: 5 }));
    // Assert
    expect(Object.keys(result!.representations).sort()).toEqual(['image', 'text']);
    expect(result!.metrics.evalExamples).toBe(5);
    expect(result!.metrics.i2tR1).toBeGreaterThanOrEqual(0);
    expect(result!.metrics.rsum).toBeGreaterThanOrEqual(result!.metrics.i2tR1! + result!.metrics.t2iR1!);
    expect(result!.metrics.accuracy).toBeUndefined();
    client.dispose();
  });

  it('gives the same representations and metrics for the same seed, and others for another', async () => {
    const run = async (seed: number): Promise<[RepresentationArrays, unknown]> => {
      const client = createFedAfdClient(tinySpec('text-classifier', 'bag-mlp'), tinyOptions(embedder));
      const r = await runFedAfdLocalRound(roundOptions(client, pairs, { dataset: await only(pairs, ['text']), rng: createRng(seed) }));
      client.dispose();
      return [r!.representations, r!.metrics];
    };
    // Act
    const [a, again, other] = [await run(1), await run(1), await run(2)];
    // Assert
    expect(again).toEqual(a);
    expect(other[0]).not.toEqual(a[0]);
  });

  it('pairs each step with the next window of public rows and its global representations', async () => {
    // Arrange
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const globalPublic = globalOf(client);
    const seen: { rows: number; first: number }[] = [];
    const step = client.trainStep.bind(client);
    vi.spyOn(client, 'trainStep').mockImplementation((input: FedAfdStepInput) => {
      seen.push({ rows: input.public!.image!.shape[0]!, first: input.globalPublic!.image![0]! });
      return step(input);
    });
    // Act: B = 6 in windows of 2 → rows 0–1, 2–3, 4–5, 0–1 …
    await runFedAfdLocalRound(roundOptions(client, images, { globalPublic, publicBatchSize: 2, localEpochs: 1 }));
    // Assert
    const firstOfRow = (r: number): number => globalPublic.image![r * TINY.dim]!;
    expect(seen).toEqual([
      { rows: 2, first: firstOfRow(0) },
      { rows: 2, first: firstOfRow(2) },
      { rows: 2, first: firstOfRow(4) },
    ]);
    client.dispose();
  });

  it('loads the global encoders it fuses with before training', async () => {
    // Arrange
    const server = new FedAfdServerModel(tinyServerConfig(embedder));
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const load = vi.spyOn(client, 'setGlobalWeights');
    // Act
    await runFedAfdLocalRound(roundOptions(client, images, { globalWeights: await server.exportWeights(), localEpochs: 1 }));
    // Assert
    expect(load).toHaveBeenCalledTimes(1);
    server.dispose();
    client.dispose();
  });

  it('trains without global representations when BAA is off', async () => {
    // Arrange
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn', { useBaa: false }), tinyOptions(embedder));
    // Act
    const result = await runFedAfdLocalRound(roundOptions(client, images, { globalPublic: {}, localEpochs: 1 }));
    // Assert
    expect(result!.metrics).toMatchObject({ adversarialLoss: 0, discriminatorLoss: 0, numSteps: 3 });
    client.dispose();
  });

  it('a baseline client (FedMD and kin) distils toward the global representations of its own modality, and needs them', async () => {
    // Arrange
    const spec = tinySpec('image-classifier', 'cnn', { useBaa: false, useGff: false, localDistillationWeight: 0.4 });
    const client = createFedAfdClient(spec, tinyOptions(embedder));
    // Act
    const result = await runFedAfdLocalRound(roundOptions(client, images, { localEpochs: 1 }));
    // Assert
    expect(roundGlobalModalities(client)).toEqual(['image']);
    expect(result!.metrics).toMatchObject({ adversarialLoss: 0, discriminatorLoss: 0, numSteps: 3 });
    expect(result!.metrics.distillationLoss).toBeGreaterThan(0);
    // Without the global representations of its modality the round is refused before any weight moves.
    const before = await weightsOf(client);
    await expect(runFedAfdLocalRound(roundOptions(client, images, { globalPublic: {}, localEpochs: 1 }))).rejects.toMatchObject({ code: 'CLIENT_BAD_ROUND' });
    expect(await weightsOf(client)).toEqual(before);
    client.dispose();
  });

  it('attacks what it uploads: scaling multiplies the honest representations, a free-rider trains nothing and copies the global', async () => {
    const round = async (behaviour: FedAfdLocalRoundOptions['behaviour']): Promise<FedAfdLocalRoundResult> => {
      const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
      const before = await weightsOf(client);
      const result = await runFedAfdLocalRound(roundOptions(client, images, { behaviour, localEpochs: 1 }));
      if (behaviour?.kind === 'free-rider') expect(await weightsOf(client)).toEqual(before);
      client.dispose();
      return result!;
    };
    // Act
    const [honest, scaled, free] = [await round(null), await round({ kind: 'scaling', factor: 10 }), await round({ kind: 'free-rider' })];
    // Assert
    expect(Array.from(scaled.representations.image!)).toEqual(Array.from(honest.representations.image!.map((v) => v * 10)));
    expect(scaled.metrics.taskLoss).toBe(honest.metrics.taskLoss);
    // The round's global image rows (globalOf's first modality, image).
    expect(free.representations).toEqual({ image: unitRows(6, 10) });
    expect(free.metrics).toMatchObject({ numSteps: 0, evalExamples: 0, numExamples: 8 });
  });

  it('trains a label-flipper on the mapped labels and scores it on the true ones', async () => {
    // Arrange: enough steps to fit the tiny problem; the map swaps the two classes.
    const run = async (labelMap?: Int32Array): Promise<number> => {
      const client = createFedAfdClient(tinySpec('image-classifier', 'cnn', { learningRate: 0.05 }), tinyOptions(embedder));
      const r = await runFedAfdLocalRound(
        roundOptions(client, images, { localEpochs: 6, behaviour: labelMap ? { kind: 'label-flip' } : null, ...(labelMap ? { labelMap } : {}) }),
      );
      client.dispose();
      return r!.metrics.accuracy!;
    };
    // Act & Assert
    expect(await run()).toBeGreaterThan(0.5);
    expect(await run(Int32Array.from([1, 0]))).toBeLessThan(0.5);
  });

  it('abandons the round when asked to stop', async () => {
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    let steps = 0;
    const result = await runFedAfdLocalRound(roundOptions(client, images, { onStep: () => steps++, shouldStop: () => steps >= 2 }));
    expect(result).toBeNull();
    expect(steps).toBe(2);
    client.dispose();
  });

  it('leaks no tensors', async () => {
    // Arrange: a first round creates the optimisers' slots.
    const client = createFedAfdClient(tinySpec('image-text-retrieval', 'cnn+bag-mlp'), tinyOptions(embedder));
    await runFedAfdLocalRound(roundOptions(client, pairs, { localEpochs: 1 }));
    const before = tf.memory().numTensors;
    // Act
    await runFedAfdLocalRound(roundOptions(client, pairs, { publicBatchSize: 4 }));
    await expect(runFedAfdLocalRound(roundOptions(client, pairs, { globalPublic: { image: unitRows(6, 1) } }))).rejects.toThrow();
    // Assert
    expect(tf.memory().numTensors).toBe(before);
    client.dispose();
  });
});

describe('FedAFD round refusals', () => {
  const badNumber = (): Float32Array => {
    const rows = unitRows(6, 1);
    rows[9] = Number.NaN;
    return rows;
  };
  it.each([
    ['a missing partner modality', { globalPublic: { image: unitRows(6, 1) } }, 'CLIENT_BAD_ROUND', "miss 'text'"],
    ['a wrong row count', { globalPublic: { image: unitRows(5, 1), text: unitRows(6, 2) } }, 'CLIENT_BAD_ROUND', '6 × 8'],
    ['a non-finite value', { globalPublic: { image: badNumber(), text: unitRows(6, 2) } }, 'CLIENT_BAD_ROUND', "'image'[9] is NaN"],
    ['numbers, not float32', { globalPublic: { image: Array.from(unitRows(6, 1)), text: unitRows(6, 2) } }, 'CLIENT_BAD_ROUND', 'got object'],
    ['a public batch without images', { publicBatch: { size: 6, labels: new Int32Array(6) } }, 'CLIENT_BAD_ROUND', "no 'image' input"],
    ['a public window larger than the batch', { publicBatchSize: 7 }, 'CLIENT_BAD_CONFIG', 'publicBatchSize'],
    ['zero epochs', { localEpochs: 0 }, 'CLIENT_BAD_CONFIG', 'localEpochs'],
    ['alie', { behaviour: { kind: 'alie', z: 1, replicates: 2 } }, 'CLIENT_BAD_CONFIG', 'alie'],
    ['a label map outside the classes', { labelMap: Int32Array.from([1, 2]) }, 'CLIENT_BAD_CONFIG', 'labelMap'],
  ])('refuses %s and trains nothing', async (_, overrides, code, message) => {
    // Arrange
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const before = await weightsOf(client);
    const options = roundOptions(client, images, overrides as Partial<FedAfdLocalRoundOptions>);
    // Act & Assert
    expect(() => checkFedAfdRound(options)).toThrow(expect.objectContaining({ code, message: expect.stringContaining(message) }));
    await expect(runFedAfdLocalRound(options)).rejects.toMatchObject({ code });
    expect(await weightsOf(client)).toEqual(before);
    client.dispose();
  });

  it('scores held-out evaluation data instead of the local data when given', async () => {
    // Arrange: 5 held-out images that are not among the 8 local ones.
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const heldOut = await only(tinyData(5, 100), ['image']);
    // Act
    const result = await runFedAfdLocalRound(roundOptions(client, images, { evalData: heldOut, evalExamples: 16 }));
    // Assert: all 5 held-out examples scored (not the 8 local ones), with the accuracy the model has on them.
    expect(result!.metrics.evalExamples).toBe(5);
    expect(result!.metrics.accuracy).toBe((await evaluateFedAfdClient(client, heldOut, [0, 1, 2, 3, 4])).accuracy);
    client.dispose();
  });

  it('refuses held-out evaluation data without the modality of its kind and trains nothing', async () => {
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const before = await weightsOf(client);
    const texts = await only(tinyData(4, 100), ['text']);
    await expect(runFedAfdLocalRound(roundOptions(client, images, { evalData: texts }))).rejects.toMatchObject({
      code: 'CLIENT_DATASET',
      message: expect.stringContaining('evaluation data'),
    });
    expect(await weightsOf(client)).toEqual(before);
    client.dispose();
  });

  it('refuses local data without the modality of its kind', async () => {
    const client = createFedAfdClient(tinySpec('text-classifier', 'bag-mlp'), tinyOptions(embedder));
    await expect(runFedAfdLocalRound(roundOptions(client, images))).rejects.toMatchObject({ code: 'CLIENT_DATASET' });
    client.dispose();
  });

  it("refuses local labels outside a classifier's classes and trains nothing", async () => {
    // Arrange: a 2-class classifier given a label 2.
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const host = await images.read([0, 1, 2]);
    const threeClasses = new ArrayDataset(Int32Array.from([0, 1, 2]), { image: host.image! });
    const before = await weightsOf(client);
    // Act & Assert
    await expect(runFedAfdLocalRound(roundOptions(client, threeClasses))).rejects.toMatchObject({
      code: 'CLIENT_DATASET',
      message: expect.stringContaining('label 2 at 2'),
    });
    expect(await weightsOf(client)).toEqual(before);
    client.dispose();
  });

  it('reports a failure of the model during the round as a training failure', async () => {
    // Arrange: a text client whose local captions hold a word id past its 6-word table.
    const client = createFedAfdClient(tinySpec('text-classifier', 'bag-mlp'), tinyOptions(embedder));
    const text = new ArrayDataset(Int32Array.from([0, 1]), { text: { values: Int32Array.from([1, 9, 0, 0, 3, 4, 0, 0]), shape: [2, TINY.length] } });
    // Act & Assert
    await expect(runFedAfdLocalRound(roundOptions(client, text))).rejects.toMatchObject({ code: 'CLIENT_TRAINING_FAILED' });
    client.dispose();
  });

  it('refuses global encoders of another size and trains nothing', async () => {
    // Arrange: a server whose image encoder is wider than the one the client expects.
    const server = new FedAfdServerModel({ ...tinyServerConfig(embedder), hiddenUnits: 5 });
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const before = await weightsOf(client);
    // Act & Assert
    await expect(runFedAfdLocalRound(roundOptions(client, images, { globalWeights: await server.exportWeights() }))).rejects.toMatchObject({
      code: 'CLIENT_MODEL_MISMATCH',
    });
    expect(await weightsOf(client)).toEqual(before);
    server.dispose();
    client.dispose();
  });
});

describe('evaluateFedAfdClient', () => {
  const all = [0, 1, 2, 3, 4, 5, 6, 7];
  const whole = async (client: FedAfdClient, data: LocalDataset) => {
    const batch = toModelBatch(await data.read(all), client.modalities);
    const e = await client.evaluate(batch);
    tf.dispose(Object.values(batch) as tf.Tensor[]);
    return e;
  };

  it('averages a classifier over chunks to what one batch gives', async () => {
    // Arrange
    const client = createFedAfdClient(tinySpec('image-classifier', 'cnn'), tinyOptions(embedder));
    const expected = await whole(client, images);
    // Act: chunks of 3, 3 and 2.
    const chunked = await evaluateFedAfdClient(client, images, all, 3);
    // Assert
    expect(chunked.numExamples).toBe(8);
    expect(chunked.accuracy).toBeCloseTo(expected.accuracy!, 6);
    expect(chunked.loss).toBeCloseTo(expected.loss, 5);
    expect(chunked.retrieval).toBeUndefined();
    client.dispose();
  });

  it('ranks a retrieval client over all the pairs at once', async () => {
    const client = createFedAfdClient(tinySpec('image-text-retrieval', 'cnn+bag-mlp'), tinyOptions(embedder));
    const e = await evaluateFedAfdClient(client, pairs, all, 3);
    expect(e.retrieval).toEqual((await whole(client, pairs)).retrieval);
    expect(e.retrieval!.numPairs).toBe(8);
    client.dispose();
  });

  it('refuses no indices, data without its modality and a bad chunk', async () => {
    const client = createFedAfdClient(tinySpec('text-classifier', 'bag-mlp'), tinyOptions(embedder));
    await expect(evaluateFedAfdClient(client, pairs, [])).rejects.toMatchObject({ code: 'CLIENT_DATASET' });
    await expect(evaluateFedAfdClient(client, images, all)).rejects.toMatchObject({ code: 'CLIENT_DATASET' });
    await expect(evaluateFedAfdClient(client, pairs, all, 0)).rejects.toMatchObject({ code: 'CLIENT_BAD_CONFIG' });
    client.dispose();
  });
});
