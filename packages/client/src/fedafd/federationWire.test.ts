/**
 * The same federation as federation.test.ts, now through fl-core's wire and strategy: the server's
 * round start carries its encoders and `public/<modality>` representations as codec bytes, each
 * client's upload is `rep/<modality>` codec bytes checked by `validateRepresentations`, and FedAFD's
 * SED weights build the teacher the server distils. A fourth client uploads noise; at this size
 * (D = 8, B = 6, eight examples a client) the honest clients' representations are barely aligned
 * with the server's after two rounds, so SED's down-weighting of noise is shown in fl-core's tests
 * and the experiments, not asserted here.
 */
import * as tf from '@tensorflow/tfjs';
import {
  createRepresentationStrategy,
  createRng,
  decodeUpdate,
  encodeUpdate,
  publicRepresentationTensors,
  readPublicRepresentations,
  representationUploadTensors,
  validateRepresentations,
} from '@chorus/fl-core';
import type { ClientRepresentationWeight, RepresentationAggregate, RepresentationUpload } from '@chorus/fl-core';
import { FedAfdServerModel, createFedAfdClient } from '@chorus/models';
import type { FedAfdClient, Modality, RepresentationArrays } from '@chorus/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdversarialBehaviour } from '../adversarial.js';
import type { LocalDataset } from '../dataset.js';
import { roundSeed } from '../localRound.js';
import { toModelBatch } from '../training.js';
import { TINY, only, tinyData, tinyEmbedder, tinyOptions, tinyPublic, tinyServerConfig, tinySpec } from './fixtures.test-util.js';
import { runFedAfdLocalRound } from './localRound.js';
import { fedAfdClientSpec } from './spec.js';

const TASK = 'fedafd-wire';
const B = 6;
const embedder = tinyEmbedder();
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => embedder.dispose());

interface Participant {
  readonly id: string;
  readonly client: FedAfdClient;
  readonly data: LocalDataset;
  readonly behaviour: AdversarialBehaviour | null;
}

async function federate(numRounds: number): Promise<RepresentationAggregate[]> {
  const strategy = createRepresentationStrategy({ name: 'fedafd' });
  const spec = (kind: Parameters<typeof tinySpec>[0], arch: string, seed: number) => {
    const small = tinySpec(kind, arch, { seed });
    return fedAfdClientSpec(small, strategy.clientCoefficients, small);
  };
  const server = new FedAfdServerModel(tinyServerConfig(embedder));
  const participants: Participant[] = [
    {
      id: 'image',
      client: createFedAfdClient(spec('image-classifier', 'cnn', 11), tinyOptions(embedder)),
      data: await only(tinyData(8, 0), ['image']),
      behaviour: null,
    },
    {
      id: 'text',
      client: createFedAfdClient(spec('text-classifier', 'bag-mlp', 12), tinyOptions(embedder)),
      data: await only(tinyData(8, 1), ['text']),
      behaviour: null,
    },
    { id: 'pairs', client: createFedAfdClient(spec('image-text-retrieval', 'cnn+bag-mlp', 13), tinyOptions(embedder)), data: tinyData(8, 2), behaviour: null },
    {
      id: 'noise',
      client: createFedAfdClient(spec('image-classifier', 'cnn', 14), tinyOptions(embedder)),
      data: await only(tinyData(8, 3), ['image']),
      behaviour: { kind: 'gaussian-noise', sigma: 1 },
    },
  ];
  const publicHost = await tinyPublic(B);
  const publicBatch = toModelBatch(publicHost, ['image', 'text']);
  const aggregates: RepresentationAggregate[] = [];
  try {
    for (let serverRound = 1; serverRound <= numRounds; serverRound++) {
      // Server → clients: the encoders' weights and the public representations in one model message.
      const global = { numSamples: B, dim: TINY.dim, representations: await server.representations(publicBatch) };
      const tensors = [...(await server.exportWeights()), ...publicRepresentationTensors(global)];
      const start = encodeUpdate({ kind: 'model', taskId: TASK, round: serverRound - 1, clientId: '', encoding: 'fp32', tensors });
      const uploads: RepresentationUpload[] = [];
      for (const [i, p] of participants.entries()) {
        const received = readPublicRepresentations(decodeUpdate(start, { maxBytes: start.byteLength }).tensors, B, TINY.dim);
        const result = await runFedAfdLocalRound({
          client: p.client,
          dataset: p.data,
          publicBatch: publicHost,
          globalPublic: received.global.representations,
          globalWeights: received.weights,
          localEpochs: 2,
          batchSize: 4,
          rng: createRng(roundSeed(1000 + i, serverRound)),
          behaviour: p.behaviour,
        });
        // Client → server: rep/<modality> bytes in fp16, checked as the coordinator checks them.
        const bytes = encodeUpdate({
          kind: 'representations',
          taskId: TASK,
          round: serverRound,
          clientId: p.id,
          encoding: 'fp16',
          tensors: representationUploadTensors(result!.representations, B, TINY.dim),
        });
        const valid = validateRepresentations(bytes, {
          taskId: TASK,
          serverRound,
          clientId: p.id,
          modalities: p.client.modalities,
          numSamples: B,
          dim: TINY.dim,
          maxBytes: 1 << 16,
        });
        uploads.push({ clientId: p.id, numExamples: result!.metrics.numExamples, representations: valid.representations });
      }
      const aggregate = strategy.aggregate(serverRound, global, uploads);
      aggregates.push(aggregate);
      const teachers: RepresentationArrays = Object.fromEntries(
        (Object.entries(aggregate.teachers) as [Modality, { teacher: Float32Array }][]).map(([m, t]) => [m, t.teacher]),
      );
      await server.trainStep({ batch: publicBatch, teachers });
    }
  } finally {
    tf.dispose(Object.values(publicBatch) as tf.Tensor[]);
    server.dispose();
    participants.forEach((p) => p.client.dispose());
  }
  return aggregates;
}

describe('a FedAFD federation over the wire with SED', () => {
  it("carries the server's encoders and representations to every client kind, and their validated uploads into SED's teachers", async () => {
    // Act
    const aggregates = await federate(2);
    // Assert: no upload refused; image from the image classifier, the pair client and the noise client, text from two.
    for (const a of aggregates) {
      expect(a.rejected).toEqual([]);
      expect(a.teachers.image!.clientIds).toEqual(['image', 'pairs', 'noise']);
      expect(a.teachers.text!.clientIds).toEqual(['text', 'pairs']);
      expect(a.teachers.image!.teacher).toHaveLength(B * TINY.dim);
      // SED's weights of each public sample sum to 1 over the clients holding the modality.
      for (let i = 0; i < B; i++) expect(a.teachers.image!.weights.reduce((sum, w) => sum + w[i]!, 0)).toBeCloseTo(1, 6);
      expect(a.clients.map((c: ClientRepresentationWeight) => c.clientId)).toEqual(['image', 'text', 'pairs', 'noise']);
      expect(Number.isFinite(a.teachers.image!.loss)).toBe(true);
    }
  }, 60_000);
});
