import * as tf from '@tensorflow/tfjs';
import { SPLIT_TENSORS, crc32, createRng, decodeUpdate, encodeSplitPayload, encodeUpdate, isFlCoreError, tensor } from '@chorus/fl-core';
import type { Parameters, UpdateEncoding } from '@chorus/fl-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { deviceSplitStep } from './deviceSteps.js';
import type { CutRelease, SplitLink } from './deviceSteps.js';
import type { EdgeFusion } from './edgeFusion.js';
import { EdgeSteps } from './edgeSteps.js';
import type { EdgeStepsOptions } from './edgeSteps.js';
import { SPLIT, disposeBatch, maxAbsDiff, randomCut, splitEdge, splitModel, toyBatch } from './fixtures.test-util.js';
import { SplitDevice } from './splitDevice.js';
import { splitStepInProcess } from './splitTrainer.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const TASK = 'task-split';
const ROUND = 'round-1';
const B = SPLIT.batch;
const M = SPLIT.modalities.length;
const C = SPLIT.conceptDim;
const D = SPLIT.modelDim;
const MAX_BATCH = 8;
const TIMEOUT_MS = 1000;
/** Image absent from example 1, audio from examples 2 and 4. */
const PRESENT = Array.from({ length: B }, (_, b) => [b === 1 ? 0 : 1, b === 2 || b === 4 ? 0 : 1]);

interface FakeClock {
  readonly now: () => number;
  advance(ms: number): void;
}

function fakeClock(): FakeClock {
  let at = 0;
  return { now: () => at, advance: (ms) => (at += ms) };
}

function stepsOver(edge: EdgeFusion, clock: FakeClock, overrides: Partial<EdgeStepsOptions> = {}): EdgeSteps {
  return new EdgeSteps(edge, { taskId: TASK, returnEncoding: 'fp32', maxBatch: MAX_BATCH, stepTimeoutMs: TIMEOUT_MS, now: clock.now, ...overrides });
}

/** Token and mask values of {@link randomCut} (no tensor kept). */
function cutValues(seed = 1): { tokens: Float32Array; mask: Float32Array } {
  const { tokens, mask } = randomCut(seed);
  const values = { tokens: Float32Array.from(tokens.dataSync()), mask: Float32Array.from(mask.dataSync()) };
  tf.dispose([tokens, mask]);
  return values;
}

/** A fused-feature gradient [B, d] that can be checked by hand. */
function fusedGradValues(seed = 0, batch = B): Float32Array {
  return Float32Array.from({ length: batch * D }, (_, i) => 0.5 * Math.sin(i + seed));
}

interface Header {
  taskId?: string;
  clientId?: string;
  step?: number;
  encoding?: UpdateEncoding;
}

function payload(header: Header, tensors: Parameters): Uint8Array {
  return encodeSplitPayload({
    taskId: header.taskId ?? TASK,
    clientId: header.clientId ?? 'a',
    step: header.step ?? 0,
    encoding: header.encoding ?? 'fp32',
    tensors,
  });
}

function forwardBytes(cut: { tokens: Float32Array; mask: Float32Array }, header: Header = {}, batch = B): Uint8Array {
  return payload(header, [tensor(SPLIT_TENSORS.tokens, [batch, M, C], cut.tokens), tensor(SPLIT_TENSORS.mask, [batch, M], cut.mask)]);
}

function backwardBytes(values: Float32Array, header: Header = {}, width = D): Uint8Array {
  return payload(header, [tensor(SPLIT_TENSORS.fusedGrad, [values.length / width, width], values)]);
}

/** A copy of `bytes` with the float32 `sentinel` replaced by NaN and the checksum made right again (the codec's encoder refuses NaN). */
function withNaN(bytes: Uint8Array, sentinel: number): Uint8Array {
  const needle = new Uint8Array(Float32Array.of(sentinel).buffer);
  const out = bytes.slice();
  const at = out.findIndex((_, i) => needle.every((v, j) => out[i + j] === v));
  expect(at).toBeGreaterThan(0);
  out.set(new Uint8Array(Float32Array.of(NaN).buffer), at);
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function request(half: { clientId?: string; step?: number; batchSize?: number; roundId?: string }, bytes: Uint8Array) {
  return { roundId: half.roundId ?? ROUND, clientId: half.clientId ?? 'a', step: half.step ?? 0, batchSize: half.batchSize ?? B, payload: bytes };
}

/** The code of what `act` throws, or 'no error'. */
function refusalCode(act: () => unknown): string {
  try {
    act();
  } catch (err) {
    return isFlCoreError(err) ? err.code : `not an FlCoreError: ${String(err)}`;
  }
  return 'no error';
}

function stateOf(steps: EdgeSteps) {
  return { weights: steps.weights(), pendingSteps: steps.pendingSteps, figures: steps.figures, numTensors: tf.memory().numTensors };
}

function maxParameterDiff(a: Parameters, b: Parameters): number {
  expect(a.map((t) => t.name)).toEqual(b.map((t) => t.name));
  return Math.max(...a.map((t, i) => maxAbsDiff(t.values, b[i]!.values)));
}

function values(bytes: Uint8Array): { encoding: UpdateEncoding; values: Float32Array } {
  const decoded = decodeUpdate(bytes, { maxBytes: bytes.byteLength });
  return { encoding: decoded.encoding, values: decoded.tensors[0]!.values };
}

function inProcessLink(steps: EdgeSteps, clientId: string): SplitLink {
  return {
    forward: async (step, batchSize, bytes) => steps.forward({ roundId: ROUND, clientId, step, batchSize, payload: bytes }),
    backward: async (step, batchSize, bytes) => steps.backward({ roundId: ROUND, clientId, step, batchSize, payload: bytes }),
  };
}

describe('EdgeSteps', () => {
  it('a step through deviceSplitStep and the codec gives the weights of splitStepInProcess on the same batches', async () => {
    const before = tf.memory().numTensors;
    const pair = () => {
      const { model, dispose } = splitModel();
      const device = new SplitDevice({ model, fusedDim: D, learningRate: 0.01, seed: 2 });
      const edge = splitEdge({ learningRate: 0.01 });
      return { device, edge, dispose: () => [device, edge, { dispose }].forEach((o) => o.dispose()) };
    };
    const reference = pair();
    const linked = pair();
    const clock = fakeClock();
    const steps = stepsOver(linked.edge, clock);
    const deviceStart = reference.device.parameters();
    const edgeStart = reference.edge.parameters();
    steps.open(ROUND, edgeStart);
    const exact: CutRelease = { encoding: 'fp32', clipNorm: Infinity, noiseMultiplier: 0 };
    const options = { taskId: TASK, clientId: 'a', activations: exact, gradients: exact, rng: createRng(7), now: clock.now };
    const batches = [toyBatch(4, B, PRESENT), toyBatch(5, B, PRESENT)];

    const expected = batches.map((batch) => splitStepInProcess(reference.device, reference.edge, batch));
    const results = [];
    for (const [i, batch] of batches.entries()) results.push(await deviceSplitStep(linked.device, batch, i, inProcessLink(steps, 'a'), options));

    for (const [i, result] of results.entries()) {
      expect(result.loss).toBeCloseTo(expected[i]!.loss, 5);
      expect(result.localLoss).toBeCloseTo(expected[i]!.localLoss, 5);
      expect(result.correct).toBe(expected[i]!.correct);
      expect(result.numExamples).toBe(B);
      expect(result.clippedTokens + result.clippedGradients).toBe(0);
    }
    expect(maxParameterDiff(linked.device.parameters(), reference.device.parameters())).toBeLessThan(1e-5);
    expect(maxParameterDiff(steps.weights(), reference.edge.parameters())).toBeLessThan(1e-5);
    // Both sides moved, so the comparison is not between two untouched models.
    expect(maxParameterDiff(reference.device.parameters(), deviceStart)).toBeGreaterThan(1e-3);
    expect(maxParameterDiff(reference.edge.parameters(), edgeStart)).toBeGreaterThan(1e-3);
    expect(steps.figures).toEqual({ forwardSteps: 2, backwardSteps: 2, droppedSteps: 0, examples: 2 * B });
    steps.dispose();
    batches.forEach(disposeBatch);
    reference.dispose();
    linked.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a step of an attempt that is not open with SPLIT_NOT_OPEN: before open, another roundId, after close', () => {
    const before = tf.memory().numTensors;
    const edge = splitEdge();
    const steps = stepsOver(edge, fakeClock());
    const forward = forwardBytes(cutValues());
    const backward = backwardBytes(fusedGradValues());

    const neverOpened = [refusalCode(() => steps.forward(request({}, forward))), refusalCode(() => steps.backward(request({}, backward)))];
    steps.open(ROUND, edge.parameters());
    steps.forward(request({}, forward));
    const open = stateOf(steps);
    const otherRound = [
      refusalCode(() => steps.forward(request({ roundId: 'round-2' }, forward))),
      refusalCode(() => steps.backward(request({ roundId: 'round-2' }, backward))),
    ];
    const afterOtherRound = stateOf(steps);
    steps.close('round-2'); // another id: ignored
    const afterOtherClose = stateOf(steps);
    steps.close(ROUND);
    const closed = stateOf(steps);
    const afterClose = [refusalCode(() => steps.forward(request({}, forward))), refusalCode(() => steps.backward(request({}, backward)))];

    expect([...neverOpened, ...otherRound, ...afterClose]).toEqual(Array(6).fill('SPLIT_NOT_OPEN'));
    expect(afterOtherRound).toEqual(open);
    expect(afterOtherClose).toEqual(open);
    expect(steps.openRound).toBeNull();
    expect(closed.pendingSteps).toBe(0);
    expect(stateOf(steps)).toEqual(closed);
    steps.dispose();
    edge.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses malformed halves with their code, changing neither the weights nor the pending forward, which a correct backward then completes', () => {
    const before = tf.memory().numTensors;
    const edge = splitEdge();
    const steps = stepsOver(edge, fakeClock());
    steps.open(ROUND, edge.parameters());
    const cut = cutValues();
    steps.forward(request({}, forwardBytes(cut)));
    const good = backwardBytes(fusedGradValues());
    const halfMask = cut.mask.slice();
    halfMask[3] = 0.5;
    const sentinelTokens = cut.tokens.slice();
    sentinelTokens[5] = 1234.5;
    const sentinelGrad = fusedGradValues();
    sentinelGrad[9] = 1234.5;
    const flipped = good.slice();
    flipped[flipped.length - 6]! ^= 0x40;
    const pending = stateOf(steps);
    const cases: [string, string, () => unknown][] = [
      ['forward, batchSize over maxBatch', 'SPLIT_BAD_SHAPE', () => steps.forward(request({ batchSize: MAX_BATCH + 1 }, forwardBytes(cut)))],
      ['forward, batchSize 0', 'SPLIT_BAD_SHAPE', () => steps.forward(request({ batchSize: 0 }, forwardBytes(cut)))],
      ['forward, batchSize 2.5', 'SPLIT_BAD_SHAPE', () => steps.forward(request({ batchSize: 2.5 }, forwardBytes(cut)))],
      ['forward, batchSize above the payload’s rows', 'SPLIT_BAD_SHAPE', () => steps.forward(request({ batchSize: B + 1 }, forwardBytes(cut)))],
      [
        'forward, batchSize below the rows of an int8 payload',
        'SPLIT_BAD_SHAPE',
        () => steps.forward(request({ batchSize: B - 1 }, forwardBytes(cut, { encoding: 'int8' }))),
      ],
      // An fp32 payload of more rows than announced is over the byte limit, refused before it is read.
      ['forward, batchSize below the rows of an fp32 payload', 'CODEC_TOO_LARGE', () => steps.forward(request({ batchSize: B - 1 }, forwardBytes(cut)))],
      ['forward, mask missing', 'SPLIT_BAD_SHAPE', () => steps.forward(request({}, payload({}, [tensor(SPLIT_TENSORS.tokens, [B, M, C], cut.tokens)])))],
      ['forward, payload of another client', 'SPLIT_WRONG_SENDER', () => steps.forward(request({}, forwardBytes(cut, { clientId: 'b' })))],
      ['forward, payload of another task', 'SPLIT_WRONG_SENDER', () => steps.forward(request({}, forwardBytes(cut, { taskId: 'other-task' })))],
      ['forward, payload of another step', 'SPLIT_WRONG_STEP', () => steps.forward(request({ step: 0 }, forwardBytes(cut, { step: 1 })))],
      ['forward, mask value 0.5', 'SPLIT_BAD_PAYLOAD', () => steps.forward(request({}, forwardBytes({ ...cut, mask: halfMask })))],
      [
        'forward, a delta message',
        'SPLIT_BAD_PAYLOAD',
        () =>
          steps.forward(
            request(
              {},
              encodeUpdate({
                kind: 'delta',
                taskId: TASK,
                clientId: 'a',
                round: 0,
                encoding: 'fp32',
                tensors: [tensor(SPLIT_TENSORS.tokens, [B, M, C], cut.tokens)],
              }),
            ),
          ),
      ],
      ['forward, NaN in tokens', 'CODEC_NON_FINITE', () => steps.forward(request({}, withNaN(forwardBytes({ ...cut, tokens: sentinelTokens }), 1234.5)))],
      ['forward, truncated', 'CODEC_*', () => steps.forward(request({}, forwardBytes(cut).subarray(0, 20)))],
      [
        'backward, no forward from this client',
        'SPLIT_NO_FORWARD',
        () => steps.backward(request({ clientId: 'b' }, backwardBytes(fusedGradValues(), { clientId: 'b' }))),
      ],
      ['backward, another step', 'SPLIT_NO_FORWARD', () => steps.backward(request({ step: 1 }, backwardBytes(fusedGradValues(), { step: 1 })))],
      [
        'backward, other rows than the forward',
        'SPLIT_NO_FORWARD',
        () => steps.backward(request({ batchSize: B - 1 }, backwardBytes(fusedGradValues(0, B - 1)))),
      ],
      ['backward, payload of another client', 'SPLIT_WRONG_SENDER', () => steps.backward(request({}, backwardBytes(fusedGradValues(), { clientId: 'b' })))],
      ['backward, payload of another step', 'SPLIT_WRONG_STEP', () => steps.backward(request({}, backwardBytes(fusedGradValues(), { step: 1 })))],
      [
        'backward, narrower gradient',
        'SPLIT_BAD_SHAPE',
        () => steps.backward(request({}, backwardBytes(fusedGradValues().subarray(0, B * (D - 1)), {}, D - 1))),
      ],
      ['backward, NaN', 'CODEC_NON_FINITE', () => steps.backward(request({}, withNaN(backwardBytes(sentinelGrad), 1234.5)))],
      ['backward, a flipped payload bit', 'CODEC_CHECKSUM', () => steps.backward(request({}, flipped))],
      ['backward, truncated', 'CODEC_*', () => steps.backward(request({}, good.subarray(0, good.length - 12)))],
    ];

    for (const [label, code, act] of cases) {
      const refused = refusalCode(act);
      if (code === 'CODEC_*') expect(refused, label).toMatch(/^CODEC_/);
      else expect(refused, label).toBe(code);
      expect(stateOf(steps), label).toEqual(pending);
    }
    const reply = steps.backward(request({}, good));

    expect(values(reply).values).toHaveLength(B * M * C);
    expect(steps.pendingSteps).toBe(0);
    expect(steps.figures).toEqual({ forwardSteps: 1, backwardSteps: 1, droppedSteps: 0, examples: B });
    expect(maxParameterDiff(steps.weights(), pending.weights)).toBeGreaterThan(0);
    steps.dispose();
    edge.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a second forward from a client replaces the first without leaking its tensors; drop frees it', () => {
    const before = tf.memory().numTensors;
    const edge = splitEdge();
    const steps = stepsOver(edge, fakeClock());
    steps.open(ROUND, edge.parameters());
    const opened = tf.memory().numTensors;

    steps.forward(request({ step: 0 }, forwardBytes(cutValues(1), { step: 0 })));
    const holdingOne = tf.memory().numTensors;
    steps.forward(request({ step: 1 }, forwardBytes(cutValues(2), { step: 1 })));
    const afterReplace = { pendingSteps: steps.pendingSteps, numTensors: tf.memory().numTensors };
    const replacedCode = refusalCode(() => steps.backward(request({ step: 0 }, backwardBytes(fusedGradValues(), { step: 0 }))));
    steps.forward(request({ clientId: 'b' }, forwardBytes(cutValues(3), { clientId: 'b' })));
    steps.drop('a');
    steps.drop('nobody');
    const afterDrop = { pendingSteps: steps.pendingSteps, figures: steps.figures };
    steps.drop('b');

    expect(holdingOne - opened).toBe(2); // the forward's tokens and mask
    expect(afterReplace).toEqual({ pendingSteps: 1, numTensors: holdingOne });
    expect(replacedCode).toBe('SPLIT_NO_FORWARD');
    expect(afterDrop).toEqual({ pendingSteps: 1, figures: { forwardSteps: 3, backwardSteps: 0, droppedSteps: 1, examples: 0 } });
    expect(steps.pendingSteps).toBe(0);
    expect(tf.memory().numTensors).toBe(opened);
    steps.dispose();
    edge.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('drops forwards older than stepTimeoutMs on the next call, and counts forward, backward and dropped steps', () => {
    const before = tf.memory().numTensors;
    const edge = splitEdge();
    const clock = fakeClock();
    const steps = stepsOver(edge, clock);
    steps.open(ROUND, edge.parameters());
    const opened = tf.memory().numTensors;

    steps.forward(request({ clientId: 'a' }, forwardBytes(cutValues(1), { clientId: 'a' }))); // at 0
    clock.advance(600);
    steps.forward(request({ clientId: 'b' }, forwardBytes(cutValues(2), { clientId: 'b' }))); // at 600
    clock.advance(TIMEOUT_MS - 600);
    const atTimeout = { pendingSteps: steps.pendingSteps, figures: steps.figures };
    steps.forward(request({ clientId: 'c' }, forwardBytes(cutValues(3), { clientId: 'c' }))); // at 1000: a is exactly stepTimeoutMs old, kept
    const keptAtLimit = steps.pendingSteps;
    clock.advance(1);
    const lateCode = refusalCode(() => steps.backward(request({ clientId: 'a' }, backwardBytes(fusedGradValues(), { clientId: 'a' }))));
    const afterExpiry = { pendingSteps: steps.pendingSteps, figures: steps.figures };
    steps.backward(request({ clientId: 'b' }, backwardBytes(fusedGradValues(), { clientId: 'b' })));
    clock.advance(TIMEOUT_MS); // c is now 1001 ms old
    const expiredCode = refusalCode(() => steps.backward(request({ clientId: 'c' }, backwardBytes(fusedGradValues(), { clientId: 'c' }))));
    const end = { pendingSteps: steps.pendingSteps, figures: steps.figures };

    expect(atTimeout).toEqual({ pendingSteps: 2, figures: { forwardSteps: 2, backwardSteps: 0, droppedSteps: 0, examples: 0 } });
    expect(keptAtLimit).toBe(3);
    expect([lateCode, expiredCode]).toEqual(['SPLIT_NO_FORWARD', 'SPLIT_NO_FORWARD']);
    expect(afterExpiry).toEqual({ pendingSteps: 2, figures: { forwardSteps: 3, backwardSteps: 0, droppedSteps: 1, examples: 0 } });
    expect(end).toEqual({ pendingSteps: 0, figures: { forwardSteps: 3, backwardSteps: 1, droppedSteps: 2, examples: B } });
    expect(tf.memory().numTensors).toBe(opened + 2 * edge.parameterShapes().length); // nothing held but Adam's two moments per weight
    steps.dispose();
    edge.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('open loads the weights and resets the optimiser: two attempts from the same weights give identical replies and weights', () => {
    const before = tf.memory().numTensors;
    const edge = splitEdge({ learningRate: 0.01 });
    const steps = stepsOver(edge, fakeClock());
    const start = edge.parameters();
    const attempt = (roundId: string) => {
      steps.open(roundId, start);
      const replies: Uint8Array[] = [];
      for (let step = 0; step < 3; step++) {
        replies.push(steps.forward(request({ roundId, step }, forwardBytes(cutValues(step + 1), { step }))));
        replies.push(steps.backward(request({ roundId, step }, backwardBytes(fusedGradValues(step), { step }))));
      }
      return { replies, weights: steps.weights() };
    };

    const first = attempt('round-1');
    steps.forward(request({ roundId: 'round-1', step: 3 }, forwardBytes(cutValues(), { step: 3 })));
    const second = attempt('round-2');

    expect(second.replies).toEqual(first.replies);
    expect(maxParameterDiff(second.weights, first.weights)).toBe(0);
    expect(maxParameterDiff(first.weights, start)).toBeGreaterThan(1e-3);
    expect(steps.openRound).toBe('round-2');
    expect(steps.figures.droppedSteps).toBe(0); // open drops pending forwards without counting them as timeouts
    steps.dispose();
    edge.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('weights() are the fusion network’s edge/* tensors', () => {
    const edge = splitEdge();
    const steps = stepsOver(edge, fakeClock());

    const weights = steps.weights();

    expect(weights.map((t) => t.name)).toEqual(edge.parameterShapes().map((s) => s.name));
    expect(weights.every((t) => t.name.startsWith('edge/'))).toBe(true);
    expect(weights.map((t) => t.shape)).toEqual(edge.parameterShapes().map((s) => s.shape));
    expect(maxParameterDiff(weights, edge.parameters())).toBe(0);
    steps.dispose();
    edge.dispose();
  });

  it('answers in returnEncoding: int8 replies decode within the codec’s int8 error of the fp32 replies', () => {
    const before = tf.memory().numTensors;
    const edges = [splitEdge(), splitEdge()];
    const [fp32, int8] = [stepsOver(edges[0]!, fakeClock()), stepsOver(edges[1]!, fakeClock(), { returnEncoding: 'int8' })];
    const start = edges[0]!.parameters();
    const forward = forwardBytes(cutValues());
    const backward = backwardBytes(fusedGradValues());
    const replies = [fp32, int8].map((steps) => {
      steps.open(ROUND, start);
      return [steps.forward(request({}, forward)), steps.backward(request({}, backward))];
    });

    for (const half of [0, 1]) {
      const exact = values(replies[0]![half]!);
      const quantised = values(replies[1]![half]!);
      const maxAbs = Math.max(...exact.values.map(Math.abs));
      expect(exact.encoding).toBe('fp32');
      expect(quantised.encoding).toBe('int8');
      expect(maxAbs).toBeGreaterThan(0);
      expect(maxAbsDiff(quantised.values, exact.values)).toBeLessThanOrEqual((0.5 * maxAbs) / 127 + 1e-6 * maxAbs);
      expect(replies[1]![half]!.byteLength).toBeLessThan(replies[0]![half]!.byteLength);
    }
    [fp32, int8].forEach((s) => s.dispose());
    edges.forEach((e) => e.dispose());
    expect(tf.memory().numTensors).toBe(before);
  });
});
