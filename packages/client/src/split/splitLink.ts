/**
 * The client's end of a split step over the wire (FedUMM's device–edge split, Su et al. 2026,
 * arXiv:2601.15390 §3.3): a `SplitLink` whose halves are the protocol's acknowledged
 * `splitForward` / `splitBackward` events, for `runSplitRound`.
 *
 * Failure behaviour, enforced here: an edge whose queue is full refuses a step with `EDGE_BUSY`,
 * and the link sends the SAME half again after a wait (50 ms, doubling, at most 1 s) as long as
 * the wait ends before the round's deadline; every other refusal, a half not acknowledged within
 * the round's `stepTimeoutMs` (or lost with the connection), a malformed acknowledgement, or a
 * cancelled round rejects with `CLIENT_SPLIT_FAILED` (carrying the edge's protocol code when it
 * refused), which gives the round up. The link never retries anything but `EDGE_BUSY`: a step
 * whose acknowledgement was lost may have moved the edge, so sending it again would be wrong.
 *
 * The transport ({@link SplitStepSender}), the clock and the sleep are passed in, so the retry
 * rule is tested with fakes; {@link socketStepSender} is the real transport over a client socket.
 */
import type { SplitLink } from '@chorus/models';
import { PROTOCOL_VERSION, binarySchema, isProtocolErrorCode } from '@chorus/protocol';
import type { Ack, ProtocolErrorCode, SplitStepPayload, SplitStepResult } from '@chorus/protocol';
import type { ClientSocket } from '../connection.js';
import { ClientError } from '../errors.js';

/** The event carrying one half of a split step. */
export type SplitStepEvent = 'splitForward' | 'splitBackward';

/**
 * Sends one half of a split step and resolves with the edge's acknowledgement, unparsed (types are
 * not validation); rejects when none came within `timeoutMs` or the connection is gone.
 */
export type SplitStepSender = (event: SplitStepEvent, payload: SplitStepPayload, timeoutMs: number) => Promise<unknown>;

/** First wait after an `EDGE_BUSY` refusal (ms); each further refusal of the same half doubles it. */
export const EDGE_BUSY_FIRST_WAIT_MS = 50;
/** Longest wait between two sends of the same half (ms). */
export const EDGE_BUSY_MAX_WAIT_MS = 1000;

/** Options of {@link createSplitLink}. */
export interface SplitLinkOptions {
  readonly taskId: string;
  /** The round attempt the steps belong to. */
  readonly roundId: string;
  readonly send: SplitStepSender;
  /** How long each half waits for its acknowledgement (the round config's `stepTimeoutMs`). */
  readonly stepTimeoutMs: number;
  /** Epoch ms after which the round's upload is refused: no `EDGE_BUSY` wait may end later. */
  readonly deadlineAt: number;
  /** Clock, epoch ms (the deadline's). */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** True once the round is abandoned (stopped, disconnected): no further half is sent. */
  readonly cancelled?: () => boolean;
}

/** A {@link SplitLink} over `options.send`; see the module comment for its retry and failure rules. */
export function createSplitLink(options: SplitLinkOptions): SplitLink {
  const { taskId, roundId, stepTimeoutMs } = options;
  if (!(Number.isInteger(stepTimeoutMs) && stepTimeoutMs > 0))
    throw new ClientError('CLIENT_BAD_CONFIG', `createSplitLink: stepTimeoutMs must be a positive integer, got ${stepTimeoutMs}`);
  const cancelled = options.cancelled ?? ((): boolean => false);
  const half = async (event: SplitStepEvent, step: number, batchSize: number, payload: Uint8Array): Promise<Uint8Array> => {
    const type = event === 'splitForward' ? 'split-forward' : 'split-backward';
    const what = `split step ${step} (${type})`;
    const message: SplitStepPayload = { type, protocolVersion: PROTOCOL_VERSION, taskId, roundId, step, batchSize, payload };
    for (let wait = EDGE_BUSY_FIRST_WAIT_MS; ; wait = Math.min(2 * wait, EDGE_BUSY_MAX_WAIT_MS)) {
      if (cancelled()) throw new ClientError('CLIENT_SPLIT_FAILED', `${what}: the round was abandoned`);
      let ack: unknown;
      try {
        ack = await options.send(event, message, stepTimeoutMs);
      } catch (err) {
        throw new ClientError('CLIENT_SPLIT_FAILED', `${what}: not acknowledged within ${stepTimeoutMs} ms (${(err as Error).message})`);
      }
      const answer = readStepAck(ack, step);
      if ('payload' in answer) return answer.payload;
      const { code, message: why } = answer;
      if (code === 'EDGE_BUSY' && options.now() + wait < options.deadlineAt && !cancelled()) {
        await options.sleep(wait);
        continue;
      }
      const detail = code === 'EDGE_BUSY' ? `the edge stayed busy until the round's deadline (${why})` : `the edge refused it: ${why}`;
      throw new ClientError('CLIENT_SPLIT_FAILED', `${what}: ${detail}`, code);
    }
  };
  return {
    forward: (step, batchSize, payload) => half('splitForward', step, batchSize, payload),
    backward: (step, batchSize, payload) => half('splitBackward', step, batchSize, payload),
  };
}

/**
 * The edge's answer to `step`: its payload, or its coded refusal; throws `CLIENT_SPLIT_FAILED` for
 * anything else (the edge's bytes themselves are checked when the device decodes them).
 */
function readStepAck(ack: unknown, step: number): { readonly payload: Uint8Array } | { readonly code: ProtocolErrorCode; readonly message: string } {
  const malformed = (why: string): ClientError => new ClientError('CLIENT_SPLIT_FAILED', `split step ${step}: malformed acknowledgement (${why})`);
  if (typeof ack !== 'object' || ack === null) throw malformed('not an object');
  const a = ack as Partial<Ack<SplitStepResult>> & { error?: { code?: unknown; message?: unknown }; step?: unknown; payload?: unknown };
  if (a.ok === true) {
    if (a.step !== step) throw malformed(`it answers step ${String(a.step)}`);
    const payload = binarySchema.safeParse(a.payload);
    if (!payload.success) throw malformed('its payload is not binary');
    return { payload: payload.data };
  }
  if (a.ok === false && isProtocolErrorCode(a.error?.code)) {
    return { code: a.error.code, message: typeof a.error.message === 'string' ? a.error.message : '' };
  }
  throw malformed('neither ok nor a coded refusal');
}

/**
 * The real {@link SplitStepSender}: `socket.timeout(timeoutMs).emitWithAck(event, payload)` on the
 * socket `socket()` returns now; rejects at once when there is none or it is not connected
 * (socket.io would buffer the half until a reconnection the round cannot wait for).
 */
export function socketStepSender(socket: () => ClientSocket | null): SplitStepSender {
  return (event, payload, timeoutMs) => {
    const s = socket();
    if (!s?.connected) return Promise.reject(new Error('not connected'));
    return s.timeout(timeoutMs).emitWithAck(event, payload);
  };
}
