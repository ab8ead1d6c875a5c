import * as tf from '@tensorflow/tfjs';
import { groupOf, isFlCoreError } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import type { EdgeFusion, EdgeSteps, SplitLink } from '@chorus/models';
import { ackError, splitRefusalCode, splitStepSchema } from '@chorus/protocol';
import type { ParsedRoundStart, SplitRoundConfig } from '@chorus/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalDataset } from '../dataset.js';
import type { ClientError } from '../errors.js';
import { isClientError } from '../errors.js';
import type { ClientEvent } from '../events.js';
import { runLocalRound } from '../localRound.js';
import type { LocalRoundResult } from '../localRound.js';
import {
  edgeTensors,
  inProcessLink,
  splitRoundStart,
  splitSection,
  tinyEdge,
  tinyEdgeSteps,
  tinySplitData,
  tinySplitFactory,
  tinySplitGlobal,
} from './fixtures.test-util.js';
import { createSplitLink } from './splitLink.js';
import type { SplitStepSender } from './splitLink.js';
import { runSplitRound, splitEpsilonMetrics } from './splitRound.js';

const CLIENT = 'c-1';
const models = tinySplitFactory();
let edge: EdgeFusion;
let steps: EdgeSteps;
let global: Tensor[];
const data = tinySplitData(10, 1);

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
  edge = tinyEdge();
  steps = tinyEdgeSteps(edge);
  global = await tinySplitGlobal(models, edge);
});
afterAll(() => {
  steps.dispose();
  edge.dispose();
  models.dispose();
});

interface Run {
  readonly round: ParsedRoundStart;
  readonly dataset?: LocalDataset;
  readonly link?: SplitLink;
  readonly seed?: number;
  readonly onEvent?: (e: ClientEvent) => void;
  readonly shouldStop?: () => boolean;
}

/** One split round against the in-process edge, opened afresh on the global's edge weights. */
function run(options: Run): Promise<LocalRoundResult | null> {
  steps.open(options.round.roundId, edgeTensors(global));
  return runSplitRound({
    round: options.round,
    clientId: CLIENT,
    link: options.link ?? inProcessLink(steps, options.round.roundId, CLIENT),
    dataset: options.dataset ?? data,
    models,
    seed: options.seed ?? 7,
    behaviour: null,
    evalExamples: 6,
    now: () => 0,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.shouldStop ? { shouldStop: options.shouldStop } : {}),
  });
}

/**
 * Tensors alive once the edge's own state is dropped — its Adam moments and a forward still waiting
 * for its backward, which it keeps until the attempt closes — leaving what a client could leak.
 */
function liveTensors(): number {
  if (steps.openRound) steps.close(steps.openRound);
  edge.resetOptimizer();
  return tf.memory().numTensors;
}

const values = (tensors: readonly Tensor[]): number[][] => tensors.map((t) => Array.from(t.values));
const groups = (tensors: readonly Tensor[]): string[] => [...new Set(tensors.map((t) => groupOf(t.name)))].sort();

async function rejection(p: Promise<unknown>): Promise<ClientError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isClientError(err), String(err)).toBe(true);
  return err as ClientError;
}

describe('runSplitRound through an in-process edge', () => {
  it('uploads the delta of exactly its device groups and fusion (task head included), moves the edge, and replays bit for bit', async () => {
    // Arrange
    const round = await splitRoundStart(global, splitSection());
    const before = liveTensors();
    const events: ClientEvent[] = [];
    // Act
    const first = await run({ round, onEvent: (e) => events.push(e) });
    const edgeAfter = steps.weights();
    const second = await run({ round });
    const after = liveTensors();
    // Assert
    expect(first).not.toBeNull();
    const names = first!.tensors.map((t) => t.name);
    const device = global.filter((t) => groupOf(t.name) !== 'edge').map((t) => t.name);
    expect(names.sort()).toEqual([...device].sort());
    expect(names).toContain('fusion/split_head/kernel');
    expect(names).toContain('fusion/split_head/bias');
    expect(names.some((n) => n.startsWith('edge/'))).toBe(false);
    expect(first!.tensors.some((t) => t.values.some((v) => v !== 0))).toBe(true);
    // The edge trained: some of its weights moved from the global's.
    const moved = edgeAfter.filter((t, i) => t.values.some((v, j) => v !== edgeTensors(global)[i]!.values[j]));
    expect(moved.length).toBeGreaterThan(0);
    // 10 examples in batches of 4 → 3 steps an epoch, 2 epochs.
    const m = first!.metrics;
    expect(m['numSteps']).toBe(6);
    expect(events.filter((e) => e.type === 'train').map((e) => (e.type === 'train' ? [e.epoch, e.batch, e.numBatches] : []))).toEqual([
      [1, 1, 3],
      [1, 2, 3],
      [1, 3, 3],
      [2, 1, 3],
      [2, 2, 3],
      [2, 3, 3],
    ]);
    for (const key of ['trainLoss', 'trainLocalLoss', 'splitTrainAccuracy', 'splitBytesUp', 'splitBytesDown', 'globalAccuracy', 'localAccuracy', 'localLoss'])
      expect(Number.isFinite(m[key]), key).toBe(true);
    expect(Object.values(m).every(Number.isFinite)).toBe(true);
    expect(m['splitBytesUp']).toBeGreaterThan(0);
    expect(m['splitBytesDown']).toBeGreaterThan(0);
    expect(m['trainLoss']).toBeGreaterThan(0);
    // No noise: ε is Infinity and left out.
    expect(m['splitEpsilonActivations']).toBeUndefined();
    expect(m['splitEpsilonGradients']).toBeUndefined();
    expect(values(second!.tensors)).toEqual(values(first!.tensors));
    expect(after).toBe(before);
  });

  it('uploads only the groups of the modalities it holds, and the edge accepts its masked tokens', async () => {
    // Arrange: an image-only client of the image + audio task.
    const round = await splitRoundStart(global, splitSection());
    // Act
    const result = await run({ round, dataset: tinySplitData(10, 2, ['image']) });
    // Assert
    expect(groups(result!.tensors)).toEqual(['fusion', 'image']);
    expect(result!.metrics['numSteps']).toBe(6);
  });

  it('clips the delta inside the round’s norm bound', async () => {
    // Arrange: a bound far below the delta's norm.
    const round = await splitRoundStart(global, splitSection());
    const tight = { ...round, config: { ...round.config, normBound: 1e-3 } };
    // Act
    const result = await run({ round: tight });
    // Assert
    const norm = Math.sqrt(result!.tensors.reduce((s, t) => s + t.values.reduce((a, v) => a + v * v, 0), 0));
    expect(norm).toBeLessThanOrEqual(1e-3);
    expect(norm).toBeGreaterThan(0.9e-3);
  });

  it('adds the interface noise from the round’s generator: z > 0 changes the delta, the same seed replays it, and ε is reported', async () => {
    // Arrange
    const noisy = splitSection({ activations: { clipNorm: 1, noiseMultiplier: 1, encoding: 'fp32' } });
    // Act
    const quiet = await run({ round: await splitRoundStart(global, splitSection()) });
    const withNoise = await run({ round: await splitRoundStart(global, noisy) });
    const again = await run({ round: await splitRoundStart(global, noisy) });
    const otherSeed = await run({ round: await splitRoundStart(global, noisy), seed: 8 });
    // Assert
    expect(values(withNoise!.tensors)).not.toEqual(values(quiet!.tensors));
    expect(values(again!.tensors)).toEqual(values(withNoise!.tensors));
    expect(values(otherSeed!.tensors)).not.toEqual(values(withNoise!.tensors));
    expect(withNoise!.metrics['splitEpsilonActivations']).toBeGreaterThan(0);
    expect(Number.isFinite(withNoise!.metrics['splitEpsilonActivations'])).toBe(true);
    expect(withNoise!.metrics['splitEpsilonGradients']).toBeUndefined();
  });

  it('stops between steps when asked, uploading nothing, and leaks no tensor', async () => {
    // Arrange
    const round = await splitRoundStart(global, splitSection());
    let trained = 0;
    const before = liveTensors();
    // Act
    const result = await run({ round, onEvent: (e) => void (e.type === 'train' && trained++), shouldStop: () => trained >= 2 });
    // Assert
    expect(result).toBeNull();
    expect(trained).toBe(2);
    expect(liveTensors()).toBe(before);
  });
});

describe('runSplitRound refusals', () => {
  it('gives the round up with CLIENT_SPLIT_FAILED and the protocol code when the edge refuses a step, leaking nothing', async () => {
    // Arrange: an edge that refuses backward halves as out of order.
    const round = await splitRoundStart(global, splitSection({ stepTimeoutMs: 50 }));
    const send: SplitStepSender = (event, payload) =>
      Promise.resolve(event === 'splitForward' ? forwardAnswer(payload) : ackError('SPLIT_STEP', 'no forward of this step'));
    const link = createSplitLink({
      taskId: round.taskId,
      roundId: round.roundId,
      send,
      stepTimeoutMs: 50,
      deadlineAt: 1e12,
      now: () => 0,
      sleep: () => Promise.resolve(),
    });
    const before = liveTensors();
    // Act
    const err = await rejection(run({ round, link }));
    // Assert
    expect(err.code).toBe('CLIENT_SPLIT_FAILED');
    expect(err.protocolCode).toBe('SPLIT_STEP');
    expect(liveTensors()).toBe(before);
  });

  it('resolves with null instead when the step failed because the round was abandoned (a disconnect mid-step)', async () => {
    // Arrange: the connection drops during the second forward.
    const round = await splitRoundStart(global, splitSection());
    let stopped = false;
    const link = inProcessLink(steps, round.roundId, CLIENT);
    const dropping: SplitLink = {
      forward: (step, b, payload) =>
        step === 1 ? ((stopped = true), Promise.reject(new Error('socket has been disconnected'))) : link.forward(step, b, payload),
      backward: link.backward,
    };
    // Act
    const result = await run({ round, link: dropping, shouldStop: () => stopped });
    // Assert
    expect(result).toBeNull();
  });

  it('refuses an adversarial client, a weight-round runner and a global whose task head does not fit, before any step', async () => {
    // Arrange
    const round = await splitRoundStart(global, splitSection());
    let sent = 0;
    const counting: SplitLink = { forward: () => (sent++, Promise.reject(new Error('unreachable'))), backward: () => Promise.reject(new Error('unreachable')) };
    const common = { round, clientId: CLIENT, link: counting, dataset: data, models, seed: 1, evalExamples: 0 };
    const wideHead = await splitRoundStart(global, splitSection({ fusedDim: 16 }));
    const noHead = await splitRoundStart(
      global.filter((t) => !t.name.startsWith('fusion/split_head/')),
      splitSection(),
    );
    // Act
    const adversarial = await rejection(runSplitRound({ ...common, behaviour: { kind: 'sign-flip' } }));
    const weightRunner = await rejection(runLocalRound({ ...common, behaviour: null }));
    const wide = await rejection(runSplitRound({ ...common, round: wideHead, behaviour: null }));
    const missing = await rejection(runSplitRound({ ...common, round: noHead, behaviour: null }));
    const notSplit = await rejection(runSplitRound({ ...common, round: await splitRoundStart(global, null), behaviour: null }));
    // Assert
    expect([adversarial.code, weightRunner.code, wide.code, missing.code, notSplit.code]).toEqual([
      'CLIENT_BAD_ROUND',
      'CLIENT_BAD_ROUND',
      'CLIENT_MODEL_MISMATCH',
      'CLIENT_MODEL_MISMATCH',
      'CLIENT_BAD_ROUND',
    ]);
    expect(sent).toBe(0);
  });
});

describe('a split round over the socket link', () => {
  it('waits out EDGE_BUSY and sends the same step again, giving the same delta as an edge that was never busy', async () => {
    // Arrange: every half is refused as busy twice before the edge takes it.
    const round = await splitRoundStart(global, splitSection());
    const sleeps: number[] = [];
    const sent: string[] = [];
    const busyLeft = new Map<string, number>();
    const send: SplitStepSender = (event, message) => {
      const parsed = splitStepSchema.parse(message);
      const key = `${parsed.type}:${parsed.step}`;
      sent.push(key);
      const left = busyLeft.get(key) ?? 2;
      busyLeft.set(key, left - 1);
      if (left > 0) return Promise.resolve(ackError('EDGE_BUSY', 'queue full'));
      return Promise.resolve(event === 'splitForward' ? forwardAnswer(message) : backwardAnswer(message));
    };
    const link = createSplitLink({
      taskId: round.taskId,
      roundId: round.roundId,
      send,
      stepTimeoutMs: 1000,
      deadlineAt: 1e12,
      now: () => 0,
      sleep: (ms) => (sleeps.push(ms), Promise.resolve()),
    });
    // Act
    const busy = await run({ round, link });
    const direct = await run({ round });
    // Assert
    expect(values(busy!.tensors)).toEqual(values(direct!.tensors));
    expect(sent.slice(0, 6)).toEqual(['split-forward:0', 'split-forward:0', 'split-forward:0', 'split-backward:0', 'split-backward:0', 'split-backward:0']);
    expect(sent.length).toBe(6 * 2 * 3);
    expect(sleeps.slice(0, 4)).toEqual([50, 100, 50, 100]);
  });
});

describe('splitEpsilonMetrics', () => {
  it('reports each noised direction’s ε for localEpochs releases per example, more for more epochs, and leaves z = 0 out', () => {
    // Arrange
    const split: SplitRoundConfig = splitSection({
      activations: { clipNorm: 1, noiseMultiplier: 2, encoding: 'fp32' },
      gradients: { clipNorm: 1, noiseMultiplier: 4, encoding: 'fp16' },
    });
    // Act
    const one = splitEpsilonMetrics(split, 1);
    const four = splitEpsilonMetrics(split, 4);
    const none = splitEpsilonMetrics(splitSection(), 4);
    // Assert
    expect(Object.keys(one).sort()).toEqual(['splitEpsilonActivations', 'splitEpsilonGradients']);
    expect(one['splitEpsilonGradients']).toBeLessThan(one['splitEpsilonActivations']!);
    expect(four['splitEpsilonActivations']).toBeGreaterThan(one['splitEpsilonActivations']!);
    expect(none).toEqual({});
  });
});

/** The in-process edge's answer to a forward half, as its acknowledgement (its refusals coded as a coordinator codes them). */
function forwardAnswer(message: Parameters<SplitStepSender>[1]): unknown {
  return answer(message, () => steps.forward(request(message)));
}

function backwardAnswer(message: Parameters<SplitStepSender>[1]): unknown {
  return answer(message, () => steps.backward(request(message)));
}

function request(message: Parameters<SplitStepSender>[1]): Parameters<EdgeSteps['forward']>[0] {
  const p = splitStepSchema.parse(message);
  return { roundId: p.roundId, clientId: CLIENT, step: p.step, batchSize: p.batchSize, payload: p.payload };
}

function answer(message: Parameters<SplitStepSender>[1], edgeHalf: () => Uint8Array): unknown {
  try {
    return { ok: true, step: message.step, payload: edgeHalf() };
  } catch (err) {
    if (isFlCoreError(err)) return ackError(splitRefusalCode(err.code), err.message);
    throw err;
  }
}
