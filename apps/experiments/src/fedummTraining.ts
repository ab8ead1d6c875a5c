/**
 * Training and measuring outside the coordinator for the FedUMM section (Su et al. 2026,
 * arXiv:2601.15390, Tables 3 and 4): centralized training on the union of the clients' data with
 * LoRA or with full fine-tuning (every base weight trained), the wall-clock time of one client's
 * local round, and the real size of an update as fl-core's codec encodes it.
 *
 * `trainCentralized` does what `centralized.ts`'s `trainOnUnion` does plus the training mode; the
 * two can be merged once both settle.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, encodeUpdate, shuffled } from '@chorus/fl-core';
import type { Tensor, UpdateEncoding } from '@chorus/fl-core';
import { toModelBatch } from '@chorus/client';
import type { LocalDataset } from '@chorus/client';
import type { Modality, MultimodalModel } from '@chorus/models';
import { ExperimentsError } from './errors.js';

/** What is trained: the adapters and head (`'adapters'`, LoRA) or every base weight and the head (`'full'`). */
export type TrainingMode = 'adapters' | 'full';

/** Options of {@link trainCentralized}. */
export interface CentralizedOptions {
  readonly model: MultimodalModel;
  /** Datasets whose union is trained on; a mini-batch is always cut from one of them (one set of inputs). */
  readonly datasets: readonly LocalDataset[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly mode: TrainingMode;
  readonly seed: number;
}

/** What a training run did. */
export interface TrainingRun {
  readonly numSteps: number;
  readonly numExamples: number;
  /** Example-weighted mean loss over every step. */
  readonly meanLoss: number;
  readonly durationMs: number;
}

function checkInt(fn: string, field: string, value: number, min: number): void {
  if (!(Number.isInteger(value) && value >= min))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `${fn}: ${field} must be an integer ≥ ${min}, got ${value}`);
}

/**
 * One epoch's batches over datasets of `sizes` examples: each dataset shuffled and cut into batches
 * of `batchSize` (its last one shorter), then all batches shuffled together.
 */
export function epochBatches(sizes: readonly number[], batchSize: number, seed: number): { dataset: number; indices: number[] }[] {
  checkInt('epochBatches', 'batchSize', batchSize, 1);
  sizes.forEach((n, i) => checkInt('epochBatches', `sizes[${i}]`, n, 0));
  const rng = createRng(seed);
  const batches: { dataset: number; indices: number[] }[] = [];
  sizes.forEach((n, dataset) => {
    const order = shuffled(
      rng,
      Array.from({ length: n }, (_, i) => i),
    );
    for (let start = 0; start < n; start += batchSize) batches.push({ dataset, indices: order.slice(start, start + batchSize) });
  });
  return shuffled(rng, batches);
}

/** Trains `model` on the union of `datasets` for `epochs` epochs in `mode`. */
export async function trainCentralized(options: CentralizedOptions): Promise<TrainingRun> {
  const { model, datasets, epochs, batchSize, mode } = options;
  checkInt('trainCentralized', 'epochs', epochs, 1);
  if (datasets.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'trainCentralized: needs at least one dataset');
  if (mode !== 'adapters' && mode !== 'full')
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `trainCentralized: mode must be 'adapters' or 'full', got ${String(mode)}`);
  const modalities: Modality[][] = datasets.map((d, i) => {
    const ms = d.modalities.filter((m) => model.modalities.includes(m));
    if (ms.length === 0)
      throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `trainCentralized: dataset ${i} has none of the model's modalities (${model.modalities.join(', ')})`);
    return ms;
  });
  const started = performance.now();
  let numSteps = 0;
  let numExamples = 0;
  let lossSum = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (const b of epochBatches(
      datasets.map((d) => d.numExamples),
      batchSize,
      options.seed * 1000 + epoch,
    )) {
      const host = await datasets[b.dataset]!.read(b.indices);
      const batch = toModelBatch(host, modalities[b.dataset]!);
      try {
        lossSum += model.trainStep(batch, { mode }).loss * host.size;
      } finally {
        tf.dispose(Object.values(batch) as tf.Tensor[]);
      }
      numExamples += host.size;
      numSteps++;
    }
  }
  return { numSteps, numExamples, meanLoss: numExamples > 0 ? lossSum / numExamples : 0, durationMs: performance.now() - started };
}

/** Every weight `mode` trains, as named copies: the exchanged adapters and head, or the base encoders' weights and the head. */
export function trainedParameters(model: MultimodalModel, mode: TrainingMode): Tensor[] {
  const head = model.adapterParameters().filter((t) => !t.name.endsWith('/lora_a') && !t.name.endsWith('/lora_b'));
  if (mode === 'adapters') return model.adapterParameters();
  const base = model.baseVariables().map((v, i) => ({ name: `base/${i}/${v.name}`, shape: [...v.shape], values: new Float32Array(v.dataSync()) }));
  return [...base, ...head];
}

/** Bytes of `tensors` as one client's update message in `encoding` (what the runtime uploads). */
export function encodedBytes(tensors: readonly Tensor[], encoding: UpdateEncoding): number {
  return encodeUpdate({ kind: 'delta', taskId: 'fedumm', round: 1, clientId: 'client-0', encoding, tensors: [...tensors] }).byteLength;
}

/** Middle value of `values` (mean of the two middle ones for an even count); NaN when empty. */
export function medianOf(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
