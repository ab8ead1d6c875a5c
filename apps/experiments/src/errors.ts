/**
 * Coded errors raised by @chorus/experiments. The CLI prints `code: message` and exits non-zero;
 * callers switch on `code`, never on `message`.
 */

/** Every code this package raises. */
export const EXPERIMENTS_ERROR_CODES = ['EXPERIMENTS_BAD_INPUT', 'EXPERIMENTS_BAD_ARGS', 'EXPERIMENTS_RUN_FAILED', 'EXPERIMENTS_UNKNOWN_DATASET'] as const;

/** One of {@link EXPERIMENTS_ERROR_CODES}. */
export type ExperimentsErrorCode = (typeof EXPERIMENTS_ERROR_CODES)[number];

/** An error with a machine-readable code from {@link EXPERIMENTS_ERROR_CODES}. */
export class ExperimentsError extends Error {
  override readonly name = 'ExperimentsError';

  constructor(
    readonly code: ExperimentsErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** True when `err` is an {@link ExperimentsError}, optionally with the given code. */
export function isExperimentsError(err: unknown, code?: ExperimentsErrorCode): err is ExperimentsError {
  return err instanceof ExperimentsError && (code === undefined || err.code === code);
}
