/**
 * The tab's federated client: a ChorusClient over socket.io to this page's origin, trained on a
 * small slice of the built-in digits training split read lazily over /data/ (only the chosen
 * records are fetched), with the pretrained base encoders fetched from /weights/ when the origin
 * serves them and fresh encoders otherwise. The slice is a Dirichlet partition seeded by this
 * browser's install id, so a reload trains on the same examples. Raw samples never leave the tab:
 * the runtime uploads only encoded parameter deltas.
 */
import * as tf from '@tensorflow/tfjs';
import { ChorusClient, createDigitsModelFactory, datasetFromSamples, type BuiltinSample, type IdentityStorage } from '@chorus/client';
import { loadEmbeddings, openBuiltin, partitionDataset, readManifest, type ByteSource } from '@chorus/datasets';
import { createRng, shuffled } from '@chorus/fl-core';
import { httpParts, loadDigitsBase, type Modality } from '@chorus/models';
import { browserDataSource } from './builtinData.js';
import type { IdentityStore } from './identity.js';

/** Clients the built-in split is dealt to; this browser takes one of them. */
export const DEMO_PARTITION_CLIENTS = 16;
/** Examples this tab trains on. */
export const DEMO_SLICE_EXAMPLES = 100;
/** Modalities the tab trains (audio's log-mel features are left to headless clients to keep the tab light). */
export const DEMO_MODALITIES: readonly Modality[] = ['image', 'text'];

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

/** Training-split indices of this install's slice: its Dirichlet shard, capped by a seeded subset, ascending. */
export function demoSliceIndices(labels: ArrayLike<number>, seed: number, numExamples = DEMO_SLICE_EXAMPLES): number[] {
  const shards = partitionDataset({ labels, modalities: DEMO_MODALITIES }, { numClients: DEMO_PARTITION_CLIENTS, scheme: 'dirichlet', alpha: 1, minSamplesPerClient: 1, seed });
  const shard = shards[seed % DEMO_PARTITION_CLIENTS]!;
  const indices = shard.indices.length > numExamples ? shuffled(createRng(seed + 1), shard.indices).slice(0, numExamples) : [...shard.indices];
  return indices.sort((a, b) => a - b);
}

/** Where the base encoders came from. */
export type BaseSource = 'pretrained' | 'fresh';

/** Options of {@link createVolunteerClient}. */
export interface VolunteerClientOptions {
  readonly taskId: string;
  readonly token: string;
  readonly installId: string;
  readonly identity: IdentityStore;
  /** Page origin (socket.io and /weights/); default `location.origin`. */
  readonly origin?: string;
  readonly source?: ByteSource;
}

/** A client ready to start, with what it will train on. */
export interface VolunteerClient {
  readonly client: ChorusClient;
  readonly numExamples: number;
  readonly modalities: readonly Modality[];
  /** Whether the origin served the pretrained encoders. */
  readonly base: BaseSource;
}

async function weightsServed(origin: string): Promise<boolean> {
  try {
    const res = await fetch(`${origin}/weights/image-base/model.json`, { method: 'HEAD' });
    return res.ok;
  } catch {
    return false;
  }
}

/** Reads this install's slice and builds the (not yet started) client on the active TF.js backend. */
export async function createVolunteerClient(options: VolunteerClientOptions): Promise<VolunteerClient> {
  const origin = options.origin ?? location.origin;
  const source = options.source ?? browserDataSource();
  const manifest = await readManifest(source);
  const split = await openBuiltin(source, manifest, 'digits', 'train');
  const indices = demoSliceIndices(split.labels, seedOf(options.installId));
  const samples = (await split.read(indices)) as BuiltinSample[];
  const dataset = await datasetFromSamples(samples, DEMO_MODALITIES);
  const base: BaseSource = (await weightsServed(origin)) ? 'pretrained' : 'fresh';
  const parts = httpParts(`${origin}/weights/`);
  const models = createDigitsModelFactory({
    loadBase: async (m) => (base === 'pretrained' ? (await loadDigitsBase(parts, { modalities: [m] }))[m] : null),
    loadEmbeddings: () => loadEmbeddings(source, manifest),
  });
  const client = new ChorusClient({
    url: origin,
    taskId: options.taskId,
    token: options.token,
    storage: identityStorageOf(options.identity),
    dataset,
    models,
    backend: tf.getBackend(),
    seed: seedOf(options.installId),
  });
  return { client, numExamples: dataset.numExamples, modalities: DEMO_MODALITIES, base };
}
