/**
 * The loaders' share of the package's coded errors. A file a loader cannot use is never fatal to
 * the whole load: the loader records it as {@link Skipped} with one of {@link LOADER_ERROR_CODES}
 * and goes on with the rest, so a UI can say exactly which file was left out and why without
 * parsing messages. The error class is the package's one {@link DatasetError}.
 */

import { DatasetError } from '../errors.js';
import type { DatasetErrorCode } from '../errors.js';

export { DatasetError, isDatasetError } from '../errors.js';
export type { DatasetErrorCode } from '../errors.js';

/** The codes loaders raise or record (a subset of the package's `DATASET_ERROR_CODES`). */
export const LOADER_ERROR_CODES = [
  /** The bytes are not a valid file of the type they claim to be (bad magic, CRC, lengths). */
  'LOADER_CORRUPT',
  /** A well-formed file of a kind or variant the loader does not read (e.g. μ-law WAV, GIF). */
  'LOADER_UNSUPPORTED',
  /** The file, or the record, holds nothing to load (zero bytes, no frames, empty text). */
  'LOADER_EMPTY',
  /** The file, or a size it declares, is over the caller's limit. */
  'LOADER_TOO_LARGE',
  /** The sample's label is missing or not one of the task's classes. */
  'LOADER_BAD_LABEL',
  /** A file that an index (captions JSON, labels CSV) names is not among the files given. */
  'LOADER_MISSING',
  /** The caller's options are invalid (unknown column, non-positive size); nothing was loaded. */
  'LOADER_BAD_CONFIG',
] as const satisfies readonly DatasetErrorCode[];

/** One of {@link LOADER_ERROR_CODES}. */
export type LoaderErrorCode = (typeof LOADER_ERROR_CODES)[number];

/** A file (or a record inside one) that a loader left out, and why. */
export interface Skipped {
  /** The file's path as the caller gave it; `path:line` for a record inside a text file. */
  readonly path: string;
  readonly code: DatasetErrorCode;
  /** Human-readable reason, starting with the path. */
  readonly message: string;
}

/**
 * Turns whatever a parser threw into a {@link Skipped} entry for `path`. Errors that are not
 * DatasetErrors come from third-party decoders fed bad bytes, so they count as corrupt input.
 */
export function skippedFrom(path: string, err: unknown): Skipped {
  if (err instanceof DatasetError) {
    return { path, code: err.code, message: `${path}: ${err.message.slice(err.code.length + 2)}` };
  }
  const detail = err instanceof Error ? err.message : String(err);
  return { path, code: 'LOADER_CORRUPT', message: `${path}: could not be decoded (${detail})` };
}
