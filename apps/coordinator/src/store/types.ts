/**
 * The coordinator's state, behind one interface with two implementations: an in-memory fake
 * (tests, throwaway runs) and SQLite (the embedded default). The interface is synchronous because
 * the engine's invariants are easier to keep without interleaving: each call is atomic, and
 * {@link CoordinatorStore.completeRound} writes everything a completed round produces at once, so a
 * crash leaves either the whole round or none of it.
 *
 * Clients are pseudonymous: a random id and the SHA-256 of their secret, never the secret itself.
 *
 * Runs: a task's rounds, uploads, checkpoints, metrics and trust belong to one run of it (rounds 1 to
 * `rounds` from the initial model). A task starts in run 1; {@link CoordinatorStore.beginRun} keeps a
 * finished run readable as a past run and makes the next one current. Writes always go to the
 * current run; reads take the run to read (absent: the current one). Records do not repeat the run
 * they were read from.
 */

import type { TaskStatus } from '@chorus/protocol';

/** Lifecycle of a task, as the admin API and the dashboard stream name it. */
export type { TaskStatus };

/** A task as stored. */
export interface TaskRecord {
  readonly taskId: string;
  /** The validated task config as JSON. */
  readonly configJson: string;
  readonly joinTokenHash: string;
  /** Status of the current run. */
  readonly status: TaskStatus;
  /** The current run (1 until a finished run is followed by another). */
  readonly run: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One run of a task, with the figures its dashboard lists. */
export interface RunRecord {
  readonly taskId: string;
  readonly run: number;
  /** 'finished' for a past run; the task's status for the current one. */
  readonly status: TaskStatus;
  readonly startedAt: number;
  /** When it ended (its last round committed, or it was stopped or failed); null while it goes on. */
  readonly endedAt: number | null;
  /** Rounds it committed (its latest checkpoint's round; 0 before the first). */
  readonly completedRounds: number;
  /** SHA-256 of its latest global model (a past run's final model), null before the initial one is stored. */
  readonly globalHash: string | null;
  /** Metrics of its last committed round, null before one. */
  readonly finalMetrics: Readonly<Record<string, number>> | null;
}

/** A pseudonymous client identity. */
export interface ClientRecord {
  readonly clientId: string;
  readonly taskId: string;
  readonly secretHash: string;
  /** Capabilities last advertised (JSON), or null before the first `hello`. */
  readonly capabilitiesJson: string | null;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  /** The invitation that admitted the identity (absent or null: the open join link, or registered directly). */
  readonly invitationId?: string | null;
}

/**
 * A per-volunteer invitation link: its token admits at most `quota` new identities to one task.
 * Only the token's SHA-256 is stored. A revoked invitation admits nobody, and the identities it
 * admitted can no longer resume.
 */
export interface InvitationRecord {
  readonly invitationId: string;
  readonly taskId: string;
  readonly tokenHash: string;
  readonly quota: number;
  /** Identities admitted so far (≤ quota). */
  readonly used: number;
  /** The researcher's note (e.g. whom it was sent to), or null. */
  readonly label: string | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

/** State of one attempt at a round. */
export type RoundStatus = 'open' | 'completed' | 'retry';

/** One attempt at a round: who was invited and how it ended. */
export interface RoundRecord {
  readonly taskId: string;
  readonly serverRound: number;
  readonly attempt: number;
  readonly roundId: string;
  readonly status: RoundStatus;
  readonly selected: readonly string[];
  readonly startedAt: number;
  readonly endedAt: number | null;
  /** Why a retry happened (null otherwise). */
  readonly reason: string | null;
  readonly numAccepted: number;
}

/** The verdict on one uploaded update. */
export interface UpdateRecord {
  readonly taskId: string;
  /**
   * The run it belongs to, when written (absent: the current run), so a record written after the
   * next run began still lands in its own; reads leave it out.
   */
  readonly run?: number;
  readonly serverRound: number;
  readonly attempt: number;
  readonly clientId: string;
  readonly status: 'accepted' | 'rejected';
  /** Protocol code of a rejection, null when accepted. */
  readonly code: string | null;
  readonly message: string | null;
  readonly numExamples: number;
  readonly byteLength: number;
  readonly receivedAt: number;
}

/** A strategy's exported server state: its JSON half and its tensors as codec bytes. */
export interface StoredStrategyState {
  readonly json: string;
  readonly tensorBytes: Uint8Array;
}

/** The global model after a round (round 0: the initial model). */
export interface CheckpointRecord {
  readonly taskId: string;
  readonly serverRound: number;
  /** fl-core codec bytes (kind: model, fp32). */
  readonly bytes: Uint8Array;
  /** SHA-256 of `bytes`, hex. */
  readonly sha256: string;
  readonly strategyState: StoredStrategyState | null;
  readonly createdAt: number;
}

/** Figures of one completed round. */
export interface RoundMetricsRecord {
  readonly taskId: string;
  readonly serverRound: number;
  readonly metrics: Readonly<Record<string, number>>;
  readonly createdAt: number;
}

/** T_k of one client in one round. */
export interface TrustRecord {
  readonly taskId: string;
  readonly serverRound: number;
  readonly clientId: string;
  readonly trust: number;
}

/** Reason recorded for an attempt left open by a crash and closed by {@link CoordinatorStore.abandonOpenRounds}. */
export const ABANDONED_REASON = 'coordinator restarted';

/** Everything a completed round produces, written in one transaction. */
export interface RoundCompletion {
  readonly taskId: string;
  readonly serverRound: number;
  readonly attempt: number;
  readonly endedAt: number;
  readonly numAccepted: number;
  readonly checkpoint: { readonly bytes: Uint8Array; readonly sha256: string };
  readonly strategyState: StoredStrategyState | null;
  readonly metrics: Readonly<Record<string, number>>;
  readonly trust: readonly { readonly clientId: string; readonly trust: number }[];
  /** Task status after this round (e.g. 'finished' after the last one). */
  readonly taskStatus: TaskStatus;
}

/** Round, upload, metrics and trust records kept outside the process, read asynchronously; see {@link CoordinatorStore.history}. */
export interface StoreHistory {
  /** As {@link CoordinatorStore.listRounds}, over every round. */
  rounds(taskId: string, run?: number): Promise<RoundRecord[]>;
  /** As {@link CoordinatorStore.listUpdates}, over every round. */
  updates(taskId: string, serverRound?: number, run?: number): Promise<UpdateRecord[]>;
  /** As {@link CoordinatorStore.listMetrics}, over every round. */
  metrics(taskId: string, run?: number): Promise<RoundMetricsRecord[]>;
  /** As {@link CoordinatorStore.listTrust}, over every round. */
  trust(taskId: string, run?: number): Promise<TrustRecord[]>;
}

/** The coordinator's persistent state. Every method is atomic; see the module comment. */
export interface CoordinatorStore {
  /** Creates the task (in run 1), or returns the stored one (its config and join token hash updated). */
  upsertTask(task: Omit<TaskRecord, 'status' | 'run' | 'updatedAt'>): TaskRecord;
  getTask(taskId: string): TaskRecord | undefined;
  listTasks(): TaskRecord[];
  setTaskStatus(taskId: string, status: TaskStatus, at: number): void;

  /**
   * Ends the current run of a finished task and makes the next one current, with status 'waiting'
   * and nothing stored yet; returns its number. The finished run stays readable; of its checkpoints
   * only the last (its final model) is kept. Throws `TASK_UNKNOWN`, or `STORE_CONFLICT` (changing
   * nothing) when the task's status is not 'finished'.
   */
  beginRun(taskId: string, at: number): number;
  /** Every run of the task, oldest first, the current one last. */
  listRuns(taskId: string): RunRecord[];

  /**
   * Adds a client; throws `STORE_CONFLICT` when the id exists. With `invitationId`, atomically also
   * takes one use of that invitation of the client's task: throws `INVITATION_UNKNOWN`,
   * `INVITATION_REVOKED` or `INVITATION_EXHAUSTED` (storing nothing) when it cannot.
   */
  createClient(client: ClientRecord): void;
  getClient(clientId: string): ClientRecord | undefined;
  touchClient(clientId: string, lastSeenAt: number, capabilitiesJson: string | null): void;
  listClients(taskId: string): ClientRecord[];

  /** Adds an invitation (unused, not revoked); throws `TASK_UNKNOWN`, or `STORE_CONFLICT` when its id or token hash exists. */
  createInvitation(invitation: Omit<InvitationRecord, 'used' | 'revokedAt'>): void;
  /** The task's invitation whose token has this hash. */
  findInvitation(taskId: string, tokenHash: string): InvitationRecord | undefined;
  getInvitation(invitationId: string): InvitationRecord | undefined;
  listInvitations(taskId: string): InvitationRecord[];
  /** Revokes the task's invitation (idempotent); false when the task has no such invitation. */
  revokeInvitation(taskId: string, invitationId: string, at: number): boolean;

  /** Opens an attempt; throws `STORE_CONFLICT` when (task, round, attempt) exists. */
  startRound(round: Omit<RoundRecord, 'status' | 'endedAt' | 'reason' | 'numAccepted'>): void;
  /** Closes an open attempt without a new model. */
  retryRound(taskId: string, serverRound: number, attempt: number, endedAt: number, reason: string): void;
  /** Marks every attempt left open (a crash mid-round) as retried; returns how many. */
  abandonOpenRounds(taskId: string, at: number): number;
  /** Every attempt of the run (absent: the current one), by round then attempt. */
  listRounds(taskId: string, run?: number): RoundRecord[];

  /** Appends upload records in one transaction (the engine writes a closed attempt's accepted uploads together). */
  recordUpdates(updates: readonly UpdateRecord[]): void;
  /** Upload records of the run (absent: the current one), of one round or all, in the order written. */
  listUpdates(taskId: string, serverRound?: number, run?: number): UpdateRecord[];

  /** Stores the initial model as round 0 unless one is stored already. */
  saveInitialCheckpoint(checkpoint: Omit<CheckpointRecord, 'serverRound'>): void;
  /**
   * Writes the round's status, checkpoint, strategy state, metrics and trust in one transaction.
   * The strategy state is kept with the run's latest checkpoint only: the run's earlier checkpoints
   * keep their models and read `strategyState` null from then on. A restart resumes from the latest,
   * and a state that grows with the clients seen (similarity damping's histories, up to its
   * `maxHistories`) would otherwise be stored again with every round.
   */
  completeRound(completion: RoundCompletion): void;
  /** The run's (absent: the current run's) checkpoint of its highest round. */
  latestCheckpoint(taskId: string, run?: number): CheckpointRecord | undefined;
  getCheckpoint(taskId: string, serverRound: number, run?: number): CheckpointRecord | undefined;

  /** Metrics of the run's (absent: the current run's) committed rounds, by round. */
  listMetrics(taskId: string, run?: number): RoundMetricsRecord[];
  /** Trust scores of the run (absent: the current one). */
  listTrust(taskId: string, run?: number): TrustRecord[];

  /**
   * The whole history of round, upload, metrics and trust records, where the store keeps it outside
   * this process and {@link listRounds}, {@link listUpdates}, {@link listMetrics} and
   * {@link listTrust} answer only the latest rounds (a cluster node: its replica keeps those, Redis
   * keeps everything). Absent: the lists answer everything. Read it through `readRounds`,
   * `readUpdates`, `readMetrics` and `readTrust` (history.ts).
   */
  readonly history?: StoreHistory;

  /**
   * Resolves once every write made so far is durable, and rejects when one could not be made
   * durable. Absent for stores whose writes are durable when they return (SQLite, memory); the
   * cluster's replicated store appends to Redis after applying locally, and the engine awaits this
   * before telling clients of a committed round.
   */
  flush?(): Promise<void>;

  close(): void;
}
