/**
 * FedAFD's client kinds and data over the built-in datasets on disk: the seeded kind assignment and
 * partition of the training split (fedafd/clientData.ts) with the split's labels read from files,
 * one client's records loaded as its local data, and the public split opened for public batches.
 * A child process recomputes exactly its own share from the same options.
 */
import { BUILTIN_MODALITIES, BUILTIN_NAMES, clientCaptionProfile, openBuiltin, readManifest } from '@chorus/datasets';
import type { BuiltinName, CaptionProfile } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import type { LocalDataset } from '../dataset.js';
import { ClientError } from '../errors.js';
import { assignFedAfdKinds, loadFedAfdLocalData, openFedAfdPublicData, partitionFedAfd } from '../fedafd/clientData.js';
import type { FedAfdAssignment, FedAfdKindShare, FedAfdPartitionOptions, FedAfdPublicData } from '../fedafd/clientData.js';

/** How a built-in training split is dealt to FedAFD clients. */
export interface FedAfdBuiltinOptions extends FedAfdPartitionOptions {
  readonly dataset: BuiltinName;
  readonly numClients: number;
  /** The client mix: kinds, architectures and shares (summing to 1). */
  readonly kinds: readonly FedAfdKindShare[];
  /** The datasets package's data folder; default its own. */
  readonly dataDir?: string;
}

/** One FedAFD client's share of the training split. */
export interface FedAfdShard extends FedAfdAssignment {
  /** Positions in the training split, ascending. */
  readonly indices: readonly number[];
  /** `fashion-mm`: the client's caption kinds, misleading rate and speech SNR (from the seed and the client's index). */
  readonly profile?: CaptionProfile;
}

function checkDataset(dataset: string): asserts dataset is BuiltinName {
  if (!(BUILTIN_NAMES as readonly string[]).includes(dataset))
    throw new ClientError('CLIENT_BAD_CONFIG', `unknown dataset '${dataset}' (known: ${BUILTIN_NAMES.join(', ')})`);
}

/** Assigns kinds and partitions the training split; a pure function of the options (reads labels only). */
export async function partitionFedAfdBuiltin(options: FedAfdBuiltinOptions): Promise<FedAfdShard[]> {
  checkDataset(options.dataset);
  const assignments = assignFedAfdKinds({
    numClients: options.numClients,
    kinds: options.kinds,
    datasetModalities: BUILTIN_MODALITIES[options.dataset],
    seed: options.seed,
  });
  const source = fileSource(options.dataDir);
  const split = await openBuiltin(source, await readManifest(source), options.dataset, 'train');
  const parts = partitionFedAfd(split.labels, assignments, options);
  return assignments.map((a, i) =>
    options.dataset === 'fashion-mm' ? { ...a, indices: parts[i]!, profile: clientCaptionProfile(options.seed, a.client) } : { ...a, indices: parts[i]! },
  );
}

/** Reads one shard's records (with its caption profile, for `fashion-mm`) as the local data of its kind. */
export async function loadFedAfdShard(dataset: BuiltinName, shard: FedAfdShard, dataDir?: string): Promise<LocalDataset> {
  checkDataset(dataset);
  const source = fileSource(dataDir);
  const split = await openBuiltin(source, await readManifest(source), dataset, 'train', shard.profile ? { profile: shard.profile } : {});
  return loadFedAfdLocalData(split, shard, shard.indices);
}

/** The public split of a built-in dataset on disk. */
export async function openFedAfdPublicDataFromFiles(dataset: BuiltinName, dataDir?: string): Promise<FedAfdPublicData> {
  checkDataset(dataset);
  return openFedAfdPublicData(fileSource(dataDir), dataset);
}
