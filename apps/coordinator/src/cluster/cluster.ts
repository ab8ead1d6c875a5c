/**
 * One coordinator node's membership of a cluster: its Redis connections, the replicated store, and
 * the pieces the server wires in (the socket.io adapter, the leases, the update relay).
 *
 * Every node serves every task: clients connect to any node (WebSocket transport, no sticky
 * sessions), socket.io's Redis adapter carries room broadcasts (round starts, round ends) across
 * nodes, and one node leads each task's rounds by holding its lease (lease.ts). The leader runs the
 * task's engine unchanged — plan, judge, aggregate in canonical order, commit — so a cluster's
 * rounds are those of a single node given the same uploads: the same global-model hashes. Uploads
 * reaching another node are passed to the leader (relay.ts); the leader learns who is connected
 * where from the nodes' records in Redis (membership.ts), which also tell it when a node dies.
 *
 * The adapter is `@socket.io/redis-adapter` (Redis pub/sub) rather than the streams adapter: the
 * protocol already survives a lost broadcast (a round start that never arrives ends as a missed
 * deadline and a retry; clients say hello again after a reconnect), so the streams adapter's
 * replay buys nothing here, while pub/sub keeps no per-message state in Redis and needs no trimming.
 * The durable state — rounds, checkpoints, trust, metrics, identities — is the replicated store's
 * log (replicatedStore.ts), which is a stream with AOF persistence.
 *
 * Every connection retries without limit while Redis is away (`maxRetriesPerRequest: null`):
 * commands wait in ioredis's queue and go out on reconnect, and the lease (renewals stalled) lapses
 * on its holder's own clock first.
 */
import { randomBytes } from 'node:crypto';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CoordinatorError } from '../errors.js';
import { defaultStallMs } from './lease.js';
import { ReplicatedStore, clusterKeys, compareStreamIds } from './replicatedStore.js';

/** Default lease time to live. */
export const DEFAULT_LEASE_TTL_MS = 10_000;

/** Options of {@link connectCluster}. */
export interface ClusterOptions {
  /** `redis://host:port[/db]`. */
  readonly url: string;
  /** This node's id (default: random); unique in the cluster, without ':'. */
  readonly nodeId?: string;
  /** Prefix of every key and channel (default `chorus:`): one Redis can hold several clusters. */
  readonly prefix?: string;
  /**
   * Lease time to live (default 10,000 ms): bounds how long a task waits for a new leader when its
   * leader dies or loses Redis (TTL + TTL/3). A leader whose event loop is busy (a large round's
   * aggregation) keeps its lease, renewed from a worker thread, for up to max(30 s, 3 × TTL) (lease.ts).
   */
  readonly leaseTtlMs?: number;
  /** How often the leader reconciles its waiting room with the sockets of every node (default 500 ms). */
  readonly reconcileMs?: number;
  /** How long a relayed upload waits for the leader (default 10 s). */
  readonly relayTimeoutMs?: number;
  /**
   * Log entries past which a node compacts the log (replicatedStore.ts): a snapshot of the state up
   * to the entry every live node has applied, and the entries before it trimmed. Default 10,000; 0
   * never compacts. Checked every `compactCheckMs` (default 10 s) on every node; one compacts at a time.
   */
  readonly compactEntries?: number;
  readonly compactCheckMs?: number;
  readonly logger: Logger;
}

/** Rounds of upload and trust records a node's replica keeps in memory (replicatedStore.ts's `retainRecords`). */
export const RETAINED_RECORD_ROUNDS = 2;

/** Default {@link ClusterOptions.compactEntries}. */
export const DEFAULT_COMPACT_ENTRIES = 10_000;

/** See {@link ClusterNode.log}. */
export interface ClusterLogState {
  readonly entries: number;
  readonly snapshotId: string | null;
  readonly applied: string;
}

/** A node's connections to the cluster. */
export interface ClusterNode {
  readonly nodeId: string;
  readonly prefix: string;
  readonly leaseTtlMs: number;
  readonly reconcileMs: number;
  readonly relayTimeoutMs: number;
  readonly store: ReplicatedStore;
  /** Commands: leases, appends, relay publishes. */
  readonly redis: Redis;
  /** A subscriber connection for the update relay. */
  readonly relaySubscriber: Redis;
  /** The socket.io adapter over this node's adapter connections. */
  readonly adapter: ReturnType<typeof createAdapter>;
  /** Records this node's URL in the node registry (once it listens). */
  announce(url: string): Promise<void>;
  /** The live nodes and their URLs. */
  nodes(): Promise<{ readonly nodeId: string; readonly url: string | null }[]>;
  /** The log as operators watch it: its entries, the last entry its snapshot holds (null before a compaction), and this node's position. */
  log(): Promise<ClusterLogState>;
  /** Sets who hears that a fenced write was refused (the server: it stops leading the task). */
  onFenced(listener: (taskId: string) => void): void;
  /** Closes the store and every connection. */
  close(): Promise<void>;
}

/** Connects a node to the cluster at `options.url` and replays the log; throws `CLUSTER_UNAVAILABLE` when Redis cannot be reached. */
export async function connectCluster(options: ClusterOptions): Promise<ClusterNode> {
  const nodeId = options.nodeId ?? `n-${randomBytes(6).toString('hex')}`;
  if (nodeId.includes(':') || nodeId.length === 0) throw new CoordinatorError('CONFIG_INVALID', `node id '${nodeId}' must be non-empty and hold no ':'`);
  const compactEntries = options.compactEntries ?? DEFAULT_COMPACT_ENTRIES;
  if (!Number.isInteger(compactEntries) || compactEntries < 0) {
    throw new CoordinatorError('CONFIG_INVALID', `compactEntries must be an integer >= 0 (0: never compact), got ${compactEntries}`);
  }
  const compactCheckMs = options.compactCheckMs ?? 10_000;
  if (!Number.isInteger(compactCheckMs) || compactCheckMs < 100) {
    throw new CoordinatorError('CONFIG_INVALID', `compactCheckMs must be an integer >= 100, got ${compactCheckMs}`);
  }
  const leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const prefix = options.prefix ?? 'chorus:';
  const connect = (name: string): Redis =>
    new Redis(options.url, {
      maxRetriesPerRequest: null,
      connectionName: `chorus-${nodeId}-${name}`,
      lazyConnect: true,
      retryStrategy: (n) => Math.min(50 * n, 500),
    });
  const connections = {
    redis: connect('cmd'),
    reader: connect('log'),
    adapterPub: connect('pub'),
    adapterSub: connect('sub'),
    relaySubscriber: connect('relay'),
  };
  const all = Object.values(connections);
  try {
    await Promise.race([
      Promise.all(all.map((c) => c.connect())),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 10 s')), 10_000)),
    ]);
  } catch (err) {
    for (const c of all) c.disconnect();
    throw new CoordinatorError('CLUSTER_UNAVAILABLE', `cannot reach Redis at ${options.url}: ${(err as Error).message}`);
  }
  for (const c of all) c.on('error', (err: Error) => options.logger.debug({ err: err.message }, 'redis connection error'));
  let fencedListener: (taskId: string) => void = () => undefined;
  const store = await ReplicatedStore.open({
    redis: connections.redis,
    reader: connections.reader,
    nodeId,
    prefix,
    logger: options.logger,
    onFenced: (taskId) => fencedListener(taskId),
    leaseTtlMs,
    // A node needs a run's latest model only (to lead it, or to probe uploads against it), and no
    // upload or trust record of earlier rounds: the API reads those from Redis (`history`).
    retainCheckpoints: 'latest',
    retainRecords: RETAINED_RECORD_ROUNDS,
  });
  // Nodes announce themselves, for operators (`GET /api/cluster`, `redis-cli hgetall chorus:nodes`),
  // with the last log entry they applied (what compaction may trim up to). Each entry is refreshed
  // every second; one not seen for 5 s is a node gone (a crash leaves its entry behind).
  const keys = clusterKeys(prefix);
  const startedAt = Date.now();
  let announced: string | null = null;
  const register = (): Promise<unknown> =>
    connections.redis.hset(keys.nodes, nodeId, JSON.stringify({ pid: process.pid, startedAt, url: announced, seenAt: Date.now(), applied: store.position }));
  await register();
  const heartbeat = setInterval(() => void register().catch(() => undefined), 1000);
  heartbeat.unref();
  // A node silent for longer than this has lost every lease it held (its renewals stop after
  // stallMs, and the lease lapses a TTL later), so compaction may trim past what it applied.
  const compactLiveMs = defaultStallMs(leaseTtlMs) + 2 * leaseTtlMs;
  let compacting = false;
  const compactIfDue = async (): Promise<void> => {
    if (compacting || (await connections.redis.xlen(keys.log)) < compactEntries) return;
    compacting = true;
    try {
      const now = Date.now();
      let upTo = store.position;
      for (const json of Object.values(await connections.redis.hgetall(keys.nodes))) {
        const n = JSON.parse(json) as { seenAt?: number; applied?: unknown };
        if (now - (n.seenAt ?? 0) > compactLiveMs) continue;
        const applied = typeof n.applied === 'string' && /^\d+-\d+$/.test(n.applied) ? n.applied : '0-0';
        if (compareStreamIds(applied, upTo) < 0) upTo = applied;
      }
      if (upTo === '0-0') return;
      const done = await store.compact(upTo);
      if (done) options.logger.info({ ...done }, 'compacted the cluster log');
    } finally {
      compacting = false;
    }
  };
  const compactor =
    compactEntries > 0
      ? setInterval(() => void compactIfDue().catch((err: Error) => options.logger.warn({ err: err.message }, 'cluster log compaction failed')), compactCheckMs)
      : null;
  compactor?.unref();
  const adapter = createAdapter(connections.adapterPub, connections.adapterSub, { key: `${prefix}io` });
  return {
    nodeId,
    prefix,
    leaseTtlMs,
    reconcileMs: options.reconcileMs ?? 500,
    relayTimeoutMs: options.relayTimeoutMs ?? 10_000,
    store,
    redis: connections.redis,
    relaySubscriber: connections.relaySubscriber,
    adapter,
    async announce(url) {
      announced = url;
      await register();
    },
    async nodes() {
      const all = await connections.redis.hgetall(keys.nodes);
      const now = Date.now();
      return Object.entries(all)
        .map(([id, json]) => ({ nodeId: id, ...(JSON.parse(json) as { url?: string | null; seenAt?: number }) }))
        .filter((n) => now - (n.seenAt ?? 0) < 5000)
        .map((n) => ({ nodeId: n.nodeId, url: n.url ?? null }))
        .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    },
    async log() {
      const [entries, snapshotId] = await Promise.all([connections.redis.xlen(keys.log), connections.redis.get(keys.snapshotId)]);
      return { entries, snapshotId, applied: store.position };
    },
    onFenced(listener) {
      fencedListener = listener;
    },
    async close() {
      clearInterval(heartbeat);
      if (compactor) clearInterval(compactor);
      store.close();
      // Bounded: with Redis away, appends would wait for it forever.
      const bounded = (p: Promise<unknown>): Promise<unknown> => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
      await bounded(store.flush());
      await bounded(connections.redis.hdel(keys.nodes, nodeId));
      for (const c of all) c.disconnect();
    },
  };
}
