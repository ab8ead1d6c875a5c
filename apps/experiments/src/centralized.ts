/**
 * The two bounds of FedMM-X's Table 1 (Balija 2025, arXiv:2503.19564, §6.1) without a coordinator:
 * centralized training (one model on the union of the clients' data) and LOCAL (each client alone on
 * its own data), on the same model, data and epoch budget as the federated runs. The union is
 * shuffled example by example, as centralized training would; an example keeps only the modalities
 * its client holds (the others are zero-filled and masked out through the model's presence input).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, shuffled } from '@chorus/fl-core';
import type { Rng } from '@chorus/fl-core';
import { evaluateLocally } from '@chorus/client';
import type { HostBatch, LocalDataset } from '@chorus/client';
import type { Modality, MultimodalBatch, MultimodalModel } from '@chorus/models';
import { ExperimentsError } from './errors.js';

/** One example of the union: which dataset, which of its examples. */
export interface UnionExample {
  readonly dataset: number;
  readonly index: number;
}

function checkInt(fn: string, field: string, value: number, min: number): void {
  if (!(Number.isInteger(value) && value >= min))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `${fn}: ${field} must be an integer ≥ ${min}, got ${value}`);
}

/** One epoch over datasets of `sizes` examples: every example of every dataset, shuffled together and cut into batches of `batchSize` (the last one shorter). */
export function unionEpoch(sizes: readonly number[], batchSize: number, rng: Rng): UnionExample[][] {
  checkInt('unionEpoch', 'batchSize', batchSize, 1);
  sizes.forEach((n, i) => checkInt('unionEpoch', `sizes[${i}]`, n, 0));
  const all = shuffled(
    rng,
    sizes.flatMap((n, dataset) => Array.from({ length: n }, (_, index) => ({ dataset, index }))),
  );
  const batches: UnionExample[][] = [];
  for (let start = 0; start < all.length; start += batchSize) batches.push(all.slice(start, start + batchSize));
  return batches;
}

/**
 * The model batch of `examples` drawn from several datasets: each input zero-filled where an
 * example's dataset lacks that modality, with a presence row that masks it out of the head (the
 * model's own missing-modality path). The caller disposes the tensors.
 */
export async function unionBatch(
  datasets: readonly LocalDataset[],
  examples: readonly UnionExample[],
  modalities: readonly Modality[],
): Promise<MultimodalBatch> {
  const size = examples.length;
  const parts = await Promise.all(
    datasets.map(async (d, i) => {
      const rows = examples.flatMap((e, row) => (e.dataset === i ? [{ row, index: e.index }] : []));
      return rows.length === 0 ? null : { rows, host: await d.read(rows.map((r) => r.index)) };
    }),
  );
  const labels = new Int32Array(size);
  const present = new Float32Array(size * modalities.length);
  const inputs: Partial<Record<Modality, { values: Float32Array | Int32Array; shape: number[] }>> = {};
  for (const part of parts) {
    if (!part) continue;
    part.rows.forEach((r, j) => (labels[r.row] = part.host.labels[j]!));
    modalities.forEach((m, mi) => {
      const a = part.host[m];
      if (!a) return;
      const rowSize = a.shape.slice(1).reduce((p, q) => p * q, 1);
      const target = (inputs[m] ??= {
        values: a.values instanceof Int32Array ? new Int32Array(size * rowSize) : new Float32Array(size * rowSize),
        shape: [size, ...a.shape.slice(1)],
      });
      part.rows.forEach((r, j) => {
        target.values.set(a.values.subarray(j * rowSize, (j + 1) * rowSize), r.row * rowSize);
        present[r.row * modalities.length + mi] = 1;
      });
    });
  }
  const batch: MultimodalBatch = {};
  for (const m of modalities) {
    const a = inputs[m];
    if (a) batch[m] = tf.tensor(a.values, a.shape, a.values instanceof Int32Array ? 'int32' : 'float32');
  }
  batch.present = tf.tensor2d(present, [size, modalities.length]);
  batch.labels = tf.tensor1d(labels, 'int32');
  return batch;
}

/** What is trained: the adapters and head (`'adapters'`, LoRA) or every base weight and the head (`'full'`). */
export type TrainingMode = 'adapters' | 'full';

/** Options of {@link trainOnUnion}. */
export interface UnionTrainingOptions {
  readonly model: MultimodalModel;
  /** The clients' datasets (one for LOCAL); each example keeps only its dataset's modalities. */
  readonly datasets: readonly LocalDataset[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly seed: number;
  /** What is trained (default `'adapters'`). */
  readonly mode?: TrainingMode;
}

/** What a training run did. */
export interface TrainingRun {
  readonly numSteps: number;
  readonly numExamples: number;
  /** Example-weighted mean loss over every step. */
  readonly meanLoss: number;
  readonly durationMs: number;
}

/**
 * Trains `model` on the union of `datasets` for `epochs` epochs of mixed mini-batches (every batch
 * drawn from the shuffled union, so one batch holds examples of several clients), in `mode`.
 */
export async function trainOnUnion(options: UnionTrainingOptions): Promise<TrainingRun> {
  const { model, datasets, epochs, batchSize } = options;
  const mode = options.mode ?? 'adapters';
  checkInt('trainOnUnion', 'epochs', epochs, 1);
  if (datasets.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'trainOnUnion: needs at least one dataset');
  if (mode !== 'adapters' && mode !== 'full')
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `trainOnUnion: mode must be 'adapters' or 'full', got ${String(mode)}`);
  datasets.forEach((d, i) => {
    if (!d.modalities.some((m) => model.modalities.includes(m)))
      throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `trainOnUnion: dataset ${i} has none of the model's modalities (${model.modalities.join(', ')})`);
  });
  const started = performance.now();
  const rng = createRng(options.seed);
  let numSteps = 0;
  let lossSum = 0;
  let examples = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (const chunk of unionEpoch(
      datasets.map((d) => d.numExamples),
      batchSize,
      rng,
    )) {
      const batch = await unionBatch(datasets, chunk, model.modalities);
      try {
        lossSum += model.trainStep(batch, { mode }).loss * chunk.length;
      } finally {
        tf.dispose(Object.values(batch) as tf.Tensor[]);
      }
      examples += chunk.length;
      numSteps++;
    }
  }
  return { numSteps, numExamples: examples, meanLoss: examples > 0 ? lossSum / examples : 0, durationMs: performance.now() - started };
}

/** `dataset` seen through `modalities` only (a subset of its own), e.g. to test with the image alone. */
export function restrictModalities(dataset: LocalDataset, modalities: readonly Modality[]): LocalDataset {
  const kept = dataset.modalities.filter((m) => modalities.includes(m));
  if (kept.length === 0 || kept.length !== modalities.length) {
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `restrictModalities: wanted ${modalities.join('+')} of a dataset with ${dataset.modalities.join('+')}`);
  }
  return {
    modalities: kept,
    numExamples: dataset.numExamples,
    labels: dataset.labels,
    async read(indices: readonly number[]): Promise<HostBatch> {
      const full = await dataset.read(indices);
      return { size: full.size, labels: full.labels, ...Object.fromEntries(kept.map((m) => [m, full[m]])) };
    },
  };
}

/** Test accuracy of `model` with every modality of `test` present, and with each single modality alone. */
export async function evaluateByModality(model: MultimodalModel, test: LocalDataset): Promise<{ all: number; byModality: Partial<Record<Modality, number>> }> {
  const indices = Array.from({ length: test.numExamples }, (_, i) => i);
  const all = (await evaluateLocally(model, test, indices)).accuracy;
  const byModality: Partial<Record<Modality, number>> = {};
  for (const m of test.modalities.filter((x) => model.modalities.includes(x))) {
    byModality[m] = (await evaluateLocally(model, restrictModalities(test, [m]), indices)).accuracy;
  }
  return { all, byModality };
}
