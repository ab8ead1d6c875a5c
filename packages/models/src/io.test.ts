import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskedMeanPool } from './encoders.js';
import { TINY, disposeBatch, tinyBatch, tinyEmbedder, tinyModel, withoutSyncReads } from './fixtures.test-util.js';
import { exportMergedModel, exportMergedModelAsync, loadAdapters, loadMultimodalModel, saveAdapters, saveMultimodalModel } from './io.js';
import { fileSystemHandler, fileSystemParts } from './node.js';

const embedder = tinyEmbedder();
let dir = '';
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
  dir = await mkdtemp(join(tmpdir(), 'chorus-models-'));
});
afterAll(async () => {
  embedder.dispose();
  await rm(dir, { recursive: true, force: true });
});

function memoryParts(): { store: Map<string, tf.io.ModelArtifacts>; parts: (part: string) => tf.io.IOHandler } {
  const store = new Map<string, tf.io.ModelArtifacts>();
  const parts = (part: string): tf.io.IOHandler => ({
    save: async (artifacts) => {
      store.set(part, artifacts);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    load: async () => {
      const a = store.get(part);
      if (!a) throw new Error(`no part ${part}`);
      return a;
    },
  });
  return { store, parts };
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('save and load', () => {
  it('round-trips base, adapters and head in memory', async () => {
    const model = tinyModel(embedder, { learningRate: 0.05 });
    const batch = tinyBatch(7);
    for (let i = 0; i < 3; i++) model.trainStep(batch);
    const { store, parts } = memoryParts();

    await saveMultimodalModel(model, parts);
    const loaded = await loadMultimodalModel(parts, { textEmbedder: embedder });

    expect([...store.keys()].sort()).toEqual(['adapters', 'audio-base', 'image-base', 'text-base']);
    expect(maxDiff(model.predict(batch), loaded.predict(batch))).toBeLessThan(1e-6);
    expect(loaded.adapterNames()).toEqual(model.adapterNames());
    model.dispose();
    loaded.dispose();
    disposeBatch(batch);
  });

  it('round-trips through model.json + weights.bin files', async () => {
    const model = tinyModel(embedder, { learningRate: 0.05 });
    const batch = tinyBatch(8);
    model.trainStep(batch);

    await saveMultimodalModel(model, fileSystemParts(join(dir, 'saved')));
    const loaded = await loadMultimodalModel(fileSystemParts(join(dir, 'saved')), { textEmbedder: embedder });

    expect(maxDiff(model.predict(batch), loaded.predict(batch))).toBeLessThan(1e-6);
    model.dispose();
    loaded.dispose();
    disposeBatch(batch);
  });

  it('refuses an artifact that is not an adapters artifact', async () => {
    const { parts } = memoryParts();
    await parts('adapters').save!({ weightSpecs: [], weightData: new ArrayBuffer(0), format: 'layers-model' });

    await expect(loadMultimodalModel(parts)).rejects.toThrowError(/MODELS_BAD_ARTIFACTS/);
    await expect(fileSystemHandler(join(dir, 'missing')).load!()).rejects.toThrowError(/MODELS_BAD_ARTIFACTS/);
  });
});

describe('exportMergedModel', () => {
  it('writes a plain LayersModel that tf.loadLayersModel reads and that predicts like the model', async () => {
    const model = tinyModel(embedder, { learningRate: 0.05 });
    const batch = tinyBatch(9);
    for (let i = 0; i < 3; i++) model.trainStep(batch);
    const exported = exportMergedModel(model);

    await exported.save(fileSystemHandler(join(dir, 'merged')));
    const json = await readFile(join(dir, 'merged', 'model.json'), 'utf8');
    const plain = await tf.loadLayersModel(fileSystemHandler(join(dir, 'merged')));
    const pooled = maskedMeanPool(embedder.embed(batch.text!), batch.text!);
    const out = plain.predict([batch.image!, pooled, batch.audio!]) as tf.Tensor;

    expect(json).not.toMatch(/Lora|NamHead/);
    expect(out.shape).toEqual([TINY.batch, TINY.classes]);
    expect(maxDiff(out, model.predict(batch))).toBeLessThan(1e-5);
    model.dispose();
    disposeBatch(batch);
  });

  it('exports a single modality equal to the model given only that modality', () => {
    const model = tinyModel(embedder);
    const batch = tinyBatch(10, ['image']);

    const exported = exportMergedModel(model, { modalities: ['image'] });

    expect(maxDiff(exported.predict(batch.image!) as tf.Tensor, model.predict(batch))).toBeLessThan(1e-5);
    expect(() => exportMergedModel(model, { modalities: [] })).toThrowError(/MODELS_BAD_INPUT/);
    model.dispose();
    disposeBatch(batch);
  });
});

/** Weight values of a LayersModel, by weight name. */
const weightValues = (m: tf.LayersModel): Record<string, number[]> =>
  Object.fromEntries(m.weights.map((w) => [w.originalName, Array.from(w.read().dataSync())]));

describe('async export and save', () => {
  it('exportMergedModelAsync builds exactly the model exportMergedModel builds, and leaks nothing', async () => {
    // Arrange
    const model = tinyModel(embedder, { learningRate: 0.05 });
    const batch = tinyBatch(11);
    model.trainStep(batch);
    const before = tf.memory().numTensors;

    // Act
    const fromSync = exportMergedModel(model, { modalities: ['image', 'audio'], name: 'same' });
    const fromAsync = await exportMergedModelAsync(model, { modalities: ['image', 'audio'], name: 'same' });

    // Assert
    expect(fromAsync.name).toBe('same');
    expect(fromAsync.inputNames).toEqual(fromSync.inputNames);
    expect(weightValues(fromAsync)).toEqual(weightValues(fromSync));
    const out = [fromSync, fromAsync].map((m) => m.predict([batch.image!, batch.audio!]) as tf.Tensor);
    expect(Array.from(await out[1]!.data())).toEqual(Array.from(await out[0]!.data()));
    tf.dispose(out);
    fromSync.dispose();
    fromAsync.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(exportMergedModelAsync(model, { modalities: [] })).rejects.toThrowError(/MODELS_BAD_INPUT/);
    model.dispose();
    disposeBatch(batch);
  });

  it('saves, loads and exports with no synchronous read (where a WebGPU tab would get zeros)', async () => {
    const model = tinyModel(embedder, { learningRate: 0.05 });
    const batch = tinyBatch(12);
    model.trainStep(batch);
    const { parts } = memoryParts();
    const expected = model.predict(batch);

    const { loaded, exported } = await withoutSyncReads(async () => {
      await saveMultimodalModel(model, parts);
      const loaded = await loadMultimodalModel(parts, { textEmbedder: embedder });
      const merged = await exportMergedModelAsync(model);
      await merged.save(parts('merged'));
      merged.dispose();
      return { loaded, exported: await tf.loadLayersModel(parts('merged')) };
    });

    expect(maxDiff(loaded.predict(batch), expected)).toBe(0);
    const pooled = maskedMeanPool(embedder.embed(batch.text!), batch.text!);
    expect(maxDiff(exported.predict([batch.image!, pooled, batch.audio!]) as tf.Tensor, expected)).toBeLessThan(1e-5);
    // The stand-in does bite: the synchronous export fails under it.
    await expect(withoutSyncReads(() => Promise.resolve(exportMergedModel(model)))).rejects.toThrowError(/synchronous tensor read/);
    model.dispose();
    loaded.dispose();
    exported.dispose();
    disposeBatch(batch);
  });

  it('saveAdapters saves the weights as they were when called, whatever changes while it runs', async () => {
    const model = tinyModel(embedder);
    const original = model.adapterParameters();
    const changed = original.map((t) => ({ ...t, values: t.values.map((v) => v + 1) }));
    const { store, parts } = memoryParts();

    const saving = saveAdapters(model, parts('adapters'));
    model.setAdapterParameters(changed);
    await saving;

    const restored = tinyModel(embedder, { seed: 9 });
    await loadAdapters(restored, tf.io.fromMemory(store.get('adapters')!));
    expect(restored.adapterParameters()).toEqual(original);
    expect(model.adapterParameters()).toEqual(changed);
    model.dispose();
    restored.dispose();
  });
});
