import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_MEL_SILENCE } from './audio.js';
import { DELETION_FRACTIONS, deletedProbabilities, deletionFaithfulness, type Deletion, type DeletionFaithfulnessOptions } from './deletion.js';
import type { Modality } from './encoders.js';
import { isModelsError } from './errors.js';
import { saliency } from './explain.js';
import { TINY, disposeBatch, tinyEmbedder, tinyModel, withoutSyncReads } from './fixtures.test-util.js';
import type { MultimodalBatch, MultimodalModel } from './model.js';

const embedder = tinyEmbedder();
afterAll(() => embedder.dispose());
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

/**
 * A batch whose class c is written in a few input elements of every modality: image rows 2c–2c+1
 * lit over dim noise, caption token c+1 among filler tokens 4–5, audio frames 2c–2c+1 raised over
 * noise. A model trained on it relies on those elements, so deleting them should hurt.
 */
function evidenceBatch(size: number, seed: number): MultimodalBatch {
  const rng = createRng(seed);
  const [h, w] = TINY.image;
  const labels = Int32Array.from({ length: size }, (_, i) => i % TINY.classes);
  const image = new Float32Array(size * h * w);
  const text = new Int32Array(size * TINY.length);
  const audio = new Float32Array(size * TINY.frames * TINY.mels);
  labels.forEach((c, b) => {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) image[(b * h + y) * w + x] = y >> 1 === c ? 1 : 0.3 * rng();
    const where = Math.floor(rng() * 4);
    for (let t = 0; t < 4; t++) text[b * TINY.length + t] = t === where ? c + 1 : 4 + Math.floor(rng() * 2);
    for (let f = 0; f < TINY.frames; f++)
      for (let m = 0; m < TINY.mels; m++) audio[(b * TINY.frames + f) * TINY.mels + m] = (f >> 1 === c ? 2 : 0) + 0.3 * (rng() - 0.5);
  });
  return {
    image: tf.tensor4d(image, [size, h, w, 1]),
    text: tf.tensor2d(text, [size, TINY.length], 'int32'),
    audio: tf.tensor3d(audio, [size, TINY.frames, TINY.mels]),
    labels: tf.tensor1d(labels, 'int32'),
  };
}

function trained(steps: number): MultimodalModel {
  const model = tinyModel(embedder, { learningRate: 0.03 });
  const batch = evidenceBatch(12, 11);
  for (let i = 0; i < steps; i++) model.trainStep(batch);
  disposeBatch(batch);
  return model;
}

/** The evidence batch without labels (FS explains the model's own prediction). */
function inputsOf(batch: MultimodalBatch): MultimodalBatch {
  const { labels, ...inputs } = batch;
  void labels;
  return inputs;
}

describe('deletionFaithfulness', () => {
  const model = trained(60);
  const batch = evidenceBatch(12, 12);
  const inputs = inputsOf(batch);
  afterAll(() => {
    model.dispose();
    disposeBatch(batch);
  });

  it('is positive for a trained model: deleting the top-saliency pixels hurts far more than deleting random ones', async () => {
    // Act
    const fs = await deletionFaithfulness(model, inputs, { rng: createRng(1), trials: 8 });

    // Assert
    expect(fs.points.map((p) => p.fraction)).toEqual([...DELETION_FRACTIONS]);
    for (const p of fs.points) {
      expect(p.overall.fs, `overall at ${p.fraction}`).toBeGreaterThan(0.1);
      expect(p.perModality.image!.fs, `image at ${p.fraction}`).toBeGreaterThan(0.1);
      expect(p.perModality.image!.topDrop).toBeGreaterThan(p.perModality.image!.randomDrop);
      expect(p.overall.numExamples).toBe(12);
    }
    expect(fs.mean.overall).toBeGreaterThan(0.1);
    expect(fs.modalities).toEqual(['image', 'text', 'audio']);
  });

  it('fails (FS ≤ 0) when the attributions are reversed or point at the background', async () => {
    // Arrange: the saliency negated (the strongest counter-evidence first), and "attributions" that rank the darkest pixels first.
    const reversed = Object.fromEntries((['image', 'text', 'audio'] as const).map((m) => [m, saliency(model, inputs, m).values.map((v) => -v)]));
    const background = { image: inputs.image!.dataSync().map((v) => -v) as Float32Array };

    // Act
    const flipped = await deletionFaithfulness(model, inputs, { rng: createRng(1), trials: 8, attributions: reversed });
    const dark = await deletionFaithfulness(model, inputs, { rng: createRng(1), trials: 8, modalities: ['image'], attributions: background });

    // Assert
    for (const p of flipped.points) expect(p.overall.fs, `reversed at ${p.fraction}`).toBeLessThanOrEqual(0);
    for (const p of dark.points) expect(p.perModality.image!.fs, `background at ${p.fraction}`).toBeLessThanOrEqual(0);
    expect(flipped.mean.overall).toBeLessThan(0);
  });

  it('scores one modality by swapping its share of the additive logits, as a full forward pass of the edited batch would', async () => {
    // Arrange: with one modality tested, "overall" edits the same elements but re-runs the whole model.
    const present = tf.tensor2d(Array.from({ length: 12 }, (_, b) => [1, b % 3 === 0 ? 0 : 1, 1]));
    const options = { rng: createRng(8), trials: 3 };
    // Act
    const results = await Promise.all(
      (['image', 'text', 'audio'] as const).map(
        async (m) => [m, await deletionFaithfulness(model, { ...inputs, present }, { ...options, rng: createRng(8), modalities: [m] })] as const,
      ),
    );
    // Assert
    const rounded = (xs: Float64Array): string[] => Array.from(xs, (v) => (Number.isNaN(v) ? 'NaN' : v.toFixed(5)));
    for (const [m, fs] of results) {
      for (const p of fs.points) {
        const one = p.perModality[m]!;
        expect(rounded(one.perExample), `${m} at ${p.fraction}`).toEqual(rounded(p.overall.perExample));
        expect(one.numExamples).toBe(m === 'text' ? 8 : 12);
        expect(one.topDrop).toBeCloseTo(p.overall.topDrop, 5);
        expect(one.randomDrop).toBeCloseTo(p.overall.randomDrop, 5);
      }
    }
    present.dispose();
  });

  it('is exactly 0 when the whole input is deleted (top and random delete the same elements)', async () => {
    const fs = await deletionFaithfulness(model, inputs, { rng: createRng(2), fractions: [1], trials: 2 });

    for (const score of [fs.points[0]!.overall, ...Object.values(fs.points[0]!.perModality)]) {
      expect(score!.fs).toBe(0);
      expect(score!.topDrop).toBeCloseTo(score!.randomDrop, 12);
    }
  });

  it('scores a modality only on the examples that hold it, with some content in it', async () => {
    // Arrange: the caption of examples 0 and 1 marked absent; example 2's image all black (nothing to delete).
    const present = tf.tensor2d(Array.from({ length: 12 }, (_, b) => [1, b < 2 ? 0 : 1, 1]));
    const image = tf.tidy(() => tf.mul(inputs.image!, tf.reshape(tf.tensor1d(Array.from({ length: 12 }, (_, b) => (b === 2 ? 0 : 1))), [12, 1, 1, 1])));

    // Act
    const fs = await deletionFaithfulness(model, { ...inputs, image, present }, { rng: createRng(3), fractions: [0.2], trials: 2 });

    // Assert
    const { text, image: pixels } = fs.points[0]!.perModality;
    expect(text!.numExamples).toBe(10);
    expect(Number.isNaN(text!.perExample[0]!) && Number.isNaN(text!.perExample[1]!)).toBe(true);
    expect(Number.isFinite(text!.perExample[2]!)).toBe(true);
    expect(pixels!.numExamples).toBe(11);
    expect(Number.isNaN(pixels!.perExample[2]!)).toBe(true);
    expect(fs.points[0]!.overall.numExamples).toBe(12);
    tf.dispose([present, image]);
  });

  it('deletes only content: black pixels are never drawn, whatever the attribution says', async () => {
    // Arrange: rows 4–7 of every image black; attributions rank the black pixels first.
    const image = tf.tidy(() => tf.mul(inputs.image!, tf.reshape(tf.tensor1d([1, 1, 1, 1, 0, 0, 0, 0]), [1, 8, 1, 1])));
    const blackFirst = new Float32Array(12 * 64).map((_, i) => (i % 64 >= 32 ? 1 : 0));

    // Act
    const fs = await deletionFaithfulness(model, { image }, { rng: createRng(6), fractions: [0.5], trials: 4, attributions: { image: blackFirst } });

    // Assert: had the top half been the black pixels, deleting them would change nothing (a drop of exactly 0).
    const score = fs.points[0]!.overall;
    expect(score.topDrop).not.toBe(0);
    expect(Array.from(score.perExample).every((v) => v !== 0)).toBe(true);
    image.dispose();
  });

  it('is bit-reproducible from its seed, reads nothing synchronously and leaks no tensors', async () => {
    // Arrange
    const options = { rng: createRng(4), trials: 3, fractions: [0.1] };
    const reference = await deletionFaithfulness(model, inputs, { ...options, rng: createRng(4) });
    const before = tf.memory().numTensors;

    // Act
    const again = await withoutSyncReads(() => deletionFaithfulness(model, inputs, options));
    const after = tf.memory().numTensors;

    // Assert
    expect(again).toEqual(reference);
    expect(after).toBe(before);
  });

  it('refuses bad options with MODELS_BAD_CONFIG and bad attributions or modalities with MODELS_BAD_INPUT', async () => {
    const rng = createRng(1);
    const fail = (options: Partial<DeletionFaithfulnessOptions>, on: MultimodalBatch = inputs): Promise<unknown> =>
      deletionFaithfulness(model, on, { rng, ...options }).then(
        () => null,
        (err: unknown) => err,
      );

    for (const fractions of [[], [0], [1.5], [Number.NaN]]) expect(isModelsError(await fail({ fractions }), 'MODELS_BAD_CONFIG'), String(fractions)).toBe(true);
    expect(isModelsError(await fail({ trials: 0 }), 'MODELS_BAD_CONFIG')).toBe(true);
    expect(isModelsError(await fail({ audioSilence: Number.NEGATIVE_INFINITY }), 'MODELS_BAD_CONFIG')).toBe(true);
    expect(isModelsError(await fail({ attributions: { image: new Float32Array(3) } }), 'MODELS_BAD_INPUT')).toBe(true);
    expect(isModelsError(await fail({ modalities: ['audio', 'audio'] }), 'MODELS_BAD_INPUT')).toBe(true);
    expect(isModelsError(await fail({ modalities: ['text'] }, { image: inputs.image! }), 'MODELS_BAD_INPUT')).toBe(true);
  });

  it('scores every deletion from stacked passes as one forward pass per deletion would, however the passes are cut, leaking nothing', async () => {
    // Arrange: four deletions of three elements per example and modality, at offsets that differ by deletion.
    const size = 12;
    const modalities: Modality[] = ['image', 'text', 'audio'];
    const elements: Record<Modality, number> = { image: 64, text: TINY.length, audio: TINY.frames };
    const deletions: Deletion[] = Array.from({ length: 4 }, (_, d) =>
      Object.fromEntries(modalities.map((m) => [m, Array.from({ length: size }, (_, b) => [0, 1, 2].map((j) => (b + 5 * d + 2 * j) % elements[m]))])),
    );
    const predicted = tf.tidy(() => tf.argMax(model.forward(inputs).logits, 1).dataSync() as Int32Array);
    /** p(ŷ) after deleting `deleted` from the listed modalities only, by one plain forward pass. */
    const onePass = (deleted: Deletion, only: readonly Modality[]): Float32Array =>
      tf.tidy(() => {
        const edited: MultimodalBatch = { ...inputs };
        for (const m of only) {
          const keep = new Float32Array(size * elements[m]).fill(1);
          deleted[m]!.forEach((picked, b) => picked.forEach((e) => (keep[b * elements[m] + e] = 0)));
          if (m === 'text') edited.text = tf.mul(inputs.text!, tf.tensor2d(keep, [size, elements[m]], 'int32'));
          else if (m === 'image') edited.image = tf.mul(inputs.image!, tf.tensor4d(keep, [size, 8, 8, 1]));
          else {
            const mask = tf.tensor3d(keep, [size, elements[m], 1]);
            edited.audio = tf.add(tf.mul(inputs.audio!, mask), tf.mul(tf.sub(1, mask), LOG_MEL_SILENCE));
          }
        }
        const p = tf.softmax(model.forward(edited).logits);
        return tf.sum(tf.mul(p, tf.oneHot(tf.tensor1d(predicted, 'int32'), TINY.classes)), 1).dataSync() as Float32Array;
      });
    const expectedOverall = deletions.map((d) => onePass(d, modalities));
    const expectedAlone = Object.fromEntries(modalities.map((m) => [m, deletions.map((d) => onePass(d, [m]))]));
    const before = tf.memory().numTensors;

    for (const maxRows of [size, 2 * size + 5, 256]) {
      // Act
      const got = await withoutSyncReads(() => deletedProbabilities(model, inputs, deletions, { predicted, silence: LOG_MEL_SILENCE, maxRows }));

      // Assert
      expect(tf.memory().numTensors).toBe(before);
      const close = (a: Float32Array, b: Float32Array, what: string): void => a.forEach((v, i) => expect(v, `${what}[${i}]`).toBeCloseTo(b[i]!, 5));
      got.overall.forEach((p, d) => close(p, expectedOverall[d]!, `overall, deletion ${d}, ${maxRows} rows`));
      for (const m of modalities) got.perModality[m]!.forEach((p, d) => close(p, expectedAlone[m]![d]!, `${m}, deletion ${d}, ${maxRows} rows`));
    }
    // The deletions do change the prediction's probability: the comparison is not between constants.
    expect(expectedOverall[0]!.some((v, b) => Math.abs(v - expectedOverall[1]![b]!) > 1e-4)).toBe(true);
  });

  it('is near 0 for an untrained model, whose predictions hang on no particular element', async () => {
    const untrained = tinyModel(embedder);

    const fs = await deletionFaithfulness(untrained, inputs, { rng: createRng(1), trials: 8 });

    expect(Math.abs(fs.mean.overall)).toBeLessThan(0.01);
    untrained.dispose();
  });
});
