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
  TaskRecord,
  TaskStatus,
  TrustRecord,
  UpdateRecord,
} from './types.js';

const roundKey = (taskId: string, serverRound: number, attempt: number): string => `${taskId}\u0000${serverRound}\u0000${attempt}`;
const checkpointKey = (taskId: string, serverRound: number): string => `${taskId}\u0000${serverRound}`;

function copyCheckpoint(c: CheckpointRecord): CheckpointRecord {
  return {
    ...c,
    bytes: c.bytes.slice(),
    strategyState: c.strategyState && { json: c.strategyState.json, tensorBytes: c.strategyState.tensorBytes.slice() },
  };
}

/** A {@link CoordinatorStore} held in maps. */
export class MemoryStore implements CoordinatorStore {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly clients = new Map<string, ClientRecord>();
  private readonly invitations = new Map<string, InvitationRecord>();
  private readonly rounds = new Map<string, RoundRecord>();
  private readonly updates: UpdateRecord[] = [];
  private readonly checkpoints = new Map<string, CheckpointRecord>();
  private readonly metrics: RoundMetricsRecord[] = [];
  private readonly trust: TrustRecord[] = [];

  upsertTask(task: Omit<TaskRecord, 'status' | 'updatedAt'>): TaskRecord {
    const existing = this.tasks.get(task.taskId);
    const record: TaskRecord = existing
      ? { ...existing, configJson: task.configJson, joinTokenHash: task.joinTokenHash, updatedAt: task.createdAt }
      : { ...task, status: 'waiting', updatedAt: task.createdAt };
    this.tasks.set(task.taskId, record);
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
    this.requireTask(round.taskId);
    const key = roundKey(round.taskId, round.serverRound, round.attempt);
    if (this.rounds.has(key)) throw new CoordinatorError('STORE_CONFLICT', `round ${round.serverRound} attempt ${round.attempt} of ${round.taskId} exists`);
    this.rounds.set(key, { ...round, selected: [...round.selected], status: 'open', endedAt: null, reason: null, numAccepted: 0 });
  }

  retryRound(taskId: string, serverRound: number, attempt: number, endedAt: number, reason: string): void {
    const key = roundKey(taskId, serverRound, attempt);
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

  listRounds(taskId: string): RoundRecord[] {
    return [...this.rounds.values()]
      .filter((r) => r.taskId === taskId)
      .sort((a, b) => a.serverRound - b.serverRound || a.attempt - b.attempt)
      .map((r) => ({ ...r, selected: [...r.selected] }));
  }

  recordUpdates(updates: readonly UpdateRecord[]): void {
    for (const u of updates) this.updates.push({ ...u });
  }

  listUpdates(taskId: string, serverRound?: number): UpdateRecord[] {
    return this.updates.filter((u) => u.taskId === taskId && (serverRound === undefined || u.serverRound === serverRound)).map((u) => ({ ...u }));
  }

  saveInitialCheckpoint(checkpoint: Omit<CheckpointRecord, 'serverRound'>): void {
    this.requireTask(checkpoint.taskId);
    const key = checkpointKey(checkpoint.taskId, 0);
    if (!this.checkpoints.has(key)) this.checkpoints.set(key, copyCheckpoint({ ...checkpoint, serverRound: 0 }));
  }

  completeRound(c: RoundCompletion): void {
    // Validate everything before writing anything: the fake must be as all-or-nothing as SQLite.
    const key = roundKey(c.taskId, c.serverRound, c.attempt);
    const round = this.requireOpenRound(key);
    const task = this.requireTask(c.taskId);
    const ckKey = checkpointKey(c.taskId, c.serverRound);
    if (this.checkpoints.has(ckKey)) throw new CoordinatorError('STORE_CONFLICT', `round ${c.serverRound} of ${c.taskId} is already complete`);
    this.rounds.set(key, { ...round, status: 'completed', endedAt: c.endedAt, numAccepted: c.numAccepted });
    this.checkpoints.set(
      ckKey,
      copyCheckpoint({
        taskId: c.taskId,
        serverRound: c.serverRound,
        bytes: c.checkpoint.bytes,
        sha256: c.checkpoint.sha256,
        strategyState: c.strategyState,
        createdAt: c.endedAt,
      }),
    );
    this.metrics.push({ taskId: c.taskId, serverRound: c.serverRound, metrics: { ...c.metrics }, createdAt: c.endedAt });
    for (const t of c.trust) this.trust.push({ taskId: c.taskId, serverRound: c.serverRound, clientId: t.clientId, trust: t.trust });
    this.tasks.set(c.taskId, { ...task, status: c.taskStatus, updatedAt: c.endedAt });
  }

  latestCheckpoint(taskId: string): CheckpointRecord | undefined {
    let best: CheckpointRecord | undefined;
    for (const c of this.checkpoints.values()) if (c.taskId === taskId && (!best || c.serverRound > best.serverRound)) best = c;
    return best && copyCheckpoint(best);
  }

  getCheckpoint(taskId: string, serverRound: number): CheckpointRecord | undefined {
    const c = this.checkpoints.get(checkpointKey(taskId, serverRound));
    return c && copyCheckpoint(c);
  }

  listMetrics(taskId: string): RoundMetricsRecord[] {
    return this.metrics
      .filter((m) => m.taskId === taskId)
      .sort((a, b) => a.serverRound - b.serverRound)
      .map((m) => ({ ...m, metrics: { ...m.metrics } }));
  }

  listTrust(taskId: string): TrustRecord[] {
    return this.trust.filter((t) => t.taskId === taskId).map((t) => ({ ...t }));
  }

  close(): void {}

  private requireTask(taskId: string): TaskRecord {
    const t = this.tasks.get(taskId);
    if (!t) throw new CoordinatorError('TASK_UNKNOWN', `no task ${taskId}`);
    return t;
  }

  private requireOpenRound(key: string): RoundRecord {
    const r = this.rounds.get(key);
    if (!r || r.status !== 'open') throw new CoordinatorError('STORE_CONFLICT', `no open round ${key.split('\u0000').join('/')}`);
    return r;
  }
}
