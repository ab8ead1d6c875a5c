/**
 * A split task (FedUMM's device–edge split) on the real coordinator, its evaluator process holding
 * the edge, with scripted clients over real sockets: the step exchange, its refusals (malformed
 * activations, steps out of order, a backward without its forward, uploads touching the edge), a
 * client vanishing mid-step, and the committed global carrying the edge's trained weights.
 */
import { SPLIT_TENSORS, createRng, decodeSplitPayload, encodeSplitPayload, encodeUpdate, groupOf, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { Ack, ParsedRoundStart, SplitStepPayload, SplitStepResult } from '@chorus/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from './server.js';
import type { Coordinator } from './server.js';
import { MemoryStore } from './store/memoryStore.js';
import { parseTask } from './task/loadTask.js';
import { FakeClient, globalOf } from './testing/fakeClient.js';
import { SPLIT_MODALITIES, splitHeadlessClients, splitTestTask } from './testing/splitFixture.js';

const MODALITIES = SPLIT_MODALITIES;
const task = splitTestTask();
const CONCEPTS = task.model.namConcepts;
const FUSED = task.split!.fusedDim;

type Half = 'splitForward' | 'splitBackward';

function send(client: FakeClient, half: Half, round: ParsedRoundStart, step: number, batchSize: number, payload: Uint8Array): Promise<Ack<SplitStepResult>> {
  const message: SplitStepPayload = {
    type: half === 'splitForward' ? 'split-forward' : 'split-backward',
    protocolVersion: PROTOCOL_VERSION,
    taskId: round.taskId,
    roundId: round.roundId,
    step,
    batchSize,
    payload,
  };
  return client.socket.timeout(30_000).emitWithAck(half, message);
}

/** A client's tokens for `step` (any values: the edge cannot tell them from a real encoder's). */
function tokensPayload(
  client: FakeClient,
  step: number,
  batchSize: number,
  seed: number,
  shape: number[] = [batchSize, MODALITIES.length, CONCEPTS],
): Uint8Array {
  const rng = createRng(seed);
  const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng() * 2 - 1);
  return encodeSplitPayload({
    taskId: task.id,
    clientId: client.clientId!,
    step,
    encoding: 'fp32',
    tensors: [
      tensor(SPLIT_TENSORS.tokens, shape, values),
      tensor(SPLIT_TENSORS.mask, [shape[0]!, MODALITIES.length], new Float32Array(shape[0]! * MODALITIES.length).fill(1)),
    ],
  });
}

function gradientPayload(client: FakeClient, step: number, batchSize: number): Uint8Array {
  const values = Float32Array.from({ length: batchSize * FUSED }, (_, i) => ((i % 5) - 2) / 10);
  return encodeSplitPayload({
    taskId: task.id,
    clientId: client.clientId!,
    step,
    encoding: 'fp32',
    tensors: [tensor(SPLIT_TENSORS.fusedGrad, [batchSize, FUSED], values)],
  });
}

const edgeOf = (ts: readonly Tensor[]): Tensor[] => ts.filter((t) => groupOf(t.name) === 'edge');
const deviceOf = (ts: readonly Tensor[]): Tensor[] => ts.filter((t) => groupOf(t.name) !== 'edge');

let coordinator: Coordinator;
let store: MemoryStore;
let a: FakeClient;
let b: FakeClient;

beforeAll(async () => {
  store = new MemoryStore();
  coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: 'join' }],
    store,
    adminToken: 'admin',
    logger: pino({ level: 'silent' }),
    processMetrics: false,
  });
  a = await FakeClient.connect(coordinator.url, { taskId: task.id, token: 'join' });
  b = await FakeClient.connect(coordinator.url, { taskId: task.id, token: 'join' });
  for (const c of [a, b]) expect((await c.hello({ backend: 'test', modalities: [...MODALITIES], numExamples: 16 })).ok).toBe(true);
}, 120_000);

afterAll(async () => {
  a?.close();
  b?.close();
  await coordinator?.close();
});

describe('a split task on the coordinator', () => {
  it('exchanges steps with its clients, refuses bad ones, survives a client vanishing mid-step, and commits the edge it trained', async () => {
    // Arrange: both clients are invited to round 1, whose global carries the device tensors and the edge.
    const [roundA, roundB] = await Promise.all([a.roundStarts.next(60_000, 'round 1 at A'), b.roundStarts.next(60_000, 'round 1 at B')]);
    const global0 = globalOf(roundA);
    expect(roundA.config.split).toMatchObject({ fusedDim: FUSED, returnEncoding: 'fp32' });
    expect(edgeOf(global0).length).toBeGreaterThan(0);
    expect(global0.map((t) => t.name)).toContain('fusion/split_head/kernel');
    const batch = 4;

    // Act 1: refusals before any accepted step, each leaving the client at step 0 forward.
    const backwardFirst = await send(a, 'splitBackward', roundA, 0, batch, gradientPayload(a, 0, batch));
    const wrongShape = await send(a, 'splitForward', roundA, 0, batch, tokensPayload(a, 0, batch, 1, [batch, MODALITIES.length, CONCEPTS - 1]));
    const corrupted = tokensPayload(a, 0, batch, 1);
    corrupted[corrupted.length - 6]! ^= 0xff;
    const corrupt = await send(a, 'splitForward', roundA, 0, batch, corrupted);
    const otherClient = await send(a, 'splitForward', roundA, 0, batch, tokensPayload(b, 0, batch, 1));
    const skipped = await send(a, 'splitForward', roundA, 1, batch, tokensPayload(a, 1, batch, 1));
    const otherRound = await send(a, 'splitForward', { ...roundA, roundId: `${roundA.roundId}x` }, 0, batch, tokensPayload(a, 0, batch, 1));

    // Act 2: a whole step from A; B sends a forward, then vanishes before its backward.
    const forward = await send(a, 'splitForward', roundA, 0, batch, tokensPayload(a, 0, batch, 1));
    const again = await send(a, 'splitForward', roundA, 0, batch, tokensPayload(a, 0, batch, 1));
    const backward = await send(a, 'splitBackward', roundA, 0, batch, gradientPayload(a, 0, batch));
    const vanishing = await send(b, 'splitForward', roundB, 0, batch, tokensPayload(b, 0, batch, 2));
    b.close();

    // Act 3: A uploads its device delta; in round 2, an upload touching the edge.
    const zeros = (ts: readonly Tensor[]): Tensor[] => ts.map((t) => ({ name: t.name, shape: [...t.shape], values: new Float32Array(t.values.length) }));
    const upload = await a.submitDelta(roundA, zeros(deviceOf(global0)), 16);
    const round2 = await a.roundStarts.next(60_000, 'round 2');
    const global1 = globalOf(round2);
    const touchingEdge = await a.submitBytes(
      round2,
      encodeUpdate({ kind: 'delta', taskId: task.id, round: 2, clientId: a.clientId!, encoding: 'fp32', tensors: zeros(global1) }),
    );

    // Assert: refusals carry their codes.
    expect(backwardFirst).toMatchObject({ ok: false, error: { code: 'SPLIT_STEP' } });
    expect(wrongShape).toMatchObject({ ok: false, error: { code: 'UPDATE_SHAPE' } });
    expect(corrupt).toMatchObject({ ok: false, error: { code: 'UPDATE_MALFORMED' } });
    expect(otherClient).toMatchObject({ ok: false, error: { code: 'UPDATE_MALFORMED' } });
    expect(skipped).toMatchObject({ ok: false, error: { code: 'SPLIT_STEP' } });
    expect(otherRound).toMatchObject({ ok: false, error: { code: 'ROUND_CLOSED' } });
    expect(again).toMatchObject({ ok: false, error: { code: 'SPLIT_STEP' } });
    expect(touchingEdge).toMatchObject({ ok: false, error: { code: 'UPDATE_SHAPE' } });
    // The accepted halves answer with the edge's tensors, in this client's session and step.
    expect([forward.ok, vanishing.ok, backward.ok, upload.ok]).toEqual([true, true, true, true]);
    const expect0 = (name: string, shape: number[]) => ({ taskId: task.id, clientId: a.clientId!, step: 0, maxBytes: 1 << 20, tensors: [{ name, shape }] });
    const fused = decodeSplitPayload((forward as { payload: Uint8Array }).payload, expect0(SPLIT_TENSORS.fused, [batch, FUSED])).get(SPLIT_TENSORS.fused)!;
    const tokensGrad = decodeSplitPayload(
      (backward as { payload: Uint8Array }).payload,
      expect0(SPLIT_TENSORS.tokensGrad, [batch, MODALITIES.length, CONCEPTS]),
    ).get(SPLIT_TENSORS.tokensGrad)!;
    expect(fused.every(Number.isFinite) && tokensGrad.some((v) => v !== 0)).toBe(true);
    // The round committed without B (gone mid-step): the device groups are A's zero delta applied,
    // the edge group is what A's one step trained, and nothing else moved.
    expect(round2.serverRound).toBe(2);
    const byName = new Map(global1.map((t) => [t.name, t]));
    for (const t of deviceOf(global0)) expect(byName.get(t.name)!.values).toEqual(t.values);
    const moved = edgeOf(global0).filter((t) => byName.get(t.name)!.values.some((v, i) => v !== t.values[i]));
    expect(moved.length).toBeGreaterThan(0);
    const metrics = store.listMetrics(task.id).find((r) => r.serverRound === 1)!.metrics;
    expect(metrics['eval.accuracy']).toBeGreaterThanOrEqual(0);
    expect(metrics['eval.local.accuracy']).toBeGreaterThanOrEqual(0);
    // The interface's accountant: no noise in this task, so no finite ε, only its δ.
    expect(metrics['split.delta']).toBe(1e-5);
    expect(metrics['split.epsilonActivations']).toBeUndefined();
  }, 180_000);
});

describe('a split task with headless clients', () => {
  it('runs every round through the edge with the client runtime, each client filling the round the moment it says hello', async () => {
    // Arrange: a split task whose round starts the instant the second client says hello (no waiting
    // room), so a round start can reach that client before its hello's acknowledgement.
    const headlessTask = parseTask({ ...task, id: 'split-headless', minClients: 2, waitingRoomMs: 0, maxRoundAttempts: 1, roundDeadlineMs: 120_000 });
    const headlessStore = new MemoryStore();
    const node = await startCoordinator({
      tasks: [{ config: headlessTask, joinToken: 'join' }],
      store: headlessStore,
      adminToken: 'admin',
      logger: pino({ level: 'silent' }),
      processMetrics: false,
    });
    const clients = await splitHeadlessClients(node.url, headlessTask.id, 'join');
    try {
      // Act
      const outcomes = await clients.runToTheEnd();

      // Assert: both rounds committed on the first attempt (maxRoundAttempts 1), with the edge trained and evaluated.
      expect(outcomes.map((o) => o.kind)).toEqual(['task-end', 'task-end']);
      expect(headlessStore.listRounds(headlessTask.id).map((r) => [r.serverRound, r.attempt, r.status])).toEqual([
        [1, 1, 'completed'],
        [2, 1, 'completed'],
      ]);
      const metrics = headlessStore.listMetrics(headlessTask.id).map((m) => m.metrics);
      for (const m of metrics) expect(m['eval.accuracy']).toBeGreaterThanOrEqual(0);
      const updates = headlessStore.listUpdates(headlessTask.id).filter((u) => u.status === 'accepted');
      expect(updates).toHaveLength(4);
    } finally {
      await clients.close();
      await node.close();
    }
  }, 300_000);
});
