import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { TINY, disposeBatch, tinyBatch, tinyEmbedder, tinyModel } from './fixtures.test-util.js';

afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Forward logits and the gradients of one loss with respect to every adapter, on one backend. */
async function runOn(backend: string): Promise<{ logits: Float32Array; grads: Float32Array[] }> {
  expect(await tf.setBackend(backend)).toBe(true);
  const embedder = tinyEmbedder();
  const model = tinyModel(embedder);
  const batch = tinyBatch(11);
  const logits = model.predict(batch);
  const before = model.adapterParameters();
  model.trainStep(batch, { modalWeight: 0.5 });
  // With Adam the first step is lr·sign-like; compare the parameter deltas, which carry the gradients' signs and ratios.
  const after = model.adapterParameters();
  const result = { logits: logits.dataSync() as Float32Array, grads: after.map((t, i) => t.values.map((v, j) => v - before[i]!.values[j]!)) };
  logits.dispose();
  model.dispose();
  disposeBatch(batch);
  embedder.dispose();
  return result;
}

describe('backends', () => {
  it('cpu and wasm agree on the forward pass and the update within 1e-4', async () => {
    const cpu = await runOn('cpu');
    const wasm = await runOn('wasm');

    expect(cpu.logits.length).toBe(TINY.batch * TINY.classes);
    cpu.logits.forEach((v, i) => expect(Math.abs(v - wasm.logits[i]!)).toBeLessThan(1e-4));
    let worst = 0;
    cpu.grads.forEach((g, i) => g.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - wasm.grads[i]![j]!)))));
    expect(worst).toBeLessThan(1e-4);
  });

  it('selectBackend measures each candidate, skips unusable ones and activates the fastest', async () => {
    const choice = await selectBackend(['cpu', 'wasm', 'no-such-backend'], { trialMs: 60 });

    expect(choice.trials.map((t) => t.backend)).toEqual(['cpu', 'wasm', 'no-such-backend']);
    expect(choice.trials[2]).toMatchObject({ available: false, opsPerSecond: 0 });
    const best = choice.trials.filter((t) => t.available).reduce((a, b) => (b.opsPerSecond > a.opsPerSecond ? b : a));
    expect(choice.backend).toBe(best.backend);
    expect(tf.getBackend()).toBe(choice.backend);
    expect(choice.reason).toContain(choice.backend);
    await expect(selectBackend(['no-such-backend'], { trialMs: 10 })).rejects.toThrowError(/MODELS_BACKEND_UNAVAILABLE/);
  });
});
