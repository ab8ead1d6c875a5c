import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FedAvg, Probation, tensor } from '@chorus/fl-core';
import { ReplicatedStore, WHOLE_STATE_EVERY, decodeEntry, encodeEntry } from '../cluster/replicatedStore.js';
import { decodeStrategyState, encodeStrategyState } from '../engine/checkpoint.js';
import { RedisServer } from '../testing/redisServer.js';
import { isCoordinatorError } from '../errors.js';
import { MemoryStore } from './memoryStore.js';
import { SqliteStore } from './sqliteStore.js';
import { ABANDONED_REASON } from './types.js';
import type { CoordinatorStore, RoundCompletion, UpdateRecord } from './types.js';
import { readMetrics, readRounds, readTrust, readUpdates } from './history.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-store-'));
  dirs.push(dir);
  return join(dir, 'coordinator.db');
}

function seedTask(store: CoordinatorStore): void {
  store.upsertTask({ taskId: 't1', configJson: '{"id":"t1"}', joinTokenHash: 'aa', createdAt: 100 });
  store.saveInitialCheckpoint({ taskId: 't1', bytes: new Uint8Array([1, 2, 3]), sha256: 'h0', strategyState: null, createdAt: 100 });
}

function completion(overrides: Partial<RoundCompletion> = {}): RoundCompletion {
  return {
    taskId: 't1',
    serverRound: 1,
    attempt: 1,
    endedAt: 200,
    numAccepted: 2,
    checkpoint: { bytes: new Uint8Array([9, 8, 7, 6]), sha256: 'h1' },
    strategyState: { json: '{"strategy":"fedavg"}', tensorBytes: new Uint8Array([5]) },
    metrics: { numAccepted: 2, aggregationMs: 1.5 },
    trust: [
      { clientId: 'c1', trust: 0.9 },
      { clientId: 'c2', trust: 0.4 },
    ],
    taskStatus: 'running',
    ...overrides,
  };
}

/**
 * The cluster's store (a replica of a Redis log) on a real redis-server, as the leader of every task
 * the contract names. Each test's store has its own key prefix; after each test, a fresh replica
 * replayed from that log must read exactly as the store did.
 */
const TASKS = ['t1', 'th1', 'th3', 'nope', 'other'];
let redis: RedisServer;
const connections: Redis[] = [];
const ready: { store: ReplicatedStore; prefix: string }[] = [];
const used: { store: ReplicatedStore; prefix: string }[] = [];
const silent = pino({ level: 'silent' });
async function openReplicated(prefix: string, nodeId: string, retainRecords?: 'all' | number, logger = silent): Promise<ReplicatedStore> {
  const redisConn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const reader = new Redis(redis.url, { maxRetriesPerRequest: null });
  connections.push(redisConn, reader);
  return ReplicatedStore.open({ redis: redisConn, reader, nodeId, prefix, logger, ...(retainRecords === undefined ? {} : { retainRecords }) });
}
beforeAll(async () => {
  redis = await RedisServer.start();
  const admin = new Redis(redis.url);
  for (let i = 0; i < 40; i++) {
    const prefix = `s${i}:`;
    const store = await openReplicated(prefix, 'leader');
    for (const t of TASKS) {
      await admin.set(`${prefix}lease:${t}`, 'leader:1');
      store.setFence(t, 'leader:1');
    }
    ready.push({ store, prefix });
  }
  admin.disconnect();
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  await redis.stop();
});
/** Whether `replica` reads as `store` does (checkpoints: the latest of the current run). */
function expectSameReads(replica: CoordinatorStore, store: CoordinatorStore): void {
  for (const t of TASKS) {
    expect(replica.getTask(t)).toEqual(store.getTask(t));
    expect(replica.listRuns(t)).toEqual(store.listRuns(t));
    expect(replica.listRounds(t)).toEqual(store.listRounds(t));
    expect(replica.listUpdates(t)).toEqual(store.listUpdates(t));
    expect(replica.latestCheckpoint(t)).toEqual(store.latestCheckpoint(t));
    expect(replica.listMetrics(t)).toEqual(store.listMetrics(t));
    expect(replica.listTrust(t)).toEqual(store.listTrust(t));
    expect(replica.listClients(t)).toEqual(store.listClients(t));
    expect(replica.listInvitations(t)).toEqual(store.listInvitations(t));
  }
}
afterEach(async () => {
  for (const { store, prefix } of used.splice(0)) {
    await store.flush();
    // A fresh replica replayed from the log, then one loaded from a snapshot of it (the whole log compacted).
    const replay = await openReplicated(prefix, 'replay');
    expectSameReads(replay, store);
    const compacted = await replay.compact(replay.position);
    const admin = new Redis(redis.url);
    expect(await admin.xlen(`${prefix}log`)).toBe(0);
    admin.disconnect();
    expect(compacted?.lastId).toBe(replay.position);
    const restored = await openReplicated(prefix, 'restored');
    expectSameReads(restored, store);
    expect(restored.position).toBe(replay.position);
    restored.close();
    replay.close();
    store.close();
  }
});

const implementations: [string, () => CoordinatorStore][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore', () => new SqliteStore({ path: tempFile() })],
  [
    'ReplicatedStore',
    () => {
      const next = ready.shift();
      if (!next) throw new Error('more replicated stores needed: raise the count in beforeAll');
      used.push(next);
      return next.store;
    },
  ],
];

describe.each(implementations)('%s (store contract)', (_name, make) => {
  it('keeps the initial checkpoint as round 0 and never overwrites it', () => {
    // Arrange
    const store = make();
    seedTask(store);
    // Act
    store.saveInitialCheckpoint({ taskId: 't1', bytes: new Uint8Array([4, 4]), sha256: 'other', strategyState: null, createdAt: 101 });
    // Assert
    const c = store.latestCheckpoint('t1');
    expect(c?.serverRound).toBe(0);
    expect([...c!.bytes]).toEqual([1, 2, 3]);
    expect(c?.sha256).toBe('h0');
    store.close();
  });

  it('writes a completed round with checkpoint, strategy state, metrics and trust together', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 'r1', selected: ['c1', 'c2'], startedAt: 150 });
    // Act
    store.completeRound(completion());
    // Assert
    const c = store.latestCheckpoint('t1')!;
    expect(c.serverRound).toBe(1);
    expect([...c.bytes]).toEqual([9, 8, 7, 6]);
    expect(c.strategyState?.json).toBe('{"strategy":"fedavg"}');
    expect([...c.strategyState!.tensorBytes]).toEqual([5]);
    expect(store.listRounds('t1')).toEqual([
      {
        taskId: 't1',
        serverRound: 1,
        attempt: 1,
        roundId: 'r1',
        status: 'completed',
        selected: ['c1', 'c2'],
        startedAt: 150,
        endedAt: 200,
        reason: null,
        numAccepted: 2,
      },
    ]);
    expect(store.listMetrics('t1')).toEqual([{ taskId: 't1', serverRound: 1, metrics: { numAccepted: 2, aggregationMs: 1.5 }, createdAt: 200 }]);
    expect(store.listTrust('t1').map((t) => [t.clientId, t.trust])).toEqual([
      ['c1', 0.9],
      ['c2', 0.4],
    ]);
    expect(store.getTask('t1')?.status).toBe('running');
    store.close();
  });

  it('keeps the strategy state with the latest checkpoint only; every model stays', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 'r1', selected: ['c1', 'c2'], startedAt: 150 });
    store.completeRound(completion());
    store.startRound({ taskId: 't1', serverRound: 2, attempt: 1, roundId: 'r2', selected: ['c1', 'c2'], startedAt: 250 });
    // Act
    store.completeRound(
      completion({
        serverRound: 2,
        endedAt: 300,
        checkpoint: { bytes: new Uint8Array([3, 3]), sha256: 'h2' },
        strategyState: { json: '{"strategy":"fedavg","round":2}', tensorBytes: new Uint8Array([6]) },
      }),
    );
    // Assert
    const first = store.getCheckpoint('t1', 1)!;
    expect([...first.bytes]).toEqual([9, 8, 7, 6]);
    expect(first.strategyState).toBeNull();
    const latest = store.latestCheckpoint('t1')!;
    expect(latest.serverRound).toBe(2);
    expect(latest.strategyState?.json).toBe('{"strategy":"fedavg","round":2}');
    expect([...latest.strategyState!.tensorBytes]).toEqual([6]);
    store.close();
  });

  it('refuses to complete a round that is not open and writes nothing', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 'r1', selected: ['c1'], startedAt: 150 });
    store.retryRound('t1', 1, 1, 160, 'too few updates');
    // Act
    let caught: unknown;
    try {
      store.completeRound(completion());
    } catch (err) {
      caught = err;
    }
    // Assert
    expect(isCoordinatorError(caught, 'STORE_CONFLICT')).toBe(true);
    expect(store.latestCheckpoint('t1')?.serverRound).toBe(0);
    expect(store.listMetrics('t1')).toEqual([]);
    expect(store.listTrust('t1')).toEqual([]);
    expect(store.listRounds('t1')[0]?.status).toBe('retry');
    store.close();
  });

  it('refuses a second completion of the same round', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 'r1', selected: ['c1'], startedAt: 150 });
    store.completeRound(completion());
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 2, roundId: 'r1b', selected: ['c1'], startedAt: 250 });
    // Act / Assert
    expect(() => store.completeRound(completion({ attempt: 2 }))).toThrow(/already complete/);
    expect(store.listRounds('t1').map((r) => r.status)).toEqual(['completed', 'open']);
    store.close();
  });

  it('marks rounds left open by a crash as retried', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 'r1', selected: ['c1'], startedAt: 150 });
    // Act
    const n = store.abandonOpenRounds('t1', 300);
    // Assert
    expect(n).toBe(1);
    expect(store.listRounds('t1')[0]).toMatchObject({ status: 'retry', endedAt: 300, reason: 'coordinator restarted' });
    store.close();
  });

  it('stores pseudonymous clients and update verdicts', () => {
    // Arrange
    const store = make();
    seedTask(store);
    // Act
    store.createClient({ clientId: 'c1', taskId: 't1', secretHash: 'ff', capabilitiesJson: null, createdAt: 1, lastSeenAt: 1 });
    store.touchClient('c1', 5, '{"backend":"cpu"}');
    store.touchClient('c1', 6, null);
    store.recordUpdates([
      {
        taskId: 't1',
        serverRound: 1,
        attempt: 1,
        clientId: 'c1',
        status: 'rejected',
        code: 'UPDATE_NORM',
        message: 'too big',
        numExamples: 3,
        byteLength: 40,
        receivedAt: 7,
      },
    ]);
    // Assert
    expect(store.getClient('c1')).toEqual({
      clientId: 'c1',
      taskId: 't1',
      secretHash: 'ff',
      capabilitiesJson: '{"backend":"cpu"}',
      createdAt: 1,
      lastSeenAt: 6,
    });
    expect(() => store.createClient({ clientId: 'c1', taskId: 't1', secretHash: 'ee', capabilitiesJson: null, createdAt: 2, lastSeenAt: 2 })).toThrow(/exists/);
    expect(store.listUpdates('t1', 1)).toEqual([
      {
        taskId: 't1',
        serverRound: 1,
        attempt: 1,
        clientId: 'c1',
        status: 'rejected',
        code: 'UPDATE_NORM',
        message: 'too big',
        numExamples: 3,
        byteLength: 40,
        receivedAt: 7,
      },
    ]);
    expect(store.listUpdates('t1', 2)).toEqual([]);
    store.close();
  });

  it('upserting a known task keeps its status and creation time', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.setTaskStatus('t1', 'running', 120);
    // Act
    const t = store.upsertTask({ taskId: 't1', configJson: '{"id":"t1","v":2}', joinTokenHash: 'bb', createdAt: 500 });
    // Assert
    expect(t).toEqual({ taskId: 't1', configJson: '{"id":"t1","v":2}', joinTokenHash: 'bb', status: 'running', run: 1, createdAt: 100, updatedAt: 500 });
    store.close();
  });
});

describe.each(implementations)('%s (runs)', (_name, make) => {
  /** Task t1 with two committed rounds, the second its last (status 'finished' at 300), and an upload record. */
  function finishedRun(store: CoordinatorStore): void {
    seedTask(store);
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 't1.r1.a1', selected: ['c1'], startedAt: 150 });
    store.completeRound(completion());
    store.startRound({ taskId: 't1', serverRound: 2, attempt: 1, roundId: 't1.r2.a1', selected: ['c1'], startedAt: 250 });
    store.completeRound(
      completion({
        serverRound: 2,
        endedAt: 300,
        checkpoint: { bytes: new Uint8Array([2]), sha256: 'h2' },
        metrics: { accuracy: 0.8 },
        taskStatus: 'finished',
      }),
    );
    store.recordUpdates([
      {
        taskId: 't1',
        serverRound: 2,
        attempt: 1,
        clientId: 'c1',
        status: 'accepted',
        code: null,
        message: null,
        numExamples: 3,
        byteLength: 10,
        receivedAt: 260,
      },
    ]);
  }

  it('begins the next run of a finished task: empty and waiting, while the past run keeps its rounds, metrics, trust, uploads and final model', () => {
    // Arrange
    const store = make();
    finishedRun(store);
    // Act
    const run = store.beginRun('t1', 400);
    // Assert: the current run is empty.
    expect(run).toBe(2);
    expect(store.getTask('t1')).toMatchObject({ status: 'waiting', run: 2, updatedAt: 400 });
    expect(store.latestCheckpoint('t1')).toBeUndefined();
    expect(store.listRounds('t1')).toEqual([]);
    expect(store.listMetrics('t1')).toEqual([]);
    expect(store.listTrust('t1')).toEqual([]);
    expect(store.listUpdates('t1')).toEqual([]);
    // The past run reads back whole, its intermediate checkpoints dropped and its final model kept.
    expect(store.listRounds('t1', 1).map((r) => [r.serverRound, r.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
    ]);
    expect(store.listMetrics('t1', 1).map((m) => m.metrics)).toEqual([{ numAccepted: 2, aggregationMs: 1.5 }, { accuracy: 0.8 }]);
    expect(store.listTrust('t1', 1)).toHaveLength(4);
    expect(store.listUpdates('t1', 2, 1).map((u) => u.clientId)).toEqual(['c1']);
    expect(store.latestCheckpoint('t1', 1)).toMatchObject({ serverRound: 2, sha256: 'h2' });
    expect(store.getCheckpoint('t1', 0, 1)).toBeUndefined();
    expect(store.getCheckpoint('t1', 1, 1)).toBeUndefined();
    expect(store.listRuns('t1')).toEqual([
      { taskId: 't1', run: 1, status: 'finished', startedAt: 100, endedAt: 300, completedRounds: 2, globalHash: 'h2', finalMetrics: { accuracy: 0.8 } },
      { taskId: 't1', run: 2, status: 'waiting', startedAt: 400, endedAt: null, completedRounds: 0, globalHash: null, finalMetrics: null },
    ]);
    store.close();
  });

  it("writes the new run's rounds beside the old run's (same round numbers), and a record for a past run where it belongs", async () => {
    // Arrange
    const store = make();
    finishedRun(store);
    store.beginRun('t1', 400);
    // Act
    store.saveInitialCheckpoint({ taskId: 't1', bytes: new Uint8Array([1, 2, 3]), sha256: 'h0', strategyState: null, createdAt: 400 });
    store.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 't1:run2.r1.a1', selected: ['c1'], startedAt: 450 });
    store.completeRound(completion({ endedAt: 500, checkpoint: { bytes: new Uint8Array([7]), sha256: 'h1b' } }));
    store.recordUpdates([
      {
        taskId: 't1',
        run: 1,
        serverRound: 2,
        attempt: 1,
        clientId: 'late',
        status: 'accepted',
        code: null,
        message: null,
        numExamples: 1,
        byteLength: 1,
        receivedAt: 401,
      },
      {
        taskId: 't1',
        serverRound: 1,
        attempt: 1,
        clientId: 'c2',
        status: 'accepted',
        code: null,
        message: null,
        numExamples: 1,
        byteLength: 1,
        receivedAt: 460,
      },
    ]);
    // Assert
    expect(store.latestCheckpoint('t1')).toMatchObject({ serverRound: 1, sha256: 'h1b' });
    expect(store.listRounds('t1').map((r) => r.roundId)).toEqual(['t1:run2.r1.a1']);
    expect(store.listUpdates('t1').map((u) => u.clientId)).toEqual(['c2']);
    expect(store.listUpdates('t1', undefined, 1).map((u) => u.clientId)).toEqual(['c1', 'late']);
    // The history reads (a cluster's from Redis) agree, each record in its own run.
    expect((await readUpdates(store, 't1')).map((u) => u.clientId)).toEqual(['c2']);
    expect(await readUpdates(store, 't1', undefined, 1)).toEqual(store.listUpdates('t1', undefined, 1));
    expect((await readUpdates(store, 't1', 2, 1)).map((u) => u.clientId)).toEqual(['c1', 'late']);
    expect(await readTrust(store, 't1', 1)).toEqual(store.listTrust('t1', 1));
    expect(await readTrust(store, 't1')).toEqual(store.listTrust('t1'));
    for (const run of [1, 2, undefined]) {
      expect(await readRounds(store, 't1', run)).toEqual(store.listRounds('t1', run));
      expect(await readMetrics(store, 't1', run)).toEqual(store.listMetrics('t1', run));
    }
    expect(store.listRuns('t1').map((r) => [r.run, r.status, r.completedRounds, r.globalHash])).toEqual([
      [1, 'finished', 2, 'h2'],
      [2, 'running', 1, 'h1b'],
    ]);
    store.close();
  });

  it('refuses to begin a run while the current one is not finished, changing nothing', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.setTaskStatus('t1', 'stopped', 150);
    // Act
    const attempt = (): number => store.beginRun('t1', 200);
    // Assert
    expect(attempt).toThrow(/STORE_CONFLICT/);
    expect(() => store.beginRun('nope', 200)).toThrow(/TASK_UNKNOWN/);
    expect(store.getTask('t1')).toMatchObject({ status: 'stopped', run: 1 });
    expect(store.listRuns('t1')).toEqual([
      { taskId: 't1', run: 1, status: 'stopped', startedAt: 100, endedAt: 150, completedRounds: 0, globalHash: 'h0', finalMetrics: null },
    ]);
    store.close();
  });
});

describe('a replica that keeps the latest rounds of records', () => {
  const upload = (serverRound: number, clientId: string): UpdateRecord => ({
    taskId: 't1',
    serverRound,
    attempt: 1,
    clientId,
    status: 'accepted',
    code: null,
    message: null,
    numExamples: serverRound,
    byteLength: 8,
    receivedAt: 100 + serverRound,
  });
  /** Three committed rounds of t1, two uploads and two trust scores each, written by `store` as the task's leader. */
  async function threeRounds(prefix: string, store: ReplicatedStore): Promise<void> {
    const admin = new Redis(redis.url);
    await admin.set(`${prefix}lease:t1`, 'leader:1');
    admin.disconnect();
    store.setFence('t1', 'leader:1');
    seedTask(store);
    for (const r of [1, 2, 3]) {
      store.startRound({ taskId: 't1', serverRound: r, attempt: 1, roundId: `r${r}`, selected: ['c1', 'c2'], startedAt: 100 * r });
      store.recordUpdates([upload(r, 'c1'), upload(r, 'c2')]);
      store.completeRound(completion({ serverRound: r, endedAt: 100 * r + 50, checkpoint: { bytes: new Uint8Array([r]), sha256: `h${r}` } }));
    }
    await store.flush();
  }

  it('keeps only the latest rounds in memory while Redis keeps every record, as an unbounded replica holds them', async () => {
    // Arrange
    const leader = await openReplicated('keep1:', 'leader', 1);
    const everything = await openReplicated('keep1:', 'all');
    // Act
    await threeRounds('keep1:', leader);
    await everything.sync();
    // Assert: the bounded replica lists round 3 alone; its history and the unbounded replica list all three.
    expect(leader.listUpdates('t1').map((u) => u.serverRound)).toEqual([3, 3]);
    expect(leader.listTrust('t1').map((t) => t.serverRound)).toEqual([3, 3]);
    expect(everything.listUpdates('t1').map((u) => u.serverRound)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(await readUpdates(leader, 't1')).toEqual(everything.listUpdates('t1'));
    expect(await readUpdates(leader, 't1', 2)).toEqual(everything.listUpdates('t1', 2));
    expect(await readTrust(leader, 't1')).toEqual(everything.listTrust('t1'));
    expect(leader.listRounds('t1').map((r) => r.serverRound)).toEqual([3]);
    expect(leader.listMetrics('t1').map((m) => m.serverRound)).toEqual([3]);
    expect(everything.listRounds('t1').map((r) => r.serverRound)).toEqual([1, 2, 3]);
    expect(await readRounds(leader, 't1')).toEqual(everything.listRounds('t1'));
    expect(await readMetrics(leader, 't1')).toEqual(everything.listMetrics('t1'));
    // A retried attempt is archived when it closes; an open one is read from the replica until then, and archived as abandoned.
    leader.startRound({ taskId: 't1', serverRound: 4, attempt: 1, roundId: 'r4a1', selected: ['c1'], startedAt: 400 });
    leader.retryRound('t1', 4, 1, 410, 'deadline passed');
    leader.startRound({ taskId: 't1', serverRound: 4, attempt: 2, roundId: 'r4a2', selected: ['c2'], startedAt: 420 });
    await leader.flush();
    await everything.sync();
    expect(leader.listRounds('t1').map((r) => [r.serverRound, r.attempt, r.status])).toEqual([
      [3, 1, 'completed'],
      [4, 1, 'retry'],
      [4, 2, 'open'],
    ]);
    expect(await readRounds(leader, 't1')).toEqual(everything.listRounds('t1'));
    leader.abandonOpenRounds('t1', 430);
    await leader.flush();
    await everything.sync();
    expect((await readRounds(leader, 't1')).at(-1)).toMatchObject({ serverRound: 4, attempt: 2, status: 'retry', reason: ABANDONED_REASON });
    expect(await readRounds(leader, 't1')).toEqual(everything.listRounds('t1'));
  });

  it("archives a deposed leader's refused write nowhere, and compacts to what the bounded replica holds while the history stays whole", async () => {
    // Arrange
    const leader = await openReplicated('keep2:', 'leader', 2);
    await threeRounds('keep2:', leader);
    const admin = new Redis(redis.url);
    await admin.set('keep2:lease:t1', 'other:2');
    // Act: a late write of the deposed leader, then a compaction of the whole log by a bounded node.
    leader.recordUpdates([upload(4, 'late')]);
    await expect(leader.flush()).rejects.toThrow(/FENCED/);
    const compactor = await openReplicated('keep2:', 'compactor', 2);
    expect(await compactor.compact(compactor.position)).not.toBeNull();
    expect(await admin.xlen('keep2:log')).toBe(0);
    admin.disconnect();
    // Assert: a node started from the snapshot holds rounds 2 and 3; the history holds rounds 1–3, without the refused write.
    const fresh = await openReplicated('keep2:', 'fresh');
    expect(fresh.listUpdates('t1').map((u) => u.serverRound)).toEqual([2, 2, 3, 3]);
    expect((await readUpdates(fresh, 't1')).map((u) => [u.serverRound, u.clientId])).toEqual([
      [1, 'c1'],
      [1, 'c2'],
      [2, 'c1'],
      [2, 'c2'],
      [3, 'c1'],
      [3, 'c2'],
    ]);
    expect((await readTrust(fresh, 't1')).map((t) => t.serverRound)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(fresh.listRounds('t1').map((r) => r.serverRound)).toEqual([2, 3]);
    expect((await readRounds(fresh, 't1')).map((r) => [r.serverRound, r.status, r.selected])).toEqual([
      [1, 'completed', ['c1', 'c2']],
      [2, 'completed', ['c1', 'c2']],
      [3, 'completed', ['c1', 'c2']],
    ]);
    expect((await readMetrics(fresh, 't1')).map((m) => m.serverRound)).toEqual([1, 2, 3]);
  });

  it('refuses a bound that is not a positive number of rounds (CONFIG_INVALID)', async () => {
    await expect(openReplicated('keep3:', 'x', 0)).rejects.toThrow(/CONFIG_INVALID/);
    await expect(openReplicated('keep3:', 'x', 1.5)).rejects.toThrow(/CONFIG_INVALID/);
  });
});

describe('strategy state in the cluster log', () => {
  const global = [tensor('image/w', [2], new Float32Array([0, 0]))];
  /** Probation over FedAvg (P = 5) that has counted `seen` identities, `<prefix>0` …, once. */
  function probationWith(seen: number, prefix = 'p'): Probation {
    const probation = new Probation(new FedAvg(), 5);
    probation.aggregateFit(
      1,
      global,
      Array.from({ length: seen }, (_, i) => ({ clientId: `${prefix}${i}`, numExamples: 1, delta: global })),
      [],
    );
    return probation;
  }
  /** Fifty clients of round `r` (ten new each round), fed to `probation`; returns the state the engine would store. */
  function probationRound(probation: Probation, r: number) {
    const results = Array.from({ length: 50 }, (_, i) => ({ clientId: `c${10 * r + i}`, numExamples: 1, delta: global }));
    probation.aggregateFit(r + 1, global, results, []);
    return encodeStrategyState('t1', r, probation.exportState());
  }
  /** `store`, the lease holder of t1 under `value`, commits round `r` with `strategyState`, and waits for it to be logged. */
  async function commit(store: ReplicatedStore, r: number, strategyState: RoundCompletion['strategyState']): Promise<void> {
    store.startRound({ taskId: 't1', serverRound: r, attempt: 1, roundId: `r${r}`, selected: ['c1'], startedAt: 100 * r });
    store.completeRound(completion({ serverRound: r, endedAt: 100 * r + 50, checkpoint: { bytes: new Uint8Array([r]), sha256: `h${r}` }, strategyState }));
    await store.flush();
  }
  async function leaderOf(prefix: string, value: string, store: ReplicatedStore): Promise<void> {
    const admin = new Redis(redis.url);
    await admin.set(`${prefix}lease:t1`, value);
    admin.disconnect();
    store.setFence('t1', value);
  }
  async function loggedCompletions(prefix: string): Promise<{ args: unknown[]; bytes: number }[]> {
    const admin = new Redis(redis.url);
    const page = await admin.xrange(`${prefix}log`, '-', '+');
    admin.disconnect();
    return page
      .map(([, fields]) => decodeEntry(fields[1]!))
      .filter((e) => e.method === 'completeRound')
      .map((e) => ({ args: [...e.args], bytes: encodeEntry(e).length }));
  }

  it("logs each round's state as a patch of the one before, which every replica rebuilds to the leader's text, through replays and compaction", async () => {
    // Arrange
    const leader = await openReplicated('state1:', 'leader');
    const follower = await openReplicated('state1:', 'follower');
    await leaderOf('state1:', 'leader:1', leader);
    seedTask(leader);
    const probation = probationWith(500);
    // Act: five rounds of fifty clients over the 500 identities seen before, each adding ten.
    const states = [];
    for (const r of [1, 2, 3, 4, 5]) {
      states.push(probationRound(probation, r));
      await commit(leader, r, states.at(-1)!);
    }
    await follower.sync();
    // Assert: the first state went whole, the others as patches, each entry far smaller than its state.
    const logged = await loggedCompletions('state1:');
    expect(logged.map((e) => e.args.length)).toEqual([1, 2, 2, 2, 2]);
    expect(logged[4]!.bytes).toBeLessThan(states[4]!.json.length / 2);
    expect(follower.latestCheckpoint('t1')?.strategyState).toEqual(states[4]);
    const reread = new Probation(new FedAvg(), 5);
    reread.importState(decodeStrategyState(follower.latestCheckpoint('t1')!.strategyState!));
    expect(reread.contributions()).toEqual(probation.contributions());
    // A node replayed from a compacted log rebuilds a state patched after the snapshot too.
    expect(await follower.compact(follower.position)).not.toBeNull();
    states.push(probationRound(probation, 6));
    await commit(leader, 6, states.at(-1)!);
    const restored = await openReplicated('state1:', 'restored');
    expect(restored.latestCheckpoint('t1')?.strategyState).toEqual(states[5]);
    // A new term logs its first state whole.
    await leaderOf('state1:', 'leader:2', leader);
    await commit(leader, 7, probationRound(probation, 7));
    expect((await loggedCompletions('state1:')).map((e) => e.args.length)).toEqual([2, 1]);
  });

  it(`logs the state whole every ${WHOLE_STATE_EVERY} rounds, and whenever a patch would be no smaller`, async () => {
    // Arrange
    const leader = await openReplicated('state2:', 'leader');
    await leaderOf('state2:', 'leader:1', leader);
    seedTask(leader);
    const probation = probationWith(500);
    // Act: rounds up to one past the whole state's, then a state whose every count changed.
    for (let r = 1; r <= WHOLE_STATE_EVERY + 1; r++) await commit(leader, r, probationRound(probation, r));
    await commit(leader, WHOLE_STATE_EVERY + 2, encodeStrategyState('t1', 0, probationWith(500, 'q').exportState()));
    // Assert
    const logged = (await loggedCompletions('state2:')).map((e) => e.args.length);
    expect(logged.slice(0, 2)).toEqual([1, 2]);
    expect(logged.slice(-4)).toEqual([2, 1, 2, 1]);
  });

  it('patches only a state whose append is confirmed: a round committed while the one before is still on its way goes whole', async () => {
    // Arrange
    const leader = await openReplicated('state4:', 'leader');
    await leaderOf('state4:', 'leader:1', leader);
    seedTask(leader);
    const probation = probationWith(500);
    await commit(leader, 1, probationRound(probation, 1));
    // Act: round 3 is committed before round 2's append has been confirmed; round 4 after round 3's.
    const commitUnflushed = (r: number): void => {
      leader.startRound({ taskId: 't1', serverRound: r, attempt: 1, roundId: `r${r}`, selected: ['c1'], startedAt: 100 * r });
      leader.completeRound(
        completion({
          serverRound: r,
          endedAt: 100 * r + 50,
          checkpoint: { bytes: new Uint8Array([r]), sha256: `h${r}` },
          strategyState: probationRound(probation, r),
        }),
      );
    };
    commitUnflushed(2);
    commitUnflushed(3);
    await leader.flush();
    const round4 = probationRound(probation, 4);
    await commit(leader, 4, round4);
    // Assert
    expect((await loggedCompletions('state4:')).map((e) => [(e.args[0] as RoundCompletion).serverRound, e.args.length])).toEqual([
      [1, 1],
      [2, 2],
      [3, 1],
      [4, 2],
    ]);
    expect((await openReplicated('state4:', 'fresh')).latestCheckpoint('t1')?.strategyState).toEqual(round4);
  });

  it('keeps a round whose state a replica cannot rebuild without the state, and says so (CLUSTER_STATE_PATCH)', async () => {
    // Arrange: round 1 logged by its leader, then an entry for round 2 whose patch names a state no replica holds.
    const leader = await openReplicated('state3:', 'leader');
    await leaderOf('state3:', 'leader:1', leader);
    seedTask(leader);
    await commit(leader, 1, probationRound(new Probation(new FedAvg(), 5), 1));
    leader.startRound({ taskId: 't1', serverRound: 2, attempt: 1, roundId: 'r2', selected: ['c1'], startedAt: 200 });
    await leader.flush();
    const bad = { base: 9, patch: { keys: {} }, sha256: '0', tensorBytes: new Uint8Array([1]) };
    const admin = new Redis(redis.url);
    await admin.xadd(
      'state3:log',
      '*',
      'e',
      encodeEntry({ node: 'other', method: 'completeRound', args: [completion({ serverRound: 2, endedAt: 250, strategyState: null }), bad] }),
    );
    admin.disconnect();
    const errors: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line)) });
    // Act
    const replica = await openReplicated('state3:', 'replica', undefined, logger);
    // Assert
    expect(replica.listRounds('t1').map((r) => [r.serverRound, r.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
    ]);
    expect(replica.latestCheckpoint('t1')).toMatchObject({ serverRound: 2, strategyState: null });
    expect(errors).toEqual([expect.objectContaining({ code: 'CLUSTER_STATE_PATCH', round: 2 })]);
  });
});

describe('SqliteStore runs', () => {
  it('keeps past and current runs across reopening the file', () => {
    // Arrange
    const path = tempFile();
    const first = new SqliteStore({ path });
    seedTask(first);
    first.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 't1.r1.a1', selected: ['c1'], startedAt: 150 });
    first.completeRound(completion({ taskStatus: 'finished' }));
    first.beginRun('t1', 400);
    first.saveInitialCheckpoint({ taskId: 't1', bytes: new Uint8Array([1, 2, 3]), sha256: 'h0', strategyState: null, createdAt: 400 });
    first.close();
    // Act
    const second = new SqliteStore({ path });
    // Assert
    expect(second.getTask('t1')).toMatchObject({ run: 2, status: 'waiting' });
    expect(second.latestCheckpoint('t1')).toMatchObject({ serverRound: 0, sha256: 'h0' });
    expect(second.listMetrics('t1', 1).map((m) => m.serverRound)).toEqual([1]);
    expect(second.listRuns('t1').map((r) => [r.run, r.status, r.endedAt])).toEqual([
      [1, 'finished', 200],
      [2, 'waiting', null],
    ]);
    second.close();
  });
});

describe.each(implementations)('%s (invitations)', (_name, make) => {
  it('admits at most quota identities per invitation, refuses revoked or unknown ones, and stores nothing on refusal', () => {
    // Arrange
    const store = make();
    seedTask(store);
    store.createInvitation({ invitationId: 'inv-1', taskId: 't1', tokenHash: 'th1', quota: 2, label: null, createdAt: 100 });
    const client = (id: string, invitationId: string | null) => ({
      clientId: id,
      taskId: 't1',
      secretHash: 'sh',
      capabilitiesJson: null,
      createdAt: 1,
      lastSeenAt: 1,
      invitationId,
    });
    const codeOf = (fn: () => void): string => {
      try {
        fn();
        return 'ok';
      } catch (err) {
        return isCoordinatorError(err) ? err.code : 'other';
      }
    };
    // Act
    const codes = [
      codeOf(() => store.createClient(client('c1', 'inv-1'))),
      codeOf(() => store.createClient(client('c2', 'inv-1'))),
      codeOf(() => store.createClient(client('c3', 'inv-1'))),
      codeOf(() => store.createClient(client('c4', 'inv-unknown'))),
      codeOf(() => store.createInvitation({ invitationId: 'inv-2', taskId: 't1', tokenHash: 'th1', quota: 1, label: null, createdAt: 1 })),
    ];
    store.createInvitation({ invitationId: 'inv-3', taskId: 't1', tokenHash: 'th3', quota: 5, label: 'lab', createdAt: 101 });
    const revoked = [store.revokeInvitation('t1', 'inv-3', 150), store.revokeInvitation('t1', 'inv-3', 160), store.revokeInvitation('t1', 'nope', 1)];
    const afterRevoke = codeOf(() => store.createClient(client('c5', 'inv-3')));
    // Assert
    expect(codes).toEqual(['ok', 'ok', 'INVITATION_EXHAUSTED', 'INVITATION_UNKNOWN', 'STORE_CONFLICT']);
    expect(revoked).toEqual([true, true, false]);
    expect(afterRevoke).toBe('INVITATION_REVOKED');
    expect(store.getInvitation('inv-1')?.used).toBe(2);
    expect(store.getInvitation('inv-3')).toMatchObject({ used: 0, revokedAt: 150, label: 'lab' });
    expect(store.findInvitation('t1', 'th3')?.invitationId).toBe('inv-3');
    expect(store.listInvitations('t1').map((i) => i.invitationId)).toEqual(['inv-1', 'inv-3']);
    expect(store.listClients('t1').map((c) => [c.clientId, c.invitationId])).toEqual([
      ['c1', 'inv-1'],
      ['c2', 'inv-1'],
    ]);
  });
});

describe('SqliteStore', () => {
  it('survives reopening the file with byte-identical checkpoints', () => {
    // Arrange
    const path = tempFile();
    const first = new SqliteStore({ path });
    seedTask(first);
    first.startRound({ taskId: 't1', serverRound: 1, attempt: 1, roundId: 'r1', selected: ['c1'], startedAt: 150 });
    first.completeRound(completion());
    first.close();
    // Act
    const second = new SqliteStore({ path });
    // Assert
    const c = second.latestCheckpoint('t1')!;
    expect(c.serverRound).toBe(1);
    expect(c.bytes).toBeInstanceOf(Uint8Array);
    expect([...c.bytes]).toEqual([9, 8, 7, 6]);
    second.close();
  });

  it('refuses a database written by a newer schema', async () => {
    // Arrange
    const path = tempFile();
    new SqliteStore({ path }).close();
    const { default: Database } = await import('better-sqlite3');
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    // Act / Assert
    expect(() => new SqliteStore({ path })).toThrow(/STORE_SCHEMA/);
  });
});
