import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BaaDiscriminators } from './baa.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const DIM = 4;

function features(seed: number, mean: number): tf.Tensor2D {
  return tf.randomNormal([8, DIM], mean, 0.3, 'float32', seed);
}

describe('BaaDiscriminators (BAA, Eq. 1–2)', () => {
  it('has two D → h → h → 1 MLPs', () => {
    const baa = new BaaDiscriminators({ dim: DIM, hiddenUnits: 5 });

    expect(baa.parameterCount()).toBe(2 * (DIM * 5 + 5 + 5 * 5 + 5 + 5 + 1));
    expect(baa.weights.map((w) => w.name)).toContain('baa/cross/dense_3/kernel');
    baa.dispose();
  });

  it('lowers its loss when trained alone to tell local from global features', async () => {
    const baa = new BaaDiscriminators({ dim: DIM, hiddenUnits: 8, learningRate: 0.01, seed: 1 });
    const inputs = { local: [features(1, -1)], intraGlobal: [features(2, 1)], crossGlobal: [features(3, 0.5)] };

    const first = await baa.trainStep(inputs);
    let last = first;
    for (let i = 0; i < 40; i++) last = await baa.trainStep(inputs);

    expect(last).toBeLessThan(first * 0.5);
    tf.dispose([...inputs.local, ...inputs.intraGlobal, ...inputs.crossGlobal]);
    baa.dispose();
  });

  it("lowers the encoder's adversarial loss when the encoder is trained alone against fixed discriminators", async () => {
    const baa = new BaaDiscriminators({ dim: DIM, hiddenUnits: 8, learningRate: 0.01, seed: 2 });
    const inputs = { local: [features(4, -1)], intraGlobal: [features(5, 1)], crossGlobal: [features(6, 1)] };
    for (let i = 0; i < 20; i++) await baa.trainStep(inputs);
    const before = await Promise.all(baa.weights.map(async (w) => Array.from(await w.variable.read().data())));
    const x = tf.randomNormal([8, 3], 0, 1, 'float32', 7);
    const encoder = tf.variable(tf.randomNormal([3, DIM], 0, 0.5, 'float32', 8));
    const optimizer = tf.train.adam(0.05);
    const loss = (): tf.Scalar => baa.encoderLoss([tf.matMul(x, encoder)]);

    const first = tf.tidy(() => loss().dataSync()[0]!);
    for (let i = 0; i < 30; i++) optimizer.minimize(loss, false, [encoder]);
    const last = tf.tidy(() => loss().dataSync()[0]!);

    expect(last).toBeLessThan(first - 0.1);
    const after = await Promise.all(baa.weights.map(async (w) => Array.from(await w.variable.read().data())));
    expect(after).toEqual(before);
    tf.dispose([x, encoder, ...inputs.local, ...inputs.intraGlobal, ...inputs.crossGlobal]);
    optimizer.dispose();
    baa.dispose();
  });

  it('refuses inputs of the wrong width or count and leaks no tensors', async () => {
    const baa = new BaaDiscriminators({ dim: DIM, hiddenUnits: 3 });
    const ok = { local: [features(1, 0)], intraGlobal: [features(2, 0)], crossGlobal: [features(3, 0)] };
    await baa.trainStep(ok);
    const before = tf.memory().numTensors;

    await baa.trainStep(ok);
    expect(tf.memory().numTensors).toBe(before);
    await expect(baa.trainStep({ ...ok, crossGlobal: [] })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT' });
    const wide = tf.zeros([2, DIM + 1]);
    expect(() => baa.logits('intra', wide)).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    tf.dispose([wide, ...ok.local, ...ok.intraGlobal, ...ok.crossGlobal]);
    baa.dispose();
  });
});
