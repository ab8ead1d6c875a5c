/**
 * The round engine of one task: waiting room → sampled round → validated updates → aggregation →
 * checkpoint, over and over until the task's rounds are done.
 *
 * Invariants, enforced here:
 * - One attempt at a time. An attempt closes exactly once: when `target` valid updates arrived, when
 *   the deadline passes, or as soon as the updates still possible cannot reach `minClients`. A closed
 *   attempt with too few updates (or an aggregation that yields no model) is retried with a fresh
 *   sample, up to `maxRoundAttempts`, after which the task is marked failed — never a hang.
 * - The global model changes only after the store committed the round (one transaction), so what
 *   clients see always equals the last checkpoint on disk. Resuming reads that checkpoint back.
 * - A refused update changes nothing but the refusal log and counters.
 * - Each selected client settles at most once per attempt: accepted, refused, or dropped on
 *   disconnect. A dropped client that comes back waits for the next attempt.
 * - A researcher's action changes the status only along `taskControl.ts`'s table, and the store
 *   holds the new status before anything else happens, so a restart resumes in it (a paused task
 *   comes back paused). A paused task finishes the attempt in flight and opens no new one; a
 *   stopped task closes the attempt in flight without a model (recorded as a retry with the reason
 *   "task stopped") and keeps its last checkpoint.
 *
 * The engine knows nothing of sockets: it talks to clients through {@link EngineTransport}.
 */
import { createHash } from 'node:crypto';
import { decodeUpdate, encodeUpdate } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import type { Logger } from 'pino';
import { CoordinatorError } from '../errors.js';
import type { CoordinatorMetrics } from '../http/metrics.js';
import { ProtocolError } from '@chorus/protocol';
import type { Ack, ProtocolErrorCode } from '@chorus/protocol';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { Capabilities, ParsedUpdate, RoundConfig, RoundEndPayload, RoundStartPayload, TaskEndPayload, UpdateResult } from '@chorus/protocol';
import type { TaskAction } from '@chorus/protocol';
import type { CoordinatorStore, StoredStrategyState, TaskStatus } from '../store/types.js';
import type { TaskConfig } from '../task/taskSchema.js';
import type { Aggregator, AggregateOutcome, FitFailure, FitResult } from './aggregator.js';
import { roundRng, sampleClients, selectionSize } from './sampling.js';
import { controlTarget } from './taskControl.js';
import { validateUpdate } from './validateUpdate.js';

/** Time source and timers; injectable for tests. */
export interface EngineClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const systemClock: EngineClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** How the engine reaches clients. Implementations must not throw. */
export interface EngineTransport {
  /** Sends one round start to every listed client (one encoding of the weights for all of them). */
  sendRoundStart(clientIds: readonly string[], payload: RoundStartPayload): void;
  /** Tells every client of the task that an attempt closed. */
  broadcastRoundEnd(payload: RoundEndPayload): void;
  /** Tells every client of the task that it ended. */
  broadcastTaskEnd(payload: TaskEndPayload): void;
}

/** Construction options of {@link RoundEngine}. */
export interface RoundEngineOptions {
  readonly task: TaskConfig;
  readonly store: CoordinatorStore;
  readonly aggregator: Aggregator;
  readonly transport: EngineTransport;
  /** Initial global parameters, used only when the store holds no checkpoint for the task. */
  readonly initialGlobal: () => Parameters;
  readonly logger: Logger;
  readonly metrics: CoordinatorMetrics;
  readonly clock?: EngineClock;
  /** Pause before retrying an attempt, so a broken round does not spin (default 500 ms). */
  readonly retryDelayMs?: number;
  /** Round config fields a strategy adds for clients (e.g. FedProx's `proximalMu`). */
  readonly strategyConfig?: RoundConfig['strategy'];
  /**
   * Evaluates a new global model before its round is committed (server-side accuracy and loss);
   * the figures are stored with the round's metrics. A throw is logged and the round goes on.
   */
  readonly evaluateGlobal?: (serverRound: number, parameters: Parameters) => Readonly<Record<string, number>> | Promise<Readonly<Record<string, number>>>;
  /** Called after each round is committed, for live dashboards. Must not throw. */
  readonly onRoundCompleted?: (summary: RoundSummary) => void;
  /** Called after each stored change of the task's status, for live dashboards. Must not throw. */
  readonly onStatusChanged?: (change: StatusChange) => void;
}

/** A stored change of a task's status. */
export interface StatusChange {
  readonly taskId: string;
  readonly status: TaskStatus;
  readonly previous: TaskStatus;
  /** The researcher's action, or null when the rounds themselves moved the task on. */
  readonly action: TaskAction | null;
  readonly reason?: string;
  readonly at: number;
}

/** A committed round, as streamed to dashboards. */
export interface RoundSummary {
  readonly taskId: string;
  readonly serverRound: number;
  readonly attempt: number;
  readonly globalHash: string;
  readonly metrics: Readonly<Record<string, number>>;
  readonly trust: readonly { readonly clientId: string; readonly trust: number }[];
}

/** The engine's state, for the admin API and dashboard. */
export interface EngineSnapshot {
  readonly taskId: string;
  readonly status: TaskStatus;
  readonly phase: Phase;
  readonly completedRounds: number;
  readonly totalRounds: number;
  readonly waiting: number;
  readonly globalHash: string;
  readonly openRound: {
    readonly serverRound: number;
    readonly attempt: number;
    readonly roundId: string;
    readonly selected: number;
    readonly accepted: number;
    readonly settled: number;
    readonly target: number;
    readonly deadlineAt: number;
  } | null;
}

/** Round mechanics; `shutdown` before {@link RoundEngine.start} and after {@link RoundEngine.stop}. */
type Phase = 'idle' | 'open' | 'closing' | 'finished' | 'failed' | 'stopped' | 'shutdown';

interface Participant {
  readonly modalities: readonly string[];
  readonly numExamples: number;
}

interface OpenAttempt {
  readonly serverRound: number;
  readonly attempt: number;
  readonly roundId: string;
  readonly selected: ReadonlySet<string>;
  readonly target: number;
  readonly deadlineAt: number;
  readonly deadlineTimer: unknown;
  readonly results: FitResult[];
  readonly failures: FitFailure[];
  /** Clients that uploaded (accepted or refused) this attempt. */
  readonly uploaded: Set<string>;
  /** Selected clients that disconnected before uploading. */
  readonly dropped: Set<string>;
  bytesIn: number;
  normSum: number;
}

interface GlobalModel {
  readonly tensors: Parameters;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

/** SHA-256 of bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Encodes a global model as codec bytes (kind: model, fp32: lossless, so resume is byte-identical). */
export function encodeGlobal(taskId: string, serverRound: number, tensors: Parameters): Uint8Array {
  return encodeUpdate({ kind: 'model', taskId, round: serverRound, clientId: '', encoding: 'fp32', tensors });
}

/** Runs one task's rounds; see the module comment for its invariants. */
export class RoundEngine {
  private readonly task: TaskConfig;
  private readonly clock: EngineClock;
  private readonly log: Logger;
  private readonly waiting = new Map<string, Participant>();
  private phase: Phase = 'shutdown';
  private status: TaskStatus = 'waiting';
  /** An explicit start asked for the next round to open without waiting out the waiting room. */
  private startRequested = false;
  /** Started explicitly or by a round opening: what a resume goes back to (running, else waiting). */
  private started = false;
  private global!: GlobalModel;
  private completedRounds = 0;
  private nextAttempt = 1;
  private current: OpenAttempt | null = null;
  /** Id of the attempt that closed last, to tell a late upload from one for an unknown round. */
  private lastClosedRoundId: string | null = null;
  private pendingTimer: unknown = null;
  /** When, since the engine last became idle, minClients were first waiting (null: not yet). */
  private waitingSince: number | null = null;
  private waitingTimer: unknown = null;

  constructor(private readonly options: RoundEngineOptions) {
    this.task = options.task;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ task: options.task.id });
  }

  /** Loads the last checkpoint (or stores the initial model as round 0) and starts accepting clients. */
  start(): void {
    const { store, task } = this.options;
    const now = this.clock.now();
    const abandoned = store.abandonOpenRounds(task.id, now);
    let checkpoint = store.latestCheckpoint(task.id);
    if (!checkpoint) {
      const tensors = this.options.initialGlobal();
      const bytes = encodeGlobal(task.id, 0, tensors);
      store.saveInitialCheckpoint({ taskId: task.id, bytes, sha256: sha256Hex(bytes), strategyState: null, createdAt: now });
      checkpoint = store.latestCheckpoint(task.id)!;
    }
    if (sha256Hex(checkpoint.bytes) !== checkpoint.sha256) {
      throw new CoordinatorError('CHECKPOINT_CORRUPT', `checkpoint of round ${checkpoint.serverRound} of ${task.id} does not match its hash`);
    }
    let tensors: Tensor[];
    try {
      tensors = decodeUpdate(checkpoint.bytes, { maxBytes: checkpoint.bytes.byteLength }).tensors;
    } catch (err) {
      throw new CoordinatorError('CHECKPOINT_CORRUPT', `checkpoint of round ${checkpoint.serverRound} of ${task.id}: ${(err as Error).message}`);
    }
    if (checkpoint.strategyState) this.options.aggregator.importState(decodeStrategyState(checkpoint.strategyState));
    this.global = { tensors, bytes: checkpoint.bytes, sha256: checkpoint.sha256 };
    this.completedRounds = checkpoint.serverRound;
    const attempts = store.listRounds(task.id).filter((r) => r.serverRound === this.completedRounds + 1);
    this.nextAttempt = attempts.reduce((m, r) => Math.max(m, r.attempt), 0) + 1;
    const lastMetrics = store.listMetrics(task.id).at(-1);
    if (lastMetrics?.metrics['epsilon'] !== undefined) this.options.metrics.epsilon.set({ task: task.id }, lastMetrics.metrics['epsilon']);
    const stored = store.getTask(task.id)?.status ?? 'waiting';
    this.phase = stored === 'failed' ? 'failed' : stored === 'stopped' ? 'stopped' : this.completedRounds >= task.rounds ? 'finished' : 'idle';
    this.status = this.phase === 'idle' ? stored : this.phase;
    // A start that was stored before any round opened still skips the waiting room after a restart.
    this.startRequested = this.status === 'running' && this.completedRounds === 0 && attempts.length === 0;
    // A task paused after an explicit start but before any round comes back as not started (waiting).
    this.started = stored === 'running' || this.completedRounds > 0 || store.listRounds(task.id).length > 0;
    this.log.info({ completedRounds: this.completedRounds, globalHash: this.global.sha256, abandonedAttempts: abandoned, phase: this.phase, status: this.status }, 'task loaded');
  }

  /**
   * Applies a researcher's action and returns the new status; throws `TASK_TRANSITION` (changing
   * nothing) when the status does not allow it. See `taskControl.ts` for the table.
   */
  control(action: TaskAction, reason?: string): TaskStatus {
    if (this.phase === 'shutdown') throw new CoordinatorError('TASK_TRANSITION', `task ${this.task.id} is not loaded`);
    const previous = this.status;
    const next = controlTarget(previous, action, this.started);
    if (next === null) throw new CoordinatorError('TASK_TRANSITION', `cannot ${action} task ${this.task.id}: it is ${previous}`);
    // Stored first: if the write fails, nothing else has changed.
    this.setStatus(next, action, reason);
    this.log.info({ action, previous, status: next, reason }, 'task control');
    switch (action) {
      case 'start':
        this.started = true;
        this.startRequested = true;
        this.scheduleStart(0);
        break;
      case 'pause':
        this.cancelPendingStart();
        break;
      case 'resume':
        this.scheduleStart(0);
        break;
      case 'stop':
        this.endByStop();
        break;
    }
    return next;
  }

  /** Stops timers; open attempts stay open in the store and are retried on the next start. */
  stop(): void {
    if (this.current) this.clock.clearTimeout(this.current.deadlineTimer);
    if (this.pendingTimer !== null) this.clock.clearTimeout(this.pendingTimer);
    if (this.waitingTimer !== null) this.clock.clearTimeout(this.waitingTimer);
    this.pendingTimer = null;
    this.waitingTimer = null;
    this.current = null;
    this.phase = 'shutdown';
  }

  /** Adds (or refreshes) a client in the waiting room. */
  join(clientId: string, capabilities: Capabilities): void {
    this.waiting.set(clientId, { modalities: capabilities.modalities, numExamples: capabilities.numExamples });
    this.options.metrics.participants.set({ task: this.task.id }, this.waiting.size);
    this.scheduleStart(0);
  }

  /** Removes a client; a selected client that has not uploaded is dropped from the open attempt. */
  leave(clientId: string): void {
    if (!this.waiting.delete(clientId)) return;
    this.options.metrics.participants.set({ task: this.task.id }, this.waiting.size);
    const cur = this.current;
    if (this.phase === 'open' && cur && cur.selected.has(clientId) && !cur.uploaded.has(clientId) && !cur.dropped.has(clientId)) {
      cur.dropped.add(clientId);
      cur.failures.push({ clientId, code: 'DISCONNECTED', message: 'disconnected before uploading' });
      this.log.info({ clientId, serverRound: cur.serverRound, attempt: cur.attempt }, 'selected client dropped');
      this.closeIfSettled(cur);
    }
  }

  /** Number of clients in the waiting room. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** SHA-256 of the current global model's codec bytes. */
  get globalHash(): string {
    return this.global.sha256;
  }

  /** The current global tensors (shared, do not mutate). */
  get globalParameters(): Parameters {
    return this.global.tensors;
  }

  /** Codec bytes of the current global model (shared, do not mutate). */
  get globalBytes(): Uint8Array {
    return this.global.bytes;
  }

  /** Judges one upload: accepted, or refused with a code; never throws. */
  submitUpdate(clientId: string, update: ParsedUpdate): Ack<UpdateResult> {
    try {
      return this.judge(clientId, update);
    } catch (err) {
      const code: ProtocolErrorCode = err instanceof ProtocolError ? err.code : 'INTERNAL';
      const message = err instanceof ProtocolError ? err.message : 'internal error';
      if (!(err instanceof ProtocolError)) this.log.error({ err, clientId }, 'update handling failed');
      this.refuse(clientId, update, code, message);
      return { ok: false, error: { code, message } };
    }
  }

  /** The engine's state for dashboards. */
  snapshot(): EngineSnapshot {
    const cur = this.current;
    return {
      taskId: this.task.id,
      status: this.status,
      phase: this.phase,
      completedRounds: this.completedRounds,
      totalRounds: this.task.rounds,
      waiting: this.waiting.size,
      globalHash: this.global.sha256,
      openRound: cur && {
        serverRound: cur.serverRound,
        attempt: cur.attempt,
        roundId: cur.roundId,
        selected: cur.selected.size,
        accepted: cur.results.length,
        settled: cur.uploaded.size + cur.dropped.size,
        target: cur.target,
        deadlineAt: cur.deadlineAt,
      },
    };
  }

  // -------------------------------------------------------------------------------------------

  private judge(clientId: string, update: ParsedUpdate): Ack<UpdateResult> {
    if (this.phase === 'stopped') throw new ProtocolError('TASK_STOPPED', `task ${this.task.id} was stopped`);
    if (this.phase === 'finished' || this.phase === 'failed') throw new ProtocolError('TASK_FINISHED', `task ${this.task.id} has ended`);
    if (update.taskId !== this.task.id) throw new ProtocolError('BAD_PAYLOAD', 'taskId does not match the connection');
    const cur = this.current;
    if (!cur || update.roundId !== cur.roundId) {
      if (update.roundId === this.lastClosedRoundId) throw new ProtocolError('LATE_UPDATE', `round ${update.roundId} has closed`);
      throw new ProtocolError('ROUND_CLOSED', `round ${update.roundId} is not open`);
    }
    if (update.serverRound !== cur.serverRound) throw new ProtocolError('BAD_PAYLOAD', `serverRound ${update.serverRound} does not match round ${cur.roundId}`);
    if (!cur.selected.has(clientId) || cur.dropped.has(clientId)) throw new ProtocolError('NOT_SELECTED', 'this client is not part of the open round');
    if (cur.uploaded.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', 'one upload per client per round');
    if (this.phase !== 'open' || this.clock.now() > cur.deadlineAt) throw new ProtocolError('LATE_UPDATE', 'the round is no longer accepting updates');

    // From here on the upload counts as this client's one upload for the attempt, valid or not, so a
    // client cannot probe the validator repeatedly within a round.
    cur.uploaded.add(clientId);
    cur.bytesIn += update.update.byteLength;
    this.options.metrics.bytesIn.inc({ task: this.task.id }, update.update.byteLength);
    const participant = this.waiting.get(clientId);
    let valid;
    try {
      valid = validateUpdate(update.update, {
        taskId: this.task.id,
        serverRound: cur.serverRound,
        clientId,
        modalities: participant?.modalities ?? [],
        global: this.global.tensors,
        maxUpdateBytes: this.task.maxUpdateBytes,
        normBound: this.task.normBound,
      });
    } catch (err) {
      if (err instanceof ProtocolError) {
        cur.failures.push({ clientId, code: err.code, message: err.message });
        this.closeIfSettled(cur);
      }
      throw err;
    }
    cur.results.push({ clientId, numExamples: update.numExamples, delta: valid.delta, metrics: update.metrics });
    cur.normSum += valid.norm;
    this.options.store.recordUpdate({
      taskId: this.task.id,
      serverRound: cur.serverRound,
      attempt: cur.attempt,
      clientId,
      status: 'accepted',
      code: null,
      message: null,
      numExamples: update.numExamples,
      byteLength: update.update.byteLength,
      receivedAt: this.clock.now(),
    });
    this.options.metrics.updates.inc({ task: this.task.id });
    this.log.debug({ clientId, serverRound: cur.serverRound, norm: valid.norm }, 'update accepted');
    this.closeIfSettled(cur);
    return { ok: true, serverRound: cur.serverRound, roundId: cur.roundId };
  }

  private refuse(clientId: string, update: ParsedUpdate, code: ProtocolErrorCode, message: string): void {
    this.options.metrics.rejections.inc({ task: this.task.id, code });
    this.log.info({ clientId, roundId: update.roundId, code, reason: message }, 'update refused');
    const cur = this.current;
    // Refusals for the open attempt are logged against it; others (stale rounds) against the round they named.
    const onCurrent = cur !== null && update.roundId === cur.roundId;
    try {
      this.options.store.recordUpdate({
        taskId: this.task.id,
        serverRound: onCurrent ? cur.serverRound : update.serverRound,
        attempt: onCurrent ? cur.attempt : 0,
        clientId,
        status: 'rejected',
        code,
        message,
        numExamples: update.numExamples,
        byteLength: update.update.byteLength,
        receivedAt: this.clock.now(),
      });
    } catch (err) {
      this.log.error({ err }, 'could not record a refusal');
    }
  }

  private scheduleStart(delayMs: number): void {
    if (this.phase !== 'idle' || this.status === 'paused' || this.pendingTimer !== null) return;
    this.pendingTimer = this.clock.setTimeout(() => {
      this.pendingTimer = null;
      this.tryStartRound();
    }, delayMs);
  }

  private tryStartRound(): void {
    if (this.phase !== 'idle' || this.status === 'paused' || this.waiting.size < this.task.minClients) return;
    const { task, store } = this.options;
    const full = selectionSize(Number.MAX_SAFE_INTEGER, task.clientsPerRound, task.overSelection).invite;
    const now = this.clock.now();
    this.waitingSince ??= now;
    if (!this.startRequested && this.waiting.size < full && now < this.waitingSince + task.waitingRoomMs) {
      // Enough to start, not enough to invite everyone: give latecomers until the window closes.
      if (this.waitingTimer === null) {
        this.waitingTimer = this.clock.setTimeout(() => {
          this.waitingTimer = null;
          this.tryStartRound();
        }, this.waitingSince + task.waitingRoomMs - now);
      }
      return;
    }
    if (this.waitingTimer !== null) {
      this.clock.clearTimeout(this.waitingTimer);
      this.waitingTimer = null;
    }
    const serverRound = this.completedRounds + 1;
    const attempt = this.nextAttempt;
    if (attempt > task.maxRoundAttempts) {
      this.fail(`round ${serverRound} failed ${task.maxRoundAttempts} attempts`);
      return;
    }
    this.nextAttempt++;
    const { invite, target } = selectionSize(this.waiting.size, task.clientsPerRound, task.overSelection);
    const selected = sampleClients(roundRng(task.seed, serverRound, attempt), this.waiting.keys(), invite);
    const roundId = `${task.id}.r${serverRound}.a${attempt}`;
    const deadlineAt = now + task.roundDeadlineMs;
    try {
      store.startRound({ taskId: task.id, serverRound, attempt, roundId, selected, startedAt: now });
      if (this.status === 'waiting') this.setStatus('running', null);
    } catch (err) {
      this.log.error({ err, serverRound, attempt }, 'could not open a round');
      this.scheduleStart(this.options.retryDelayMs ?? 500);
      return;
    }
    this.startRequested = false;
    this.started = true;
    this.current = {
      serverRound,
      attempt,
      roundId,
      selected: new Set(selected),
      target,
      deadlineAt,
      deadlineTimer: this.clock.setTimeout(() => this.onDeadline(roundId), task.roundDeadlineMs),
      results: [],
      failures: [],
      uploaded: new Set(),
      dropped: new Set(),
      bytesIn: 0,
      normSum: 0,
    };
    this.phase = 'open';
    this.log.info({ serverRound, attempt, selected: selected.length, target }, 'round started');
    this.options.transport.sendRoundStart(selected, {
      type: 'round-start',
      protocolVersion: PROTOCOL_VERSION,
      taskId: task.id,
      roundId,
      serverRound,
      attempt,
      deadlineAt,
      config: {
        localEpochs: task.localEpochs,
        batchSize: task.batchSize,
        learningRate: task.learningRate,
        uploadEncoding: task.uploadEncoding,
        maxUpdateBytes: task.maxUpdateBytes,
        normBound: task.normBound,
        modalWeight: task.model.modalWeight,
        head: task.model.head,
        adapterAlpha: task.model.adapterAlpha,
        strategy: { ...(this.options.strategyConfig ?? {}) },
      },
      globalHash: this.global.sha256,
      global: this.global.bytes,
    });
    this.options.metrics.bytesOut.inc({ task: task.id }, this.global.bytes.byteLength * selected.length);
  }

  private onDeadline(roundId: string): void {
    const cur = this.current;
    if (this.phase !== 'open' || !cur || cur.roundId !== roundId) return;
    for (const id of cur.selected) {
      if (!cur.uploaded.has(id) && !cur.dropped.has(id)) cur.failures.push({ clientId: id, code: 'TIMEOUT', message: 'no upload before the deadline' });
    }
    this.close(cur, 'deadline');
  }

  /** Closes the attempt once its outcome is decided: enough accepted, or no way left to reach the minimum. */
  private closeIfSettled(cur: OpenAttempt): void {
    if (this.phase !== 'open' || this.current !== cur) return;
    const outstanding = cur.selected.size - cur.uploaded.size - cur.dropped.size;
    if (cur.results.length >= cur.target) this.close(cur, 'target reached');
    else if (outstanding === 0) this.close(cur, 'every selected client settled');
    else if (cur.results.length + outstanding < this.minUpdates(cur)) this.close(cur, 'too few clients left');
  }

  private minUpdates(cur: OpenAttempt): number {
    return Math.min(this.task.minClients, cur.target);
  }

  private close(cur: OpenAttempt, why: string): void {
    this.phase = 'closing';
    this.clock.clearTimeout(cur.deadlineTimer);
    this.lastClosedRoundId = cur.roundId;
    // Aggregate on a later tick so the ack of the update that closed the round goes out first.
    this.clock.setTimeout(() => void this.finishAttempt(cur, why), 0);
  }

  private async finishAttempt(cur: OpenAttempt, why: string): Promise<void> {
    if (this.current !== cur || this.phase !== 'closing') return;
    if (cur.results.length < this.minUpdates(cur)) {
      this.retry(cur, `${why}: ${cur.results.length} valid updates, ${this.minUpdates(cur)} needed`);
      return;
    }
    const { aggregator, store, task, metrics } = this.options;
    const started = performance.now();
    let outcome: AggregateOutcome | null;
    let failedWith: string | null = null;
    try {
      // Awaited only when it is a promise, so a synchronous aggregator still finishes the round in this tick.
      const pending = aggregator.aggregateFit(cur.serverRound, this.global.tensors, cur.results, cur.failures);
      outcome = pending instanceof Promise ? await pending : pending;
    } catch (err) {
      this.log.error({ err, serverRound: cur.serverRound }, 'aggregation failed');
      failedWith = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'INTERNAL';
      outcome = null;
    }
    // Closed while aggregating (task stopped, engine shut down): nothing was committed, and a restart re-imports the stored strategy state.
    if (this.current !== cur) return;
    const aggregationMs = performance.now() - started;
    if (!outcome) {
      this.retry(cur, failedWith ? `aggregation failed (${failedWith})` : 'aggregation produced no model');
      return;
    }
    let bytes: Uint8Array;
    let strategyState: StoredStrategyState;
    try {
      bytes = encodeGlobal(task.id, cur.serverRound, outcome.parameters);
      strategyState = encodeStrategyState(task.id, cur.serverRound, aggregator);
    } catch (err) {
      this.log.error({ err, serverRound: cur.serverRound }, 'aggregated model could not be encoded');
      this.retry(cur, 'aggregated model is not encodable');
      return;
    }
    const sha256 = sha256Hex(bytes);
    const trust = (outcome.trust ?? []).filter((t) => Number.isFinite(t.trust));
    const roundMetrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(outcome.metrics)) if (Number.isFinite(v)) roundMetrics[`strategy.${k}`] = v;
    for (const [k, v] of Object.entries(outcome.serverMetrics ?? {})) if (Number.isFinite(v)) roundMetrics[k] = v;
    if (trust.length > 0) {
      const values = trust.map((t) => t.trust);
      roundMetrics['trust.mean'] = values.reduce((a, b) => a + b, 0) / values.length;
      roundMetrics['trust.min'] = Math.min(...values);
      roundMetrics['trust.max'] = Math.max(...values);
    }
    if (this.options.evaluateGlobal) {
      const evalStarted = performance.now();
      try {
        const evaluated = this.options.evaluateGlobal(cur.serverRound, outcome.parameters);
        for (const [k, v] of Object.entries(evaluated instanceof Promise ? await evaluated : evaluated)) if (Number.isFinite(v)) roundMetrics[k] = v;
        roundMetrics['evalMs'] = performance.now() - evalStarted;
      } catch (err) {
        this.log.error({ err, serverRound: cur.serverRound }, 'global evaluation failed');
      }
      if (this.current !== cur) return;
    }
    Object.assign(roundMetrics, {
      attempt: cur.attempt,
      numSelected: cur.selected.size,
      numAccepted: cur.results.length,
      numRejected: cur.failures.filter((f) => f.code !== 'DISCONNECTED' && f.code !== 'TIMEOUT').length,
      numDropped: cur.dropped.size,
      numExamples: cur.results.reduce((s, r) => s + r.numExamples, 0),
      bytesIn: cur.bytesIn,
      meanUpdateNorm: cur.normSum / cur.results.length,
      aggregationMs,
      ...meanClientMetrics(cur.results),
    });
    const finished = cur.serverRound >= task.rounds;
    const endedAt = this.clock.now();
    try {
      store.completeRound({
        taskId: task.id,
        serverRound: cur.serverRound,
        attempt: cur.attempt,
        endedAt,
        numAccepted: cur.results.length,
        checkpoint: { bytes, sha256 },
        strategyState,
        metrics: roundMetrics,
        trust,
        // A pause during the round holds: the round commits, the task stays paused.
        taskStatus: finished ? 'finished' : this.status,
      });
    } catch (err) {
      this.log.error({ err, serverRound: cur.serverRound }, 'round could not be committed');
      // Nothing was committed, so the strategy's in-memory state must not run ahead of the store.
      this.restoreStrategyState();
      this.retry(cur, 'round could not be committed');
      return;
    }
    this.global = { tensors: outcome.parameters, bytes, sha256 };
    this.completedRounds = cur.serverRound;
    this.nextAttempt = 1;
    this.current = null;
    metrics.rounds.inc({ task: task.id, status: 'completed' });
    metrics.aggregationSeconds.observe({ task: task.id }, aggregationMs / 1000);
    for (const t of trust) metrics.trust.observe({ task: task.id }, t.trust);
    if (roundMetrics['epsilon'] !== undefined) metrics.epsilon.set({ task: task.id }, roundMetrics['epsilon']);
    if (roundMetrics['probeMsPerCandidate'] !== undefined) metrics.probeSeconds.observe({ task: task.id }, roundMetrics['probeMsPerCandidate'] / 1000);
    try {
      this.options.onRoundCompleted?.({ taskId: task.id, serverRound: cur.serverRound, attempt: cur.attempt, globalHash: sha256, metrics: roundMetrics, trust });
    } catch (err) {
      this.log.warn({ err }, 'round listener failed');
    }
    this.log.info({ serverRound: cur.serverRound, attempt: cur.attempt, accepted: cur.results.length, why, globalHash: sha256, aggregationMs }, 'round completed');
    this.options.transport.broadcastRoundEnd({
      type: 'round-end',
      protocolVersion: PROTOCOL_VERSION,
      taskId: task.id,
      roundId: cur.roundId,
      serverRound: cur.serverRound,
      attempt: cur.attempt,
      status: 'completed',
      globalHash: sha256,
    });
    if (finished) {
      this.phase = 'finished';
      this.noteStatus('finished', null, endedAt);
      this.log.info({ completedRounds: this.completedRounds, globalHash: sha256 }, 'task finished');
      this.options.transport.broadcastTaskEnd({
        type: 'task-end',
        protocolVersion: PROTOCOL_VERSION,
        taskId: task.id,
        status: 'finished',
        completedRounds: this.completedRounds,
        globalHash: sha256,
      });
      return;
    }
    this.phase = 'idle';
    this.waitingSince = null;
    this.scheduleStart(0);
  }

  private retry(cur: OpenAttempt, reason: string): void {
    const { store, task, metrics } = this.options;
    try {
      store.retryRound(task.id, cur.serverRound, cur.attempt, this.clock.now(), reason);
    } catch (err) {
      this.log.error({ err }, 'could not record a retry');
    }
    metrics.rounds.inc({ task: task.id, status: 'retry' });
    this.log.warn({ serverRound: cur.serverRound, attempt: cur.attempt, reason }, 'round retried');
    this.current = null;
    this.phase = 'idle';
    this.waitingSince = null;
    this.options.transport.broadcastRoundEnd({
      type: 'round-end',
      protocolVersion: PROTOCOL_VERSION,
      taskId: task.id,
      roundId: cur.roundId,
      serverRound: cur.serverRound,
      attempt: cur.attempt,
      status: 'retry',
      globalHash: this.global.sha256,
      reason: reason.slice(0, 500),
    });
    if (this.nextAttempt > task.maxRoundAttempts) {
      this.fail(`round ${cur.serverRound} failed ${task.maxRoundAttempts} attempts`);
      return;
    }
    this.scheduleStart(this.options.retryDelayMs ?? 500);
  }

  private fail(reason: string): void {
    const { store, task } = this.options;
    this.phase = 'failed';
    const at = this.clock.now();
    try {
      store.setTaskStatus(task.id, 'failed', at);
    } catch (err) {
      this.log.error({ err }, 'could not record the task failure');
    }
    this.noteStatus('failed', null, at);
    this.log.error({ reason }, 'task failed');
    this.options.transport.broadcastTaskEnd({
      type: 'task-end',
      protocolVersion: PROTOCOL_VERSION,
      taskId: task.id,
      status: 'failed',
      completedRounds: this.completedRounds,
      globalHash: this.global.sha256,
    });
  }

  /** Stores `status` (throws when the store does, changing nothing), then adopts and announces it. */
  private setStatus(status: TaskStatus, action: TaskAction | null, reason?: string): void {
    const at = this.clock.now();
    this.options.store.setTaskStatus(this.task.id, status, at);
    this.noteStatus(status, action, at, reason);
  }

  /** Adopts a status the store already holds and tells the listener. */
  private noteStatus(status: TaskStatus, action: TaskAction | null, at: number, reason?: string): void {
    const previous = this.status;
    this.status = status;
    if (previous === status) return;
    try {
      this.options.onStatusChanged?.({ taskId: this.task.id, status, previous, action, at, ...(reason === undefined ? {} : { reason }) });
    } catch (err) {
      this.log.warn({ err }, 'status listener failed');
    }
  }

  private cancelPendingStart(): void {
    if (this.pendingTimer !== null) this.clock.clearTimeout(this.pendingTimer);
    if (this.waitingTimer !== null) this.clock.clearTimeout(this.waitingTimer);
    this.pendingTimer = null;
    this.waitingTimer = null;
  }

  /** After a stored stop: closes the attempt in flight without a model and tells every client. */
  private endByStop(): void {
    const { store, task, metrics } = this.options;
    this.cancelPendingStart();
    const cur = this.current;
    this.current = null;
    this.phase = 'stopped';
    if (cur) {
      this.clock.clearTimeout(cur.deadlineTimer);
      this.lastClosedRoundId = cur.roundId;
      try {
        store.retryRound(task.id, cur.serverRound, cur.attempt, this.clock.now(), 'task stopped');
      } catch (err) {
        this.log.error({ err }, 'could not close the open attempt of a stopped task');
      }
      metrics.rounds.inc({ task: task.id, status: 'retry' });
    }
    this.options.transport.broadcastTaskEnd({
      type: 'task-end',
      protocolVersion: PROTOCOL_VERSION,
      taskId: task.id,
      status: 'stopped',
      completedRounds: this.completedRounds,
      globalHash: this.global.sha256,
    });
  }

  private restoreStrategyState(): void {
    const ck = this.options.store.latestCheckpoint(this.task.id);
    try {
      if (ck?.strategyState) this.options.aggregator.importState(decodeStrategyState(ck.strategyState));
    } catch (err) {
      this.log.error({ err }, 'could not restore the strategy state');
    }
  }
}

/** Example-weighted means of the metrics clients reported, prefixed `client.`. */
function meanClientMetrics(results: readonly FitResult[]): Record<string, number> {
  const sums = new Map<string, { sum: number; weight: number }>();
  for (const r of results) {
    for (const [k, v] of Object.entries(r.metrics ?? {})) {
      const s = sums.get(k) ?? { sum: 0, weight: 0 };
      s.sum += v * r.numExamples;
      s.weight += r.numExamples;
      sums.set(k, s);
    }
  }
  const out: Record<string, number> = {};
  for (const [k, s] of sums) if (s.weight > 0 && Number.isFinite(s.sum)) out[`client.${k}`] = s.sum / s.weight;
  return out;
}

function encodeStrategyState(taskId: string, serverRound: number, aggregator: Aggregator): StoredStrategyState {
  const state = aggregator.exportState();
  return { json: JSON.stringify(state.json), tensorBytes: encodeGlobal(taskId, serverRound, state.tensors) };
}

function decodeStrategyState(stored: StoredStrategyState): { json: { strategy: string }; tensors: Tensor[] } {
  const tensors = decodeUpdate(stored.tensorBytes, { maxBytes: stored.tensorBytes.byteLength }).tensors;
  return { json: JSON.parse(stored.json) as { strategy: string }, tensors };
}
