import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIGITS_AUDIO_SAMPLES, DIGITS_CAPTION_TOKENS, DIGITS_NUM_CLASSES, MultimodalModel, buildDigitsEncoder, shapeFunctionGridAsync } from '@chorus/models';
import type { Parameters } from '@chorus/fl-core';
import { isWebClientError } from '../lib/errors.js';
import { AUDIO_SAMPLES, IMAGE_SIDE, NUM_CLASSES, TEXT_TOKENS, buildViewerModel, createViewerBase, describeProvenance, type ViewerBase } from './demoModel.js';

/** Rank-2 adapters of the image and fusion groups only, every value `value`, shaped as a model on `base` names them. */
function imageAdapters(base: ViewerBase, value: number): Parameters {
  const shapes = new MultimodalModel({ numClasses: DIGITS_NUM_CLASSES, encoders: { image: { base: base.encoders.image! } }, loraRank: 2 });
  try {
    return shapes.adapterParameters().map((t) => ({ ...t, values: new Float32Array(t.values.length).fill(value) }));
  } finally {
    shapes.dispose();
  }
}

describe('viewer models on the demo architecture', () => {
  let base: ViewerBase;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    base = createViewerBase(null, null);
  });

  afterAll(() => base.dispose());

  it('uses the demo sizes from @chorus/models and builds fresh image and audio encoders without a word table', () => {
    // Assert
    expect([AUDIO_SAMPLES, TEXT_TOKENS, NUM_CLASSES, IMAGE_SIDE]).toEqual([DIGITS_AUDIO_SAMPLES, DIGITS_CAPTION_TOKENS, DIGITS_NUM_CLASSES, 28]);
    expect(Object.keys(base.encoders).sort()).toEqual(['audio', 'image']);
    expect(base.base).toBe('fresh');
    expect(base.encoders.image!.inputs[0]!.shape).toEqual([null, IMAGE_SIDE, IMAGE_SIDE, 1]);
  });

  it('labels a base built from given encoders as pretrained, and releases an encoder it cannot feed', () => {
    // Arrange: all three encoders, but no word table, so text cannot be fed.
    const given = { image: buildDigitsEncoder('image'), text: buildDigitsEncoder('text'), audio: buildDigitsEncoder('audio') };
    const textWeights = given.text.weights.length;

    // Act
    const made = createViewerBase(given, null);

    // Assert
    expect(made.base).toBe('pretrained');
    expect(made.encoders.text).toBeUndefined();
    expect(textWeights).toBeGreaterThan(0);
    expect(() => given.text.predict(tf.zeros([1, 100]))).toThrow(); // disposed
    made.dispose();
  });

  it('holds given adapters exactly, takes its modalities and rank from them, and shares the base', () => {
    // Arrange: rank-2 image adapters of value 0.25 (a fresh model would have rank 4 and random values).
    const adapters = imageAdapters(base, 0.25);
    const before = tf.memory().numTensors;

    // Act
    const viewer = buildViewerModel(base, {
      adapters,
      adapterAlpha: 4,
      source: { kind: 'global', taskId: 't', serverRound: 3, sha256: 'ab'.repeat(32), verified: true },
    });

    // Assert
    expect(viewer.modalities).toEqual(['image']);
    expect(viewer.model.loraRank).toBe(2);
    expect(viewer.model.loraAlpha).toBe(4);
    const held = viewer.model.adapterParameters();
    expect(held.map((t) => t.name)).toEqual(adapters.map((t) => t.name));
    expect(held.every((t) => t.values.every((v) => v === 0.25))).toBe(true);
    viewer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(base.encoders.image!.weights[0]!.read().isDisposed).toBe(false);
  });

  it('samples the shape functions once per model and hands every explanation the same grid', async () => {
    // Arrange
    const viewer = buildViewerModel(base, { adapters: null, source: { kind: 'fresh', reason: 'a test' } });
    const before = tf.memory().numTensors;

    // Act
    const first = await viewer.shapeGrid();
    const again = await viewer.shapeGrid();

    // Assert
    expect(again).toBe(first);
    expect(first).toEqual(await shapeFunctionGridAsync(viewer.model));
    expect(first.values.some((v) => v !== 0)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    viewer.dispose();
  });

  it('refuses adapters that do not fit with WEB_BAD_RESPONSE and leaves nothing allocated', () => {
    // Arrange: one tensor of the right name but the wrong shape.
    const adapters = imageAdapters(base, 0.1).map((t) =>
      t.name === 'image/concept/bias' ? { ...t, shape: [t.values.length + 1], values: new Float32Array(t.values.length + 1) } : t,
    );
    const before = tf.memory().numTensors;

    // Act
    let caught: unknown;
    try {
      buildViewerModel(base, { adapters, source: { kind: 'local', taskId: 't', serverRound: 1, savedAt: 0 } });
    } catch (err) {
      caught = err;
    }

    // Assert
    expect(isWebClientError(caught) && caught.code).toBe('WEB_BAD_RESPONSE');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('states the round, hash and base of a global model, and why it fell back otherwise', () => {
    // Act
    const global = describeProvenance({
      base: 'pretrained',
      adapters: { kind: 'global', taskId: 'demo', serverRound: 5, sha256: '0123456789abcdef'.repeat(4), verified: true },
    });
    const local = describeProvenance({ base: 'pretrained', adapters: { kind: 'local', taskId: 'demo', serverRound: 4, savedAt: Date.UTC(2025, 0, 2, 3, 4) } });
    const fresh = describeProvenance({ base: 'fresh', adapters: { kind: 'fresh', reason: 'no token was given' } });

    // Assert
    expect(global).toBe('global model, round 5 of task demo (sha256 0123456789ab…, verified) on the pretrained base');
    expect(local).toBe('local model of this browser, trained in round 4 of task demo (saved 2025-01-02 03:04 UTC) on the pretrained base');
    expect(fresh).toBe(
      'fallback: fresh, untrained adapters on fresh, untrained base encoders (the origin serves no pretrained weights), because no token was given',
    );
  });
});
