import * as tf from '@tensorflow/tfjs';
import { isFlCoreError, tensor } from '@chorus/fl-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModelsError } from './errors.js';
import { TINY, disposeBatch, tinyBatch, tinyEmbedder, tinyModel } from './fixtures.test-util.js';
import { shapeFunctionGrid, shapeFunctionRoughness } from './explain.js';
import { exportMergedModel } from './io.js';
import type { MultimodalModel } from './model.js';

const embedder = tinyEmbedder();
afterAll(() => embedder.dispose());
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

function snapshot(model: MultimodalModel, groups?: string[]): Map<string, Float32Array> {
  return new Map(model.adapterParameters(groups).map((t) => [t.name, t.values]));
}

describe('MultimodalModel', () => {
  it('sums contributions and β to the logits', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch();

    const { logits, contributions, perModalityLogits } = model.forward(batch);
    const rebuilt = tf.add(tf.sum(contributions, 1), model.head.beta.read());

    expect(contributions.shape).toEqual([TINY.batch, 3 * 2, TINY.classes]);
    expect(perModalityLogits.shape).toEqual([TINY.batch, 3, TINY.classes]);
    expect(tf.max(tf.abs(tf.sub(rebuilt, logits))).dataSync()[0]).toBeLessThan(1e-5);
    model.dispose();
    disposeBatch(batch);
  });

  it('gives an absent modality exactly zero contribution, per batch and per example', () => {
    const model = tinyModel(embedder);
    const imageOnly = tinyBatch(1, ['image']);
    const partial = {
      ...tinyBatch(1),
      present: tf.tensor2d([
        [1, 1, 0],
        [1, 0, 1],
        [1, 1, 1],
        [0, 1, 1],
      ]),
    };

    const a = model.forward(imageOnly).contributions.arraySync();
    const b = model.forward(partial).contributions.arraySync();

    for (let i = 0; i < TINY.batch; i++) for (let t = 2; t < 6; t++) expect(a[i]![t]!.every((v) => v === 0)).toBe(true);
    const absent: [number, number][] = [
      [0, 2],
      [1, 1],
      [3, 0],
    ];
    for (const [i, m] of absent) for (const t of [2 * m, 2 * m + 1]) expect(b[i]![t]!.every((v) => v === 0)).toBe(true);
    expect(b[2]![4]!.some((v) => v !== 0)).toBe(true);
    model.dispose();
  });

  it('training lowers the loss, moves only adapters and head, and leaks no tensors', () => {
    const model = tinyModel(embedder, { learningRate: 0.03 });
    const batch = tinyBatch(3);
    const baseBefore = model.baseVariables().map((v) => v.dataSync().slice());
    const first = model.trainStep(batch, { modalWeight: 0.5 });
    const before = tf.memory().numTensors;

    let last = first;
    for (let i = 0; i < 20; i++) last = model.trainStep(batch, { modalWeight: 0.5 });
    const after = tf.memory().numTensors;

    expect(after).toBe(before);
    expect(last.loss).toBeLessThan(first.loss * 0.7);
    expect(first.modal).toBeGreaterThan(0);
    model.baseVariables().forEach((v, i) => expect(Array.from(v.dataSync())).toEqual(Array.from(baseBefore[i]!)));
    model.dispose();
    disposeBatch(batch);
  });

  it('an image-only client trains and leaves the other modalities untouched', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(2, ['image']);
    const others = snapshot(model, ['text', 'audio']);
    const image = snapshot(model, ['image']);

    for (let i = 0; i < 3; i++) model.trainStep(batch);

    for (const [name, values] of snapshot(model, ['text', 'audio'])) expect(Array.from(values), name).toEqual(Array.from(others.get(name)!));
    const moved = [...snapshot(model, ['image'])].filter(([name, values]) => values.some((v, i) => v !== image.get(name)![i]));
    expect(moved.map(([n]) => n)).toContain('image/nam/w3');
    expect(moved.map(([n]) => n)).toContain('image/embedding/lora_b');
    model.dispose();
    disposeBatch(batch);
  });

  it('alternates batches with different modality subsets without confusing optimiser state', () => {
    const model = tinyModel(embedder);
    const all = tinyBatch(2);
    const image = tinyBatch(3, ['image']);
    const text = tinyBatch(4, ['text']);

    const losses = [all, image, text, all, image].map((b) => model.trainStep(b).loss);

    expect(losses.every(Number.isFinite)).toBe(true);
    model.dispose();
    [all, image, text].forEach(disposeBatch);
  });

  it('full mode trains the base too', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(2);
    const before = model.baseVariables().map((v) => v.dataSync().slice());
    const flags = model.baseVariables().map((v) => v.trainable);

    model.trainStep(batch, { mode: 'full' });
    model.trainStep(batch);
    model.trainStep(batch, { mode: 'full' });

    const changed = model.baseVariables().filter((v, i) => v.dataSync().some((x, j) => x !== before[i]![j])).length;
    expect(changed).toBeGreaterThan(model.baseVariables().length / 2);
    expect(model.baseVariables().map((v) => v.trainable)).toEqual(flags);
    model.dispose();
    disposeBatch(batch);
  });

  it('adds the proximal and distillation terms without leaking', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(4);
    const teacherLogits = tf.tensor2d([
      [3, 0, 0],
      [0, 3, 0],
      [0, 0, 3],
      [0, 3, 0],
    ]);
    const global = model.adapterParameters(['image']).map((t) => ({ ...t, values: t.values.map((v) => v + 0.1) }));
    model.trainStep(batch);
    const before = tf.memory().numTensors;

    const result = model.trainStep(batch, { proximal: { mu: 0.1, global }, distillation: { teacherLogits, temperature: 2, weight: 0.5 } });

    expect(tf.memory().numTensors).toBe(before);
    expect(result.proximal).toBeGreaterThan(0);
    expect(result.distillation).toBeGreaterThan(0);
    expect(result.loss).toBeCloseTo(result.crossEntropy + 0.1 * result.modal + result.proximal + 0.5 * result.distillation, 4);
    model.dispose();
    disposeBatch(batch);
  });

  it('exchanges parameters by name and group', () => {
    const source = tinyModel(embedder, { seed: 9 });
    const target = tinyModel(embedder);
    const batch = tinyBatch(5);
    source.trainStep(batch);

    target.setAdapterParameters(source.adapterParameters(['image', 'fusion']));

    expect(source.adapterNames()).toContain('image/pointwise/lora_a');
    expect(source.adapterNames()).toContain('fusion/nam/beta');
    expect(new Set(source.adapterNames().map((n) => n.split('/')[0]))).toEqual(new Set(['image', 'text', 'audio', 'fusion']));
    const got = snapshot(target, ['image', 'fusion']);
    for (const [name, values] of snapshot(source, ['image', 'fusion'])) expect(Array.from(got.get(name)!)).toEqual(Array.from(values));
    expect(target.adapterParameterCount()).toBeLessThan(target.fullParameterCount());
    source.dispose();
    target.dispose();
    disposeBatch(batch);
  });

  it('refuses bad parameters and bad batches, changing nothing', () => {
    const model = tinyModel(embedder);
    const before = snapshot(model);
    const good = model.adapterParameters(['image']);
    const attempt = (f: () => unknown): unknown => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return null;
    };

    const unknown = attempt(() => model.setAdapterParameters([...good, tensor('image/nope', [1])]));
    const shape = attempt(() => model.setAdapterParameters([tensor('image/concept/bias', [3])]));
    const nonFinite = attempt(() => model.setAdapterParameters([{ ...good[0]!, values: good[0]!.values.map(() => Number.NaN) }]));
    const labels = attempt(() => model.trainStep({ ...tinyBatch(1, ['image']), labels: tf.tensor1d([0, 1, 2, 3], 'int32') }));
    const wrongShape = attempt(() => model.trainStep({ image: tf.zeros([4, 9, 9, 1]), labels: tf.tensor1d([0, 0, 0, 0], 'int32') }));
    const empty = attempt(() => model.predict({}));

    expect(isFlCoreError(unknown, 'PARAMS_MISMATCH')).toBe(true);
    expect(isFlCoreError(shape, 'PARAMS_MISMATCH')).toBe(true);
    expect(isFlCoreError(nonFinite, 'PARAMS_NON_FINITE')).toBe(true);
    for (const err of [labels, wrongShape, empty]) expect(isModelsError(err, 'MODELS_BAD_INPUT')).toBe(true);
    for (const [name, values] of snapshot(model)) expect(Array.from(values), name).toEqual(Array.from(before.get(name)!));
    model.dispose();
  });

  it('evaluates accuracy and predicts with merged adapters', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(6);
    for (let i = 0; i < 5; i++) model.trainStep(batch);
    const logits = model.predict(batch);

    model.merge();
    const merged = model.predict(batch);
    const mergedTrain = (() => {
      try {
        model.trainStep(batch);
        return null;
      } catch (err) {
        return err;
      }
    })();
    model.unmerge();
    const result = model.evaluate([batch]);

    expect(tf.max(tf.abs(tf.sub(logits, merged))).dataSync()[0]).toBeLessThan(1e-5);
    expect(isModelsError(mergedTrain, 'MODELS_BAD_CONFIG')).toBe(true);
    expect(result.numExamples).toBe(TINY.batch);
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
    expect(result.accuracy).toBeLessThanOrEqual(1);
    model.dispose();
    disposeBatch(batch);
  });
});

describe('MultimodalModel with the linear head', () => {
  it('names a kernel block per modality and one fusion bias, and sums terms to β + W·z', () => {
    const model = tinyModel(embedder, { head: 'linear' });
    const batch = tinyBatch();

    const { logits, contributions, concepts } = model.forward(batch);
    const kernel = tf.concat(
      model.modalities.map((m) => model.adapterParameters([m]).find((t) => t.name === `${m}/linear/kernel`)!).map((t) => tf.tensor(t.values, [...t.shape])),
      0,
    );
    const direct = tf.add(tf.matMul(concepts, kernel), model.conceptHead.beta.read());

    expect(model.headKind).toBe('linear');
    expect(model.adapterNames().filter((n) => n.includes('/linear/'))).toEqual([
      'image/linear/kernel',
      'text/linear/kernel',
      'audio/linear/kernel',
      'fusion/linear/bias',
    ]);
    expect(model.adapterNames().some((n) => n.includes('/nam/'))).toBe(false);
    expect(model.adapterParameters(['image']).find((t) => t.name === 'image/linear/kernel')!.shape).toEqual([2, TINY.classes]);
    expect(contributions.shape).toEqual([TINY.batch, 3 * 2, TINY.classes]);
    expect(tf.max(tf.abs(tf.sub(direct, logits))).dataSync()[0]).toBeLessThan(1e-5);
    model.dispose();
    disposeBatch(batch);
  });

  it('gives an absent modality zero concepts and zero contribution', () => {
    const model = tinyModel(embedder, { head: 'linear' });
    const partial = {
      ...tinyBatch(1),
      present: tf.tensor2d([
        [1, 1, 0],
        [1, 0, 1],
        [1, 1, 1],
        [0, 1, 1],
      ]),
    };

    const b = model.forward(partial).contributions.arraySync();

    const absent: [number, number][] = [
      [0, 2],
      [1, 1],
      [3, 0],
    ];
    for (const [i, m] of absent) for (const t of [2 * m, 2 * m + 1]) expect(b[i]![t]!.every((v) => v === 0)).toBe(true);
    expect(b[2]![4]!.some((v) => v !== 0)).toBe(true);
    model.dispose();
  });

  it('training lowers the loss', () => {
    const model = tinyModel(embedder, { head: 'linear', learningRate: 0.03 });
    const batch = tinyBatch(3);

    const first = model.trainStep(batch);
    let last = first;
    for (let i = 0; i < 20; i++) last = model.trainStep(batch);

    expect(last.loss).toBeLessThan(first.loss * 0.7);
    model.dispose();
    disposeBatch(batch);
  });

  it('an image-only client moves its image block and the bias, and no other modality', () => {
    const model = tinyModel(embedder, { head: 'linear' });
    const batch = tinyBatch(4, ['image']);
    const others = snapshot(model, ['text', 'audio']);
    const before = snapshot(model, ['image', 'fusion']);

    for (let i = 0; i < 3; i++) model.trainStep(batch);

    for (const [name, values] of snapshot(model, ['text', 'audio'])) expect(Array.from(values), name).toEqual(Array.from(others.get(name)!));
    const moved = [...snapshot(model, ['image', 'fusion'])].filter(([name, values]) => values.some((v, i) => v !== before.get(name)![i])).map(([n]) => n);
    expect(moved).toContain('image/linear/kernel');
    expect(moved).toContain('fusion/linear/bias');
    model.dispose();
    disposeBatch(batch);
  });

  it('refuses the NAM accessor and an unknown head with MODELS_BAD_CONFIG', () => {
    const model = tinyModel(embedder, { head: 'linear' });
    const attempt = (f: () => unknown): unknown => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return null;
    };

    const nam = attempt(() => model.head);
    const unknown = attempt(() => tinyModel(embedder, { head: 'tree' as never }));
    // The merged export rewrites NAM shape functions as Dense blocks, so it has nothing to rewrite here.
    const exported = attempt(() => exportMergedModel(model));

    expect(isModelsError(nam, 'MODELS_BAD_CONFIG')).toBe(true);
    expect(isModelsError(unknown, 'MODELS_BAD_CONFIG')).toBe(true);
    expect(isModelsError(exported, 'MODELS_BAD_CONFIG')).toBe(true);
    model.dispose();
  });
});

describe('trainStep modalWeight', () => {
  it('leaves L_modal out of the loss (and reports it as 0) at weight 0', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(7);

    const off = model.trainStep(batch, { modalWeight: 0 });
    const on = model.trainStep(batch, { modalWeight: 0.1 });

    expect(off.modal).toBe(0);
    expect(off.loss).toBeCloseTo(off.crossEntropy, 6);
    expect(on.modal).toBeGreaterThan(0);
    expect(on.loss).toBeCloseTo(on.crossEntropy + 0.1 * on.modal, 5);
    model.dispose();
    disposeBatch(batch);
  });
});

describe('trainStep L_intp (interpretabilityWeight)', () => {
  it('is off (reported 0, not in the loss) by default and at weight 0', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batch = tinyBatch(7);
    // Act
    const byDefault = model.trainStep(batch, { modalWeight: 0 });
    const atZero = model.trainStep(batch, { modalWeight: 0, interpretabilityWeight: 0 });
    // Assert
    for (const step of [byDefault, atZero]) {
      expect(step.interpretability).toBe(0);
      expect(step.loss).toBeCloseTo(step.crossEntropy, 6);
    }
    model.dispose();
    disposeBatch(batch);
  });

  it('adds λ₂ · L_intp, positive, to the loss and leaks no tensors', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batch = tinyBatch(7);
    model.trainStep(batch, { interpretabilityWeight: 0.5 }); // builds the optimiser's slots
    const before = tf.memory().numTensors;
    // Act
    const step = model.trainStep(batch, { modalWeight: 0.1, interpretabilityWeight: 0.5 });
    const after = tf.memory().numTensors;
    // Assert
    expect(step.interpretability).toBeGreaterThan(0);
    expect(step.loss).toBeCloseTo(step.crossEntropy + 0.1 * step.modal + 0.5 * step.interpretability, 5);
    expect(after).toBe(before);
    model.dispose();
    disposeBatch(batch);
  });

  it('is differentiable in every shape-function weight, and 0 smoothness plus sparsity for the linear head', () => {
    // Arrange
    const model = tinyModel(embedder);
    const linear = tinyModel(embedder, { head: 'linear' });
    const batch = tinyBatch(2);
    const namWeights = model.modalities.flatMap((m) => model.head.modalityWeights(m).map((w) => w.read() as tf.Variable));
    // Act
    const { value, grads } = tf.variableGrads(() => model.interpretabilityLoss(model.forward(batch).contributions), namWeights);
    const linearLoss = tf.tidy(() => {
      const { contributions } = linear.forward(batch);
      return [linear.interpretabilityLoss(contributions).dataSync()[0]!, tf.mean(tf.abs(contributions)).dataSync()[0]!];
    });
    // Assert
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    for (const w of namWeights) {
      const g = grads[w.name]!;
      expect(Array.from(g.dataSync()).every(Number.isFinite), w.name).toBe(true);
      expect(tf.max(tf.abs(g)).dataSync()[0], w.name).toBeGreaterThan(0);
    }
    // A linear head's "shape functions" are lines: only the sparsity part remains.
    expect(linearLoss[0]).toBeCloseTo(linearLoss[1]!, 5);
    expect(() => model.interpretabilityLoss(tf.zeros([2, 5, TINY.classes]))).toThrowError(/MODELS_BAD_INPUT/);
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
    linear.dispose();
    disposeBatch(batch);
  });

  it('training with it makes the shape functions measurably smoother than training without it', async () => {
    // Arrange: two identical models, trained alike except for λ₂; roughness measured on a grid 4× finer than the penalty's.
    const plain = tinyModel(embedder, { learningRate: 0.03 });
    const smoothed = tinyModel(embedder, { learningRate: 0.03 });
    const batch = tinyBatch(3);
    const fine = { points: 129 };
    // Act
    let last = { plain: 0, smoothed: 0 };
    for (let i = 0; i < 30; i++) {
      last = { plain: plain.trainStep(batch).crossEntropy, smoothed: smoothed.trainStep(batch, { interpretabilityWeight: 1 }).crossEntropy };
    }
    const roughPlain = await shapeFunctionRoughness(shapeFunctionGrid(plain, fine));
    const roughSmoothed = await shapeFunctionRoughness(shapeFunctionGrid(smoothed, fine));
    // Assert
    expect(roughSmoothed).toBeLessThan(0.5 * roughPlain);
    expect(last.smoothed).toBeLessThan(Math.log(TINY.classes)); // it still learns the task
    plain.dispose();
    smoothed.dispose();
    disposeBatch(batch);
  });

  it('refuses a negative or non-finite weight with MODELS_BAD_CONFIG, changing nothing', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(1);
    const before = snapshot(model);

    for (const interpretabilityWeight of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => model.trainStep(batch, { interpretabilityWeight })).toThrowError(/MODELS_BAD_CONFIG/);
    }
    for (const [name, values] of snapshot(model)) expect(Array.from(values), name).toEqual(Array.from(before.get(name)!));
    model.dispose();
    disposeBatch(batch);
  });
});

describe('trainStep modalLoss', () => {
  it("'distill' trains with cross-modal distillation in place of the Jensen–Shannon term; 'js' stays the default", () => {
    // Arrange: three models built alike.
    const [byDefault, js, distill] = [0, 1, 2].map(() => tinyModel(embedder));
    const batch = tinyBatch(7);
    // Act
    const d = byDefault!.trainStep(batch, { modalWeight: 0.5 });
    const j = js!.trainStep(batch, { modalWeight: 0.5, modalLoss: 'js' });
    const k = distill!.trainStep(batch, { modalWeight: 0.5, modalLoss: 'distill' });
    // Assert
    expect(d).toEqual(j);
    expect(k.crossEntropy).toBeCloseTo(j.crossEntropy, 6);
    expect(k.modal).toBeGreaterThan(0);
    expect(k.modal).not.toBeCloseTo(j.modal, 3);
    expect(k.loss).toBeCloseTo(k.crossEntropy + 0.5 * k.modal, 5);
    expect(snapshot(distill!)).not.toEqual(snapshot(js!));
    for (const m of [byDefault, js, distill]) m!.dispose();
    disposeBatch(batch);
  });

  it('refuses an unknown variant with MODELS_BAD_CONFIG, changing nothing', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(1);
    const before = snapshot(model);

    expect(() => model.trainStep(batch, { modalLoss: 'kl' as never })).toThrowError(/MODELS_BAD_CONFIG/);
    for (const [name, values] of snapshot(model)) expect(Array.from(values), name).toEqual(Array.from(before.get(name)!));
    model.dispose();
    disposeBatch(batch);
  });
});

describe('MultimodalModel with asynchronous reads', () => {
  it('trainStepAsync, evaluateAsync and adapterParametersAsync give what their synchronous twins give, leaking nothing', async () => {
    // Arrange: two models built alike, one driven synchronously, one asynchronously.
    const syncModel = tinyModel(embedder, { learningRate: 0.03 });
    const asyncModel = tinyModel(embedder, { learningRate: 0.03 });
    const batch = tinyBatch(3);
    await asyncModel.trainStepAsync(batch); // first step builds optimiser slots; count tensors after it
    syncModel.trainStep(batch);
    const before = tf.memory().numTensors;

    // Act
    const syncSteps = [1, 2, 3].map(() => syncModel.trainStep(batch, { modalWeight: 0.5 }));
    const asyncSteps: Awaited<ReturnType<MultimodalModel['trainStepAsync']>>[] = [];
    for (let i = 0; i < 3; i++) asyncSteps.push(await asyncModel.trainStepAsync(batch, { modalWeight: 0.5 }));
    const syncEval = syncModel.evaluate([batch]);
    const asyncEval = await asyncModel.evaluateAsync([batch]);
    const asyncParams = await asyncModel.adapterParametersAsync(['image', 'fusion']);
    const after = tf.memory().numTensors;

    // Assert
    expect(asyncSteps).toEqual(syncSteps);
    expect(asyncSteps[2]!.loss).toBeLessThan(asyncSteps[0]!.loss);
    expect(asyncSteps[0]!.modal).toBeGreaterThan(0);
    expect(asyncEval).toEqual(syncEval);
    expect(asyncParams).toEqual(syncModel.adapterParameters(['image', 'fusion']));
    expect(asyncModel.adapterShapes()).toEqual(asyncModel.adapterParameters().map((t) => ({ name: t.name, shape: t.shape })));
    expect(after).toBe(before);
    syncModel.dispose();
    asyncModel.dispose();
    disposeBatch(batch);
  });

  it('refuses out-of-range labels and token ids with MODELS_BAD_INPUT, changing nothing', async () => {
    // Arrange
    const model = tinyModel(embedder);
    const before = snapshot(model);
    const badLabels = { ...tinyBatch(1, ['image']), labels: tf.tensor1d([0, 1, 2, 3], 'int32') };
    const badTokens = {
      ...tinyBatch(1, ['text']),
      text: tf.tensor2d(
        [
          [1, 0, 0, 0, 0],
          [6, 0, 0, 0, 0],
          [1, 0, 0, 0, 0],
          [1, 0, 0, 0, 0],
        ],
        [TINY.batch, TINY.length],
        'int32',
      ),
    };
    const negativeLabel = { ...tinyBatch(1, ['audio']), labels: tf.tensor1d([0, -1, 0, 0], 'int32') };

    // Act
    const errors = await Promise.all([
      model.trainStepAsync(badLabels).catch((err: unknown) => err),
      model.trainStepAsync(badTokens).catch((err: unknown) => err),
      model.evaluateAsync([negativeLabel]).catch((err: unknown) => err),
    ]);

    // Assert
    for (const err of errors) expect(isModelsError(err, 'MODELS_BAD_INPUT'), String(err)).toBe(true);
    expect(String(errors[0])).toContain('labels must lie in [0, 3), got [0, 3]');
    expect(String(errors[1])).toContain('ids must lie in [0, 6), got [0, 6]');
    for (const [name, values] of snapshot(model)) expect(Array.from(values), name).toEqual(Array.from(before.get(name)!));
    model.dispose();
    for (const b of [badLabels, badTokens, negativeLabel]) disposeBatch(b);
  });
});
