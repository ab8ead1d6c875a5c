import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LinearHead } from './linearHead.js';
import { NamHead } from './nam.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const MODALITIES = ['image', 'text'];
const heads = {
  NamHead: () => new NamHead({ modalities: [...MODALITIES], conceptDim: 3, hiddenUnits: 4, numClasses: 5 }),
  LinearHead: () => new LinearHead({ modalities: [...MODALITIES], conceptDim: 3, numClasses: 5 }),
};

describe.each(Object.entries(heads))('%s inputs', (name, make) => {
  it('takes one [batch, c] concept tensor per modality and a [batch, M] mask: contributions [batch, M·c, K]', () => {
    // Arrange
    const head = make();
    // Act
    const out = head.apply([tf.ones([2, 3]), tf.ones([2, 3]), tf.ones([2, 2])]) as tf.Tensor;
    // Assert
    expect(out.shape).toEqual([2, 6, 5]);
  });

  it.each([
    ['a missing mask', () => [tf.ones([2, 3]), tf.ones([2, 3])], 'expected 2 concept tensors and a mask, got 2 inputs'],
    ['concepts of the wrong width', () => [tf.ones([2, 3]), tf.ones([2, 4]), tf.ones([2, 2])], 'concepts must be [batch, 3], got [2,4]'],
    ['a mask of the wrong batch', () => [tf.ones([2, 3]), tf.ones([2, 3]), tf.ones([3, 2])], 'mask must be [2, 2], got [3,2]'],
    ['a mask of the wrong width', () => [tf.ones([2, 3]), tf.ones([2, 3]), tf.ones([2, 1])], 'mask must be [2, 2], got [2,1]'],
  ])('refuses %s with MODELS_BAD_INPUT naming the head', (_case, inputs, message) => {
    // Arrange: a head built on well-formed inputs first.
    const head = make();
    head.apply([tf.ones([2, 3]), tf.ones([2, 3]), tf.ones([2, 2])]);
    // Act / Assert
    expect(() => head.call(inputs())).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT', message: `MODELS_BAD_INPUT: ${name}.call: ${message}` }));
  });
});
