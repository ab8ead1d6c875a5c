import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLora, chainLayers, cloneLayer, toStandardModel } from './adapt.js';
import { PortableConv2D, portableConv2d, type PortableConv2DArgs } from './conv.js';
import { isModelsError } from './errors.js';
import { TINY, disposeBatch, tinyBatch, tinyEmbedder, tinyModel } from './fixtures.test-util.js';
import { LoraConv1x1 } from './lora.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

interface Case {
  label: string;
  input: [number, number, number, number];
  args: Omit<PortableConv2DArgs, 'name'>;
}

const CASES: Case[] = [
  { label: '3×3 same', input: [2, 6, 5, 3], args: { filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' } },
  { label: '2×3 same (uneven padding)', input: [2, 5, 6, 2], args: { filters: 3, kernelSize: [2, 3], padding: 'same' } },
  { label: '3×3 valid stride 2', input: [2, 7, 8, 2], args: { filters: 3, kernelSize: 3, strides: 2, padding: 'valid', activation: 'tanh' } },
  { label: '3×2 same stride [2, 1]', input: [1, 7, 5, 2], args: { filters: 2, kernelSize: [3, 2], strides: [2, 1], padding: 'same' } },
  { label: '1×1', input: [2, 4, 4, 5], args: { filters: 3, kernelSize: 1 } },
];

/** The outputs and the gradients of Σ y·r (r fixed and random) with respect to x, kernel and bias, for one layer. */
function outputsAndGradients(layer: tf.layers.Layer, x: tf.Tensor4D, r: tf.Tensor): { y: tf.Tensor; dx: tf.Tensor; dW: tf.Tensor[] } {
  const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const y = layer.apply(x) as tf.Tensor;
  const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, r)))(x);
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r)) as tf.Scalar, weights);
  return { y, dx, dW: weights.map((w) => grads[w.name]!) };
}

describe('portableConv2d', () => {
  it('computes a 2×2 valid convolution and its kernel gradient by hand', () => {
    // Arrange: x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], kernel = [[1, 0], [0, -1]] (one channel in and out).
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const kernel = tf.variable(tf.tensor4d([1, 0, 0, -1], [2, 2, 1, 1]));

    // Act: L = Σ y, so dL/dW[i, j] is the sum of the input window shifted by (i, j).
    const y = portableConv2d(x, kernel);
    const { grads } = tf.variableGrads(() => tf.sum(portableConv2d(x, kernel)) as tf.Scalar, [kernel]);

    // Assert: every y = x[r][c] − x[r+1][c+1] = −4; dW = [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]].
    expect(Array.from(y.dataSync())).toEqual([-4, -4, -4, -4]);
    expect(Array.from(grads[kernel.name]!.dataSync())).toEqual([12, 16, 24, 28]);
  });

  it('rejects mismatched channels and bad geometry with coded errors', () => {
    const x = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;

    const wrongChannels = (): unknown => portableConv2d(x, tf.zeros([3, 3, 3, 1]) as tf.Tensor4D);
    const zeroStride = (): unknown => portableConv2d(x, tf.zeros([3, 3, 2, 1]) as tf.Tensor4D, { strides: 0 });
    const badPadding = (): unknown => portableConv2d(x, tf.zeros([3, 3, 2, 1]) as tf.Tensor4D, { padding: 'full' as 'same' });

    expect(wrongChannels).toThrowError(/MODELS_BAD_INPUT/);
    expect(zeroStride).toThrowError(/MODELS_BAD_CONFIG/);
    expect(badPadding).toThrowError(/MODELS_BAD_CONFIG/);
  });
});

describe('PortableConv2D', () => {
  for (const { label, input, args } of CASES) {
    it(`equals tf.layers.conv2d in value and gradients (${label})`, () => {
      // Arrange: the same weights in both layers, a non-zero bias so its gradient is exercised.
      const portable = new PortableConv2D({ ...args, seed: 3 });
      const reference = tf.layers.conv2d({
        filters: args.filters,
        kernelSize: args.kernelSize,
        strides: args.strides ?? 1,
        padding: args.padding ?? 'valid',
        activation: args.activation ?? 'linear',
      });
      const x = tf.randomNormal(input, 0, 1, 'float32', 1) as tf.Tensor4D;
      portable.apply(x);
      reference.apply(x);
      const [kernel] = portable.getWeights();
      const bias = tf.randomNormal([args.filters], 0, 0.3, 'float32', 2);
      portable.setWeights([kernel!, bias]);
      reference.setWeights([kernel!, bias]);
      const r = tf.randomNormal((reference.apply(x) as tf.Tensor).shape, 0, 1, 'float32', 4);

      // Act
      const got = outputsAndGradients(portable, x, r);
      const want = outputsAndGradients(reference, x, r);

      // Assert
      expect(got.y.shape).toEqual(want.y.shape);
      expect(portable.computeOutputShape(input)).toEqual(want.y.shape);
      expect(maxDiff(got.y, want.y)).toBeLessThan(1e-5);
      expect(maxDiff(got.dx, want.dx)).toBeLessThan(1e-5);
      expect(got.dW.length).toBe(2);
      got.dW.forEach((g, i) => expect(maxDiff(g, want.dW[i]!)).toBeLessThan(1e-5));
    });
  }

  it('leaks no tensors through a gradient step', () => {
    const layer = new PortableConv2D({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' });
    const x = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 5) as tf.Tensor4D;
    layer.apply(x);
    const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const before = tf.memory().numTensors;

    tf.tidy(() => {
      tf.variableGrads(() => tf.sum(layer.apply(x) as tf.Tensor) as tf.Scalar, weights);
    });

    expect(tf.memory().numTensors).toBe(before);
  });

  it('round-trips through its config and refuses bad arguments', () => {
    const layer = new PortableConv2D({
      name: 'c',
      filters: 3,
      kernelSize: [2, 3],
      strides: [1, 2],
      padding: 'same',
      activation: 'elu',
      useBias: false,
      seed: 9,
    });

    const copy = cloneLayer(layer, true) as PortableConv2D;

    expect(copy).toBeInstanceOf(PortableConv2D);
    expect([copy.filters, copy.kernelSize, copy.strides, copy.padding, copy.activationName, copy.useBias, copy.seed]).toEqual([
      3,
      [2, 3],
      [1, 2],
      'same',
      'elu',
      false,
      9,
    ]);
    expect(() => new PortableConv2D({ filters: 0, kernelSize: 3 })).toThrowError(/MODELS_BAD_CONFIG/);
    expect(() => new PortableConv2D({ filters: 1, kernelSize: [3] as unknown as number })).toThrowError(/MODELS_BAD_CONFIG/);
    expect(() => new PortableConv2D({ filters: 1, kernelSize: 3, activation: 'softmax' as 'relu' })).toThrowError(/MODELS_BAD_CONFIG/);
  });

  it('runs forward and backward on wasm with the same results as cpu, using only kernels wasm, webgl and webgpu register', async () => {
    // Arrange: record which kernels one forward + backward pass dispatches (on cpu).
    const layer = new PortableConv2D({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', seed: 1 });
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 6) as tf.Tensor4D;
    layer.apply(x);
    const pass = (input: tf.Tensor4D): tf.Tensor[] => {
      const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.square(layer.apply(t) as tf.Tensor)))(input);
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(layer.apply(input) as tf.Tensor)) as tf.Scalar, weights);
      return [dx, ...weights.map((w) => grads[w.name]!)];
    };
    const profile = await tf.profile(() => tf.dispose(pass(x)));
    // The profile also lists scopes (the custom gradient's); keep the names that are kernels where it ran.
    const used = [...new Set(profile.kernelNames)].filter((k) => tf.getKernel(k, 'cpu') !== undefined);
    const onCpu = pass(x).map((t) => t.dataSync().slice());
    await import('@tensorflow/tfjs-backend-webgpu');
    const weights = layer.getWeights().map((w) => w.dataSync().slice());

    // Act
    expect(await tf.setBackend('wasm')).toBe(true);
    layer.setWeights(weights.map((w, i) => tf.tensor(w, layer.getWeights()[i]!.shape)));
    const onWasm = pass(tf.tensor4d(x.dataSync().slice(), x.shape)).map((t) => t.dataSync().slice());
    await tf.setBackend('cpu');

    // Assert
    expect(used).toContain('Conv2D');
    expect(used).not.toContain('Conv2DBackpropFilter');
    for (const backend of ['wasm', 'webgl', 'webgpu'])
      expect(
        used.filter((k) => tf.getKernel(k, backend) === undefined),
        backend,
      ).toEqual([]);
    onWasm.forEach((g, i) => g.forEach((v, j) => expect(Math.abs(v - onCpu[i]![j]!)).toBeLessThan(1e-4)));
  });
});

describe('PortableConv2D in adapted models', () => {
  it('applyLora turns Conv2D into PortableConv2D and toStandardModel turns it back, values unchanged', () => {
    const base = tf.sequential({
      layers: [
        tf.layers.conv2d({
          name: 'conv',
          inputShape: [5, 5, 1],
          filters: 2,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        }),
        new PortableConv2D({ name: 'pointwise', filters: 2, kernelSize: 1, activation: 'relu', seed: 2 }),
        tf.layers.flatten({ name: 'flat' }),
      ],
    });
    const x = tf.randomUniform([2, 5, 5, 1], 0, 1, 'float32', 3);

    const adapted = applyLora(base, { targets: ['pointwise'], rank: 1, alpha: 1 });
    const standard = toStandardModel(adapted, { merge: false });

    expect(chainLayers(adapted).map((l) => l.getClassName())).toEqual(['PortableConv2D', 'LoraConv1x1', 'Flatten']);
    expect(chainLayers(adapted)[1]).toBeInstanceOf(LoraConv1x1);
    expect(chainLayers(standard).map((l) => l.getClassName())).toEqual(['Conv2D', 'Conv2D', 'Flatten']);
    expect(maxDiff(adapted.predict(x) as tf.Tensor, base.predict(x) as tf.Tensor)).toBe(0);
    expect(maxDiff(standard.predict(x) as tf.Tensor, base.predict(x) as tf.Tensor)).toBeLessThan(1e-6);
  });

  it('lets a full fine-tuning step run on wasm and move the convolution kernels', async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
    const embedder = tinyEmbedder();
    const model = tinyModel(embedder, { learningRate: 0.01 });
    const batch = tinyBatch(4, ['image']);
    const conv = chainLayers(model.encoder('image')).find((l) => l.name === 'conv_1')!;
    const before = conv.getWeights()[0]!.dataSync().slice();

    const result = model.trainStep(batch, { mode: 'full' });
    const after = conv.getWeights()[0]!.dataSync();

    expect(result.numExamples).toBe(TINY.batch);
    expect(after.some((v, i) => v !== before[i])).toBe(true);
    model.dispose();
    disposeBatch(batch);
    embedder.dispose();
    await tf.setBackend('cpu');
  });

  it('refuses a strided or non-1×1 PortableConv2D as a LoRA target', () => {
    const base = tf.sequential({ layers: [new PortableConv2D({ name: 'conv', inputShape: [4, 4, 1], filters: 2, kernelSize: 3 }), tf.layers.flatten()] });
    let error: unknown = null;

    try {
      applyLora(base, { targets: ['conv'], rank: 1, alpha: 1 });
    } catch (err) {
      error = err;
    }

    expect(isModelsError(error, 'MODELS_BAD_BASE')).toBe(true);
  });
});
