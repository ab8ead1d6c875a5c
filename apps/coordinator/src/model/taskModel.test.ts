/**
 * TaskModel's data preparation: results do not depend on how the probe set is split into forward
 * passes (or log-mel computations), only the encoders a task uses are built, nothing leaks, and
 * the GloVe table is cut to the rows the held texts use.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import type { CandidateProbeOutputs, Tensor } from '@chorus/fl-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTask } from '../task/loadTask.js';
import { evaluatorTask } from '../testing/evaluatorTask.js';
import { isCoordinatorError } from '../errors.js';
import { DIGITS_WEIGHTS_DIR, TaskModel, ensureWasmBackend, trimVocabulary } from './taskModel.js';

const taskWith = (modalities: string[], probeExamples: number, testExamples = 0) =>
  evaluatorTask({ id: 'probe-chunks', modalities, probeExamples, testExamples, seed: 3 });

let weightsDir: string;
beforeAll(async () => {
  await ensureWasmBackend();
  // Pretrained weights for the image encoder only: the audio encoder must be built fresh.
  weightsDir = mkdtempSync(join(tmpdir(), 'chorus-weights-'));
  cpSync(join(DIGITS_WEIGHTS_DIR, 'image-base'), join(weightsDir, 'image-base'), { recursive: true });
});
afterAll(() => rmSync(weightsDir, { recursive: true, force: true }));

describe('TaskModel.create', () => {
  it('gives each probe example the same outputs whether it is probed in a pass of 4 or among 20 (two passes, log-mel in parts)', async () => {
    // Arrange: the same seed orders the public split the same way, so the 4-example probe set is the first 4 of the 20.
    const before = tf.memory().numTensors;
    const large = await TaskModel.create(taskWith(['image', 'audio'], 20), { weightsDir });
    const small = await TaskModel.create(taskWith(['image', 'audio'], 4), { weightsDir });
    try {
      // Act
      const a = large.probe(large.initialParameters());
      const b = small.probe(small.initialParameters());

      // Assert
      expect(Array.from(large.probeLabels.subarray(0, 4))).toEqual(Array.from(small.probeLabels));
      expect(a.probabilities.length).toBe(20 * 10);
      for (let i = 0; i < b.probabilities.length; i++) expect(a.probabilities[i]).toBeCloseTo(b.probabilities[i]!, 5);
      for (let m = 0; m < 2; m++) for (let i = 0; i < b.explanations![m]!.length; i++) expect(a.explanations![m]![i]).toBeCloseTo(b.explanations![m]![i]!, 5);
    } finally {
      large.dispose();
      small.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads the encoders that ship and builds only the missing ones, leaving no tensors behind', async () => {
    // Arrange
    const before = tf.memory().numTensors;

    // Act
    const model = await TaskModel.create(taskWith(['image', 'audio'], 4), { weightsDir });
    const pretrained = [...model.pretrained];
    const modalities = [...model.modalities];
    model.dispose();

    // Assert
    expect(pretrained).toEqual(['image']);
    expect(modalities).toEqual(['image', 'audio']);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** `base` with every value moved by up to ±scale (LoRA B included, so every adapter changes the outputs). */
function randomCandidate(base: readonly Tensor[], seed: number, scale = 0.2): Tensor[] {
  const rng = createRng(seed);
  return base.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map((v) => v + scale * (rng() * 2 - 1)) }));
}

/** Asserts two probe outputs agree to float32 rounding (absolute on probabilities, relative on explanations). */
function expectSameProbe(actual: CandidateProbeOutputs, expected: CandidateProbeOutputs): void {
  expect(actual.probabilities.length).toBe(expected.probabilities.length);
  actual.probabilities.forEach((v, i) => expect(Math.abs(v - expected.probabilities[i]!)).toBeLessThan(1e-5));
  expect(actual.explanations?.length).toBe(expected.explanations?.length);
  actual.explanations?.forEach((e, m) =>
    e.forEach((v, i) => {
      const want = expected.explanations![m]![i]!;
      expect(Math.abs(v - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
    }),
  );
}

describe('TaskModel.probeCandidates', () => {
  it('gives random candidates of the digits model the outputs of running the whole model for each, and refuses a bad one alone', async () => {
    // Arrange: every encoder, one built fresh (audio) and one pretrained (image).
    const model = await TaskModel.create(taskWith(['image', 'text', 'audio'], 12), { weightsDir: DIGITS_WEIGHTS_DIR });
    try {
      const initial = model.initialParameters();
      const candidates = [initial, ...[1, 2, 3, 4, 5].map((s) => randomCandidate(initial, s))];
      const bad = initial.map((t, i) => (i === 0 ? { ...t, values: t.values.map(() => Number.NaN) } : t));
      // Act
      const fast = model.probeCandidates([...candidates.slice(0, 2), bad, ...candidates.slice(2)]);
      const reference = model.probeOneByOne(candidates);
      // Assert
      expect(fast.map((o) => o.ok)).toEqual([true, true, false, true, true, true, true]);
      const good = fast.filter((o) => o.ok).map((o) => (o.ok ? o.outputs : null)!);
      good.forEach((out, i) => expectSameProbe(out, reference[i]!));
      expect(good[0]!.explanations).toHaveLength(3);
      expect(good[1]!.probabilities).not.toEqual(good[2]!.probabilities);
    } finally {
      model.dispose();
    }
  });

  it('answers for the global it is given after probing another (the kept activations hold nothing a candidate changes)', async () => {
    // Arrange
    const model = await TaskModel.create(taskWith(['image', 'audio'], 8), { weightsDir });
    try {
      const firstGlobal = randomCandidate(model.initialParameters(), 7);
      const secondGlobal = randomCandidate(model.initialParameters(), 8);
      // Act
      const first = model.probe(firstGlobal);
      const second = model.probe(secondGlobal);
      const [reference] = model.probeOneByOne([secondGlobal]);
      // Assert
      expectSameProbe(second, reference!);
      expect(Math.max(...second.probabilities.map((v, i) => Math.abs(v - first.probabilities[i]!)))).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  });
});

/** Asserts two evaluation records hold the same keys, the same accuracies and losses within 1e-5. */
function expectSameEvaluation(actual: Record<string, number>, expected: Record<string, number>): void {
  expect(Object.keys(actual)).toEqual(Object.keys(expected));
  for (const [key, want] of Object.entries(expected)) {
    if (key.endsWith('.loss')) expect(Math.abs(actual[key]! - want)).toBeLessThan(1e-5);
    else expect(actual[key]).toBe(want);
  }
}

describe('TaskModel.evaluate', () => {
  it('gives the figures of running the whole model, overall and per modality alone, for random globals of the digits model', async () => {
    // Arrange: every encoder, 40 test examples (three chunks, the last one short).
    const model = await TaskModel.create(taskWith(['image', 'text', 'audio'], 4, 40), { weightsDir: DIGITS_WEIGHTS_DIR });
    try {
      const globals = [model.initialParameters(), randomCandidate(model.initialParameters(), 21, 0.5)];
      // Act
      const fast = globals.map((g) => model.evaluate(g));
      const reference = globals.map((g) => model.evaluateUncached(g));
      // Assert
      fast.forEach((f, i) => expectSameEvaluation(f, reference[i]!));
      expect(Object.keys(fast[0]!)).toEqual([
        'eval.accuracy',
        'eval.loss',
        'eval.image.accuracy',
        'eval.image.loss',
        'eval.text.accuracy',
        'eval.text.loss',
        'eval.audio.accuracy',
        'eval.audio.loss',
        'eval.numExamples',
      ]);
      expect(fast[0]!['eval.numExamples']).toBe(40);
      // The pretrained encoders make the modalities' figures differ, so equal keys are not equal values by accident.
      expect(fast[1]!['eval.image.loss']).not.toBeCloseTo(fast[1]!['eval.audio.loss']!, 3);
      // The cache holds each encoder's first adapted layer's input and frozen part, for the image
      // encoder its 1×1 convolution's: 7·7·64 floats each per example, plus the text's and audio's.
      expect(model.evaluationCacheBytes).toBeGreaterThan(40 * 4 * 2 * 7 * 7 * 64);
    } finally {
      model.dispose();
    }
  }, 30_000);

  it('answers for the global it is given after evaluating another (the kept activations hold nothing a global changes)', async () => {
    // Arrange
    const model = await TaskModel.create(taskWith(['image', 'audio'], 4, 24), { weightsDir });
    try {
      const firstGlobal = randomCandidate(model.initialParameters(), 22, 0.5);
      const secondGlobal = randomCandidate(model.initialParameters(), 23, 0.5);
      // Act
      const first = model.evaluate(firstGlobal);
      const second = model.evaluate(secondGlobal);
      const reference = model.evaluateUncached(secondGlobal);
      // Assert
      expectSameEvaluation(second, reference);
      expect(Math.abs(second['eval.loss']! - first['eval.loss']!)).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  }, 30_000);
});

describe('TaskModel.rootUpdate', () => {
  const rootTask = (model: Record<string, unknown>) =>
    parseTask({
      ...taskWith(['image', 'audio'], 4),
      model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4, ...model },
      strategy: { name: 'fltrust', rootExamples: 8 },
    });

  it("trains FLTrust's root update with the task's loss options: L_intp's weight and L_modal's variant change it", async () => {
    // Arrange
    const [plain, intp, distill] = await Promise.all(
      [{}, { interpretabilityWeight: 1 }, { modalWeight: 1, modalLoss: 'distill' }].map((model) =>
        TaskModel.create(rootTask(model), { weightsDir, rootExamples: 8 }),
      ),
    );
    try {
      const global = plain!.initialParameters();
      // Act
      const updates = [plain!, plain!, intp!, distill!].map((m) => m.rootUpdate(global)!);
      // Assert
      const [first, again, withIntp, withDistill] = updates.map((u) => u.flatMap((t) => Array.from(t.values)));
      expect(again).toEqual(first);
      expect(withIntp).not.toEqual(first);
      expect(withDistill).not.toEqual(first);
    } finally {
      for (const m of [plain, intp, distill]) m!.dispose();
    }
  });
});

describe('trimVocabulary', () => {
  // Four 2-wide rows: row r holds [r, 10 + r].
  const table = new Float32Array([0, 10, 1, 11, 2, 12, 3, 13]);

  it('keeps padding and unknown first, then the used rows in id order, and renumbers them', () => {
    // Act
    const trimmed = trimVocabulary(table, 2, [0, 1], [new Uint16Array([3, 0, 0]), [3, 1]]);
    // Assert
    expect([...trimmed.vectors]).toEqual([0, 10, 1, 11, 3, 13]);
    expect([...trimmed.remap]).toEqual([
      [0, 0],
      [1, 1],
      [3, 2],
    ]);
  });

  it('refuses with CONFIG_INVALID an id outside the table, and padding that is not row 0', () => {
    // Act
    const outside = (() => {
      try {
        trimVocabulary(table, 2, [0, 1], [[4]]);
      } catch (err) {
        return err;
      }
      return null;
    })();
    const padding = (() => {
      try {
        trimVocabulary(table, 2, [1, 0], [[2]]);
      } catch (err) {
        return err;
      }
      return null;
    })();
    // Assert
    expect(isCoordinatorError(outside, 'CONFIG_INVALID')).toBe(true);
    expect(isCoordinatorError(padding, 'CONFIG_INVALID')).toBe(true);
  });
});
