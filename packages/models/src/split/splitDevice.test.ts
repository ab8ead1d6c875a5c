import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModelsError } from '../errors.js';
import { TINY, tinyBatch, tinyEmbedder, tinyModel, withoutSyncReads } from '../fixtures.test-util.js';
import { crossEntropyLoss } from '../losses.js';
import type { MultimodalBatch } from '../model.js';
import { SPLIT, disposeBatch, maxAbsDiff, splitEdge, splitModel, toyBatch } from './fixtures.test-util.js';
import { SPLIT_HEAD_NAMES, SplitDevice } from './splitDevice.js';
import { splitStepInProcess } from './splitTrainer.js';

const built: (() => void)[] = [];
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => built.forEach((dispose) => dispose()));

const B = SPLIT.batch;
const M = SPLIT.modalities.length;
const C = SPLIT.conceptDim;
const D = SPLIT.modelDim;
/** Image absent from example 1, audio from examples 2 and 4. */
const PRESENT = Array.from({ length: B }, (_, b) => [b === 1 ? 0 : 1, b === 2 || b === 4 ? 0 : 1]);

function freshDevice(overrides: { learningRate?: number; localHeadWeight?: number } = {}): SplitDevice {
  const { model, dispose } = splitModel();
  const device = new SplitDevice({ model, fusedDim: D, seed: 2, ...overrides });
  built.push(() => {
    device.dispose();
    dispose();
  });
  return device;
}

function byName(device: SplitDevice): Map<string, Float32Array> {
  return new Map(device.parameters().map((t) => [t.name, t.values]));
}

/** Whether every parameter of `a` equals `b`'s bit for bit. */
function sameParameters(a: SplitDevice, b: SplitDevice): boolean {
  const other = byName(b);
  return a.parameters().every((t) => maxAbsDiff(t.values, other.get(t.name)!) === 0);
}

/** Everything one step of `device` gives back, read out: the cut, dFused, the figures and the parameters after it. */
interface StepRecord {
  tokens: number[];
  mask: number[];
  dFused: number[];
  loss: number;
  correct: number;
  localLoss: number;
  parameters: Map<string, Float32Array>;
}

/** One step of `device` on `batch` through its synchronous methods, against fixed `fused` and `dTokens` from an edge. */
function syncStep(device: SplitDevice, batch: MultimodalBatch, fused: tf.Tensor, dTokens: tf.Tensor): StepRecord {
  const cut = device.encode(batch);
  const head = device.headStep(fused, batch.labels!);
  const { localLoss } = device.backward(batch, dTokens);
  const record = { tokens: [...cut.tokens.dataSync()], mask: [...cut.mask.dataSync()], dFused: [...head.dFused.dataSync()] };
  tf.dispose([cut.tokens, cut.mask, head.dFused]);
  return { ...record, loss: head.loss, correct: head.correct, localLoss, parameters: byName(device) };
}

/** {@link syncStep} through the `…Async` methods, with every synchronous read refused while they run. */
async function asyncStep(device: SplitDevice, batch: MultimodalBatch, fused: tf.Tensor, dTokens: tf.Tensor): Promise<StepRecord> {
  const [cut, head, { localLoss }] = await withoutSyncReads(
    async () => [await device.encodeAsync(batch), await device.headStepAsync(fused, batch.labels!), await device.backwardAsync(batch, dTokens)] as const,
  );
  const record = { tokens: [...cut.tokens.dataSync()], mask: [...cut.mask.dataSync()], dFused: [...head.dFused.dataSync()] };
  tf.dispose([cut.tokens, cut.mask, head.dFused]);
  return { ...record, loss: head.loss, correct: head.correct, localLoss, parameters: byName(device) };
}

function attempt(act: () => unknown): unknown {
  try {
    act();
  } catch (err) {
    return err;
  }
  return null;
}

describe('SplitDevice', () => {
  it('encodes a batch into tokens [B, M, c] with absent modalities exactly zero, and the mask', () => {
    const device = freshDevice();
    const batch = toyBatch(1, B, PRESENT);

    const { tokens, mask } = device.encode(batch);

    expect(tokens.shape).toEqual([B, M, C]);
    expect(mask.arraySync()).toEqual(PRESENT);
    const values = tokens.arraySync();
    expect(values[1]![0]!.every((v) => v === 0)).toBe(true);
    expect(values[2]![1]!.every((v) => v === 0)).toBe(true);
    expect(values[0]![0]!.some((v) => v !== 0)).toBe(true);
    tf.dispose([tokens, mask]);
    disposeBatch(batch);
  });

  it("headStep's dFused is the per-example gradient of each example's own loss (finite differences)", () => {
    const device = freshDevice();
    const fused = tf.randomNormal([B, D], 0, 1, 'float32', 3) as tf.Tensor2D;
    const labels = tf.tensor1d([0, 1, 1, 0, 1, 0], 'int32');
    const perExampleLoss = (values: number[][], b: number): number =>
      tf.tidy(() => {
        const row = tf.tensor2d([values[b]!]);
        return crossEntropyLoss(device.predict(row), labels.slice([b], [1])).dataSync()[0]!;
      });

    const { dFused, loss, correct } = device.headStep(fused, labels);

    const base = fused.arraySync();
    const grads = dFused.arraySync();
    const eps = 1e-2;
    for (const [b, j] of [
      [0, 0],
      [1, 3],
      [4, 7],
      [5, 2],
    ] as const) {
      const plus = base.map((r) => [...r]);
      const minus = base.map((r) => [...r]);
      plus[b]![j]! += eps;
      minus[b]![j]! -= eps;
      const estimate = (perExampleLoss(plus, b) - perExampleLoss(minus, b)) / (2 * eps);
      expect(Math.abs(grads[b]![j]! - estimate), `at ${b},${j}`).toBeLessThan(1e-3 + 5e-3 * Math.abs(estimate));
    }
    const mean = tf.tidy(() => crossEntropyLoss(device.predict(fused), labels).dataSync()[0]!);
    expect(loss).toBeCloseTo(mean, 5);
    expect(Number.isInteger(correct) && correct >= 0 && correct <= B).toBe(true);
    tf.dispose([fused, labels, dFused]);
  });

  it('moves the device adapters along the end-to-end gradient of the split loss plus the local loss', () => {
    const device = freshDevice({ learningRate: 0.01, localHeadWeight: 0.5 });
    const edge = splitEdge();
    const batch = toyBatch(4, B, PRESENT);
    const variables = device.model.trainableAdapterVariables();
    const names = device.model.adapterNames();
    // Reference: the whole split model differentiated in one tape with respect to the device's variables.
    const restore = variables.map((v) => v.trainable);
    variables.forEach((v) => (v.trainable = true));
    const { value, grads } = tf.variableGrads(() => {
      const { tokens, mask } = device.encode(batch);
      const task = crossEntropyLoss(device.predict(edge.forward(tokens, mask)), batch.labels!);
      return tf.add(task, tf.mul(0.5, crossEntropyLoss(device.model.forward(batch).logits, batch.labels!))) as tf.Scalar;
    }, variables);
    variables.forEach((v, i) => (v.trainable = restore[i]!));
    const reference = new Map(variables.map((v, i) => [names[i]!, grads[v.name] ? grads[v.name]!.dataSync().slice() : null]));
    const before = byName(device);

    splitStepInProcess(device, edge, batch);

    const after = byName(device);
    let compared = 0;
    for (const [name, g] of reference) {
      if (!g) continue;
      const delta = after.get(name)!.map((v, i) => v - before.get(name)![i]!);
      g.forEach((gi, i) => {
        if (Math.abs(gi) < 1e-4) return;
        compared++;
        // Adam's first step is −lr · g / (|g| + ε): −lr times the gradient's sign.
        expect(delta[i]! * Math.sign(gi), `${name}[${i}]`).toBeCloseTo(-0.01, 3);
      });
    }
    expect(compared).toBeGreaterThan(50);
    tf.dispose([value, ...Object.values(grads)]);
    disposeBatch(batch);
    edge.dispose();
  });

  it('backward changes the adapters, concept projections, NAM head and task head, never the base', () => {
    const device = freshDevice({ learningRate: 0.01 });
    const edge = splitEdge();
    const batch = toyBatch(5);
    const base = device.model.baseVariables().map((v) => v.dataSync().slice());
    const before = byName(device);

    splitStepInProcess(device, edge, batch);

    const after = byName(device);
    const moved = [...after].filter(([name, values]) => maxAbsDiff(values, before.get(name)!) > 0).map(([name]) => name);
    for (const name of [...SPLIT_HEAD_NAMES, 'image/hidden/lora_b', 'audio/embedding/lora_b', 'image/concept/kernel', 'audio/nam/w1', 'fusion/nam/beta'])
      expect(moved).toContain(name);
    device.model.baseVariables().forEach((v, i) => expect(maxAbsDiff(v.dataSync(), base[i]!)).toBe(0));
    disposeBatch(batch);
    edge.dispose();
  });

  it("names its parameters as the model's adapters plus fusion/split_head/*, and round-trips them", () => {
    const source = freshDevice();
    const target = freshDevice();
    const edge = splitEdge();
    const batch = toyBatch(6);
    splitStepInProcess(source, edge, batch); // move source away from target's initial state

    const params = source.parameters();
    target.setParameters(params);

    const names = params.map((t) => t.name);
    expect(names.slice(0, -2)).toEqual(source.model.adapterNames());
    expect(names.slice(-2)).toEqual([...SPLIT_HEAD_NAMES]);
    expect(params.find((t) => t.name === 'fusion/split_head/kernel')!.shape).toEqual([D, SPLIT.classes]);
    expect(source.parameterCount()).toBe(params.reduce((n, t) => n + t.values.length, 0));
    const copied = byName(target);
    for (const t of params) expect(maxAbsDiff(copied.get(t.name)!, t.values), t.name).toBe(0);
    disposeBatch(batch);
    edge.dispose();
  });

  it('setParameters refuses a bad tensor with MODELS_BAD_INPUT and writes nothing, not even the good ones', () => {
    const device = freshDevice();
    const before = device.parameters();
    const shifted = before.map((t) => ({ ...t, values: t.values.map((v) => v + 1) }));
    const kernel = shifted.find((t) => t.name === 'image/concept/kernel')!;
    const head = shifted.find((t) => t.name === SPLIT_HEAD_NAMES[0])!;
    const bad = [
      [...shifted, { name: 'fusion/split_head/extra', shape: [1], values: new Float32Array(1) }],
      [...shifted.filter((t) => t !== kernel), { ...kernel, shape: [1, kernel.values.length] }],
      [...shifted.filter((t) => t !== head), { ...head, values: head.values.map(() => Infinity) }],
      [...shifted, head],
    ];

    const errors = bad.map((params) => attempt(() => device.setParameters(params)));

    errors.forEach((err) => expect(isModelsError(err, 'MODELS_BAD_INPUT'), String(err)).toBe(true));
    expect(String(errors[1])).toMatch(/SplitDevice\.setParameters: 'image\/concept\/kernel' has shape/);
    device.parameters().forEach((t, i) => expect(maxAbsDiff(t.values, before[i]!.values), t.name).toBe(0));
  });

  it('refuses mis-shaped fused features, labels and dTokens', () => {
    const device = freshDevice();
    const batch = toyBatch(7);
    const wrongFused = tf.zeros([B, D + 1]);
    const fused = tf.zeros([B, D]);
    const floatLabels = tf.zeros([B]);
    const outOfRange = tf.tensor1d([0, 1, 2, 0, 1, 0], 'int32');
    const wrongTokens = tf.zeros([B, M, C + 1]);

    for (const act of [
      () => device.predict(wrongFused),
      () => device.headStep(fused, floatLabels),
      () => device.headStep(fused, outOfRange),
      () => device.backward(batch, wrongTokens),
    ])
      expect(isModelsError(attempt(act), 'MODELS_BAD_INPUT')).toBe(true);
    expect(
      isModelsError(
        attempt(() => new SplitDevice({ model: device.model, fusedDim: 0 })),
        'MODELS_BAD_CONFIG',
      ),
    ).toBe(true);
    expect(
      isModelsError(
        attempt(() => new SplitDevice({ model: device.model, fusedDim: 4, localHeadWeight: -1 })),
        'MODELS_BAD_CONFIG',
      ),
    ).toBe(true);
    tf.dispose([wrongFused, fused, floatLabels, outOfRange, wrongTokens]);
    disposeBatch(batch);
  });

  it('resetOptimizer drops the moments and any held head gradient: the next step repeats a fresh first step', () => {
    const [device, fresh] = [freshDevice({ learningRate: 0.01 }), freshDevice({ learningRate: 0.01 })];
    const batch = toyBatch(11, B, PRESENT);
    const fused = tf.randomNormal([B, D], 0, 1, 'float32', 12) as tf.Tensor2D;
    const dTokens = tf.randomNormal([B, M, C], 0, 1, 'float32', 13) as tf.Tensor3D;
    const step = (d: SplitDevice): void => {
      tf.dispose(d.headStep(fused, batch.labels!).dFused);
      d.backward(batch, dTokens);
    };
    const initial = device.parameters();
    step(device);
    tf.dispose(device.headStep(fused, batch.labels!).dFused); // held, then dropped by the reset

    device.setParameters(initial);
    device.resetOptimizer();
    step(device);
    step(fresh);

    const expected = byName(fresh);
    for (const t of device.parameters()) expect(maxAbsDiff(t.values, expected.get(t.name)!), t.name).toBe(0);
    tf.dispose([fused, dTokens]);
    disposeBatch(batch);
  });

  it('discardHeadGradient drops the held head gradient but keeps the moments: the next backward applies only its own step', () => {
    // Arrange: three devices alike, each one step in (so Adam has moments and a step count).
    const [discarding, untouched, reset] = [freshDevice({ learningRate: 0.01 }), freshDevice({ learningRate: 0.01 }), freshDevice({ learningRate: 0.01 })];
    const batch = toyBatch(14, B, PRESENT);
    const fused = tf.randomNormal([B, D], 0, 1, 'float32', 15);
    const nextFused = tf.randomNormal([B, D], 0, 1, 'float32', 16);
    const dTokens = tf.randomNormal([B, M, C], 0, 1, 'float32', 17);
    const nextTokens = tf.randomNormal([B, M, C], 0, 1, 'float32', 18);
    for (const device of [discarding, untouched, reset]) {
      tf.dispose(device.headStep(fused, batch.labels!).dFused);
      device.backward(batch, dTokens);
    }
    const held = tf.memory().numTensors;

    // Act: a head step whose gradient is discarded (or reset away), then a backward on other tokens.
    tf.dispose(discarding.headStep(nextFused, batch.labels!).dFused);
    discarding.discardHeadGradient();
    const afterDiscard = tf.memory().numTensors;
    tf.dispose(reset.headStep(nextFused, batch.labels!).dFused);
    reset.resetOptimizer();
    for (const device of [discarding, untouched, reset]) device.backward(batch, nextTokens);

    // Assert: the discarding device took exactly the step of one that never ran the head step; the
    // reset one, whose second step is a first Adam step again, did not.
    expect(sameParameters(discarding, untouched)).toBe(true);
    expect(sameParameters(reset, untouched)).toBe(false);
    expect(afterDiscard).toBe(held);
    tf.dispose([fused, nextFused, dTokens, nextTokens]);
    disposeBatch(batch);
  });

  it('encodeAsync, headStepAsync and backwardAsync give bit for bit what their sync twins give, reading nothing synchronously and leaking nothing', async () => {
    // Arrange: two devices alike, one driven synchronously, one asynchronously, over two steps (the second uses Adam's moments).
    const [syncDevice, asyncDevice] = [freshDevice({ learningRate: 0.01 }), freshDevice({ learningRate: 0.01 })];
    const batch = toyBatch(19, B, PRESENT);
    const fused = [20, 21].map((seed) => tf.randomNormal([B, D], 0, 1, 'float32', seed) as tf.Tensor2D);
    const dTokens = [22, 23].map((seed) => tf.randomNormal([B, M, C], 0, 1, 'float32', seed) as tf.Tensor3D);
    const expected = [0, 1].map((i) => syncStep(syncDevice, batch, fused[i]!, dTokens[i]!));

    // Act
    const first = await asyncStep(asyncDevice, batch, fused[0]!, dTokens[0]!); // creates Adam's moments
    const before = tf.memory().numTensors;
    const second = await asyncStep(asyncDevice, batch, fused[1]!, dTokens[1]!);
    const after = tf.memory().numTensors;

    // Assert
    expect(first).toEqual(expected[0]);
    expect(second).toEqual(expected[1]);
    expect(second.localLoss).toBeGreaterThan(0);
    expect(after).toBe(before);
    tf.dispose([...fused, ...dTokens]);
    disposeBatch(batch);
  });

  it('on a text model the sync and async methods agree bit for bit, and both refuse out-of-range token ids and labels, moving nothing', async () => {
    // Arrange: the text path embeds ids the device checked itself (the model would check them with a synchronous read).
    const embedder = tinyEmbedder();
    const make = (): SplitDevice => {
      const device = new SplitDevice({ model: tinyModel(embedder), fusedDim: 4, learningRate: 0.01, seed: 2 });
      built.push(() => {
        device.model.dispose();
        device.dispose();
      });
      return device;
    };
    const [syncDevice, asyncDevice] = [make(), make()];
    const batch = tinyBatch(3);
    const numModalities = syncDevice.model.modalities.length;
    const fused = tf.randomNormal([TINY.batch, 4], 0, 1, 'float32', 24);
    const dTokens = tf.randomNormal([TINY.batch, numModalities, syncDevice.model.conceptDim], 0, 1, 'float32', 25);
    const badIds = { ...batch, text: tf.tensor2d([[1], [6], [1], [1]], [TINY.batch, 1], 'int32') };
    const badLabels = { ...batch, labels: tf.tensor1d([0, 1, 2, 3], 'int32') };
    const expected = syncStep(syncDevice, batch, fused, dTokens);
    const before = byName(asyncDevice);

    // Act
    const errors = [
      attempt(() => syncDevice.encode(badIds)),
      attempt(() => syncDevice.backward(badIds, dTokens)),
      attempt(() => syncDevice.headStep(fused, badLabels.labels)),
      await asyncDevice.encodeAsync(badIds).catch((err: unknown) => err),
      await asyncDevice.backwardAsync(badIds, dTokens).catch((err: unknown) => err),
      await asyncDevice.backwardAsync(badLabels, dTokens).catch((err: unknown) => err),
      await asyncDevice.headStepAsync(fused, badLabels.labels).catch((err: unknown) => err),
    ];
    const unmoved = byName(asyncDevice);
    const actual = await asyncStep(asyncDevice, batch, fused, dTokens);

    // Assert
    errors.forEach((err) => expect(isModelsError(err, 'MODELS_BAD_INPUT'), String(err)).toBe(true));
    expect(String(errors[4])).toContain('SplitDevice.backwardAsync: text ids must lie in [0, 6), got [1, 6]');
    expect(String(errors[6])).toContain('SplitDevice.headStepAsync: labels must lie in [0, 3), got [0, 3]');
    for (const [name, values] of unmoved) expect(maxAbsDiff(values, before.get(name)!), name).toBe(0);
    expect(actual).toEqual(expected);
    tf.dispose([fused, dTokens, badIds.text, badLabels.labels]);
    disposeBatch(batch);
  });

  it('leaks no tensors across encode, headStep and backward', () => {
    const device = freshDevice();
    const batch = toyBatch(8, B, PRESENT);
    const fused = tf.randomNormal([B, D], 0, 1, 'float32', 9) as tf.Tensor2D;
    const dTokens = tf.randomNormal([B, M, C], 0, 1, 'float32', 10) as tf.Tensor3D;
    const step = (): void => {
      const cut = device.encode(batch);
      const head = device.headStep(fused, batch.labels!);
      device.backward(batch, dTokens);
      tf.dispose([cut.tokens, cut.mask, head.dFused]);
    };
    step(); // creates Adam's moments
    const before = tf.memory().numTensors;

    for (let i = 0; i < 3; i++) step();
    tf.dispose(device.headStep(fused, batch.labels!).dFused); // a held head gradient is released by dispose
    const after = tf.memory().numTensors;

    expect(after).toBe(before + 2);
    tf.dispose([fused, dTokens]);
    disposeBatch(batch);
  });
});
