/**
 * Three heterogeneous FedAFD clients (image classifier, text classifier, image–text retrieval) and
 * the server model, in process, for two rounds: the server sends the global representations of a
 * public batch and its encoders, each client runs its local round and returns its representations,
 * and the server distils a teacher into its encoders. The teacher here is the plain mean of the
 * clients' representations of each modality (SED's similarity weighting lives in fl-core), enough
 * to show the pieces fit.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { FedAfdServerModel, createFedAfdClient } from '@chorus/models';
import type { FedAfdClient, FedAfdClientSpec, Modality, RepresentationArrays } from '@chorus/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalDataset } from '../dataset.js';
import { roundSeed } from '../localRound.js';
import { toModelBatch } from '../training.js';
import { TINY, only, tinyData, tinyEmbedder, tinyOptions, tinyPublic, tinyServerConfig, tinySpec } from './fixtures.test-util.js';
import { runFedAfdLocalRound } from './localRound.js';
import type { FedAfdLocalMetrics } from './localRound.js';

const embedder = tinyEmbedder();
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => embedder.dispose());

const SPECS: FedAfdClientSpec[] = [
  tinySpec('image-classifier', 'cnn', { seed: 11 }),
  tinySpec('text-classifier', 'bag-mlp', { seed: 12 }),
  tinySpec('image-text-retrieval', 'cnn+bag-mlp', { seed: 13, temperature: 0.2 }),
];

/** Per modality, the mean of the uploads that hold it (element-wise over [B, D]). */
function meanTeacher(uploads: readonly RepresentationArrays[]): RepresentationArrays {
  const out: RepresentationArrays = {};
  for (const m of ['image', 'text', 'audio'] as Modality[]) {
    const held = uploads.map((u) => u[m]).filter((r): r is Float32Array => r !== undefined);
    if (held.length === 0) continue;
    const mean = new Float32Array(held[0]!.length);
    for (const r of held) for (let i = 0; i < mean.length; i++) mean[i]! += r[i]! / held.length;
    out[m] = mean;
  }
  return out;
}

interface FederationRun {
  /** Per round, per client. */
  readonly uploads: RepresentationArrays[][];
  readonly metrics: FedAfdLocalMetrics[][];
  readonly serverDistillation: number[];
}

async function federate(seed: number, numRounds = 2): Promise<FederationRun> {
  const server = new FedAfdServerModel(tinyServerConfig(embedder));
  const clients: FedAfdClient[] = SPECS.map((spec) => createFedAfdClient(spec, tinyOptions(embedder)));
  const data: LocalDataset[] = await Promise.all([only(tinyData(8, 0), ['image']), only(tinyData(8, 1), ['text']), tinyData(8, 2)]);
  const publicHost = await tinyPublic(6);
  const publicBatch = toModelBatch(publicHost, ['image', 'text']);
  const run: FederationRun = { uploads: [], metrics: [], serverDistillation: [] };
  try {
    for (let serverRound = 1; serverRound <= numRounds; serverRound++) {
      const globalPublic = await server.representations(publicBatch);
      const globalWeights = await server.exportWeights();
      const results = [];
      for (const [i, client] of clients.entries()) {
        const result = await runFedAfdLocalRound({
          client,
          dataset: data[i]!,
          publicBatch: publicHost,
          globalPublic,
          globalWeights,
          localEpochs: 3,
          batchSize: 4,
          rng: createRng(roundSeed(seed * 1000 + i, serverRound)),
          now: () => 0,
        });
        results.push(result!);
      }
      const uploads = results.map((r) => r.representations);
      run.uploads.push(uploads);
      run.metrics.push(results.map((r) => r.metrics));
      const step = await server.trainStep({ batch: publicBatch, teachers: meanTeacher(uploads) });
      run.serverDistillation.push(step.distillation);
    }
  } finally {
    tf.dispose(Object.values(publicBatch) as tf.Tensor[]);
    server.dispose();
    clients.forEach((c) => c.dispose());
  }
  return run;
}

describe('an in-process FedAFD federation of heterogeneous clients', () => {
  it('exchanges [B, D] representations of each client’s own modalities, deterministically from the seed, and improves the clients', async () => {
    // Act
    const before = tf.memory().numTensors;
    const run = await federate(1);
    const again = await federate(1);
    const other = await federate(2);
    // Assert: shapes — each client uploads exactly its modalities, B = 6 rows of D.
    for (const uploads of run.uploads) {
      expect(uploads.map((u) => Object.keys(u).sort())).toEqual([['image'], ['text'], ['image', 'text']]);
      for (const u of uploads) for (const r of Object.values(u)) expect(r).toHaveLength(6 * TINY.dim);
    }
    // The server distilled a teacher of every modality it has.
    expect(run.serverDistillation.every((d) => d > 0)).toBe(true);
    // Same seed, same bytes; another seed (other shuffles), other representations.
    expect(again.uploads).toEqual(run.uploads);
    expect(again.metrics).toEqual(run.metrics);
    expect(other.uploads[1]).not.toEqual(run.uploads[1]);
    // Every client's task loss falls from round 1 to round 2; the classifiers separate their data, the retrieval client ranks its pairs better.
    const [first, second] = [run.metrics[0]!, run.metrics[1]!];
    second.forEach((m, i) => expect(m.taskLoss).toBeLessThan(first[i]!.taskLoss));
    expect(second[0]!.accuracy).toBe(1);
    expect(second[1]!.accuracy).toBe(1);
    expect(second[2]!.rsum).toBeGreaterThan(first[2]!.rsum!);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);
});
