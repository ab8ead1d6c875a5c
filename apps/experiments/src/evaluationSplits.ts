/**
 * The held-out data every experiment scores on: a validation subset (hyperparameters are chosen on
 * it, see tuning.ts) and a disjoint test subset (read only once every choice is made). A built-in
 * dataset with its own `validation` split uses it. Digits has none, so a fixed, seeded, stratified
 * validation subset of {@link CARVED_VALIDATION_EXAMPLES} examples is carved out of its test split,
 * and test numbers come only from the remainder; the carve does not depend on the mode or the seeds,
 * so every run of every section holds out the same examples.
 */
import * as tf from '@tensorflow/tfjs';
import { MODALITIES, createRng, shuffled } from '@chorus/fl-core';
import { datasetFromSamples } from '@chorus/client';
import type { BuiltinSample, LocalDataset } from '@chorus/client';
import { openBuiltin, readManifest } from '@chorus/datasets';
import type { BuiltinName, Manifest, ManifestDataset, Split } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import { ExperimentsError } from './errors.js';

/** The built-in multimodal datasets a section can run on. */
export const EXPERIMENT_DATASETS = ['digits', 'fashion-mm'] as const;

/** One of {@link EXPERIMENT_DATASETS}. */
export type ExperimentDataset = (typeof EXPERIMENT_DATASETS)[number];

/** Examples carved out of the test split as the validation subset when a dataset has no validation split. */
export const CARVED_VALIDATION_EXAMPLES = 500;

/** Seed of the carve (fixed: the same held-out examples in every run). */
export const CARVE_SEED = 0x7a11d;

/** Seed of the draws of the validation and test subsets from their pools. */
export const SUBSET_SEED = 0x7e57;

/**
 * The manifest entry of `name`; throws `EXPERIMENTS_UNKNOWN_DATASET` when `name` is not one of
 * {@link EXPERIMENT_DATASETS} or this checkout's manifest does not hold it.
 */
export function experimentDataset(name: string, manifest: Pick<Manifest, 'datasets'>): ManifestDataset {
  if (!(EXPERIMENT_DATASETS as readonly string[]).includes(name))
    throw new ExperimentsError('EXPERIMENTS_UNKNOWN_DATASET', `dataset '${name}' is not one of ${EXPERIMENT_DATASETS.join(', ')}`);
  const entry = (manifest.datasets as Readonly<Record<string, ManifestDataset | undefined>>)[name];
  if (entry === undefined)
    throw new ExperimentsError(
      'EXPERIMENTS_UNKNOWN_DATASET',
      `dataset '${name}' is not in the built-in manifest (it holds ${Object.keys(manifest.datasets).join(', ')}); generate it first`,
    );
  return entry;
}

/**
 * A seeded stratified holdout: `count` of the `labels.length` examples, each class contributing its
 * share (floor of count × class share, the remaining examples to the classes with the largest
 * fractional parts, ties to the lower class), drawn at random inside the class. Returns both parts
 * as ascending index lists. Throws `EXPERIMENTS_BAD_INPUT` on a count outside [0, labels.length].
 */
export function stratifiedHoldout(labels: ArrayLike<number>, count: number, seed: number): { held: number[]; rest: number[] } {
  const n = labels.length;
  if (!(Number.isInteger(count) && count >= 0 && count <= n))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `stratifiedHoldout: count must be an integer in [0, ${n}], got ${count}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const label = labels[i]!;
    if (!(Number.isInteger(label) && label >= 0)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `stratifiedHoldout: label ${label} at ${i}`);
    const members = byClass.get(label) ?? [];
    members.push(i);
    byClass.set(label, members);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const exact = classes.map((c) => (count * byClass.get(c)!.length) / n);
  const quota = exact.map(Math.floor);
  const remaining = count - quota.reduce((s, q) => s + q, 0);
  const byFraction = classes.map((_, i) => i).sort((a, b) => exact[b]! - quota[b]! - (exact[a]! - quota[a]!) || a - b);
  for (const i of byFraction.slice(0, remaining)) quota[i]! += 1;
  const rng = createRng(seed);
  const held: number[] = [];
  classes.forEach((c, i) => held.push(...shuffled(rng, byClass.get(c)!).slice(0, quota[i]!)));
  const heldSet = new Set(held);
  return {
    held: held.sort((a, b) => a - b),
    rest: Array.from({ length: n }, (_, i) => i).filter((i) => !heldSet.has(i)),
  };
}

/** `count` of `pool` (all when fewer), a seeded draw, ascending. */
export function drawSubset(pool: readonly number[], count: number, seed: number): number[] {
  return shuffled(createRng(seed), pool)
    .slice(0, Math.min(count, pool.length))
    .sort((a, b) => a - b);
}

/** Where a section's held-out numbers come from, stored with its raw results. */
export interface EvaluationSplitInfo {
  readonly dataset: ExperimentDataset;
  /** `'validation split'`: the dataset's own; `'carved from test'`: a stratified subset of the test split. */
  readonly validationSource: 'validation split' | 'carved from test';
  /** Examples the validation subset was drawn from, and the test subset (the test split less any carve). */
  readonly validationPool: number;
  readonly testPool: number;
  readonly validationExamples: number;
  readonly testExamples: number;
}

/** The validation and test subsets of a section. */
export interface EvaluationSplits {
  readonly validation: LocalDataset;
  readonly test: LocalDataset;
  readonly info: EvaluationSplitInfo;
}

/**
 * Loads `validationExamples` validation and `testExamples` test examples of `dataset` with every
 * modality (seeded draws from the pools described in the module comment; disjoint by construction).
 * Throws `EXPERIMENTS_UNKNOWN_DATASET` for a dataset this checkout cannot open.
 */
export async function loadEvaluationSplits(
  dataset: string,
  options: { readonly validationExamples: number; readonly testExamples: number },
): Promise<EvaluationSplits> {
  const source = fileSource();
  const manifest = await readManifest(source);
  const entry = experimentDataset(dataset, manifest);
  const name = dataset as BuiltinName;
  const test = await openBuiltin(source, manifest, name, 'test');
  const hasValidation = Object.keys(entry.splits).includes('validation');
  let validationSplit: typeof test;
  let validationPool: number[];
  let testPool: number[];
  if (hasValidation) {
    // The split type gains 'validation' with the datasets that have one.
    validationSplit = await openBuiltin(source, manifest, name, 'validation' as Split);
    validationPool = Array.from({ length: validationSplit.numExamples }, (_, i) => i);
    testPool = Array.from({ length: test.numExamples }, (_, i) => i);
  } else {
    const carve = stratifiedHoldout(test.labels, Math.min(CARVED_VALIDATION_EXAMPLES, Math.floor(test.numExamples / 2)), CARVE_SEED);
    validationSplit = test;
    validationPool = carve.held;
    testPool = carve.rest;
  }
  const validationIndices = drawSubset(validationPool, options.validationExamples, SUBSET_SEED);
  const testIndices = drawSubset(testPool, options.testExamples, SUBSET_SEED);
  const load = async (split: typeof test, indices: number[]): Promise<LocalDataset> =>
    datasetFromSamples((await split.read(indices)) as BuiltinSample[], MODALITIES);
  // Audio features (log-mel) are computed with TF.js ops, and backends differ in the last bits of a
  // float; pinned to the cpu backend, the evaluation inputs are the same bits whatever backend is
  // active when a section (or `--verify`, which recomputes stored runs) loads them.
  const previous = tf.getBackend();
  if (previous !== 'cpu' && !(await tf.setBackend('cpu')))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'loadEvaluationSplits: the cpu backend did not start');
  let validation: LocalDataset;
  let testSet: LocalDataset;
  try {
    validation = await load(validationSplit, validationIndices);
    testSet = await load(test, testIndices);
  } finally {
    if (previous !== undefined && previous !== 'cpu') await tf.setBackend(previous);
  }
  return {
    validation,
    test: testSet,
    info: {
      dataset: dataset as ExperimentDataset,
      validationSource: hasValidation ? 'validation split' : 'carved from test',
      validationPool: validationPool.length,
      testPool: testPool.length,
      validationExamples: validationIndices.length,
      testExamples: testIndices.length,
    },
  };
}

/** One sentence for the report on where validation and test numbers come from. */
export function describeSplits(info: EvaluationSplitInfo): string {
  return info.validationSource === 'validation split'
    ? `Hyperparameters are chosen on ${info.validationExamples} examples of ${info.dataset}'s validation split; test numbers use ${info.testExamples} examples of its test split, read only after every choice is made.`
    : `${info.dataset} has no validation split, so a fixed, seeded, stratified subset of ${info.validationPool} examples is carved out of its test split as validation data (${info.validationExamples} of them used here); hyperparameters are chosen on it, and test numbers use ${info.testExamples} examples of the disjoint remainder (${info.testPool} examples), read only after every choice is made.`;
}
