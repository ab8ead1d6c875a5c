import * as tf from '@tensorflow/tfjs';
import { readPublicRepresentations } from '@chorus/fl-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { publicBatchIndices } from '../engine/representationRounds.js';
import { parseTask } from '../task/loadTask.js';
import { isRepresentationTask } from '@chorus/protocol';
import type { RepresentationTask } from '@chorus/protocol';
import { FEDAFD_SERVER_FORMAT, FedAfdServerTask } from './fedAfdServer.js';

const B = 8;
const D = 16;

function taskWith(kinds: unknown[], testExamples = 16): RepresentationTask {
  const task = parseTask({
    id: 'srv',
    dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
    strategy: { name: 'fedafd' },
    representation: {
      dim: D,
      publicBatch: B,
      server: { hiddenUnits: 8, imageFilters: [2, 4], textFilters: 8, audioFilters: [2, 4], learningRate: 0.01, stepsPerRound: 2 },
      clientKinds: kinds,
    },
    evaluation: { testExamples },
    rounds: 2,
    clientsPerRound: 2,
    minClients: 1,
    roundDeadlineMs: 1000,
    localEpochs: 1,
    batchSize: 4,
    learningRate: 0.01,
    maxUpdateBytes: 100_000,
    seed: 11,
  });
  if (!isRepresentationTask(task)) throw new Error('not a representation task');
  return task;
}

let server: FedAfdServerTask;
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
  // The server encodes image, text and audio, as a task with all four client kinds needs.
  server = await FedAfdServerTask.create(
    taskWith([
      { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
      { kind: 'audio-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
    ]),
  );
}, 60_000);
afterAll(() => server?.dispose());

describe('FedAfdServerTask', () => {
  it("refuses a client mix the models do not know with TASK_INVALID naming the entry's path", async () => {
    // Act
    const error = await FedAfdServerTask.create(taskWith([{ kind: 'image-classifier', arch: 'transformer', share: 1 }])).catch((err: unknown) => err);
    // Assert
    expect(error).toBeInstanceOf(CoordinatorError);
    expect((error as CoordinatorError).code).toBe('TASK_INVALID');
    expect((error as CoordinatorError).issues[0]).toMatch(/^representation\.clientKinds\[0\]\.arch: /);
  });

  it("distils the teachers into new weights, measures R@1 and rsum image↔text and audio↔text, and encodes the next round's public batch", async () => {
    // Arrange: the first global holds round 1's public representations; a teacher for image.
    const global = await server.initialParameters();
    const round1 = readPublicRepresentations(global, B, D);
    const teacher = new Float32Array(B * D).fill(1 / Math.sqrt(D));
    // Act
    const { parameters, metrics } = await server.distill(1, global, { image: teacher });
    // Assert
    const round2 = readPublicRepresentations(parameters, B, D);
    expect(server.modalities).toEqual(['image', 'text', 'audio']);
    expect(Object.keys(round2.global.representations).sort()).toEqual(['audio', 'image', 'text']);
    expect(round2.weights.map((t) => t.name)).toEqual(round1.weights.map((t) => t.name));
    expect(round2.weights.some((t, i) => t.values.some((v, j) => v !== round1.weights[i]!.values[j]))).toBe(true);
    expect(metrics['server.teachers']).toBe(1);
    expect(metrics['server.distillationLoss']).toBeGreaterThan(0);
    expect(metrics['server.testPairs']).toBe(16);
    for (const key of ['server.i2tR1', 'server.t2iR1', 'server.rsum', 'server.a2tR1', 'server.t2aR1', 'server.audioRsum']) {
      expect(metrics[key], key).toBeGreaterThanOrEqual(0);
      expect(metrics[key], key).toBeLessThanOrEqual(key.endsWith('sum') ? 600 : 100);
    }
    // Audio↔text is measured on its own similarities, not copied from image↔text.
    const same = ['R1', 'R5'].every((k) => metrics[`server.a2t${k}`] === metrics[`server.i2t${k}`] && metrics[`server.t2a${k}`] === metrics[`server.t2i${k}`]);
    expect(same && metrics['server.audioRsum'] === metrics['server.rsum']).toBe(false);
    // Round 2's batch is another draw from the same seed, as the coordinator's round start names it.
    expect(publicBatchIndices(11, 2, server.publicExamples, B)).not.toEqual(publicBatchIndices(11, 1, server.publicExamples, B));
  }, 60_000);

  it('computes a round from its global alone: a fresh server (a restart, a re-created evaluator) gives the same bytes as one that ran the round before', async () => {
    // Arrange: this server has run round 1 (Adam has moved); a second one has run nothing.
    const teacher = new Float32Array(B * D).fill(1 / Math.sqrt(D));
    const g1 = (await server.distill(1, await server.initialParameters(), { image: teacher })).parameters;
    const fresh = await FedAfdServerTask.create(
      taskWith([
        { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
        { kind: 'audio-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
      ]),
    );
    try {
      // Act: round 2 from the same global, on both.
      const continued = await server.distill(2, g1, { image: teacher });
      const restarted = await fresh.distill(2, g1, { image: teacher });
      // Assert
      expect(restarted.metrics).toEqual(continued.metrics);
      expect(restarted.parameters.map((t) => t.name)).toEqual(continued.parameters.map((t) => t.name));
      for (const [i, t] of restarted.parameters.entries()) expect(t.values, t.name).toEqual(continued.parameters[i]!.values);
    } finally {
      fresh.dispose();
    }
  }, 60_000);

  it('exports the server encoders of a global as TF.js weights by name, without the public representations', async () => {
    // Arrange
    const global = await server.initialParameters();
    const { weights } = readPublicRepresentations(global, B, D);
    // Act
    const { modelJson, weights: bytes } = await server.exportArtifacts(global);
    // Assert
    expect(modelJson.format).toBe(FEDAFD_SERVER_FORMAT);
    expect(modelJson.userDefinedMetadata).toMatchObject({ taskId: 'srv', config: { dim: D, modalities: ['image', 'text', 'audio'], audioFilters: [2, 4] } });
    const specs = modelJson.weightsManifest[0]!.weights;
    expect(specs.map((w) => w.name)).toEqual(weights.map((t) => t.name));
    expect(specs.some((w) => w.name.startsWith('public/'))).toBe(false);
    expect(['image', 'text', 'audio'].every((m) => specs.some((w) => w.name.startsWith(`${m}/`)))).toBe(true);
    const before = tf.memory().numTensors;
    const decoded = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, specs);
    for (const t of weights) expect(decoded[t.name]!.dataSync()).toEqual(t.values);
    tf.dispose(Object.values(decoded));
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);
});
