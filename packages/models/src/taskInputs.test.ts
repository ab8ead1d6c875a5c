import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TaskFile } from '@chorus/protocol';
import { isModelsError } from './errors.js';
import { audioFrames, audioInputs, imageInputs, loadTaskEncoder, parseVocabulary, textInputs, vocabularyTokenizer } from './taskInputs.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A tiny dense encoder's files, as a task folder would hold them. */
async function encoderFiles(inputDim = 3): Promise<{ declared: TaskFile[]; bytes: Map<string, Uint8Array> }> {
  const model = tf.sequential({ layers: [tf.layers.dense({ name: 'hidden', inputShape: [inputDim], units: 4, activation: 'relu' })] });
  let artifacts: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    }),
  );
  model.dispose();
  const a = artifacts as unknown as tf.io.ModelArtifacts;
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData!));
  const json = new TextEncoder().encode(
    JSON.stringify({ modelTopology: a.modelTopology, weightsManifest: [{ paths: ['./weights.bin'], weights: a.weightSpecs }] }),
  );
  const bytes = new Map([
    ['text/model.json', json],
    ['text/weights.bin', weights],
  ]);
  const declared = [...bytes].map(([path, b]) => ({ path, bytes: b.byteLength, sha256: sha(b) }));
  return { declared, bytes };
}

describe('imageInputs', () => {
  it('normalises every channel with its own mean and std', () => {
    const out = imageInputs([Float32Array.of(0.5, 0.2, 1, 0, 0.2, 0.5)], { height: 1, width: 2, channels: 3, mean: [0.5, 0, 1], std: [0.5, 0.2, 1] });
    expect(Array.from(out).map((v) => Number(v.toFixed(5)))).toEqual([0, 1, 0, -1, 1, -0.5]);
  });

  it('refuses an image of the wrong size, naming it', () => {
    expect(() => imageInputs([new Float32Array(5)], { height: 2, width: 2, channels: 1 })).toThrow(/image 0 has 5 values, expected 2×2×1 = 4/);
  });
});

describe('parseVocabulary', () => {
  it('puts padding in row 0 and the words after it', () => {
    const v = parseVocabulary('red 1 2\nblue 3 4\n\n', 'v.txt');
    expect(v.dim).toBe(2);
    expect(v.words).toEqual(['', 'red', 'blue']);
    expect(Array.from(v.vectors)).toEqual([0, 0, 1, 2, 3, 4]);
    const ids = textInputs(['Blue, red and green!'], vocabularyTokenizer(v), { maxTokens: 4 });
    expect(Array.from(ids)).toEqual([2, 1, 0, 0]);
  });

  it.each([
    ['red 1 2\nblue 3', /v.txt:2: 'blue' has 1 values, the first row 2/],
    ['red 1 x', /v.txt:1: 'red' has a value that is not a finite number/],
    ['red 1\nred 2', /v.txt:2: 'red' appears twice/],
    ['\n\n', /v.txt: holds no word vectors/],
  ])('refuses %j naming the line', (text, message) => {
    expect(() => parseVocabulary(text, 'v.txt')).toThrow(message);
  });
});

describe('audioInputs', () => {
  it('turns clips of any length into [frames, mels] log-mel rows', async () => {
    const spec = { sampleRate: 8000, clipSamples: 800, frameLength: 200, hopLength: 100, fftLength: 256, numMels: 8 };
    const tone = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i / 3));
    const out = await audioInputs([tone, tone.subarray(0, 300)], spec);
    expect(out.length).toBe(2 * audioFrames(spec) * 8);
    expect(out.every(Number.isFinite)).toBe(true);
    // The short clip is zero-padded, so its last frames are silence: lower than the tone's.
    const row = audioFrames(spec) * 8;
    expect(out[2 * row - 1]!).toBeLessThan(out[row - 1]!);
  });
});

describe('loadTaskEncoder', () => {
  it('loads files whose digests match and whose input fits the spec', async () => {
    const files = await encoderFiles();
    const before = tf.memory().numTensors;
    const model = await loadTaskEncoder('text', files, [3]);
    expect(model.inputs[0]!.shape).toEqual([null, 3]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an altered weight file, naming it, before loading anything', async () => {
    const files = await encoderFiles();
    const tampered = new Map(files.bytes);
    const w = tampered.get('text/weights.bin')!.slice();
    w[0]! ^= 1;
    tampered.set('text/weights.bin', w);
    const before = tf.memory().numTensors;
    const err = await loadTaskEncoder('text', { declared: files.declared, bytes: tampered }, [3]).catch((e: unknown) => e);
    expect(isModelsError(err) && err.code).toBe('MODELS_BAD_ARTIFACTS');
    expect((err as Error).message).toMatch(/text\/weights\.bin has SHA-256 [0-9a-f]{64}, the task declares/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an encoder whose input does not match the spec, and frees it', async () => {
    const files = await encoderFiles(5);
    const before = tf.memory().numTensors;
    const err = await loadTaskEncoder('text', files, [3]).catch((e: unknown) => e);
    expect(isModelsError(err) && err.code).toBe('MODELS_BAD_BASE');
    expect((err as Error).message).toMatch(/takes input \[5\]; the task's input spec gives \[3\]/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a model.json naming a weight file the task does not list', async () => {
    const files = await encoderFiles();
    const bytes = new Map(files.bytes);
    bytes.delete('text/weights.bin');
    const declared = files.declared.filter((f) => f.path !== 'text/weights.bin');
    await expect(loadTaskEncoder('text', { declared, bytes }, [3])).rejects.toThrow(/names the weight file text\/weights\.bin, which the task does not list/);
  });
});
