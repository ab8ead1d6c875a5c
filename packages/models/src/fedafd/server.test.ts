import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FedAfdServerModel } from './server.js';
import { createFedAfdClient } from './client.js';
import { SMALL, disposeBatch, smallBatch, smallEmbedder, smallOptions, smallServerConfig, smallSpec, unitRows } from './fixtures.test-util.js';

const embedder = smallEmbedder();
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => embedder.dispose());

async function weights(server: FedAfdServerModel): Promise<Map<string, number[]>> {
  return new Map((await server.exportWeights()).map((t) => [t.name, Array.from(t.values)]));
}

describe('FedAfdServerModel', () => {
  it('encodes every modality to [batch, D] unit rows with encoders larger than a client', () => {
    const server = new FedAfdServerModel(smallServerConfig(embedder));
    const client = createFedAfdClient(smallSpec('image-text-retrieval', 'cnn+bag-mlp'), smallOptions(embedder));
    const batch = smallBatch();

    for (const m of ['image', 'text', 'audio'] as const) {
      const reps = server.encode(m, batch[m]!);
      expect(reps.shape).toEqual([SMALL.batch, SMALL.dim]);
      tf.tidy(() => Array.from(tf.norm(reps, 'euclidean', 1).dataSync()).forEach((n) => expect(n).toBeCloseTo(1, 4)));
      reps.dispose();
    }
    expect(server.modalities).toEqual(['image', 'text', 'audio']);
    expect(server.parameterCount()).toBeGreaterThan(client.parameterCounts().encoders);
    disposeBatch(batch);
    server.dispose();
    client.dispose();
  });

  it('builds its encoders at the paper sizes by default (D = 256)', () => {
    const server = new FedAfdServerModel({ textEmbedder: embedder });

    expect(server.dim).toBe(256);
    expect(server.modalities).toEqual(['image', 'text']);
    expect(server.distillationWeight).toBe(0.4);
    server.dispose();
  });

  it('lowers its cross-modal retrieval loss on public pairs', async () => {
    const server = new FedAfdServerModel(smallServerConfig(embedder, { temperature: 0.2 }));
    const batch = smallBatch(2);

    const first = await server.trainStep({ batch });
    let last = first;
    for (let i = 0; i < 15; i++) last = await server.trainStep({ batch });

    expect(first.distillation).toBe(0);
    expect(last.retrieval).toBeLessThan(first.retrieval);
    const metrics = await server.evaluateRetrieval(batch, 'audio');
    expect(metrics.numPairs).toBe(SMALL.batch);
    expect(metrics.i2tR10).toBe(100);
    disposeBatch(batch);
    server.dispose();
  });

  it('distils toward the teacher representations with weight λ_dis (Eq. 10)', async () => {
    const server = new FedAfdServerModel(smallServerConfig(embedder, { distillationWeight: 1 }));
    const batch = smallBatch(3, ['image', 'text']);
    const teachers = { image: unitRows(SMALL.batch, 11), text: unitRows(SMALL.batch, 12) };

    const first = await server.trainStep({ batch, teachers });
    let last = first;
    for (let i = 0; i < 15; i++) last = await server.trainStep({ batch, teachers });

    expect(first.loss).toBeCloseTo(first.retrieval + first.distillation, 4);
    expect(last.distillation).toBeLessThan(first.distillation);
    disposeBatch(batch);
    server.dispose();
  });

  it('serves the representations clients align with, and round-trips its weights', async () => {
    const a = new FedAfdServerModel(smallServerConfig(embedder, { seed: 1 }));
    const b = new FedAfdServerModel(smallServerConfig(embedder, { seed: 2 }));
    const batch = smallBatch(4, ['image', 'text']);
    expect(await weights(b)).not.toEqual(await weights(a));

    b.importWeights(await a.exportWeights());

    expect(await weights(b)).toEqual(await weights(a));
    const reps = await a.representations(batch);
    expect(Object.keys(reps)).toEqual(['image', 'text']);
    expect(reps.image!.length).toBe(SMALL.batch * SMALL.dim);
    expect(await b.representations(batch)).toEqual(reps);
    disposeBatch(batch);
    a.dispose();
    b.dispose();
  });

  it('refuses bad teachers and batches before moving any weight, and leaks no tensors', async () => {
    const server = new FedAfdServerModel(smallServerConfig(embedder));
    const batch = smallBatch(5, ['image', 'text']);
    await server.trainStep({ batch, teachers: { image: unitRows(SMALL.batch, 1) } });
    const before = await weights(server);
    const tensors = tf.memory().numTensors;

    await expect(server.trainStep({ batch, teachers: { image: new Float32Array(3) } })).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
      field: 'teachers.image',
    });
    await expect(server.trainStep({ batch, teachers: { audio: unitRows(SMALL.batch, 1) } })).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
      field: 'teachers.audio',
    });
    const nan = unitRows(SMALL.batch, 2);
    nan[5] = NaN;
    await expect(server.trainStep({ batch, teachers: { text: nan } })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT' });
    await expect(server.trainStep({ batch: { image: batch.image! } })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT' });
    expect(await weights(server)).toEqual(before);

    await server.trainStep({ batch, teachers: { image: unitRows(SMALL.batch, 1) } });
    await server.representations(batch);
    await server.evaluateRetrieval(batch);
    expect(tf.memory().numTensors).toBe(tensors);
    disposeBatch(batch);
    server.dispose();
  });

  it('refuses a server without text or with a bad coefficient', () => {
    expect(() => new FedAfdServerModel({ textEmbedder: embedder, modalities: ['image'] })).toThrow(
      expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'modalities' }),
    );
    expect(() => new FedAfdServerModel(smallServerConfig(embedder, { distillationWeight: -1 }))).toThrow(
      expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'distillationWeight' }),
    );
  });
});
