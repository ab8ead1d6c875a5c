/**
 * The tab's federated client: a ChorusClient over socket.io to this page's origin, trained either
 * on a small slice of the built-in digits training split read lazily over /data/ (only the chosen
 * records are fetched) or on the volunteer's own files, with the pretrained base encoders fetched
 * from /weights/ when the origin serves them and fresh encoders otherwise. Every modality the data
 * holds is offered (image, caption, speech); the runtime trains the ones the task's global model
 * has. Speech becomes log-mel features in the tab, on the backend the trial chose.
 *
 * The slice: the training split minus the examples `pnpm start`'s headless demo clients use, dealt
 * by a fixed-seed Dirichlet partition into {@link DEMO_PARTITION_CLIENTS} shards; this install's
 * seed picks the shard and a seeded subset of it, so a reload trains on the same examples and two
 * installs on different shards never share one. Raw samples never leave the tab: the runtime
 * uploads only encoded parameter deltas, or, in a representation task (FedAFD family), the tab's
 * representations of the round's public batch as an image classifier (fedafdTab.ts).
 */
import * as tf from '@tensorflow/tfjs';
import {
  ArrayDataset,
  ChorusClient,
  DIGITS_CAPTION_TOKENS,
  createDigitsModelFactory,
  datasetFromSamples,
  digitsLogMel,
  type BuiltinSample,
  type IdentityStorage,
  type LocalDataset,
} from '@chorus/client';
import {
  BUILTIN_MODALITIES,
  encodeText,
  loadEmbeddings,
  openBuiltin,
  partitionDataset,
  readManifest,
  vocabularyIndex,
  type ByteSource,
  type Embeddings,
} from '@chorus/datasets';
import { createRng, shuffled } from '@chorus/fl-core';
import { FEDAFD_CLIENT_MODALITIES, httpParts, loadDigitsBase, type Modality } from '@chorus/models';
import { browserDataSource } from './builtinData.js';
import { WebClientError } from './errors.js';
import { TAB_FEDAFD_ASSIGNMENT, TabFedAfdRunner, isRepresentationTask } from './fedafdTab.js';
import type { IdentityStore } from './identity.js';
import { captureTrainedAdapters, openLocalAdapterStore, persistLocalAdapters, type LocalAdapterRecord } from './localAdapters.js';
import type { LoadedSamples } from './ownData.js';
import type { OwnTaskData, TaskModelFactory } from '@chorus/client';

/** Shards the browsers' share of the built-in split is dealt to; this browser takes one of them. */
export const DEMO_PARTITION_CLIENTS = 16;
/** Seed of the browsers' partition: the same for every install, so different shards are disjoint. */
export const DEMO_PARTITION_SEED = 2024;
/** Examples this tab trains on (a round on 100 examples with speech takes a few seconds on WASM). */
export const DEMO_SLICE_EXAMPLES = 100;
/** Modalities of the built-in slice; the runtime trains those the task's global model has. */
export const DEMO_MODALITIES: readonly Modality[] = BUILTIN_MODALITIES.digits;
/** The built-in digits' class names in label order: own files' class folders must be named so. */
export const DEMO_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * How `pnpm start` deals the split to its headless demo clients (apps/coordinator demoClients.ts passes
 * `--clients 3 --max-examples 300` and the clients CLI's defaults: Dirichlet α 0.5, seed 1). A
 * coordinator started with another `--demo-clients` count uses other examples, and the tab's slice
 * may then share a few with them.
 */
export const HEADLESS_DEMO_PARTITION = { numClients: 3, alpha: 0.5, seed: 1, maxExamplesPerClient: 300 } as const;

/** The runtime's identity storage over the tab's IndexedDB credentials. */
export function identityStorageOf(store: IdentityStore): IdentityStorage {
  return {
    load: async (taskId) => {
      const c = await store.credentials(taskId);
      return c === null ? null : { taskId: c.taskId, clientId: c.clientId, clientSecret: c.clientSecret, issuedAt: c.issuedAt };
    },
    save: (identity) => store.saveCredentials(identity),
    clear: (taskId) => store.clearCredentials(taskId),
  };
}

/** A 31-bit FNV-1a hash, so an install id seeds the partition the same way on every visit. */
export function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** Training-split indices the headless demo clients train on, ascending: the clients CLI's partition and cap, recomputed. */
export function headlessDemoIndices(labels: ArrayLike<number>): number[] {
  const { numClients, alpha, seed, maxExamplesPerClient } = HEADLESS_DEMO_PARTITION;
  const shards = partitionDataset({ labels, modalities: DEMO_MODALITIES }, { numClients, scheme: 'dirichlet', alpha, minSamplesPerClient: 1, seed });
  const used = shards.flatMap((s) =>
    s.indices.length > maxExamplesPerClient ? shuffled(createRng(seed + 1 + s.client), s.indices).slice(0, maxExamplesPerClient) : s.indices,
  );
  return used.sort((a, b) => a - b);
}

/** Training-split indices of this install's slice: its shard of what the headless demo clients leave, capped by a seeded subset, ascending. */
export function demoSliceIndices(labels: ArrayLike<number>, seed: number, numExamples = DEMO_SLICE_EXAMPLES): number[] {
  const taken = new Set(headlessDemoIndices(labels));
  const pool: number[] = [];
  for (let i = 0; i < labels.length; i++) if (!taken.has(i)) pool.push(i);
  const poolLabels = pool.map((i) => labels[i]!);
  const shards = partitionDataset(
    { labels: poolLabels, modalities: DEMO_MODALITIES },
    { numClients: DEMO_PARTITION_CLIENTS, scheme: 'dirichlet', alpha: 1, minSamplesPerClient: 1, seed: DEMO_PARTITION_SEED },
  );
  const shard = shards[seed % DEMO_PARTITION_CLIENTS]!.indices.map((p) => pool[p]!);
  const indices = shard.length > numExamples ? shuffled(createRng(seed + 1), shard).slice(0, numExamples) : shard;
  return indices.sort((a, b) => a - b);
}

/**
 * The volunteer's own files as a local dataset of their one modality: pixels as loaded (28×28 grey
 * in [0, 1]), texts as word ids of the task's vocabulary cut to the demo's caption length, clips
 * cropped or padded to 1 s and turned into log-mel features on the active backend. Throws
 * `WEB_NO_DATA` when nothing loaded, or for text without a vocabulary.
 */
export async function datasetFromOwnData(loaded: LoadedSamples, vocabulary?: readonly string[]): Promise<LocalDataset> {
  const n = loaded.samples.length;
  if (n === 0) throw new WebClientError('WEB_NO_DATA', `no ${loaded.modality} sample loaded: there is nothing to train on`);
  const labels = Int32Array.from(loaded.samples as readonly { readonly label: number }[], (s) => s.label);
  if (loaded.modality === 'image') {
    const pixels = 28 * 28;
    const values = new Float32Array(n * pixels);
    loaded.samples.forEach((s, i) => {
      if (s.pixels.length !== pixels) throw new WebClientError('WEB_NO_DATA', `${s.path}: ${s.pixels.length} pixel values, the task's images have ${pixels}`);
      // A uint8 target would hold 0–255; the demo target is float32 in [0, 1] already.
      const scale = s.pixels instanceof Uint8Array ? 1 / 255 : 1;
      for (let j = 0; j < pixels; j++) values[i * pixels + j] = s.pixels[j]! * scale;
    });
    return new ArrayDataset(labels, { image: { values, shape: [n, 28, 28, 1] } });
  }
  if (loaded.modality === 'text') {
    if (!vocabulary) throw new WebClientError('WEB_NO_DATA', "texts need the task's vocabulary to become word ids");
    const index = vocabularyIndex(vocabulary);
    const values = new Int32Array(n * DIGITS_CAPTION_TOKENS);
    loaded.samples.forEach((s, i) => values.set(encodeText(s.text, index, DIGITS_CAPTION_TOKENS), i * DIGITS_CAPTION_TOKENS));
    return new ArrayDataset(labels, { text: { values, shape: [n, DIGITS_CAPTION_TOKENS] } });
  }
  // digitsLogMel reads 16-bit PCM, what the built-in clips hold; the loader's floats are in [-1, 1].
  const clips = loaded.samples.map((s) => Int16Array.from(s.samples, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32768)))));
  return new ArrayDataset(labels, { audio: await digitsLogMel(clips) });
}

/** Stores this tab's latest accepted local adapters (one short-lived IndexedDB connection per save). */
async function saveLocalModel(record: LocalAdapterRecord): Promise<void> {
  const store = await openLocalAdapterStore();
  try {
    await store.save(record);
  } finally {
    store.close();
  }
}

/** Where the base encoders came from: the demo's pretrained or fresh ones, or a custom task's own (checked against their SHA-256). */
export type BaseSource = 'pretrained' | 'fresh' | 'task';

/** Options of {@link createVolunteerClient}. */
export interface VolunteerClientOptions {
  readonly taskId: string;
  readonly token: string;
  readonly installId: string;
  readonly identity: IdentityStore;
  /** Page origin (socket.io and /weights/); default `location.origin`. */
  readonly origin?: string;
  readonly source?: ByteSource;
  /** Train on these own files instead of the built-in slice. */
  readonly ownData?: LoadedSamples;
  /** A custom task: its model factory (the task's own encoders) and the own files loaded under its spec. */
  readonly custom?: { readonly models: TaskModelFactory; readonly own: OwnTaskData };
}

/** A client ready to start, with what it will train on. */
export interface VolunteerClient {
  readonly client: ChorusClient;
  readonly numExamples: number;
  /** Modalities the local data holds (the runtime trains those the task has too). */
  readonly modalities: readonly Modality[];
  /** Milliseconds spent reading and preprocessing the local data (log-mel features included). */
  readonly prepareMs: number;
  /** Whether the origin served the pretrained encoders. */
  readonly base: BaseSource;
  /** What runs the task's representation rounds (FedAFD family), if it has any: the tab's client kind on the same local data (null for a custom task). */
  readonly representation: TabFedAfdRunner | null;
}

async function weightsServed(origin: string): Promise<boolean> {
  try {
    const res = await fetch(`${origin}/weights/image-base/model.json`, { method: 'HEAD' });
    return res.ok;
  } catch {
    return false;
  }
}

/** Reads this install's slice (or takes the own files) and builds the (not yet started) client on the active TF.js backend. */
export async function createVolunteerClient(options: VolunteerClientOptions): Promise<VolunteerClient> {
  if (options.custom) return createCustomTaskClient(options, options.custom);
  const origin = options.origin ?? location.origin;
  const source = options.source ?? browserDataSource();
  const started = performance.now();
  const manifest = await readManifest(source);
  const representationTask = await isRepresentationTask({ origin, taskId: options.taskId, token: options.token });
  // One fetch of the word-vector table, shared by own texts' word ids and the text encoder.
  let embeddings: Promise<Embeddings> | null = null;
  const sharedEmbeddings = (): Promise<Embeddings> => (embeddings ??= loadEmbeddings(source, manifest));
  let dataset: LocalDataset;
  if (options.ownData) {
    const vocabulary = options.ownData.modality === 'text' ? (await sharedEmbeddings()).vocabulary : undefined;
    dataset = await datasetFromOwnData(options.ownData, vocabulary);
  } else {
    const split = await openBuiltin(source, manifest, 'digits', 'train');
    const indices = demoSliceIndices(split.labels, seedOf(options.installId));
    const samples = (await split.read(indices)) as BuiltinSample[];
    // A representation task trains the tab's kind alone: only its modalities are prepared and declared.
    dataset = await datasetFromSamples(samples, representationTask ? FEDAFD_CLIENT_MODALITIES[TAB_FEDAFD_ASSIGNMENT.kind] : DEMO_MODALITIES);
  }
  const prepareMs = performance.now() - started;
  const base: BaseSource = (await weightsServed(origin)) ? 'pretrained' : 'fresh';
  const parts = httpParts(`${origin}/weights/`);
  // The runtime disposes each round's model itself; the capture keeps its trained adapters for the explanation viewer.
  // No LoRA α here: each round's config carries the task's, and the runtime asks the factory for it.
  const capture = captureTrainedAdapters(
    createDigitsModelFactory({
      loadBase: async (m) => (base === 'pretrained' ? (await loadDigitsBase(parts, { modalities: [m] }))[m] : null),
      loadEmbeddings: sharedEmbeddings,
    }),
  );
  // A representation task (FedAFD family) trains the tab's client kind on the same local data; nothing is prepared before its first round.
  const representation = new TabFedAfdRunner({
    localData: () => Promise.resolve(dataset),
    source,
    embeddings: sharedEmbeddings,
    seed: seedOf(options.installId),
  });
  const client = new ChorusClient({
    url: origin,
    taskId: options.taskId,
    token: options.token,
    storage: identityStorageOf(options.identity),
    dataset,
    models: capture.factory,
    backend: tf.getBackend(),
    seed: seedOf(options.installId),
    representation,
  });
  void client.finished().then(() => representation.dispose());
  persistLocalAdapters(client, { taskId: options.taskId, joinToken: options.token, capture, save: saveLocalModel });
  return { client, numExamples: dataset.numExamples, modalities: dataset.modalities, prepareMs, base, representation };
}

/** A client of a custom task: the volunteer's own files under the task's spec, the task's own encoders. */
function createCustomTaskClient(options: VolunteerClientOptions, custom: NonNullable<VolunteerClientOptions['custom']>): VolunteerClient {
  const origin = options.origin ?? location.origin;
  const started = performance.now();
  const capture = captureTrainedAdapters(custom.models);
  const client = new ChorusClient({
    url: origin,
    taskId: options.taskId,
    token: options.token,
    storage: identityStorageOf(options.identity),
    dataset: custom.own.dataset,
    models: capture.factory,
    backend: tf.getBackend(),
    seed: seedOf(options.installId),
  });
  persistLocalAdapters(client, { taskId: options.taskId, joinToken: options.token, capture, save: saveLocalModel });
  // A custom task trains weights only: no representation rounds.
  return {
    client,
    numExamples: custom.own.dataset.numExamples,
    modalities: custom.own.dataset.modalities,
    prepareMs: performance.now() - started,
    base: 'task',
    representation: null,
  };
}
