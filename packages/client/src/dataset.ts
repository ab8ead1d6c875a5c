/**
 * A client's local data, as the runtime sees it: labelled examples it can read in batches of host
 * arrays, ready to become model inputs. Raw samples stay behind this interface — the runtime only
 * ever turns them into tensors for local training and evaluation; nothing of them is uploaded.
 */
import { MODALITIES } from '@chorus/fl-core';
import type { Modality } from '@chorus/models';
import { ClientError } from './errors.js';

/** One modality's inputs for a batch: `shape[0]` is the batch size. */
export interface HostArray {
  /** float32 for image (in [0, 1]) and audio (log-mel); int32 token ids for text. */
  readonly values: Float32Array | Int32Array;
  readonly shape: readonly number[];
}

/** A batch of host arrays; modalities the dataset lacks are absent. */
export interface HostBatch {
  readonly size: number;
  readonly labels: Int32Array;
  readonly image?: HostArray;
  readonly text?: HostArray;
  readonly audio?: HostArray;
}

/** A client's local dataset. */
export interface LocalDataset {
  /** Modalities every example carries. */
  readonly modalities: readonly Modality[];
  readonly numExamples: number;
  /** Label of every example. */
  readonly labels: Int32Array;
  /** The examples at `indices` (positions in [0, numExamples)), in that order. */
  read(indices: readonly number[]): Promise<HostBatch>;
}

/** Per-modality inputs of every example, row-major with the example first. */
export interface ArrayDatasetInputs {
  readonly image?: HostArray;
  readonly text?: HostArray;
  readonly audio?: HostArray;
}

/** A dataset held in memory as one array per modality (e.g. the user's files, decoded in the browser). */
export class ArrayDataset implements LocalDataset {
  readonly modalities: Modality[];
  readonly numExamples: number;

  /** Checks that every array holds one row per label; throws `CLIENT_DATASET` otherwise. */
  constructor(
    readonly labels: Int32Array,
    private readonly inputs: ArrayDatasetInputs,
  ) {
    this.numExamples = labels.length;
    this.modalities = MODALITIES.filter((k) => inputs[k] !== undefined);
    if (this.modalities.length === 0) throw new ClientError('CLIENT_DATASET', 'ArrayDataset: at least one modality is required');
    for (const m of this.modalities) {
      const a = inputs[m]!;
      const rowSize = a.shape.slice(1).reduce((p, d) => p * d, 1);
      if (a.shape[0] !== labels.length || a.values.length !== labels.length * rowSize || a.shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new ClientError('CLIENT_DATASET', `ArrayDataset: ${m} has shape [${a.shape.join(',')}] (${a.values.length} values) for ${labels.length} labels`);
      }
    }
    for (let i = 0; i < labels.length; i++) {
      if (labels[i]! < 0) throw new ClientError('CLIENT_DATASET', `ArrayDataset: label ${labels[i]} at ${i} is negative`);
    }
  }

  /** Copies the rows at `indices`; throws `CLIENT_DATASET` for an index out of range. */
  read(indices: readonly number[]): Promise<HostBatch> {
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.numExamples) {
        return Promise.reject(new ClientError('CLIENT_DATASET', `ArrayDataset.read: index ${i} is outside [0, ${this.numExamples})`));
      }
    }
    const n = indices.length;
    const batch: { size: number; labels: Int32Array; image?: HostArray; text?: HostArray; audio?: HostArray } = {
      size: n,
      labels: Int32Array.from(indices, (i) => this.labels[i]!),
    };
    for (const m of this.modalities) {
      const a = this.inputs[m]!;
      const rowSize = a.shape.slice(1).reduce((p, d) => p * d, 1);
      const values = a.values instanceof Int32Array ? new Int32Array(n * rowSize) : new Float32Array(n * rowSize);
      indices.forEach((row, j) => values.set(a.values.subarray(row * rowSize, (row + 1) * rowSize), j * rowSize));
      batch[m] = { values, shape: [n, ...a.shape.slice(1)] };
    }
    return Promise.resolve(batch);
  }
}
