/**
 * The edge of a split task (FedUMM's device–edge split, Su et al. 2026, arXiv:2601.15390 §3.3), as
 * the coordinator runs it: the fusion network lives in the task's evaluator process (which owns
 * TF.js), and this class admits each client's split steps before they reach it.
 *
 * Admission, enforced here before the evaluator sees a byte:
 *  - the attempt: the step names the open attempt (`ROUND_CLOSED` otherwise; the engine checks that
 *    the client was selected and has not uploaded, `splitStepRefusal`);
 *  - the order: each client sends step s forward, then step s backward, then step s + 1 forward,
 *    one message at a time (`SPLIT_STEP` otherwise), so a client can never make the edge hold more
 *    than one of its steps;
 *  - backpressure: at most `maxPendingSteps` steps of the task are queued at or computing in the
 *    evaluator; one more is refused with `EDGE_BUSY` at once (the client waits and sends the same
 *    step again), so a slow edge slows its clients instead of queueing without bound.
 * The evaluator then checks the bytes (codec, kind, sender, step, shapes, finiteness, size); its
 * refusals map onto protocol codes (`splitRefusalCode`) and leave the step where it was.
 *
 * A client that goes away mid-step costs the edge that step only: `drop` forgets its pending
 * forward, and a forward whose backward never comes is dropped after `stepTimeoutMs` by the
 * evaluator. An evaluator that restarted mid-attempt (it crashed, or was retired for memory) has
 * lost the attempt's edge: the service opens the attempt again from its starting weights, and the
 * steps trained since are lost (logged).
 */
import { decodeUpdate, encodeUpdate } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import { ackError, splitRefusalCode } from '@chorus/protocol';
import type { Ack, ParsedSplitStep, SplitStepResult, SplitTaskConfig } from '@chorus/protocol';
import type { Logger } from 'pino';
import { isCoordinatorError } from '../errors.js';
import type { SplitEdge } from '../engine/splitRounds.js';

/** What the edge service asks of the evaluator process (implemented by `EvaluatorProcess.split`). */
export interface EdgeOps {
  open(roundId: string, edge: Uint8Array): Promise<void>;
  close(roundId: string): Promise<void>;
  step(request: {
    readonly direction: 'forward' | 'backward';
    readonly roundId: string;
    readonly clientId: string;
    readonly step: number;
    readonly batchSize: number;
    readonly payload: Uint8Array;
  }): Promise<Uint8Array>;
  drop(clientId: string): Promise<void>;
  weights(): Promise<Uint8Array>;
}

/** Where one client is in the open attempt. */
interface ClientSteps {
  /** The step it may send next. */
  step: number;
  /** Which half of `step` comes next. */
  half: 'forward' | 'backward';
  /** A message of this client is at the evaluator. */
  inFlight: boolean;
}

/** Figures of the edge since the task started. */
export interface EdgeStats {
  readonly forwardSteps: number;
  readonly backwardSteps: number;
  readonly busyRefusals: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly reopened: number;
}

/** Options of {@link EdgeService}. */
export interface EdgeServiceOptions {
  readonly taskId: string;
  readonly split: SplitTaskConfig;
  readonly ops: EdgeOps;
  readonly logger?: Logger;
}

/** The coordinator's edge of one split task; see the module comment. */
export class EdgeService implements SplitEdge {
  private roundId: string | null = null;
  /** Codec bytes of the open attempt's starting edge (to open it again after an evaluator restart). */
  private startEdge: Uint8Array | null = null;
  private readonly clients = new Map<string, ClientSteps>();
  private pending = 0;
  private stats = { forwardSteps: 0, backwardSteps: 0, busyRefusals: 0, bytesIn: 0, bytesOut: 0, reopened: 0 };

  constructor(private readonly options: EdgeServiceOptions) {}

  /** Figures since the task started. */
  get figures(): EdgeStats {
    return { ...this.stats };
  }

  open(roundId: string, edge: Parameters): void {
    this.roundId = roundId;
    this.clients.clear();
    this.startEdge = encodeUpdate({ kind: 'model', taskId: this.options.taskId, round: 0, clientId: '', encoding: 'fp32', tensors: [...edge] });
    const start = this.startEdge;
    // Not awaited: the evaluator serves requests in arrival order, so every step of the attempt queues behind it.
    this.options.ops.open(roundId, start).catch((err: unknown) => this.options.logger?.error({ err, roundId }, 'the edge could not open the attempt'));
  }

  close(roundId: string): void {
    if (this.roundId !== roundId) return;
    this.roundId = null;
    this.clients.clear();
    this.options.ops.close(roundId).catch((err: unknown) => this.options.logger?.warn({ err, roundId }, 'the edge could not close the attempt'));
  }

  async weights(): Promise<Parameters> {
    const bytes = await this.options.ops.weights();
    return decodeUpdate(bytes, { maxBytes: bytes.byteLength }).tensors;
  }

  /** Forgets `clientId`'s steps (its connection closed). */
  drop(clientId: string): void {
    if (!this.clients.delete(clientId)) return;
    this.options.ops.drop(clientId).catch((err: unknown) => this.options.logger?.warn({ err, clientId }, 'the edge could not drop a client'));
  }

  /** Admits one half of `clientId`'s step (see the module comment) and answers with the edge's half. Never throws. */
  async step(clientId: string, message: ParsedSplitStep): Promise<Ack<SplitStepResult>> {
    const direction = message.type === 'split-forward' ? 'forward' : 'backward';
    const roundId = this.roundId;
    if (roundId === null || message.roundId !== roundId) return ackError('ROUND_CLOSED', `round ${message.roundId} is not open at the edge`);
    const state = this.clients.get(clientId) ?? { step: 0, half: 'forward', inFlight: false };
    if (state.inFlight) return ackError('SPLIT_STEP', 'one split message at a time: wait for the previous one’s answer');
    if (message.step !== state.step || direction !== state.half)
      return ackError('SPLIT_STEP', `the edge expects step ${state.step} ${state.half}, got step ${message.step} ${direction}`);
    if (this.pending >= this.options.split.maxPendingSteps) {
      this.stats.busyRefusals++;
      return ackError('EDGE_BUSY', `the edge holds ${this.pending} steps; send this one again shortly`);
    }
    this.clients.set(clientId, state);
    state.inFlight = true;
    this.pending++;
    try {
      const request = { direction, roundId, clientId, step: message.step, batchSize: message.batchSize, payload: message.payload } as const;
      let payload: Uint8Array;
      try {
        payload = await this.options.ops.step(request);
      } catch (err) {
        if (remoteCode(err) !== 'SPLIT_NOT_OPEN' || this.roundId !== roundId || this.startEdge === null) throw err;
        // The evaluator restarted and lost the attempt: open it again from its start, then this step once more.
        this.stats.reopened++;
        this.options.logger?.warn({ roundId }, 'the evaluator lost the edge mid-attempt; starting the attempt’s edge again');
        await this.options.ops.open(roundId, this.startEdge);
        if (direction === 'backward') return ackError('SPLIT_STEP', 'the edge restarted and lost this step’s forward; the round goes on without it');
        payload = await this.options.ops.step(request);
      }
      if (this.roundId !== roundId) return ackError('ROUND_CLOSED', `round ${roundId} closed during the step`);
      if (direction === 'forward') {
        state.half = 'backward';
        this.stats.forwardSteps++;
      } else {
        state.half = 'forward';
        state.step++;
        this.stats.backwardSteps++;
      }
      this.stats.bytesIn += message.payload.byteLength;
      this.stats.bytesOut += payload.byteLength;
      return { ok: true, step: message.step, payload };
    } catch (err) {
      const code = remoteCode(err);
      if (code === null) {
        this.options.logger?.error({ err, clientId, step: message.step }, 'split step failed');
        return ackError('INTERNAL', 'the edge failed on this step');
      }
      return ackError(splitRefusalCode(code), remoteMessage(err));
    } finally {
      state.inFlight = false;
      this.pending--;
    }
  }
}

/**
 * The evaluator's own error code of an `EVALUATOR_ERROR`; null for any other failure. A
 * CoordinatorError's message starts with its own code, so the evaluator's code is the second one:
 * "EVALUATOR_ERROR: SPLIT_BAD_SHAPE: …".
 */
function remoteCode(err: unknown): string | null {
  if (!isCoordinatorError(err, 'EVALUATOR_ERROR')) return null;
  return /^EVALUATOR_ERROR: ([A-Z][A-Z0-9_]*): /.exec(err.message)?.[1] ?? null;
}

/** The evaluator's text without the codes that lead it (the coordinator's, the evaluator's, fl-core's own). */
function remoteMessage(err: unknown): string {
  return err instanceof Error ? err.message.replace(/^(?:[A-Z][A-Z0-9_]*: )+/, '') : String(err);
}
