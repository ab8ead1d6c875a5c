import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { toStandardModel } from './adapt.js';
import { buildDigitsEncoder } from './demo.js';
import { buildTextEncoder, type Modality } from './encoders.js';
import { isModelsError } from './errors.js';
import type { PartHandler } from './io.js';
import { DIGITS_WEIGHTS_DIR, loadDigitsBaseFromDisk } from './node.js';
import { DIGITS_BASE_PARTS, httpParts, loadDigitsBase } from './pretrained.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

/** In-memory parts holding `models` saved as plain layers, and the parts requested so far. */
async function memoryParts(models: Partial<Record<Modality, tf.LayersModel>>): Promise<{ parts: PartHandler; requested: string[] }> {
  const store = new Map<string, tf.io.ModelArtifacts>();
  for (const [m, model] of Object.entries(models) as [Modality, tf.LayersModel][]) {
    const plain = toStandardModel(model, { merge: false });
    await plain.save({
      save: async (artifacts) => {
        store.set(DIGITS_BASE_PARTS[m], artifacts);
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      },
    });
    plain.dispose();
  }
  const requested: string[] = [];
  const parts: PartHandler = (part) => {
    requested.push(part);
    return {
      load: async () => {
        const artifacts = store.get(part);
        if (!artifacts) throw new Error(`no part ${part}`);
        return artifacts;
      },
    };
  };
  return { parts, requested };
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return null;
}

describe('loadDigitsBase', () => {
  it('returns demo encoders holding the stored weights, fetching only the modalities asked for', async () => {
    const image = buildDigitsEncoder('image', 3);
    const text = buildDigitsEncoder('text', 3);
    const { parts, requested } = await memoryParts({ image, text });
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 1);

    const loaded = await loadDigitsBase(parts, { modalities: ['image'] });

    expect(requested).toEqual(['image-base']);
    expect(Object.keys(loaded)).toEqual(['image']);
    expect(loaded.image.layers.map((l) => l.getClassName())).toEqual(image.layers.map((l) => l.getClassName()));
    expect(maxDiff(loaded.image.predict(x) as tf.Tensor, image.predict(x) as tf.Tensor)).toBeLessThan(1e-6);
    loaded.image.dispose();
    image.dispose();
    text.dispose();
  });

  it('refuses a base of another architecture, non-finite weights or a missing part, leaving nothing allocated', async () => {
    const wider = buildTextEncoder({ inputDim: 100, hiddenUnits: 128, embeddingDim: 64 });
    const poisoned = buildDigitsEncoder('text');
    const kernel = poisoned.layers[0]!.getWeights()[0]!;
    poisoned.layers[0]!.setWeights([tf.fill(kernel.shape, Number.NaN), poisoned.layers[0]!.getWeights()[1]!]);
    const widerParts = (await memoryParts({ text: wider })).parts;
    const poisonedParts = (await memoryParts({ text: poisoned })).parts;
    const before = tf.memory().numTensors;

    const errors = [
      await errorOf(loadDigitsBase(widerParts, { modalities: ['text'] })),
      await errorOf(loadDigitsBase(poisonedParts, { modalities: ['text'] })),
      await errorOf(loadDigitsBase(widerParts, { modalities: ['audio'] })),
      await errorOf(loadDigitsBase(widerParts, { modalities: ['video' as Modality] })),
    ];

    expect(errors.slice(0, 3).map((e) => isModelsError(e, 'MODELS_BAD_ARTIFACTS'))).toEqual([true, true, true]);
    expect(String(errors[0])).toMatch(/dense_1/);
    expect(String(errors[1])).toMatch(/NaN/);
    expect(isModelsError(errors[3], 'MODELS_BAD_CONFIG')).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    wider.dispose();
    poisoned.dispose();
  });
});

describe('shipped digits base', () => {
  it('loads from disk and over HTTP alike, and is not a fresh initialisation', async () => {
    // A fetch that serves the weights folder, as a static file server would.
    const fetchFunc = (async (url: string) => {
      const path = new URL(url).pathname.replace(/^\/weights\//, '');
      return new Response(new Uint8Array(await readFile(join(DIGITS_WEIGHTS_DIR, path))));
    }) as unknown as typeof fetch;
    const fresh = buildDigitsEncoder('text');

    const fromDisk = await loadDigitsBaseFromDisk({ modalities: ['text'] });
    const overHttp = await loadDigitsBase(httpParts('http://localhost/weights/', { fetchFunc }), { modalities: ['text'] });

    const [diskKernel] = fromDisk.text.getWeights();
    expect(maxDiff(diskKernel!, overHttp.text.getWeights()[0]!)).toBe(0);
    expect(maxDiff(diskKernel!, fresh.getWeights()[0]!)).toBeGreaterThan(1e-3);
    expect(() => httpParts('http://localhost/')('../secrets')).toThrowError(/MODELS_BAD_ARTIFACTS/);
    fromDisk.text.dispose();
    overHttp.text.dispose();
    fresh.dispose();
  });
});
