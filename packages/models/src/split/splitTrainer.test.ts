import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isModelsError } from '../errors.js';
import { SPLIT, disposeBatch, splitEdge, splitModel, toyBatch } from './fixtures.test-util.js';
import { SplitDevice } from './splitDevice.js';
import { evaluateSplit, splitStepInProcess } from './splitTrainer.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('splitStepInProcess and evaluateSplit', () => {
  it('learns a separable toy problem through the cut: split accuracy rises from chance to ≥ 0.85', () => {
    const { model, dispose } = splitModel({ learningRate: 0.01 });
    const device = new SplitDevice({ model, fusedDim: SPLIT.modelDim, learningRate: 0.01, seed: 1 });
    const edge = splitEdge({ learningRate: 0.01 });
    const train = [0, 1, 2, 3].map((i) => toyBatch(100 + i, 16));
    const test = [toyBatch(200, 32), toyBatch(201, 32)];
    const initial = evaluateSplit(device, edge, test);

    const steps = Array.from({ length: 120 }, (_, i) => splitStepInProcess(device, edge, train[i % train.length]!));
    const final = evaluateSplit(device, edge, test);

    expect(final.numExamples).toBe(64);
    expect(final.accuracy).toBeGreaterThanOrEqual(0.85);
    expect(final.accuracy).toBeGreaterThan(initial.accuracy);
    expect(final.loss).toBeLessThan(initial.loss);
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    expect(steps.at(-1)!.localLoss).toBeLessThan(steps[0]!.localLoss);
    [...train, ...test].forEach(disposeBatch);
    device.dispose();
    edge.dispose();
    dispose();
  });

  it('reports the loss, hits and size of the step, and leaks no tensors', () => {
    const { model, dispose } = splitModel();
    const device = new SplitDevice({ model, fusedDim: SPLIT.modelDim });
    const edge = splitEdge();
    const batch = toyBatch(3);
    const evaluation = evaluateSplit(device, edge, [batch]);
    const local = model.evaluate([batch]);
    const first = splitStepInProcess(device, edge, batch); // creates both sides' Adam moments
    const before = tf.memory().numTensors;

    for (let i = 0; i < 3; i++) splitStepInProcess(device, edge, batch);
    evaluateSplit(device, edge, [batch]);
    const after = tf.memory().numTensors;

    expect(after).toBe(before);
    expect(first.numExamples).toBe(SPLIT.batch);
    expect(first.loss).toBeCloseTo(evaluation.loss, 5);
    expect(first.correct).toBe(Math.round(evaluation.accuracy * SPLIT.batch));
    expect(first.localLoss).toBeCloseTo(local.loss, 5);
    disposeBatch(batch);
    device.dispose();
    edge.dispose();
    dispose();
  });

  it('refuses an edge that does not match the device with MODELS_BAD_CONFIG, and a batch without labels', () => {
    const { model, dispose } = splitModel();
    const device = new SplitDevice({ model, fusedDim: SPLIT.modelDim });
    const batch = toyBatch(4);
    const unlabelled = { image: batch.image!, audio: batch.audio! };
    const mismatched = [splitEdge({ modalities: ['audio', 'image'] }), splitEdge({ tokenDim: 3 }), splitEdge({ modelDim: 6 })];
    const attempt = (act: () => unknown): unknown => {
      try {
        act();
      } catch (err) {
        return err;
      }
      return null;
    };

    for (const edge of mismatched) {
      expect(
        isModelsError(
          attempt(() => splitStepInProcess(device, edge, batch)),
          'MODELS_BAD_CONFIG',
        ),
      ).toBe(true);
      expect(
        isModelsError(
          attempt(() => evaluateSplit(device, edge, [batch])),
          'MODELS_BAD_CONFIG',
        ),
      ).toBe(true);
    }
    const edge = splitEdge();
    expect(
      isModelsError(
        attempt(() => splitStepInProcess(device, edge, unlabelled)),
        'MODELS_BAD_INPUT',
      ),
    ).toBe(true);
    [...mismatched, edge].forEach((e) => e.dispose());
    disposeBatch(batch);
    device.dispose();
    dispose();
  });
});
