/**
 * Node conveniences: a file-backed byte source and `loadBuiltin`, which reads a whole split from the
 * package's data directory with every artifact checksum-verified. Browser code imports the package
 * root instead and fetches lazily through `httpSource`.
 */

import { open, readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  artifactPaths,
  loadEmbeddings,
  openBuiltin,
  readManifest,
  type BuiltinDataset,
  type Embeddings,
  type OpenBuiltinOptions,
  type SampleByName,
} from './builtin.js';
import { DatasetError } from './errors.js';
import { artifactEntry, type BuiltinName, type Manifest, type Split } from './manifest.js';
import { readVerified } from './reader.js';
import { memorySource, type ByteSource } from './source.js';

/** The package's own data directory (packages/datasets/data). */
export const DEFAULT_DATA_DIR = fileURLToPath(new URL('../data/', import.meta.url));

/** A byte source reading files under `dataDir`; paths that climb out of it are refused. */
export function fileSource(dataDir: string = DEFAULT_DATA_DIR): ByteSource {
  return async (path, range) => {
    if (isAbsolute(path) || path.split(/[\\/]/).some((p) => p === '..')) {
      throw new DatasetError('DATASET_BAD_ARGUMENT', `fileSource: path ${JSON.stringify(path)} leaves the data directory`);
    }
    const file = join(dataDir, path);
    try {
      if (range === undefined) return new Uint8Array(await readFile(file));
      const handle = await open(file, 'r');
      try {
        const length = Math.max(0, range.end - range.start);
        const buffer = new Uint8Array(length);
        const { bytesRead } = await handle.read(buffer, 0, length, range.start);
        return buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DatasetError('ARTIFACT_MISSING', `${path}: not found under ${dataDir} (run pnpm install, which builds the install-time artifacts)`);
      }
      throw new DatasetError('SOURCE_FAILED', `${path}: ${(err as Error).message}`);
    }
  };
}

/** Options for {@link loadBuiltin}. */
export interface LoadBuiltinOptions extends OpenBuiltinOptions {
  /** Defaults to {@link DEFAULT_DATA_DIR}. */
  readonly dataDir?: string;
}

/** A fully loaded split: the lazy handle plus every sample. */
export interface LoadedBuiltin<N extends BuiltinName> extends BuiltinDataset<N> {
  readonly manifest: Manifest;
  readonly samples: readonly SampleByName[N][];
}

/** Loads a whole split from disk, verifying every artifact it uses against the manifest's sha256 (e.g. `loadBuiltin('fashion-mm', 'validation')`). */
export async function loadBuiltin<N extends BuiltinName>(name: N, split: Split, options: LoadBuiltinOptions = {}): Promise<LoadedBuiltin<N>> {
  const disk = fileSource(options.dataDir);
  const manifest = await readManifest(disk);
  const files = new Map<string, Uint8Array>();
  for (const path of artifactPaths(manifest, name, split)) files.set(path, await readVerified(disk, artifactEntry(manifest, path)));
  const dataset = await openBuiltin(memorySource(files), manifest, name, split, options.profile ? { profile: options.profile } : {});
  const samples = await dataset.read(Array.from({ length: dataset.numExamples }, (_, i) => i));
  return { ...dataset, manifest, samples };
}

/** Loads the GloVe table from disk. */
export async function loadBuiltinEmbeddings(options: LoadBuiltinOptions = {}): Promise<Embeddings> {
  const disk = fileSource(options.dataDir);
  return loadEmbeddings(disk, await readManifest(disk));
}
// Node folder adapter for the loaders (users' own files, benchmark folders).
export { sourceFromPath, sourcesFromDirectory } from './loaders/node.js';
