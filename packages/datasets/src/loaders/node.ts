/**
 * Node adapter for headless clients and experiment scripts: lists a folder on disk as
 * {@link SourceFile}s. Node-only (imports node:fs), so it is reached through its own module path,
 * never through the package index that the browser bundle imports.
 */

import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { DatasetError } from './errors.js';
import type { SourceFile } from './source.js';

function fromDisk(absolute: string, path: string, size: number): SourceFile {
  return {
    path,
    size,
    read: async () => {
      const buffer = await readFile(absolute);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    },
  };
}

/** One file on disk as a {@link SourceFile} named by its base name. */
export async function sourceFromPath(file: string): Promise<SourceFile> {
  const info = await stat(file);
  if (!info.isFile()) throw new DatasetError('LOADER_BAD_CONFIG', `${file} is not a file`);
  return fromDisk(file, basename(file), info.size);
}

/**
 * Every regular file under `root`, recursively, with '/'-separated paths relative to `root`,
 * sorted. Symbolic links are not followed, so a link cycle cannot trap the walk.
 */
export async function sourcesFromDirectory(root: string): Promise<SourceFile[]> {
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new DatasetError('LOADER_BAD_CONFIG', `${root} is not a folder`);
  const out: SourceFile[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const absolute = join(dir, entry.name);
      if (entry.isDirectory()) await visit(absolute);
      else if (entry.isFile()) out.push(fromDisk(absolute, relative(root, absolute).split(sep).join('/'), (await stat(absolute)).size));
    }
  };
  await visit(root);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
