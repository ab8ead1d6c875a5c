/**
 * Coded errors raised by the loaders. A file a loader cannot use is never fatal to the whole load:
 * the loader records it as {@link Skipped} with one of these codes and goes on with the rest, so a
 * UI can say exactly which file was left out and why without parsing messages.
 */

/** Every code a loader can raise or record. Callers switch on these; never on `message`. */
export const DATASET_ERROR_CODES = [
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
] as const;

/** One of {@link DATASET_ERROR_CODES}. */
export type DatasetErrorCode = (typeof DATASET_ERROR_CODES)[number];

/** An error with a machine-readable code from {@link DATASET_ERROR_CODES}. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';

  constructor(
    readonly code: DatasetErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** True when `err` is a {@link DatasetError}, optionally with the given code. */
export function isDatasetError(err: unknown, code?: DatasetErrorCode): err is DatasetError {
  return err instanceof DatasetError && (code === undefined || err.code === code);
}

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
