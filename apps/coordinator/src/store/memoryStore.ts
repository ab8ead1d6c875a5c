/**
 * In-memory {@link CoordinatorStore}: same semantics as the SQLite store, nothing survives the
 * process. Records are copied on the way in and out so callers cannot alias stored state.
 */
import { CoordinatorError } from '../errors.js';
import { checkInvitationUse } from './invitations.js';
import { ABANDONED_REASON } from './types.js';
import type {
  CheckpointRecord,
  ClientRecord,
  CoordinatorStore,
  InvitationRecord,
  RoundCompletion,
  RoundMetricsRecord,
  RoundRecord,
  RunRecord,
  TaskRecord,
  TaskStatus,
  TrustRecord,
  UpdateRecord,
} from './types.js';

const roundKey = (taskId: string, run: number, serverRound: number, attempt: number): string => `${taskId}\u0000${run}\u0000${serverRound}\u0000${attempt}`;
const checkpointKey = (taskId: string, run: number, serverRound: number): string => `${taskId}\u0000${run}\u0000${serverRound}`;

/** A record as held here: tagged with its run, which reads strip. */
type InRun<T> = T & { readonly run: number };

function withoutRun<T extends object>(row: InRun<T>): T {
  const { run: _run, ...record } = row;
  return record as unknown as T;
}

function copyCheckpoint(c: CheckpointRecord): CheckpointRecord {
  return {
    ...c,
    bytes: c.bytes.slice(),
    strategyState: c.strategyState && { json: c.strategyState.json, tensorBytes: c.strategyState.tensorBytes.slice() },
  };
}

/**
 * Everything a {@link MemoryStore} holds, as plain data (byte arrays as `Uint8Array`): what a
 * cluster writes when it compacts its log (cluster/replicatedStore.ts), read back by
 * {@link MemoryStore.fromSnapshot}.
 */
export interface MemorySnapshot {
  readonly version: 1;
  readonly tasks: readonly TaskRecord[];
  readonly clients: readonly ClientRecord[];
  readonly invitations: readonly InvitationRecord[];
  readonly rounds: readonly InRun<RoundRecord>[];
  readonly updates: readonly InRun<UpdateRecord>[];
  readonly checkpoints: readonly InRun<CheckpointRecord>[];
  readonly metrics: readonly InRun<RoundMetricsRecord>[];
  readonly trust: readonly InRun<TrustRecord>[];
  readonly runs: readonly (readonly [taskId: string, runs: readonly { run: number; startedAt: number; endedAt: number | null }[]])[];
}

/** The arrays every {@link MemorySnapshot} holds. */
const SNAPSHOT_ARRAYS = ['tasks', 'clients', 'invitations', 'rounds', 'updates', 'checkpoints', 'metrics', 'trust', 'runs'] as const;

/** A {@link CoordinatorStore} held in maps. */
export class MemoryStore implements CoordinatorStore {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly clients = new Map<string, ClientRecord>();
  private readonly invitations = new Map<string, InvitationRecord>();
  private readonly rounds = new Map<string, InRun<RoundRecord>>();
  private readonly updates: InRun<UpdateRecord>[] = [];
  private readonly checkpoints = new Map<string, InRun<CheckpointRecord>>();
  private readonly metrics: InRun<RoundMetricsRecord>[] = [];
  private readonly trust: InRun<TrustRecord>[] = [];
  /** Start and end of every run, per task, oldest first. */
  private readonly runs = new Map<string, { run: number; startedAt: number; endedAt: number | null }[]>();

  upsertTask(task: Omit<TaskRecord, 'status' | 'run' | 'updatedAt'>): TaskRecord {
    const existing = this.tasks.get(task.taskId);
    const record: TaskRecord = existing
      ? { ...existing, configJson: task.configJson, joinTokenHash: task.joinTokenHash, updatedAt: task.createdAt }
      : { ...task, status: 'waiting', run: 1, updatedAt: task.createdAt };
    this.tasks.set(task.taskId, record);
    if (!existing) this.runs.set(task.taskId, [{ run: 1, startedAt: task.createdAt, endedAt: null }]);
    return { ...record };
  }

  getTask(taskId: string): TaskRecord | undefined {
    const t = this.tasks.get(taskId);
    return t && { ...t };
  }

  listTasks(): TaskRecord[] {
    return [...this.tasks.values()].map((t) => ({ ...t }));
  }

  setTaskStatus(taskId: string, status: TaskStatus, at: number): void {
    const t = this.requireTask(taskId);
    this.tasks.set(taskId, { ...t, status, updatedAt: at });
  }

  beginRun(taskId: string, at: number): number {
    const t = this.requireTask(taskId);
    if (t.status !== 'finished') throw new CoordinatorError('STORE_CONFLICT', `run ${t.run} of ${taskId} is ${t.status}, not finished`);
    const runs = this.runs.get(taskId)!;
    runs[runs.length - 1] = { ...runs[runs.length - 1]!, endedAt: t.updatedAt };
    const final = this.latestCheckpoint(taskId, t.run);
    for (const [key, c] of this.checkpoints) if (c.taskId === taskId && c.run === t.run && c.serverRound !== final?.serverRound) this.checkpoints.delete(key);
    const run = t.run + 1;
    runs.push({ run, startedAt: at, endedAt: null });
    this.tasks.set(taskId, { ...t, run, status: 'waiting', updatedAt: at });
    return run;
  }

  listRuns(taskId: string): RunRecord[] {
    const t = this.tasks.get(taskId);
    if (!t) return [];
    return (this.runs.get(taskId) ?? []).map(({ run, startedAt, endedAt }): RunRecord => {
      const current = run === t.run;
      const latest = this.latestCheckpoint(taskId, run);
      const ended = current && (t.status === 'finished' || t.status === 'stopped' || t.status === 'failed') ? t.updatedAt : endedAt;
      return {
        taskId,
        run,
        status: current ? t.status : 'finished',
        startedAt,
        endedAt: ended,
        completedRounds: latest?.serverRound ?? 0,
        globalHash: latest?.sha256 ?? null,
        finalMetrics: this.listMetrics(taskId, run).at(-1)?.metrics ?? null,
      };
    });
  }

  createClient(client: ClientRecord): void {
    this.requireTask(client.taskId);
    if (this.clients.has(client.clientId)) throw new CoordinatorError('STORE_CONFLICT', `client ${client.clientId} exists`);
    const invitationId = client.invitationId ?? null;
    if (invitationId !== null) {
      const inv = this.invitations.get(invitationId);
      checkInvitationUse(inv, client.taskId, invitationId);
      this.invitations.set(invitationId, { ...inv!, used: inv!.used + 1 });
    }
    const { invitationId: _given, ...rest } = client;
    this.clients.set(client.clientId, invitationId === null ? rest : { ...rest, invitationId });
  }

  createInvitation(invitation: Omit<InvitationRecord, 'used' | 'revokedAt'>): void {
    this.requireTask(invitation.taskId);
    if (this.invitations.has(invitation.invitationId) || [...this.invitations.values()].some((i) => i.tokenHash === invitation.tokenHash)) {
      throw new CoordinatorError('STORE_CONFLICT', `invitation ${invitation.invitationId} exists`);
    }
    this.invitations.set(invitation.invitationId, { ...invitation, used: 0, revokedAt: null });
  }

  findInvitation(taskId: string, tokenHash: string): InvitationRecord | undefined {
    const i = [...this.invitations.values()].find((x) => x.taskId === taskId && x.tokenHash === tokenHash);
    return i && { ...i };
  }

  getInvitation(invitationId: string): InvitationRecord | undefined {
    const i = this.invitations.get(invitationId);
    return i && { ...i };
  }

  listInvitations(taskId: string): InvitationRecord[] {
    return [...this.invitations.values()].filter((i) => i.taskId === taskId).map((i) => ({ ...i }));
  }

  revokeInvitation(taskId: string, invitationId: string, at: number): boolean {
    const i = this.invitations.get(invitationId);
    if (!i || i.taskId !== taskId) return false;
    if (i.revokedAt === null) this.invitations.set(invitationId, { ...i, revokedAt: at });
    return true;
  }

  getClient(clientId: string): ClientRecord | undefined {
    const c = this.clients.get(clientId);
    return c && { ...c };
  }

  touchClient(clientId: string, lastSeenAt: number, capabilitiesJson: string | null): void {
    const c = this.clients.get(clientId);
    if (!c) return;
    this.clients.set(clientId, { ...c, lastSeenAt, capabilitiesJson: capabilitiesJson ?? c.capabilitiesJson });
  }

  listClients(taskId: string): ClientRecord[] {
    return [...this.clients.values()].filter((c) => c.taskId === taskId).map((c) => ({ ...c }));
  }

  startRound(round: Omit<RoundRecord, 'status' | 'endedAt' | 'reason' | 'numAccepted'>): void {
    const { run } = this.requireTask(round.taskId);
    const key = roundKey(round.taskId, run, round.serverRound, round.attempt);
    if (this.rounds.has(key)) throw new CoordinatorError('STORE_CONFLICT', `round ${round.serverRound} attempt ${round.attempt} of ${round.taskId} exists`);
    if ([...this.rounds.values()].some((r) => r.roundId === round.roundId)) throw new CoordinatorError('STORE_CONFLICT', `round id ${round.roundId} exists`);
    this.rounds.set(key, { ...round, run, selected: [...round.selected], status: 'open', endedAt: null, reason: null, numAccepted: 0 });
  }

  retryRound(taskId: string, serverRound: number, attempt: number, endedAt: number, reason: string): void {
    const key = roundKey(taskId, this.currentRun(taskId), serverRound, attempt);
    const r = this.requireOpenRound(key);
    this.rounds.set(key, { ...r, status: 'retry', endedAt, reason });
  }

  abandonOpenRounds(taskId: string, at: number): number {
    let n = 0;
    for (const [key, r] of this.rounds) {
      if (r.taskId === taskId && r.status === 'open') {
        this.rounds.set(key, { ...r, status: 'retry', endedAt: at, reason: ABANDONED_REASON });
        n++;
      }
    }
    return n;
  }

  listRounds(taskId: string, run = this.currentRun(taskId)): RoundRecord[] {
    return [...this.rounds.values()]
      .filter((r) => r.taskId === taskId && r.run === run)
      .sort((a, b) => a.serverRound - b.serverRound || a.attempt - b.attempt)
      .map((r) => ({ ...withoutRun(r), selected: [...r.selected] }));
  }

  recordUpdates(updates: readonly UpdateRecord[]): void {
    for (const u of updates) this.updates.push({ ...u, run: u.run ?? this.currentRun(u.taskId) });
  }

  listUpdates(taskId: string, serverRound?: number, run = this.currentRun(taskId)): UpdateRecord[] {
    return this.updates.filter((u) => u.taskId === taskId && u.run === run && (serverRound === undefined || u.serverRound === serverRound)).map(withoutRun);
  }

  saveInitialCheckpoint(checkpoint: Omit<CheckpointRecord, 'serverRound'>): void {
    const { run } = this.requireTask(checkpoint.taskId);
    const key = checkpointKey(checkpoint.taskId, run, 0);
    if (!this.checkpoints.has(key)) this.checkpoints.set(key, { ...copyCheckpoint({ ...checkpoint, serverRound: 0 }), run });
  }

  completeRound(c: RoundCompletion): void {
    // Validate everything before writing anything: the fake must be as all-or-nothing as SQLite.
    const task = this.requireTask(c.taskId);
    const run = task.run;
    const key = roundKey(c.taskId, run, c.serverRound, c.attempt);
    const round = this.requireOpenRound(key);
    const ckKey = checkpointKey(c.taskId, run, c.serverRound);
    if (this.checkpoints.has(ckKey)) throw new CoordinatorError('STORE_CONFLICT', `round ${c.serverRound} of ${c.taskId} is already complete`);
    this.rounds.set(key, { ...round, status: 'completed', endedAt: c.endedAt, numAccepted: c.numAccepted });
    const checkpoint = copyCheckpoint({
      taskId: c.taskId,
      serverRound: c.serverRound,
      bytes: c.checkpoint.bytes,
      sha256: c.checkpoint.sha256,
      strategyState: c.strategyState,
      createdAt: c.endedAt,
    });
    for (const [k, earlier] of this.checkpoints)
      if (earlier.taskId === c.taskId && earlier.run === run && earlier.serverRound < c.serverRound && earlier.strategyState !== null)
        this.checkpoints.set(k, { ...earlier, strategyState: null });
    this.checkpoints.set(ckKey, { ...checkpoint, run });
    this.metrics.push({ taskId: c.taskId, run, serverRound: c.serverRound, metrics: { ...c.metrics }, createdAt: c.endedAt });
    for (const t of c.trust) this.trust.push({ taskId: c.taskId, run, serverRound: c.serverRound, clientId: t.clientId, trust: t.trust });
    this.tasks.set(c.taskId, { ...task, status: c.taskStatus, updatedAt: c.endedAt });
  }

  /**
   * Drops the current run's checkpoints before `serverRound` (not part of the store interface: a
   * cluster node's replica keeps only the latest model of a run in memory; the log keeps them all).
   */
  forgetCheckpointsBefore(taskId: string, serverRound: number): void {
    const run = this.currentRun(taskId);
    for (const [key, c] of this.checkpoints) if (c.taskId === taskId && c.run === run && c.serverRound < serverRound) this.checkpoints.delete(key);
  }

  /**
   * Drops the current run's closed attempts, upload records, metrics and trust records of rounds
   * before `serverRound` (not part of the store interface: a cluster node's replica keeps the latest
   * rounds' records in memory; Redis keeps them all, replicatedStore.ts). Open attempts stay.
   */
  forgetRecordsBefore(taskId: string, serverRound: number): void {
    const run = this.currentRun(taskId);
    const keep = (r: InRun<{ readonly taskId: string; readonly serverRound: number }>): boolean =>
      r.taskId !== taskId || r.run !== run || r.serverRound >= serverRound;
    for (const records of [this.updates, this.trust, this.metrics] as InRun<{ readonly taskId: string; readonly serverRound: number }>[][]) {
      let kept = 0;
      for (const r of records) if (keep(r)) records[kept++] = r;
      records.length = kept;
    }
    for (const [key, r] of this.rounds) if (r.status !== 'open' && !keep(r)) this.rounds.delete(key);
  }

  /** The attempt as stored, or undefined (not part of the store interface: replicatedStore.ts archives closed attempts). */
  getRound(taskId: string, serverRound: number, attempt: number, run = this.currentRun(taskId)): RoundRecord | undefined {
    const r = this.rounds.get(roundKey(taskId, run, serverRound, attempt));
    return r && { ...withoutRun(r), selected: [...r.selected] };
  }

  latestCheckpoint(taskId: string, run = this.currentRun(taskId)): CheckpointRecord | undefined {
    let best: InRun<CheckpointRecord> | undefined;
    for (const c of this.checkpoints.values()) if (c.taskId === taskId && c.run === run && (!best || c.serverRound > best.serverRound)) best = c;
    return best && copyCheckpoint(withoutRun(best));
  }

  getCheckpoint(taskId: string, serverRound: number, run = this.currentRun(taskId)): CheckpointRecord | undefined {
    const c = this.checkpoints.get(checkpointKey(taskId, run, serverRound));
    return c && copyCheckpoint(withoutRun(c));
  }

  listMetrics(taskId: string, run = this.currentRun(taskId)): RoundMetricsRecord[] {
    return this.metrics
      .filter((m) => m.taskId === taskId && m.run === run)
      .sort((a, b) => a.serverRound - b.serverRound)
      .map((m) => ({ ...withoutRun(m), metrics: { ...m.metrics } }));
  }

  listTrust(taskId: string, run = this.currentRun(taskId)): TrustRecord[] {
    return this.trust.filter((t) => t.taskId === taskId && t.run === run).map(withoutRun);
  }

  close(): void {}

  /**
   * Everything held, as plain data (records shared, not copied: encode it before the next write).
   * With `latestCheckpoints`, only the latest checkpoint of each task's run is kept, as a cluster
   * node's replica keeps them.
   */
  snapshot(options: { readonly latestCheckpoints?: boolean } = {}): MemorySnapshot {
    let checkpoints = [...this.checkpoints.values()];
    if (options.latestCheckpoints) {
      const latest = new Map<string, InRun<CheckpointRecord>>();
      for (const c of checkpoints) {
        const key = `${c.taskId}\u0000${c.run}`;
        if ((latest.get(key)?.serverRound ?? -1) < c.serverRound) latest.set(key, c);
      }
      checkpoints = [...latest.values()];
    }
    return {
      version: 1,
      tasks: [...this.tasks.values()],
      clients: [...this.clients.values()],
      invitations: [...this.invitations.values()],
      rounds: [...this.rounds.values()],
      updates: [...this.updates],
      checkpoints,
      metrics: [...this.metrics],
      trust: [...this.trust],
      runs: [...this.runs],
    };
  }

  /**
   * A store holding what {@link snapshot} gave. Throws `STORE_SCHEMA` for anything that is not a
   * version-1 snapshot (a missing array, a record without its keys); nothing is half-read.
   */
  static fromSnapshot(value: unknown): MemoryStore {
    const bad = (why: string): never => {
      throw new CoordinatorError('STORE_SCHEMA', `not a store snapshot: ${why}`);
    };
    if (typeof value !== 'object' || value === null) return bad('not an object');
    const s = value as Record<string, unknown>;
    if (s['version'] !== 1) return bad(`version ${String(s['version'])}, expected 1`);
    for (const name of SNAPSHOT_ARRAYS) if (!Array.isArray(s[name])) bad(`${name} is not an array`);
    const records = (name: (typeof SNAPSHOT_ARRAYS)[number], keys: readonly string[]): Record<string, unknown>[] =>
      (s[name] as unknown[]).map((r, i) => {
        if (typeof r !== 'object' || r === null || keys.some((k) => !(k in r))) bad(`${name}[${i}] lacks one of ${keys.join(', ')}`);
        return r as Record<string, unknown>;
      });
    const snap = value as MemorySnapshot;
    const tasks = records('tasks', ['taskId', 'run', 'status']);
    const clients = records('clients', ['clientId', 'taskId']);
    const invitations = records('invitations', ['invitationId', 'taskId']);
    const rounds = records('rounds', ['taskId', 'run', 'serverRound', 'attempt', 'selected']);
    records('updates', ['taskId', 'run', 'serverRound', 'clientId']);
    const checkpoints = records('checkpoints', ['taskId', 'run', 'serverRound', 'bytes']);
    records('metrics', ['taskId', 'run', 'serverRound', 'metrics']);
    records('trust', ['taskId', 'run', 'serverRound', 'clientId']);
    for (const [i, c] of checkpoints.entries()) if (!(c['bytes'] instanceof Uint8Array)) bad(`checkpoints[${i}].bytes is not bytes`);
    for (const [i, r] of (s['runs'] as unknown[]).entries())
      if (!Array.isArray(r) || typeof r[0] !== 'string' || !Array.isArray(r[1])) bad(`runs[${i}] is not [taskId, runs]`);
    const store = new MemoryStore();
    for (const t of tasks as unknown as TaskRecord[]) store.tasks.set(t.taskId, { ...t });
    for (const c of clients as unknown as ClientRecord[]) store.clients.set(c.clientId, { ...c });
    for (const i of invitations as unknown as InvitationRecord[]) store.invitations.set(i.invitationId, { ...i });
    for (const r of rounds as unknown as InRun<RoundRecord>[])
      store.rounds.set(roundKey(r.taskId, r.run, r.serverRound, r.attempt), { ...r, selected: [...r.selected] });
    store.updates.push(...snap.updates.map((u) => ({ ...u })));
    for (const c of snap.checkpoints) store.checkpoints.set(checkpointKey(c.taskId, c.run, c.serverRound), { ...copyCheckpoint(c), run: c.run });
    store.metrics.push(...snap.metrics.map((m) => ({ ...m, metrics: { ...m.metrics } })));
    store.trust.push(...snap.trust.map((t) => ({ ...t })));
    for (const [taskId, runs] of snap.runs)
      store.runs.set(
        taskId,
        runs.map((r) => ({ ...r })),
      );
    return store;
  }

  /** The task's current run (1 for an unknown task, which has nothing stored). */
  private currentRun(taskId: string): number {
    return this.tasks.get(taskId)?.run ?? 1;
  }

  private requireTask(taskId: string): TaskRecord {
    const t = this.tasks.get(taskId);
    if (!t) throw new CoordinatorError('TASK_UNKNOWN', `no task ${taskId}`);
    return t;
  }

  private requireOpenRound(key: string): InRun<RoundRecord> {
    const r = this.rounds.get(key);
    if (!r || r.status !== 'open') throw new CoordinatorError('STORE_CONFLICT', `no open round ${key.split('\u0000').join('/')}`);
    return r;
  }
}
