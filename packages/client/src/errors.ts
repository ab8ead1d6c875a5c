/**
 * Coded errors of the client runtime. Every failure a caller can provoke (bad options, a refused
 * handshake, a global model the local model cannot hold) surfaces as a `ClientError` whose `code`
 * comes from the closed set below; refusals by the coordinator also carry its protocol code.
 */
import type { ProtocolErrorCode } from '@chorus/protocol';

/** Every code the client runtime raises or reports. */
export const CLIENT_ERROR_CODES = [
  'CLIENT_BAD_CONFIG',
  'CLIENT_CONNECT_REFUSED',
  'CLIENT_CONNECT_FAILED',
  'CLIENT_HELLO_REFUSED',
  'CLIENT_TIMEOUT',
  'CLIENT_BAD_ROUND',
  'CLIENT_MODEL_MISMATCH',
  'CLIENT_UPDATE_TOO_LARGE',
  'CLIENT_UPLOAD_REFUSED',
  'CLIENT_TRAINING_FAILED',
  'CLIENT_STORAGE',
  'CLIENT_DATASET',
  'CLIENT_CLOSED',
  /**
   * A split round was given up mid-step: the edge refused a step (its protocol code rides along;
   * `EDGE_BUSY` only once the round's deadline left no time to try again), did not acknowledge it
   * in time, or answered malformed. Nothing is uploaded for the round.
   */
  'CLIENT_SPLIT_FAILED',
] as const;

/** One of {@link CLIENT_ERROR_CODES}. */
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** An error with a code from {@link CLIENT_ERROR_CODES}, and the coordinator's code when it refused something. */
export class ClientError extends Error {
  override readonly name = 'ClientError';

  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly protocolCode?: ProtocolErrorCode,
  ) {
    super(`${code}: ${message}`);
  }
}

/** True when `err` is a {@link ClientError}, optionally with the given code. */
export function isClientError(err: unknown, code?: ClientErrorCode): err is ClientError {
  return err instanceof ClientError && (code === undefined || err.code === code);
}
