import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { artifactPaths, openBuiltin, readManifest } from '../builtin.js';
import type { Manifest } from '../manifest.js';
import { fileSource } from '../node.js';
import { buildAll } from './build.js';
import { ensureInstallArtifacts } from './ensure.js';

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((p) => statSync(join(dir, p)).isFile())
    .map((p) => relative(dir, join(dir, p)))
    .sort();
}

// Two small builds (3 speakers, 20 images per class) into fresh directories; a few seconds each.
let dirA = '';
let dirB = '';
let manifest: Manifest;

beforeAll(async () => {
  dirA = mkdtempSync(join(tmpdir(), 'chorus-data-a-'));
  dirB = mkdtempSync(join(tmpdir(), 'chorus-data-b-'));
  // Concurrent, so one build's synthesis overlaps the other's parsing.
  [manifest] = await Promise.all([buildAll({ outDir: dirA, seed: 5, small: true }), buildAll({ outDir: dirB, seed: 5, small: true })]);
});

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

  it('install step: leaves matching files alone, rebuilds missing or corrupt ones byte for byte', () => {
    const installed = manifest.artifacts.filter((a) => a.origin === 'install').map((a) => a.path);
    const victim = 'fashion/train-images.bin';
    const original = readFileSync(join(dirA, victim));

    const first = ensureInstallArtifacts(dirA);
    rmSync(join(dirA, 'fashion/test-labels.bin'));
    const corrupt = Buffer.from(original);
    corrupt[100] = corrupt[100]! ^ 0xff;
    writeFileSync(join(dirA, victim), corrupt);
    const second = ensureInstallArtifacts(dirA);

    expect(installed.length).toBe(9);
    expect(first.rebuilt).toEqual([]);
    expect([...second.rebuilt].sort()).toEqual(['fashion/test-labels.bin', victim]);
    expect(readFileSync(join(dirA, victim)).equals(original)).toBe(true);
    expect(listFiles(dirA).some((f) => f.startsWith('.build-'))).toBe(false);
  });

  it('lists the artifacts a split needs', () => {
    expect(artifactPaths(manifest, 'spam', 'test')).toEqual(['spam/test-labels.bin', 'spam/test-source.bin', 'spam/test-tokens.bin']);
  });
});
