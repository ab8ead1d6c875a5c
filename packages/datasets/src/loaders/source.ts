/**
 * The seam between where files come from (a folder on disk, a browser file picker, drag and drop,
 * bytes in memory) and the parsers. Adapters produce {@link SourceFile}s; loaders read them one at a
 * time and check the declared size before reading, so an oversized file is never pulled into memory.
 */

import { DatasetError } from './errors.js';

/** One file offered to a loader. */
export interface SourceFile {
  /** Path relative to the picked folder, '/'-separated, e.g. `cats/001.png`. */
  readonly path: string;
  /** Size in bytes as reported by the file system; checked before {@link SourceFile.read}. */
  readonly size: number;
  /** Reads the whole file. */
  read(): Promise<Uint8Array>;
}

/** Wraps bytes already in memory as a {@link SourceFile}. */
export function sourceFromBytes(path: string, bytes: Uint8Array): SourceFile {
  return { path: normalisePath(path), size: bytes.byteLength, read: () => Promise.resolve(bytes) };
}

/** Wraps a string as a UTF-8 {@link SourceFile}. */
export function sourceFromText(path: string, text: string): SourceFile {
  return sourceFromBytes(path, new TextEncoder().encode(text));
}

/** Default cap on one file's size: larger files are skipped unread with LOADER_TOO_LARGE. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Reads `file`, refusing it unread when its declared size is over `maxBytes` and refusing it after
 * reading when the declared size lied. Throws LOADER_EMPTY for a zero-byte file.
 */
export async function readSource(file: SourceFile, maxBytes: number): Promise<Uint8Array> {
  if (file.size > maxBytes) {
    throw new DatasetError('LOADER_TOO_LARGE', `${file.size} bytes is over the limit of ${maxBytes}`);
  }
  const bytes = await file.read();
  if (bytes.byteLength > maxBytes) {
    throw new DatasetError('LOADER_TOO_LARGE', `${bytes.byteLength} bytes is over the limit of ${maxBytes}`);
  }
  if (bytes.byteLength === 0) throw new DatasetError('LOADER_EMPTY', 'the file is empty');
  return bytes;
}

/** Decodes UTF-8 (dropping a leading BOM); invalid UTF-8 is LOADER_CORRUPT, not silently replaced. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DatasetError('LOADER_CORRUPT', 'the text is not valid UTF-8');
  }
}

/** '/'-separated path without a leading './' or '/', so adapters agree on one spelling. */
export function normalisePath(path: string): string {
  return path.replace(/\\/g, '/').replace(/^(\.\/|\/)+/, '');
}

/** The last path segment. */
export function baseName(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}

/** The name of the folder that directly holds `path`, or undefined at the top level. */
export function parentName(path: string): string | undefined {
  const parts = path.split('/');
  return parts.length >= 2 ? parts[parts.length - 2] : undefined;
}

/** The file name's extension in lower case, without the dot ('' when none). */
export function extensionOf(path: string): string {
  const name = baseName(path);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

/**
 * True for operating-system clutter (`.DS_Store`, `._x.png`, `__MACOSX/`, `Thumbs.db`, any dotfile or
 * file in a dot-folder). Loaders ignore these outright instead of reporting each as a skipped file.
 */
export function isClutter(path: string): boolean {
  return path.split('/').some((part) => part.startsWith('.') || part === '__MACOSX' || part === 'Thumbs.db' || part === 'desktop.ini');
}

/**
 * Finds the file an index (labels CSV, captions JSON) names: by exact relative path, else by a
 * path that ends with `/name`, else by base name when only one file has it. Undefined when none or
 * several match, so a sample is never paired with the wrong file.
 */
export function fileMatcher(files: readonly SourceFile[]): (name: string) => SourceFile | undefined {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const byBase = new Map<string, SourceFile[]>();
  for (const file of files) {
    const base = baseName(file.path);
    byBase.set(base, [...(byBase.get(base) ?? []), file]);
  }
  return (name) => {
    const wanted = normalisePath(name);
    const exact = byPath.get(wanted);
    if (exact !== undefined) return exact;
    const sameBase = byBase.get(baseName(wanted)) ?? [];
    const bySuffix = sameBase.filter((f) => f.path.endsWith(`/${wanted}`));
    if (bySuffix.length === 1) return bySuffix[0];
    return sameBase.length === 1 && !wanted.includes('/') ? sameBase[0] : undefined;
  };
}
