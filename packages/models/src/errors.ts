/**
 * Coded errors raised by @chorus/models. Callers (the web client, headless clients, the
 * coordinator's probe evaluator) switch on `code`, never on `message`. Layout mismatches of
 * parameter lists keep fl-core's `PARAMS_MISMATCH` so both packages report them alike.
 */

/** Every code this package raises. */
export const MODELS_ERROR_CODES = ['MODELS_BAD_CONFIG', 'MODELS_BAD_INPUT', 'MODELS_BAD_BASE', 'MODELS_BAD_ARTIFACTS', 'MODELS_BACKEND_UNAVAILABLE'] as const;

/** One of {@link MODELS_ERROR_CODES}. */
export type ModelsErrorCode = (typeof MODELS_ERROR_CODES)[number];

/** An error with a machine-readable code from {@link MODELS_ERROR_CODES}. */
export class ModelsError extends Error {
  override readonly name = 'ModelsError';

  /**
   * @param field the path of the offending field in a plain spec or config (`spec.arch`), when the
   *   error is about one; callers show it next to their own path (a task file's `clients[2].arch`).
   */
  constructor(
    readonly code: ModelsErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** True when `err` is a {@link ModelsError}, optionally with the given code. */
export function isModelsError(err: unknown, code?: ModelsErrorCode): err is ModelsError {
  return err instanceof ModelsError && (code === undefined || err.code === code);
}

/** Throws `MODELS_BAD_CONFIG` (naming `field`) unless `value` is an integer ≥ `min`. */
export function checkInt(fn: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: ${field} must be an integer ≥ ${min}, got ${String(value)}`, field);
  }
  return value;
}

/** Throws `MODELS_BAD_CONFIG` (naming `field`) unless `value` is a finite number > 0. */
export function checkPositive(fn: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: ${field} must be a finite number > 0, got ${String(value)}`, field);
  }
  return value;
}
