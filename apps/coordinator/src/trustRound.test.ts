/**
 * A real round with the task's real model: FedMM-X trust computed on the coordinator's probe set,
 * streamed to the admin namespace, stored, and the global model exported as TF.js artifacts.
 */
import * as tf from '@tensorflow/tfjs';
import { dot, sub } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { ADMIN_NAMESPACE, roundCompletedSchema } from '@chorus/protocol';
import type { AdminServerToClientEvents, RoundCompletedPayload } from '@chorus/protocol';
import { pino } from 'pino';
import { io as connectAdmin } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCoordinatorError } from './errors.js';
import { EvaluatorPool } from './model/evaluatorPool.js';
import { EvaluatorProcess } from './model/taskEvaluator.js';
import { TaskModel } from './model/taskModel.js';
import { startCoordinator } from './server.js';
import type { Coordinator } from './server.js';
import { MemoryStore } from './store/memoryStore.js';
import { parseTask } from './task/loadTask.js';
import { FakeClient, globalOf } from './testing/fakeClient.js';

const task = parseTask({
  id: 'demo',
  dataset: { name: 'digits', modalities: ['image', 'text'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedmm-x' },
  evaluation: { probeExamples: 32, testExamples: 32 },
  rounds: 2,
  clientsPerRound: 4,
  minClients: 4,
  overSelection: 0,
  roundDeadlineMs: 30_000,
  localEpochs: 2,
  batchSize: 16,
  learningRate: 0.01,
  maxUpdateBytes: 1_000_000,
  seed: 5,
  // The scripted clients' deltas are parallel (constant values): similarity damping would take them for copies.
  admission: { similarityDamping: false },
});

const flat = (ts: readonly Tensor[]): Float32Array => {
  const out = new Float32Array(ts.reduce((n, t) => n + t.values.length, 0));
  let o = 0;
  for (const t of ts) {
    out.set(t.values, o);
    o += t.values.length;
  }
  return out;
};
const scaled = (ts: readonly Tensor[], k: number): Tensor[] => ts.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map((v) => v * k) }));

/** Another coordinator of the demo task, on a store of its own, with `probeProcesses`. */
const startDemo = (probeProcesses: number): Promise<Coordinator> =>
  startCoordinator({
    tasks: [{ config: task, joinToken: 'join-secret' }],
    store: new MemoryStore(),
    adminToken: 'admin-secret',
    logger: pino({ level: 'silent' }),
    processMetrics: false,
    probeProcesses,
  });

let coordinator: Coordinator;
let store: MemoryStore;
const clients: FakeClient[] = [];
let adminSocket: Socket<AdminServerToClientEvents>;
const streamed: RoundCompletedPayload[] = [];
let honestDelta: Tensor[];
let global0: Tensor[];
let global1: Tensor[];
let roundEnd: { globalHash: string };

beforeAll(async () => {
  store = new MemoryStore();
  coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: 'join-secret' }],
    store,
    adminToken: 'admin-secret',
    logger: pino({ level: 'silent' }),
    processMetrics: false,
  });
  adminSocket = connectAdmin(`${coordinator.url}${ADMIN_NAMESPACE}`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    auth: { adminToken: 'admin-secret' },
  });
  adminSocket.on('roundCompleted', (p) => streamed.push(p));
  await new Promise<void>((resolve, reject) => {
    adminSocket.once('connect', () => resolve());
    adminSocket.once('connect_error', reject);
  });
  for (let i = 0; i < 4; i++) {
    const c = await FakeClient.connect(coordinator.url, { taskId: 'demo', token: 'join-secret' });
    clients.push(c);
    await c.hello({ backend: 'wasm', modalities: ['image', 'text'], numExamples: 32 });
  }
  const starts = await Promise.all(clients.map((c) => c.roundStarts.next(20_000, 'round 1')));
  global0 = globalOf(starts[0]!);
  // An honest update: the global model trained on real examples (public data, as a stand-in for a client's own).
  const trainer = await TaskModel.create(task, { rootExamples: 32 });
  honestDelta = trainer.rootUpdate(global0)!;
  trainer.dispose();
  // Three honest clients (slightly different step sizes) and one that flips the sign of its update.
  const factors = [1, 0.9, 1.1, -1];
  const acks = await Promise.all(clients.map((c, i) => c.submitDelta(starts[i]!, scaled(honestDelta, factors[i]!), 32)));
  expect(acks.every((a) => a.ok)).toBe(true);
  roundEnd = await clients[0]!.roundEnds.next(30_000, 'round 1 end');
  global1 = [...coordinator.engines.get('demo')!.globalParameters];
}, 90_000);

afterAll(async () => {
  adminSocket?.close();
  for (const c of clients) c.close();
  await coordinator?.close();
  store?.close();
});

describe('trust-aware aggregation with the server probe set', () => {
  it('gives the sign-flipping client the lowest T_k and a smaller share of the new model than plain FedAvg would', async () => {
    // Act
    const res = await fetch(`${coordinator.url}/api/tasks/demo/trust`, { headers: { authorization: 'Bearer admin-secret' } });
    const { trust } = (await res.json()) as { trust: { clientId: string; serverRound: number; trust: number }[] };
    // Assert
    const flipped = clients[3]!.clientId!;
    const byClient = new Map(trust.filter((t) => t.serverRound === 1).map((t) => [t.clientId, t.trust]));
    expect(byClient.size).toBe(4);
    const honest = clients.slice(0, 3).map((c) => byClient.get(c.clientId!)!);
    expect(byClient.get(flipped)!).toBeLessThan(Math.min(...honest));
    // Plain FedAvg of (1 + 0.9 + 1.1 − 1)/4 would move the global by 0.5·Δ along the honest update.
    const d = flat(honestDelta);
    const moved = flat(global1);
    const along = dot(sub(moved, moved, flat(global0)), d) / dot(d, d);
    expect(along).toBeGreaterThan(0.6);
  });

  it('stores the probe timing (every candidate probed on arrival) and the new global model evaluation, overall and per modality', () => {
    // Act
    const metrics = store.listMetrics('demo')[0]!.metrics;
    // Assert
    for (const key of ['probeMsPerCandidate', 'eval.accuracy', 'eval.loss', 'eval.image.accuracy', 'eval.text.loss', 'trust.mean', 'evalMs'])
      expect(metrics[key], key).toBeTypeOf('number');
    expect(metrics['probeExamples']).toBe(32);
    // Every candidate was probed as its upload arrived, none left for the round's close.
    expect(metrics['numProbedOnArrival']).toBe(4);
    expect(metrics['eval.accuracy']).toBeGreaterThanOrEqual(0);
    expect(metrics['eval.accuracy']).toBeLessThanOrEqual(1);
  });

  it('streams the committed round with its trust scores to admin sockets and refuses one without the token', async () => {
    // Arrange
    const stranger = connectAdmin(`${coordinator.url}${ADMIN_NAMESPACE}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      auth: { adminToken: 'wrong' },
    });
    // Act
    const refused = await new Promise<string | undefined>((resolve) => {
      stranger.once('connect', () => resolve(undefined));
      stranger.once('connect_error', (err: Error & { data?: { code?: string } }) => resolve(err.data?.code));
    });
    stranger.close();
    // Assert
    expect(refused).toBe('AUTH_INVALID');
    const first = streamed.find((p) => p.serverRound === 1)!;
    expect(roundCompletedSchema.safeParse(first).success).toBe(true);
    expect(first).toMatchObject({ type: 'round-completed', taskId: 'demo', globalHash: roundEnd.globalHash });
    expect(first.trust.map((t) => t.clientId).sort()).toEqual(clients.map((c) => c.clientId!).sort());
  });

  it('exports the merged model so that plain tf.loadLayersModel loads it, and the adapters as they are', async () => {
    // Arrange
    const requestInit = { headers: { authorization: 'Bearer admin-secret' } };
    const before = tf.memory().numTensors;
    // Act
    const model = await tf.loadLayersModel(`${coordinator.url}/api/tasks/demo/export/model/model.json`, { requestInit });
    const out = tf.tidy(() => model.predict(model.inputs.map((i) => tf.zeros([2, ...(i.shape.slice(1) as number[])]))) as tf.Tensor);
    const probs = await out.data();
    const adaptersJson = (await (await fetch(`${coordinator.url}/api/tasks/demo/export/adapters/model.json`, requestInit)).json()) as tf.io.ModelJSON;
    const adapterBytes = await (await fetch(`${coordinator.url}/api/tasks/demo/export/adapters/weights.bin`, requestInit)).arrayBuffer();
    const unauthorized = await fetch(`${coordinator.url}/api/tasks/demo/export/model/model.json`);
    // Assert
    // TF.js suffixes names already used in this process (`image_input_1`), so match the prefix.
    expect(model.inputs.map((i) => `${i.name.replace(/_\d+$/, '')}:${i.shape.slice(1).join('x')}`)).toEqual(['image_input:28x28x1', 'text_input:100']);
    expect(out.shape).toEqual([2, 10]);
    expect([...probs].every(Number.isFinite)).toBe(true);
    const weights = tf.io.decodeWeights(adapterBytes, adaptersJson.weightsManifest[0]!.weights);
    for (const t of global1) expect([...(weights[t.name]!.dataSync() as Float32Array)], t.name).toEqual([...t.values]);
    expect(unauthorized.status).toBe(401);
    tf.dispose([out, ...Object.values(weights)]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('probes in the evaluator process without leaking tensors there', async () => {
    // Arrange: the coordinator's model is served by its evaluator process, which owns the tensors.
    const model = coordinator.models.get('demo')!;
    expect(model).toBeInstanceOf(EvaluatorProcess);
    const evaluator = model as EvaluatorProcess;
    await evaluator.probeRound(global1, []);
    const before = (await evaluator.stats()).numTensors;
    // Act
    const { candidates } = await evaluator.probeRound(global1, [scaled(honestDelta, -1)]);
    // Assert
    expect((await evaluator.stats()).numTensors).toBe(before);
    const outputs = candidates[0]!;
    if (!outputs.ok) throw new Error(`probe failed: ${outputs.error.code}`);
    expect(outputs.probabilities.length).toBe(32 * 10);
    expect(outputs.explanations).toHaveLength(2);
  });

  it('shares the probe between evaluator processes with probeProcesses, with the same outcomes as one process', async () => {
    // Arrange
    const pooled = await startDemo(2);
    try {
      const pool = pooled.models.get('demo')!;
      const deltas = Array.from({ length: 9 }, (_, k) => scaled(honestDelta, 1 - k / 4));
      // Act
      const [a, b] = await Promise.all([pool.probeRound(global1, deltas), coordinator.models.get('demo')!.probeRound(global1, deltas)]);
      // Assert
      expect(pool).toBeInstanceOf(EvaluatorPool);
      expect((pool as EvaluatorPool).size).toBe(2);
      expect([...a.baseline.probabilities]).toEqual([...b.baseline.probabilities]);
      expect(a.candidates.map((o) => (o.ok ? [...o.probabilities] : o.error.code))).toEqual(
        b.candidates.map((o) => (o.ok ? [...o.probabilities] : o.error.code)),
      );
    } finally {
      await pooled.close();
    }
  }, 120_000);

  it('refuses probeProcesses outside [1, 16] with CONFIG_INVALID, starting nothing', async () => {
    const err = await startDemo(0).then(
      (c) => c.close().then(() => null),
      (e: unknown) => e,
    );
    expect(isCoordinatorError(err, 'CONFIG_INVALID')).toBe(true);
  });
});
