import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { artifactPaths, openBuiltin, publicPartIndices, readManifest } from '../builtin.js';
import { clientCaptionProfile } from '../fashionMm.js';
import { ALL_SPLITS, artifactEntry, type Manifest } from '../manifest.js';
import { readTensor } from '../reader.js';
import { fileSource } from '../node.js';
import { buildAll } from './build.js';
import { ensureInstallArtifacts } from './ensure.js';

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((p) => statSync(join(dir, p)).isFile())
    .map((p) => relative(dir, join(dir, p)))
    .sort();
}

// Two small builds (3 speakers, 20 images per class; fashion-mm: 4 speakers, 26 images per class) into fresh directories.
let dirA = '';
let dirB = '';
let manifest: Manifest;

beforeAll(async () => {
  dirA = mkdtempSync(join(tmpdir(), 'chorus-data-a-'));
  dirB = mkdtempSync(join(tmpdir(), 'chorus-data-b-'));
  // Concurrent, so one build's synthesis overlaps the other's parsing.
  [manifest] = await Promise.all([buildAll({ outDir: dirA, seed: 5, small: true }), buildAll({ outDir: dirB, seed: 5, small: true })]);
  // Both read all 70,000 Fashion-MNIST images (fashion-mm's test split must come from the last 1,000 of each class).
}, 300_000);

afterAll(() => {
  for (const dir of [dirA, dirB]) if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('generator', () => {
  it('gives byte-identical artifacts and manifest for the same seed', () => {
    const files = listFiles(dirA);

    expect(listFiles(dirB)).toEqual(files);
    expect(files).toContain('manifest.json');
    for (const file of files) expect(readFileSync(join(dirB, file)).equals(readFileSync(join(dirA, file))), file).toBe(true);
  });

  it('writes a manifest that lists every file it wrote, with matching sizes', async () => {
    const parsed = await readManifest(fileSource(dirA));

    expect(parsed.artifacts.map((a) => a.path)).toEqual(listFiles(dirA).filter((f) => f !== 'manifest.json'));
    for (const a of parsed.artifacts) expect(statSync(join(dirA, a.path)).size, a.path).toBe(a.byteSize);
  });

  it('pairs each image with a clip of its own label from a speaker of its own split', async () => {
    const source = fileSource(dirA);
    const speakers = manifest.datasets.digits.speakers!;

    for (const split of ['train', 'test', 'public'] as const) {
      const ds = await openBuiltin(source, manifest, 'digits', split);
      const samples = await ds.read(Array.from({ length: ds.numExamples }, (_, i) => i));

      for (const s of samples) {
        expect(speakers[s.speaker]!.split).toBe(split);
        expect(s.audio.length).toBeGreaterThan(1000);
        expect(s.caption[0]).toBeGreaterThan(1); // first token is a known word, not PAD or UNK
      }
    }
  });

  it('install step: leaves matching files alone, rebuilds missing or corrupt ones byte for byte', { timeout: 120_000 }, () => {
    const installed = manifest.artifacts.filter((a) => a.origin === 'install').map((a) => a.path);
    const victim = 'fashion/train-images.bin';
    const original = readFileSync(join(dirA, victim));

    const first = ensureInstallArtifacts(dirA);
    rmSync(join(dirA, 'fashion/test-labels.bin'));
    const corrupt = Buffer.from(original);
    corrupt[100] = corrupt[100]! ^ 0xff;
    writeFileSync(join(dirA, victim), corrupt);
    const second = ensureInstallArtifacts(dirA);

    expect(installed.length).toBe(9 + 12);
    expect(first.rebuilt).toEqual([]);
    expect([...second.rebuilt].sort()).toEqual(['fashion/test-labels.bin', victim]);
    expect(readFileSync(join(dirA, victim)).equals(original)).toBe(true);
    expect(listFiles(dirA).some((f) => f.startsWith('.build-'))).toBe(false);
  });

  it('fashion-mm: splits disjoint by source index, test from the test images only, public divided into disjoint probe and root', async () => {
    const source = fileSource(dirA);
    const ds = manifest.datasets['fashion-mm'];
    const sources: Record<string, number[]> = {};

    for (const split of ALL_SPLITS) {
      const opened = await openBuiltin(source, manifest, 'fashion-mm', split);
      sources[split] = (await opened.read(Array.from({ length: opened.numExamples }, (_, i) => i))).map((s) => s.source);
    }
    const all = Object.values(sources).flat();
    const parts = ds.publicParts!;
    const probe = new Set(publicPartIndices(manifest, 'fashion-mm', 'probe')!.map((i) => sources['public']![i]!));
    const root = publicPartIndices(manifest, 'fashion-mm', 'root')!.map((i) => sources['public']![i]!);

    expect(new Set(all).size).toBe(all.length);
    expect(sources['test']!.every((src) => src % 7000 >= 6000)).toBe(true);
    expect([...sources['train']!, ...sources['validation']!, ...sources['public']!].every((src) => src % 7000 < 6000)).toBe(true);
    expect(parts.probe + parts.root).toBe(sources['public']!.length);
    expect(parts.probe).toBeGreaterThan(0);
    expect(root.length).toBe(parts.root);
    expect(root.some((src) => probe.has(src))).toBe(false);
    expect(ds.splits.validation!.labelCounts.every((n) => n === ds.splits.validation!.labelCounts[0])).toBe(true);
  });

  it('fashion-mm: one clip of at most 1 s per caption for every speaker, speakers disjoint between splits', async () => {
    const ds = manifest.datasets['fashion-mm'];
    const read = async (path: string): Promise<ArrayLike<number>> => (await readTensor(fileSource(dirA), artifactEntry(manifest, path))).values;
    const meta = await read(ds.shared!['clipMeta']!);
    const offsets = await read(ds.shared!['audioOffsets']!);
    const speakers = ds.speakers!;
    const pairs = new Set<string>();

    for (let c = 0; c < meta.length / 2; c++) {
      pairs.add(`${meta[2 * c]}/${meta[2 * c + 1]}`);
      expect(offsets[c + 1]! - offsets[c]!).toBeGreaterThan(0.1 * 16_000);
      expect(offsets[c + 1]! - offsets[c]!).toBeLessThanOrEqual(16_000);
    }
    for (const s of speakers) for (let caption = 0; caption < ds.captions!.length; caption++) expect(pairs.has(`${s.id}/${caption}`)).toBe(true);
    for (const split of ALL_SPLITS) expect(speakers.filter((s) => s.split === split).length, split).toBeGreaterThan(0);
    expect(new Set(speakers.map((s) => `${s.voice}+${s.variant}`)).size).toBe(speakers.length);
  });

  it('fashion-mm: a client reads image, caption and noisy speech of the caption; the same profile reads the same bytes', async () => {
    const source = fileSource(dirA);
    const ds = manifest.datasets['fashion-mm'];
    const profile = clientCaptionProfile(5, 2);
    const train = await openBuiltin(source, manifest, 'fashion-mm', 'train', { profile });
    const indices = Array.from({ length: train.numExamples }, (_, i) => i);

    const samples = await train.read(indices);
    const again = await train.read([7, 3]);
    const evaluation = await (await openBuiltin(source, manifest, 'fashion-mm', 'train')).read([7]);

    expect(again[0]).toEqual(samples[7]);
    expect(again[1]).toEqual(samples[3]);
    expect(evaluation[0]!.audio).not.toEqual(samples[7]!.audio);
    for (const s of samples) {
      const caption = ds.captions![s.captionId]!;
      expect(ds.speakers![s.speaker]!.split).toBe('train');
      expect(s.image.length).toBe(784);
      expect(s.caption[0]).toBeGreaterThan(1);
      expect(s.audio.length).toBeLessThanOrEqual(16_000);
      if (s.captionKind === 'misleading') expect(caption.classes).not.toContain(s.label);
      if (s.captionKind === 'exact') expect(caption.classes).toEqual([s.label]);
    }
    expect(new Set(samples.map((s) => s.captionKind)).size).toBeGreaterThanOrEqual(3);
  });

  it('lists the artifacts a split needs', () => {
    expect(artifactPaths(manifest, 'spam', 'test')).toEqual(['spam/test-labels.bin', 'spam/test-source.bin', 'spam/test-tokens.bin']);
  });
});
