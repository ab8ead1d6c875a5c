/**
 * Local training and evaluation of one round on a client's own data, with packages/models. Every
 * tensor made here lives for one batch and is disposed before the next; the model's own variables
 * belong to the caller.
 */
import * as tf from '@tensorflow/tfjs';
import { shuffled } from '@chorus/fl-core';
import type { Parameters, Rng } from '@chorus/fl-core';
import { MODAL_LOSSES } from '@chorus/models';
import type { ModalLoss, Modality, MultimodalBatch, MultimodalModel, TrainStepResult } from '@chorus/models';
import type { HostBatch, LocalDataset } from './dataset.js';
import { ClientError } from './errors.js';

/** Progress of one optimiser step (1-based). */
export interface StepProgress extends BatchPosition {
  readonly loss: number;
}

/** Options of {@link trainLocally}. */
export interface LocalTrainingOptions {
  readonly model: MultimodalModel;
  readonly dataset: LocalDataset;
  readonly localEpochs: number;
  readonly batchSize: number;
  /** Shuffles each epoch. */
  readonly rng: Rng;
  /** FedProx: μ and the global parameters the proximal term pulls toward. */
  readonly proximal?: { readonly mu: number; readonly global: Parameters };
  /** Weight λ₁ of L_modal (the models package's default, 0.1, when absent; 0 turns it off). */
  readonly modalWeight?: number;
  /** Which L_modal (the models package's default, 'js', when absent). */
  readonly modalLoss?: ModalLoss;
  /** Weight λ₂ of L_intp (the models package's default, 0 — off — when absent). */
  readonly interpretabilityWeight?: number;
  /** Label-flip attack: every label y is trained as labelMap[y]. */
  readonly labelMap?: Int32Array;
  /** Modalities to feed (default: those of the dataset the model holds). */
  readonly modalities?: readonly Modality[];
  readonly onStep?: (progress: StepProgress) => void;
  /** Checked before every step; true stops training early. */
  readonly shouldStop?: () => boolean;
  /** Awaited between steps, so sockets and other clients get a turn. */
  readonly pause?: () => Promise<void>;
}

/** What a round of local training did. */
export interface LocalTrainingResult {
  readonly numSteps: number;
  /** Example-weighted mean loss over every step (0 without steps). */
  readonly meanLoss: number;
  /** Example-weighted mean of L_modal, unweighted, over every step (0 without steps, or with L_modal off). */
  readonly meanModalLoss: number;
  /** Example-weighted mean of L_intp, unweighted, over every step (0 without steps, or with L_intp off). */
  readonly meanInterpretabilityLoss: number;
  /** True when `shouldStop` ended it early. */
  readonly stopped: boolean;
}

/** Model inputs for a host batch; the caller disposes them (e.g. `tf.dispose(Object.values(batch))`). */
export function toModelBatch(host: HostBatch, modalities: readonly Modality[], labelMap?: Int32Array): MultimodalBatch {
  const batch: MultimodalBatch = {};
  try {
    for (const m of modalities) {
      const a = host[m];
      if (!a) throw new ClientError('CLIENT_DATASET', `batch has no ${m} input`);
      batch[m] = tf.tensor(a.values, [...a.shape], a.values instanceof Int32Array ? 'int32' : 'float32');
    }
    const labels = labelMap ? host.labels.map((y) => labelMap[y] ?? y) : host.labels;
    batch.labels = tf.tensor1d(labels, 'int32');
  } catch (err) {
    disposeBatch(batch);
    throw err;
  }
  return batch;
}

/** Disposes every tensor of a model batch. */
export function disposeBatch(batch: MultimodalBatch): void {
  tf.dispose(Object.values(batch) as tf.Tensor[]);
}

function usableModalities(model: MultimodalModel, dataset: LocalDataset, requested?: readonly Modality[]): Modality[] {
  const ms = (requested ?? dataset.modalities).filter((m) => model.modalities.includes(m) && dataset.modalities.includes(m));
  if (ms.length === 0)
    throw new ClientError(
      'CLIENT_MODEL_MISMATCH',
      `no modality in common: data has ${dataset.modalities.join(', ')}, model has ${model.modalities.join(', ')}`,
    );
  return ms;
}

/** Where a batch sits in a round of local training (1-based epoch and batch). */
export interface BatchPosition {
  readonly epoch: number;
  readonly numEpochs: number;
  readonly batch: number;
  readonly numBatches: number;
}

/** Options of {@link forEachLocalBatch}. */
export interface LocalBatchingOptions {
  readonly dataset: LocalDataset;
  readonly localEpochs: number;
  readonly batchSize: number;
  /** Draws the epochs' shuffles (see {@link forEachLocalBatch} for when). */
  readonly rng: Rng;
  /** Checked before every batch; true stops early. */
  readonly shouldStop?: () => boolean;
  /** Awaited after every batch, so sockets and other clients get a turn. */
  readonly pause?: () => Promise<void>;
}

/** Throws `CLIENT_BAD_CONFIG` unless `localEpochs` and `batchSize` are integers ≥ 1. */
function checkBatching(localEpochs: number, batchSize: number): void {
  if (!Number.isInteger(localEpochs) || localEpochs < 1) throw new ClientError('CLIENT_BAD_CONFIG', `localEpochs must be an integer ≥ 1, got ${localEpochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ClientError('CLIENT_BAD_CONFIG', `batchSize must be an integer ≥ 1, got ${batchSize}`);
}

/**
 * Hands `visit` the batches of `localEpochs` shuffled passes over `dataset`, `batchSize` examples
 * each (the last batch of an epoch may be smaller), one at a time and in order. The batching of
 * every kind of round: weight and split rounds walk the data identically.
 *
 * Randomness: `rng` draws the shuffles of all epochs, one after the other, before the first batch
 * is read, and nothing else; a caller drawing from the same generator afterwards (a split round's
 * interface noise) draws after all of them. Resolves with `stopped: true` when `shouldStop` ended
 * the walk early.
 */
export async function forEachLocalBatch(
  options: LocalBatchingOptions,
  visit: (host: HostBatch, at: BatchPosition) => Promise<void>,
): Promise<{ readonly stopped: boolean }> {
  const { dataset, localEpochs, batchSize, rng } = options;
  checkBatching(localEpochs, batchSize);
  const n = dataset.numExamples;
  const numBatches = Math.ceil(n / batchSize);
  const all = Array.from({ length: n }, (_, i) => i);
  const orders = Array.from({ length: localEpochs }, () => shuffled(rng, all));
  for (let epoch = 1; epoch <= localEpochs; epoch++) {
    const order = orders[epoch - 1]!;
    for (let b = 0; b < numBatches; b++) {
      if (options.shouldStop?.()) return { stopped: true };
      const host = await dataset.read(order.slice(b * batchSize, (b + 1) * batchSize));
      await visit(host, { epoch, numEpochs: localEpochs, batch: b + 1, numBatches });
      if (options.pause) await options.pause();
    }
  }
  return { stopped: false };
}

/** Trains `model` on `dataset` for `localEpochs` epochs of shuffled mini-batches ({@link forEachLocalBatch}). */
export async function trainLocally(options: LocalTrainingOptions): Promise<LocalTrainingResult> {
  const { model, dataset, localEpochs, batchSize, rng } = options;
  checkBatching(localEpochs, batchSize);
  const { modalWeight } = options;
  if (modalWeight !== undefined && !(Number.isFinite(modalWeight) && modalWeight >= 0))
    throw new ClientError('CLIENT_BAD_CONFIG', `modalWeight must be a finite number ≥ 0, got ${modalWeight}`);
  const { modalLoss, interpretabilityWeight } = options;
  if (modalLoss !== undefined && !(MODAL_LOSSES as readonly string[]).includes(modalLoss))
    throw new ClientError('CLIENT_BAD_CONFIG', `modalLoss must be one of ${MODAL_LOSSES.join(', ')}, got ${String(modalLoss)}`);
  if (interpretabilityWeight !== undefined && !(Number.isFinite(interpretabilityWeight) && interpretabilityWeight >= 0))
    throw new ClientError('CLIENT_BAD_CONFIG', `interpretabilityWeight must be a finite number ≥ 0, got ${interpretabilityWeight}`);
  const modalities = usableModalities(model, dataset, options.modalities);
  let numSteps = 0;
  let lossSum = 0;
  let modalSum = 0;
  let intpSum = 0;
  let examples = 0;
  const mean = (sum: number): number => (examples > 0 ? sum / examples : 0);
  const { stopped } = await forEachLocalBatch(
    {
      dataset,
      localEpochs,
      batchSize,
      rng,
      ...(options.shouldStop ? { shouldStop: options.shouldStop } : {}),
      ...(options.pause ? { pause: options.pause } : {}),
    },
    async (host, at) => {
      const batch = toModelBatch(host, modalities, options.labelMap);
      let step: TrainStepResult;
      try {
        // Asynchronous reads: a synchronous one on WebGPU can return zeros and lose the device.
        step = await model.trainStepAsync(batch, {
          ...(options.proximal ? { proximal: { mu: options.proximal.mu, global: options.proximal.global } } : {}),
          ...(modalWeight === undefined ? {} : { modalWeight }),
          ...(modalLoss === undefined ? {} : { modalLoss }),
          ...(interpretabilityWeight === undefined ? {} : { interpretabilityWeight }),
        });
      } finally {
        disposeBatch(batch);
      }
      const loss = step.loss;
      numSteps++;
      lossSum += loss * host.size;
      modalSum += step.modal * host.size;
      intpSum += step.interpretability * host.size;
      examples += host.size;
      options.onStep?.({ ...at, loss });
    },
  );
  return { numSteps, meanLoss: mean(lossSum), meanModalLoss: mean(modalSum), meanInterpretabilityLoss: mean(intpSum), stopped };
}

/** Accuracy and mean cross-entropy of `model` on the examples at `indices` (true labels), in chunks of `chunk`. */
export async function evaluateLocally(
  model: MultimodalModel,
  dataset: LocalDataset,
  indices: readonly number[],
  chunk = 64,
): Promise<{ accuracy: number; loss: number; numExamples: number }> {
  const modalities = usableModalities(model, dataset);
  let correct = 0;
  let lossSum = 0;
  let n = 0;
  for (let start = 0; start < indices.length; start += chunk) {
    const host = await dataset.read(indices.slice(start, start + chunk));
    const batch = toModelBatch(host, modalities);
    try {
      const r = await model.evaluateAsync([batch]);
      correct += r.accuracy * r.numExamples;
      lossSum += r.loss * r.numExamples;
      n += r.numExamples;
    } finally {
      disposeBatch(batch);
    }
  }
  return { accuracy: n > 0 ? correct / n : 0, loss: n > 0 ? lossSum / n : 0, numExamples: n };
}
