/**
 * K headless clients of one task, each with its own partition of a built-in dataset's training
 * split: the split's labels are partitioned with packages/datasets (Dirichlet label skew or IID,
 * modality probabilities or kinds, all from one seed, so a child process recomputes exactly its own
 * share), then only that client's records are read.
 */
import { createRng, shuffled } from '@chorus/fl-core';
import type { ModalityKindShare } from '@chorus/fl-core';
import { BUILTIN_MODALITIES, BUILTIN_NAMES, clientCaptionProfile, openBuiltin, partitionDataset, readManifest } from '@chorus/datasets';
import type { BuiltinName, CaptionProfile, ClientShard, PartitionScheme } from '@chorus/datasets';
import { fileSource, sourcesFromDirectory } from '@chorus/datasets/node';
import type { SourceFile } from '@chorus/datasets';
import type { TaskSpec } from '@chorus/protocol';
import { join } from 'node:path';
import { loadOwnTaskData, splitByModality } from '../taskModel.js';
import type { OwnTaskData, TaskModelFactory } from '../taskModel.js';
import type { Modality } from '@chorus/models';
import { assignBehaviours } from '../adversarial.js';
import type { AdversarialBehaviour, AdversarialSpec } from '../adversarial.js';
import { datasetFromSamples } from '../builtinData.js';
import type { BuiltinSample } from '../builtinData.js';
import type { LocalDataset } from '../dataset.js';
import { ClientError } from '../errors.js';
import type { ModelFactory } from '../models.js';
import { ChorusClient } from '../runtime.js';
import type { ChorusClientOptions } from '../runtime.js';
import { MemoryIdentityStorage } from '../storage.js';
import { createFedAfdHeadlessClients } from './fedafdClients.js';
import type { FedAfdHeadlessOptions } from './fedafdClients.js';
import type { IdentityStorage } from '../storage.js';

/** How the training split is dealt to clients. */
export interface PartitionOptions {
  readonly dataset: BuiltinName;
  readonly numClients: number;
  /** 'dirichlet' (default) or 'iid'. */
  readonly scheme?: Extract<PartitionScheme, 'dirichlet' | 'iid'>;
  /** Dirichlet concentration α (default 0.5). */
  readonly alpha?: number;
  /** Modalities clients may use (default: every modality of the dataset). */
  readonly modalities?: readonly Modality[];
  readonly modalityProbabilities?: Readonly<Partial<Record<Modality, number>>>;
  readonly modalityKinds?: readonly ModalityKindShare[];
  /** Keep at most this many examples per client (a seeded subset; default all). */
  readonly maxExamplesPerClient?: number;
  readonly seed: number;
  /** The datasets package's data folder; default its own. */
  readonly dataDir?: string;
  /** A custom task's clients: client i reads its own files from `<ownData>/<i>/<modality>/…` (see {@link loadOwnFolder}). */
  readonly ownData?: string;
}

/** One client's share after capping and modality filtering. */
export interface HeadlessShard {
  readonly client: number;
  readonly indices: readonly number[];
  readonly modalities: readonly Modality[];
  /** `fashion-mm`: the client's caption kinds, misleading rate and speech SNR (from the seed and the client's index). */
  readonly profile?: CaptionProfile;
}

/** Partitions the training split; pure function of the options (reads labels only). */
export async function partitionBuiltin(options: PartitionOptions): Promise<HeadlessShard[]> {
  if (!(BUILTIN_NAMES as readonly string[]).includes(options.dataset))
    throw new ClientError('CLIENT_BAD_CONFIG', `unknown dataset '${options.dataset}' (known: ${BUILTIN_NAMES.join(', ')})`);
  const available = BUILTIN_MODALITIES[options.dataset];
  const allowed = options.modalities ?? available;
  const missing = allowed.filter((m) => !available.includes(m));
  if (missing.length > 0) throw new ClientError('CLIENT_BAD_CONFIG', `${options.dataset} has no ${missing.join(', ')}`);
  const source = fileSource(options.dataDir);
  const split = await openBuiltin(source, await readManifest(source), options.dataset, 'train');
  const shards: ClientShard[] = partitionDataset(
    { labels: split.labels, modalities: allowed },
    {
      numClients: options.numClients,
      scheme: options.scheme ?? 'dirichlet',
      ...(options.alpha === undefined ? {} : { alpha: options.alpha }),
      minSamplesPerClient: 1,
      ...(options.modalityProbabilities ? { modalityProbabilities: options.modalityProbabilities } : {}),
      ...(options.modalityKinds ? { modalityKinds: options.modalityKinds } : {}),
      seed: options.seed,
    },
  );
  const cap = options.maxExamplesPerClient;
  return shards.map((s) => {
    const indices =
      cap !== undefined && s.indices.length > cap
        ? shuffled(createRng(options.seed + 1 + s.client), s.indices)
            .slice(0, cap)
            .sort((a, b) => a - b)
        : s.indices;
    const modalities = s.modalities.filter((m) => allowed.includes(m));
    return options.dataset === 'fashion-mm'
      ? { client: s.client, indices, modalities, profile: clientCaptionProfile(options.seed, s.client) }
      : { client: s.client, indices, modalities };
  });
}

/** Reads one shard's records (with its caption profile, for `fashion-mm`) and preprocesses them into a local dataset. */
export async function loadShard(dataset: BuiltinName, shard: HeadlessShard, dataDir?: string): Promise<LocalDataset> {
  const source = fileSource(dataDir);
  const split = await openBuiltin(source, await readManifest(source), dataset, 'train', shard.profile ? { profile: shard.profile } : {});
  const samples = (await split.read(shard.indices)) as BuiltinSample[];
  return datasetFromSamples(samples, shard.modalities);
}

/** Options of {@link createHeadlessClients}. */
export interface HeadlessClientsOptions extends PartitionOptions {
  readonly url: string;
  readonly taskId: string;
  readonly token?: string;
  readonly models: ModelFactory;
  readonly backend: string;
  /** Behaviours by fraction of clients (assigned from `seed`). */
  readonly adversarial?: readonly AdversarialSpec[];
  /** Identity storage of client i (default: in memory). */
  readonly storage?: (client: number) => IdentityStorage;
  /** Build only these clients (a child process builds its one); default all. */
  readonly only?: readonly number[];
  /** Passed to every client. */
  readonly client?: Partial<Pick<ChorusClientOptions, 'evalExamples' | 'reconnect' | 'reconnectAttempts' | 'ackTimeoutMs'>>;
  /**
   * FedAFD clients (representation tasks): the kinds' mix, and optionally their models' spec fields
   * and pretrained-weights folder. Each client then gets a kind and its data from node/fedafd.ts
   * instead of the modality options above, and runs representation rounds (fedafdClients.ts).
   */
  readonly fedafd?: FedAfdHeadlessOptions;
}

/**
 * Headless client `i` of `options` over `dataset`: the connection, identity storage, models, backend
 * and seed every kind shares; `extra` adds what its rounds need (a behaviour, a representation runner).
 */
export function headlessChorusClient(
  options: HeadlessClientsOptions,
  i: number,
  dataset: LocalDataset,
  extra: Partial<ChorusClientOptions> = {},
): ChorusClient {
  return new ChorusClient({
    url: options.url,
    taskId: options.taskId,
    ...(options.token === undefined ? {} : { token: options.token }),
    storage: options.storage?.(i) ?? new MemoryIdentityStorage(),
    dataset,
    models: options.models,
    backend: options.backend,
    seed: options.seed * 1000 + i,
    ...extra,
    ...options.client,
  });
}

/** A built client and what it was given. */
export interface HeadlessClient {
  readonly index: number;
  readonly client: ChorusClient;
  readonly shard: HeadlessShard;
  readonly behaviour: AdversarialBehaviour | null;
}

/** Partitions the data and builds the clients (not started). */
export async function createHeadlessClients(options: HeadlessClientsOptions): Promise<HeadlessClient[]> {
  if (options.fedafd) return createFedAfdHeadlessClients(options, options.fedafd);
  if (options.ownData !== undefined) return createOwnDataClients(options, options.ownData);
  const shards = await partitionBuiltin(options);
  const behaviours = assignBehaviours(options.numClients, options.adversarial ?? [], options.seed + 7);
  const wanted = options.only ?? shards.map((s) => s.client);
  const out: HeadlessClient[] = [];
  for (const i of wanted) {
    const shard = shards[i];
    if (!shard) throw new ClientError('CLIENT_BAD_CONFIG', `client ${i} is outside [0, ${options.numClients})`);
    const dataset = await loadShard(options.dataset, shard, options.dataDir);
    const behaviour = behaviours[i] ?? null;
    const client = headlessChorusClient(options, i, dataset, { behaviour });
    out.push({ index: i, client, shard, behaviour });
  }
  return out;
}

/**
 * A custom task's client from its own folder: the task's spec decides the classes and inputs; the
 * folder holds one modality's files under `<modality>/` (the first of the task's modalities found).
 * Throws `CLIENT_DATASET` naming the folder when it holds none the task takes or nothing fits.
 */
export async function loadOwnFolder(dir: string, models: TaskModelFactory, spec: TaskSpec): Promise<OwnTaskData> {
  let files: SourceFile[];
  try {
    files = await sourcesFromDirectory(dir);
  } catch (err) {
    throw new ClientError('CLIENT_DATASET', `${dir}: ${(err as Error).message}`);
  }
  const byModality = splitByModality(files);
  const modality = spec.modalities.find((m) => (byModality[m]?.length ?? 0) > 0);
  if (!modality) throw new ClientError('CLIENT_DATASET', `${dir} holds no ${spec.modalities.join(' / ')} folder of files for task ${spec.taskId}`);
  return loadOwnTaskData(spec, modality, byModality[modality]!, modality === 'text' ? await models.vocabulary() : null);
}

async function createOwnDataClients(options: HeadlessClientsOptions, root: string): Promise<HeadlessClient[]> {
  const models = options.models as Partial<TaskModelFactory>;
  if (typeof models.vocabulary !== 'function' || models.spec === undefined)
    throw new ClientError('CLIENT_BAD_CONFIG', 'own data needs the model factory of a custom task');
  const factory = models as TaskModelFactory;
  const spec = factory.spec;
  const behaviours = assignBehaviours(options.numClients, options.adversarial ?? [], options.seed + 7);
  const wanted = options.only ?? Array.from({ length: options.numClients }, (_, i) => i);
  const out: HeadlessClient[] = [];
  for (const i of wanted) {
    const own = await loadOwnFolder(join(root, String(i)), factory, spec);
    const behaviour = behaviours[i] ?? null;
    const client = headlessChorusClient(options, i, own.dataset, { behaviour });
    out.push({ index: i, client, shard: { client: i, indices: [], modalities: [own.modality] }, behaviour });
  }
  return out;
}
