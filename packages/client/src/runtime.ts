/**
 * The client runtime: one implementation for a browser tab and a headless Node process.
 *
 *   connect (join token, stored identity if any) → hello (capabilities) → wait to be selected →
 *   round start: decode the global model, train locally (with the round's L_modal weight, head and LoRA α),
 *   upload Δ = local − global of the adapters and head, encoded as the round asks → wait → … → task end.
 *
 * Invariants, enforced here:
 * - Every inbound payload is parsed with its protocol schema; a malformed one is reported and
 *   ignored, never trusted. Listeners never throw.
 * - At most one round trains at a time; a newer round start, the round's end, a disconnect or
 *   `close()` stops it at the next batch, and nothing is uploaded for it.
 * - Each weight round's model is built fresh and disposed when the round ends (success or not), so
 *   no tensor or optimiser state leaks into the next round. A representation round (FedAFD family:
 *   the round config carries a `representation` section) runs the client's
 *   {@link RepresentationRoundRunner} instead, which keeps its model between rounds and uploads
 *   codec bytes of kind `representations`; without one such a round is refused.
 * - A split round (FedUMM's device–edge split: the round config carries a `split` section) trains
 *   through the edge one acknowledged step at a time (split/splitRound.ts over split/splitLink.ts):
 *   `EDGE_BUSY` is waited out and the step sent again while the deadline allows; any other refusal,
 *   a step not acknowledged in time or a disconnect gives the round up (reported as
 *   `CLIENT_SPLIT_FAILED`, except after a disconnect or stop), and nothing is uploaded for it.
 * - Only the delta of the modalities the client holds (plus the shared `fusion` group) leaves the
 *   client, clipped to the round's norm bound when it is honest; an adversarial behaviour is
 *   applied after clipping, openly, to what is uploaded (localRound.ts).
 * - What is uploaded depends on the round start, the identity, the data and the seed only: the
 *   same round replays bit-identically, whatever rounds came before.
 * - The identity the coordinator issues is saved before anything else happens, so a reconnect or a
 *   restart resumes it; an identity the coordinator refuses is forgotten and the join token used.
 */
import { isFlCoreError } from '@chorus/fl-core';
import { isModelsError } from '@chorus/models';
import { PROTOCOL_VERSION, roundEndSchema, roundStartSchema, taskEndSchema } from '@chorus/protocol';
import type { Ack, AuthPayload, Capabilities, HelloResult, ParsedRoundStart, ProtocolErrorCode, UpdateResult } from '@chorus/protocol';
import { checkBehaviour } from './adversarial.js';
import type { AdversarialBehaviour } from './adversarial.js';
import { createSocket, refusalOf } from './connection.js';
import type { ClientSocket, SocketSetup } from './connection.js';
import type { LocalDataset } from './dataset.js';
import { ClientError, isClientError } from './errors.js';
import type { ClientErrorCode } from './errors.js';
import { ClientEvents } from './events.js';
import type { ClientEventListener, ClientStatus, TaskEndEvent } from './events.js';
import { encodeLocalUpdate, runLocalRound } from './localRound.js';
import { createSplitLink, socketStepSender } from './split/splitLink.js';
import { runSplitRound } from './split/splitRound.js';
import { earnProof } from './proofOfWork.js';
import type { ModelFactory } from './models.js';
import type { IdentityStorage, StoredIdentity } from './storage.js';
import type { RepresentationRoundRunner } from './fedafd/roundRunner.js';

/** Options of {@link ChorusClient}. */
export interface ChorusClientOptions {
  /** Coordinator URL, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  readonly taskId: string;
  /** The task's join token (omitting it gets the coordinator's AUTH_REQUIRED refusal). */
  readonly token?: string;
  readonly storage: IdentityStorage;
  readonly dataset: LocalDataset;
  readonly models: ModelFactory;
  /** TF.js backend name to advertise (e.g. `tf.getBackend()`). */
  readonly backend: string;
  /** Adversarial behaviour (experiments only); null or absent: honest. */
  readonly behaviour?: AdversarialBehaviour | null;
  /**
   * Seed of shuffling, noise and the label-flip permutation (default 0). Each round draws from
   * (seed, server round) alone, so the same round start gives the same upload (see localRound.ts).
   */
  readonly seed?: number;
  /** Examples of the local data scored before and after training (default 256; 0 turns it off). */
  readonly evalExamples?: number;
  /** Reconnect after a dropped connection (default true). */
  readonly reconnect?: boolean;
  /** Consecutive failed reconnection attempts before giving up with `CLIENT_CONNECT_FAILED` (default: never give up). */
  readonly reconnectAttempts?: number;
  /** Milliseconds to wait for an acknowledgement (default 10 000). */
  readonly ackTimeoutMs?: number;
  /** socket.io transports (default websocket). */
  readonly transports?: SocketSetup['transports'];
  /** Clock (default Date.now). */
  readonly now?: () => number;
  /**
   * What runs a representation round (FedAFD family: a round start whose config carries a
   * `representation` section), e.g. a `FedAfdRoundRunner` of the client's kind. Absent: such a round
   * is refused with `CLIENT_BAD_ROUND`, and weight rounds run as always.
   */
  readonly representation?: RepresentationRoundRunner;
}

/** Why {@link ChorusClient.finished} resolved. */
export type ClientOutcome =
  { readonly kind: 'task-end'; readonly taskEnd: TaskEndEvent } | { readonly kind: 'failed'; readonly error: ClientError } | { readonly kind: 'closed' };

interface RoundRun {
  readonly round: ParsedRoundStart;
  stopped: boolean;
  readonly done: Promise<void>;
}

const RETRY_DELAY_MS = 1000;
const MAX_UPLOAD_RETRIES = 3;

/** Lets sockets, timers and other in-process clients run between training steps. */
const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One federated client; see the module comment. */
export class ChorusClient {
  private readonly events = new ClientEvents();
  private readonly behaviour: AdversarialBehaviour | null;
  private readonly now: () => number;
  private socket: ClientSocket | null = null;
  private identity: StoredIdentity | null = null;
  private currentStatus: ClientStatus = 'closed';
  private current: RoundRun | null = null;
  private ended = false;
  private resolveFinished!: (o: ClientOutcome) => void;
  private readonly finishedPromise: Promise<ClientOutcome>;
  private startWaiters: { resolve: (r: HelloResult) => void; reject: (e: ClientError) => void } | null = null;
  private lastHello: HelloResult | null = null;
  /** Waiting for the id the next accepted hello carries (see {@link nextIdentity}). */
  private identityWaiters: ((clientId: string | undefined) => void)[] = [];

  constructor(private readonly options: ChorusClientOptions) {
    if (typeof options.url !== 'string' || options.url.length === 0) throw new ClientError('CLIENT_BAD_CONFIG', 'url is required');
    if (typeof options.taskId !== 'string' || options.taskId.length === 0) throw new ClientError('CLIENT_BAD_CONFIG', 'taskId is required');
    const evalExamples = options.evalExamples ?? 256;
    if (!Number.isInteger(evalExamples) || evalExamples < 0)
      throw new ClientError('CLIENT_BAD_CONFIG', `evalExamples must be an integer ≥ 0, got ${evalExamples}`);
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new ClientError('CLIENT_BAD_CONFIG', `seed must be a non-negative integer, got ${seed}`);
    this.behaviour = options.behaviour ? checkBehaviour(options.behaviour) : null;
    this.now = options.now ?? (() => Date.now());
    this.finishedPromise = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /** Subscribes to progress events; returns the unsubscribe function. */
  on(listener: ClientEventListener): () => void {
    return this.events.on(listener);
  }

  /** The coordinator-issued id, once known. */
  get clientId(): string | undefined {
    return this.identity?.clientId ?? this.lastHello?.clientId;
  }

  /** Where the client stands. */
  get status(): ClientStatus {
    return this.currentStatus;
  }

  /** The behaviour this client applies (null: honest). */
  get adversarialBehaviour(): AdversarialBehaviour | null {
    return this.behaviour;
  }

  /** What this client advertises. */
  capabilities(): Capabilities {
    return { backend: this.options.backend, modalities: [...this.options.dataset.modalities], numExamples: this.options.dataset.numExamples };
  }

  /**
   * Connects and joins the task; resolves with the coordinator's hello once joined. Rejects with a
   * `ClientError` when the coordinator refuses (`protocolCode` says why) or cannot be reached.
   */
  async start(): Promise<HelloResult> {
    if (this.socket) throw new ClientError('CLIENT_BAD_CONFIG', 'start() was already called');
    if (this.ended) throw new ClientError('CLIENT_CLOSED', 'the client is closed');
    try {
      this.identity = await this.options.storage.load(this.options.taskId);
    } catch (err) {
      this.report('CLIENT_STORAGE', `could not read the stored identity: ${(err as Error).message}`, false);
    }
    const socket = createSocket(this.options.url, {
      auth: () => this.auth(),
      reconnection: this.options.reconnect ?? true,
      ...(this.options.transports ? { transports: this.options.transports } : {}),
      extra: { reconnectionDelay: 500, reconnectionDelayMax: 5000, timeout: 10_000, reconnectionAttempts: this.options.reconnectAttempts ?? Infinity },
    });
    this.socket = socket;
    const started = new Promise<HelloResult>((resolve, reject) => (this.startWaiters = { resolve, reject }));
    socket.on('connect', () => void this.hello());
    socket.on('connect_error', (err: Error & { data?: unknown }) => void this.onConnectError(err));
    socket.on('disconnect', (reason) => this.onDisconnect(reason));
    socket.on('roundStart', (payload) => this.onRoundStart(payload));
    socket.on('roundEnd', (payload) => this.onRoundEnd(payload));
    socket.on('taskEnd', (payload) => this.onTaskEnd(payload));
    socket.io.on('reconnect_failed', () => this.fail(new ClientError('CLIENT_CONNECT_FAILED', 'gave up reconnecting')));
    this.setStatus('connecting');
    socket.connect();
    return started;
  }

  /** Resolves when the task ends, the client fails for good, or it is closed. */
  finished(): Promise<ClientOutcome> {
    return this.finishedPromise;
  }

  /** Drops the connection as a network failure would; the client reconnects (when enabled) and resumes its identity. */
  dropConnection(): void {
    const engine = this.socket?.io.engine as { close(): void } | undefined;
    engine?.close();
  }

  /** Stops training, disconnects and resolves {@link finished} with `closed`. Idempotent. */
  async close(): Promise<void> {
    const run = this.current;
    if (run) run.stopped = true;
    if (!this.ended) {
      this.ended = true;
      this.socket?.close();
      this.setStatus('closed');
      this.startWaiters?.reject(new ClientError('CLIENT_CLOSED', 'closed before joining'));
      this.startWaiters = null;
      this.resolveFinished({ kind: 'closed' });
    }
    if (run) await run.done;
  }

  // -------------------------------------------------------------------------------------------

  private auth(): Partial<AuthPayload> {
    const id = this.identity;
    return {
      taskId: this.options.taskId,
      ...(this.options.token === undefined ? {} : { token: this.options.token }),
      ...(id ? { clientId: id.clientId, clientSecret: id.clientSecret } : {}),
    };
  }

  private setStatus(status: ClientStatus, detail?: string): void {
    if (this.ended && status !== 'closed' && status !== 'finished' && status !== 'failed') return;
    this.currentStatus = status;
    this.events.emit({ type: 'status', status, ...(detail === undefined ? {} : { detail }) });
  }

  private report(code: ClientErrorCode, message: string, fatal: boolean, protocolCode?: ProtocolErrorCode): void {
    this.events.emit({ type: 'error', code, message, fatal, ...(protocolCode === undefined ? {} : { protocolCode }) });
  }

  private fail(error: ClientError): void {
    if (this.ended) return;
    this.ended = true;
    if (this.current) this.current.stopped = true;
    this.report(error.code, error.message, true, error.protocolCode);
    this.socket?.close();
    this.setStatus('failed', error.message);
    this.startWaiters?.reject(error);
    this.startWaiters = null;
    this.resolveFinished({ kind: 'failed', error });
  }

  private async onConnectError(err: Error & { data?: unknown }): Promise<void> {
    if (this.ended) return;
    const refusal = refusalOf(err);
    if (!refusal) {
      // A transport failure: socket.io's manager retries on its own when reconnection is on.
      if (!(this.options.reconnect ?? true)) this.fail(new ClientError('CLIENT_CONNECT_FAILED', err.message));
      else this.setStatus('connecting', err.message);
      return;
    }
    // A refused handshake is final for socket.io; whether to try again is decided here.
    if (refusal.code === 'AUTH_INVALID' && this.identity) {
      this.report('CLIENT_CONNECT_REFUSED', 'the coordinator does not know the stored identity; joining afresh with the token', false, refusal.code);
      this.identity = null;
      await this.options.storage.clear(this.options.taskId).catch((e: unknown) => this.report('CLIENT_STORAGE', (e as Error).message, false));
      if (!this.ended) this.socket?.connect();
      return;
    }
    if (refusal.code === 'RATE_LIMITED') {
      this.setStatus('connecting', 'rate limited; retrying');
      await sleep(RETRY_DELAY_MS);
      if (!this.ended) this.socket?.connect();
      return;
    }
    this.fail(new ClientError('CLIENT_CONNECT_REFUSED', refusal.message || err.message, refusal.code));
  }

  private async hello(): Promise<void> {
    const socket = this.socket;
    if (!socket || this.ended) return;
    let res: Ack<HelloResult>;
    let proof: { challenge: string; nonce: string } | undefined;
    if (!this.identity) {
      // A new identity: the task may ask for proof of work first (difficulty 0 when it does not).
      try {
        proof = await earnProof(socket, { ackTimeoutMs: this.options.ackTimeoutMs ?? 10_000, cancelled: () => this.ended || !socket.connected });
      } catch (err) {
        if (this.ended || !socket.connected) return;
        if (err instanceof ClientError && err.code === 'CLIENT_TIMEOUT') {
          this.report('CLIENT_TIMEOUT', err.message, false);
          return;
        }
        this.fail(err instanceof ClientError ? err : new ClientError('CLIENT_HELLO_REFUSED', (err as Error).message));
        return;
      }
      if (this.ended) return;
    }
    try {
      res = await socket
        .timeout(this.options.ackTimeoutMs ?? 10_000)
        .emitWithAck('hello', { type: 'hello', protocolVersion: PROTOCOL_VERSION, capabilities: this.capabilities(), ...(proof ? { proof } : {}) });
    } catch {
      // No answer: the connection is gone or going; the next connect says hello again.
      this.report('CLIENT_TIMEOUT', 'hello was not acknowledged', false);
      return;
    }
    if (this.ended) return;
    if (!res.ok) {
      const { code, message } = res.error;
      if (code === 'TASK_FINISHED' || code === 'TASK_STOPPED') {
        const status = code === 'TASK_STOPPED' ? 'stopped' : 'finished';
        this.finish(
          { type: 'task-end', status, completedRounds: this.lastHello?.completedRounds ?? 0, globalHash: '' },
          `the task has already ${status === 'stopped' ? 'been stopped' : 'ended'}`,
        );
      } else if (code === 'RATE_LIMITED') {
        await sleep(RETRY_DELAY_MS);
        if (socket.connected) void this.hello();
      } else {
        this.fail(new ClientError('CLIENT_HELLO_REFUSED', message, code));
      }
      return;
    }
    const resumed = res.clientSecret === undefined;
    if (res.clientSecret !== undefined) {
      this.identity = { taskId: this.options.taskId, clientId: res.clientId, clientSecret: res.clientSecret, issuedAt: this.now() };
      try {
        await this.options.storage.save(this.identity);
      } catch (err) {
        this.report('CLIENT_STORAGE', `could not store the identity: ${(err as Error).message}`, false);
      }
    }
    this.lastHello = res;
    for (const resolve of this.identityWaiters.splice(0)) resolve(res.clientId);
    this.events.emit({ type: 'identity', clientId: res.clientId, resumed, completedRounds: res.completedRounds });
    if (!this.current) this.setStatus('waiting');
    this.startWaiters?.resolve(res);
    this.startWaiters = null;
  }

  private onDisconnect(reason: string): void {
    if (this.ended) return;
    // The coordinator drops a disconnected client from its round, so finishing the round is wasted work.
    if (this.current) this.current.stopped = true;
    this.setStatus('disconnected', reason);
    // The server closed this connection on purpose (e.g. the same identity connected elsewhere): do not fight it.
    if (reason === 'io server disconnect') this.fail(new ClientError('CLIENT_CONNECT_FAILED', 'the coordinator closed the connection'));
  }

  private onRoundStart(payload: unknown): void {
    if (this.ended) return;
    const parsed = roundStartSchema.safeParse(payload);
    if (!parsed.success || parsed.data.taskId !== this.options.taskId) {
      this.report('CLIENT_BAD_ROUND', parsed.success ? `round start for task '${parsed.data.taskId}'` : 'malformed round start', false);
      return;
    }
    const previous = this.current;
    if (previous) previous.stopped = true;
    const run: { round: ParsedRoundStart; stopped: boolean; done: Promise<void> } = { round: parsed.data, stopped: false, done: Promise.resolve() };
    run.done = (async () => {
      if (previous) await previous.done;
      try {
        await this.runRound(run);
      } catch (err) {
        const e = toClientError(err);
        this.report(e.code, e.message, false, e.protocolCode);
      } finally {
        if (this.current === run) {
          this.current = null;
          if (this.socket?.connected) this.setStatus('waiting');
        }
      }
    })();
    this.current = run;
  }

  private onRoundEnd(payload: unknown): void {
    const parsed = roundEndSchema.safeParse(payload);
    if (!parsed.success) {
      this.report('CLIENT_BAD_ROUND', 'malformed round end', false);
      return;
    }
    const p = parsed.data;
    if (this.current && this.current.round.roundId === p.roundId) this.current.stopped = true;
    this.events.emit({ type: 'round-end', serverRound: p.serverRound, attempt: p.attempt, status: p.status, globalHash: p.globalHash });
  }

  private onTaskEnd(payload: unknown): void {
    const parsed = taskEndSchema.safeParse(payload);
    if (!parsed.success || parsed.data.taskId !== this.options.taskId) {
      this.report('CLIENT_BAD_ROUND', 'malformed task end', false);
      return;
    }
    const p = parsed.data;
    this.finish({ type: 'task-end', status: p.status, completedRounds: p.completedRounds, globalHash: p.globalHash }, `task ${p.status}`);
  }

  private finish(event: TaskEndEvent, detail: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.current) this.current.stopped = true;
    this.events.emit(event);
    this.socket?.close();
    this.setStatus('finished', detail);
    this.startWaiters?.reject(new ClientError('CLIENT_CLOSED', detail));
    this.startWaiters = null;
    this.resolveFinished({ kind: 'task-end', taskEnd: event });
  }

  private async runRound(run: RoundRun): Promise<void> {
    const { round } = run;
    const serverRound = round.serverRound;
    this.events.emit({ type: 'round-start', serverRound, attempt: round.attempt, roundId: round.roundId, deadlineAt: round.deadlineAt });
    this.events.emit({ type: 'download', serverRound, bytesDone: round.global.byteLength, bytesTotal: round.global.byteLength });
    this.setStatus('training', `round ${serverRound}`);
    const started = this.now();
    if (round.config.representation) {
      await this.runRepresentationRound(run, started);
      return;
    }
    if (round.config.split) {
      await this.trainSplitRound(run, started);
      return;
    }
    const result = await runLocalRound({
      round,
      dataset: this.options.dataset,
      models: this.options.models,
      seed: this.options.seed ?? 0,
      behaviour: this.behaviour,
      evalExamples: this.options.evalExamples ?? 256,
      onEvent: (e) => this.events.emit(e),
      shouldStop: () => run.stopped,
      pause,
    });
    if (!result || run.stopped) return;
    const metrics = { ...result.metrics, trainMs: this.now() - started };
    const clientId = await this.roundIdentity(run);
    if (clientId === null) return;
    await this.upload(run, encodeLocalUpdate(round, clientId, result.tensors), metrics);
  }

  /** A representation round (FedAFD family): the runner's representations of the public batch are the upload. */
  private async runRepresentationRound(run: RoundRun, started: number): Promise<void> {
    const runner = this.options.representation;
    if (!runner)
      throw new ClientError('CLIENT_BAD_ROUND', `round ${run.round.serverRound} is a representation round, and this client has no representation model`);
    // The id goes into the upload's header, which the runner writes before it trains.
    const clientId = await this.roundIdentity(run);
    if (clientId === null) return;
    const serverRound = run.round.serverRound;
    const result = await runner.run({
      round: run.round,
      clientId,
      shouldStop: () => run.stopped,
      pause,
      // The same progress events as a weight round's, so a tab's bars move in either kind.
      onStep: (step) => this.events.emit({ type: 'train', serverRound, ...step }),
    });
    if (!result || run.stopped) return;
    await this.upload(run, result.bytes, { ...result.metrics, trainMs: this.now() - started });
  }

  /**
   * The client id a round's messages carry. A round start can arrive before the acknowledgement of
   * the hello that carries the id (the hello that filled the round), so it waits for that
   * acknowledgement, within the round's deadline and the ack timeout. Null when the round was stopped
   * meanwhile; throws when no id came.
   */
  private async roundIdentity(run: RoundRun): Promise<string | null> {
    const { round } = run;
    const clientId = this.clientId ?? (await this.nextIdentity(Math.min(round.deadlineAt - this.now(), this.options.ackTimeoutMs ?? 10_000)));
    if (run.stopped) return null;
    if (!clientId) throw new ClientError('CLIENT_BAD_ROUND', 'selected before an identity was issued');
    return clientId;
  }

  /** The id of the next accepted hello, or undefined after `ms` without one. */
  private nextIdentity(ms: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.identityWaiters = this.identityWaiters.filter((w) => w !== done);
          resolve(undefined);
        },
        Math.max(0, ms),
      );
      const done = (clientId: string | undefined): void => {
        clearTimeout(timer);
        resolve(clientId);
      };
      this.identityWaiters.push(done);
    });
  }

  /** A split round (FedUMM): each step goes through the edge over this socket; the delta is uploaded as a weight round's. */
  private async trainSplitRound(run: RoundRun, started: number): Promise<void> {
    const { round } = run;
    const split = round.config.split!;
    // The id goes into every step's header, so it is needed before the first step.
    const clientId = await this.roundIdentity(run);
    if (clientId === null) return;
    const link = createSplitLink({
      taskId: round.taskId,
      roundId: round.roundId,
      send: socketStepSender(() => this.socket),
      stepTimeoutMs: split.stepTimeoutMs,
      deadlineAt: round.deadlineAt,
      now: this.now,
      sleep,
      cancelled: () => run.stopped,
    });
    const result = await runSplitRound({
      round,
      clientId,
      link,
      dataset: this.options.dataset,
      models: this.options.models,
      seed: this.options.seed ?? 0,
      behaviour: this.behaviour,
      evalExamples: this.options.evalExamples ?? 256,
      now: this.now,
      onEvent: (e) => this.events.emit(e),
      shouldStop: () => run.stopped,
      pause,
    });
    if (!result || run.stopped) return;
    await this.upload(run, encodeLocalUpdate(round, clientId, result.tensors), { ...result.metrics, trainMs: this.now() - started });
  }

  private async upload(run: RoundRun, bytes: Uint8Array, metrics: Record<string, number>): Promise<void> {
    const { round } = run;
    const serverRound = round.serverRound;
    this.setStatus('uploading', `round ${serverRound}`);
    this.events.emit({ type: 'upload', serverRound, bytesDone: 0, bytesTotal: bytes.byteLength });
    const finiteMetrics = Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
    for (let attempt = 0; ; attempt++) {
      const socket = this.socket;
      if (!socket?.connected || run.stopped) {
        this.report('CLIENT_UPLOAD_REFUSED', `round ${serverRound}: the connection dropped before the upload`, false);
        return;
      }
      let res: Ack<UpdateResult>;
      try {
        res = await socket.timeout(Math.max(this.options.ackTimeoutMs ?? 10_000, round.deadlineAt - this.now())).emitWithAck('submitUpdate', {
          type: 'update',
          protocolVersion: PROTOCOL_VERSION,
          taskId: round.taskId,
          roundId: round.roundId,
          serverRound,
          numExamples: this.options.dataset.numExamples,
          metrics: finiteMetrics,
          update: bytes,
        });
      } catch {
        // After a task end or close() the socket is gone on purpose; only an unexpected silence is worth reporting.
        if (!this.ended) this.report('CLIENT_TIMEOUT', `round ${serverRound}: the upload was not acknowledged`, false);
        return;
      }
      if (res.ok) {
        this.events.emit({ type: 'upload', serverRound, bytesDone: bytes.byteLength, bytesTotal: bytes.byteLength });
        this.events.emit({ type: 'update-result', serverRound, accepted: true });
        return;
      }
      const { code, message } = res.error;
      // Refusals that happen before the coordinator counts the upload can be retried.
      const retriable = code === 'RATE_LIMITED' || code === 'NOT_JOINED';
      if (retriable && attempt < MAX_UPLOAD_RETRIES && this.now() < round.deadlineAt) {
        if (code === 'NOT_JOINED') await this.hello();
        else await sleep(RETRY_DELAY_MS);
        continue;
      }
      this.events.emit({ type: 'update-result', serverRound, accepted: false, code, message });
      if (code === 'TASK_FINISHED')
        this.finish({ type: 'task-end', status: 'finished', completedRounds: serverRound - 1, globalHash: round.globalHash }, 'the task has ended');
      else if (code === 'TASK_STOPPED')
        this.finish({ type: 'task-end', status: 'stopped', completedRounds: serverRound - 1, globalHash: round.globalHash }, 'the task was stopped');
      else if (code === 'PROTOCOL_VERSION' || code === 'BAD_PAYLOAD') this.fail(new ClientError('CLIENT_UPLOAD_REFUSED', message, code));
      return;
    }
  }
}

function toClientError(err: unknown): ClientError {
  if (isClientError(err)) return err;
  if (isFlCoreError(err)) return new ClientError('CLIENT_MODEL_MISMATCH', err.message);
  if (isModelsError(err)) return new ClientError('CLIENT_TRAINING_FAILED', err.message);
  return new ClientError('CLIENT_TRAINING_FAILED', err instanceof Error ? err.message : String(err));
}
