import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embeddings } from '@chorus/datasets';
import { isWebClientError } from '../lib/errors.js';
import { TEXT_TOKENS, buildViewerModel, createViewerBase, type ViewerBase, type ViewerModel } from './demoModel.js';
import { explainSample, type ViewerSample } from './explainSample.js';
import { textInput } from './samples.js';

/** The demo text encoder reads 100-wide GloVe vectors. */
const DIM = 100;

/** A four-word vocabulary: id 0 padding (zeros), id 1 unknown (0.1 everywhere), 'seven' and 'apples' one-hot on axes 0 and 1. */
const embeddings: Embeddings = {
  dim: DIM,
  vocabulary: ['<pad>', '<unk>', 'seven', 'apples'],
  vectors: (() => {
    const v = new Float32Array(4 * DIM);
    v.fill(0.1, DIM, 2 * DIM);
    v[2 * DIM + 0] = 1;
    v[3 * DIM + 1] = 1;
    return v;
  })(),
  padId: 0,
  unkId: 1,
  encode: (text, maxTokens) => {
    const ids = new Uint16Array(maxTokens);
    text
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, maxTokens)
      .forEach((w, i) => (ids[i] = w === 'seven' ? 2 : w === 'apples' ? 3 : 1));
    return ids;
  },
};
const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** A 28×28 image: a bright vertical bar on black. */
function barImage(): Float32Array {
  const image = new Float32Array(28 * 28);
  for (let y = 4; y < 24; y++) for (let x = 12; x < 16; x++) image[y * 28 + x] = 1;
  return image;
}

describe('explainSample', () => {
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

  it('explains an image alone: only image terms, attribution all on the image, no EC', async () => {
    // Arrange
    const before = tf.memory().numTensors;

    // Act
    const view = await explainSample(viewer, { source: 'bar', image: barImage() }, CLASSES);

    // Assert
    expect(tf.memory().numTensors).toBe(before);
    expect(view.present).toEqual([true, false, false]);
    expect(view.modalityAttribution[0]).toBeCloseTo(1, 6);
    expect(view.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(view.confidence).toBe(Math.max(...view.probabilities));
    expect(view.terms).toHaveLength(8);
    expect(view.terms.every((t) => t.modality === 'image')).toBe(true);
    expect(Math.abs(view.terms[0]!.contribution)).toBeGreaterThanOrEqual(Math.abs(view.terms[7]!.contribution));
    expect(view.shapeCurves).toHaveLength(6);
    expect(view.image!.saliency).toHaveLength(28 * 28);
    expect(view.consistency).toEqual([]);
    expect(Number.isFinite(view.faithfulness)).toBe(true);
  });

  it('explains image and text together with one EC value in [-1, 1] and text saliency per token', async () => {
    const sample: ViewerSample = { source: 'pair', image: barImage(), text: textInput('seven apples', embeddings) };

    const view = await explainSample(viewer, sample, CLASSES);

    expect(view.present).toEqual([true, true, false]);
    expect(view.consistency.map((c) => [c.a, c.b])).toEqual([['image', 'text']]);
    expect(Math.abs(view.consistency[0]!.value)).toBeLessThanOrEqual(1 + 1e-6);
    expect(view.text!.words.slice(0, 3)).toEqual(['seven', 'apples', '']);
    expect(view.text!.saliency).toHaveLength(TEXT_TOKENS);
    expect(view.text!.saliency[2]).toBe(0); // padding never reaches the pooled vector
  });

  it('reads no tensor synchronously (a WebGPU tab would get zeros), for image, text and audio together', async () => {
    // Arrange: one second of a 440 Hz tone, and every synchronous read made to throw.
    const tone = Float32Array.from({ length: 16_000 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 16_000));
    const sample: ViewerSample = { source: 'all three', image: barImage(), text: textInput('seven apples', embeddings), audio: tone };
    const proto = tf.Tensor.prototype;
    const { dataSync, arraySync } = proto;
    const before = tf.memory().numTensors;
    proto.dataSync = proto.arraySync = (): never => {
      throw new Error('synchronous tensor read');
    };

    // Act
    let view: Awaited<ReturnType<typeof explainSample>>;
    try {
      view = await explainSample(viewer, sample, CLASSES);
    } finally {
      proto.dataSync = dataSync;
      proto.arraySync = arraySync;
    }

    // Assert
    expect(tf.memory().numTensors).toBe(before);
    expect(view.present).toEqual([true, true, true]);
    expect(view.consistency).toHaveLength(3);
    expect(view.audio!.logMel).toHaveLength(view.audio!.numFrames * view.audio!.numMels);
    expect(view.audio!.logMel.some((v) => v !== 0)).toBe(true);
    expect(view.audio!.saliency).toHaveLength(view.audio!.numFrames);
    expect(view.image!.saliency.some((v) => v !== 0)).toBe(true);
  });

  it('records every phase of an explanation as a chorus: measure, none when untimed, and explains the same either way', async () => {
    // Arrange
    const sample: ViewerSample = { source: 'bar', image: barImage() };
    const phases = ['inputs', 'forward', 'shapes', 'saliency', 'faithfulness'];
    const count = (phase: string): number => performance.getEntriesByName(`chorus:${phase}`, 'measure').length;
    for (const phase of phases) performance.clearMeasures(`chorus:${phase}`);

    // Act
    const timed = await explainSample(viewer, sample, CLASSES);
    const afterTimed = phases.map(count);
    const untimed = await explainSample(viewer, sample, CLASSES, { timed: false });

    // Assert
    expect(afterTimed).toEqual([1, 1, 1, 1, 1]);
    expect(phases.map(count)).toEqual([1, 1, 1, 1, 1]);
    expect(untimed).toEqual(timed);
  });

  it('refuses unusable samples with WEB_BAD_SAMPLE before computing anything', async () => {
    const before = tf.memory().numTensors;
    const bad: ViewerSample[] = [
      { source: 'empty' },
      { source: 'short', image: new Float32Array(10) },
      { source: 'nan', image: barImage().fill(Number.NaN, 0, 1) },
      { source: 'silent', text: { ids: new Int32Array(TEXT_TOKENS), words: new Array<string>(TEXT_TOKENS).fill('') } },
      { source: 'no audio', audio: new Float32Array(0) },
    ];

    for (const sample of bad) {
      let caught: unknown;
      try {
        await explainSample(viewer, sample, CLASSES);
      } catch (err) {
        caught = err;
      }
      expect(isWebClientError(caught) && caught.code, sample.source).toBe('WEB_BAD_SAMPLE');
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
