/**
 * FedAFD's client kinds and data over the built-in datasets on disk: the seeded kind assignment and
 * partition of the training split (fedafd/clientData.ts) with the split's labels read from files,
 * one client's records loaded as its local data, the public split opened for public batches, and
 * the inputs every client model needs (input shapes, the word vectors, the pretrained image base).
 * A child process recomputes exactly its own share from the same options.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BUILTIN_MODALITIES, BUILTIN_NAMES, clientCaptionProfile, openBuiltin, readManifest } from '@chorus/datasets';
import type { BuiltinName, CaptionProfile, Split } from '@chorus/datasets';
import { fileSource, loadBuiltinEmbeddings } from '@chorus/datasets/node';
import { TextEmbedder } from '@chorus/models';
import type { FedAfdClientOptions, GlobalEncoderSizes, Modality } from '@chorus/models';
import { DIGITS_WEIGHTS_DIR, fileSystemHandler } from '@chorus/models/node';
import { datasetFromSamples } from '../builtinData.js';
import type { LocalDataset } from '../dataset.js';
import { ClientError } from '../errors.js';
import { FEDAFD_BUILTIN_INPUTS, assignFedAfdKinds, loadFedAfdLocalData, openFedAfdPublicData, partitionFedAfd } from '../fedafd/clientData.js';
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

/** A held-out part of a split that FedAFD clients are scored on: `count` examples from position `start`. */
export interface FedAfdEvaluationRange {
  readonly split: Split;
  readonly start: number;
  readonly count: number;
}

/**
 * The examples of `range` (captions as the split holds them, no client profile) for each modality
 * set asked for, keyed by `modalities.join('+')`. Throws `CLIENT_BAD_CONFIG` for a range outside
 * the split or a split the dataset lacks.
 */
export async function loadFedAfdEvaluationData(
  dataset: BuiltinName,
  range: FedAfdEvaluationRange,
  modalitySets: readonly (readonly Modality[])[],
  dataDir?: string,
): Promise<Map<string, LocalDataset>> {
  checkDataset(dataset);
  const source = fileSource(dataDir);
  const manifest = await readManifest(source);
  const size = manifest.datasets[dataset].splits[range.split]?.numExamples;
  if (size === undefined) throw new ClientError('CLIENT_BAD_CONFIG', `--fedafd-eval: ${dataset} has no '${range.split}' split`);
  if (!(Number.isInteger(range.start) && Number.isInteger(range.count) && range.start >= 0 && range.count >= 1 && range.start + range.count <= size))
    throw new ClientError(
      'CLIENT_BAD_CONFIG',
      `--fedafd-eval: [${range.start}, ${range.start + range.count}) is not a range of the ${size} ${range.split} examples`,
    );
  const split = await openBuiltin(source, manifest, dataset, range.split);
  const samples = await split.read(Array.from({ length: range.count }, (_, i) => range.start + i));
  const out = new Map<string, LocalDataset>();
  for (const modalities of modalitySets) {
    const key = modalities.join('+');
    if (!out.has(key)) out.set(key, await datasetFromSamples(samples, [...modalities]));
  }
  return out;
}

/** The public split of a built-in dataset on disk. */
export async function openFedAfdPublicDataFromFiles(dataset: BuiltinName, dataDir?: string): Promise<FedAfdPublicData> {
  checkDataset(dataset);
  return openFedAfdPublicData(fileSource(dataDir), dataset);
}

/** Options of {@link loadFedAfdInputs}. */
export interface FedAfdInputsOptions {
  /** The datasets package's data folder (word vectors); default its own. */
  readonly dataDir?: string;
  /** Folder of pretrained encoders, whose `image-base` the `frozen-base` archs use when present; default {@link DIGITS_WEIGHTS_DIR}. */
  readonly weightsDir?: string;
  /** Sizes of the global encoders: the task's, the same as the server's. */
  readonly global?: GlobalEncoderSizes;
}

/** The client-model options of built-in data, and the disposal of the frozen parts they hold. */
export interface FedAfdInputs {
  /** For `createFedAfdClient(spec, options)`; shared by every client of the process (none of them owns it). */
  readonly options: FedAfdClientOptions;
  dispose(): void;
}

/** Loads the word vectors and the pretrained image base (when shipped) once, for every FedAFD client of a process. */
export async function loadFedAfdInputs(options: FedAfdInputsOptions = {}): Promise<FedAfdInputs> {
  const embeddings = await loadBuiltinEmbeddings(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
  const textEmbedder = new TextEmbedder(embeddings.vectors, embeddings.dim);
  const baseDir = join(options.weightsDir ?? DIGITS_WEIGHTS_DIR, 'image-base');
  let imageBase: tf.LayersModel | undefined;
  try {
    if (existsSync(join(baseDir, 'model.json'))) imageBase = await tf.loadLayersModel(fileSystemHandler(baseDir));
  } catch (err) {
    textEmbedder.dispose();
    throw new ClientError('CLIENT_BAD_CONFIG', `the pretrained image base in ${baseDir} does not load: ${(err as Error).message}`);
  }
  return {
    options: {
      imageShape: FEDAFD_BUILTIN_INPUTS.imageShape,
      audioShape: FEDAFD_BUILTIN_INPUTS.audioShape,
      textEmbedder,
      ...(imageBase ? { imageBase } : {}),
      ...(options.global ? { global: options.global } : {}),
    },
    dispose() {
      textEmbedder.dispose();
      imageBase?.dispose();
    },
  };
}
