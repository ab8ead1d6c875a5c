import { NO_CLIENT_COEFFICIENTS, createRepresentationStrategy } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { fedAfdClientSpec } from './spec.js';

const IMAGE = { kind: 'image-classifier', arch: 'cnn' } as const;

describe('fedAfdClientSpec', () => {
  it("turns FedAFD's coefficients into BAA with λ_adv = 0.5 and GFF on, keeping the task's fields", () => {
    // Arrange
    const coefficients = createRepresentationStrategy({ name: 'fedafd' }).clientCoefficients;
    // Act
    const spec = fedAfdClientSpec(IMAGE, coefficients, { dim: 8, seed: 4 });
    // Assert
    expect(spec).toEqual({ kind: 'image-classifier', arch: 'cnn', dim: 8, seed: 4, adversarialWeight: 0.5, useBaa: true, useGff: true });
  });

  it('switches BAA and GFF off for the ablations and LOCAL', () => {
    const noBaa = createRepresentationStrategy({ name: 'fedafd', adversarialWeight: 0 }).clientCoefficients;
    const noGff = createRepresentationStrategy({ name: 'fedafd', fusion: false }).clientCoefficients;
    expect(fedAfdClientSpec(IMAGE, noBaa)).toMatchObject({ useBaa: false, useGff: true });
    expect(fedAfdClientSpec(IMAGE, noGff)).toMatchObject({ useBaa: true, useGff: false });
    expect(fedAfdClientSpec(IMAGE, NO_CLIENT_COEFFICIENTS)).toMatchObject({ adversarialWeight: 0, useBaa: false, useGff: false });
  });

  it.each([
    [{ adversarialWeight: -1, fusion: true, localDistillationWeight: 0 }, 'adversarialWeight'],
    [{ adversarialWeight: 0.5, fusion: 'yes', localDistillationWeight: 0 }, 'fusion'],
    [{ adversarialWeight: 0, fusion: false, localDistillationWeight: Number.NaN }, 'localDistillationWeight'],
  ])('refuses the coefficients %j naming %s', (coefficients, name) => {
    expect(() => fedAfdClientSpec(IMAGE, coefficients as never)).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining(name) }),
    );
  });

  it("refuses the baselines' local distillation, which the client models cannot train", () => {
    const fedMd = createRepresentationStrategy({ name: 'fedmd' }).clientCoefficients;
    expect(() => fedAfdClientSpec(IMAGE, fedMd)).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining('no local distillation') }),
    );
  });
});
