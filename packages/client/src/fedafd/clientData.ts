/**
 * Client kinds and their data for FedAFD ("FedAFD: Multimodal Federated Learning via Adversarial
 * Fusion and Distillation", §4.1): every client of a task is given a kind and an architecture from
 * the task's list of `{kind, arch, share}` entries, and its own part of a built-in dataset's
 * training split — classifiers the one modality of their kind with labels, retrieval clients the
 * pairs of theirs (labels kept for evaluation only). The split is first dealt IID into a pool per
 * group (classifiers, retrieval clients) in proportion to the group's clients; each pool is then
 * partitioned as in the paper's experiments: IID, or non-IID with Dirichlet(α = 0.1) label skew
 * for classifiers and a sort-and-shard split for retrieval clients (fl-core's partitioners).
 * The public split (paired, every modality) is known to everyone; {@link openFedAfdPublicData}
 * reads any batch of it with the preprocessing of {@link datasetFromSamples}.
 *
 * Everything here is a function of its inputs and a seed: no clock, no `Math.random`.
 */
import { createRng, dirichletLabelPartition, iidPartition, shardPartition, shuffled } from '@chorus/fl-core';
import type { ClientPartition, Rng } from '@chorus/fl-core';
import { BUILTIN_MODALITIES, openBuiltin, readManifest } from '@chorus/datasets';
import type { BuiltinName, ByteSource, CaptionProfile } from '@chorus/datasets';
import { DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL, FEDAFD_CLIENT_ARCHS, FEDAFD_CLIENT_KINDS, FEDAFD_CLIENT_MODALITIES, frameCount } from '@chorus/models';
import type { FedAfdClientKind, Modality } from '@chorus/models';
import { datasetFromSamples } from '../builtinData.js';
import type { BuiltinSample } from '../builtinData.js';
import type { HostBatch, LocalDataset } from '../dataset.js';
import { ClientError } from '../errors.js';

/** Dirichlet concentration of FedAFD's non-IID classifier split. */
export const FEDAFD_DIRICHLET_ALPHA = 0.1;

/** Shards per retrieval client in the non-IID split (McMahan et al.'s 2). */
export const FEDAFD_SHARDS_PER_CLIENT = 2;

/** Input shapes of the FedAFD models on built-in data (what `datasetFromSamples` produces); the text embedder comes from the data's word vectors. */
export const FEDAFD_BUILTIN_INPUTS: { readonly imageShape: [number, number, number]; readonly audioShape: [number, number] } = {
  imageShape: [28, 28, 1],
  audioShape: [frameCount(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL.frameLength, DIGITS_LOG_MEL.hopLength), DIGITS_LOG_MEL.numMels],
};

/** One entry of a task's client mix: a kind, its architecture and the share of clients that get it. */
export interface FedAfdKindShare {
  readonly kind: FedAfdClientKind;
  /** One of `FEDAFD_CLIENT_ARCHS[kind]`. */
  readonly arch: string;
  /** Share of clients in [0, 1]; the shares of a list sum to 1. */
  readonly share: number;
}

/** What one client is: its index, kind, architecture and the modalities its data holds. */
export interface FedAfdAssignment {
  readonly client: number;
  readonly kind: FedAfdClientKind;
  readonly arch: string;
  readonly modalities: readonly Modality[];
}

/** Whether a kind classifies (labels train) or retrieves (pairs train, labels only evaluate). */
export function isClassifierKind(kind: FedAfdClientKind): boolean {
  return kind === 'image-classifier' || kind === 'text-classifier';
}

function badKinds(path: string, message: string): never {
  throw new ClientError('CLIENT_BAD_CONFIG', `FedAFD client kinds: ${path}: ${message}`);
}

/**
 * Checks a task's list of client kinds against the dataset's modalities; throws `CLIENT_BAD_CONFIG`
 * naming the entry (`kinds[1].arch`) for an unknown kind or architecture, a share outside [0, 1],
 * shares not summing to 1, or a kind whose modalities the dataset lacks.
 */
export function checkFedAfdKinds(kinds: unknown, datasetModalities: readonly Modality[]): FedAfdKindShare[] {
  if (!Array.isArray(kinds) || kinds.length === 0) badKinds('kinds', 'expected a non-empty list of {kind, arch, share}');
  let sum = 0;
  const out = kinds.map((entry: unknown, i): FedAfdKindShare => {
    if (typeof entry !== 'object' || entry === null) badKinds(`kinds[${i}]`, `expected {kind, arch, share}, got ${JSON.stringify(entry)}`);
    const e = entry as Record<string, unknown>;
    if (!(FEDAFD_CLIENT_KINDS as readonly unknown[]).includes(e.kind))
      badKinds(`kinds[${i}].kind`, `must be one of ${FEDAFD_CLIENT_KINDS.join(', ')}, got ${JSON.stringify(e.kind)}`);
    const kind = e.kind as FedAfdClientKind;
    if (!FEDAFD_CLIENT_ARCHS[kind].includes(e.arch as string))
      badKinds(`kinds[${i}].arch`, `a ${kind} has arch ${FEDAFD_CLIENT_ARCHS[kind].join(' or ')}, got ${JSON.stringify(e.arch)}`);
    const share = e.share;
    if (typeof share !== 'number' || !(share >= 0 && share <= 1)) badKinds(`kinds[${i}].share`, `must be a number in [0, 1], got ${JSON.stringify(share)}`);
    const missing = FEDAFD_CLIENT_MODALITIES[kind].filter((m) => !datasetModalities.includes(m));
    if (missing.length > 0)
      badKinds(`kinds[${i}].kind`, `a ${kind} needs ${missing.join(', ')}, which the dataset lacks (it has ${datasetModalities.join(', ')})`);
    sum += share;
    return { kind, arch: e.arch as string, share };
  });
  if (Math.abs(sum - 1) > 1e-6) badKinds('kinds', `shares must sum to 1, got ${sum}`);
  return out;
}

/** Client counts per entry: numClients · share rounded by largest remainder (ties to the earlier entry), summing to numClients. */
function countsOf(numClients: number, shares: readonly number[]): number[] {
  const exact = shares.map((s) => s * numClients);
  const counts = exact.map((x) => Math.floor(x + 1e-9));
  const order = exact.map((_, j) => j).sort((a, b) => exact[b]! - counts[b]! - (exact[a]! - counts[a]!) || a - b);
  for (let i = 0; counts.reduce((p, c) => p + c, 0) < numClients; i++) counts[order[i % order.length]!]!++;
  return counts;
}

/**
 * Gives each of `numClients` clients a kind and architecture: `numClients · share` clients per entry
 * (largest remainder), in an order shuffled from `seed`. Checks the list with {@link checkFedAfdKinds}.
 */
export function assignFedAfdKinds(options: {
  readonly numClients: number;
  readonly kinds: readonly FedAfdKindShare[];
  readonly datasetModalities: readonly Modality[];
  readonly seed: number;
}): FedAfdAssignment[] {
  const { numClients } = options;
  if (!Number.isInteger(numClients) || numClients < 1) throw new ClientError('CLIENT_BAD_CONFIG', `numClients must be an integer ≥ 1, got ${numClients}`);
  const kinds = checkFedAfdKinds(options.kinds, options.datasetModalities);
  const entries = countsOf(
    numClients,
    kinds.map((k) => k.share),
  ).flatMap((count, j) => Array.from({ length: count }, () => kinds[j]!));
  return shuffled(createRng(options.seed), entries).map((k, client) => ({ client, kind: k.kind, arch: k.arch, modalities: FEDAFD_CLIENT_MODALITIES[k.kind] }));
}

/** How the training split is dealt among FedAFD clients. */
export interface FedAfdPartitionOptions {
  /** 'non-iid' (default): Dirichlet label skew for classifiers, shards for retrieval clients; or 'iid'. */
  readonly scheme?: 'iid' | 'non-iid';
  /** Dirichlet α of the classifiers' split; default {@link FEDAFD_DIRICHLET_ALPHA}. */
  readonly alpha?: number;
  /** Shards per retrieval client; default {@link FEDAFD_SHARDS_PER_CLIENT}. */
  readonly shardsPerClient?: number;
  /** Keep at most this many examples per client (a seeded subset; default all). */
  readonly maxExamplesPerClient?: number;
  readonly seed: number;
}

/** Runs an fl-core partitioner, turning its configuration errors into `CLIENT_BAD_CONFIG`. */
function partitioned(what: string, run: () => ClientPartition): ClientPartition {
  try {
    return run();
  } catch (err) {
    throw new ClientError('CLIENT_BAD_CONFIG', `FedAFD ${what} split: ${(err as Error).message}`);
  }
}

/**
 * Sample indices (positions in the split whose `labels` are given) of each assigned client, in
 * client order, ascending and disjoint (see the module comment). Throws `CLIENT_BAD_CONFIG` for a
 * bad option or a split that leaves a client without data.
 */
export function partitionFedAfd(labels: ArrayLike<number>, assignments: readonly FedAfdAssignment[], options: FedAfdPartitionOptions): number[][] {
  const scheme = options.scheme ?? 'non-iid';
  if (scheme !== 'iid' && scheme !== 'non-iid') throw new ClientError('CLIENT_BAD_CONFIG', `scheme must be 'iid' or 'non-iid', got ${JSON.stringify(scheme)}`);
  const cap = options.maxExamplesPerClient;
  if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1))
    throw new ClientError('CLIENT_BAD_CONFIG', `maxExamplesPerClient must be an integer ≥ 1, got ${cap}`);
  if (assignments.length === 0) throw new ClientError('CLIENT_BAD_CONFIG', 'no clients to partition for');
  assignments.forEach((a, i) => {
    if (a.client !== i) throw new ClientError('CLIENT_BAD_CONFIG', `assignments[${i}] is client ${a.client}; expected the list assignFedAfdKinds returns`);
  });
  const rng: Rng = createRng(options.seed);
  const groups = [assignments.filter((a) => isClassifierKind(a.kind)), assignments.filter((a) => !isClassifierKind(a.kind))];
  // One IID deal over every client; a group's pool is the union of its clients' parts.
  const deal = partitioned('pool', () => iidPartition(rng, { numSamples: labels.length, numClients: assignments.length }));
  const out: number[][] = assignments.map(() => []);
  groups.forEach((members, g) => {
    if (members.length === 0) return;
    const pool = members.flatMap((a) => deal[a.client]!).sort((x, y) => x - y);
    const poolLabels = pool.map((i) => labels[i]!);
    const parts =
      scheme === 'iid'
        ? partitioned('IID', () => iidPartition(rng, { numSamples: pool.length, numClients: members.length }))
        : g === 0
          ? partitioned('classifier', () =>
              dirichletLabelPartition(rng, poolLabels, { numClients: members.length, alpha: options.alpha ?? FEDAFD_DIRICHLET_ALPHA, minSamplesPerClient: 1 }),
            )
          : partitioned('retrieval', () =>
              shardPartition(rng, poolLabels, { numClients: members.length, shardsPerClient: options.shardsPerClient ?? FEDAFD_SHARDS_PER_CLIENT }),
            );
    members.forEach((a, j) => {
      out[a.client] = parts[j]!.map((p) => pool[p]!);
    });
  });
  out.forEach((indices, client) => {
    if (indices.length === 0) throw new ClientError('CLIENT_BAD_CONFIG', `client ${client} gets no training examples; use fewer clients or more data`);
  });
  if (cap === undefined) return out;
  return out.map((indices, client) =>
    indices.length <= cap
      ? indices
      : shuffled(createRng(options.seed + 1 + client), indices)
          .slice(0, cap)
          .sort((a, b) => a - b),
  );
}

/** A split of a built-in dataset, as much of it as the loaders here need (`BuiltinDataset` fits). */
export interface SampleReader {
  read(indices: readonly number[]): Promise<readonly BuiltinSample[]>;
}

/** A client's local data: the modalities of its kind (with every example's label) of the samples at `indices` of `split`. */
export async function loadFedAfdLocalData(split: SampleReader, assignment: FedAfdAssignment, indices: readonly number[]): Promise<LocalDataset> {
  if (indices.length === 0) throw new ClientError('CLIENT_DATASET', `client ${assignment.client} has no examples`);
  return datasetFromSamples(await split.read(indices), assignment.modalities);
}

/** The public split, known to server and clients; reads batches of it in the models' input format. */
export interface FedAfdPublicData {
  readonly dataset: BuiltinName;
  readonly numExamples: number;
  /** Every modality of the dataset (the public split is paired). */
  readonly modalities: readonly Modality[];
  /**
   * The examples at `indices` (positions in the public split, in that order) as host arrays, with
   * the preprocessing of {@link datasetFromSamples}; throws `CLIENT_DATASET` for an empty list or
   * an index out of range, before reading anything.
   */
  batch(indices: readonly number[], modalities?: readonly Modality[]): Promise<HostBatch>;
}

/** The public split of `dataset` over `source` (the browser's fetch-backed source or Node's files). */
export async function openFedAfdPublicData(
  source: ByteSource,
  dataset: BuiltinName,
  options: { readonly profile?: CaptionProfile } = {},
): Promise<FedAfdPublicData> {
  const split = await openBuiltin(source, await readManifest(source), dataset, 'public', options.profile ? { profile: options.profile } : {});
  return publicDataOver(dataset, split.numExamples, split);
}

/** {@link FedAfdPublicData} over any reader of a split of `numExamples` samples of `dataset`. */
export function publicDataOver(dataset: BuiltinName, numExamples: number, reader: SampleReader): FedAfdPublicData {
  const all = BUILTIN_MODALITIES[dataset];
  return {
    dataset,
    numExamples,
    modalities: all,
    async batch(indices, modalities = all) {
      if (indices.length === 0) throw new ClientError('CLIENT_DATASET', 'public batch: no sample indices');
      for (const i of indices)
        if (!Number.isInteger(i) || i < 0 || i >= numExamples)
          throw new ClientError('CLIENT_DATASET', `public batch: index ${i} is outside [0, ${numExamples}) of the ${dataset} public split`);
      const lacking = modalities.filter((m) => !all.includes(m));
      if (lacking.length > 0) throw new ClientError('CLIENT_DATASET', `public batch: ${dataset} has no ${lacking.join(', ')}`);
      const data = await datasetFromSamples(await reader.read(indices), modalities);
      return data.read(indices.map((_, k) => k));
    },
  };
}
