/**
 * How far from saturated fashion-mm is: the frozen digits encoders (`chorus-digits-v1`) with fresh
 * adapters and a NAM head, trained per modality alone and on all three, on a few hundred training
 * examples, scored on validation examples (the evaluation profile). Prints one JSON line per run.
 *   tsx scripts/fashion-mm-probe.ts [--train 400] [--validation 300] [--epochs 3] [--lr 0.01] [--seed 1]
 */
import { parseArgs } from 'node:util';
import { createRng, shuffled } from '@chorus/fl-core';
import { openBuiltin, readManifest } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import type { Modality } from '@chorus/models';
import { datasetFromSamples } from '../src/builtinData.js';
import { createNodeDigitsFactory, useNodeBackend } from '../src/node/setup.js';
import { evaluateLocally, trainLocally } from '../src/training.js';

const { values } = parseArgs({
  options: {
    train: { type: 'string', default: '400' },
    validation: { type: 'string', default: '300' },
    epochs: { type: 'string', default: '3' },
    lr: { type: 'string', default: '0.01' },
    seed: { type: 'string', default: '1' },
  },
});
const seed = Number(values.seed);
await useNodeBackend('wasm');
const source = fileSource();
const manifest = await readManifest(source);
const pick = (n: number, count: number, salt: number): number[] =>
  shuffled(
    createRng(seed + salt),
    Array.from({ length: n }, (_, i) => i),
  )
    .slice(0, count)
    .sort((a, b) => a - b);
const train = await openBuiltin(source, manifest, 'fashion-mm', 'train');
const validation = await openBuiltin(source, manifest, 'fashion-mm', 'validation');
const trainSamples = await train.read(pick(train.numExamples, Number(values.train), 1));
const validationSamples = await validation.read(pick(validation.numExamples, Number(values.validation), 2));
const all: Modality[] = ['image', 'text', 'audio'];
const trainData = await datasetFromSamples(trainSamples, all);
const validationData = await datasetFromSamples(validationSamples, all);
const models = createNodeDigitsFactory();
for (const modalities of [['image'], ['text'], ['audio'], all] as Modality[][]) {
  const model = await models.create({ modalities, numClasses: 10, adapterRank: 4, namConcepts: 8, namHiddenUnits: 16, learningRate: Number(values.lr), seed });
  try {
    const started = Date.now();
    await trainLocally({ model, dataset: trainData, localEpochs: Number(values.epochs), batchSize: 32, rng: createRng(seed), modalities });
    const r = await evaluateLocally(
      model,
      validationData,
      Array.from({ length: validationSamples.length }, (_, i) => i),
    );
    console.log(
      JSON.stringify({ modalities: modalities.join('+'), validationAccuracy: r.accuracy, numExamples: r.numExamples, seconds: (Date.now() - started) / 1000 }),
    );
  } finally {
    model.dispose();
  }
}
models.dispose();
