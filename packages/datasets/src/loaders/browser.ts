/**
 * Browser adapter: turns what a file picker (`<input type=file multiple webkitdirectory>`) or a
 * drop (`DataTransferItemList`) yields into {@link SourceFile}s. Written against minimal structural
 * types that the DOM's `File`, `FileList`, `FileSystemEntry` and `DataTransferItem` satisfy, so it
 * also runs in Node (whose global `File` fits). Files are read only when a loader asks, and stay
 * in the page: nothing is uploaded.
 */

import { DatasetError } from './errors.js';
import { normalisePath } from './source.js';
import type { SourceFile } from './source.js';

/** The part of the DOM `File` the adapter uses. */
export interface FileLike {
  readonly name: string;
  readonly size: number;
  /** Set by folder pickers (`webkitdirectory`): `picked-folder/sub/file.png`; '' otherwise. */
  readonly webkitRelativePath?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** The part of the DOM `FileSystemEntry` the adapter uses. */
export interface EntryLike {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly name: string;
  /** `/folder/file.png`, relative to the drop. */
  readonly fullPath: string;
}

/** A `FileSystemFileEntry`. */
export interface FileEntryLike extends EntryLike {
  file(success: (file: FileLike) => void, failure?: (err: unknown) => void): void;
}

/** A `FileSystemDirectoryEntry`. */
export interface DirectoryEntryLike extends EntryLike {
  createReader(): { readEntries(success: (entries: EntryLike[]) => void, failure?: (err: unknown) => void): void };
}

/** The part of the DOM `DataTransferItem` the adapter uses. */
export interface DataTransferItemLike {
  readonly kind: string;
  webkitGetAsEntry(): EntryLike | null;
  getAsFile(): FileLike | null;
}

/** Wraps one picked `File`; its path is the folder-picker path when there is one. */
export function sourceFromFile(file: FileLike, path?: string): SourceFile {
  return {
    path: normalisePath(path ?? (file.webkitRelativePath || file.name)),
    size: file.size,
    read: async () => new Uint8Array(await file.arrayBuffer()),
  };
}

/** Wraps the files of an `<input type=file>` (a `FileList` or an array of `File`s). */
export function sourcesFromFileList(files: ArrayLike<FileLike> | Iterable<FileLike>): SourceFile[] {
  return Array.from(files as ArrayLike<FileLike>, (file) => sourceFromFile(file));
}

function unreadable(path: string, err: unknown): SourceFile {
  const detail = err instanceof Error ? err.message : String(err);
  return { path: normalisePath(path), size: 0, read: () => Promise.reject(new DatasetError('LOADER_CORRUPT', `could not be read (${detail})`)) };
}

const isFileEntry = (entry: EntryLike): entry is FileEntryLike => entry.isFile && 'file' in entry;
const isDirectoryEntry = (entry: EntryLike): entry is DirectoryEntryLike => entry.isDirectory && 'createReader' in entry;

async function walk(entry: EntryLike, out: SourceFile[]): Promise<void> {
  if (isFileEntry(entry)) {
    try {
      const file = await new Promise<FileLike>((resolve, reject) => entry.file(resolve, reject));
      out.push(sourceFromFile(file, entry.fullPath || entry.name));
    } catch (err) {
      out.push(unreadable(entry.fullPath || entry.name, err));
    }
  } else if (isDirectoryEntry(entry)) {
    const reader = entry.createReader();
    // readEntries hands back at most a batch (100 in Chromium) per call; an empty batch means done.
    for (;;) {
      const batch = await new Promise<EntryLike[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, out);
    }
  }
}

/**
 * Collects every file in a drop, descending into dropped folders. Call it inside the `drop`
 * handler before awaiting anything else: browsers empty the item list once the handler yields.
 */
export async function sourcesFromDataTransfer(items: ArrayLike<DataTransferItemLike>): Promise<SourceFile[]> {
  // Take every entry synchronously, while the list is still valid.
  const taken = Array.from(items, (item) => (item.kind === 'file' ? { entry: item.webkitGetAsEntry(), file: item.getAsFile() } : undefined));
  const out: SourceFile[] = [];
  for (const item of taken) {
    if (item === undefined) continue;
    if (item.entry !== null) await walk(item.entry, out);
    else if (item.file !== null) out.push(sourceFromFile(item.file));
  }
  return out;
}
