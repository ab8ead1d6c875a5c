/**
 * The client runtime against the real coordinator on loopback (real sockets, port 0): learning,
 * clients vanishing mid-round, identity across reconnects and restarts, and refused handshakes.
 * Tasks are small (≤ 64 examples per client, a few steps per round) so each test runs in seconds.
 */
import * as tf from '@tensorflow/tfjs';
import { decodeUpdate } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { ChorusClient, MemoryIdentityStorage, datasetFromSamples, evaluateLocally, isClientError } from '@chorus/client';
import type { ClientEvent, ModelFactory } from '@chorus/client';
import { createHeadlessClients, createNodeDigitsFactory, loadShard, partitionBuiltin, useNodeBackend } from '@chorus/client/node';
import type { HeadlessClient } from '@chorus/client/node';
import { openBuiltin, readManifest } from '@chorus/datasets';
import type { DigitsSample } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import type { Modality } from '@chorus/models';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../server.js';
import type { Coordinator } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { parseTask } from '../task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { initialGlobalOf } from './simulate.js';

const silent = pino({ level: 'silent' });
const TOKEN = 'join-secret';
let models: ModelFactory;
const open: { coordinators: Coordinator[]; clients: ChorusClient[] } = { coordinators: [], clients: [] };

beforeAll(async () => {
  await useNodeBackend('wasm');
  models = createNodeDigitsFactory();
});
afterAll(() => models.dispose());
afterEach(async () => {
  await Promise.all(open.clients.splice(0).map((c) => c.close()));
  for (const c of open.coordinators.splice(0)) await c.close();
});

function makeTask(modalities: Modality[], overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'digits-test',
    dataset: { name: 'digits', modalities },
    model: { base: 'chorus-digits-v1', adapterRank: 4, adapterAlpha: 8, namConcepts: 8 },
    strategy: { name: 'fedavg' },
    rounds: 3,
    clientsPerRound: 8,
    minClients: 4,
    overSelection: 0,
    roundDeadlineMs: 30_000,
    waitingRoomMs: 300,
    localEpochs: 2,
    batchSize: 16,
    learningRate: 0.02,
    uploadEncoding: 'fp16',
    maxUpdateBytes: 1 << 20,
    normBound: 50,
    seed: 3,
    // Every headless client connects from 127.0.0.1: no per-address quota of new identities, and no
    // proof of work, whose cost would race the short waiting room (the identity test below pays it).
    admission: { newIdentitiesPerAddress: null, proofOfWorkBits: 0 },
    evaluation: { probeExamples: 16, testExamples: 0 },
    ...overrides,
  });
}

async function start(task: TaskConfig, store = new MemoryStore()): Promise<{ coordinator: Coordinator; store: MemoryStore }> {
  const initial = await initialGlobalOf(task, models);
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: TOKEN, initialGlobal: () => initial }],
    store,
    logger: silent,
    processMetrics: false,
    retryDelayMs: 50,
  });
  open.coordinators.push(coordinator);
  return { coordinator, store };
}

async function headless(
  coordinator: Coordinator,
  task: TaskConfig,
  numClients: number,
  extra: { maxExamplesPerClient?: number } = {},
): Promise<HeadlessClient[]> {
  const clients = await createHeadlessClients({
    url: coordinator.url,
    taskId: task.id,
    token: TOKEN,
    models,
    backend: tf.getBackend(),
    dataset: 'digits',
    numClients,
    scheme: 'iid',
    modalities: task.dataset.modalities,
    maxExamplesPerClient: extra.maxExamplesPerClient ?? 48,
    seed: 11,
    client: { evalExamples: 16 },
  });
  open.clients.push(...clients.map((c) => c.client));
  return clients;
}

/** Test-split accuracy of a global model, evaluated with packages/models on `n` examples. */
async function testAccuracy(task: TaskConfig, global: Tensor[], n: number): Promise<number> {
  const source = fileSource();
  const split = await openBuiltin(source, await readManifest(source), 'digits', 'test');
  const samples = (await split.read(Array.from({ length: n }, (_, i) => i))) as DigitsSample[];
  const data = await datasetFromSamples(samples, task.dataset.modalities);
  const model = await models.create({
    modalities: task.dataset.modalities,
    numClasses: 10,
    adapterRank: 4,
    namConcepts: 8,
    namHiddenUnits: 8,
    learningRate: 0.01,
    seed: 0,
  });
  try {
    model.setAdapterParameters(global);
    return (
      await evaluateLocally(
        model,
        data,
        Array.from({ length: n }, (_, i) => i),
      )
    ).accuracy;
  } finally {
    model.dispose();
  }
}

const globalOf = (c: Coordinator, taskId: string): Tensor[] => {
  const bytes = c.engines.get(taskId)!.globalBytes;
  return decodeUpdate(bytes, { maxBytes: bytes.byteLength }).tensors;
};

describe('headless clients against the coordinator', () => {
  it('8 clients × 3 rounds on digits raise the global test accuracy, leaking no tensors', async () => {
    // Arrange
    const task = makeTask(['image', 'text']);
    const { coordinator, store } = await start(task);
    const before = await testAccuracy(task, globalOf(coordinator, task.id), 200);
    const clients = await headless(coordinator, task, 8);
    const warm = await models.create({
      modalities: ['image', 'text'],
      numClasses: 10,
      adapterRank: 4,
      namConcepts: 8,
      namHiddenUnits: 8,
      learningRate: 0.01,
      seed: 0,
    });
    warm.dispose();
    const tensorsBefore = tf.memory().numTensors;
    // Act
    await Promise.all(clients.map((c) => c.client.start()));
    const outcomes = await Promise.all(clients.map((c) => c.client.finished()));
    // Assert
    expect(outcomes.every((o) => o.kind === 'task-end' && o.taskEnd.status === 'finished' && o.taskEnd.completedRounds === 3)).toBe(true);
    expect(store.listMetrics(task.id).map((m) => m.metrics['numAccepted'])).toEqual([8, 8, 8]);
    const after = await testAccuracy(task, globalOf(coordinator, task.id), 200);
    expect(after).toBeGreaterThan(before + 0.15);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('completes the task when 30% of the clients vanish mid-round', async () => {
    // Arrange: 10 text clients, all invited every round; 3 close during round 2's training.
    const task = makeTask(['text'], { clientsPerRound: 10, minClients: 5, localEpochs: 1 });
    const { coordinator, store } = await start(task);
    const clients = await headless(coordinator, task, 10, { maxExamplesPerClient: 32 });
    const vanishing = clients.slice(0, 3);
    for (const { client } of vanishing) {
      const off = client.on((e) => {
        if (e.type === 'train' && e.serverRound === 2) {
          off();
          void client.close();
        }
      });
    }
    // Act
    await Promise.all(clients.map((c) => c.client.start()));
    const outcomes = await Promise.all(clients.slice(3).map((c) => c.client.finished()));
    // Assert
    expect(outcomes.every((o) => o.kind === 'task-end' && o.taskEnd.status === 'finished')).toBe(true);
    expect(coordinator.engines.get(task.id)!.snapshot().completedRounds).toBe(3);
    const metrics = store.listMetrics(task.id).map((m) => m.metrics);
    expect(metrics.map((m) => m['numAccepted'])).toEqual([10, 7, 7]);
    expect(metrics[1]!['numDropped']).toBe(3);
  });

  it('keeps its identity across a dropped connection and a restart', async () => {
    // Arrange: the task never starts a round (it needs more clients than join), so only identity is at play.
    // A new identity pays the default proof of work; resuming it pays nothing.
    const task = makeTask(['text'], { clientsPerRound: 4, minClients: 4, admission: { proofOfWorkBits: 12 } });
    const { coordinator, store } = await start(task);
    const [shard] = await partitionBuiltin({ dataset: 'digits', numClients: 1, scheme: 'iid', modalities: ['text'], maxExamplesPerClient: 8, seed: 1 });
    const dataset = await loadShard('digits', shard!);
    const storage = new MemoryIdentityStorage();
    const make = (): ChorusClient => {
      const c = new ChorusClient({ url: coordinator.url, taskId: task.id, token: TOKEN, storage, dataset, models, backend: 'wasm' });
      open.clients.push(c);
      return c;
    };
    const first = make();
    const identities: Extract<ClientEvent, { type: 'identity' }>[] = [];
    first.on((e) => {
      if (e.type === 'identity') identities.push(e);
    });
    const hello = await first.start();
    // Act: the network drops, socket.io reconnects, the runtime says hello with the stored identity.
    const resumed = new Promise<void>((resolve) => first.on((e) => e.type === 'identity' && resolve()));
    first.dropConnection();
    await resumed;
    await first.close();
    const second = make();
    const again = await second.start();
    // Assert
    expect(hello.clientSecret).toBeDefined();
    expect(identities.map((e) => [e.clientId, e.resumed])).toEqual([
      [hello.clientId, false],
      [hello.clientId, true],
    ]);
    expect(again.clientId).toBe(hello.clientId);
    expect(again.clientSecret).toBeUndefined();
    expect(store.listClients(task.id)).toHaveLength(1);
  });

  it('is refused without a join token, or with a wrong one, and leaves no client behind', async () => {
    // Arrange
    const task = makeTask(['text']);
    const { coordinator, store } = await start(task);
    const [shard] = await partitionBuiltin({ dataset: 'digits', numClients: 1, scheme: 'iid', modalities: ['text'], maxExamplesPerClient: 4, seed: 1 });
    const dataset = await loadShard('digits', shard!);
    const attempt = async (token: string | undefined): Promise<unknown> => {
      const c = new ChorusClient({
        url: coordinator.url,
        taskId: task.id,
        ...(token === undefined ? {} : { token }),
        storage: new MemoryIdentityStorage(),
        dataset,
        models,
        backend: 'wasm',
      });
      open.clients.push(c);
      const failed = await c.start().then(
        () => null,
        (err: unknown) => err,
      );
      expect((await c.finished()).kind).toBe('failed');
      return failed;
    };
    // Act
    const noToken = await attempt(undefined);
    const wrongToken = await attempt('not-the-token');
    // Assert
    expect(isClientError(noToken, 'CLIENT_CONNECT_REFUSED') && noToken.protocolCode).toBe('AUTH_REQUIRED');
    expect(isClientError(wrongToken, 'CLIENT_CONNECT_REFUSED') && wrongToken.protocolCode).toBe('AUTH_INVALID');
    expect(store.listClients(task.id)).toHaveLength(0);
  });
});
