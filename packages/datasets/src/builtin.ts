/**
 * Typed access to the built-in datasets over any {@link ByteSource}. Opening a split fetches only its
 * labels (and, for digits, the small clip tables); `read(indices)` then fetches just those records,
 * so a browser client downloads the slice it trains on.
 */

import type { Modality } from '@chorus/fl-core';

import { DatasetError } from './errors.js';
import type { DecodedArray } from './format.js';
import { BUILTIN_NAMES, SPLITS, artifactEntry, parseManifest, type BuiltinName, type Manifest, type ManifestDataset, type Split } from './manifest.js';
import { openArtifact, readTensor, readText, type ArtifactReader } from './reader.js';
import type { ByteSource } from './source.js';
import { encodeText, vocabularyIndex } from './tokenize.js';

/** Where the manifest lives under the data root. */
export const MANIFEST_PATH = 'manifest.json';

/** A modality a dataset provides (fl-core's, so partitions and datasets agree). */
export type { Modality };

/** One spoken & written digit: a 28×28 MNIST image, a spoken digit by one speaker, and a caption. */
export interface DigitsSample {
  /** Position in the split. */
  readonly index: number;
  readonly label: number;
  /** 28×28 uint8, row-major. */
  readonly image: Uint8Array;
  /** 16 kHz mono int16, silence trimmed (length varies by speaker and word). */
  readonly audio: Int16Array;
  readonly speaker: number;
  /** Token ids into the GloVe vocabulary, padded with 0. */
  readonly caption: Uint16Array;
}

/** One Fashion-MNIST image. */
export interface FashionSample {
  readonly index: number;
  readonly label: number;
  /** 28×28 uint8, row-major. */
  readonly image: Uint8Array;
}

/** One SpamAssassin email (label 1 = spam). */
export interface SpamSample {
  readonly index: number;
  readonly label: number;
  /** Token ids into the GloVe vocabulary, padded with 0. */
  readonly tokens: Uint16Array;
}

/** The sample type of each built-in dataset. */
export interface SampleByName {
  digits: DigitsSample;
  fashion: FashionSample;
  spam: SpamSample;
}

/** Modalities each built-in dataset provides. */
export const BUILTIN_MODALITIES: Readonly<Record<BuiltinName, readonly Modality[]>> = {
  digits: ['image', 'text', 'audio'],
  fashion: ['image'],
  spam: ['text'],
};

/** One split of a built-in dataset, opened lazily. */
export interface BuiltinDataset<N extends BuiltinName = BuiltinName> {
  readonly name: N;
  readonly split: Split;
  readonly classes: readonly string[];
  readonly modalities: readonly Modality[];
  readonly numExamples: number;
  /** Label of every example in the split. */
  readonly labels: Uint8Array;
  /** The examples at `indices` (positions in the split), in that order. */
  read(indices: readonly number[]): Promise<SampleByName[N][]>;
}

/** Fetches and validates the manifest from `source`. */
export async function readManifest(source: ByteSource): Promise<Manifest> {
  let bytes: Uint8Array;
  try {
    bytes = await source(MANIFEST_PATH);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError('SOURCE_FAILED', `${MANIFEST_PATH}: ${(err as Error).message}`);
  }
  return parseManifest(new TextDecoder().decode(bytes));
}

function datasetOf(manifest: Manifest, name: string): ManifestDataset {
  if (!(BUILTIN_NAMES as readonly string[]).includes(name)) {
    throw new DatasetError('DATASET_UNKNOWN', `unknown built-in dataset ${JSON.stringify(name)}; known: ${BUILTIN_NAMES.join(', ')}`);
  }
  return manifest.datasets[name as BuiltinName];
}

function checkSplit(split: string): asserts split is Split {
  if (!(SPLITS as readonly string[]).includes(split)) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `unknown split ${JSON.stringify(split)}; known: ${SPLITS.join(', ')}`);
  }
}

function fieldPath(ds: ManifestDataset, split: Split | 'shared', field: string): string {
  const path = split === 'shared' ? ds.shared?.[field] : ds.splits[split].fields[field];
  if (path === undefined) throw new DatasetError('MANIFEST_INVALID', `no ${field} artifact for ${split}`);
  return path;
}

/** Manifest paths of every artifact a split needs (its fields, plus shared tables). */
export function artifactPaths(manifest: Manifest, name: BuiltinName, split: Split): string[] {
  const ds = datasetOf(manifest, name);
  checkSplit(split);
  return [...Object.values(ds.splits[split].fields), ...Object.values(ds.shared ?? {})].sort();
}

async function readSmall(source: ByteSource, manifest: Manifest, path: string): Promise<DecodedArray> {
  return (await readTensor(source, artifactEntry(manifest, path))).values;
}

function checkBelow(values: ArrayLike<number>, bound: number, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (values[i]! >= bound) throw new DatasetError('ARTIFACT_MISMATCH', `${what}: value ${values[i]} at ${i} is not below ${bound}`);
  }
}

async function open(source: ByteSource, manifest: Manifest, path: string): Promise<ArtifactReader> {
  return openArtifact(source, artifactEntry(manifest, path));
}

/** Opens one split of a built-in dataset: fetches and checks its labels, nothing else of size. */
export async function openBuiltin<N extends BuiltinName>(source: ByteSource, manifest: Manifest, name: N, split: Split): Promise<BuiltinDataset<N>> {
  const ds = datasetOf(manifest, name);
  checkSplit(split);
  const labels = (await readSmall(source, manifest, fieldPath(ds, split, 'labels'))) as Uint8Array;
  checkBelow(labels, ds.classes.length, `${name}/${split} labels`);
  const numExamples = labels.length;
  if (numExamples !== ds.splits[split].numExamples) {
    throw new DatasetError('ARTIFACT_MISMATCH', `${name}/${split}: ${numExamples} labels, manifest says ${ds.splits[split].numExamples}`);
  }
  const base = { name, split, classes: ds.classes, modalities: BUILTIN_MODALITIES[name], numExamples, labels };
  const label = (i: number): number => labels[i]!;

  if (name === 'fashion') {
    const images = await open(source, manifest, fieldPath(ds, split, 'images'));
    const read = async (indices: readonly number[]): Promise<FashionSample[]> => {
      const pixels = (await images.readRecords(indices)) as Uint8Array;
      return indices.map((index, k) => ({ index, label: label(index), image: pixels.subarray(k * 784, (k + 1) * 784) }));
    };
    return { ...base, read } as BuiltinDataset<N>;
  }

  if (name === 'spam') {
    const tokens = await open(source, manifest, fieldPath(ds, split, 'tokens'));
    const width = tokens.recordSize;
    const read = async (indices: readonly number[]): Promise<SpamSample[]> => {
      const ids = (await tokens.readRecords(indices)) as Uint16Array;
      return indices.map((index, k) => ({ index, label: label(index), tokens: ids.subarray(k * width, (k + 1) * width) }));
    };
    return { ...base, read } as BuiltinDataset<N>;
  }

  const [images, clips, captions, audio] = await Promise.all([
    open(source, manifest, fieldPath(ds, split, 'images')),
    open(source, manifest, fieldPath(ds, split, 'clips')),
    open(source, manifest, fieldPath(ds, split, 'captions')),
    open(source, manifest, fieldPath(ds, 'shared', 'audio')),
  ]);
  const offsets = (await readSmall(source, manifest, fieldPath(ds, 'shared', 'audioOffsets'))) as Uint32Array;
  const clipMeta = (await readSmall(source, manifest, fieldPath(ds, 'shared', 'clipMeta'))) as Uint8Array;
  const numClips = clipMeta.length / 2;
  if (offsets.length !== numClips + 1 || offsets[numClips] !== audio.header.count) {
    throw new DatasetError('ARTIFACT_MISMATCH', 'digits: clip offsets disagree with the clip table or the audio store');
  }
  for (let c = 0; c < numClips; c++) {
    if (offsets[c]! > offsets[c + 1]!) throw new DatasetError('ARTIFACT_MISMATCH', `digits: clip offsets decrease at ${c}`);
  }
  const width = captions.recordSize;
  const read = async (indices: readonly number[]): Promise<DigitsSample[]> => {
    const [pixels, clipIds, tokenIds] = (await Promise.all([images.readRecords(indices), clips.readRecords(indices), captions.readRecords(indices)])) as [
      Uint8Array,
      Uint16Array,
      Uint16Array,
    ];
    checkBelow(clipIds, numClips, `digits/${split} clips`);
    const wanted = [...new Set(clipIds)].sort((a, b) => a - b);
    const runs = wanted.map((c) => ({ start: offsets[c]!, end: offsets[c + 1]! }));
    const waves = (await audio.readRuns(runs)) as Int16Array[];
    const waveOf = new Map(wanted.map((c, k) => [c, waves[k]!]));
    return indices.map((index, k) => {
      const clip = clipIds[k]!;
      return {
        index,
        label: label(index),
        image: pixels.subarray(k * 784, (k + 1) * 784),
        audio: waveOf.get(clip)!,
        speaker: clipMeta[2 * clip]!,
        caption: tokenIds.subarray(k * width, (k + 1) * width),
      };
    });
  };
  return { ...base, read } as BuiltinDataset<N>;
}

/** The frozen word-embedding table with its vocabulary. */
export interface Embeddings {
  readonly dim: number;
  /** Word of each id; id 0 is padding, id 1 unknown. */
  readonly vocabulary: readonly string[];
  /** vocabulary.length × dim, row-major. */
  readonly vectors: Float32Array;
  readonly padId: number;
  readonly unkId: number;
  /** Token ids of `text` (tokenize → ids, unknown words → unkId), padded to `maxTokens`. */
  encode(text: string, maxTokens: number): Uint16Array;
}

/** Fetches the GloVe table and vocabulary (both checksum-verified). */
export async function loadEmbeddings(source: ByteSource, manifest: Manifest): Promise<Embeddings> {
  const { dim, padId, unkId } = manifest.embeddings;
  const [{ header, values }, text] = await Promise.all([
    readTensor(source, artifactEntry(manifest, manifest.embeddings.vectors)),
    readText(source, artifactEntry(manifest, manifest.embeddings.vocabulary)),
  ]);
  const vocabulary = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  if (header.recordShape[0] !== dim || header.count !== vocabulary.length || vocabulary.length !== manifest.embeddings.vocabSize) {
    throw new DatasetError('ARTIFACT_MISMATCH', `embeddings: ${header.count}×${String(header.recordShape[0])} vectors for ${vocabulary.length} words`);
  }
  const index = vocabularyIndex(vocabulary);
  return { dim, vocabulary, vectors: values as Float32Array, padId, unkId, encode: (t, maxTokens) => encodeText(t, index, maxTokens) };
}
