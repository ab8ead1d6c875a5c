import { createRng } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { attackRepresentations } from './adversarial.js';

/** Two unit rows of D = 2 for image, one pair of rows for text. */
const honest = { image: Float32Array.from([1, 0, 0, 1]), text: Float32Array.from([0.6, 0.8, 0.8, -0.6]) };
const global = { image: Float32Array.from([0, 1, 1, 0]), text: Float32Array.from([1, 0, 0, 1]), audio: Float32Array.from([9, 9, 9, 9]) };

describe('attackRepresentations', () => {
  it('uploads honest representations unchanged, as a copy', () => {
    // Act
    const out = attackRepresentations(honest, null, createRng(1));
    // Assert
    expect(out).toEqual(honest);
    expect(out.image).not.toBe(honest.image);
  });

  it('scales, flips and shrinks the rows as the behaviours say', () => {
    // Act
    const scaled = attackRepresentations(honest, { kind: 'scaling', factor: 10 }, createRng(1));
    const flipped = attackRepresentations(honest, { kind: 'sign-flip' }, createRng(1));
    const ipm = attackRepresentations(honest, { kind: 'ipm', epsilon: 0.5 }, createRng(1));
    // Assert
    expect(Array.from(scaled.image!)).toEqual([10, 0, 0, 10]);
    expect(Array.from(flipped.text!)).toEqual(Array.from(Float32Array.from([-0.6, -0.8, -0.8, 0.6])));
    expect(Array.from(ipm.image!)).toEqual([-0.5, -0, -0, -0.5]);
  });

  it('adds seeded Gaussian noise of the given σ', () => {
    // Act
    const a = attackRepresentations(honest, { kind: 'gaussian-noise', sigma: 1 }, createRng(4));
    const b = attackRepresentations(honest, { kind: 'gaussian-noise', sigma: 1 }, createRng(4));
    const none = attackRepresentations(honest, { kind: 'gaussian-noise', sigma: 0 }, createRng(4));
    // Assert
    expect(a).toEqual(b);
    expect(a.image).not.toEqual(honest.image);
    expect(none).toEqual(honest);
  });

  it('makes a free-rider send back the global representations of its own modalities', () => {
    // Act
    const out = attackRepresentations(honest, { kind: 'free-rider' }, createRng(1), global);
    // Assert: image and text only, copies of the global rows.
    expect(out).toEqual({ image: global.image, text: global.text });
    expect(out.image).not.toBe(global.image);
    expect(() => attackRepresentations(honest, { kind: 'free-rider' }, createRng(1), { image: global.image })).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_ROUND' }),
    );
  });

  it('leaves label-flip to training and refuses alie and bad parameters', () => {
    expect(attackRepresentations(honest, { kind: 'label-flip' }, createRng(1))).toEqual(honest);
    expect(() => attackRepresentations(honest, { kind: 'alie', z: 1, replicates: 2 }, createRng(1))).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }),
    );
    expect(() => attackRepresentations(honest, { kind: 'scaling', factor: Number.NaN }, createRng(1))).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }),
    );
  });
});
