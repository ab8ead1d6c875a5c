import { NO_CLIENT_COEFFICIENTS, createRepresentationStrategy, type RepresentationStrategyConfig } from '@chorus/fl-core';
import { createFedAfdClient } from '@chorus/models';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY, tinyEmbedder, tinyOptions, tinySpec } from './fixtures.test-util.js';
import { fedAfdClientSpec } from './spec.js';

const IMAGE = { kind: 'image-classifier', arch: 'cnn' } as const;

const specOf = (config: RepresentationStrategyConfig) => fedAfdClientSpec(IMAGE, createRepresentationStrategy(config).clientCoefficients);

describe('fedAfdClientSpec', () => {
  it("turns FedAFD's coefficients into BAA with λ_adv = 0.5, GFF on and no local distillation, keeping the task's fields", () => {
    // Arrange
    const coefficients = createRepresentationStrategy({ name: 'fedafd' }).clientCoefficients;
    // Act
    const spec = fedAfdClientSpec(IMAGE, coefficients, { dim: 8, seed: 4 });
    // Assert
    expect(spec).toEqual({
      kind: 'image-classifier',
      arch: 'cnn',
      dim: 8,
      seed: 4,
      adversarialWeight: 0.5,
      useBaa: true,
      useGff: true,
      localDistillationWeight: 0,
    });
  });

  it("maps FedAFD's three ablations: w/o BAA, w/o GFF, and w/o SED (the server's side only)", () => {
    expect(specOf({ name: 'fedafd', adversarialWeight: 0 })).toMatchObject({ useBaa: false, useGff: true, localDistillationWeight: 0 });
    expect(specOf({ name: 'fedafd', fusion: false })).toMatchObject({ useBaa: true, useGff: false, localDistillationWeight: 0 });
    expect(specOf({ name: 'fedafd', sed: false })).toMatchObject({ adversarialWeight: 0.5, useBaa: true, useGff: true, localDistillationWeight: 0 });
  });

  it.each(['fedmd', 'fedgems', 'fedet', 'fedmkd'] as const)('gives a %s client no BAA, no GFF and local distillation at 0.4', (name) => {
    expect(specOf({ name })).toEqual({
      kind: 'image-classifier',
      arch: 'cnn',
      adversarialWeight: 0,
      useBaa: false,
      useGff: false,
      localDistillationWeight: 0.4,
    });
  });

  it("carries a baseline's own distillation weight", () => {
    expect(specOf({ name: 'fedmkd', localDistillationWeight: 1.5 })).toMatchObject({ useBaa: false, useGff: false, localDistillationWeight: 1.5 });
    expect(specOf({ name: 'fedmd', localDistillationWeight: 0 })).toMatchObject({ useBaa: false, useGff: false, localDistillationWeight: 0 });
  });

  it('gives a LOCAL client none of the three', () => {
    const expected = { adversarialWeight: 0, useBaa: false, useGff: false, localDistillationWeight: 0 };
    expect(specOf({ name: 'local' })).toMatchObject(expected);
    expect(fedAfdClientSpec(IMAGE, NO_CLIENT_COEFFICIENTS)).toMatchObject(expected);
  });

  it.each([
    [{ adversarialWeight: -1, fusion: true, localDistillationWeight: 0 }, 'adversarialWeight'],
    [{ adversarialWeight: Number.POSITIVE_INFINITY, fusion: true, localDistillationWeight: 0 }, 'adversarialWeight'],
    [{ adversarialWeight: 0.5, fusion: 'yes', localDistillationWeight: 0 }, 'fusion'],
    [{ adversarialWeight: 0, fusion: false, localDistillationWeight: Number.NaN }, 'localDistillationWeight'],
    [{ adversarialWeight: 0, fusion: false, localDistillationWeight: -0.4 }, 'localDistillationWeight'],
    [{ adversarialWeight: 0, fusion: false, localDistillationWeight: '0.4' }, 'localDistillationWeight'],
    [{ adversarialWeight: 0, fusion: false }, 'localDistillationWeight'],
  ])('refuses the coefficients %j naming %s', (coefficients, name) => {
    expect(() => fedAfdClientSpec(IMAGE, coefficients as never)).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining(`representation.${name}`) }),
    );
  });
});

describe('clients built from the mapped specs', () => {
  const embedder = tinyEmbedder();
  beforeAll(async () => {
    expect(await tf.setBackend('cpu')).toBe(true);
  });
  afterAll(() => embedder.dispose());

  it.each([
    ['fedafd', ['image', 'text'], true],
    ['fedmd', ['image'], false],
    ['local', [], false],
  ] as const)('a %s image client reads the global representations of %j and trains with the terms its strategy asks for', async (name, needed, baa) => {
    const base = tinySpec('image-classifier', 'cnn');
    const client = createFedAfdClient(fedAfdClientSpec(base, createRepresentationStrategy({ name }).clientCoefficients, base), tinyOptions(embedder));
    const rows = 2;
    const local = { image: tf.randomUniform([rows, ...TINY.image], 0, 1, 'float32', 1), labels: tf.tensor1d([0, 1], 'int32') };
    const pub = { image: tf.randomUniform([rows, ...TINY.image], 0, 1, 'float32', 2) };
    const globalPublic = Object.fromEntries(needed.map((m, i) => [m, Float32Array.from({ length: rows * TINY.dim }, (_, k) => Math.sin(k + i))]));

    const step = await client.trainStep(needed.length > 0 ? { local, public: pub, globalPublic } : { local });

    expect(client.globalModalitiesNeeded()).toEqual(needed);
    expect(client.needsPublicData).toBe(needed.length > 0);
    expect(step.adversarial !== 0).toBe(baa);
    expect(step.distillation > 0).toBe(name === 'fedmd');
    expect(step.loss).toBeCloseTo(step.task + 0.5 * step.adversarial + (name === 'fedmd' ? 0.4 : 0) * step.distillation, 4);
    tf.dispose([local.image, local.labels, pub.image]);
    client.dispose();
  });
});
