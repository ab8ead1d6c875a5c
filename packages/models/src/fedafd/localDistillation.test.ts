import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { localDistillationLoss } from './localDistillation.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('localDistillationLoss', () => {
  it('is the mean over rows of the squared L2 distance on a 2×2 case', () => {
    // Row 0: (1, 0) vs (0, 1) → 1 + 1 = 2; row 1: (0, 1) vs (0, 1) → 0; mean 1.
    const z = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const g = tf.tensor2d([
      [0, 1],
      [0, 1],
    ]);

    const loss = localDistillationLoss([z], [g]);

    expect(loss.dataSync()[0]).toBeCloseTo(1, 6);
    tf.dispose([z, g, loss]);
  });

  it("sums the modalities' terms and vanishes when the client matches the global", () => {
    // Image: rows (3, 4) vs (0, 0) → 25 and (0, 0) vs (0, 0) → 0, mean 12.5; text: (1, 1) vs (0, 1) → 1 twice, mean 1.
    const image = tf.tensor2d([
      [3, 4],
      [0, 0],
    ]);
    const text = tf.tensor2d([
      [1, 1],
      [1, 1],
    ]);
    const zeros = tf.zeros([2, 2]);
    const textGlobal = tf.tensor2d([
      [0, 1],
      [0, 1],
    ]);

    const both = localDistillationLoss([image, text], [zeros, textGlobal]);
    const same = localDistillationLoss([text], [text]);

    expect(both.dataSync()[0]).toBeCloseTo(13.5, 5);
    expect(same.dataSync()[0]).toBe(0);
    tf.dispose([image, text, zeros, textGlobal, both, same]);
  });

  it('has the gradient 2 (z − g) / B, pulling each row towards the global one', () => {
    const z = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const g = tf.tensor2d([
      [0, 1],
      [0, 1],
    ]);

    const grad = tf.grad((x: tf.Tensor) => localDistillationLoss([x], [g]))(z);

    expect(Array.from(grad.dataSync())).toEqual([1, -1, 0, 0]);
    tf.dispose([z, g, grad]);
  });

  it('refuses unpaired or mismatched inputs with MODELS_BAD_INPUT and leaks nothing', () => {
    const a = tf.zeros([2, 2]);
    const b = tf.zeros([2, 3]);
    const before = tf.memory().numTensors;

    expect(() => localDistillationLoss([], [])).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(() => localDistillationLoss([a, a], [a])).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(() => localDistillationLoss([a], [b])).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });
});
