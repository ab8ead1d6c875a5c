/**
 * Coded errors the coordinator raises to its operator (bad task files, bad options, a store that
 * cannot be opened, an action a task's status does not allow). Client-facing refusals use the
 * protocol's codes instead (protocol/errors.ts).
 */

/** Every code {@link CoordinatorError} carries. */
export const COORDINATOR_ERROR_CODES = [
  'TASK_INVALID',
  'TASK_DUPLICATE',
  'TASK_UNKNOWN',
  'TASK_TRANSITION',
  'CONFIG_INVALID',
  'STORE_SCHEMA',
  'STORE_CONFLICT',
  'INVITATION_UNKNOWN',
  'INVITATION_REVOKED',
  'INVITATION_EXHAUSTED',
  'CHECKPOINT_CORRUPT',
  'EVALUATOR_EXITED',
  'EVALUATOR_TIMEOUT',
  'EVALUATOR_ERROR',
  /** A write that only a task's leading node may make, from a node that does not lead it (or no longer does). */
  'NOT_LEADER',
  /** A leader's write refused by Redis because its lease has passed to another node (a fenced write). */
  'FENCED',
  /** Redis could not be reached or answered with an error. */
  'CLUSTER_UNAVAILABLE',
] as const;

/** One of {@link COORDINATOR_ERROR_CODES}. */
export type CoordinatorErrorCode = (typeof COORDINATOR_ERROR_CODES)[number];

/** An operator-facing error with a machine-readable code. */
export class CoordinatorError extends Error {
  override readonly name = 'CoordinatorError';

  constructor(
    readonly code: CoordinatorErrorCode,
    message: string,
    /** Individual problems, each naming its path (e.g. `strategy.trimFraction: …`). */
    readonly issues: readonly string[] = [],
  ) {
    super(`${code}: ${message}`);
  }
}

/** True when `err` is a {@link CoordinatorError}, optionally with the given code. */
export function isCoordinatorError(err: unknown, code?: CoordinatorErrorCode): err is CoordinatorError {
  return err instanceof CoordinatorError && (code === undefined || err.code === code);
}
