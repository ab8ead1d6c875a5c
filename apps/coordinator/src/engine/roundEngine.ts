/**
 * The round engine of one task: waiting room → the strategy's plan → validated updates → the
 * strategy's aggregation → checkpoint, over and over until the task's rounds are done.
 *
 * The engine sequences; it decides nothing the strategy or a pure module can decide. Each round it
 * asks the fl-core {@link Strategy} for the plan (`configureFit`: which clients, how many results
 * close the round, the round config), and hands back the results and failures (`aggregateFit`) in
 * canonical order (by client id), never arrival order, and the clients' evaluations of the model
 * the round started from (`aggregateEvaluate`). State changes go through one reducer
 * (`engineState.ts`); payloads, metrics and store records are built by `roundRecords.ts`.
 *
 * Invariants, enforced here:
 * - One attempt at a time. An attempt closes exactly once: when `target` valid updates arrived, when
 *   the deadline passes, or as soon as the updates still possible cannot reach `minUpdates`. A closed
 *   attempt with too few updates (or an aggregation that yields no model) is retried with a fresh
 *   plan, up to `maxRoundAttempts`, after which the task is marked failed — never a hang.
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
 * - Everything random derives from the task seed: each attempt's plan draws from
 *   `roundRng(seed, round, draw)`, where `draw` counts the round's genuine retries (not attempts a
 *   crash abandoned), so a resumed or repeated run makes the same choices.
 * - A `runs: continuous` task does not end when its last round commits: the store keeps the finished
 *   run as a past one, and the next run starts from the initial model and the strategy's initial
 *   state, its clients still in the waiting room (they are sent no task end). A coordinator that
 *   stopped between the two starts the next run when it starts. Stopped and failed runs never restart.
 *
 * Two round kinds share all of this. A weight round is the above. A representation round (FedAFD
 * family, given {@link RoundEngineOptions.representation}) keeps every invariant and differs in three
 * hooks only (engine/representationRounds.ts): the round start carries the round's `representation`
 * section, uploads are checked by the hooks' `validate` instead of `validateUpdate`, and the hooks'
 * asynchronous `serverUpdate` (the representation strategy's teachers, then the server step in the
 * evaluator) replaces `measure` and `aggregateFit`; the strategy still plans each round's cohort.
 *
 * The engine knows nothing of sockets: it talks to clients through {@link EngineTransport}, and to
 * time through {@link EngineClock}.
 */
import type {
  AggregateEvaluateResult,
  AggregateFitResult,
  FitFailure,
  FitFailureCode,
  FitResult,
  Parameters,
  PartialFit,
  RunningPartialFit,
  Strategy,
  StrategyState,
  UpdateArena,
} from '@chorus/fl-core';
import { FIT_FAILURE_CODES, createUpdateArena, isFlCoreError, layoutOf } from '@chorus/fl-core';
import { fastCrc32 } from '../codec/fastCrc32.js';
import type { Logger } from 'pino';
import { CoordinatorError } from '../errors.js';
import type { CoordinatorMetrics } from '../http/metrics.js';
import { ProtocolError } from '@chorus/protocol';
import type {
  Ack,
  Capabilities,
  ParsedUpdate,
  ProtocolErrorCode,
  RoundEndPayload,
  RoundStartPayload,
  TaskAction,
  TaskEndPayload,
  UpdateResult,
} from '@chorus/protocol';
import { ABANDONED_REASON } from '../store/types.js';
import type { CoordinatorStore, TaskStatus, UpdateRecord } from '../store/types.js';
import type { TaskConfig } from '@chorus/protocol';
import { decodeGlobal, decodeStrategyState, encodeGlobal, encodeStrategyState, sha256HexSync } from './checkpoint.js';
import { INITIAL_ENGINE_STATE, closeReason, reduceEngine, slotAttempt } from './engineState.js';
import type { AttemptState, EngineAction, EngineState, Phase } from './engineState.js';
import {
  canonicalResults,
  federatedEvaluations,
  roundCompletion,
  roundIdOf,
  roundEndPayload,
  roundMetrics,
  roundStartPayload,
  roundTrust,
  taskEndPayload,
} from './roundRecords.js';
import type { GlobalModel } from './roundRecords.js';
import { roundRng, waitingRoomSize } from './sampling.js';
import type { RepresentationRoundHooks } from './representationRounds.js';
import type { SplitRoundHooks } from './splitRounds.js';
import type { RoundMeasurer } from './serverMeasurements.js';
import { controlTarget } from './taskControl.js';
import { validateUpdate } from './validateUpdate.js';

export { encodeGlobal, sha256HexSync } from './checkpoint.js';

/** Time source and timers; injectable for tests. */
export interface EngineClock {
  /** Wall-clock milliseconds (stored timestamps, deadlines). */
  now(): number;
  /** Monotonic milliseconds for durations (aggregation time). */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A zero-delay timer of {@link systemClock}: a `setImmediate`, which runs after pending I/O without the ≥ 1 ms of `setTimeout(fn, 0)`. */
interface Deferred {
  readonly immediate: ReturnType<typeof setImmediate>;
}

/** The real clock. Zero delays (closing an attempt, opening the next) go through `setImmediate`, so they cost no timer wait on the critical path. */
export const systemClock: EngineClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => (ms <= 0 ? ({ immediate: setImmediate(fn) } satisfies Deferred) : setTimeout(fn, ms)),
  clearTimeout: (handle) => {
    if (typeof handle === 'object' && handle !== null && 'immediate' in handle) clearImmediate((handle as Deferred).immediate);
    else clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
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
/** An upload another node validated and keeps: its header, where it is held, and what that node measured. */
export interface HeldUpdate extends Omit<ParsedUpdate, 'update'> {
  readonly heldBy: string;
  readonly norm: number;
  readonly byteLength: number;
}

/** A round's aggregate, and how many of its updates other nodes summed. */
interface FitOutcome {
  readonly aggregated: AggregateFitResult | null;
  readonly summedElsewhere: number;
}

/** What the leader asks of the nodes holding a closed attempt's updates. */
export interface PartialRequest {
  readonly taskId: string;
  readonly roundId: string;
  readonly serverRound: number;
  /** The global the attempt started from, which every holder must hold too, and its hash. */
  readonly global: Parameters;
  readonly globalHash: string;
  /** The attempt's kept updates, by the node holding them. */
  readonly byNode: ReadonlyMap<string, readonly string[]>;
}

export interface RoundEngineOptions {
  readonly task: TaskConfig;
  readonly store: CoordinatorStore;
  /** The task's fl-core strategy, wrappers included: it plans each round and aggregates it. */
  readonly strategy: Strategy;
  /** Server measurements fed to the strategy before it aggregates (probes, root update); none by default. */
  readonly measure?: RoundMeasurer;
  /**
   * Called with each upload the engine accepts, decoded, and the global its round started from
   * (so its trust probe can start while the round waits for the others: arrivalProbe.ts).
   */
  readonly onUploadAccepted?: (result: FitResult, round: { readonly serverRound: number; readonly globalHash: string; readonly global: Parameters }) => void;
  /**
   * A cluster's way to the deltas other nodes hold ({@link RoundEngine.submitHeldUpdate}, exact-sum
   * strategies only): each holder's partial sum of its clients' updates for the attempt. Rejects
   * when a holder does not answer; the round then retries.
   */
  readonly remotePartials?: (request: PartialRequest) => Promise<PartialFit[]>;
  /**
   * Makes every round a representation round (FedAFD family, engine/representationRounds.ts): the
   * round start carries the hooks' `representation` section, uploads are checked by `validate`, and
   * `serverUpdate` replaces `measure` and the strategy's `aggregateFit` (the strategy still plans
   * each round's cohort). Absent: weight rounds.
   */
  readonly representation?: RepresentationRoundHooks;
  /**
   * Makes every round a split round (FedUMM's device–edge split, engine/splitRounds.ts): the round
   * start carries the hooks' `split` section, the edge starts each attempt from the global's `edge`
   * group, uploads may not touch it, and `finalize` puts the edge's weights into the next global.
   */
  readonly split?: SplitRoundHooks;
  readonly transport: EngineTransport;
  /** Initial global parameters, used only when the store holds no checkpoint for the task. */
  readonly initialGlobal: () => Parameters;
  readonly logger: Logger;
  readonly metrics: CoordinatorMetrics;
  readonly clock?: EngineClock;
  /** Pause before retrying an attempt, so a broken round does not spin (default 500 ms). */
  readonly retryDelayMs?: number;
  /**
   * Evaluates a new global model before its round is committed (server-side accuracy and loss);
   * the figures are stored with the round's metrics. A throw is logged and the round goes on.
   */
  readonly evaluateGlobal?: (serverRound: number, parameters: Parameters) => Readonly<Record<string, number>> | Promise<Readonly<Record<string, number>>>;
  /** Called after each round is committed, for live dashboards. Must not throw. */
  readonly onRoundCompleted?: (summary: RoundSummary) => void;
  /** Called after each stored change of the task's status, for live dashboards. Must not throw. */
  readonly onStatusChanged?: (change: StatusChange) => void;
  /** Called when clients are invited to an attempt (the server grants each one upload). Must not throw. */
  readonly onClientsSelected?: (clientIds: readonly string[]) => void;
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
  /** The current run (1 until a continuous task finishes its first). */
  readonly run: number;
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

interface Participant {
  readonly modalities: readonly string[];
  readonly numExamples: number;
}

/** Timers the engine holds; cleared together on stop. */
interface Timers {
  deadline: unknown;
  pendingStart: unknown;
  waitingRoom: unknown;
}

const FAILURE_CODES: ReadonlySet<string> = new Set(FIT_FAILURE_CODES);

/** Runs one task's rounds; see the module comment for its invariants. */
export class RoundEngine {
  private readonly task: TaskConfig;
  private readonly clock: EngineClock;
  private readonly log: Logger;
  private readonly waiting = new Map<string, Participant>();
  private state: EngineState = INITIAL_ENGINE_STATE;
  private global!: GlobalModel;
  private readonly timers: Timers = { deadline: null, pendingStart: null, waitingRoom: null };
  /**
   * Where the open attempt's uploads are decoded: one row per selected client, reserved when the
   * attempt opens and cleared for the next, so an upload is decoded once with no allocation and
   * results are views of its row. Created for the first global's layout (a task's layout is fixed).
   */
  private arena: UpdateArena | null = null;
  /** The open attempt's accepted uploads, written to the store in one transaction when it closes. */
  private acceptedRecords: UpdateRecord[] = [];
  /**
   * Under an exact-sum strategy, the open attempt's uploads held here, summed as they are accepted
   * so that the close only reads the sums (used when the round keeps exactly these uploads).
   */
  private running: { readonly roundId: string; readonly builder: RunningPartialFit } | null = null;
  /** The strategy's state before any round (continuous tasks only): where each new run starts from. */
  private initialStrategyState: StrategyState | null = null;

  constructor(private readonly options: RoundEngineOptions) {
    this.task = options.task;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger.child({ task: options.task.id });
  }

  /** The one place state changes. */
  private dispatch(action: EngineAction): void {
    this.state = reduceEngine(this.state, action);
  }

  /**
   * Loads the last checkpoint (or stores the initial model as round 0) and starts accepting clients;
   * a continuous task found finished goes on with its next run.
   */
  start(): void {
    if (this.task.runs === 'continuous') this.initialStrategyState = this.options.strategy.exportState();
    this.load();
    if (this.state.phase === 'finished' && this.task.runs === 'continuous') this.beginNextRun();
  }

  /** Reads the current run's state back from the store (see {@link start}); throws `CHECKPOINT_CORRUPT` on a damaged checkpoint. */
  private load(): void {
    const { store, task } = this.options;
    const now = this.clock.now();
    const abandoned = store.abandonOpenRounds(task.id, now);
    let checkpoint = store.latestCheckpoint(task.id);
    if (!checkpoint) {
      const tensors = this.options.initialGlobal();
      const bytes = encodeGlobal(task.id, 0, tensors);
      store.saveInitialCheckpoint({ taskId: task.id, bytes, sha256: sha256HexSync(bytes), strategyState: null, createdAt: now });
      checkpoint = store.latestCheckpoint(task.id)!;
    }
    if (sha256HexSync(checkpoint.bytes) !== checkpoint.sha256) {
      throw new CoordinatorError('CHECKPOINT_CORRUPT', `checkpoint of round ${checkpoint.serverRound} of ${task.id} does not match its hash`);
    }
    let tensors: Parameters;
    try {
      tensors = decodeGlobal(checkpoint.bytes);
    } catch (err) {
      throw new CoordinatorError('CHECKPOINT_CORRUPT', `checkpoint of round ${checkpoint.serverRound} of ${task.id}: ${(err as Error).message}`);
    }
    if (checkpoint.strategyState) this.options.strategy.importState(decodeStrategyState(checkpoint.strategyState));
    this.global = { tensors, bytes: checkpoint.bytes, sha256: checkpoint.sha256 };
    const completedRounds = checkpoint.serverRound;
    const rounds = store.listRounds(task.id);
    const attempts = rounds.filter((r) => r.serverRound === completedRounds + 1);
    const lastMetrics = store.listMetrics(task.id).at(-1);
    if (lastMetrics?.metrics['epsilon'] !== undefined) this.options.metrics.epsilon.set({ task: task.id }, lastMetrics.metrics['epsilon']);
    const record = store.getTask(task.id);
    const stored = record?.status ?? 'waiting';
    const run = record?.run ?? 1;
    const phase: Phase = stored === 'failed' ? 'failed' : stored === 'stopped' ? 'stopped' : completedRounds >= task.rounds ? 'finished' : 'idle';
    this.dispatch({
      type: 'loaded',
      run,
      phase,
      status: phase === 'idle' ? stored : (phase as TaskStatus),
      completedRounds,
      nextAttempt: attempts.reduce((m, r) => Math.max(m, r.attempt), 0) + 1,
      nextDraw: 1 + attempts.filter((r) => r.status === 'retry' && r.reason !== ABANDONED_REASON).length,
      // A start that was stored before any round opened still skips the waiting room after a restart.
      startRequested: stored === 'running' && completedRounds === 0 && attempts.length === 0,
      // A task paused after an explicit start but before any round comes back as not started (waiting).
      started: stored === 'running' || completedRounds > 0 || rounds.length > 0,
    });
    this.log.info({ run, completedRounds, globalHash: this.global.sha256, abandonedAttempts: abandoned, phase, status: this.state.status }, 'task loaded');
  }

  /**
   * Keeps the finished run as a past run and starts the next from the initial model (stored as its
   * round 0) and the strategy's initial state; the waiting room stays. False, with the task left
   * finished, when that fails.
   */
  private beginNextRun(): boolean {
    const { store, task } = this.options;
    const previous = this.state.status;
    const at = this.clock.now();
    try {
      this.options.strategy.importState(this.initialStrategyState!);
      store.beginRun(task.id, at);
      this.load();
    } catch (err) {
      this.log.error({ err }, 'could not start the next run');
      return false;
    }
    this.announceStatus(previous, null, at);
    this.log.info({ run: this.state.run, globalHash: this.global.sha256 }, 'run started');
    this.scheduleStart(0);
    return true;
  }

  /**
   * Applies a researcher's action and returns the new status; throws `TASK_TRANSITION` (changing
   * nothing) when the status does not allow it. See `taskControl.ts` for the table.
   */
  control(action: TaskAction, reason?: string): TaskStatus {
    if (this.state.phase === 'shutdown') throw new CoordinatorError('TASK_TRANSITION', `task ${this.task.id} is not loaded`);
    const previous = this.state.status;
    const next = controlTarget(previous, action, this.state.started);
    if (next === null) throw new CoordinatorError('TASK_TRANSITION', `cannot ${action} task ${this.task.id}: it is ${previous}`);
    // Stored first: if the write fails, nothing else has changed.
    this.storeStatus(next, action, reason);
    this.log.info({ action, previous, status: next, reason }, 'task control');
    switch (action) {
      case 'start':
        this.dispatch({ type: 'startRequested' });
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
    this.clearTimer('deadline');
    this.cancelPendingStart();
    this.dispatch({ type: 'shutdown' });
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
    const before = this.state.current;
    this.dispatch({ type: 'clientDropped', clientId });
    const cur = this.state.current;
    if (cur && cur !== before) {
      this.log.info({ clientId, serverRound: cur.serverRound, attempt: cur.attempt }, 'selected client dropped');
      this.closeIfSettled();
    }
  }

  /** Whether the client is in the waiting room. */
  hasMember(clientId: string): boolean {
    return this.waiting.has(clientId);
  }

  /** Ids of the clients in the waiting room. */
  get members(): readonly string[] {
    return [...this.waiting.keys()];
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
      this.recordRefusal(clientId, update, update.update.byteLength, code, message);
      return { ok: false, error: { code, message } };
    }
  }

  /**
   * Whether `clientId` may send a split step for `roundId` now: the attempt is open, before its
   * deadline, the client was selected for it and has not uploaded yet. Null when it may, else the
   * refusal (the same codes an upload would get).
   */
  splitStepRefusal(clientId: string, taskId: string, roundId: string): ProtocolError | null {
    const { phase, current: cur } = this.state;
    if (phase === 'stopped') return new ProtocolError('TASK_STOPPED', `task ${this.task.id} was stopped`);
    if (phase === 'finished' || phase === 'failed') return new ProtocolError('TASK_FINISHED', `task ${this.task.id} has ended`);
    if (!this.options.split) return new ProtocolError('BAD_PAYLOAD', `task ${this.task.id} is not a split task`);
    if (taskId !== this.task.id) return new ProtocolError('BAD_PAYLOAD', 'taskId does not match the connection');
    if (!cur || roundId !== cur.roundId || phase !== 'open' || this.clock.now() > cur.deadlineAt)
      return new ProtocolError('ROUND_CLOSED', `round ${roundId} is not open`);
    if (!cur.selected.has(clientId) || cur.dropped.has(clientId)) return new ProtocolError('NOT_SELECTED', 'this client is not part of the open round');
    if (cur.uploaded.has(clientId)) return new ProtocolError('DUPLICATE_UPDATE', 'this client has already uploaded its update for the round');
    return null;
  }

  /** The engine's state for dashboards. */
  snapshot(): EngineSnapshot {
    const { current: cur, status, phase, completedRounds } = this.state;
    return {
      taskId: this.task.id,
      run: this.state.run,
      status,
      phase,
      completedRounds,
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

  /**
   * Judges an upload another node validated and keeps (a cluster's exact-sum task): the same checks
   * of round, selection and timing as any upload, then accepted with its delta held at `heldBy`,
   * whose partial sum the round's close asks for. Never throws.
   */
  submitHeldUpdate(clientId: string, update: HeldUpdate): Ack<UpdateResult> {
    try {
      const cur = this.admit(clientId, update);
      if (!this.options.strategy.partials || !this.options.remotePartials || this.options.split || this.options.representation) {
        throw new ProtocolError('BAD_PAYLOAD', `task ${this.task.id} does not take partial sums`);
      }
      if (!(update.byteLength >= 0) || !(update.norm >= 0) || !Number.isFinite(update.norm))
        throw new ProtocolError('BAD_PAYLOAD', 'a held update needs its size and norm');
      this.options.metrics.bytesIn.inc({ task: this.task.id }, update.byteLength);
      const result: FitResult = { clientId, numExamples: update.numExamples, delta: [], ...(update.metrics ? { metrics: update.metrics } : {}) };
      return this.accept(cur, result, { norm: update.norm, bytes: update.byteLength, heldBy: update.heldBy });
    } catch (err) {
      const code: ProtocolErrorCode = err instanceof ProtocolError ? err.code : 'INTERNAL';
      const message = err instanceof ProtocolError ? err.message : 'internal error';
      if (!(err instanceof ProtocolError)) this.log.error({ err, clientId }, 'held update handling failed');
      this.recordRefusal(clientId, update, update.byteLength, code, message);
      return { ok: false, error: { code, message } };
    }
  }

  /** The checks every upload passes before its bytes are looked at; returns the open attempt. */
  private admit(clientId: string, update: { readonly taskId: string; readonly roundId: string; readonly serverRound: number }): AttemptState {
    const { phase, current: cur, lastClosedRoundId } = this.state;
    if (phase === 'stopped') throw new ProtocolError('TASK_STOPPED', `task ${this.task.id} was stopped`);
    if (phase === 'finished' || phase === 'failed') throw new ProtocolError('TASK_FINISHED', `task ${this.task.id} has ended`);
    if (update.taskId !== this.task.id) throw new ProtocolError('BAD_PAYLOAD', 'taskId does not match the connection');
    if (!cur || update.roundId !== cur.roundId) {
      if (update.roundId === lastClosedRoundId) throw new ProtocolError('LATE_UPDATE', `round ${update.roundId} has closed`);
      throw new ProtocolError('ROUND_CLOSED', `round ${update.roundId} is not open`);
    }
    if (update.serverRound !== cur.serverRound) throw new ProtocolError('BAD_PAYLOAD', `serverRound ${update.serverRound} does not match round ${cur.roundId}`);
    if (!cur.selected.has(clientId) || cur.dropped.has(clientId)) throw new ProtocolError('NOT_SELECTED', 'this client is not part of the open round');
    if (cur.uploaded.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', 'one upload per client per round');
    if (phase !== 'open' || this.clock.now() > cur.deadlineAt) throw new ProtocolError('LATE_UPDATE', 'the round is no longer accepting updates');
    return cur;
  }

  private judge(clientId: string, update: ParsedUpdate): Ack<UpdateResult> {
    const cur = this.admit(clientId, update);
    // From here on the upload counts as this client's one upload for the attempt, valid or not, so a
    // client cannot probe the validator repeatedly within a round.
    const bytes = update.update.byteLength;
    this.options.metrics.bytesIn.inc({ task: this.task.id }, bytes);
    let valid;
    try {
      const representation = this.options.representation;
      valid = representation
        ? {
            delta: representation.validate(update.update, {
              serverRound: cur.serverRound,
              clientId,
              modalities: this.waiting.get(clientId)?.modalities ?? [],
            }),
            norm: 0,
          }
        : validateUpdate(update.update, {
            taskId: this.task.id,
            serverRound: cur.serverRound,
            clientId,
            modalities: this.waiting.get(clientId)?.modalities ?? [],
            global: this.global.tensors,
            maxUpdateBytes: this.task.maxUpdateBytes,
            normBound: this.task.normBound,
            ...(this.options.split ? { serverGroups: this.options.split.serverGroups } : {}),
            crc32: fastCrc32,
            ...(this.arena ? { arena: this.arena } : {}),
          });
    } catch (err) {
      const code = err instanceof ProtocolError && FAILURE_CODES.has(err.code) ? (err.code as FitFailureCode) : null;
      this.dispatch({ type: 'uploadRefused', clientId, bytes, failure: code && { clientId, code, message: (err as Error).message } });
      this.closeIfSettled();
      throw err;
    }
    const result: FitResult = { clientId, numExamples: update.numExamples, delta: valid.delta, ...(update.metrics ? { metrics: update.metrics } : {}) };
    return this.accept(cur, result, { norm: valid.norm, bytes });
  }

  /** Takes an admitted, valid upload into the attempt. */
  private accept(cur: AttemptState, result: FitResult, facts: { readonly norm: number; readonly bytes: number; readonly heldBy?: string }): Ack<UpdateResult> {
    const { clientId } = result;
    this.dispatch({ type: 'uploadAccepted', result, norm: facts.norm, bytes: facts.bytes, ...(facts.heldBy === undefined ? {} : { heldBy: facts.heldBy }) });
    // A held upload's delta is on another node: nothing here could measure or sum it.
    if (facts.heldBy === undefined && this.running?.roundId === cur.roundId) {
      try {
        this.running.builder.add(result);
      } catch (err) {
        // The close sums the round afresh.
        this.log.warn({ err, clientId }, 'could not sum an upload on arrival');
        this.running = null;
      }
    }
    const { strategy } = this.options;
    if (facts.heldBy === undefined && strategy.observeFit && !this.options.representation && !this.options.split) {
      // Work of the strategy's that needs this upload alone (similarity damping's sketch and cosines), done
      // while the round waits for others, after the client's ack is on its way. The close gives the same bits without it.
      const { serverRound } = cur;
      const global = this.global.tensors;
      this.clock.setTimeout(() => {
        try {
          strategy.observeFit?.(serverRound, global, result);
        } catch (err) {
          this.log.warn({ err, clientId }, 'the strategy could not look at an upload on arrival');
        }
      }, 0);
    }
    if (facts.heldBy === undefined) {
      try {
        this.options.onUploadAccepted?.(result, { serverRound: cur.serverRound, globalHash: this.global.sha256, global: this.global.tensors });
      } catch (err) {
        // The upload stays accepted: whatever the hook started, the round's measurer does without it.
        this.log.error({ err, clientId }, 'onUploadAccepted failed');
      }
    }
    this.acceptedRecords.push({
      taskId: this.task.id,
      run: this.state.run,
      serverRound: cur.serverRound,
      attempt: cur.attempt,
      clientId,
      status: 'accepted',
      code: null,
      message: null,
      numExamples: result.numExamples,
      byteLength: facts.bytes,
      receivedAt: this.clock.now(),
    });
    this.options.metrics.updates.inc({ task: this.task.id });
    this.closeIfSettled();
    return { ok: true, serverRound: cur.serverRound, roundId: cur.roundId };
  }

  private recordRefusal(clientId: string, update: Omit<ParsedUpdate, 'update'>, byteLength: number, code: ProtocolErrorCode, message: string): void {
    this.options.metrics.rejections.inc({ task: this.task.id, code });
    this.log.info({ clientId, roundId: update.roundId, code, reason: message }, 'update refused');
    const cur = this.state.current;
    // Refusals for the open attempt are logged against it; others (stale rounds) against the round they named.
    const onCurrent = cur !== null && update.roundId === cur.roundId;
    try {
      this.options.store.recordUpdates([
        {
          taskId: this.task.id,
          serverRound: onCurrent ? cur.serverRound : update.serverRound,
          attempt: onCurrent ? cur.attempt : 0,
          clientId,
          status: 'rejected',
          code,
          message,
          numExamples: update.numExamples,
          byteLength,
          receivedAt: this.clock.now(),
        },
      ]);
    } catch (err) {
      this.log.error({ err }, 'could not record a refusal');
    }
  }

  private scheduleStart(delayMs: number): void {
    if (this.state.phase !== 'idle' || this.state.status === 'paused' || this.timers.pendingStart !== null) return;
    this.timers.pendingStart = this.clock.setTimeout(() => {
      this.timers.pendingStart = null;
      this.tryStartRound();
    }, delayMs);
  }

  private tryStartRound(): void {
    const { task } = this.options;
    if (this.state.phase !== 'idle' || this.state.status === 'paused' || this.waiting.size < task.minClients) return;
    const now = this.clock.now();
    this.dispatch({ type: 'waitingBegan', at: now });
    const waitingSince = this.state.waitingSince!;
    if (!this.state.startRequested && this.waiting.size < waitingRoomSize(task) && now < waitingSince + task.waitingRoomMs) {
      // Enough to start, not enough to invite everyone: give latecomers until the window closes.
      if (this.timers.waitingRoom === null) {
        this.timers.waitingRoom = this.clock.setTimeout(
          () => {
            this.timers.waitingRoom = null;
            this.tryStartRound();
          },
          waitingSince + task.waitingRoomMs - now,
        );
      }
      return;
    }
    this.clearTimer('waitingRoom');
    const serverRound = this.state.completedRounds + 1;
    const attempt = this.state.nextAttempt;
    if (attempt > task.maxRoundAttempts) {
      this.fail(`round ${serverRound} failed ${task.maxRoundAttempts} attempts`);
      return;
    }
    this.dispatch({ type: 'attemptDrawn' });
    // The strategy plans the round; the waiting room is offered in sorted order, so the plan depends
    // only on the set of clients and the (seed, round, attempt) stream.
    const plan = this.options.strategy.configureFit({
      serverRound,
      availableClients: [...this.waiting.keys()].sort(),
      rng: roundRng(task.seed, serverRound, this.state.nextDraw),
    });
    const roundId = roundIdOf(task.id, this.state.run, serverRound, attempt);
    try {
      this.options.store.startRound({ taskId: task.id, serverRound, attempt, roundId, selected: [...plan.clientIds], startedAt: now });
      if (this.state.status === 'waiting') this.storeStatus('running', null);
    } catch (err) {
      this.log.error({ err, serverRound, attempt }, 'could not open a round');
      this.scheduleStart(this.options.retryDelayMs ?? 500);
      return;
    }
    const target = Math.min(plan.target, plan.clientIds.length);
    const cur: AttemptState = {
      serverRound,
      attempt,
      roundId,
      selected: new Set(plan.clientIds),
      order: [...plan.clientIds],
      slots: task.admission.slots,
      target,
      minUpdates: Math.max(1, Math.min(task.minClients, target)),
      deadlineAt: now + task.roundDeadlineMs,
      results: [],
      failures: [],
      uploaded: new Set(),
      dropped: new Set(),
      bytesIn: 0,
      normSum: 0,
      norms: new Map(),
    };
    this.prepareArena(plan.clientIds.length);
    this.acceptedRecords = [];
    const partials = this.options.representation || this.options.split ? undefined : this.options.strategy.partials;
    this.running = partials ? { roundId, builder: partials.start(serverRound, this.global.tensors) } : null;
    this.dispatch({ type: 'attemptOpened', attempt: cur });
    this.log.info({ serverRound, attempt, selected: plan.clientIds.length, target }, 'round started');
    if (plan.clientIds.length === 0) {
      // A plan may invite nobody (a Poisson sample can be empty): the attempt closes at once.
      this.closeIfSettled();
      return;
    }
    this.timers.deadline = this.clock.setTimeout(() => this.onDeadline(roundId), task.roundDeadlineMs);
    try {
      this.options.onClientsSelected?.(plan.clientIds);
    } catch (err) {
      this.log.warn({ err }, 'selection listener failed');
    }
    try {
      this.options.split?.attemptOpened(roundId, this.global.tensors);
    } catch (err) {
      this.log.error({ err, roundId }, 'the edge could not start the attempt');
    }
    this.options.transport.sendRoundStart(
      plan.clientIds,
      roundStartPayload(task, cur, plan.config, this.global, this.options.representation?.section(serverRound), this.options.split?.section),
    );
    this.options.metrics.bytesOut.inc({ task: task.id }, this.global.bytes.byteLength * plan.clientIds.length);
  }

  /** Empties the arena (the previous attempt's rows are no longer referenced) and reserves a row per invited client. */
  private prepareArena(rows: number): void {
    // Representation uploads are decoded by fl-core's validation, not into the weights' layout.
    if (rows === 0 || this.options.representation) return;
    try {
      if (!this.arena) this.arena = createUpdateArena({ layout: layoutOf(this.global.tensors), capacity: rows });
      this.arena.clear();
      this.arena.reserve(rows);
    } catch (err) {
      // Without an arena every upload is decoded into a fresh array: slower, equally correct.
      this.log.warn({ err }, 'no update arena for this attempt');
      this.arena = null;
    }
  }

  private onDeadline(roundId: string): void {
    this.timers.deadline = null;
    if (this.state.phase !== 'open' || this.state.current?.roundId !== roundId) return;
    this.dispatch({ type: 'deadlinePassed' });
    this.close('deadline');
  }

  /** Closes the attempt once its outcome is decided: enough accepted, or no way left to reach the minimum. */
  private closeIfSettled(): void {
    const cur = this.state.current;
    if (this.state.phase !== 'open' || !cur) return;
    const why = closeReason(cur);
    if (why !== null) this.close(why);
  }

  private close(why: string): void {
    this.clearTimer('deadline');
    this.dispatch({ type: 'closing' });
    const cur = this.state.current!;
    this.closeSplitAttempt(cur.roundId);
    // Aggregate on a later tick so the ack of the update that closed the round goes out first.
    this.clock.setTimeout(() => void this.finishAttempt(cur, why), 0);
  }

  /** Tells a split task's edge that attempt `roundId` ended (once per attempt: at its close, or at a stop while open). */
  private closeSplitAttempt(roundId: string): void {
    try {
      this.options.split?.attemptClosed(roundId);
    } catch (err) {
      this.log.warn({ err }, 'the edge could not end the attempt');
    }
  }

  /**
   * Writes the accepted uploads' records (a failed write is logged: the records are an audit trail,
   * not round state). A completed round writes them after the next round has opened, off the path
   * from the last upload to the new global model.
   */
  private flushAcceptedRecords(records: UpdateRecord[] = this.takeAcceptedRecords()): void {
    if (records.length === 0) return;
    try {
      this.options.store.recordUpdates(records);
    } catch (err) {
      this.log.error({ err, count: records.length }, 'could not record accepted uploads');
    }
  }

  private takeAcceptedRecords(): UpdateRecord[] {
    const records = this.acceptedRecords;
    this.acceptedRecords = [];
    return records;
  }

  /** True while `cur` is still the attempt being closed (a stop or shutdown may have ended it). */
  private stillClosing(cur: AttemptState): boolean {
    return this.state.phase === 'closing' && this.state.current?.roundId === cur.roundId;
  }

  private async finishAttempt(closed: AttemptState, why: string): Promise<void> {
    if (!this.stillClosing(closed)) return;
    const records = this.takeAcceptedRecords();
    // A committed round writes its upload records after the next round's start (an immediate queued
    // before this one), off the critical path; every other ending writes them at once.
    const committed = await this.aggregateAndCommit(closed, why);
    if (committed) this.clock.setTimeout(() => this.flushAcceptedRecords(records), 0);
    else this.flushAcceptedRecords(records);
  }

  /** Aggregates the closed attempt and commits its round; false when it ended otherwise (retry, stop, shutdown). */
  private async aggregateAndCommit(closed: AttemptState, why: string): Promise<boolean> {
    // The updates that won the round's slots (all accepted ones under the arrival rule).
    const { attempt: cur, surplus } = slotAttempt(this.state.current!);
    if (cur.results.length < cur.minUpdates) {
      this.retry(cur, `${why}: ${cur.results.length} valid updates, ${cur.minUpdates} needed`);
      return false;
    }
    const { strategy, store, task } = this.options;
    const started = this.clock.monotonic();
    const results = canonicalResults(cur.results);
    const failures = canonicalResults(cur.failures);
    let outcome = null;
    let serverMetrics: Readonly<Record<string, number>> = {};
    let federated: AggregateEvaluateResult | null = null;
    let failedWith: string | null = null;
    try {
      const representation = this.options.representation;
      if (representation) {
        // A representation round: the strategy's teachers and the server step make the next global.
        const update = await representation.serverUpdate(cur.serverRound, this.global.tensors, results, failures);
        if (!this.stillClosing(cur)) return false;
        outcome = update?.outcome ?? null;
        serverMetrics = { ...update?.serverMetrics, bytesOut: this.global.bytes.byteLength * cur.selected.size };
      } else {
        // Awaited only when it is a promise, so a task without server measurements finishes the round in this tick.
        const pending = this.options.measure
          ? this.options.measure(cur.serverRound, this.global.tensors, results, failures)
          : { results, failures, serverMetrics: {} };
        const measured = pending instanceof Promise ? await pending : pending;
        if (!this.stillClosing(cur)) return false;
        serverMetrics = measured.serverMetrics;
        // Awaited only when other nodes hold some of the updates, so a round without finishes in this tick.
        const pendingFit = this.aggregateFit(cur, measured.results, measured.failures);
        const { aggregated, summedElsewhere } = pendingFit instanceof Promise ? await pendingFit : pendingFit;
        if (!this.stillClosing(cur)) return false;
        if (summedElsewhere > 0) serverMetrics = { ...serverMetrics, numSummedElsewhere: summedElsewhere };
        const split = this.options.split;
        if (aggregated && split) {
          // A split round: the edge trained its group from the clients' steps; its weights join the device
          // groups. Until they have there is no next global: a failed finalize retries the round rather
          // than commit the device groups beside the attempt's starting edge.
          try {
            const parameters = await split.finalize(cur.serverRound, aggregated.parameters);
            if (!this.stillClosing(cur)) return false;
            outcome = { ...aggregated, parameters };
            serverMetrics = { ...serverMetrics, ...split.roundMetrics(cur.serverRound) };
          } catch (err) {
            // aggregateFit ran, but nothing will be committed: its state must not run ahead of the store.
            this.restoreStrategyState();
            throw err;
          }
        } else outcome = aggregated;
      }
      // The contract's third hook: the clients' evaluations of the model this round started from.
      if (outcome) federated = strategy.aggregateEvaluate(cur.serverRound, federatedEvaluations(results), failures);
    } catch (err) {
      this.log.error({ err, serverRound: cur.serverRound }, 'aggregation failed');
      failedWith = isFlCoreError(err) ? err.code : err instanceof CoordinatorError ? err.code : 'INTERNAL';
    }
    // Closed while aggregating (task stopped, engine shut down): nothing was committed, and a restart re-imports the stored strategy state.
    if (!this.stillClosing(cur)) return false;
    const aggregationMs = this.clock.monotonic() - started;
    if (!outcome) {
      this.retry(cur, failedWith ? `aggregation failed (${failedWith})` : 'aggregation produced no model');
      return false;
    }
    // The evaluation of the new global runs in the evaluator process while this one encodes the commit.
    const evaluating = this.options.evaluateGlobal ? this.evaluate(cur.serverRound, outcome.parameters) : null;
    let checkpoint: { bytes: Uint8Array; sha256: string };
    let strategyState;
    try {
      const bytes = encodeGlobal(task.id, cur.serverRound, outcome.parameters);
      checkpoint = { bytes, sha256: sha256HexSync(bytes) };
      strategyState = encodeStrategyState(task.id, cur.serverRound, strategy.exportState());
    } catch (err) {
      this.log.error({ err, serverRound: cur.serverRound }, 'aggregated model could not be encoded');
      this.restoreStrategyState();
      this.retry(cur, 'aggregated model is not encodable');
      return false;
    }
    // Awaited only with an evaluator, so a round without one commits in the tick that closed it.
    const { evaluation, evalMs } = evaluating ? await evaluating : { evaluation: null, evalMs: null };
    if (!this.stillClosing(cur)) return false;
    const metrics = {
      ...roundMetrics({ cur, outcome, serverMetrics, evaluation, evalMs, aggregationMs, federated }),
      ...(cur.slots === 'sampling-order' ? { numSurplus: surplus } : {}),
    };
    const trust = roundTrust(outcome);
    const finished = cur.serverRound >= task.rounds;
    const endedAt = this.clock.now();
    try {
      // A pause during the round holds: the round commits, the task stays paused.
      store.completeRound(
        roundCompletion({ taskId: task.id, cur, endedAt, checkpoint, strategyState, metrics, trust, taskStatus: finished ? 'finished' : this.state.status }),
      );
    } catch (err) {
      this.log.error({ err, serverRound: cur.serverRound }, 'round could not be committed');
      // Nothing was committed, so the strategy's in-memory state must not run ahead of the store.
      this.restoreStrategyState();
      this.retry(cur, 'round could not be committed');
      return false;
    }
    if (store.flush) {
      // A replicated store: clients hear of the new model only once its round is in the cluster's log.
      try {
        await store.flush();
      } catch (err) {
        // Refused (the node lost the task's lease) or not durable: the cluster stops this engine.
        this.log.error({ err, serverRound: cur.serverRound }, 'round commit was not made durable');
        return false;
      }
      if (!this.stillClosing(cur)) return false;
    }
    const previousStatus = this.state.status;
    this.global = { tensors: outcome.parameters, bytes: checkpoint.bytes, sha256: checkpoint.sha256 };
    this.dispatch({ type: 'committed', serverRound: cur.serverRound, finished });
    this.observeRound(metrics, trust, aggregationMs);
    try {
      this.options.onRoundCompleted?.({ taskId: task.id, serverRound: cur.serverRound, attempt: cur.attempt, globalHash: checkpoint.sha256, metrics, trust });
    } catch (err) {
      this.log.warn({ err }, 'round listener failed');
    }
    this.log.info(
      { serverRound: cur.serverRound, attempt: cur.attempt, accepted: cur.results.length, why, globalHash: checkpoint.sha256, aggregationMs },
      'round completed',
    );
    this.options.transport.broadcastRoundEnd(roundEndPayload(task.id, cur, { status: 'completed', globalHash: checkpoint.sha256 }));
    if (finished) {
      this.announceStatus(previousStatus, null, endedAt);
      this.log.info({ run: this.state.run, completedRounds: this.state.completedRounds, globalHash: checkpoint.sha256 }, 'run finished');
      // The clients of a continuous task stay for its next run, so they are not told the task ended.
      if (task.runs === 'continuous' && this.beginNextRun()) return true;
      this.options.transport.broadcastTaskEnd(taskEndPayload(task.id, 'finished', this.state.completedRounds, checkpoint.sha256));
      return true;
    }
    this.scheduleStart(0);
    return true;
  }

  /**
   * The strategy's aggregate of the kept results. Where other nodes hold some of them, those nodes'
   * partial sums join this node's own (exact sums: the same bits as one node summing every update).
   */
  private aggregateFit(cur: AttemptState, results: readonly FitResult[], failures: readonly FitFailure[]): FitOutcome | Promise<FitOutcome> {
    const { strategy, task } = this.options;
    const held = cur.held;
    const byNode = new Map<string, string[]>();
    for (const r of results) {
      const node = held?.get(r.clientId);
      if (node === undefined) continue;
      const ids = byNode.get(node);
      if (ids) ids.push(r.clientId);
      else byNode.set(node, [r.clientId]);
    }
    const partials = strategy.partials;
    const running = this.running?.roundId === cur.roundId ? this.running.builder : null;
    if (byNode.size === 0 && !(partials && running)) {
      return { aggregated: strategy.aggregateFit(cur.serverRound, this.global.tensors, results, failures), summedElsewhere: 0 };
    }
    if (!partials) throw new CoordinatorError('CLUSTER_UNAVAILABLE', 'held updates under a strategy without partial sums');
    const global = this.global;
    const local = results.filter((r) => !held?.has(r.clientId));
    // The sums made on arrival hold exactly the uploads this round keeps here, unless some were left out (surplus).
    const own = running && running.size === local.length ? running.build() : partials.partial(cur.serverRound, global.tensors, local);
    if (byNode.size === 0) return { aggregated: partials.aggregatePartials(cur.serverRound, global.tensors, [own], failures), summedElsewhere: 0 };
    const remotePartials = this.options.remotePartials;
    if (!remotePartials) throw new CoordinatorError('CLUSTER_UNAVAILABLE', 'held updates without a way to their partial sums');
    const request = { taskId: task.id, roundId: cur.roundId, serverRound: cur.serverRound, global: global.tensors, globalHash: global.sha256, byNode };
    return remotePartials(request).then((remote) => {
      const summedElsewhere = [...byNode.values()].reduce((n, ids) => n + ids.length, 0);
      return { aggregated: partials.aggregatePartials(cur.serverRound, global.tensors, [own, ...remote], failures), summedElsewhere };
    });
  }

  /** The server-side evaluation of a new global model; a throw is logged and yields no figures. */
  private async evaluate(serverRound: number, parameters: Parameters): Promise<{ evaluation: Readonly<Record<string, number>> | null; evalMs: number | null }> {
    if (!this.options.evaluateGlobal) return { evaluation: null, evalMs: null };
    const started = this.clock.monotonic();
    try {
      const pending = this.options.evaluateGlobal(serverRound, parameters);
      const evaluation = pending instanceof Promise ? await pending : pending;
      return { evaluation, evalMs: this.clock.monotonic() - started };
    } catch (err) {
      this.log.error({ err, serverRound }, 'global evaluation failed');
      return { evaluation: null, evalMs: null };
    }
  }

  /** Prometheus figures of a committed round. */
  private observeRound(metrics: Readonly<Record<string, number>>, trust: readonly { readonly trust: number }[], aggregationMs: number): void {
    const { metrics: m } = this.options;
    const labels = { task: this.task.id };
    m.rounds.inc({ ...labels, status: 'completed' });
    m.aggregationSeconds.observe(labels, aggregationMs / 1000);
    for (const t of trust) m.trust.observe(labels, t.trust);
    if (metrics['epsilon'] !== undefined) m.epsilon.set(labels, metrics['epsilon']);
    if (metrics['probeMsPerCandidate'] !== undefined) m.probeSeconds.observe(labels, metrics['probeMsPerCandidate'] / 1000);
  }

  private retry(cur: AttemptState, reason: string): void {
    const { store, task, metrics } = this.options;
    try {
      store.retryRound(task.id, cur.serverRound, cur.attempt, this.clock.now(), reason);
    } catch (err) {
      this.log.error({ err }, 'could not record a retry');
    }
    metrics.rounds.inc({ task: task.id, status: 'retry' });
    this.log.warn({ serverRound: cur.serverRound, attempt: cur.attempt, reason }, 'round retried');
    this.dispatch({ type: 'retried' });
    this.options.transport.broadcastRoundEnd(roundEndPayload(task.id, cur, { status: 'retry', globalHash: this.global.sha256, reason }));
    if (this.state.nextAttempt > task.maxRoundAttempts) {
      this.fail(`round ${cur.serverRound} failed ${task.maxRoundAttempts} attempts`);
      return;
    }
    this.scheduleStart(this.options.retryDelayMs ?? 500);
  }

  private fail(reason: string): void {
    const { store, task } = this.options;
    const previous = this.state.status;
    const at = this.clock.now();
    this.clearTimer('deadline');
    this.cancelPendingStart();
    try {
      store.setTaskStatus(task.id, 'failed', at);
    } catch (err) {
      this.log.error({ err }, 'could not record the task failure');
    }
    this.dispatch({ type: 'failed' });
    this.announceStatus(previous, null, at);
    this.log.error({ reason }, 'task failed');
    this.options.transport.broadcastTaskEnd(taskEndPayload(task.id, 'failed', this.state.completedRounds, this.global.sha256));
  }

  /** Stores `status` (throws when the store does, changing nothing), then adopts and announces it. */
  private storeStatus(status: TaskStatus, action: TaskAction | null, reason?: string): void {
    const at = this.clock.now();
    this.options.store.setTaskStatus(this.task.id, status, at);
    const previous = this.state.status;
    this.dispatch({ type: 'statusStored', status });
    this.announceStatus(previous, action, at, reason);
  }

  /** Tells the listener about the status the state now holds, when it differs from `previous`. */
  private announceStatus(previous: TaskStatus, action: TaskAction | null, at: number, reason?: string): void {
    const status = this.state.status;
    if (previous === status) return;
    try {
      this.options.onStatusChanged?.({ taskId: this.task.id, status, previous, action, at, ...(reason === undefined ? {} : { reason }) });
    } catch (err) {
      this.log.warn({ err }, 'status listener failed');
    }
  }

  private clearTimer(name: keyof Timers): void {
    if (this.timers[name] !== null) this.clock.clearTimeout(this.timers[name]);
    this.timers[name] = null;
  }

  private cancelPendingStart(): void {
    this.clearTimer('pendingStart');
    this.clearTimer('waitingRoom');
  }

  /** After a stored stop: closes the attempt in flight without a model and tells every client. */
  private endByStop(): void {
    const { store, task, metrics } = this.options;
    this.cancelPendingStart();
    this.clearTimer('deadline');
    const cur = this.state.current;
    const wasOpen = this.state.phase === 'open';
    if (wasOpen) this.flushAcceptedRecords();
    this.dispatch({ type: 'stopped' });
    // An attempt already closing told the edge at its close.
    if (cur && wasOpen) this.closeSplitAttempt(cur.roundId);
    if (cur) {
      try {
        store.retryRound(task.id, cur.serverRound, cur.attempt, this.clock.now(), 'task stopped');
      } catch (err) {
        this.log.error({ err }, 'could not close the open attempt of a stopped task');
      }
      metrics.rounds.inc({ task: task.id, status: 'retry' });
    }
    this.options.transport.broadcastTaskEnd(taskEndPayload(task.id, 'stopped', this.state.completedRounds, this.global.sha256));
  }

  private restoreStrategyState(): void {
    const ck = this.options.store.latestCheckpoint(this.task.id);
    try {
      if (ck?.strategyState) this.options.strategy.importState(decodeStrategyState(ck.strategyState));
    } catch (err) {
      this.log.error({ err }, 'could not restore the strategy state');
    }
  }
}
