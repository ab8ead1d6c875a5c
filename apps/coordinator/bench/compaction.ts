/**
 * Cluster log compaction benchmark (not a test): what compacting the cluster's log
 * (cluster/replicatedStore.ts) saves in Redis memory and in the time a node takes to join. One
 * leader writes `--rounds` rounds of a task with `--clients` clients per round (a round start, a
 * touch and an upload verdict per client, a completed round with a `--checkpoint-kb` checkpoint and
 * every client's trust) to a redis-server on loopback; then a node joins by replaying the log, the
 * leader compacts it, and another node joins from the snapshot. Prints as its LAST line one JSON object:
 *
 *   log_entries_before, redis_mb_before  — the log's entries and Redis's used_memory before compaction;
 *   join_replay_ms_before                — a node joining by replaying the whole log;
 *   compact_ms, snapshot_mb              — the compaction (a replay, the snapshot's encoding, the Lua write and trim);
 *   log_entries_after, redis_mb_after    — after it;
 *   join_load_ms_after                   — a node joining from the snapshot;
 *   redis_memory_ratio, join_speedup     — before ÷ after.
 *
 * Usage: pnpm bench:compaction [--rounds 200] [--clients 100] [--checkpoint-kb 400]
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ReplicatedStore } from '../src/cluster/replicatedStore.js';
import { RedisServer } from '../src/testing/redisServer.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '200' },
    clients: { type: 'string', default: '100' },
    'checkpoint-kb': { type: 'string', default: '400' },
  },
});
const ROUNDS = Number(args.rounds);
const CLIENTS = Number(args.clients);
const CHECKPOINT_BYTES = Number(args['checkpoint-kb']) * 1000;
for (const [name, v] of [
  ['rounds', ROUNDS],
  ['clients', CLIENTS],
  ['checkpoint-kb', CHECKPOINT_BYTES],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}

const server = await RedisServer.start();
const connections: Redis[] = [];
const connect = (): Redis => {
  const c = new Redis(server.url, { maxRetriesPerRequest: null });
  connections.push(c);
  return c;
};
const silent = pino({ level: 'silent' });
const open = (nodeId: string): Promise<ReplicatedStore> => ReplicatedStore.open({ redis: connect(), reader: connect(), nodeId, logger: silent });

try {
  const admin = connect();
  const leader = await open('leader');
  leader.upsertTask({ taskId: 't', configJson: '{}', joinTokenHash: 'h', createdAt: 1 });
  await admin.set('chorus:lease:t', 'leader:1');
  leader.setFence('t', 'leader:1');
  const clients = Array.from({ length: CLIENTS }, (_, c) => `c${c}`);
  for (const clientId of clients) leader.createClient({ clientId, taskId: 't', secretHash: 's', capabilitiesJson: null, createdAt: 1, lastSeenAt: 1 });
  leader.saveInitialCheckpoint({ taskId: 't', bytes: new Uint8Array(CHECKPOINT_BYTES), sha256: 'h0', strategyState: null, createdAt: 1 });
  for (let r = 1; r <= ROUNDS; r++) {
    leader.startRound({ taskId: 't', serverRound: r, attempt: 1, roundId: `r${r}`, selected: clients, startedAt: r });
    for (const clientId of clients) leader.touchClient(clientId, r, null);
    leader.recordUpdates(
      clients.map((clientId) => ({
        taskId: 't',
        serverRound: r,
        attempt: 1,
        clientId,
        status: 'accepted' as const,
        code: null,
        message: null,
        numExamples: 50,
        byteLength: 20_000,
        receivedAt: r,
      })),
    );
    leader.completeRound({
      taskId: 't',
      serverRound: r,
      attempt: 1,
      endedAt: r,
      numAccepted: CLIENTS,
      checkpoint: { bytes: new Uint8Array(CHECKPOINT_BYTES).fill(r & 255), sha256: `h${r}` },
      strategyState: null,
      metrics: { numAccepted: CLIENTS },
      trust: clients.map((clientId) => ({ clientId, trust: 0.5 })),
      taskStatus: 'running',
    });
    if (r % 20 === 0) await leader.flush();
  }
  await leader.flush();
  await leader.sync();
  const usedMb = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]) / 2 ** 20;
  const entriesBefore = await admin.xlen('chorus:log');
  const mbBefore = await usedMb();
  let started = performance.now();
  (await open('join-before')).close();
  const joinBefore = performance.now() - started;
  started = performance.now();
  const done = await leader.compact(leader.position);
  const compactMs = performance.now() - started;
  if (!done) throw new Error('the compaction did not run');
  const entriesAfter = await admin.xlen('chorus:log');
  const mbAfter = await usedMb();
  started = performance.now();
  const joined = await open('join-after');
  const joinAfter = performance.now() - started;
  if (joined.latestCheckpoint('t')?.sha256 !== `h${ROUNDS}` || joined.listUpdates('t').length !== ROUNDS * CLIENTS) throw new Error('the snapshot lost state');
  joined.close();
  leader.close();
  console.log(
    `${ROUNDS} rounds × ${CLIENTS} clients: ${entriesBefore} entries, ${mbBefore.toFixed(1)} MB in Redis → ${entriesAfter} entries, ${mbAfter.toFixed(1)} MB`,
  );
  const round1 = (x: number): number => Number(x.toFixed(1));
  console.log(
    JSON.stringify({
      rounds: ROUNDS,
      clients: CLIENTS,
      checkpoint_kb: CHECKPOINT_BYTES / 1000,
      log_entries_before: entriesBefore,
      redis_mb_before: round1(mbBefore),
      join_replay_ms_before: Math.round(joinBefore),
      compact_ms: Math.round(compactMs),
      snapshot_mb: Number((done.snapshotBytes / 2 ** 20).toFixed(2)),
      log_entries_after: entriesAfter,
      redis_mb_after: round1(mbAfter),
      join_load_ms_after: Math.round(joinAfter),
      redis_memory_ratio: round1(mbBefore / mbAfter),
      join_speedup: round1(joinBefore / joinAfter),
    }),
  );
} finally {
  for (const c of connections) c.disconnect();
  await server.stop();
}
