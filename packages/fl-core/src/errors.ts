/**
 * Coded errors raised by fl-core. Every failure a caller can provoke with bad input surfaces as a
 * `FlCoreError` whose `code` comes from a closed set, so adapters (socket handlers, loaders) can map
 * it to a refusal without parsing messages.
 */

/** Every code fl-core can raise. Adapters switch on these; never on `message`. */
export const FL_CORE_ERROR_CODES = [
  // wire codec
  'CODEC_TOO_LARGE',
  'CODEC_TRUNCATED',
  'CODEC_BAD_MAGIC',
  'CODEC_BAD_VERSION',
  'CODEC_BAD_ENCODING',
  'CODEC_BAD_HEADER',
  'CODEC_BAD_SHAPE',
  'CODEC_BAD_LENGTH',
  'CODEC_NON_FINITE',
  'CODEC_CHECKSUM',
  'CODEC_TRAILING_BYTES',
  'CODEC_OUT_OF_RANGE',
  'CODEC_BAD_CONFIG',
  // parameters and aggregation
  'PARAMS_MISMATCH',
  'PARAMS_NON_FINITE',
  'AGG_NO_UPDATES',
  'AGG_BAD_WEIGHTS',
  'AGG_BAD_CONFIG',
  'AGG_TOO_FEW_CLIENTS',
  'AGG_BAD_STATE',
  'AGG_BAD_PARTIAL',
  // partitioning, privacy, trust, metrics
  'PARTITION_BAD_CONFIG',
  'PRIVACY_BAD_CONFIG',
  'TRUST_BAD_CONFIG',
  'TRUST_BAD_INPUT',
  'METRICS_BAD_INPUT',
  // representation rounds (FedAFD family): strategy config, server-side input, client uploads
  'REP_BAD_CONFIG',
  'REP_BAD_INPUT',
  'REP_TOO_LARGE',
  'REP_MALFORMED',
  'REP_NON_FINITE',
  'REP_SHAPE',
  'REP_MODALITIES',
  // device–edge split (FedUMM secure interface): see split/secureInterface.ts
  'SPLIT_BAD_CONFIG',
  'SPLIT_NON_FINITE',
  'SPLIT_BAD_PAYLOAD',
  'SPLIT_WRONG_SENDER',
  'SPLIT_WRONG_STEP',
  'SPLIT_BAD_SHAPE',
  /** The edge holds no open attempt of that id (it was closed, or the edge restarted). */
  'SPLIT_NOT_OPEN',
  /** A backward half whose forward the edge does not hold (never sent, dropped, or expired). */
  'SPLIT_NO_FORWARD',
] as const;

/** One of {@link FL_CORE_ERROR_CODES}. */
export type FlCoreErrorCode = (typeof FL_CORE_ERROR_CODES)[number];

/** An error with a machine-readable code from {@link FL_CORE_ERROR_CODES}. */
export class FlCoreError extends Error {
  override readonly name = 'FlCoreError';

  constructor(
    readonly code: FlCoreErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** True when `err` is an {@link FlCoreError}, optionally with the given code. */
export function isFlCoreError(err: unknown, code?: FlCoreErrorCode): err is FlCoreError {
  return err instanceof FlCoreError && (code === undefined || err.code === code);
}
