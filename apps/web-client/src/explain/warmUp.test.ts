import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embeddings } from '@chorus/datasets';
import { AUDIO_SAMPLES, IMAGE_SIDE, TEXT_TOKENS, buildViewerModel, createViewerBase, type ViewerBase, type ViewerModel } from './demoModel.js';
import { warmUp, warmUpSample } from './warmUp.js';

/** Three words: id 0 padding, id 1 unknown, id 2 'seven'; the demo text encoder reads 100-wide vectors. */
const embeddings: Embeddings = {
  dim: 100,
  vocabulary: ['<pad>', '<unk>', 'seven'],
  vectors: new Float32Array(300).fill(0.1, 100),
  padId: 0,
  unkId: 1,
  encode: (text, maxTokens) => {
    const ids = new Uint16Array(maxTokens);
    text
      .split(/\s+/)
      .slice(0, maxTokens)
      .forEach((w, i) => (ids[i] = w === 'seven' ? 2 : 1));
    return ids;
  },
};
const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

describe('the viewer warm-up', () => {
  let base: ViewerBase;
  let viewer: ViewerModel;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    base = createViewerBase(null, embeddings);
    viewer = buildViewerModel(base, { adapters: null, source: { kind: 'fresh', reason: 'a test' } });
  });

  afterAll(() => {
    viewer.dispose();
    base.dispose();
  });

  it('explains a sample with content in every modality the model reads, and only those', () => {
    // Act
    const all = warmUpSample(viewer);
    const imageOnly = warmUpSample({ ...viewer, modalities: ['image'] });

    // Assert
    expect(all.image!.length).toBe(IMAGE_SIDE * IMAGE_SIDE);
    expect(all.image!.some((v) => v > 0)).toBe(true);
    expect(all.text!.ids).toHaveLength(TEXT_TOKENS);
    expect(all.text!.ids.some((id) => id !== 0)).toBe(true);
    expect(all.audio!.length).toBe(AUDIO_SAMPLES);
    expect(all.audio!.some((v) => v !== 0)).toBe(true);
    expect(Object.keys(imageOnly).sort()).toEqual(['image', 'source']);
  });

  it('runs an explanation per model, records no phase of a click, and leaks no tensor', async () => {
    // Arrange
    const before = tf.memory().numTensors;
    performance.clearMeasures('chorus:forward');

    // Act
    const ms = await warmUp([viewer, viewer], CLASSES);

    // Assert
    expect(ms).toBeGreaterThan(0);
    expect(performance.getEntriesByName('chorus:forward', 'measure')).toHaveLength(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
