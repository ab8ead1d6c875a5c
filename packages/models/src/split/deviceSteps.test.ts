import * as tf from '@tensorflow/tfjs';
import { SPLIT_TENSORS, createRng, decodeSplitPayload, norm, splitPayloadBytes, tensor } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { isModelsError } from '../errors.js';
import { withoutSyncReads } from '../fixtures.test-util.js';
import type { MultimodalBatch } from '../model.js';
import { deviceSplitStep } from './deviceSteps.js';
import type { CutRelease, DeviceStepOptions, SplitLink } from './deviceSteps.js';
import type { EdgeFusion } from './edgeFusion.js';
import { EdgeSteps } from './edgeSteps.js';
import { SPLIT, disposeBatch, maxAbsDiff, splitEdge, splitModel, toyBatch } from './fixtures.test-util.js';
import { SplitDevice } from './splitDevice.js';
import { evaluateSplit } from './splitTrainer.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const TASK = 'task-split';
const ROUND = 'round-1';
const CLIENT = 'device-1';
const B = SPLIT.batch;
const M = SPLIT.modalities.length;
const C = SPLIT.conceptDim;
const D = SPLIT.modelDim;
const EXACT: CutRelease = { encoding: 'fp32', clipNorm: Infinity, noiseMultiplier: 0 };

/** A device and an in-process edge behind {@link EdgeSteps}, both fresh from fixed seeds, and a way to release them. */
function splitPair(learningRate = 1e-3): { device: SplitDevice; edge: EdgeFusion; steps: EdgeSteps; dispose: () => void } {
  const { model, dispose } = splitModel({ learningRate });
  const device = new SplitDevice({ model, fusedDim: D, learningRate, seed: 2 });
  const edge = splitEdge({ learningRate });
  const steps = new EdgeSteps(edge, { taskId: TASK, returnEncoding: 'fp32', maxBatch: 16, stepTimeoutMs: 60_000, now: () => 0 });
  steps.open(ROUND, edge.parameters());
  return {
    device,
    edge,
    steps,
    dispose: () => {
      steps.dispose();
      edge.dispose();
      device.dispose();
      dispose();
    },
  };
}

function edgeLink(steps: EdgeSteps): SplitLink {
  return {
    forward: async (step, batchSize, payload) => steps.forward({ roundId: ROUND, clientId: CLIENT, step, batchSize, payload }),
    backward: async (step, batchSize, payload) => steps.backward({ roundId: ROUND, clientId: CLIENT, step, batchSize, payload }),
  };
}

/** What passed through a {@link recordingLink} in each direction. */
interface Recorded {
  up: Uint8Array[];
  down: Uint8Array[];
}

/** `link`, recording every payload both ways and calling `during` while each half is at the edge. */
function recordingLink(link: SplitLink, during: () => void = () => {}): { link: SplitLink; recorded: Recorded } {
  const recorded: Recorded = { up: [], down: [] };
  const pass =
    (half: 'forward' | 'backward') =>
    async (step: number, batchSize: number, payload: Uint8Array): Promise<Uint8Array> => {
      recorded.up.push(payload.slice());
      during();
      const answer = await link[half](step, batchSize, payload);
      recorded.down.push(answer.slice());
      return answer;
    };
  return { link: { forward: pass('forward'), backward: pass('backward') }, recorded };
}

function stepOptions(overrides: Partial<DeviceStepOptions> = {}): DeviceStepOptions {
  return { taskId: TASK, clientId: CLIENT, activations: EXACT, gradients: EXACT, rng: createRng(11), now: () => 0, ...overrides };
}

/** The tokens [B, M, c] a forward payload carries, as the edge decodes them. */
function decodedTokens(payload: Uint8Array, batch = B): Float32Array {
  const shape = [batch, M, C];
  const maxBytes = splitPayloadBytes({
    taskId: TASK,
    clientId: CLIENT,
    step: 0,
    encoding: 'fp32',
    tensors: [tensor(SPLIT_TENSORS.tokens, shape), tensor(SPLIT_TENSORS.mask, [batch, M])],
  });
  const expectation = {
    taskId: TASK,
    clientId: CLIENT,
    step: 0,
    maxBytes,
    tensors: [
      { name: SPLIT_TENSORS.tokens, shape },
      { name: SPLIT_TENSORS.mask, shape: [batch, M] },
    ],
  };
  return decodeSplitPayload(payload, expectation).get(SPLIT_TENSORS.tokens)!;
}

/** L2 norm of each example's tokens (its M·c values). */
function rowNorms(tokens: Float32Array, batch = B): number[] {
  const width = tokens.length / batch;
  return Array.from({ length: batch }, (_, b) => norm(tokens.subarray(b * width, (b + 1) * width)));
}

function maxParameterDiff(a: Parameters, b: Parameters): number {
  return Math.max(...a.map((t, i) => maxAbsDiff(t.values, b[i]!.values)));
}

async function rejection(act: () => Promise<unknown>): Promise<unknown> {
  try {
    await act();
  } catch (err) {
    return err;
  }
  return null;
}

describe('deviceSplitStep', () => {
  it('reports as bytesUp / bytesDown the sizes of the payloads that passed through the link', async () => {
    const before = tf.memory().numTensors;
    const pair = splitPair();
    const { link, recorded } = recordingLink(edgeLink(pair.steps));
    const batch = toyBatch(1);

    const results = [
      await deviceSplitStep(pair.device, batch, 0, link, stepOptions()),
      await deviceSplitStep(
        pair.device,
        batch,
        1,
        link,
        stepOptions({ activations: { ...EXACT, encoding: 'int8' }, gradients: { ...EXACT, encoding: 'fp16' } }),
      ),
    ];

    const sizes = (list: Uint8Array[]) => list.map((p) => p.byteLength);
    const [up, down] = [sizes(recorded.up), sizes(recorded.down)];
    expect(up).toHaveLength(4);
    expect(down).toHaveLength(4);
    expect(results.map((r) => r.bytesUp)).toEqual([up[0]! + up[1]!, up[2]! + up[3]!]);
    expect(results.map((r) => r.bytesDown)).toEqual([down[0]! + down[1]!, down[2]! + down[3]!]);
    expect(results[1]!.bytesUp).toBeLessThan(results[0]!.bytesUp);
    expect(results.every((r) => r.numExamples === B)).toBe(true);
    disposeBatch(batch);
    pair.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('counts in waitMs the time spent in the link only, and in deviceMs the rest', async () => {
    const before = tf.memory().numTensors;
    const pair = splitPair();
    let clock = 0;
    const inLink = recordingLink(edgeLink(pair.steps), () => (clock += 40));
    const ticking = recordingLink(edgeLink(pair.steps), () => (clock += 40));
    const batch = toyBatch(2);

    const stillClock = await deviceSplitStep(pair.device, batch, 0, inLink.link, stepOptions({ now: () => clock }));
    // A clock that also moves by 1 ms at every reading: the device's own work now takes time too.
    const start = clock;
    const tickingClock = await deviceSplitStep(pair.device, batch, 1, ticking.link, stepOptions({ now: () => ++clock }));
    const elapsed = clock - start;

    expect(stillClock.waitMs).toBe(80);
    expect(stillClock.deviceMs).toBe(0);
    expect(tickingClock.waitMs).toBeGreaterThanOrEqual(80);
    expect(tickingClock.waitMs).toBeLessThan(90);
    expect(tickingClock.deviceMs).toBeGreaterThan(0);
    expect(tickingClock.deviceMs + tickingClock.waitMs).toBeLessThanOrEqual(elapsed);
    disposeBatch(batch);
    pair.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('noises what the link receives when z > 0, bit-identically for the same seed', async () => {
    const before = tf.memory().numTensors;
    const batch = toyBatch(3);
    const clipNorm = 10; // above every row's norm, so only the noise differs
    const run = async (noiseMultiplier: number, seed: number): Promise<Recorded> => {
      const pair = splitPair();
      const { link, recorded } = recordingLink(edgeLink(pair.steps));
      const release = { encoding: 'fp32', clipNorm, noiseMultiplier } as const;
      const result = await deviceSplitStep(pair.device, batch, 0, link, stepOptions({ activations: release, gradients: release, rng: createRng(seed) }));
      expect(result.clippedTokens + result.clippedGradients).toBe(0);
      pair.dispose();
      return recorded;
    };

    const clean = await run(0, 1);
    const noisy = await run(0.1, 1);
    const again = await run(0.1, 1);
    const otherSeed = await run(0.1, 2);

    expect(again.up).toEqual(noisy.up);
    expect(otherSeed.up[0]).not.toEqual(noisy.up[0]);
    expect(noisy.up[0]).not.toEqual(clean.up[0]);
    expect(noisy.up[1]).not.toEqual(clean.up[1]);
    // The noise has std z·C = 1 per element.
    const difference = decodedTokens(noisy.up[0]!).map((v, i) => v - decodedTokens(clean.up[0]!)[i]!);
    const variance = difference.reduce((s, v) => s + v * v, 0) / difference.length;
    expect(variance).toBeGreaterThan(0.5);
    expect(variance).toBeLessThan(1.5);
    disposeBatch(batch);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('clips each example’s tokens to clipNorm before they leave the device, and counts the clipped rows', async () => {
    const before = tf.memory().numTensors;
    const batch = toyBatch(4);
    const probe = splitPair();
    const cut = probe.device.encode(batch);
    const norms = rowNorms(cut.tokens.dataSync() as Float32Array);
    tf.dispose([cut.tokens, cut.mask]);
    probe.dispose();
    const sorted = [...norms].sort((a, b) => a - b);
    const clipNorms = [1e-3, (sorted[2]! + sorted[3]!) / 2];

    for (const clipNorm of clipNorms) {
      const pair = splitPair();
      const { link, recorded } = recordingLink(edgeLink(pair.steps));

      const result = await deviceSplitStep(pair.device, batch, 0, link, stepOptions({ activations: { encoding: 'fp16', clipNorm, noiseMultiplier: 0 } }));

      const sent = rowNorms(decodedTokens(recorded.up[0]!));
      // fp16's relative error is ≤ 2^-11 per element, so at most that on a row's norm.
      expect(Math.max(...sent)).toBeLessThanOrEqual(clipNorm * (1 + 2 ** -10));
      expect(result.clippedTokens).toBe(norms.filter((n) => n > clipNorm).length);
      for (const [b, n] of norms.entries()) if (n <= clipNorm) expect(sent[b]).toBeCloseTo(n, 3);
      pair.dispose();
    }
    expect(norms.every((n) => n > 1e-3)).toBe(true);
    disposeBatch(batch);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('still trains with int8 activations and gradients: the split loss on the toy problem falls over 40 steps', async () => {
    const before = tf.memory().numTensors;
    const pair = splitPair(0.01);
    const int8: CutRelease = { ...EXACT, encoding: 'int8' };
    const link = edgeLink(pair.steps);
    const train = [0, 1, 2, 3].map((i) => toyBatch(100 + i, 16));
    // The training batches' loss: on held-out batches 40 steps of 64 examples are too few for a steady trend.
    const initial = evaluateSplit(pair.device, pair.edge, train);

    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const result = await deviceSplitStep(pair.device, train[step % train.length]!, step, link, stepOptions({ activations: int8, gradients: int8 }));
      losses.push(result.loss);
    }
    const final = evaluateSplit(pair.device, pair.edge, train);

    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)));
    expect(final.loss).toBeLessThan(0.75 * initial.loss);
    expect(final.accuracy).toBeGreaterThan(initial.accuracy);
    train.forEach(disposeBatch);
    pair.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('propagates a link’s rejection in either half, leaving no tensor allocated and no device weight moved; the next step goes on from the kept moments', async () => {
    // Arrange: a device one step in (so Adam has moments), and a twin that will take the same steps without the failures.
    const before = tf.memory().numTensors;
    const [pair, twin] = [splitPair(), splitPair()];
    const batch = toyBatch(5);
    const offline = new Error('link offline');
    const good = edgeLink(pair.steps);
    const twinLink = edgeLink(twin.steps);
    const links: [string, SplitLink][] = [
      ['forward', { forward: async () => Promise.reject(offline), backward: good.backward }],
      ['backward', { forward: good.forward, backward: async () => Promise.reject(offline) }],
      ['forward answer of garbage', { forward: async () => new Uint8Array([1, 2, 3]), backward: good.backward }],
    ];
    await deviceSplitStep(pair.device, batch, 0, good, stepOptions());
    await deviceSplitStep(twin.device, batch, 0, twinLink, stepOptions());
    const weights = pair.device.parameters();
    const held = tf.memory().numTensors;

    // Act: the failing steps, then one that goes through on both devices.
    const errors: unknown[] = [];
    for (const [label, link] of links) {
      errors.push(await rejection(() => deviceSplitStep(pair.device, batch, 1, link, stepOptions())));
      pair.steps.drop(CLIENT);
      expect(tf.memory().numTensors, label).toBe(held);
      expect(maxParameterDiff(pair.device.parameters(), weights), label).toBe(0);
    }
    const recovered = await deviceSplitStep(pair.device, batch, 2, good, stepOptions());
    await deviceSplitStep(twin.device, batch, 2, twinLink, stepOptions());

    // Assert: the failed steps left nothing behind, neither their head gradient nor a reset of Adam's moments.
    expect(String(errors[2])).toMatch(/^FlCoreError: CODEC_/);
    expect(errors.slice(0, 2)).toEqual([offline, offline]);
    expect(recovered.numExamples).toBe(B);
    expect(maxParameterDiff(pair.device.parameters(), weights)).toBeGreaterThan(0);
    expect(maxParameterDiff(pair.device.parameters(), twin.device.parameters())).toBe(0);
    disposeBatch(batch);
    pair.dispose();
    twin.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reads nothing synchronously on the device (WebGPU tabs)', async () => {
    // Arrange: the in-process edge reads synchronously, so a twin's step records its answers and a replaying link serves them.
    const before = tf.memory().numTensors;
    const [pair, twin] = [splitPair(), splitPair()];
    const batch = toyBatch(7);
    const { link: twinLink, recorded } = recordingLink(edgeLink(twin.steps));
    const expected = await deviceSplitStep(twin.device, batch, 0, twinLink, stepOptions());
    const replay: SplitLink = { forward: async () => recorded.down[0]!, backward: async () => recorded.down[1]! };

    // Act
    const result = await withoutSyncReads(() => deviceSplitStep(pair.device, batch, 0, replay, stepOptions()));

    // Assert
    expect(result).toEqual(expected);
    expect(maxParameterDiff(pair.device.parameters(), twin.device.parameters())).toBe(0);
    disposeBatch(batch);
    pair.dispose();
    twin.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a batch without labels before anything is sent', async () => {
    const before = tf.memory().numTensors;
    const pair = splitPair();
    const batch = toyBatch(6);
    const unlabelled: MultimodalBatch = { image: batch.image!, audio: batch.audio! };
    const { link, recorded } = recordingLink(edgeLink(pair.steps));

    const err = await rejection(() => deviceSplitStep(pair.device, unlabelled, 0, link, stepOptions()));

    expect(isModelsError(err, 'MODELS_BAD_INPUT')).toBe(true);
    expect(recorded.up).toHaveLength(0);
    expect(pair.steps.pendingSteps).toBe(0);
    disposeBatch(batch);
    pair.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
