import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MODAL_DISTILL_TEMPERATURE,
  contributionSparsity,
  crossEntropyLoss,
  crossModalDistillation,
  crossModalLoss,
  distillationLoss,
  modalConsistency,
  proximalTerm,
  shapeSmoothness,
} from './losses.js';

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

  it('cross-modal distillation is T² · KL(fused ‖ modality) over present modalities, zero for unimodal examples', () => {
    // Arrange: example 0 has both modalities; example 1 only the first (whose logits differ from the fused ones).
    const perModality = tf.tensor3d([
      [
        [2, 0],
        [0, 0],
      ],
      [
        [3, -3],
        [0, 0],
      ],
    ]);
    const fused = tf.tensor2d([
      [2, 0],
      [0, 0],
    ]);
    const present = tf.tensor2d([
      [1, 1],
      [1, 0],
    ]);
    const t = MODAL_DISTILL_TEMPERATURE;
    const softmax = (a: number, b: number): [number, number] => [Math.exp(a) / (Math.exp(a) + Math.exp(b)), Math.exp(b) / (Math.exp(a) + Math.exp(b))];
    const [p0, p1] = softmax(2 / t, 0);
    // Modality 0 equals the teacher (KL 0); modality 1 is uniform.
    const expected = (t * t * (0 + (p0 * Math.log(p0 / 0.5) + p1 * Math.log(p1 / 0.5)))) / 2 / 2;

    // Act
    const loss = value(crossModalDistillation(perModality, fused, present));
    const viaKind = value(crossModalLoss('distill', perModality, fused, present));

    // Assert
    expect(loss).toBeCloseTo(expected, 6);
    expect(viaKind).toBeCloseTo(expected, 6);
    expect(
      value(
        crossModalDistillation(
          perModality,
          fused,
          tf.tensor2d([
            [1, 0],
            [0, 1],
          ]),
        ),
      ),
    ).toBe(0);
  });

  it('cross-modal distillation holds the fused teacher fixed: no gradient reaches it, the modality heads get one', () => {
    const perModality = tf.tensor3d([
      [
        [1, -1, 0],
        [0, 2, 0],
      ],
    ]);
    const fused = tf.tensor2d([[1, 1, -2]]);
    const present = tf.tensor2d([[1, 1]]);

    const [toModalities, toFused] = tf.grads((a: tf.Tensor, b: tf.Tensor) => crossModalDistillation(a, b, present))([perModality, fused]);

    expect(Array.from(toFused!.dataSync())).toEqual([0, 0, 0]);
    expect(tf.max(tf.abs(toModalities!)).dataSync()[0]).toBeGreaterThan(1e-3);
  });

  it('crossModalLoss picks the Jensen–Shannon term for js and refuses unknown variants and bad shapes', () => {
    const perModality = tf.tensor3d([
      [
        [30, -30],
        [-30, 30],
      ],
    ]);
    const present = tf.tensor2d([[1, 1]]);
    const fused = tf.tensor2d([[0, 0]]);

    expect(value(crossModalLoss('js', perModality, fused, present))).toBeCloseTo(value(modalConsistency(perModality, present)), 6);
    expect(() => crossModalLoss('kl' as never, perModality, fused, present)).toThrowError(/MODELS_BAD_CONFIG/);
    expect(() => crossModalDistillation(perModality, tf.zeros([1, 3]), present)).toThrowError(/MODELS_BAD_INPUT/);
    expect(() => crossModalDistillation(perModality, fused, present, 0)).toThrowError(/MODELS_BAD_CONFIG/);
  });

  it('shape smoothness is zero for straight lines and the squared slope change for a parabola', () => {
    // Arrange: 5 grid points over [-1, 1] (step 0.5); two terms, one class: f(x) = 3x − 1 and g(x) = x².
    const step = 0.5;
    const xs = [-1, -0.5, 0, 0.5, 1];
    const values = tf.tensor3d(xs.map((x) => [[3 * x - 1], [x * x]]));
    // g's second difference is 2·step², so ((2·step²)/step)² = 4·step² at each interior point; f's is 0.
    const expected = (0 + 4 * step * step) / 2;

    // Act / Assert
    expect(value(shapeSmoothness(values, step))).toBeCloseTo(expected, 6);
    expect(value(shapeSmoothness(tf.tensor3d(xs.map((x) => [[2 * x]])), step))).toBeCloseTo(0, 6);
    expect(() => shapeSmoothness(values, 0)).toThrowError(/MODELS_BAD_CONFIG/);
    expect(() => shapeSmoothness(tf.zeros([2, 1, 1]), step)).toThrowError(/MODELS_BAD_INPUT/);
  });

  it('contribution sparsity is the mean absolute contribution', () => {
    expect(
      value(
        contributionSparsity(
          tf.tensor3d([
            [
              [1, -2],
              [0, 3],
            ],
          ]),
        ),
      ),
    ).toBeCloseTo(1.5, 6);
  });
});
