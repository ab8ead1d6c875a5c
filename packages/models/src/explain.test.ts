import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  explain,
  explainAsync,
  explanationConsistency,
  saliency,
  saliencyAsync,
  saliencyByModalityAsync,
  shapeFunctionGrid,
  shapeFunctionGridAsync,
  termRemovalFaithfulness,
  type Explanation,
} from './explain.js';
import type { Modality } from './encoders.js';
import { TINY, disposeBatch, tinyBatch, tinyEmbedder, tinyModel, withoutSyncReads } from './fixtures.test-util.js';
import type { MultimodalBatch, MultimodalModel } from './model.js';

const embedder = tinyEmbedder();
afterAll(() => embedder.dispose());
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

/** A hand-written explanation: 2 modalities × 2 concepts, 2 classes. */
function handMade(contributions: number[][][], present: number[][]): Explanation {
  const batchSize = contributions.length;
  const logits = contributions.map((terms) => [0, 1].map((j) => terms.reduce((s, t) => s + t[j]!, 0)));
  const mc = contributions.map((terms) => [0, 1].map((m) => [0, 1].map((j) => terms[2 * m]![j]! + terms[2 * m + 1]![j]!)));
  return {
    modalities: ['image', 'text'],
    numClasses: 2,
    conceptDim: 2,
    batchSize,
    termNames: ['image/z0', 'image/z1', 'text/z0', 'text/z1'],
    predicted: Int32Array.from(logits.map((l) => (l[1]! > l[0]! ? 1 : 0))),
    logits: Float32Array.from(logits.flat()),
    probabilities: new Float32Array(batchSize * 2),
    beta: new Float32Array(2),
    concepts: new Float32Array(batchSize * 4),
    contributions: Float32Array.from(contributions.flat(2)),
    modalityContributions: Float32Array.from(mc.flat(2)),
    modalityAttribution: new Float32Array(batchSize * 2),
    present: Float32Array.from(present.flat()),
  };
}

describe('explanation metrics', () => {
  it('EC is the cosine of the class-centred modality vectors (raw with {centred: false}), NaN when one is absent', () => {
    const e = handMade(
      [
        [
          [1, 0],
          [0, 0],
          [2, 0],
          [0, 0],
        ],
        [
          [1, 0],
          [0, 0],
          [0, 1],
          [0, 0],
        ],
        [
          [1, 0],
          [0, 0],
          [0, 0],
          [0, 0],
        ],
      ],
      [
        [1, 1],
        [1, 1],
        [1, 0],
      ],
    );

    const ec = explanationConsistency(e, 'image', 'text');
    const raw = explanationConsistency(e, 'image', 'text', { centred: false });

    // Example 0: image (1, 0), text (2, 0) → centred (½, −½) and (1, −1): 1. Example 1: image (1, 0),
    // text (0, 1) → centred (½, −½) and (−½, ½): −1, while the raw vectors are orthogonal: 0.
    expect(ec.perExample[0]).toBeCloseTo(1, 12);
    expect(ec.perExample[1]).toBeCloseTo(-1, 12);
    expect(Number.isNaN(ec.perExample[2])).toBe(true);
    expect(ec.mean).toBeCloseTo(0, 12);
    expect(raw.perExample[0]).toBeCloseTo(1, 12);
    expect(raw.perExample[1]).toBeCloseTo(0, 12);
    expect(raw.mean).toBeCloseTo(0.5, 12);
  });

  it("EC ignores a constant added to all of one modality's class contributions, which leaves the probabilities unchanged", () => {
    // Image (1, 0) and text (0, 1); then text's two terms each gain +2 on both classes.
    const plain = handMade(
      [
        [
          [1, 0],
          [0, 0],
          [0, 1],
          [0, 0],
        ],
      ],
      [[1, 1]],
    );
    const shifted = handMade(
      [
        [
          [1, 0],
          [0, 0],
          [2, 3],
          [2, 2],
        ],
      ],
      [[1, 1]],
    );

    expect(shifted.logits[1]! - shifted.logits[0]!).toBeCloseTo(plain.logits[1]! - plain.logits[0]!, 12);
    expect(explanationConsistency(shifted, 'image', 'text').mean).toBeCloseTo(explanationConsistency(plain, 'image', 'text').mean, 12);
    // Raw: (1, 0) · (4, 5) / √41 instead of 0.
    expect(explanationConsistency(shifted, 'image', 'text', { centred: false }).mean).toBeCloseTo(4 / Math.sqrt(41), 6);
    expect(explanationConsistency(plain, 'image', 'text', { centred: false }).mean).toBeCloseTo(0, 12);
  });

  it('term-removal faithfulness rewards removing the truly important term and is zero when every term is removed', () => {
    // Only term 0 supports class 0: logits (3, 0). Removing it drops p from σ(3) to 0.5.
    const e = handMade(
      [
        [
          [3, 0],
          [0, 0],
          [0, 0],
          [0, 0],
        ],
      ],
      [[1, 1]],
    );
    const topDrop = 1 / (1 + Math.exp(-3)) - 0.5;

    const one = termRemovalFaithfulness(e, { k: 1, rng: createRng(1), trials: 400 });
    const all = termRemovalFaithfulness(e, { k: 4, rng: createRng(1) });

    // A random single removal hits term 0 one time in four on average.
    expect(one.perExample[0]).toBeGreaterThan(topDrop * 0.6);
    expect(one.perExample[0]).toBeLessThan(topDrop * 0.9);
    expect(all.mean).toBeCloseTo(0, 12);
    expect(() => termRemovalFaithfulness(e, { k: 0, rng: createRng(1) })).toThrowError(/MODELS_BAD_CONFIG/);
  });
});

describe('explain on a model', () => {
  it('returns contributions that add up to the logits, attributions that sum to 1, and leaks nothing', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(2);
    explain(model, batch);
    const before = tf.memory().numTensors;

    const e = explain(model, batch);
    const s = saliency(model, batch, 'image');

    expect(tf.memory().numTensors).toBe(before);
    const f = e.termNames.length;
    for (let b = 0; b < e.batchSize; b++) {
      for (let j = 0; j < e.numClasses; j++) {
        let sum = e.beta[j]!;
        for (let t = 0; t < f; t++) sum += e.contributions[(b * f + t) * e.numClasses + j]!;
        expect(Math.abs(sum - e.logits[b * e.numClasses + j]!)).toBeLessThan(1e-5);
      }
      const share = [0, 1, 2].reduce((a, m) => a + e.modalityAttribution[b * 3 + m]!, 0);
      expect(share).toBeCloseTo(1, 5);
    }
    expect(s.shape).toEqual([TINY.batch, 8, 8]);
    model.dispose();
    disposeBatch(batch);
  });

  it('saliency covers text tokens (zero at padding) and audio frames', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(3);

    const text = saliency(model, batch, 'text');
    const audio = saliency(model, batch, 'audio', Int32Array.from([0, 1, 2, 0]));

    expect(text.shape).toEqual([TINY.batch, TINY.length]);
    const ids = batch.text!.dataSync();
    ids.forEach((id, i) => {
      if (id === 0) expect(text.values[i]).toBe(0);
    });
    expect(text.values.some((v) => v !== 0)).toBe(true);
    expect(audio.shape).toEqual([TINY.batch, TINY.frames]);
    expect(audio.values.every(Number.isFinite)).toBe(true);
    expect(() => saliency(model, { image: batch.image! }, 'text')).toThrowError(/MODELS_BAD_INPUT/);
    model.dispose();
    disposeBatch(batch);
  });

  it('samples every shape function on a grid', () => {
    const model = tinyModel(embedder);

    const g = shapeFunctionGrid(model, { points: 5 });

    expect(g.termNames).toHaveLength(6);
    expect(g.values).toHaveLength(6 * 5 * TINY.classes);
    expect(Array.from(g.grid)).toEqual([-1, -0.5, 0, 0.5, 1]);
    // f(z) = terms at z: compare one point with a direct evaluation.
    const direct = tf.tidy(() => model.head.terms(tf.fill([1, 6], 0.5)).dataSync());
    for (let t = 0; t < 6; t++)
      for (let j = 0; j < TINY.classes; j++) expect(g.values[(t * 5 + 3) * TINY.classes + j]).toBeCloseTo(direct[t * TINY.classes + j]!, 5);
    model.dispose();
  });
});

describe('explanations of a linear-head model', () => {
  it('explains term by term (terms sum to the logits) and its shape functions are lines through 0', () => {
    const model = tinyModel(embedder, { head: 'linear' });
    const batch = tinyBatch(2);

    const e = explain(model, batch);
    const ec = explanationConsistency(e, 'image', 'text');
    const fs = termRemovalFaithfulness(e, { k: 2, rng: createRng(1) });
    const g = shapeFunctionGrid(model, { points: 3 });

    for (let b = 0; b < e.batchSize; b++) {
      for (let j = 0; j < TINY.classes; j++) {
        let sum = e.beta[j]!;
        for (let t = 0; t < 6; t++) sum += e.contributions[(b * 6 + t) * TINY.classes + j]!;
        expect(sum).toBeCloseTo(e.logits[b * TINY.classes + j]!, 4);
      }
    }
    expect(Number.isFinite(ec.mean)).toBe(true);
    expect(Number.isFinite(fs.mean)).toBe(true);
    // Grid [-1, 0, 1]: f(0) = 0 and f(-1) = -f(1) for every term and class.
    for (let t = 0; t < 6; t++) {
      for (let j = 0; j < TINY.classes; j++) {
        expect(Math.abs(g.values[(t * 3 + 1) * TINY.classes + j]!)).toBe(0);
        expect(g.values[(t * 3 + 0) * TINY.classes + j]).toBeCloseTo(-g.values[(t * 3 + 2) * TINY.classes + j]!, 6);
      }
    }
    model.dispose();
    disposeBatch(batch);
  });
});

describe('async explanations', () => {
  const modalities: Modality[] = ['image', 'text', 'audio'];

  it.each([['nam'], ['linear']] as const)('equal the synchronous forms exactly on the %s head and leak nothing', async (head) => {
    // Arrange
    const model = tinyModel(embedder, { head });
    const batch = tinyBatch(4);
    const classes = Int32Array.from([2, 0, 1, 2]);
    const before = tf.memory().numTensors;

    // Act
    const e = await explainAsync(model, batch);
    const s = await Promise.all(modalities.map((m) => saliencyAsync(model, batch, m)));
    const given = await saliencyAsync(model, batch, 'image', classes);
    const g = await shapeFunctionGridAsync(model, { points: 4, min: -2, max: 2 });

    // Assert
    expect(tf.memory().numTensors).toBe(before);
    expect(e).toEqual(explain(model, batch));
    modalities.forEach((m, i) => expect(s[i]).toEqual(saliency(model, batch, m)));
    expect(given).toEqual(saliency(model, batch, 'image', classes));
    expect(Array.from(given.classes)).toEqual([2, 0, 1, 2]);
    expect(g).toEqual(shapeFunctionGrid(model, { points: 4, min: -2, max: 2 }));
    // Guards against two wrong forms agreeing on nothing: the explanation is not degenerate.
    expect(e.logits.some((v) => v !== 0)).toBe(true);
    expect(s.every((x) => x.values.some((v) => v !== 0))).toBe(true);
    model.dispose();
    disposeBatch(batch);
  });

  /** Gradient × input of one modality with its own forward and backward pass: the per-modality computation, written out. */
  function onePassSaliency(model: MultimodalModel, batch: MultimodalBatch, m: Modality, classes: Int32Array): Float32Array {
    return tf.tidy(() => {
      const { labels, ...inputs } = batch;
      void labels;
      const oneHot = tf.oneHot(tf.tensor1d(classes, 'int32'), model.numClasses);
      const embedded = model.textEmbedder!.embed(inputs.text!);
      const objective = (logits: tf.Tensor): tf.Scalar => tf.sum(tf.mul(logits, oneHot));
      if (m === 'text') {
        const g = tf.grad((e: tf.Tensor) => objective(model.forward(inputs, { textEmbedded: e as tf.Tensor3D }).logits))(embedded);
        return tf.sum(tf.mul(g, embedded), 2).dataSync() as Float32Array;
      }
      const x = inputs[m]!;
      const g = tf.grad((input: tf.Tensor) => objective(model.forward({ ...inputs, [m]: input }, { textEmbedded: embedded }).logits))(x);
      return tf.sum(tf.mul(g, x), m === 'image' ? 3 : 2).dataSync() as Float32Array;
    });
  }

  it('give the saliency of every modality from one backward pass, equal to one pass per modality, leaking nothing', async () => {
    // Arrange
    const model = tinyModel(embedder);
    const batch = tinyBatch(7);
    const classes = Int32Array.from([1, 2, 0, 1]);
    const expected = modalities.map((m) => onePassSaliency(model, batch, m, classes));
    const before = tf.memory().numTensors;

    // Act
    const all = await withoutSyncReads(() => saliencyByModalityAsync(model, batch, modalities, classes));
    const two = await saliencyByModalityAsync(model, batch, ['audio', 'image']);

    // Assert
    expect(tf.memory().numTensors).toBe(before);
    modalities.forEach((m, i) => {
      const got = all[m]!.values;
      expect(got).toHaveLength(expected[i]!.length);
      expect(expected[i]!.some((v) => v !== 0)).toBe(true);
      got.forEach((v, j) => expect(v, `${m}[${j}]`).toBeCloseTo(expected[i]![j]!, 5));
      expect(Array.from(all[m]!.classes)).toEqual([1, 2, 0, 1]);
    });
    expect(Object.keys(two).sort()).toEqual(['audio', 'image']);
    expect(two.image).toEqual(await saliencyAsync(model, batch, 'image'));
    model.dispose();
    disposeBatch(batch);
  });

  it('refuse an empty or repeated modality list for batched saliency with MODELS_BAD_INPUT', async () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(8);

    await expect(saliencyByModalityAsync(model, batch, [])).rejects.toThrowError(/MODELS_BAD_INPUT.*distinct/);
    await expect(saliencyByModalityAsync(model, batch, ['image', 'image'])).rejects.toThrowError(/MODELS_BAD_INPUT.*distinct/);
    await expect(saliencyByModalityAsync(model, { image: batch.image! }, ['image', 'text'])).rejects.toThrowError(/MODELS_BAD_INPUT.*no text input/);
    model.dispose();
    disposeBatch(batch);
  });

  it('read nothing synchronously (where a WebGPU tab would get zeros)', async () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(5);
    const expected = explain(model, batch);

    const got = await withoutSyncReads(async () => ({
      explanation: await explainAsync(model, batch),
      saliency: await Promise.all(modalities.map((m) => saliencyAsync(model, batch, m))),
      grid: await shapeFunctionGridAsync(model, { points: 3 }),
    }));

    expect(got.explanation).toEqual(expected);
    expect(got.saliency.map((x) => x.shape)).toEqual([
      [TINY.batch, 8, 8],
      [TINY.batch, TINY.length],
      [TINY.batch, TINY.frames],
    ]);
    expect(got.grid.values).toHaveLength(6 * 3 * TINY.classes);
    // The stand-in does bite: the synchronous form fails under it.
    await expect(withoutSyncReads(() => Promise.resolve(explain(model, batch)))).rejects.toThrowError(/synchronous tensor read/);
    model.dispose();
    disposeBatch(batch);
  });

  it('refuse out-of-range labels, token ids and classes with MODELS_BAD_INPUT, leaking nothing', async () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(6);
    const badLabels = { ...batch, labels: tf.tensor1d([0, 1, 3, 0], 'int32') };
    const badIds = {
      ...batch,
      text: tf.tensor2d(
        [
          [1, 0, 0, 0, 0],
          [TINY.vocab, 0, 0, 0, 0],
          [1, 0, 0, 0, 0],
          [1, 0, 0, 0, 0],
        ],
        [TINY.batch, TINY.length],
        'int32',
      ),
    };
    const before = tf.memory().numTensors;

    await expect(explainAsync(model, badLabels)).rejects.toThrowError(/MODELS_BAD_INPUT.*labels must lie in \[0, 3\), got \[0, 3\]/);
    await expect(explainAsync(model, badIds)).rejects.toThrowError(/MODELS_BAD_INPUT.*token ids must lie in \[0, 6\), got \[0, 6\]/);
    await expect(saliencyAsync(model, badIds, 'image')).rejects.toThrowError(/MODELS_BAD_INPUT/);
    await expect(saliencyAsync(model, batch, 'image', Int32Array.from([0, 1, 3, 0]))).rejects.toThrowError(/MODELS_BAD_INPUT.*classes/);
    await expect(saliencyAsync(model, { image: batch.image! }, 'text')).rejects.toThrowError(/MODELS_BAD_INPUT/);
    await expect(shapeFunctionGridAsync(model, { min: 1, max: 1 })).rejects.toThrowError(/MODELS_BAD_CONFIG/);

    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    tf.dispose([badLabels.labels, badIds.text]);
    disposeBatch(batch);
  });
});
