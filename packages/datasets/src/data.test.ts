/**
 * Checks the shipped artifacts in packages/datasets/data (committed ones, plus those the install step
 * builds): checksums, counts and shapes, label balance, and that no speaker or image is shared
 * between splits.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openBuiltin, readManifest } from './builtin.js';
import { EVALUATION_PROFILE, clientCaptionProfile } from './fashionMm.js';
import type { ByteSource } from './source.js';
import { HEADER_BYTES, decodeElements, decodeHeader } from './format.js';
import { ALL_SPLITS, SPLITS, artifactEntry, type BuiltinName, type Manifest, type Split } from './manifest.js';
import { DEFAULT_DATA_DIR, fileSource, loadBuiltin, loadBuiltinEmbeddings } from './node.js';

let manifest: Manifest;

beforeAll(async () => {
  manifest = await readManifest(fileSource());
});

function field(name: BuiltinName, split: Split | 'shared', key: string): ArrayLike<number> {
  const ds = manifest.datasets[name];
  const path = split === 'shared' ? ds.shared![key]! : ds.splits[split]!.fields[key]!;
  const bytes = readFileSync(join(DEFAULT_DATA_DIR, path));
  return decodeElements(decodeHeader(bytes).dtype, bytes.subarray(HEADER_BYTES));
}

function shapeOf(path: string): string {
  const a = artifactEntry(manifest, path);
  return `${a.dtype} ×${a.count} [${a.recordShape!.join(',')}]`;
}

describe('shipped manifest', () => {
  it('matches every file: size and sha256', () => {
    expect(manifest.small).toBe(false);
    for (const a of manifest.artifacts) {
      const bytes = readFileSync(join(DEFAULT_DATA_DIR, a.path));
      expect(bytes.length, a.path).toBe(a.byteSize);
      expect(createHash('sha256').update(bytes).digest('hex'), a.path).toBe(a.sha256);
    }
  });

  it('keeps the committed artifacts under 40 MB', () => {
    const committed = manifest.artifacts.filter((a) => a.origin === 'committed').reduce((n, a) => n + a.byteSize, 0);

    expect(committed).toBeLessThan(40e6);
  });
});

describe('counts and shapes', () => {
  const total = (name: BuiltinName): number => SPLITS.reduce((n, s) => n + manifest.datasets[name].splits[s].numExamples, 0);

  it('holds every real example: 10,000 digits, 70,000 Fashion-MNIST images, 6,046 emails', () => {
    expect(total('digits')).toBe(10_000);
    expect(total('fashion')).toBe(70_000);
    expect(total('spam')).toBe(6_046);
  });

  it('stores images as uint8 28×28, captions and emails as uint16 ids, audio as int16, vectors as float16 × 100', () => {
    const n = manifest.datasets.digits.splits.test.numExamples;

    expect(shapeOf('digits/test-images.bin')).toBe(`uint8 ×${n} [28,28]`);
    expect(shapeOf('digits/test-captions.bin')).toBe(`uint16 ×${n} [8]`);
    expect(shapeOf('spam/test-tokens.bin')).toBe(`uint16 ×${manifest.datasets.spam.splits.test.numExamples} [256]`);
    expect(shapeOf('fashion/train-images.bin')).toBe('uint8 ×59000 [28,28]');
    expect(artifactEntry(manifest, 'digits/clips-audio.bin').dtype).toBe('int16');
    expect(shapeOf('glove/vectors.bin')).toBe(`float16 ×${manifest.embeddings.vocabSize} [100]`);
    expect(manifest.embeddings.vocabSize).toBeGreaterThanOrEqual(20_002);
  });
});

describe('label balance', () => {
  // Splits are stratified: each class's share in a split stays within 1 percentage point of its
  // share in the whole dataset.
  it.each(['digits', 'fashion', 'spam'] as const)('%s: every split keeps the overall class shares within 1 point', (name) => {
    const ds = manifest.datasets[name];
    const overall = ds.classes.map((_, c) => SPLITS.reduce((n, s) => n + ds.splits[s].labelCounts[c]!, 0));
    const sum = overall.reduce((a, b) => a + b, 0);

    for (const split of SPLITS) {
      const counts = ds.splits[split].labelCounts;
      const n = counts.reduce((a, b) => a + b, 0);
      counts.forEach((count, c) => expect(Math.abs(count / n - overall[c]! / sum), `${split} class ${c}`).toBeLessThan(0.01));
      expect(Array.from(field(name, split, 'labels')).filter((y) => y === 0).length).toBe(counts[0]);
    }
  });

  it('digits classes hold 8–12 % each (MNIST as is); Fashion-MNIST exactly 10 %; spam 30–33 %', () => {
    const digits = manifest.datasets.digits.splits.train.labelCounts;
    const fashion = manifest.datasets.fashion.splits.train.labelCounts;
    const spam = manifest.datasets.spam.splits.train.labelCounts;
    const dn = digits.reduce((a, b) => a + b, 0);

    for (const c of digits) expect(c / dn).toBeGreaterThan(0.08);
    for (const c of digits) expect(c / dn).toBeLessThan(0.12);
    expect(new Set(fashion)).toEqual(new Set([5900]));
    expect(spam[1]! / (spam[0]! + spam[1]!)).toBeGreaterThan(0.3);
    expect(spam[1]! / (spam[0]! + spam[1]!)).toBeLessThan(0.33);
  });
});

describe('splits are disjoint', () => {
  it.each([
    ['digits', 10_000],
    ['fashion', 70_000],
    ['spam', 6_046],
  ] as const)('%s: no source example appears in two splits, and together they cover all', (name, size) => {
    const seen = new Uint8Array(size);

    for (const split of SPLITS) for (const src of Array.from(field(name, split, 'source'))) seen[src]! += 1;

    expect(seen.every((n) => n === 1)).toBe(true);
  });

  it('digits: ≥ 40 speakers, one clip per (speaker, digit), each split hearing only its own speakers', () => {
    const speakers = manifest.datasets.digits.speakers!;
    const meta = field('digits', 'shared', 'clipMeta');
    const offsets = field('digits', 'shared', 'audioOffsets');

    expect(speakers.length).toBeGreaterThanOrEqual(40);
    expect(meta.length / 2).toBe(speakers.length * 10);
    expect(new Set(speakers.map((s) => `${s.voice}+${s.variant}/${s.speed}/${s.pitch}`)).size).toBe(speakers.length);
    for (const split of SPLITS) {
      const clips = field('digits', split, 'clips');
      const labels = field('digits', split, 'labels');
      const heard = new Set<number>();
      for (let i = 0; i < clips.length; i++) {
        const clip = clips[i]!;
        heard.add(meta[2 * clip]!);
        expect(meta[2 * clip + 1]).toBe(labels[i]);
      }
      expect(
        [...heard].every((id) => speakers[id]!.split === split),
        split,
      ).toBe(true);
      expect(heard.size).toBe(speakers.filter((s) => s.split === split).length);
    }
    for (let c = 0; c < meta.length / 2; c++) {
      const length = offsets[c + 1]! - offsets[c]!;
      expect(length).toBeGreaterThan(0.15 * 16_000);
      expect(length).toBeLessThanOrEqual(1.5 * 16_000);
    }
  });
});

describe('captions', () => {
  it('come from ≥ 20 templates and use no unknown word', () => {
    const captions = field('digits', 'train', 'captions');

    expect(manifest.datasets.digits.captionTemplates!.length).toBeGreaterThanOrEqual(20);
    expect(Array.from(captions).includes(manifest.embeddings.unkId)).toBe(false);
  });
});

describe('fashion-mm', () => {
  const ds = (): Manifest['datasets']['fashion-mm'] => manifest.datasets['fashion-mm'];

  it('has 12,000 / 2,000 / 3,000 / 1,000 (500 probe + 500 root) examples, 10 % per class, test from the test images', () => {
    const counts = ALL_SPLITS.map((split) => ds().splits[split]!.numExamples);
    const sources = ALL_SPLITS.flatMap((split) => Array.from(field('fashion-mm', split, 'source')));

    expect(counts).toEqual([12_000, 2_000, 3_000, 1_000]);
    expect(ds().publicParts).toEqual({ probe: 500, root: 500 });
    for (const split of ALL_SPLITS) expect(new Set(ds().splits[split]!.labelCounts).size, split).toBe(1);
    expect(new Set(sources).size).toBe(sources.length);
    expect(Array.from(field('fashion-mm', 'test', 'source')).every((src) => src % 7000 >= 6000)).toBe(true);
  });

  it('speaks every caption by every speaker (≤ 1 s each), 10 / 3 / 4 / 3 speakers, 8-bit μ-law', () => {
    const meta = field('fashion-mm', 'shared', 'clipMeta');
    const offsets = field('fashion-mm', 'shared', 'audioOffsets');
    const speakers = ds().speakers!;

    expect(ALL_SPLITS.map((split) => speakers.filter((s) => s.split === split).length)).toEqual([10, 3, 4, 3]);
    expect(meta.length / 2).toBe(speakers.length * ds().captions!.length);
    expect(ds().audioEncoding).toBe('mu-law');
    for (let c = 0; c < meta.length / 2; c++) expect(offsets[c + 1]! - offsets[c]!).toBeLessThanOrEqual(16_000);
  });

  it('captions use ≤ 16 known words; the appended words come after every earlier id', async () => {
    const captions = field('fashion-mm', 'shared', 'captions');
    const emb = await loadBuiltinEmbeddings();

    expect(Array.from(captions).includes(manifest.embeddings.unkId)).toBe(false);
    expect(emb.vocabulary.indexOf('sneaker')).toBeGreaterThan(emb.vocabulary.indexOf('9'));
    expect(emb.vocabulary.indexOf('a')).toBeLessThan(emb.vocabulary.indexOf('bulky'));
  });

  it('refuses a malformed caption profile, and a validation split of a dataset without one, with DATASET_BAD_ARGUMENT', async () => {
    const source = fileSource();

    await expect(openBuiltin(source, manifest, 'fashion-mm', 'test', { profile: { ...EVALUATION_PROFILE, snrDb: Number.NaN } })).rejects.toMatchObject({
      code: 'DATASET_BAD_ARGUMENT',
    });
    await expect(openBuiltin(source, manifest, 'fashion-mm', 'test', { profile: { ...EVALUATION_PROFILE, misleadingRate: -0.1 } })).rejects.toMatchObject({
      code: 'DATASET_BAD_ARGUMENT',
    });
    await expect(openBuiltin(source, manifest, 'digits', 'validation')).rejects.toMatchObject({ code: 'DATASET_BAD_ARGUMENT' });
  });

  it('reads a few examples through byte ranges: only their records and clips, not the 6.8 MB clip store', async () => {
    const disk = fileSource();
    let fetched = 0;
    const counting: ByteSource = async (path, range) => {
      const bytes = await disk(path, range);
      fetched += bytes.length;
      return bytes;
    };
    const train = await openBuiltin(counting, manifest, 'fashion-mm', 'train', { profile: clientCaptionProfile(1, 0) });
    fetched = 0;

    const samples = await train.read([3, 500, 9000]);

    expect(samples.map((s) => s.index)).toEqual([3, 500, 9000]);
    expect(fetched).toBeLessThan(3 * (784 + 4) + 3 * 16_000 + 16 * 1024);
  });

  it('loads the validation split with the evaluation profile: the same bytes on every load', async () => {
    const a = await loadBuiltin('fashion-mm', 'validation');
    const b = await loadBuiltin('fashion-mm', 'validation');

    expect(a.samples).toHaveLength(2_000);
    expect(a.samples[5]).toEqual(b.samples[5]);
    expect(new Set(a.samples.map((s) => s.captionKind))).toEqual(new Set(['exact', 'superclass', 'attribute', 'uninformative', 'misleading']));
    expect(a.samples.filter((s) => s.captionKind === 'misleading').length / 2_000).toBeCloseTo(0.15, 1);
  });
});

describe('loadBuiltin', () => {
  it('loads a digits split as typed samples', async () => {
    const ds = await loadBuiltin('digits', 'public');
    const first = ds.samples[0]!;

    expect(ds.samples).toHaveLength(manifest.datasets.digits.splits.public.numExamples);
    expect(ds.modalities).toEqual(['image', 'text', 'audio']);
    expect(first.image).toBeInstanceOf(Uint8Array);
    expect(first.image.length).toBe(784);
    expect(first.audio).toBeInstanceOf(Int16Array);
    expect(first.caption.length).toBe(8);
    expect(first.label).toBe(ds.labels[0]);
  });

  it('loads the embeddings, numerals sharing the vectors of their names', async () => {
    const emb = await loadBuiltinEmbeddings();
    const row = (word: string): number[] => {
      const id = emb.vocabulary.indexOf(word);
      return Array.from(emb.vectors.subarray(id * emb.dim, (id + 1) * emb.dim));
    };

    expect(emb.vocabulary.slice(0, 3)).toEqual(['<pad>', '<unk>', 'the']);
    expect(row('7')).toEqual(row('seven'));
    expect(row('the').some((v) => v !== 0)).toBe(true);
    expect([...emb.encode('The digit 7', 4)]).toEqual([2, emb.vocabulary.indexOf('digit'), emb.vocabulary.indexOf('7'), 0]);
  });

  describe('on damaged copies', () => {
    let dir = '';
    const copy = (path: string): void => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      copyFileSync(join(DEFAULT_DATA_DIR, path), join(dir, path));
    };

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'chorus-damaged-'));
      copy('manifest.json');
      for (const path of ['spam/public-labels.bin', 'spam/public-tokens.bin', 'spam/public-source.bin']) copy(path);
    });

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('refuses a truncated artifact with ARTIFACT_TRUNCATED, a flipped byte with ARTIFACT_CHECKSUM, a missing one with ARTIFACT_MISSING', async () => {
      const file = join(dir, 'spam/public-tokens.bin');
      const good = readFileSync(file);

      writeFileSync(file, good.subarray(0, good.length - 2));
      await expect(loadBuiltin('spam', 'public', { dataDir: dir })).rejects.toMatchObject({ code: 'ARTIFACT_TRUNCATED' });
      const flipped = Buffer.from(good);
      flipped[HEADER_BYTES + 7] = flipped[HEADER_BYTES + 7]! ^ 0x10;
      writeFileSync(file, flipped);
      await expect(loadBuiltin('spam', 'public', { dataDir: dir })).rejects.toMatchObject({ code: 'ARTIFACT_CHECKSUM' });
      writeFileSync(file, good);
      await expect(loadBuiltin('spam', 'public', { dataDir: dir })).resolves.toMatchObject({ numExamples: 303 });
      await expect(loadBuiltin('spam', 'train', { dataDir: dir })).rejects.toMatchObject({ code: 'ARTIFACT_MISSING' });
    });

    it('refuses an unknown dataset or split with a coded error', async () => {
      await expect(loadBuiltin('cifar' as BuiltinName, 'train', { dataDir: dir })).rejects.toMatchObject({ code: 'DATASET_UNKNOWN' });
      await expect(loadBuiltin('spam', 'valid' as Split, { dataDir: dir })).rejects.toMatchObject({ code: 'DATASET_BAD_ARGUMENT' });
    });
  });
});
