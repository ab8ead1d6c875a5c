/**
 * Prints what L_intp's weight λ₂ does on the built-in digits task: held-out accuracy, the roughness
 * of the NAM shape functions (`shapeFunctionRoughness` on a 129-point grid) and the mean
 * |contribution|, after the same local training with each λ₂.
 * Usage: `pnpm --filter @chorus/client bench:intp [--train 512] [--examples 256] [--seed 1]`
 * (wasm backend; deterministic from its flags).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { shapeFunctionGridAsync, shapeFunctionRoughness, type Modality } from '@chorus/models';
import type { LocalDataset } from '../src/dataset.js';
import { createNodeDigitsFactory, loadShard, partitionBuiltin, useNodeBackend } from '../src/node/index.js';
import { toModelBatch, trainLocally } from '../src/training.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return value;
}

const numTrain = flag('train', 512);
const numExamples = flag('examples', 256);
const seed = flag('seed', 1);
const weights = [0, 0.01, 0.1, 1];
const modalities: Modality[] = ['image', 'text', 'audio'];

await useNodeBackend('wasm');
const factory = createNodeDigitsFactory();
const [shard] = await partitionBuiltin({ dataset: 'digits', numClients: 1, scheme: 'iid', seed, maxExamplesPerClient: numTrain + numExamples });
const data = await loadShard('digits', shard!);
const train: LocalDataset = {
  modalities: data.modalities,
  numExamples: numTrain,
  labels: data.labels.subarray(0, numTrain),
  read: (indices) => data.read(indices),
};
const batch = toModelBatch(await data.read(Array.from({ length: numExamples }, (_, i) => numTrain + i)), modalities);
const request = { modalities, numClasses: 10, adapterRank: 4, namConcepts: 8, namHiddenUnits: 8, head: 'nam' as const, learningRate: 0.01, seed };
const out = ['| λ₂ | held-out accuracy | shape roughness | mean abs contribution | mean L_intp in training |', '|---|---|---|---|---|'];
/** Per λ₂, the figures of the closing JSON line. */
const figures: Record<string, { accuracy: number; roughness: number; meanAbsContribution: number }> = {};
try {
  for (const interpretabilityWeight of weights) {
    const model = await factory.create(request);
    try {
      const run = await trainLocally({ model, dataset: train, localEpochs: 2, batchSize: 32, rng: createRng(seed), interpretabilityWeight });
      const { accuracy } = await model.evaluateAsync([batch]);
      const roughness = await shapeFunctionRoughness(await shapeFunctionGridAsync(model, { points: 129 }));
      const sparsity = tf.tidy(() => tf.mean(tf.abs(model.forward(batch).contributions)));
      const meanAbs = (await sparsity.data())[0]!;
      sparsity.dispose();
      figures[`lambda2_${interpretabilityWeight}`] = { accuracy, roughness, meanAbsContribution: meanAbs };
      out.push(
        `| ${interpretabilityWeight} | ${accuracy.toFixed(4)} | ${roughness.toExponential(3)} | ${meanAbs.toFixed(4)} | ${interpretabilityWeight > 0 ? run.meanInterpretabilityLoss.toFixed(4) : '—'} |`,
      );
    } finally {
      model.dispose();
    }
  }
  console.log(out.join('\n'));
  console.log(`\n${numTrain} training examples (2 epochs, batch 32, lr 0.01), ${numExamples} held-out examples, seed ${seed}.`);
  console.log(JSON.stringify({ ...figures, train: numTrain, examples: numExamples, seed }));
} finally {
  tf.dispose(Object.values(batch) as tf.Tensor[]);
  factory.dispose();
}
