import * as tf from '@tensorflow/tfjs';
import { decodeUpdate, encodeUpdate, publicRepresentationTensors, validateRepresentations } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { FedAfdServerModel } from '@chorus/models';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { ParsedRoundStart, RepresentationRoundConfig } from '@chorus/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError } from '../errors.js';
import { toModelBatch } from '../training.js';
import type { FedAfdPublicData } from './clientData.js';
import { TINY, only, tinyData, tinyEmbedder, tinyOptions, tinyServerConfig } from './fixtures.test-util.js';
import { FedAfdRoundRunner, globalSizesFromWeights } from './roundRunner.js';

const B = 4;
const embedder = tinyEmbedder();
const server = new FedAfdServerModel(tinyServerConfig(embedder));
// The public split: 12 paired tiny examples.
const publicSplit = tinyData(12, 7);
const publicData: FedAfdPublicData = {
  dataset: 'digits',
  numExamples: 12,
  modalities: ['image', 'text'],
  batch: (indices) => publicSplit.read(indices),
};

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => {
  server.dispose();
  embedder.dispose();
});

const section = (overrides: Partial<RepresentationRoundConfig> = {}): RepresentationRoundConfig => ({
  publicIndices: [3, 0, 8, 5],
  dim: TINY.dim,
  encoding: 'fp16',
  adversarialWeight: 0.5,
  fusion: true,
  localDistillationWeight: 0,
  ...overrides,
});

/** A round start as the coordinator sends it: the server's weights and its representations of the batch. */
async function roundStart(serverRound: number, representation: RepresentationRoundConfig, drop: string | null = null): Promise<ParsedRoundStart> {
  const host = await publicData.batch(representation.publicIndices);
  const batch = toModelBatch(host, ['image', 'text']);
  const representations = await server.representations(batch);
  tf.dispose(Object.values(batch) as tf.Tensor[]);
  const tensors: Tensor[] = [...(await server.exportWeights()), ...publicRepresentationTensors({ numSamples: B, dim: TINY.dim, representations })];
  const global = encodeUpdate({
    kind: 'model',
    taskId: 't',
    round: serverRound - 1,
    clientId: '',
    encoding: 'fp32',
    tensors: tensors.filter((t) => t.name !== drop),
  });
  return {
    type: 'round-start',
    protocolVersion: PROTOCOL_VERSION,
    taskId: 't',
    roundId: `t.r${serverRound}.a1`,
    serverRound,
    attempt: 1,
    deadlineAt: Date.now() + 60_000,
    config: {
      localEpochs: 1,
      batchSize: 4,
      learningRate: 0.01,
      uploadEncoding: 'fp16',
      maxUpdateBytes: 100_000,
      normBound: null,
      modalWeight: 0,
      modalLoss: 'js',
      interpretabilityWeight: 0,
      head: 'nam',
      adapterAlpha: 1,
      strategy: {},
      representation,
    },
    globalHash: '0'.repeat(64),
    global,
  };
}

const spec = { numClasses: 2, hiddenUnits: 6, filters: [2, 3] as [number, number], fusionGroups: 2, discriminatorHiddenUnits: 5, learningRate: 0.02 };
const noStop = { shouldStop: () => false, pause: async () => undefined };

describe('FedAfdRoundRunner', () => {
  it('reads the server encoders’ sizes off their weights', async () => {
    // Act
    const sizes = globalSizesFromWeights(await server.exportWeights());
    // Assert: the fixture's global encoders.
    expect(sizes).toEqual({ hiddenUnits: 8, imageFilters: [2, 2], textFilters: 4 });
  });

  it("uploads its kind's representations of the round's public batch and keeps its model between rounds", async () => {
    // Arrange
    const runner = new FedAfdRoundRunner({
      assignment: { kind: 'image-classifier', arch: 'cnn' },
      dataset: await only(tinyData(8, 0), ['image']),
      publicData,
      modelOptions: tinyOptions(embedder),
      spec,
      seed: 1,
      evalExamples: 4,
    });
    try {
      // Act
      const steps: { epoch: number; batch: number; numBatches: number }[] = [];
      const first = await runner.run({ round: await roundStart(1, section()), clientId: 'c1', ...noStop, onStep: (s) => steps.push(s) });
      const model = runner.client;
      const second = await runner.run({ round: await roundStart(2, section()), clientId: 'c1', ...noStop });
      const kept = runner.client === model;
      await runner.run({ round: await roundStart(3, section({ fusion: false })), clientId: 'c1', ...noStop });
      // Assert: rep/image [B, D] in fp16, valid for an image-only sender; training figures reported.
      const valid = validateRepresentations(second!.bytes, {
        taskId: 't',
        serverRound: 2,
        clientId: 'c1',
        modalities: ['image'],
        numSamples: B,
        dim: TINY.dim,
        maxBytes: 100_000,
      });
      expect(valid.encoding).toBe('fp16');
      expect(Object.keys(valid.representations)).toEqual(['image']);
      expect(decodeUpdate(first!.bytes, { maxBytes: 100_000 }).round).toBe(1);
      expect(first!.metrics['numExamples']).toBe(8);
      expect(first!.metrics['accuracy']).toBeGreaterThanOrEqual(0);
      expect(kept).toBe(true);
      // Every local step was reported, for the page's progress bar.
      expect(steps.length).toBe(first!.metrics['numSteps']);
      expect(steps.at(-1)).toMatchObject({ batch: steps.at(-1)!.numBatches });
      // Other coefficients (no fusion) need another model.
      expect(runner.client).not.toBe(model);
      expect(runner.client!.spec.useGff).toBe(false);
      // The round's learning rate (the task's) is the client's, not the spec's default.
      expect(model!.spec.learningRate).toBe(0.01);
    } finally {
      runner.dispose();
    }
  }, 30_000);

  it('refuses a round start without the public representations its modality needs', async () => {
    // Arrange
    const runner = new FedAfdRoundRunner({
      assignment: { kind: 'text-classifier', arch: 'bag-mlp' },
      dataset: await only(tinyData(8, 1), ['text']),
      publicData,
      modelOptions: tinyOptions(embedder),
      spec,
      seed: 2,
    });
    // Act
    const error = await runner.run({ round: await roundStart(1, section(), 'public/text'), clientId: 'c2', ...noStop }).catch((err: unknown) => err);
    // Assert: the server encodes image and text; without public/text the text client cannot align.
    runner.dispose();
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe('CLIENT_BAD_ROUND');
  });
});
