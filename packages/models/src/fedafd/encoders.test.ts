import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFeatureEncoder, encoderArchs } from './encoders.js';
import { SMALL, smallEmbedder } from './fixtures.test-util.js';

const embedder = smallEmbedder();
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => embedder.dispose());

describe('FedAFD feature encoders', () => {
  it.each(['bag-mlp', 'conv1d'])('text %s ignores trailing padding', (arch) => {
    const encoder = buildFeatureEncoder('text', arch, { textEmbedder: embedder }, { hiddenUnits: 5, seed: 3 });
    const short = tf.tensor2d([[1, 4]], [1, 2], 'int32');
    const padded = tf.tensor2d([[1, 4, 0, 0]], [1, 4], 'int32');

    const a = encoder.apply(short);
    const b = encoder.apply(padded);

    expect(a.shape).toEqual([1, 5]);
    Array.from(b.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(a.dataSync()[i]!, 6));
    tf.dispose([short, padded, a, b]);
    encoder.dispose();
  });

  it('has two architectures per modality and names its weights under the prefix', () => {
    const encoder = buildFeatureEncoder('audio', 'pool-mlp', { audioShape: SMALL.audio }, { hiddenUnits: 3 }, 'global/audio');

    expect(encoderArchs('image')).toHaveLength(2);
    expect(encoderArchs('text')).toHaveLength(2);
    expect(encoderArchs('audio')).toHaveLength(2);
    // mean and max of 8 bands → 3 → 3
    expect(encoder.weights.map((w) => w.name)).toEqual([
      'global/audio/dense_1/kernel',
      'global/audio/dense_1/bias',
      'global/audio/dense_2/kernel',
      'global/audio/dense_2/bias',
    ]);
    expect(encoder.weights[0]!.variable.shape).toEqual([2 * SMALL.audio[1], 3]);
    encoder.dispose();
  });

  it('refuses inputs of the wrong format and unknown archs with coded errors', () => {
    const encoder = buildFeatureEncoder('image', 'cnn', { imageShape: SMALL.image }, { filters: [2, 2], hiddenUnits: 3 });
    const wrong = tf.zeros([2, 9, 8, 1]);

    expect(() => encoder.apply(wrong)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(() => buildFeatureEncoder('image', 'bag-mlp', {})).toThrow(expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'arch' }));
    expect(() => buildFeatureEncoder('image', 'cnn', {}, { hiddenUnits: 0 })).toThrow(
      expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'hiddenUnits' }),
    );
    wrong.dispose();
    encoder.dispose();
  });
});
