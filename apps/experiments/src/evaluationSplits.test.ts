import * as tf from '@tensorflow/tfjs';
import { useNodeBackend } from '@chorus/client/node';
import { describe, expect, it } from 'vitest';
import { describeSplits, drawSubset, experimentDataset, loadEvaluationSplits, stratifiedHoldout } from './evaluationSplits.js';

describe('stratifiedHoldout', () => {
  it('holds out each class by its share, disjoint from the rest, the same for the same seed', () => {
    // 6 of class 0, 3 of class 1, 1 of class 2; count 5: exact shares 3, 1.5, 0.5 → 3, then one more to class 1 (tie with class 2, lower class wins).
    const labels = [0, 1, 0, 2, 0, 1, 0, 0, 1, 0];
    const { held, rest } = stratifiedHoldout(labels, 5, 7);
    expect(held).toHaveLength(5);
    expect(held.filter((i) => labels[i] === 0)).toHaveLength(3);
    expect(held.filter((i) => labels[i] === 1)).toHaveLength(2);
    expect(held.filter((i) => labels[i] === 2)).toHaveLength(0);
    expect([...held, ...rest].sort((a, b) => a - b)).toEqual(labels.map((_, i) => i));
    expect(stratifiedHoldout(labels, 5, 7)).toEqual({ held, rest });
  });

  it('refuses a count outside the data with a coded error', () => {
    expect(() => stratifiedHoldout([0, 1], 3, 1)).toThrow(/EXPERIMENTS_BAD_INPUT/);
    expect(() => stratifiedHoldout([0, 1], -1, 1)).toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});

describe('drawSubset', () => {
  it('draws without repeats from the pool, ascending, all of it when asked for more', () => {
    const d = drawSubset([10, 20, 30, 40], 2, 3);
    expect(d).toHaveLength(2);
    expect(d[0]!).toBeLessThan(d[1]!);
    expect([10, 20, 30, 40]).toEqual(expect.arrayContaining(d));
    expect(drawSubset([5, 1], 9, 3)).toEqual([1, 5]);
  });
});

describe('experimentDataset', () => {
  const manifest = { datasets: { digits: { classes: ['a'], splits: {} } } } as never;

  it('refuses a name that is not an experiment dataset, and one the manifest lacks, with EXPERIMENTS_UNKNOWN_DATASET', () => {
    expect(() => experimentDataset('mnist', manifest)).toThrow(/EXPERIMENTS_UNKNOWN_DATASET: dataset 'mnist' is not one of digits, fashion-mm/);
    expect(() => experimentDataset('fashion-mm', manifest)).toThrow(/EXPERIMENTS_UNKNOWN_DATASET: dataset 'fashion-mm' is not in the built-in manifest/);
    expect(experimentDataset('digits', manifest)).toEqual({ classes: ['a'], splits: {} });
  });
});

describe('loadEvaluationSplits', () => {
  it('carves digits validation out of its test split and draws test only from the remainder', async () => {
    const { validation, test, info } = await loadEvaluationSplits('digits', { validationExamples: 40, testExamples: 30 });
    expect(info).toMatchObject({ dataset: 'digits', validationSource: 'carved from test', validationPool: 500, validationExamples: 40, testExamples: 30 });
    expect(info.testPool + info.validationPool).toBe(1501);
    expect(validation.numExamples).toBe(40);
    expect(test.numExamples).toBe(30);
    expect(describeSplits(info)).toMatch(/carved out of its test split/);
  });

  it('computes the same audio features whatever backend is active, and leaves that backend active', async () => {
    // Arrange: the first load on the default backend, the second with wasm active (as --verify loads).
    const first = await loadEvaluationSplits('digits', { validationExamples: 2, testExamples: 3 });
    await useNodeBackend('wasm');
    // Act
    const second = await loadEvaluationSplits('digits', { validationExamples: 2, testExamples: 3 });
    // Assert: bit-identical inputs, so stored runs recompute to the same numbers.
    const audio = async (d: typeof first.test): Promise<Float32Array> => (await d.read([0, 1, 2])).audio!.values as Float32Array;
    expect(Array.from(await audio(second.test))).toEqual(Array.from(await audio(first.test)));
    expect(tf.getBackend()).toBe('wasm');
  });

  it('refuses an unknown dataset with a coded error', async () => {
    await expect(loadEvaluationSplits('nope', { validationExamples: 1, testExamples: 1 })).rejects.toThrow(/EXPERIMENTS_UNKNOWN_DATASET/);
  });
});
