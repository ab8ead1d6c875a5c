/**
 * Prints the input-deletion Faithfulness Score (`deletionFaithfulness`) on the built-in digits task:
 * for a fresh model (pretrained frozen encoders, untrained head), the same model after local
 * training, and the trained model with its saliency reversed (an attribution that should fail).
 * Usage: `pnpm --filter @chorus/client bench:fs [--train 512] [--examples 128] [--trials 4] [--seed 1]`
 * (wasm backend; deterministic from its flags).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { deletionFaithfulness, saliencyAsync, type DeletionFaithfulness, type Modality, type MultimodalBatch } from '@chorus/models';
import { createNodeDigitsFactory, loadShard, partitionBuiltin, useNodeBackend } from '../src/node/index.js';
import type { LocalDataset } from '../src/dataset.js';
import { toModelBatch, trainLocally } from '../src/training.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return value;
}

const numTrain = flag('train', 512);
const numExamples = flag('examples', 128);
const trials = flag('trials', 4);
const seed = flag('seed', 1);
const modalities: Modality[] = ['image', 'text', 'audio'];

/** Mean overall FS over the fractions of each model, for the closing JSON line. */
const summary: Record<string, number> = {};

function table(label: string, fs: DeletionFaithfulness): string {
  summary[`fs_${label.replace(/ \(acc.*\)$/, '').replace(/[^a-z]+/g, '_')}`] = fs.mean.overall;
  const cell = (s: { fs: number; topDrop: number; randomDrop: number }): string =>
    `${s.fs.toFixed(4)} (top ${s.topDrop.toFixed(4)}, random ${s.randomDrop.toFixed(4)})`;
  const rows = fs.points.map(
    (p) => `| ${label} | ${Math.round(p.fraction * 100)} % | ${cell(p.overall)} | ${modalities.map((m) => cell(p.perModality[m]!)).join(' | ')} |`,
  );
  return rows.join('\n');
}

await useNodeBackend('wasm');
const factory = createNodeDigitsFactory();
const [shard] = await partitionBuiltin({ dataset: 'digits', numClients: 1, scheme: 'iid', seed, maxExamplesPerClient: numTrain + numExamples });
const data = await loadShard('digits', shard!);
const trainIndices = Array.from({ length: numTrain }, (_, i) => i);
const heldOut = await data.read(Array.from({ length: numExamples }, (_, i) => numTrain + i));
const batch = toModelBatch(heldOut, modalities);
const { labels, ...inputs }: MultimodalBatch = batch;
const request = { modalities, numClasses: 10, adapterRank: 4, namConcepts: 8, namHiddenUnits: 8, head: 'nam' as const, learningRate: 0.01, seed };
const options = { rng: createRng(seed), trials };
const out: string[] = [`| model | k | FS overall | FS image | FS text | FS audio |`, `|---|---|---|---|---|---|`];
const model = await factory.create(request);
try {
  const started = Date.now();
  out.push(table(`fresh (acc ${(await model.evaluateAsync([batch])).accuracy.toFixed(3)})`, await deletionFaithfulness(model, inputs, options)));
  const seconds = (Date.now() - started) / 1000;
  const subset: LocalDataset = {
    modalities: data.modalities,
    numExamples: numTrain,
    labels: data.labels.subarray(0, numTrain),
    read: (indices) => data.read(indices.map((i) => trainIndices[i]!)),
  };
  await trainLocally({ model, dataset: subset, localEpochs: 2, batchSize: 32, rng: createRng(seed) });
  const trainedLabel = `trained (acc ${(await model.evaluateAsync([batch])).accuracy.toFixed(3)})`;
  out.push(table(trainedLabel, await deletionFaithfulness(model, inputs, { ...options, rng: createRng(seed) })));
  const reversed = Object.fromEntries(await Promise.all(modalities.map(async (m) => [m, (await saliencyAsync(model, inputs, m)).values.map((v) => -v)])));
  out.push(table('trained, saliency reversed', await deletionFaithfulness(model, inputs, { ...options, rng: createRng(seed), attributions: reversed })));
  console.log(out.join('\n'));
  console.log(`\n${numExamples} held-out examples, ${trials} random trials; one FS evaluation took ${seconds.toFixed(1)} s.`);
  console.log(JSON.stringify({ ...summary, examples: numExamples, trials, fs_eval_s: Number(seconds.toFixed(1)) }));
} finally {
  model.dispose();
  tf.dispose([labels, ...Object.values(inputs)]);
  factory.dispose();
}
