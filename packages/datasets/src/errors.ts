/**
 * Coded errors raised by the built-in dataset readers and the generator. Every failure a caller can
 * provoke (a missing, truncated or corrupt artifact, a malformed manifest, an index out of range)
 * surfaces as a `DatasetError` whose `code` comes from a closed set, so the web client and the
 * coordinator can map it to a message without parsing text.
 */

/** Every code the built-in dataset code can raise. */
export const DATASET_ERROR_CODES = [
  'DATASET_UNKNOWN',
  'DATASET_BAD_ARGUMENT',
  'MANIFEST_INVALID',
  'ARTIFACT_MISSING',
  'ARTIFACT_BAD_MAGIC',
  'ARTIFACT_BAD_HEADER',
  'ARTIFACT_MISMATCH',
  'ARTIFACT_TRUNCATED',
  'ARTIFACT_CHECKSUM',
  'SOURCE_FAILED',
  'GENERATOR_FAILED',
  // users' own files and benchmark formats (loaders/; see LOADER_ERROR_CODES there)
  'LOADER_CORRUPT',
  'LOADER_UNSUPPORTED',
  'LOADER_EMPTY',
  'LOADER_TOO_LARGE',
  'LOADER_BAD_LABEL',
  'LOADER_MISSING',
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
