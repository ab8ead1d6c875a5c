/**
 * Splits a dataset split into K clients with fl-core's partitioners (IID, Dirichlet label skew —
 * Hsu et al. 2019, arXiv:1909.06335 —, sort-and-shard — McMahan et al. 2017, arXiv:1602.05629 —,
 * quantity skew) and gives each client a set of modalities (FedMM-X's missing-modality clients).
 * Deterministic from the seed.
 */

import {
  assignModalitiesByFractions,
  assignModalitiesIndependently,
  createRng,
  dirichletLabelPartition,
  iidPartition,
  MODALITIES,
  quantitySkewPartition,
  shardPartition,
  type ModalityKindShare,
  type Modality,
} from '@chorus/fl-core';

import { DatasetError } from './errors.js';

/** How samples are dealt to clients. */
export type PartitionScheme = 'iid' | 'dirichlet' | 'shards' | 'quantity';

/** Options of {@link partitionDataset}. */
export interface PartitionDatasetOptions {
  readonly numClients: number;
  readonly scheme: PartitionScheme;
  /** 'dirichlet': label concentration (default 0.5); 'quantity': size concentration (default 0.5). */
  readonly alpha?: number;
  /** 'shards': shards per client (default 2). */
  readonly shardsPerClient?: number;
  /** 'dirichlet' and 'quantity': every client gets at least this many samples (defaults 0 and 1). */
  readonly minSamplesPerClient?: number;
  /** Each client holds each modality with this probability (conditioned on holding one). */
  readonly modalityProbabilities?: Readonly<Partial<Record<Modality, number>>>;
  /** Or: explicit shares of client kinds, e.g. 30 % image-only, 30 % text-only, 40 % both. */
  readonly modalityKinds?: readonly ModalityKindShare[];
  readonly seed: number;
}

/** What {@link partitionDataset} needs of a dataset (a `BuiltinDataset` or a user's loaded data). */
export interface Partitionable {
  readonly labels: ArrayLike<number>;
  readonly modalities: readonly Modality[];
}

/** One client's share: positions in the dataset split (ascending) and the modalities it holds. */
export interface ClientShard {
  readonly client: number;
  readonly indices: readonly number[];
  readonly modalities: readonly Modality[];
}

/** Deals the examples of `dataset` to `numClients` clients; every example goes to exactly one client. */
export function partitionDataset(dataset: Partitionable, options: PartitionDatasetOptions): ClientShard[] {
  const { numClients, scheme, seed } = options;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `partitionDataset: seed must be a non-negative integer, got ${seed}`);
  }
  if (options.modalityProbabilities !== undefined && options.modalityKinds !== undefined) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', 'partitionDataset: give modalityProbabilities or modalityKinds, not both');
  }
  const offered = [...(options.modalityKinds ?? []).flatMap((k) => k.modalities), ...Object.keys(options.modalityProbabilities ?? {})];
  const missing = offered.filter((m) => !(dataset.modalities as readonly string[]).includes(m));
  if (missing.length > 0) {
    throw new DatasetError(
      'DATASET_BAD_ARGUMENT',
      `partitionDataset: the dataset has no ${[...new Set(missing)].join(', ')} (it has ${dataset.modalities.join(', ')})`,
    );
  }

  // Separate streams, so changing the modality options leaves the sample partition unchanged.
  const rng = createRng(seed);
  const modalityRng = createRng((seed ^ 0x9e3779b9) >>> 0);
  const { labels } = dataset;
  let parts: number[][];
  switch (scheme) {
    case 'iid':
      parts = iidPartition(rng, { numSamples: labels.length, numClients });
      break;
    case 'dirichlet':
      parts = dirichletLabelPartition(rng, labels, {
        numClients,
        alpha: options.alpha ?? 0.5,
        minSamplesPerClient: options.minSamplesPerClient ?? 0,
      });
      break;
    case 'shards':
      parts = shardPartition(rng, labels, { numClients, shardsPerClient: options.shardsPerClient ?? 2 });
      break;
    case 'quantity':
      parts = quantitySkewPartition(rng, {
        numSamples: labels.length,
        numClients,
        distribution: { kind: 'dirichlet', alpha: options.alpha ?? 0.5 },
        minSamplesPerClient: options.minSamplesPerClient ?? 1,
      });
      break;
    default:
      throw new DatasetError('DATASET_BAD_ARGUMENT', `partitionDataset: unknown scheme ${JSON.stringify(scheme as string)}`);
  }

  let modalities: Modality[][];
  if (options.modalityKinds !== undefined) modalities = assignModalitiesByFractions(modalityRng, numClients, options.modalityKinds);
  else if (options.modalityProbabilities !== undefined) {
    modalities = assignModalitiesIndependently(modalityRng, numClients, options.modalityProbabilities);
  } else modalities = parts.map(() => MODALITIES.filter((m) => dataset.modalities.includes(m)));
  return parts.map((indices, client) => ({ client, indices, modalities: modalities[client]! }));
}
