import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyLora, chainLayers, cloneLayer, toStandardModel } from './adapt.js';
import { isModelsError } from './errors.js';
import { LoraConv1x1, LoraDense, isLoraLayer } from './lora.js';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function tinyBase(): tf.LayersModel {
  const model = tf.sequential({ name: 'tiny' });
  model.add(
    tf.layers.conv2d({
      name: 'conv',
      inputShape: [4, 4, 1],
      filters: 3,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  model.add(
    tf.layers.conv2d({
      name: 'pointwise',
      filters: 2,
      kernelSize: 1,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      biasInitializer: tf.initializers.constant({ value: 0.1 }),
    }),
  );
  model.add(tf.layers.flatten({ name: 'flat' }));
  model.add(tf.layers.dense({ name: 'dense_1', units: 5, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }));
  return model;
}

function randomiseB(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (!isLoraLayer(layer)) continue;
    const b = layer.loraVariables.loraB;
    const value = tf.randomNormal(b.shape as number[], 0, 0.5, 'float32', seed++);
    b.write(value);
    value.dispose();
  }
}

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('LoraDense', () => {
  it('computes x·W + (α/r)·x·Aᵀ·Bᵀ by hand', () => {
    // Arrange: W = I, A = [1, 0], B = [1, 0]ᵀ, α/r = 2 ⇒ ΔW = 2·Aᵀ·Bᵀ = [[2, 0], [0, 0]].
    const layer = new LoraDense({ units: 2, rank: 1, alpha: 2, useBias: false });
    layer.build([null, 2]);
    const { kernel, loraA, loraB } = layer.loraVariables;
    kernel.write(
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
    );
    loraA.write(tf.tensor2d([[1, 0]]));
    loraB.write(tf.tensor2d([[1], [0]]));

    // Act
    const y = layer.apply(tf.tensor2d([[1, 2]])) as tf.Tensor;

    // Assert: [1, 2]·(I + ΔW) = [3, 2]
    expect(Array.from(y.dataSync())).toEqual([3, 2]);
  });

  it('rejects a rank below 1 and a non-positive alpha', () => {
    expect(() => new LoraDense({ units: 2, rank: 0, alpha: 1 })).toThrowError(/MODELS_BAD_CONFIG/);
    expect(() => new LoraDense({ units: 2, rank: 1, alpha: 0 })).toThrowError(/MODELS_BAD_CONFIG/);
  });

  it('round-trips through its config', () => {
    const layer = new LoraConv1x1({ filters: 3, rank: 2, alpha: 4, activation: 'relu', seed: 7 });
    const copy = cloneLayer(layer, false) as LoraConv1x1;
    expect(copy).toBeInstanceOf(LoraConv1x1);
    expect([copy.filters, copy.rank, copy.alpha, copy.activationName, copy.seed]).toEqual([3, 2, 4, 'relu', 7]);
  });
});

describe('applyLora', () => {
  it('equals the base exactly while B = 0 and trains only A and B', () => {
    const base = tinyBase();
    const adapted = applyLora(base, { targets: ['pointwise', 'dense_1'], rank: 2, alpha: 4, seed: 5 });
    const x = tf.randomUniform([3, 4, 4, 1], 0, 1, 'float32', 9);

    const diff = maxAbsDiff(base.predict(x) as tf.Tensor, adapted.predict(x) as tf.Tensor);

    expect(diff).toBe(0);
    expect(adapted.trainableWeights.map((w) => w.originalName).sort()).toEqual(['dense_1/lora_a', 'dense_1/lora_b', 'pointwise/lora_a', 'pointwise/lora_b']);
    expect(
      chainLayers(adapted)
        .filter(isLoraLayer)
        .map((l) => l.name),
    ).toEqual(['pointwise', 'dense_1']);
  });

  it('merge predicts like the adapter and unmerge restores W', () => {
    const adapted = applyLora(tinyBase(), { targets: ['pointwise', 'dense_1'], rank: 2, alpha: 4, seed: 5 });
    randomiseB(adapted, 11);
    const x = tf.randomUniform([3, 4, 4, 1], 0, 1, 'float32', 9);
    const before = adapted.predict(x) as tf.Tensor;
    const lora = chainLayers(adapted).filter(isLoraLayer);
    const kernels = lora.map((l) => l.loraVariables.kernel.read().clone());

    lora.forEach((l) => l.merge());
    const merged = adapted.predict(x) as tf.Tensor;
    const kernelChanged = maxAbsDiff(kernels[1]!, lora[1]!.loraVariables.kernel.read());
    lora.forEach((l) => l.unmerge());

    expect(maxAbsDiff(before, merged)).toBeLessThan(1e-5);
    expect(kernelChanged).toBeGreaterThan(1e-3);
    lora.forEach((l, i) => expect(maxAbsDiff(kernels[i]!, l.loraVariables.kernel.read())).toBeLessThan(1e-6));
    expect(() => lora[0]!.unmerge()).toThrowError(/MODELS_BAD_CONFIG/);
  });

  it('exports plain-layer base and merged models', () => {
    const base = tinyBase();
    const adapted = applyLora(base, { targets: ['pointwise', 'dense_1'], rank: 2, alpha: 4 });
    randomiseB(adapted, 3);
    const x = tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 4);

    const merged = toStandardModel(adapted, { merge: true });
    const unadapted = toStandardModel(adapted, { merge: false });

    expect(merged.layers.some(isLoraLayer)).toBe(false);
    expect(maxAbsDiff(merged.predict(x) as tf.Tensor, adapted.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
    expect(maxAbsDiff(unadapted.predict(x) as tf.Tensor, base.predict(x) as tf.Tensor)).toBeLessThan(1e-6);
  });

  it('refuses targets that are missing or not pointwise, leaving the base usable', () => {
    const base = tinyBase();
    const attempt = (targets: string[]): unknown => {
      try {
        applyLora(base, { targets, rank: 1, alpha: 1 });
      } catch (err) {
        return err;
      }
      return null;
    };

    expect(isModelsError(attempt(['nope']), 'MODELS_BAD_BASE')).toBe(true);
    expect(isModelsError(attempt(['conv']), 'MODELS_BAD_BASE')).toBe(true);
    expect(isModelsError(attempt(['flat']), 'MODELS_BAD_BASE')).toBe(true);
    expect((base.predict(tf.zeros([1, 4, 4, 1])) as tf.Tensor).shape).toEqual([1, 5]);
  });

  it('refuses a base that is not a chain', () => {
    const input = tf.input({ shape: [3] });
    const a = tf.layers.dense({ units: 2 }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 2 }).apply(input) as tf.SymbolicTensor;
    const branched = tf.model({ inputs: input, outputs: tf.layers.add().apply([a, b]) as tf.SymbolicTensor });

    expect(() => applyLora(branched, { targets: [], rank: 1, alpha: 1 })).toThrowError(/MODELS_BAD_BASE/);
  });
});
