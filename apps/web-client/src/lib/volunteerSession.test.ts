import * as tf from '@tensorflow/tfjs';
import { DIGITS_CAPTION_TOKENS, DIGITS_LOG_MEL } from '@chorus/client';
import { partitionBuiltin } from '@chorus/client/node';
import { openBuiltin, readManifest } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { isWebClientError } from './errors.js';
import type { LoadedSamples } from './ownData.js';
import {
  DEMO_CLASS_NAMES,
  DEMO_MODALITIES,
  DEMO_PARTITION_CLIENTS,
  HEADLESS_DEMO_PARTITION,
  datasetFromOwnData,
  demoSliceIndices,
  headlessDemoIndices,
  seedOf,
} from './volunteerSession.js';

describe('seedOf', () => {
  it('is FNV-1a folded to 31 bits', () => {
    // FNV-1a 32-bit of "" is 0x811c9dc5 and of "a" is 0xe40c292c.
    expect(seedOf('')).toBe(0x811c9dc5 & 0x7fffffff);
    expect(seedOf('a')).toBe(0xe40c292c & 0x7fffffff);
  });
});

describe('demoSliceIndices', () => {
  const labels = Array.from({ length: 4000 }, (_, i) => i % 10);

  it('takes at most the asked number of distinct, ascending, in-range indices, the same for the same seed', () => {
    const slice = demoSliceIndices(labels, 12345, 100);
    expect(slice.length).toBeLessThanOrEqual(100);
    expect(slice.length).toBeGreaterThan(0);
    expect(new Set(slice).size).toBe(slice.length);
    expect(slice.every((v, i) => v >= 0 && v < labels.length && (i === 0 || slice[i - 1]! < v))).toBe(true);
    expect(demoSliceIndices(labels, 12345, 100)).toEqual(slice);
  });

  it('gives installs on different shards disjoint slices', () => {
    // Seeds 1 and 2 pick shards 1 and 2 of the same partition.
    const a = new Set(demoSliceIndices(labels, 1, 100));
    const b = demoSliceIndices(labels, 2, 100);
    expect(b.length).toBeGreaterThan(0);
    expect(b.filter((i) => a.has(i))).toEqual([]);
    expect(DEMO_PARTITION_CLIENTS).toBeGreaterThan(1);
  });

  it('keeps clear of the examples the headless demo clients train on', () => {
    const taken = new Set(headlessDemoIndices(labels));
    for (const seed of [0, 7, 12345]) expect(demoSliceIndices(labels, seed, 100).filter((i) => taken.has(i))).toEqual([]);
    expect(taken.size).toBe(HEADLESS_DEMO_PARTITION.numClients * HEADLESS_DEMO_PARTITION.maxExamplesPerClient);
  });
});

describe('the built-in digits split', () => {
  let labels: Int32Array | Uint8Array;
  let classes: readonly string[];

  beforeAll(async () => {
    const source = fileSource();
    const manifest = await readManifest(source);
    labels = (await openBuiltin(source, manifest, 'digits', 'train')).labels as Int32Array | Uint8Array;
    classes = manifest.datasets.digits.classes;
  });

  it('is what the headless clients CLI deals to `pnpm start`s demo clients', async () => {
    // Arrange: the CLI's own partition for --clients 3 --max-examples 300 and its default seed and α.
    const shards = await partitionBuiltin({ dataset: 'digits', modalities: DEMO_MODALITIES, ...HEADLESS_DEMO_PARTITION });

    // Act
    const recomputed = headlessDemoIndices(labels);

    // Assert
    expect(recomputed).toEqual(shards.flatMap((s) => s.indices).sort((a, b) => a - b));
  });

  it('names its classes as the own-files chooser expects them', () => {
    expect(classes).toEqual(DEMO_CLASS_NAMES);
  });
});

describe('datasetFromOwnData', () => {
  const sine = (hz: number, seconds: number): Float32Array =>
    Float32Array.from({ length: Math.round(16000 * seconds) }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / 16000));

  it('takes float pixels as they are and scales 8-bit ones to [0, 1]', async () => {
    // Arrange: one float image (all 0.25) and one 8-bit image (all 51 = 0.2 × 255).
    const loaded: LoadedSamples = {
      modality: 'image',
      samples: [
        { path: '3/a.png', label: 3, pixels: new Float32Array(784).fill(0.25) },
        { path: '7/b.png', label: 7, pixels: new Uint8Array(784).fill(51) },
      ],
    };

    // Act
    const dataset = await datasetFromOwnData(loaded);
    const batch = await dataset.read([0, 1]);

    // Assert
    expect(dataset.modalities).toEqual(['image']);
    expect([...batch.labels]).toEqual([3, 7]);
    expect(batch.image?.shape).toEqual([2, 28, 28, 1]);
    expect(batch.image?.values[0]).toBeCloseTo(0.25, 6);
    expect(batch.image?.values[784]).toBeCloseTo(0.2, 6);
  });

  it('turns texts into word ids of the vocabulary, padded to the caption length', async () => {
    const vocabulary = ['<pad>', '<unk>', 'a', 'seven'];
    const loaded: LoadedSamples = { modality: 'text', samples: [{ path: 'notes.csv:2', text: 'A seven, maybe', label: 7 }] };

    const batch = await (await datasetFromOwnData(loaded, vocabulary)).read([0]);

    expect(batch.text?.shape).toEqual([1, DIGITS_CAPTION_TOKENS]);
    expect([...batch.text!.values.slice(0, 4)]).toEqual([2, 3, 1, 0]);
  });

  it('turns clips into 1-second log-mel features, a low tone peaking in a lower band than a high one', async () => {
    // Arrange: 0.5 s and 1.5 s clips, so both padding and cropping happen.
    await tf.setBackend('cpu');
    const loaded: LoadedSamples = {
      modality: 'audio',
      samples: [
        { path: '1/low.wav', label: 1, samples: sine(300, 0.5) },
        { path: '2/high.wav', label: 2, samples: sine(3000, 1.5) },
      ],
    };
    const before = tf.memory().numTensors;

    // Act
    const batch = await (await datasetFromOwnData(loaded)).read([0, 1]);

    // Assert
    const [n, frames, mels] = batch.audio!.shape as [number, number, number];
    expect([n, mels]).toEqual([2, DIGITS_LOG_MEL.numMels]);
    expect(frames).toBe(1 + Math.floor((16000 - DIGITS_LOG_MEL.frameLength) / DIGITS_LOG_MEL.hopLength));
    const peakBand = (clip: number, frame: number): number => {
      const row = batch.audio!.values.subarray((clip * frames + frame) * mels, (clip * frames + frame + 1) * mels);
      return row.indexOf(Math.max(...row));
    };
    expect(peakBand(0, 10)).toBeLessThan(peakBand(1, 10));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an empty load and texts without a vocabulary with WEB_NO_DATA', async () => {
    const empty = datasetFromOwnData({ modality: 'audio', samples: [] });
    const noVocabulary = datasetFromOwnData({ modality: 'text', samples: [{ path: 'a.csv:2', text: 'one', label: 1 }] });

    await expect(empty).rejects.toSatisfy((e: unknown) => isWebClientError(e) && e.code === 'WEB_NO_DATA');
    await expect(noVocabulary).rejects.toSatisfy((e: unknown) => isWebClientError(e) && e.code === 'WEB_NO_DATA');
  });
});
