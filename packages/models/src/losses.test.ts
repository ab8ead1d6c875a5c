import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropyLoss, distillationLoss, modalConsistency, proximalTerm } from './losses.js';

const value = (t: tf.Tensor): number => t.dataSync()[0]!;

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('losses', () => {
  it('cross-entropy of uniform logits is ln K', () => {
    expect(value(crossEntropyLoss(tf.zeros([3, 4]), tf.tensor1d([0, 1, 3], 'int32')))).toBeCloseTo(Math.log(4), 6);
  });

  it('L_modal is zero for agreeing modalities and for single-modality examples', () => {
    // Example 0: two modalities that agree; example 1: one modality present with wildly different logits elsewhere.
    const logits = tf.tensor3d([
      [
        [1, 2],
        [1, 2],
      ],
      [
        [5, -5],
        [-5, 5],
      ],
    ]);
    const present = tf.tensor2d([
      [1, 1],
      [1, 0],
    ]);

    expect(value(modalConsistency(logits, present))).toBeCloseTo(0, 6);
  });

  it('L_modal equals the Jensen–Shannon divergence for two disagreeing modalities', () => {
    // p = (1, 0)-ish and q = (0, 1)-ish ⇒ JS → ln 2.
    const logits = tf.tensor3d([
      [
        [30, -30],
        [-30, 30],
      ],
    ]);
    const present = tf.tensor2d([[1, 1]]);

    expect(value(modalConsistency(logits, present))).toBeCloseTo(Math.log(2), 5);
  });

  it('proximal term is μ/2 ‖w − w_g‖²', () => {
    const w = [tf.tensor1d([1, 2]), tf.tensor1d([3])];
    const g = [tf.tensor1d([0, 0]), tf.tensor1d([1])];
    // ‖·‖² = 1 + 4 + 4 = 9; μ = 0.5 ⇒ 2.25
    expect(value(proximalTerm(w, g, 0.5))).toBeCloseTo(2.25, 6);
    expect(() => proximalTerm(w, g, -1)).toThrowError(/MODELS_BAD_CONFIG/);
  });

  it('distillation is zero against itself and positive otherwise', () => {
    const s = tf.tensor2d([[1, 2, 3]]);
    expect(value(distillationLoss(s, s, 2))).toBeCloseTo(0, 6);
    expect(value(distillationLoss(s, tf.tensor2d([[3, 2, 1]]), 2))).toBeGreaterThan(0.1);
    expect(() => distillationLoss(s, tf.zeros([1, 2]), 2)).toThrowError(/MODELS_BAD_INPUT/);
  });
});
