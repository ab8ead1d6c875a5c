/**
 * The task's model options travel from the task file to every client's training: `model.modalWeight`
 * switches FedMM-X's L_modal off or on in local training (seen in the clients' reported
 * `trainModalLoss`), `model.modalLoss` picks its variant and `model.interpretabilityWeight` turns L_intp
 * on (seen in `trainInterpretabilityLoss`), `model.head` picks the linear head, which a client refuses to train when the
 * global model it is sent holds the other head, and `model.adapterAlpha` sets the LoRA scale of the
 * model every client builds. Real coordinator on port 0, real sockets.
 */
import * as tf from '@tensorflow/tfjs';
import type { ChorusClient, ClientEvent, ModelFactory, ModelRequest } from '@chorus/client';
import { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import type { Tensor } from '@chorus/fl-core';
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

function makeTask(model: Record<string, unknown>): TaskConfig {
  return parseTask({
    id: 'model-options',
    dataset: { name: 'digits', modalities: ['image', 'text'] },
    model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4, ...model },
    strategy: { name: 'fedavg' },
    rounds: 1,
    clientsPerRound: 2,
    minClients: 2,
    overSelection: 0,
    roundDeadlineMs: 30_000,
    waitingRoomMs: 100,
    localEpochs: 1,
    batchSize: 16,
    learningRate: 0.02,
    maxUpdateBytes: 1 << 20,
    seed: 2,
    evaluation: { probeExamples: 16, testExamples: 0 },
  });
}

/** Starts `task` from `initial` with two clients holding image and text (models from `factory`); resolves once they joined. */
async function launch(
  task: TaskConfig,
  initial: Tensor[],
  factory: ModelFactory = models,
): Promise<{ store: MemoryStore; clients: ChorusClient[]; events: ClientEvent[] }> {
  const store = new MemoryStore();
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: TOKEN, initialGlobal: () => initial }],
    store,
    logger: silent,
    processMetrics: false,
    retryDelayMs: 50,
  });
  open.coordinators.push(coordinator);
  const headless = await createHeadlessClients({
    url: coordinator.url,
    taskId: task.id,
    token: TOKEN,
    models: factory,
    backend: tf.getBackend(),
    dataset: 'digits',
    numClients: 2,
    scheme: 'iid',
    modalities: task.dataset.modalities,
    maxExamplesPerClient: 32,
    seed: 5,
    client: { evalExamples: 0 },
  });
  const clients = headless.map((c) => c.client);
  open.clients.push(...clients);
  const events: ClientEvent[] = [];
  for (const client of clients) client.on((e) => events.push(e));
  await Promise.all(clients.map((c) => c.start()));
  return { store, clients, events };
}

/** Runs `task` to its end; returns its only round's metrics. */
async function runToEnd(task: TaskConfig): Promise<Readonly<Record<string, number>>> {
  const { store, clients } = await launch(task, await initialGlobalOf(task, models));
  await Promise.all(clients.map((c) => c.finished()));
  return store.listMetrics(task.id)[0]?.metrics ?? {};
}

/** `inner`, recording each request's α and the LoRA scales of the model built for it. */
function recording(inner: ModelFactory): { factory: ModelFactory; built: { request: ModelRequest; scalings: number[] }[] } {
  const built: { request: ModelRequest; scalings: number[] }[] = [];
  const factory: ModelFactory = {
    modalities: inner.modalities,
    async create(request) {
      const model = await inner.create(request);
      built.push({ request, scalings: [...new Set(model.loraLayers().map(({ layer }) => layer.scaling))] });
      return model;
    },
    // The inner factory is shared by the whole file and disposed after it.
    dispose: () => undefined,
  };
  return { factory, built };
}

describe('model options from the task file', () => {
  it('modalWeight 0 trains with L_modal off, the default 0.1 with it on; the linear head trains', async () => {
    // Arrange
    const off = makeTask({ modalWeight: 0, head: 'linear' });
    const on = makeTask({});
    // Act
    const offMetrics = await runToEnd(off);
    const onMetrics = await runToEnd(on);
    // Assert
    expect(offMetrics['numAccepted']).toBe(2);
    expect(offMetrics['client.trainModalLoss']).toBe(0);
    expect(offMetrics['client.trainLoss']).toBeGreaterThan(0);
    expect(onMetrics['numAccepted']).toBe(2);
    expect(onMetrics['client.trainModalLoss']).toBeGreaterThan(0);
    expect(onMetrics['client.trainInterpretabilityLoss']).toBe(0);
  });

  it('interpretabilityWeight turns L_intp on in every client and modalLoss picks its L_modal variant', async () => {
    // Arrange
    const js = makeTask({ modalWeight: 0.5 });
    const distill = makeTask({ modalWeight: 0.5, modalLoss: 'distill', interpretabilityWeight: 0.1 });
    // Act
    const jsMetrics = await runToEnd(js);
    const distillMetrics = await runToEnd(distill);
    // Assert: same data, seeds and global model, so only the loss options differ.
    expect(distillMetrics['numAccepted']).toBe(2);
    expect(distillMetrics['client.trainInterpretabilityLoss']).toBeGreaterThan(0);
    expect(distillMetrics['client.trainModalLoss']).toBeGreaterThan(0);
    expect(distillMetrics['client.trainModalLoss']).not.toBeCloseTo(jsMetrics['client.trainModalLoss']!, 4);
    expect(jsMetrics['client.trainInterpretabilityLoss']).toBe(0);
  });

  it('adapterAlpha reaches every client through the round config: α 16 at rank 2 trains with LoRA scale 8', async () => {
    // Arrange: the headless factory's own default is α 8 (scale 4), so only the round config can give 16.
    const task = makeTask({ adapterAlpha: 16 });
    const { factory, built } = recording(models);
    const { store, clients } = await launch(task, await initialGlobalOf(task, models), factory);
    // Act
    await Promise.all(clients.map((c) => c.finished()));
    // Assert
    expect(store.listMetrics(task.id)[0]?.metrics['numAccepted']).toBe(2);
    expect(built.length).toBe(2);
    expect(built.map((b) => b.request.adapterAlpha)).toEqual([16, 16]);
    expect(built.map((b) => b.scalings)).toEqual([[8], [8]]);
  });

  it('a client refuses a round whose head differs from the global model’s', async () => {
    // Arrange: the task says linear, the coordinator sends NAM adapters.
    const task = makeTask({ head: 'linear' });
    const namGlobal = await initialGlobalOf(makeTask({}), models);
    // Act
    const { events } = await launch(task, namGlobal);
    const refused = await waitFor(events, (e) => e.type === 'error' && e.code === 'CLIENT_MODEL_MISMATCH');
    // Assert
    expect(refused).toMatchObject({ type: 'error', code: 'CLIENT_MODEL_MISMATCH', fatal: false });
    expect(events.some((e) => e.type === 'train')).toBe(false);
  });
});

async function waitFor(events: readonly ClientEvent[], match: (e: ClientEvent) => boolean): Promise<ClientEvent> {
  for (let i = 0; i < 400; i++) {
    const hit = events.find(match);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the event never came');
}
