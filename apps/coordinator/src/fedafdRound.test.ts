/**
 * FedAFD as a second round kind on the same coordinator ("FedAFD: Multimodal Federated Learning
 * via Adversarial Fusion and Distillation"): a real coordinator on port 0 with its evaluator
 * process running the server model, real sockets, and tiny sizes (D = 32, a public batch of 16).
 *
 *  - Four headless clients, one of each kind (image classifier, text classifier, image–text and
 *    audio–text retrieval), run a 2-round FedAFD task on `digits` whose server encodes image, text
 *    and audio to the end: the server's R@1 both ways (image↔text and audio↔text) and rsum, the
 *    bytes and the per-kind client metrics are stored with each round, and SED's weights give every
 *    client a trust value.
 *  - A baseline on the same machinery (FedMD: example-count weights on the server, local distillation
 *    toward the global representations on the clients) runs a round with three kinds (image and text).
 *    The admin API exports the server model (its encoders' weights by name) to the admin only.
 *  - Malformed representation uploads (a wrong shape, a modality the sender does not hold, NaN) are
 *    refused with their codes and change nothing: only the one valid upload is aggregated.
 */
import { crc32, encodeUpdate, readPublicRepresentations } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import type { HeadlessClient } from '@chorus/client/node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from './server.js';
import type { Coordinator } from './server.js';
import { MemoryStore } from './store/memoryStore.js';
import { parseTask } from './task/loadTask.js';
import { FakeClient, globalOf } from './testing/fakeClient.js';

const B = 16;
const D = 32;

const common = {
  dataset: { name: 'digits', modalities: ['image', 'text'] },
  strategy: { name: 'fedafd' },
  representation: {
    dim: D,
    publicBatch: B,
    server: { hiddenUnits: 16, imageFilters: [4, 8], textFilters: 16, learningRate: 0.01 },
    clientKinds: [
      { kind: 'image-classifier', arch: 'cnn', share: 0.34 },
      { kind: 'text-classifier', arch: 'bag-mlp', share: 0.33 },
      { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.33 },
    ],
  },
  evaluation: { testExamples: 32 },
  overSelection: 0,
  roundDeadlineMs: 60_000,
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.01,
  maxUpdateBytes: 200_000,
  admission: { proofOfWorkBits: 0, probationRounds: 0, newIdentitiesPerAddress: null },
};

// The federation's server also encodes audio, and its mix holds every client kind.
const allKinds = {
  ...common,
  dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
  representation: {
    ...common.representation,
    server: { ...common.representation.server, audioFilters: [4, 8] },
    clientKinds: [
      { kind: 'image-classifier', arch: 'cnn', share: 0.25 },
      { kind: 'text-classifier', arch: 'bag-mlp', share: 0.25 },
      { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.25 },
      { kind: 'audio-text-retrieval', arch: 'pool-mlp+conv1d', share: 0.25 },
    ],
  },
};
const federation = parseTask({ ...allKinds, id: 'fedafd', rounds: 2, clientsPerRound: 4, minClients: 4, seed: 3 });
const baseline = parseTask({ ...common, id: 'fedmd', strategy: { name: 'fedmd' }, rounds: 1, clientsPerRound: 3, minClients: 3, seed: 5 });
const refusals = parseTask({ ...common, id: 'fedafd-refusals', rounds: 1, clientsPerRound: 4, minClients: 1, waitingRoomMs: 60_000, seed: 4 });

let coordinator: Coordinator;
let store: MemoryStore;

beforeAll(async () => {
  store = new MemoryStore();
  coordinator = await startCoordinator({
    tasks: [
      { config: federation, joinToken: 'join-secret' },
      { config: baseline, joinToken: 'join-secret' },
      { config: refusals, joinToken: 'join-secret' },
    ],
    store,
    adminToken: 'admin-secret',
    logger: pino({ level: 'silent' }),
    processMetrics: false,
  });
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
  store?.close();
});

describe('a FedAFD task with headless clients of all four kinds, and a baseline of its family', () => {
  let clients: HeadlessClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.client.close()));
  });

  it.concurrent(
    'runs 2 rounds to the end, storing the server R@1 and rsum, bytes, per-kind metrics and a trust value per client',
    async () => {
      // Arrange
      const backend = await useNodeBackend('wasm');
      clients = await createHeadlessClients({
        url: coordinator.url,
        taskId: 'fedafd',
        token: 'join-secret',
        models: createNodeDigitsFactory(),
        backend,
        dataset: 'digits',
        numClients: 4,
        scheme: 'iid',
        maxExamplesPerClient: 16,
        seed: 3,
        fedafd: {
          kinds: federation.representation!.clientKinds as never,
          spec: { hiddenUnits: 16, filters: [4, 8], fusionGroups: 4, discriminatorHiddenUnits: 16, learningRate: 0.01 },
        },
        client: { evalExamples: 16 },
      });
      // Act
      await Promise.all(clients.map((c) => c.client.start()));
      const outcomes = await Promise.all(clients.map((c) => c.client.finished()));
      // Assert: every client saw the task finish after 2 rounds.
      expect(clients.map((c) => c.shard.modalities.join('+')).sort()).toEqual(['audio+text', 'image', 'image+text', 'text']);
      for (const o of outcomes) expect(o.kind === 'task-end' && o.taskEnd.status === 'finished' && o.taskEnd.completedRounds === 2).toBe(true);
      // Each round on its first attempt: the client whose hello fills a round hears the round start
      // before its hello's acknowledgement, and still uploads within the round (no retry at the deadline).
      expect(store.listRounds('fedafd').map((r) => [r.serverRound, r.attempt, r.status])).toEqual([
        [1, 1, 'completed'],
        [2, 1, 'completed'],
      ]);
      const metrics = store.listMetrics('fedafd');
      expect(metrics.map((m) => m.serverRound)).toEqual([1, 2]);
      for (const { metrics: m } of metrics) {
        // The dashboard charts server.i2tR1, server.t2iR1 and server.rsum; audio↔text is stored beside them.
        const retrieval = ['server.i2tR1', 'server.t2iR1', 'server.rsum', 'server.a2tR1', 'server.t2aR1', 'server.audioRsum'];
        for (const key of [...retrieval, 'server.distillationLoss', 'strategy.loss', 'bytesIn', 'bytesOut']) expect(m[key], key).toBeTypeOf('number');
        for (const key of retrieval) expect(m[key], key).toBeGreaterThanOrEqual(0);
        expect(m['server.rsum']).toBeLessThanOrEqual(600);
        expect(m['server.audioRsum']).toBeLessThanOrEqual(600);
        expect(m['server.teachers']).toBe(3);
        expect(m['numAccepted']).toBe(4);
        // Per client kind (its upload's modalities): the classifiers' accuracy, the retrieval client's recall.
        expect(m['kind.image.accuracy']).toBeGreaterThanOrEqual(0);
        expect(m['kind.text.accuracy']).toBeGreaterThanOrEqual(0);
        expect(m['kind.image+text.rsum']).toBeGreaterThanOrEqual(0);
        expect(m['kind.image+text.clients']).toBe(1);
        expect(m['kind.text+audio.rsum']).toBeGreaterThanOrEqual(0);
        expect(m['kind.text+audio.clients']).toBe(1);
        // FedAFD's clients align adversarially and fuse; they do not distil locally (the baselines do).
        expect(m['client.distillationLoss'] ?? 0).toBe(0);
      }
      // The admin API exports the server model of the last global: its encoders' weights by name, byte for byte.
      const admin = { authorization: 'Bearer admin-secret' };
      const exportUrl = `${coordinator.url}/api/tasks/fedafd/export/model`;
      const modelJson = (await (await fetch(`${exportUrl}/model.json`, { headers: admin })).json()) as {
        format: string;
        weightsManifest: { weights: { name: string; shape: number[] }[] }[];
      };
      const weightsBin = new Uint8Array(await (await fetch(`${exportUrl}/weights.bin`, { headers: admin })).arrayBuffer());
      const serverWeights = coordinator.engines.get('fedafd')!.globalParameters.filter((t) => !t.name.startsWith('public/'));
      expect(modelJson.format).toBe('chorus-fedafd-server');
      expect(modelJson.weightsManifest[0]!.weights.map((w) => w.name)).toEqual(serverWeights.map((t) => t.name));
      const concatenated = new Float32Array(serverWeights.reduce((n, t) => n + t.values.length, 0));
      serverWeights.reduce((offset, t) => (concatenated.set(t.values, offset), offset + t.values.length), 0);
      expect(weightsBin).toEqual(new Uint8Array(concatenated.buffer));
      // A stranger, a volunteer's join token, and the adapters a representation task does not have: coded refusals.
      const stranger = await fetch(`${exportUrl}/weights.bin`);
      const volunteer = await fetch(`${exportUrl}/model.json`, { headers: { authorization: 'Bearer join-secret' } });
      const adapters = await fetch(`${coordinator.url}/api/tasks/fedafd/export/adapters/model.json`, { headers: admin });
      expect([stranger.status, ((await stranger.json()) as { error: { code: string } }).error.code]).toEqual([401, 'AUTH_REQUIRED']);
      expect([volunteer.status, ((await volunteer.json()) as { error: { code: string } }).error.code]).toEqual([403, 'AUTH_INVALID']);
      expect([adapters.status, ((await adapters.json()) as { error: { code: string } }).error.code]).toEqual([404, 'NO_MODEL']);
      const trust = store.listTrust('fedafd');
      const ids = clients.map((c) => c.client.clientId!).sort();
      for (const round of [1, 2]) {
        const scores = trust.filter((t) => t.serverRound === round);
        expect(scores.map((t) => t.clientId).sort()).toEqual(ids);
        for (const s of scores) expect(s.trust).toBeGreaterThan(0);
      }
    },
    240_000,
  );

  // Runs beside the FedAFD task (its own task on the same coordinator): the two overlap their waits.
  it.concurrent(
    'FedMD runs a round with clients of three kinds distilling locally, weighted by example counts',
    async () => {
      // Arrange
      const backend = await useNodeBackend('wasm');
      const clients = await createHeadlessClients({
        url: coordinator.url,
        taskId: 'fedmd',
        token: 'join-secret',
        models: createNodeDigitsFactory(),
        backend,
        dataset: 'digits',
        numClients: 3,
        scheme: 'iid',
        maxExamplesPerClient: 16,
        seed: 5,
        fedafd: {
          kinds: baseline.representation!.clientKinds as never,
          spec: { hiddenUnits: 16, filters: [4, 8], fusionGroups: 4, discriminatorHiddenUnits: 16, learningRate: 0.01 },
        },
        client: { evalExamples: 8 },
      });
      try {
        // Act
        await Promise.all(clients.map((c) => c.client.start()));
        const outcomes = await Promise.all(clients.map((c) => c.client.finished()));
        // Assert
        for (const o of outcomes) expect(o.kind === 'task-end' && o.taskEnd.status === 'finished').toBe(true);
        expect(store.listRounds('fedmd').map((r) => [r.serverRound, r.attempt, r.status])).toEqual([[1, 1, 'completed']]);
        const [round] = store.listMetrics('fedmd');
        expect(round!.metrics['numAccepted']).toBe(3);
        expect(round!.metrics['server.rsum']).toBeTypeOf('number');
        // The clients' local distillation toward the global representations ran (FedAFD's own clients report 0).
        expect(round!.metrics['client.distillationLoss']).toBeGreaterThan(0);
      } finally {
        await Promise.all(clients.map((c) => c.client.close()));
      }
    },
    240_000,
  );
});

describe('malformed representation uploads', () => {
  it('are refused with their codes and change nothing: only the valid upload is aggregated', async () => {
    // Arrange: four clients join; the round opens when all four wait.
    const holds = [['image'], ['text'], ['image'], ['image']] as const;
    const fakes: FakeClient[] = [];
    try {
      for (const modalities of holds) {
        const c = await FakeClient.connect(coordinator.url, { taskId: 'fedafd-refusals', token: 'join-secret' });
        fakes.push(c);
        expect((await c.hello({ backend: 'test', modalities: [...modalities], numExamples: 10 })).ok).toBe(true);
      }
      const starts = await Promise.all(fakes.map((c) => c.roundStarts.next(60_000, 'round 1')));
      const start = starts[0]!;
      const section = start.config.representation!;
      expect(section.publicIndices).toHaveLength(B);
      expect(section.dim).toBe(D);
      const { global } = readPublicRepresentations(globalOf(start), B, D);
      expect(Object.keys(global.representations).sort()).toEqual(['image', 'text']);
      const hashBefore = coordinator.engines.get('fedafd-refusals')!.globalHash;
      const rows = (n: number, d: number, fill?: number): Float32Array =>
        Float32Array.from({ length: n * d }, (_, i) => fill ?? Math.sin(i * 0.37 + 1) / Math.sqrt(d));
      const upload = (i: number, tensors: Tensor[]) =>
        fakes[i]!.submitBytes(
          starts[i]!,
          encodeUpdate({ kind: 'representations', taskId: 'fedafd-refusals', round: 1, clientId: fakes[i]!.clientId!, encoding: 'fp16', tensors }),
        );
      // Act
      const wrongShape = await upload(0, [{ name: 'rep/image', shape: [B, D - 1], values: rows(B, D - 1) }]);
      const foreign = await upload(1, [{ name: 'rep/image', shape: [B, D], values: rows(B, D) }]);
      // The codec refuses to encode NaN: mark a value, encode, then write NaN over it and fix the checksum.
      const marked = rows(B, D);
      marked[5] = 1234.5;
      const nanBytes = encodeUpdate({
        kind: 'representations',
        taskId: 'fedafd-refusals',
        round: 1,
        clientId: fakes[2]!.clientId!,
        encoding: 'fp32',
        tensors: [{ name: 'rep/image', shape: [B, D], values: marked }],
      });
      const view = new DataView(nanBytes.buffer, nanBytes.byteOffset, nanBytes.byteLength);
      for (let i = 0; i + 4 <= nanBytes.length; i++) if (view.getFloat32(i, true) === 1234.5) view.setFloat32(i, Number.NaN, true);
      view.setUint32(nanBytes.length - 4, crc32(nanBytes.subarray(0, nanBytes.length - 4)), true);
      const notFinite = await fakes[2]!.submitBytes(starts[2]!, nanBytes);
      const hashAfterRefusals = coordinator.engines.get('fedafd-refusals')!.globalHash;
      const valid = await upload(3, [{ name: 'rep/image', shape: [B, D], values: rows(B, D) }]);
      const end = await fakes[3]!.roundEnds.next(60_000, 'round 1 end');
      // Assert
      expect(wrongShape).toMatchObject({ ok: false, error: { code: 'UPDATE_SHAPE' } });
      expect(foreign).toMatchObject({ ok: false, error: { code: 'UPDATE_SHAPE' } });
      expect(notFinite).toMatchObject({ ok: false, error: { code: 'UPDATE_NON_FINITE' } });
      expect(valid.ok).toBe(true);
      expect(hashAfterRefusals).toBe(hashBefore);
      expect(end.status).toBe('completed');
      const [round] = store.listMetrics('fedafd-refusals');
      expect(round!.metrics['numAccepted']).toBe(1);
      expect(round!.metrics['numRejected']).toBe(3);
      expect(store.listTrust('fedafd-refusals').map((t) => t.clientId)).toEqual([fakes[3]!.clientId]);
      const refused = store.listUpdates('fedafd-refusals', 1).filter((u) => u.status === 'rejected');
      expect(refused.map((u) => u.code).sort()).toEqual(['UPDATE_NON_FINITE', 'UPDATE_SHAPE', 'UPDATE_SHAPE']);
    } finally {
      for (const c of fakes) c.close();
    }
  }, 120_000);
});
