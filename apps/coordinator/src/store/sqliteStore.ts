/**
 * SQLite {@link CoordinatorStore} (better-sqlite3) in WAL mode. Schema changes are numbered
 * migrations applied in order inside a transaction each, tracked by `PRAGMA user_version`, so an
 * old data dir upgrades in place and a newer one is refused rather than misread.
 *
 * Durability: `synchronous = NORMAL` in WAL mode loses no committed transaction when the process is
 * killed (SIGKILL) — committed frames are in the WAL file the OS already holds; only a power loss
 * can drop the last commits. A completed round is one transaction (see `completeRound`).
 */
import Database from 'better-sqlite3';
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
  RoundStatus,
  RunRecord,
  TaskRecord,
  TaskStatus,
  TrustRecord,
  UpdateRecord,
} from './types.js';

/** Migrations by target version; index i upgrades version i to i + 1. Append, never edit. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    join_token_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'running', 'finished', 'failed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    secret_hash TEXT NOT NULL,
    capabilities_json TEXT,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX clients_by_task ON clients(task_id);
  CREATE TABLE rounds (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    server_round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    round_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('open', 'completed', 'retry')),
    selected_json TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    reason TEXT,
    num_accepted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, server_round, attempt)
  ) STRICT;
  CREATE TABLE updates (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    server_round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
    code TEXT,
    message TEXT,
    num_examples INTEGER NOT NULL,
    byte_length INTEGER NOT NULL,
    received_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX updates_by_round ON updates(task_id, server_round);
  CREATE TABLE checkpoints (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    server_round INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    strategy_json TEXT,
    strategy_tensors BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, server_round)
  ) STRICT;
  CREATE TABLE round_metrics (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    server_round INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, server_round)
  ) STRICT;
  CREATE TABLE trust (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    server_round INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    trust REAL NOT NULL,
    PRIMARY KEY (task_id, server_round, client_id)
  ) STRICT;
  `,
  // 2: researchers pause and stop tasks. SQLite cannot alter a CHECK, so the table is rebuilt
  // (its documented procedure; `migrate` turns foreign keys off around it and checks them after).
  `
  CREATE TABLE tasks_v2 (
    task_id TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    join_token_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'running', 'paused', 'stopped', 'finished', 'failed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  INSERT INTO tasks_v2 (task_id, config_json, join_token_hash, status, created_at, updated_at)
    SELECT task_id, config_json, join_token_hash, status, created_at, updated_at FROM tasks;
  DROP TABLE tasks;
  ALTER TABLE tasks_v2 RENAME TO tasks;
  `,
  // 3: per-volunteer invitation links with quotas, and the invitation each identity came through.
  `
  CREATE TABLE invitations (
    invitation_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    token_hash TEXT NOT NULL UNIQUE,
    quota INTEGER NOT NULL CHECK (quota >= 1),
    used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= quota),
    label TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX invitations_by_task ON invitations(task_id);
  ALTER TABLE clients ADD COLUMN invitation_id TEXT REFERENCES invitations(invitation_id);
  `,
  // 4: a task runs again after it finished (`runs: continuous`). Every round, upload, checkpoint,
  // metric and trust row belongs to one run; what was stored before is run 1. Tables whose primary
  // key gains the run are rebuilt, as in migration 2.
  `
  ALTER TABLE tasks ADD COLUMN run INTEGER NOT NULL DEFAULT 1 CHECK (run >= 1);
  CREATE TABLE runs (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    run INTEGER NOT NULL CHECK (run >= 1),
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    PRIMARY KEY (task_id, run)
  ) STRICT;
  INSERT INTO runs (task_id, run, started_at) SELECT task_id, 1, created_at FROM tasks;

  CREATE TABLE rounds_v4 (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    run INTEGER NOT NULL,
    server_round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    round_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('open', 'completed', 'retry')),
    selected_json TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    reason TEXT,
    num_accepted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, run, server_round, attempt),
    FOREIGN KEY (task_id, run) REFERENCES runs(task_id, run)
  ) STRICT;
  INSERT INTO rounds_v4 (task_id, run, server_round, attempt, round_id, status, selected_json, started_at, ended_at, reason, num_accepted)
    SELECT task_id, 1, server_round, attempt, round_id, status, selected_json, started_at, ended_at, reason, num_accepted FROM rounds;
  DROP TABLE rounds;
  ALTER TABLE rounds_v4 RENAME TO rounds;

  CREATE TABLE checkpoints_v4 (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    run INTEGER NOT NULL,
    server_round INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    strategy_json TEXT,
    strategy_tensors BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, run, server_round),
    FOREIGN KEY (task_id, run) REFERENCES runs(task_id, run)
  ) STRICT;
  INSERT INTO checkpoints_v4 (task_id, run, server_round, bytes, sha256, strategy_json, strategy_tensors, created_at)
    SELECT task_id, 1, server_round, bytes, sha256, strategy_json, strategy_tensors, created_at FROM checkpoints;
  DROP TABLE checkpoints;
  ALTER TABLE checkpoints_v4 RENAME TO checkpoints;

  CREATE TABLE round_metrics_v4 (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    run INTEGER NOT NULL,
    server_round INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, run, server_round),
    FOREIGN KEY (task_id, run) REFERENCES runs(task_id, run)
  ) STRICT;
  INSERT INTO round_metrics_v4 (task_id, run, server_round, metrics_json, created_at)
    SELECT task_id, 1, server_round, metrics_json, created_at FROM round_metrics;
  DROP TABLE round_metrics;
  ALTER TABLE round_metrics_v4 RENAME TO round_metrics;

  CREATE TABLE trust_v4 (
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    run INTEGER NOT NULL,
    server_round INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    trust REAL NOT NULL,
    PRIMARY KEY (task_id, run, server_round, client_id),
    FOREIGN KEY (task_id, run) REFERENCES runs(task_id, run)
  ) STRICT;
  INSERT INTO trust_v4 (task_id, run, server_round, client_id, trust) SELECT task_id, 1, server_round, client_id, trust FROM trust;
  DROP TABLE trust;
  ALTER TABLE trust_v4 RENAME TO trust;

  ALTER TABLE updates ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
  DROP INDEX updates_by_round;
  CREATE INDEX updates_by_round ON updates(task_id, run, server_round);
  `,
];

interface TaskRow {
  task_id: string;
  config_json: string;
  join_token_hash: string;
  status: TaskStatus;
  run: number;
  created_at: number;
  updated_at: number;
}
interface RunRow {
  run: number;
  started_at: number;
  ended_at: number | null;
  completed_rounds: number | null;
  global_hash: string | null;
  final_metrics: string | null;
}
interface ClientRow {
  client_id: string;
  task_id: string;
  secret_hash: string;
  capabilities_json: string | null;
  created_at: number;
  last_seen_at: number;
  invitation_id: string | null;
}
interface InvitationRow {
  invitation_id: string;
  task_id: string;
  token_hash: string;
  quota: number;
  used: number;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}
interface RoundRow {
  task_id: string;
  server_round: number;
  attempt: number;
  round_id: string;
  status: RoundStatus;
  selected_json: string;
  started_at: number;
  ended_at: number | null;
  reason: string | null;
  num_accepted: number;
}
interface UpdateRow {
  task_id: string;
  server_round: number;
  attempt: number;
  client_id: string;
  status: 'accepted' | 'rejected';
  code: string | null;
  message: string | null;
  num_examples: number;
  byte_length: number;
  received_at: number;
}
interface CheckpointRow {
  task_id: string;
  server_round: number;
  bytes: Buffer;
  sha256: string;
  strategy_json: string | null;
  strategy_tensors: Buffer | null;
  created_at: number;
}

const toTask = (r: TaskRow): TaskRecord => ({
  taskId: r.task_id,
  configJson: r.config_json,
  joinTokenHash: r.join_token_hash,
  status: r.status,
  run: r.run,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const toClient = (r: ClientRow): ClientRecord => ({
  clientId: r.client_id,
  taskId: r.task_id,
  secretHash: r.secret_hash,
  capabilitiesJson: r.capabilities_json,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  ...(r.invitation_id === null ? {} : { invitationId: r.invitation_id }),
});
const toInvitation = (r: InvitationRow): InvitationRecord => ({
  invitationId: r.invitation_id,
  taskId: r.task_id,
  tokenHash: r.token_hash,
  quota: r.quota,
  used: r.used,
  label: r.label,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});
const toRound = (r: RoundRow): RoundRecord => ({
  taskId: r.task_id,
  serverRound: r.server_round,
  attempt: r.attempt,
  roundId: r.round_id,
  status: r.status,
  selected: JSON.parse(r.selected_json) as string[],
  startedAt: r.started_at,
  endedAt: r.ended_at,
  reason: r.reason,
  numAccepted: r.num_accepted,
});
const toUpdate = (r: UpdateRow): UpdateRecord => ({
  taskId: r.task_id,
  serverRound: r.server_round,
  attempt: r.attempt,
  clientId: r.client_id,
  status: r.status,
  code: r.code,
  message: r.message,
  numExamples: r.num_examples,
  byteLength: r.byte_length,
  receivedAt: r.received_at,
});
// Buffers from SQLite become plain Uint8Arrays (copied) so callers see one type everywhere.
const toCheckpoint = (r: CheckpointRow): CheckpointRecord => ({
  taskId: r.task_id,
  serverRound: r.server_round,
  bytes: new Uint8Array(r.bytes),
  sha256: r.sha256,
  strategyState: r.strategy_json === null ? null : { json: r.strategy_json, tensorBytes: new Uint8Array(r.strategy_tensors ?? new Uint8Array(0)) },
  createdAt: r.created_at,
});

/** Opening options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file, or ':memory:'. */
  readonly path: string;
}

/** A {@link CoordinatorStore} in one SQLite file. */
export class SqliteStore implements CoordinatorStore {
  private readonly db: Database.Database;
  private readonly stmts;
  private readonly completeTx: (c: RoundCompletion) => void;
  private readonly beginRunTx: (taskId: string, at: number) => number;

  constructor(options: SqliteStoreOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    const db = this.db;
    this.stmts = {
      getTask: db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE task_id = ?'),
      listTasks: db.prepare<[], TaskRow>('SELECT * FROM tasks ORDER BY created_at, task_id'),
      insertTask: db.prepare('INSERT INTO tasks (task_id, config_json, join_token_hash, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)'),
      updateTaskConfig: db.prepare('UPDATE tasks SET config_json = ?, join_token_hash = ?, updated_at = ? WHERE task_id = ?'),
      setTaskStatus: db.prepare('UPDATE tasks SET status = ?, updated_at = ? WHERE task_id = ?'),
      insertRun: db.prepare('INSERT INTO runs (task_id, run, started_at) VALUES (?, ?, ?)'),
      endRun: db.prepare('UPDATE runs SET ended_at = ? WHERE task_id = ? AND run = ?'),
      advanceRun: db.prepare("UPDATE tasks SET run = ?, status = 'waiting', updated_at = ? WHERE task_id = ?"),
      pruneCheckpoints: db.prepare(
        'DELETE FROM checkpoints WHERE task_id = @taskId AND run = @run AND server_round < (SELECT MAX(server_round) FROM checkpoints WHERE task_id = @taskId AND run = @run)',
      ),
      listRuns: db.prepare<[string], RunRow>(
        `SELECT r.run, r.started_at, r.ended_at,
           (SELECT MAX(c.server_round) FROM checkpoints c WHERE c.task_id = r.task_id AND c.run = r.run) AS completed_rounds,
           (SELECT c.sha256 FROM checkpoints c WHERE c.task_id = r.task_id AND c.run = r.run ORDER BY c.server_round DESC LIMIT 1) AS global_hash,
           (SELECT m.metrics_json FROM round_metrics m WHERE m.task_id = r.task_id AND m.run = r.run ORDER BY m.server_round DESC LIMIT 1) AS final_metrics
         FROM runs r WHERE r.task_id = ? ORDER BY r.run`,
      ),
      insertClient: db.prepare(
        'INSERT INTO clients (client_id, task_id, secret_hash, capabilities_json, created_at, last_seen_at, invitation_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      insertInvitation: db.prepare('INSERT INTO invitations (invitation_id, task_id, token_hash, quota, label, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
      getInvitation: db.prepare<[string], InvitationRow>('SELECT * FROM invitations WHERE invitation_id = ?'),
      findInvitation: db.prepare<[string, string], InvitationRow>('SELECT * FROM invitations WHERE task_id = ? AND token_hash = ?'),
      invitationByHash: db.prepare<[string], InvitationRow>('SELECT * FROM invitations WHERE token_hash = ?'),
      listInvitations: db.prepare<[string], InvitationRow>('SELECT * FROM invitations WHERE task_id = ? ORDER BY created_at, invitation_id'),
      useInvitation: db.prepare('UPDATE invitations SET used = used + 1 WHERE invitation_id = ?'),
      revokeInvitation: db.prepare('UPDATE invitations SET revoked_at = COALESCE(revoked_at, ?) WHERE task_id = ? AND invitation_id = ?'),
      getClient: db.prepare<[string], ClientRow>('SELECT * FROM clients WHERE client_id = ?'),
      touchClient: db.prepare('UPDATE clients SET last_seen_at = ?, capabilities_json = COALESCE(?, capabilities_json) WHERE client_id = ?'),
      listClients: db.prepare<[string], ClientRow>('SELECT * FROM clients WHERE task_id = ? ORDER BY created_at, client_id'),
      // Rounds, uploads, checkpoints, metrics and trust: every statement names the run (see types.ts).
      insertRound: db.prepare(
        "INSERT INTO rounds (task_id, run, server_round, attempt, round_id, status, selected_json, started_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
      ),
      getRound: db.prepare<[string, number, number, number], RoundRow>(
        'SELECT * FROM rounds WHERE task_id = ? AND run = ? AND server_round = ? AND attempt = ?',
      ),
      getRoundById: db.prepare<[string], RoundRow>('SELECT * FROM rounds WHERE round_id = ?'),
      retryRound: db.prepare(
        "UPDATE rounds SET status = 'retry', ended_at = ?, reason = ? WHERE task_id = ? AND run = ? AND server_round = ? AND attempt = ? AND status = 'open'",
      ),
      abandonRounds: db.prepare("UPDATE rounds SET status = 'retry', ended_at = ?, reason = ? WHERE task_id = ? AND run = ? AND status = 'open'"),
      completeRoundRow: db.prepare(
        "UPDATE rounds SET status = 'completed', ended_at = ?, num_accepted = ? WHERE task_id = ? AND run = ? AND server_round = ? AND attempt = ? AND status = 'open'",
      ),
      listRounds: db.prepare<[string, number], RoundRow>('SELECT * FROM rounds WHERE task_id = ? AND run = ? ORDER BY server_round, attempt'),
      insertUpdate: db.prepare(
        'INSERT INTO updates (task_id, run, server_round, attempt, client_id, status, code, message, num_examples, byte_length, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      listUpdates: db.prepare<[string, number], UpdateRow>('SELECT * FROM updates WHERE task_id = ? AND run = ? ORDER BY id'),
      listRoundUpdates: db.prepare<[string, number, number], UpdateRow>('SELECT * FROM updates WHERE task_id = ? AND run = ? AND server_round = ? ORDER BY id'),
      insertCheckpoint: db.prepare(
        'INSERT INTO checkpoints (task_id, run, server_round, bytes, sha256, strategy_json, strategy_tensors, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      // Only the run's latest checkpoint keeps the strategy state (see CoordinatorStore.completeRound).
      dropEarlierStrategyStates: db.prepare(
        'UPDATE checkpoints SET strategy_json = NULL, strategy_tensors = NULL WHERE task_id = ? AND run = ? AND server_round < ? AND (strategy_json IS NOT NULL OR strategy_tensors IS NOT NULL)',
      ),
      insertInitialCheckpoint: db.prepare(
        'INSERT OR IGNORE INTO checkpoints (task_id, run, server_round, bytes, sha256, strategy_json, strategy_tensors, created_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?)',
      ),
      latestCheckpoint: db.prepare<[string, number], CheckpointRow>(
        'SELECT * FROM checkpoints WHERE task_id = ? AND run = ? ORDER BY server_round DESC LIMIT 1',
      ),
      getCheckpoint: db.prepare<[string, number, number], CheckpointRow>('SELECT * FROM checkpoints WHERE task_id = ? AND run = ? AND server_round = ?'),
      insertMetrics: db.prepare('INSERT INTO round_metrics (task_id, run, server_round, metrics_json, created_at) VALUES (?, ?, ?, ?, ?)'),
      listMetrics: db.prepare<[string, number], { task_id: string; server_round: number; metrics_json: string; created_at: number }>(
        'SELECT * FROM round_metrics WHERE task_id = ? AND run = ? ORDER BY server_round',
      ),
      insertTrust: db.prepare('INSERT INTO trust (task_id, run, server_round, client_id, trust) VALUES (?, ?, ?, ?, ?)'),
      listTrust: db.prepare<[string, number], { task_id: string; server_round: number; client_id: string; trust: number }>(
        'SELECT * FROM trust WHERE task_id = ? AND run = ? ORDER BY server_round, client_id',
      ),
    };
    this.completeTx = db.transaction((c: RoundCompletion) => {
      const s = this.stmts;
      const run = this.currentRun(c.taskId);
      const changed = s.completeRoundRow.run(c.endedAt, c.numAccepted, c.taskId, run, c.serverRound, c.attempt).changes;
      if (changed !== 1) throw new CoordinatorError('STORE_CONFLICT', `no open round ${c.taskId}/${c.serverRound}/${c.attempt}`);
      if (s.getCheckpoint.get(c.taskId, run, c.serverRound))
        throw new CoordinatorError('STORE_CONFLICT', `round ${c.serverRound} of ${c.taskId} is already complete`);
      s.insertCheckpoint.run(
        c.taskId,
        run,
        c.serverRound,
        Buffer.from(c.checkpoint.bytes.buffer, c.checkpoint.bytes.byteOffset, c.checkpoint.bytes.byteLength),
        c.checkpoint.sha256,
        c.strategyState?.json ?? null,
        c.strategyState
          ? Buffer.from(c.strategyState.tensorBytes.buffer, c.strategyState.tensorBytes.byteOffset, c.strategyState.tensorBytes.byteLength)
          : null,
        c.endedAt,
      );
      s.dropEarlierStrategyStates.run(c.taskId, run, c.serverRound);
      s.insertMetrics.run(c.taskId, run, c.serverRound, JSON.stringify(c.metrics), c.endedAt);
      for (const t of c.trust) s.insertTrust.run(c.taskId, run, c.serverRound, t.clientId, t.trust);
      s.setTaskStatus.run(c.taskStatus, c.endedAt, c.taskId);
    });
    this.beginRunTx = db.transaction((taskId: string, at: number): number => {
      const s = this.stmts;
      const task = s.getTask.get(taskId);
      if (!task) throw new CoordinatorError('TASK_UNKNOWN', `no task ${taskId}`);
      if (task.status !== 'finished') throw new CoordinatorError('STORE_CONFLICT', `run ${task.run} of ${taskId} is ${task.status}, not finished`);
      // The finished run ended when its last round committed, which set the task's updated_at.
      s.endRun.run(task.updated_at, taskId, task.run);
      s.pruneCheckpoints.run({ taskId, run: task.run });
      const run = task.run + 1;
      s.insertRun.run(taskId, run, at);
      s.advanceRun.run(run, at, taskId);
      return run;
    });
  }

  upsertTask(task: Omit<TaskRecord, 'status' | 'run' | 'updatedAt'>): TaskRecord {
    const tx = this.db.transaction(() => {
      if (this.stmts.getTask.get(task.taskId)) {
        this.stmts.updateTaskConfig.run(task.configJson, task.joinTokenHash, task.createdAt, task.taskId);
      } else {
        this.stmts.insertTask.run(task.taskId, task.configJson, task.joinTokenHash, 'waiting', task.createdAt, task.createdAt);
        this.stmts.insertRun.run(task.taskId, 1, task.createdAt);
      }
      return toTask(this.stmts.getTask.get(task.taskId)!);
    });
    return tx();
  }

  getTask(taskId: string): TaskRecord | undefined {
    const r = this.stmts.getTask.get(taskId);
    return r && toTask(r);
  }

  listTasks(): TaskRecord[] {
    return this.stmts.listTasks.all().map(toTask);
  }

  setTaskStatus(taskId: string, status: TaskStatus, at: number): void {
    if (this.stmts.setTaskStatus.run(status, at, taskId).changes !== 1) throw new CoordinatorError('TASK_UNKNOWN', `no task ${taskId}`);
  }

  beginRun(taskId: string, at: number): number {
    return this.beginRunTx(taskId, at);
  }

  listRuns(taskId: string): RunRecord[] {
    const task = this.stmts.getTask.get(taskId);
    if (!task) return [];
    const ended = task.status === 'finished' || task.status === 'stopped' || task.status === 'failed';
    return this.stmts.listRuns.all(taskId).map((r) => {
      const current = r.run === task.run;
      return {
        taskId,
        run: r.run,
        status: current ? task.status : 'finished',
        startedAt: r.started_at,
        endedAt: current && ended ? task.updated_at : r.ended_at,
        completedRounds: r.completed_rounds ?? 0,
        globalHash: r.global_hash,
        finalMetrics: r.final_metrics === null ? null : (JSON.parse(r.final_metrics) as Record<string, number>),
      };
    });
  }

  createClient(client: ClientRecord): void {
    if (!this.stmts.getTask.get(client.taskId)) throw new CoordinatorError('TASK_UNKNOWN', `no task ${client.taskId}`);
    if (this.stmts.getClient.get(client.clientId)) throw new CoordinatorError('STORE_CONFLICT', `client ${client.clientId} exists`);
    const invitationId = client.invitationId ?? null;
    // One transaction: the quota check, the use and the identity land together or not at all.
    this.db.transaction(() => {
      if (invitationId !== null) {
        const row = this.stmts.getInvitation.get(invitationId);
        checkInvitationUse(row && toInvitation(row), client.taskId, invitationId);
        this.stmts.useInvitation.run(invitationId);
      }
      this.stmts.insertClient.run(
        client.clientId,
        client.taskId,
        client.secretHash,
        client.capabilitiesJson,
        client.createdAt,
        client.lastSeenAt,
        invitationId,
      );
    })();
  }

  createInvitation(invitation: Omit<InvitationRecord, 'used' | 'revokedAt'>): void {
    if (!this.stmts.getTask.get(invitation.taskId)) throw new CoordinatorError('TASK_UNKNOWN', `no task ${invitation.taskId}`);
    if (this.stmts.getInvitation.get(invitation.invitationId) || this.stmts.invitationByHash.get(invitation.tokenHash)) {
      throw new CoordinatorError('STORE_CONFLICT', `invitation ${invitation.invitationId} exists`);
    }
    this.stmts.insertInvitation.run(invitation.invitationId, invitation.taskId, invitation.tokenHash, invitation.quota, invitation.label, invitation.createdAt);
  }

  findInvitation(taskId: string, tokenHash: string): InvitationRecord | undefined {
    const r = this.stmts.findInvitation.get(taskId, tokenHash);
    return r && toInvitation(r);
  }

  getInvitation(invitationId: string): InvitationRecord | undefined {
    const r = this.stmts.getInvitation.get(invitationId);
    return r && toInvitation(r);
  }

  listInvitations(taskId: string): InvitationRecord[] {
    return this.stmts.listInvitations.all(taskId).map(toInvitation);
  }

  revokeInvitation(taskId: string, invitationId: string, at: number): boolean {
    return this.stmts.revokeInvitation.run(at, taskId, invitationId).changes === 1;
  }

  getClient(clientId: string): ClientRecord | undefined {
    const r = this.stmts.getClient.get(clientId);
    return r && toClient(r);
  }

  touchClient(clientId: string, lastSeenAt: number, capabilitiesJson: string | null): void {
    this.stmts.touchClient.run(lastSeenAt, capabilitiesJson, clientId);
  }

  listClients(taskId: string): ClientRecord[] {
    return this.stmts.listClients.all(taskId).map(toClient);
  }

  startRound(round: Omit<RoundRecord, 'status' | 'endedAt' | 'reason' | 'numAccepted'>): void {
    const task = this.stmts.getTask.get(round.taskId);
    if (!task) throw new CoordinatorError('TASK_UNKNOWN', `no task ${round.taskId}`);
    if (this.stmts.getRound.get(round.taskId, task.run, round.serverRound, round.attempt) || this.stmts.getRoundById.get(round.roundId)) {
      throw new CoordinatorError('STORE_CONFLICT', `round ${round.serverRound} attempt ${round.attempt} of ${round.taskId} exists`);
    }
    this.stmts.insertRound.run(round.taskId, task.run, round.serverRound, round.attempt, round.roundId, JSON.stringify(round.selected), round.startedAt);
  }

  retryRound(taskId: string, serverRound: number, attempt: number, endedAt: number, reason: string): void {
    if (this.stmts.retryRound.run(endedAt, reason, taskId, this.currentRun(taskId), serverRound, attempt).changes !== 1) {
      throw new CoordinatorError('STORE_CONFLICT', `no open round ${taskId}/${serverRound}/${attempt}`);
    }
  }

  abandonOpenRounds(taskId: string, at: number): number {
    return this.stmts.abandonRounds.run(at, ABANDONED_REASON, taskId, this.currentRun(taskId)).changes;
  }

  listRounds(taskId: string, run = this.currentRun(taskId)): RoundRecord[] {
    return this.stmts.listRounds.all(taskId, run).map(toRound);
  }

  recordUpdates(updates: readonly UpdateRecord[]): void {
    if (updates.length === 0) return;
    // One transaction: one fsync for a round's uploads instead of one each.
    this.db.transaction(() => {
      for (const u of updates)
        this.stmts.insertUpdate.run(
          u.taskId,
          u.run ?? this.currentRun(u.taskId),
          u.serverRound,
          u.attempt,
          u.clientId,
          u.status,
          u.code,
          u.message,
          u.numExamples,
          u.byteLength,
          u.receivedAt,
        );
    })();
  }

  listUpdates(taskId: string, serverRound?: number, run = this.currentRun(taskId)): UpdateRecord[] {
    const rows = serverRound === undefined ? this.stmts.listUpdates.all(taskId, run) : this.stmts.listRoundUpdates.all(taskId, run, serverRound);
    return rows.map(toUpdate);
  }

  saveInitialCheckpoint(c: Omit<CheckpointRecord, 'serverRound'>): void {
    const task = this.stmts.getTask.get(c.taskId);
    if (!task) throw new CoordinatorError('TASK_UNKNOWN', `no task ${c.taskId}`);
    this.stmts.insertInitialCheckpoint.run(
      c.taskId,
      task.run,
      Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength),
      c.sha256,
      c.strategyState?.json ?? null,
      c.strategyState ? Buffer.from(c.strategyState.tensorBytes) : null,
      c.createdAt,
    );
  }

  completeRound(completion: RoundCompletion): void {
    this.completeTx(completion);
  }

  latestCheckpoint(taskId: string, run = this.currentRun(taskId)): CheckpointRecord | undefined {
    const r = this.stmts.latestCheckpoint.get(taskId, run);
    return r && toCheckpoint(r);
  }

  getCheckpoint(taskId: string, serverRound: number, run = this.currentRun(taskId)): CheckpointRecord | undefined {
    const r = this.stmts.getCheckpoint.get(taskId, run, serverRound);
    return r && toCheckpoint(r);
  }

  listMetrics(taskId: string, run = this.currentRun(taskId)): RoundMetricsRecord[] {
    return this.stmts.listMetrics.all(taskId, run).map((r) => ({
      taskId: r.task_id,
      serverRound: r.server_round,
      metrics: JSON.parse(r.metrics_json) as Record<string, number>,
      createdAt: r.created_at,
    }));
  }

  listTrust(taskId: string, run = this.currentRun(taskId)): TrustRecord[] {
    return this.stmts.listTrust.all(taskId, run).map((r) => ({ taskId: r.task_id, serverRound: r.server_round, clientId: r.client_id, trust: r.trust }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** The task's current run (1 for an unknown task, which has nothing stored). */
  private currentRun(taskId: string): number {
    return this.stmts.getTask.get(taskId)?.run ?? 1;
  }
}

/**
 * Brings the schema to the latest version; refuses a file written by a newer coordinator. Foreign
 * keys are off while migrations run (a pragma that is a no-op inside a transaction) so a table can
 * be rebuilt under the tables that reference it; each migration must leave them consistent, which is
 * checked before it commits.
 */
function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new CoordinatorError('STORE_SCHEMA', `database schema version ${current} is newer than this coordinator's (${MIGRATIONS.length})`);
  }
  if (current === MIGRATIONS.length) return;
  db.pragma('foreign_keys = OFF');
  try {
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new CoordinatorError('STORE_SCHEMA', `migration ${v + 1} leaves ${broken.length} broken foreign keys`);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  } finally {
    db.pragma('foreign_keys = ON');
  }
}
