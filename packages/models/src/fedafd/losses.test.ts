import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isModelsError } from '../errors.js';
import { discriminatorLoss, encoderAdversarialLoss, representationDistillation, symmetricInfoNce } from './losses.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const value = (t: tf.Scalar): number => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

describe('symmetricInfoNce', () => {
  it('is log(1 + e⁻¹) in both directions for matched orthogonal pairs at τ = 1', () => {
    const a = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);

    const loss = value(symmetricInfoNce(a, a, 1));

    expect(loss).toBeCloseTo(Math.log(1 + Math.exp(-1)), 5);
    a.dispose();
  });

  it('averages the row and column cross-entropies when they differ', () => {
    // Cosines [[1, 1], [0, 0]] (b's rows are unit after normalisation): rows give log 2 each;
    // columns give −log(e/(e+1)) and −log(1/(e+1)).
    const a = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const b = tf.tensor2d([
      [2, 0],
      [1, 0],
    ]);

    const loss = value(symmetricInfoNce(a, b, 1));

    const rows = Math.log(2);
    const cols = (Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.E)) / 2;
    expect(loss).toBeCloseTo((rows + cols) / 2, 5);
    tf.dispose([a, b]);
  });

  it('sharpens with a lower temperature and refuses a bad one', () => {
    const a = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);

    expect(value(symmetricInfoNce(a, a, 0.1))).toBeLessThan(value(symmetricInfoNce(a, a, 1)));
    expect(() => symmetricInfoNce(a, a, 0)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_CONFIG' }));
    a.dispose();
  });

  it('refuses tensors of different shapes', () => {
    const a = tf.zeros([2, 2]);
    const b = tf.zeros([3, 2]);

    expect(() => symmetricInfoNce(a, b)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    tf.dispose([a, b]);
  });
});

describe('representationDistillation (Eq. 10)', () => {
  it('is the mean over samples of the squared L2 distance', () => {
    const student = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const teacher = tf.tensor2d([
      [0, 0],
      [0, 3],
    ]);

    expect(value(representationDistillation(student, teacher))).toBeCloseTo((1 + 4) / 2, 6);
    tf.dispose([student, teacher]);
  });

  it('raises a coded error for mismatched shapes', () => {
    const a = tf.zeros([2, 2]);
    const b = tf.zeros([2, 3]);
    let caught: unknown;
    try {
      representationDistillation(a, b);
    } catch (err) {
      caught = err;
    }
    expect(isModelsError(caught, 'MODELS_BAD_INPUT')).toBe(true);
    tf.dispose([a, b]);
  });
});

describe('BAA losses (Eq. 1–2)', () => {
  it('gives 2·log 2 to an undecided discriminator and −log 2 to the encoder', () => {
    const zero = tf.zeros([2, 1]);

    expect(value(discriminatorLoss(zero, zero))).toBeCloseTo(2 * Math.log(2), 6);
    expect(value(encoderAdversarialLoss(zero))).toBeCloseTo(-Math.log(2), 6);
    zero.dispose();
  });

  it('matches softplus by hand for confident logits', () => {
    const global = tf.tensor2d([[2]]);
    const local = tf.tensor2d([[-1]]);
    const softplus = (x: number): number => Math.log(1 + Math.exp(x));

    expect(value(discriminatorLoss(global, local))).toBeCloseTo(softplus(-2) + softplus(-1), 6);
    expect(value(encoderAdversarialLoss(local))).toBeCloseTo(-softplus(-1), 6);
    tf.dispose([global, local]);
  });
});
