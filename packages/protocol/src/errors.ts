/**
 * Refusal codes and acknowledgement shapes of the wire protocol. Browser-safe: no Node APIs.
 *
 * Every acknowledgement is `{ok: true, …}` or `{ok: false, error: {code, message}}` with `code` from
 * the closed set below, so clients switch on codes and never parse messages. Messages are short,
 * human-readable and never carry a stack trace.
 */
import type { FlCoreErrorCode } from '@chorus/fl-core';

/** Every code the coordinator may refuse a client request with. */
export const PROTOCOL_ERROR_CODES = [
  'AUTH_REQUIRED',
  'AUTH_INVALID',
  'BAD_PAYLOAD',
  'PROTOCOL_VERSION',
  'NOT_JOINED',
  'NOT_SELECTED',
  'ROUND_CLOSED',
  'LATE_UPDATE',
  'DUPLICATE_UPDATE',
  'UPDATE_TOO_LARGE',
  'UPDATE_MALFORMED',
  'UPDATE_SHAPE',
  'UPDATE_NON_FINITE',
  'UPDATE_NORM',
  'RATE_LIMITED',
  /** A new identity needs a solved proof-of-work challenge (ask with `challenge`, then say hello with `proof`). */
  'PROOF_REQUIRED',
  /** The proof does not solve the challenge this connection was issued, or the challenge expired. */
  'PROOF_INVALID',
  /** No new identity now: the task's or this address's quota of new identities is used up for the moment. */
  'IDENTITY_LIMIT',
  /** The task admits new identities by invitation only; the open join link is closed. */
  'OPEN_LINK_CLOSED',
  /** The invitation (or the identity issued through it) was revoked. */
  'INVITATION_REVOKED',
  /** The invitation has issued every identity its quota allows. */
  'INVITATION_EXHAUSTED',
  'TASK_NOT_FOUND',
  'TASK_FINISHED',
  'TASK_STOPPED',
  /** The node leading the task's rounds did not answer (it may be changing): send the update again, or wait for the next round. */
  'NODE_UNAVAILABLE',
  /** The edge's queue of split steps is full: send the same step again after a short wait. */
  'EDGE_BUSY',
  /** A split step out of order: not the step the edge expects from this client now (or a backward without its forward). */
  'SPLIT_STEP',
  'INTERNAL',
] as const;

/** One of {@link PROTOCOL_ERROR_CODES}. */
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/** The error half of an acknowledgement. */
export interface ProtocolErrorBody {
  readonly code: ProtocolErrorCode;
  readonly message: string;
}

/** A refusal. */
export interface AckError {
  readonly ok: false;
  readonly error: ProtocolErrorBody;
}

/** Success carrying `T`'s fields, or a coded refusal. */
export type Ack<T extends object = object> = ({ readonly ok: true } & T) | AckError;

/** True when `value` is one of {@link PROTOCOL_ERROR_CODES}. */
export function isProtocolErrorCode(value: unknown): value is ProtocolErrorCode {
  return typeof value === 'string' && (PROTOCOL_ERROR_CODES as readonly string[]).includes(value);
}

/** Builds a refusal acknowledgement. */
export function ackError(code: ProtocolErrorCode, message: string): AckError {
  return { ok: false, error: { code, message } };
}

/** An error carrying a protocol code; handlers turn it into {@link ackError} and never rethrow it. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';

  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The refusal a coordinator sends for a representation upload that fl-core's
 * `validateRepresentations` refused with `code`: size → `UPDATE_TOO_LARGE`, NaN/±Infinity →
 * `UPDATE_NON_FINITE`, wrong modalities or shape → `UPDATE_SHAPE`, anything else about the bytes →
 * `UPDATE_MALFORMED`; `REP_BAD_CONFIG` (the coordinator's own expectations were malformed) → `INTERNAL`.
 */
export function representationRefusalCode(code: FlCoreErrorCode): ProtocolErrorCode {
  switch (code) {
    case 'REP_TOO_LARGE':
      return 'UPDATE_TOO_LARGE';
    case 'REP_NON_FINITE':
      return 'UPDATE_NON_FINITE';
    case 'REP_MODALITIES':
    case 'REP_SHAPE':
      return 'UPDATE_SHAPE';
    case 'REP_BAD_CONFIG':
      return 'INTERNAL';
    default:
      return 'UPDATE_MALFORMED';
  }
}

/**
 * The protocol code of a split step the edge refused with `code` (an fl-core `CODEC_*` or `SPLIT_*`
 * code, or the edge's own): too large → `UPDATE_TOO_LARGE`, NaN/±Infinity → `UPDATE_NON_FINITE`,
 * wrong tensors or shapes → `UPDATE_SHAPE`, a step out of order or without its forward →
 * `SPLIT_STEP`, the edge's own misconfiguration → `INTERNAL`, anything else about the bytes →
 * `UPDATE_MALFORMED`.
 */
export function splitRefusalCode(code: string): ProtocolErrorCode {
  switch (code) {
    case 'CODEC_TOO_LARGE':
      return 'UPDATE_TOO_LARGE';
    case 'CODEC_NON_FINITE':
      return 'UPDATE_NON_FINITE';
    case 'SPLIT_BAD_SHAPE':
      return 'UPDATE_SHAPE';
    case 'SPLIT_WRONG_STEP':
    case 'SPLIT_NO_FORWARD':
    case 'SPLIT_NOT_OPEN':
      return 'SPLIT_STEP';
    case 'SPLIT_BAD_CONFIG':
      return 'INTERNAL';
    default:
      return 'UPDATE_MALFORMED';
  }
}
