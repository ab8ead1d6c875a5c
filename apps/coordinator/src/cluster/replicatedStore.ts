/**
 * The {@link CoordinatorStore} of a cluster: one Redis stream is the store, every node holds a
 * replica of it.
 *
 * Every write is one entry of the stream `<prefix>log`: the store method and its arguments. A node
 * applies its own writes to its replica (a {@link MemoryStore}) at once, so the synchronous store
 * interface the engine relies on holds unchanged, and appends them to the stream in the order made;
 * it applies the other nodes' entries as it reads them (a blocking reader follows the stream; {@link
 * ReplicatedStore.sync} reads it to its end on demand). A node that starts, or rejoins after its
 * lease was taken, replays the stream from its start. Redis keeps the stream with AOF persistence
 * (the cluster's `redis-server --appendonly yes`), so the committed history survives every node.
 *
 * Writes that only a task's leader makes (its rounds, checkpoints, status) are **fenced**: the entry
 * is appended by a Lua script only while the task's lease key in Redis still holds this node's lease
 * value, so a deposed leader's late commit is refused (`FENCED`) and never reaches the log. The node
 * then learns it lost the task ({@link ReplicatedStoreOptions.onFenced}), stops its engine, and
 * rebuilds its replica from the log, dropping whatever it had applied locally. Such a write from a
 * node holding no lease for the task throws `NOT_LEADER` before anything is applied. The engine
 * awaits {@link ReplicatedStore.flush} after committing a round, so clients hear of a new model
 * only once its round is in the log.
 *
 * Writes any node makes (tasks, client identities, invitations) are not fenced. They commute with
 * each other and with the leader's, so replicas that apply them in different orders agree.
 *
 * **Compaction** ({@link ReplicatedStore.compact}) keeps the log from growing without bound: the
 * state the log's entries up to some id L build (replayed afresh, each run's latest checkpoint
 * only, as every replica keeps them) is written to `<prefix>snapshot`, and the entries up to L are
 * trimmed, in one Lua script, with `<prefix>snapshot:id` = L. A node starting or rebuilding loads
 * the snapshot and replays the entries after it. Every read of the log is checked against
 * `snapshot:id`: a reader whose position is older (it read an older snapshot, or fell behind while
 * away) is told `TRIMMED` and replays from the new snapshot, so no entry is ever skipped unseen.
 * Checkpoints of earlier rounds than a run's latest are gone from the cluster once compacted.
 *
 * **History.** A run's round records (each with its selected clients), upload records, metrics and
 * trust scores grow with every round. Each write of them also pushes them, in the same script step
 * as its log entry (so only a logged write's), to a list of the run's in Redis
 * (`<prefix>history:<task>:<run>:rounds`, `…:updates`, `…:metrics`, `…:trust`; an attempt goes
 * there once closed, by the write that closes it). {@link ReplicatedStore.history} reads those
 * lists, so a replica may keep only the latest rounds' records in memory (`retainRecords`); the
 * snapshot then holds what such a replica holds.
 *
 * **Strategy state.** A round's entry carries the strategy's state as a patch of the state of the
 * run's checkpoint before it (statePatch.ts) when that is smaller than the state: a state holding
 * an entry per identity (newcomer probation's counts) changes only in the round's clients. Every
 * replica keeps the latest checkpoint's state whole, rebuilds the new one's text from the patch and
 * checks it against the writer's SHA-256. The latest state of each task is also kept parsed, so a
 * round parses only the new state (the leader) or none (the others).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import { MemoryStore } from '../store/memoryStore.js';
import { ABANDONED_REASON } from '../store/types.js';
import { HOLDS_LEASE_LUA } from './lease.js';
import { applyJsonPatch, diffJson, type JsonPatch } from './statePatch.js';
import type {
  CheckpointRecord,
  ClientRecord,
  CoordinatorStore,
  InvitationRecord,
  RoundCompletion,
  RoundMetricsRecord,
  RoundRecord,
  RunRecord,
  StoreHistory,
  TaskRecord,
  TaskStatus,
  TrustRecord,
  UpdateRecord,
} from '../store/types.js';

/** Store methods that write; the ones a task's leader alone makes are fenced. */
const FENCED_WRITES = [
  'setTaskStatus',
  'beginRun',
  'startRound',
  'retryRound',
  'abandonOpenRounds',
  'recordUpdates',
  'saveInitialCheckpoint',
  'completeRound',
] as const;
const OPEN_WRITES = ['upsertTask', 'createClient', 'touchClient', 'createInvitation', 'revokeInvitation'] as const;
type WriteMethod = (typeof FENCED_WRITES)[number] | (typeof OPEN_WRITES)[number];
const WRITE_METHODS: ReadonlySet<string> = new Set<string>([...FENCED_WRITES, ...OPEN_WRITES]);

/**
 * The strategy state of a `completeRound` entry logged as a patch (its completion's `strategyState`
 * is then null): `patch` applied to the state of the run's checkpoint of round `base` gives a value
 * whose JSON text has SHA-256 `sha256`; with the state's tensors.
 */
interface StatePatchArg {
  readonly base: number;
  readonly patch: JsonPatch;
  readonly sha256: string;
  readonly tensorBytes: Uint8Array;
}

const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Every this many rounds a state is logged whole, so a replica that could not rebuild one (logged as `CLUSTER_STATE_PATCH`) is whole again soon. */
export const WHOLE_STATE_EVERY = 32;

/** One entry of the log: who wrote it, the method and its arguments. */
interface LogEntry {
  readonly node: string;
  readonly method: WriteMethod;
  readonly args: readonly unknown[];
}

/**
 * Appends an entry if the fence (the task's lease value) still holds the lease (lease.ts); an empty
 * fence appends unconditionally. KEYS[4…], if any, are history lists, each given ARGV[i] in the same
 * step: the entry's records, archived exactly when the entry is logged.
 */
const APPEND_SCRIPT = `${HOLDS_LEASE_LUA}
if ARGV[1] ~= '' and not holds(KEYS[2], KEYS[3], ARGV[1], ARGV[3]) then
  return redis.error_reply('FENCED lease of ' .. KEYS[2] .. ' is not held')
end
for i = 4, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[i]) end
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
`;

/** Lua: `after(a, b)`, whether stream id `a` comes after `b` (ids `ms-seq`, both within 2^53). */
const AFTER_LUA = `
local function after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
`;

/**
 * Reads entries after ARGV[1] up to ARGV[3] (an id, or '+'), at most ARGV[2] of them, unless the
 * log has been compacted past ARGV[1] (then `TRIMMED`: what the reader lacks is in the snapshot).
 */
const READ_SCRIPT = `${AFTER_LUA}
local covered = redis.call('GET', KEYS[2])
if covered and after(covered, ARGV[1]) then
  return redis.error_reply('TRIMMED the log is compacted up to ' .. covered)
end
return redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], ARGV[3], 'COUNT', ARGV[2])
`;

/**
 * Writes a snapshot (ARGV[1]) of the log up to ARGV[2] and trims the entries below ARGV[3] (the id
 * just after ARGV[2]); -1, changing nothing, when a snapshot as new or newer is already there.
 */
const COMPACT_SCRIPT = `${AFTER_LUA}
local covered = redis.call('GET', KEYS[3])
if covered and not after(ARGV[2], covered) then return -1 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
`;

/** Lua: deletes KEYS[1] if it still holds ARGV[1]. */
const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Replays that may start over because a compaction overtook them, before giving up. */
const REPLAY_ATTEMPTS = 5;

/** Stream entries read per request while replaying or catching up (checkpoints make entries large). */
const PAGE = 64;

/** The records a run's history lists hold, one list each. */
type HistoryKind = 'rounds' | 'updates' | 'metrics' | 'trust';

/** `archived` with the records `kept` also holds replaced by `kept`'s (the replica's are the newer), and `kept`'s others added; unsorted. */
function latestByKey<T>(archived: readonly T[], kept: readonly T[], key: (record: T) => string): T[] {
  const byKey = new Map(archived.map((r) => [key(r), r]));
  for (const r of kept) byKey.set(key(r), r);
  return [...byKey.values()];
}

/** Redis keys of one cluster, all under one prefix. */
export function clusterKeys(prefix: string) {
  return {
    log: `${prefix}log`,
    lease: (taskId: string) => `${prefix}lease:${taskId}`,
    fence: (taskId: string) => `${prefix}fence:${taskId}`,
    /** The state of the log's entries up to `snapshotId`, written by compaction (`{ lastId, state }` as JSON). */
    snapshot: `${prefix}snapshot`,
    snapshotId: `${prefix}snapshot:id`,
    /** A run's closed attempts (`rounds`), upload records (`updates`), metrics or trust records: a list, one JSON array per write, in the order written. */
    history: (taskId: string, run: number, kind: HistoryKind) => `${prefix}history:${taskId}:${run}:${kind}`,
    /** Held (with a time to live) by the node compacting the log. */
    compacting: `${prefix}compacting`,
    node: (nodeId: string) => `${prefix}node:${nodeId}`,
    nodes: `${prefix}nodes`,
    /** A task's bucket of new identities, or (with `address`) that address's bucket on the task; task ids hold no ':', so the two never meet. */
    identities: (taskId: string, address?: string) => `${prefix}identities:${taskId}${address === undefined ? '' : `:${address}`}`,
  };
}

/** JSON of `value`, byte arrays as `{ $bytes: base64 }` (log entries and snapshots). */
function encodeJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v instanceof Uint8Array ? { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') } : v,
  );
}

/** Reads {@link encodeJson}'s JSON; throws on malformed JSON. */
function decodeJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value === 'object' && value !== null && '$bytes' in value && typeof (value as { $bytes: unknown }).$bytes === 'string') {
      const buf = Buffer.from((value as { $bytes: string }).$bytes, 'base64');
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
    }
    return value;
  }) as unknown;
}

/** Encodes an entry as JSON, byte arrays as base64. */
export function encodeEntry(entry: LogEntry): string {
  return encodeJson(entry);
}

/** Decodes {@link encodeEntry}'s JSON; throws on anything that is not an entry of a known write. */
export function decodeEntry(text: string): LogEntry {
  const entry = decodeJson(text);
  if (
    typeof entry !== 'object' ||
    entry === null ||
    typeof (entry as LogEntry).node !== 'string' ||
    !WRITE_METHODS.has((entry as LogEntry).method) ||
    !Array.isArray((entry as LogEntry).args)
  )
    throw new Error('not a log entry');
  return entry as LogEntry;
}

/** Orders stream ids (`ms-seq`). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** The least stream id after `id`. */
function nextStreamId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}

/** What one {@link ReplicatedStore.compact} did. */
export interface Compaction {
  /** The last entry the snapshot holds. */
  readonly lastId: string;
  /** Entries trimmed from the log. */
  readonly trimmed: number;
  /** Size of the snapshot written. */
  readonly snapshotBytes: number;
}

/** Options of {@link ReplicatedStore.open}. */
export interface ReplicatedStoreOptions {
  /** Commands (appends, reads). */
  readonly redis: Redis;
  /** A connection of its own for the blocking reader. */
  readonly reader: Redis;
  readonly nodeId: string;
  /** Prefix of every key (default `chorus:`). */
  readonly prefix?: string;
  readonly logger: Logger;
  /**
   * Checkpoints the replica keeps in memory: 'all' (default), or 'latest' of each run — a node's
   * choice, so its memory does not grow with every round's model (older ones stay in the log, and
   * `getCheckpoint` of them answers undefined there).
   */
  readonly retainCheckpoints?: 'all' | 'latest';
  /**
   * Round, upload, metrics and trust records the replica keeps in memory: 'all' (default), or those
   * of each run's latest N rounds (and every open attempt) — so a node's memory does not grow with
   * every round. Every record also goes to Redis's history lists as it is logged, and
   * {@link ReplicatedStore.history} reads them all; `listRounds`, `listUpdates`, `listMetrics` and
   * `listTrust` answer the kept rounds only.
   */
  readonly retainRecords?: 'all' | number;
  /** The lease time to live, with which a leader's write restores a lapsed lease of its own term (default 3,000 ms). */
  readonly leaseTtlMs?: number;
  /** Called once when a fenced write of the task is refused: the node no longer leads it. Must not throw. */
  readonly onFenced?: (taskId: string) => void;
}

type StreamPage = [id: string, fields: string[]][];

interface LogCommands {
  chorusRead(log: string, snapshotId: string, after: string, count: number, end: string): Promise<StreamPage>;
  chorusCompact(log: string, snapshot: string, snapshotId: string, json: string, lastId: string, trimBelow: string): Promise<number>;
  chorusUnlock(key: string, value: string): Promise<number>;
}

const isTrimmed = (err: unknown): boolean => err instanceof Error && err.message.includes('TRIMMED');

/** The cluster's store; see the module comment. */
export class ReplicatedStore implements CoordinatorStore {
  private replica = new MemoryStore();
  private lastId = '0-0';
  /** Appends in the order written: each waits for the one before. */
  private appending: Promise<void> = Promise.resolve();
  /** Failures of appends since the last {@link flush}. */
  private failed: Error | null = null;
  /** The lease value each task's fenced writes carry, while this node leads it. */
  private readonly fences = new Map<string, string>();
  /**
   * Per task, the round whose completion (with its strategy state) this node last appended, in
   * its current term: the only state a next round's may be logged as a patch of (after a refused
   * or failed append, or a new term, the next state goes whole).
   */
  private readonly loggedStates = new Map<string, number>();
  /** Per task, the latest strategy state this node read or rebuilt: its JSON text and that text parsed. */
  private readonly parsedStates = new Map<string, { readonly json: string; readonly value: unknown }>();
  private readonly keys: ReturnType<typeof clusterKeys>;
  private following = false;
  private closed = false;
  /** Serializes reading the log (the follower and {@link sync}), so each entry is applied once. */
  private reading: Promise<void> = Promise.resolve();

  private constructor(private readonly options: ReplicatedStoreOptions) {
    this.keys = clusterKeys(options.prefix ?? 'chorus:');
    // The number of keys varies (the history lists an entry adds to): given with each call.
    options.redis.defineCommand('chorusAppend', { lua: APPEND_SCRIPT });
    const retain = options.retainRecords ?? 'all';
    if (retain !== 'all' && (!Number.isInteger(retain) || retain < 1))
      throw new CoordinatorError('CONFIG_INVALID', `retainRecords must be 'all' or an integer >= 1, got ${String(retain)}`);
    options.redis.defineCommand('chorusRead', { numberOfKeys: 2, lua: READ_SCRIPT });
    options.redis.defineCommand('chorusCompact', { numberOfKeys: 3, lua: COMPACT_SCRIPT });
    options.redis.defineCommand('chorusUnlock', { numberOfKeys: 1, lua: UNLOCK_SCRIPT });
  }

  /**
   * Connects, loads the snapshot (if the log was ever compacted) and replays the log after it into
   * a fresh replica, then starts following the log. Throws `STORE_SCHEMA` for a snapshot it cannot
   * read, `CLUSTER_UNAVAILABLE` when compactions keep overtaking the replay.
   */
  static async open(options: ReplicatedStoreOptions): Promise<ReplicatedStore> {
    const store = new ReplicatedStore(options);
    const { replica, last } = await store.replay('+');
    store.replica = replica;
    store.lastId = last;
    store.follow();
    return store;
  }

  /** The id of the last log entry this replica has applied ('0-0' before any). */
  get position(): string {
    return this.lastId;
  }

  private get commands(): LogCommands {
    return this.options.redis as unknown as LogCommands;
  }

  /**
   * A fresh replica of the log up to `end` ('+': its end): the snapshot, then the entries after it,
   * every one applied (this node's too). Starts over from the newer snapshot when a compaction
   * trims entries it has not read yet.
   */
  private async replay(end: string): Promise<{ replica: MemoryStore; last: string }> {
    for (let attempt = 1; ; attempt++) {
      const text = await this.options.redis.get(this.keys.snapshot);
      let replica = new MemoryStore();
      let last = '0-0';
      if (text !== null) {
        let parsed: { lastId?: unknown; state?: unknown };
        try {
          parsed = decodeJson(text) as { lastId?: unknown; state?: unknown };
        } catch (err) {
          throw new CoordinatorError('STORE_SCHEMA', `the cluster's snapshot (${this.keys.snapshot}) is not JSON: ${(err as Error).message}`);
        }
        if (typeof parsed?.lastId !== 'string' || !/^\d+-\d+$/.test(parsed.lastId)) {
          throw new CoordinatorError('STORE_SCHEMA', `the cluster's snapshot (${this.keys.snapshot}) has no lastId`);
        }
        replica = MemoryStore.fromSnapshot(parsed.state);
        last = parsed.lastId;
      }
      try {
        for (;;) {
          const page = await this.commands.chorusRead(this.keys.log, this.keys.snapshotId, last, PAGE, end);
          last = this.apply(replica, last, page, true);
          if (page.length < PAGE) return { replica, last };
        }
      } catch (err) {
        if (!isTrimmed(err)) throw err;
        if (attempt >= REPLAY_ATTEMPTS) {
          throw new CoordinatorError('CLUSTER_UNAVAILABLE', `the cluster log was compacted under ${attempt} replays in a row`);
        }
      }
    }
  }

  // --- fencing -------------------------------------------------------------------------------

  /** Makes this node's writes of `taskId` carry its lease value (null: it does not lead the task). */
  setFence(taskId: string, leaseValue: string | null): void {
    if (this.fences.get(taskId) !== leaseValue) this.loggedStates.delete(taskId);
    if (leaseValue === null) this.fences.delete(taskId);
    else this.fences.set(taskId, leaseValue);
  }

  /** Waits for every write made so far to be in the log; rejects (once) with the first that was not, e.g. `FENCED`. */
  async flush(): Promise<void> {
    await this.appending;
    const failed = this.failed;
    this.failed = null;
    if (failed) throw failed;
  }

  /** Applies every entry in the log now, so reads see what other nodes wrote before this call. */
  async sync(): Promise<void> {
    await this.readToEnd();
  }

  /**
   * Replays the log from its start into a fresh replica and swaps it in (after this node lost a
   * task whose writes it had applied but the log refused). Appends in flight settle first; reads go
   * to the old replica until the new one is complete.
   */
  async rebuild(): Promise<void> {
    await this.appending.catch(() => undefined);
    this.failed = null;
    const next = this.reading.then(
      () => this.rebuildNow(),
      () => this.rebuildNow(),
    );
    this.reading = next.catch(() => undefined);
    await next;
  }

  /**
   * {@link rebuild}'s replay and swap; call only in the reading chain. Writes of this node made
   * while it replays are applied to the replica being replaced: a node is overtaken by a compaction
   * only after it was silent for longer than its leases last (cluster.ts), so it leads no task then.
   */
  private async rebuildNow(): Promise<void> {
    await this.appending.catch(() => undefined);
    const { replica, last } = await this.replay('+');
    this.replica = replica;
    this.lastId = last;
  }

  /**
   * Writes a snapshot of the log up to `upTo` (an entry id every live node has applied: its
   * {@link position}) and trims those entries, unless another node is compacting or a snapshot as
   * new is there (then null). The snapshot is replayed afresh from the log, not taken from this
   * node's replica, which may hold writes of its own not yet in the log.
   */
  async compact(upTo: string): Promise<Compaction | null> {
    const { redis, nodeId } = this.options;
    // Nothing new to compact (a lagging node holds the bound where it was): no replay.
    const covered = await redis.get(this.keys.snapshotId);
    if (covered !== null && compareStreamIds(upTo, covered) <= 0) return null;
    const lock = `${nodeId}:${Date.now()}`;
    if ((await redis.set(this.keys.compacting, lock, 'PX', 120_000, 'NX')) !== 'OK') return null;
    try {
      const { replica, last } = await this.replay(upTo);
      if (last === '0-0') return null;
      const json = encodeJson({ lastId: last, state: replica.snapshot({ latestCheckpoints: true }) });
      const trimmed = await this.commands.chorusCompact(this.keys.log, this.keys.snapshot, this.keys.snapshotId, json, last, nextStreamId(last));
      return trimmed < 0 ? null : { lastId: last, trimmed, snapshotBytes: Buffer.byteLength(json) };
    } finally {
      await this.commands.chorusUnlock(this.keys.compacting, lock);
    }
  }

  // --- reads -----------------------------------------------------------------------------------

  getTask(taskId: string): TaskRecord | undefined {
    return this.replica.getTask(taskId);
  }
  listTasks(): TaskRecord[] {
    return this.replica.listTasks();
  }
  listRuns(taskId: string): RunRecord[] {
    return this.replica.listRuns(taskId);
  }
  getClient(clientId: string): ClientRecord | undefined {
    return this.replica.getClient(clientId);
  }
  listClients(taskId: string): ClientRecord[] {
    return this.replica.listClients(taskId);
  }
  findInvitation(taskId: string, tokenHash: string): InvitationRecord | undefined {
    return this.replica.findInvitation(taskId, tokenHash);
  }
  getInvitation(invitationId: string): InvitationRecord | undefined {
    return this.replica.getInvitation(invitationId);
  }
  listInvitations(taskId: string): InvitationRecord[] {
    return this.replica.listInvitations(taskId);
  }
  listRounds(taskId: string, run?: number): RoundRecord[] {
    return this.replica.listRounds(taskId, run);
  }
  listUpdates(taskId: string, serverRound?: number, run?: number): UpdateRecord[] {
    return this.replica.listUpdates(taskId, serverRound, run);
  }
  latestCheckpoint(taskId: string, run?: number): CheckpointRecord | undefined {
    return this.replica.latestCheckpoint(taskId, run);
  }
  getCheckpoint(taskId: string, serverRound: number, run?: number): CheckpointRecord | undefined {
    return this.replica.getCheckpoint(taskId, serverRound, run);
  }
  listMetrics(taskId: string, run?: number): RoundMetricsRecord[] {
    return this.replica.listMetrics(taskId, run);
  }
  listTrust(taskId: string, run?: number): TrustRecord[] {
    return this.replica.listTrust(taskId, run);
  }

  /** Every round, upload, metrics and trust record, from Redis's history lists (after this node's writes so far are there). */
  readonly history: StoreHistory = {
    // Open attempts are archived only once closed: the replica holds them (and its latest rounds, the same records).
    rounds: async (taskId, run) =>
      latestByKey(
        await this.readHistory<RoundRecord>(taskId, run, 'rounds'),
        this.replica.listRounds(taskId, run),
        (r) => `${r.serverRound}/${r.attempt}`,
      ).sort((a, b) => a.serverRound - b.serverRound || a.attempt - b.attempt),
    updates: async (taskId, serverRound, run) => {
      const records = await this.readHistory<UpdateRecord>(taskId, run, 'updates');
      return serverRound === undefined ? records : records.filter((u) => u.serverRound === serverRound);
    },
    metrics: async (taskId, run) =>
      latestByKey(await this.readHistory<RoundMetricsRecord>(taskId, run, 'metrics'), this.replica.listMetrics(taskId, run), (m) => String(m.serverRound)).sort(
        (a, b) => a.serverRound - b.serverRound,
      ),
    trust: (taskId, run) => this.readHistory<TrustRecord>(taskId, run, 'trust'),
  };

  private async readHistory<T>(taskId: string, run: number | undefined, kind: HistoryKind): Promise<T[]> {
    await this.appending.catch(() => undefined);
    const key = this.keys.history(taskId, run ?? this.replica.getTask(taskId)?.run ?? 1, kind);
    const items = await this.options.redis.lrange(key, 0, -1);
    const records: T[] = [];
    for (const [i, json] of items.entries()) {
      try {
        const batch = JSON.parse(json) as unknown;
        if (!Array.isArray(batch)) throw new Error('not an array');
        records.push(...(batch as T[]));
      } catch (err) {
        this.options.logger.error({ key, index: i, err: (err as Error).message }, 'history entry is not readable; skipped');
      }
    }
    return records;
  }

  // --- writes any node makes -------------------------------------------------------------------

  upsertTask(task: Omit<TaskRecord, 'status' | 'run' | 'updatedAt'>): TaskRecord {
    return this.write(null, 'upsertTask', [task], () => this.replica.upsertTask(task));
  }
  createClient(client: ClientRecord): void {
    this.write(null, 'createClient', [client], () => this.replica.createClient(client));
  }
  touchClient(clientId: string, lastSeenAt: number, capabilitiesJson: string | null): void {
    this.write(null, 'touchClient', [clientId, lastSeenAt, capabilitiesJson], () => this.replica.touchClient(clientId, lastSeenAt, capabilitiesJson));
  }
  createInvitation(invitation: Omit<InvitationRecord, 'used' | 'revokedAt'>): void {
    this.write(null, 'createInvitation', [invitation], () => this.replica.createInvitation(invitation));
  }
  revokeInvitation(taskId: string, invitationId: string, at: number): boolean {
    return this.write(null, 'revokeInvitation', [taskId, invitationId, at], () => this.replica.revokeInvitation(taskId, invitationId, at));
  }

  // --- writes of a task's leader (fenced) ------------------------------------------------------

  setTaskStatus(taskId: string, status: TaskStatus, at: number): void {
    this.write(taskId, 'setTaskStatus', [taskId, status, at], () => this.replica.setTaskStatus(taskId, status, at));
  }
  beginRun(taskId: string, at: number): number {
    return this.write(taskId, 'beginRun', [taskId, at], () => this.replica.beginRun(taskId, at));
  }
  startRound(round: Omit<RoundRecord, 'status' | 'endedAt' | 'reason' | 'numAccepted'>): void {
    this.write(round.taskId, 'startRound', [round], () => this.replica.startRound(round));
  }
  retryRound(taskId: string, serverRound: number, attempt: number, endedAt: number, reason: string): void {
    const open = this.replica.getRound(taskId, serverRound, attempt);
    const closed = open && open.status === 'open' ? [{ ...open, status: 'retry' as const, endedAt, reason }] : [];
    this.write(
      taskId,
      'retryRound',
      [taskId, serverRound, attempt, endedAt, reason],
      () => this.replica.retryRound(taskId, serverRound, attempt, endedAt, reason),
      this.archiveOf(taskId, 'rounds', closed),
    );
  }
  abandonOpenRounds(taskId: string, at: number): number {
    const closed = this.replica
      .listRounds(taskId)
      .filter((r) => r.status === 'open')
      .map((r) => ({ ...r, status: 'retry' as const, endedAt: at, reason: ABANDONED_REASON }));
    return this.write(taskId, 'abandonOpenRounds', [taskId, at], () => this.replica.abandonOpenRounds(taskId, at), this.archiveOf(taskId, 'rounds', closed));
  }
  recordUpdates(updates: readonly UpdateRecord[]): void {
    const taskId = updates[0]?.taskId;
    if (taskId === undefined) return;
    if (updates.some((u) => u.taskId !== taskId)) throw new CoordinatorError('STORE_CONFLICT', 'one task per batch of upload records');
    const run = this.replica.getTask(taskId)?.run ?? 1;
    const byRun = new Map<number, Omit<UpdateRecord, 'run'>[]>();
    for (const { run: own, ...u } of updates) {
      const batch = byRun.get(own ?? run);
      if (batch) batch.push(u);
      else byRun.set(own ?? run, [u]);
    }
    const archive = [...byRun].flatMap(([r, records]) => this.archiveOf(taskId, 'updates', records, r));
    this.write(taskId, 'recordUpdates', [updates], () => this.replica.recordUpdates(updates), archive);
  }
  saveInitialCheckpoint(checkpoint: Omit<CheckpointRecord, 'serverRound'>): void {
    this.write(checkpoint.taskId, 'saveInitialCheckpoint', [checkpoint], () => this.replica.saveInitialCheckpoint(checkpoint));
  }
  completeRound(completion: RoundCompletion): void {
    const { taskId, serverRound, attempt, endedAt, numAccepted } = completion;
    const trust = completion.trust.map((t) => ({ taskId, serverRound, clientId: t.clientId, trust: t.trust }));
    const open = this.replica.getRound(taskId, serverRound, attempt);
    const closed = open && open.status === 'open' ? [{ ...open, status: 'completed' as const, endedAt, numAccepted }] : [];
    const metrics: RoundMetricsRecord = { taskId, serverRound, metrics: completion.metrics, createdAt: endedAt };
    const archive = [...this.archiveOf(taskId, 'rounds', closed), ...this.archiveOf(taskId, 'metrics', [metrics]), ...this.archiveOf(taskId, 'trust', trust)];
    const logged = this.loggedCompletion(completion);
    this.loggedStates.delete(taskId);
    this.write(
      taskId,
      'completeRound',
      logged,
      () => {
        this.replica.completeRound(completion);
        this.retain(this.replica, completion);
      },
      archive,
      () => {
        if (completion.strategyState) this.loggedStates.set(taskId, serverRound);
      },
    );
  }

  /**
   * The arguments a `completeRound` entry logs: the completion, or the completion without its
   * strategy state and the state as a patch of the run's latest checkpoint's, when that state is
   * the one this node last logged in its term, the round is not one of every
   * {@link WHOLE_STATE_EVERY}, and the patch is the smaller.
   */
  private loggedCompletion(completion: RoundCompletion): unknown[] {
    const state = completion.strategyState;
    if (!state) return [completion];
    const run = this.replica.getTask(completion.taskId)?.run ?? 1;
    const base = this.replica.latestCheckpoint(completion.taskId, run);
    let after: unknown;
    try {
      after = JSON.parse(state.json);
    } catch {
      return [completion];
    }
    const before = base?.strategyState ? this.parsedState(completion.taskId, base.strategyState.json) : undefined;
    this.parsedStates.set(completion.taskId, { json: state.json, value: after });
    if (
      before === undefined ||
      base!.serverRound >= completion.serverRound ||
      this.loggedStates.get(completion.taskId) !== base!.serverRound ||
      completion.serverRound % WHOLE_STATE_EVERY === 0
    )
      return [completion];
    const patch = diffJson(before, after) ?? { keys: {} };
    if (JSON.stringify(patch).length >= state.json.length) return [completion];
    const arg: StatePatchArg = { base: base!.serverRound, patch, sha256: sha256Hex(state.json), tensorBytes: state.tensorBytes };
    return [{ ...completion, strategyState: null }, arg];
  }

  /** `json` (a task's latest strategy state) parsed, from {@link parsedStates} when it holds that text; undefined when it does not parse. */
  private parsedState(taskId: string, json: string): unknown {
    const known = this.parsedStates.get(taskId);
    if (known?.json === json) return known.value;
    try {
      return JSON.parse(json) as unknown;
    } catch {
      return undefined;
    }
  }

  /**
   * A logged `completeRound`'s completion with its strategy state rebuilt from the patch (see
   * {@link loggedCompletion}) on `replica`'s state. When the replica lacks the base state, the patch
   * does not apply or the rebuilt state is not the writer's, the round is kept without a state and
   * the error logged (`CLUSTER_STATE_PATCH`).
   */
  private completionFromLog(replica: MemoryStore, args: readonly unknown[], id: string): RoundCompletion {
    const completion = args[0] as RoundCompletion;
    if (args.length < 2) return completion;
    const { base, patch, sha256, tensorBytes } = args[1] as StatePatchArg;
    const run = replica.getTask(completion.taskId)?.run ?? 1;
    const held = replica.getCheckpoint(completion.taskId, base, run)?.strategyState;
    let json: string | null = null;
    let why: string;
    const before = held ? this.parsedState(completion.taskId, held.json) : undefined;
    if (before === undefined) why = `it patches round ${base}'s state, which this replica lacks`;
    else {
      try {
        const value = applyJsonPatch(before, patch);
        json = JSON.stringify(value);
        why = sha256Hex(json) === sha256 ? '' : 'the state rebuilt from its patch is not the leader’s';
        if (why === '') this.parsedStates.set(completion.taskId, { json, value });
      } catch (err) {
        why = `its patch does not apply: ${(err as Error).message}`;
      }
    }
    if (why === '' && json !== null) return { ...completion, strategyState: { json, tensorBytes } };
    // The round is committed whatever this replica makes of its state: it keeps the round, without a state to import or sum in.
    this.options.logger.error(
      { id, task: completion.taskId, round: completion.serverRound, code: 'CLUSTER_STATE_PATCH' },
      `strategy state of the round not rebuilt: ${why}`,
    );
    return { ...completion, strategyState: null };
  }

  /** `records` as one item of the `kind` history list of `run` (absent: the current run); none when there are none. */
  private archiveOf(taskId: string, kind: HistoryKind, records: readonly object[], run?: number): { key: string; json: string }[] {
    if (records.length === 0) return [];
    return [{ key: this.keys.history(taskId, run ?? this.replica.getTask(taskId)?.run ?? 1, kind), json: JSON.stringify(records) }];
  }

  /** Stops following the log; appends in flight still settle. The Redis connections stay the caller's. */
  close(): void {
    this.closed = true;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Applies a write locally (throwing as the replica does, appending nothing then) and appends it,
   * with `archive`'s records pushed to their history lists in the same step; `onLogged` runs once
   * the entry is in the log.
   */
  private write<T>(
    fencedTask: string | null,
    method: WriteMethod,
    args: readonly unknown[],
    apply: () => T,
    archive: readonly { readonly key: string; readonly json: string }[] = [],
    onLogged?: () => void,
  ): T {
    const fence = fencedTask === null ? '' : this.fences.get(fencedTask);
    if (fence === undefined) throw new CoordinatorError('NOT_LEADER', `${method} of task ${fencedTask}: this node does not lead the task`);
    const result = apply();
    const entry = encodeEntry({ node: this.options.nodeId, method, args });
    const { redis, logger, onFenced } = this.options;
    this.appending = this.appending.then(async () => {
      try {
        await (redis as unknown as { chorusAppend(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<string> }).chorusAppend(
          3 + archive.length,
          this.keys.log,
          this.keys.lease(fencedTask ?? ''),
          this.keys.fence(fencedTask ?? ''),
          ...archive.map((a) => a.key),
          fence,
          entry,
          this.options.leaseTtlMs ?? 3000,
          ...archive.map((a) => a.json),
        );
        onLogged?.();
      } catch (err) {
        const message = (err as Error).message;
        const fenced = message.includes('FENCED');
        // Either way the log lacks a write the replica holds: a fenced write's task is given up (and the replica rebuilt by the listener).
        const failure = fenced
          ? new CoordinatorError('FENCED', `${method} of task ${fencedTask}: the task's lease is held by another node; the write was refused`)
          : new CoordinatorError('CLUSTER_UNAVAILABLE', `${method}: could not append to the log: ${message}`);
        this.failed ??= failure;
        logger.error({ method, task: fencedTask, code: failure.code }, 'write not appended to the cluster log');
        if (fencedTask !== null && this.fences.get(fencedTask) === fence) {
          this.fences.delete(fencedTask);
          try {
            onFenced?.(fencedTask);
          } catch (listenerErr) {
            logger.error({ err: listenerErr }, 'fence listener failed');
          }
        }
      }
    });
    return result;
  }

  /**
   * Reads the log from the last entry applied to its end (other nodes' entries: this node applied
   * its own when it wrote them); when a compaction has trimmed entries not read yet, replays from
   * the snapshot instead.
   */
  private readToEnd(): Promise<void> {
    const run = async (): Promise<void> => {
      for (;;) {
        let page: StreamPage;
        try {
          page = await this.commands.chorusRead(this.keys.log, this.keys.snapshotId, this.lastId, PAGE, '+');
        } catch (err) {
          if (!isTrimmed(err)) throw err;
          this.options.logger.warn({ position: this.lastId }, 'the cluster log was compacted past this node; replaying from the snapshot');
          await this.rebuildNow();
          return;
        }
        this.lastId = this.apply(this.replica, this.lastId, page, false);
        if (page.length < PAGE) return;
      }
    };
    const next = this.reading.then(run, run);
    this.reading = next.catch(() => undefined);
    return next;
  }

  /** Applies a page of entries after `last` to `replica`; returns the id of the last one read. */
  private apply(replica: MemoryStore, last: string, page: StreamPage, own: boolean): string {
    for (const [id, fields] of page) {
      if (compareStreamIds(id, last) <= 0) continue;
      last = id;
      const text = fields[fields.indexOf('e') + 1];
      let entry: LogEntry;
      try {
        entry = decodeEntry(text ?? '');
      } catch (err) {
        this.options.logger.error({ id, err }, 'cluster log entry is not readable; skipped');
        continue;
      }
      if (!own && entry.node === this.options.nodeId) continue;
      try {
        if (entry.method === 'completeRound') {
          const completion = this.completionFromLog(replica, entry.args, id);
          replica.completeRound(completion);
          this.retain(replica, completion);
        } else (replica[entry.method] as (...a: unknown[]) => unknown).apply(replica, [...entry.args]);
      } catch (err) {
        // The writer applied it without error; a replica that disagrees says so and goes on.
        if (!isCoordinatorError(err, 'STORE_CONFLICT')) this.options.logger.warn({ id, method: entry.method, err }, 'cluster log entry not applied');
      }
    }
    return last;
  }

  /** Keeps only the latest checkpoint, and the latest rounds' records, of the run a round was committed in, when so configured. */
  private retain(replica: MemoryStore, completion: RoundCompletion): void {
    if (this.options.retainCheckpoints === 'latest') replica.forgetCheckpointsBefore(completion.taskId, completion.serverRound);
    const rounds = this.options.retainRecords ?? 'all';
    if (rounds !== 'all') replica.forgetRecordsBefore(completion.taskId, completion.serverRound - rounds + 1);
  }

  /** Follows the log with a blocking read on the reader connection until {@link close}. */
  private follow(): void {
    if (this.following) return;
    this.following = true;
    const loop = async (): Promise<void> => {
      while (!this.closed) {
        try {
          const got = (await this.options.reader.xread('COUNT', PAGE, 'BLOCK', 1000, 'STREAMS', this.keys.log, this.lastId)) as [string, StreamPage][] | null;
          if (got && got.length > 0 && !this.closed) {
            const page = got[0]![1];
            const pending = this.reading.then(async () => {
              // Read after the page: a compaction that trimmed entries before XREAD ran shows here.
              const covered = await this.options.redis.get(this.keys.snapshotId);
              if (covered !== null && compareStreamIds(covered, this.lastId) > 0) {
                this.options.logger.warn({ position: this.lastId, covered }, 'the cluster log was compacted past this node; replaying from the snapshot');
                await this.rebuildNow();
              } else this.lastId = this.apply(this.replica, this.lastId, page, false);
            });
            this.reading = pending.catch(() => undefined);
            await pending;
          }
        } catch (err) {
          if (this.closed) return;
          this.options.logger.debug({ err }, 'cluster log read failed; retrying');
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    void loop();
  }
}
