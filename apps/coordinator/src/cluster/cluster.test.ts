/**
 * Several coordinator nodes on one real Redis (redis-server on loopback): the same task served by
 * every node, clients spread across them, one leader. Nodes run in this process here (the crash
 * tests with real processes are in clusterFaults.test.ts).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultInitialGlobal } from '../server.js';
import { ADMIN_TOKEN, JOIN_TOKEN, ScriptedClient, clusterTask, replayOnSingleNode, startNode, until } from '../testing/clusterFixture.js';
import { FakeClient } from '../testing/fakeClient.js';
import { useRedisServer } from '../testing/redisServer.js';
import { ReplicatedStore, decodeEntry, encodeEntry } from './replicatedStore.js';
import { ACQUIRE_SCRIPT, TaskLease } from './lease.js';
import { connectCluster } from './cluster.js';
import type { Parameters } from '@chorus/fl-core';
import type { ProbeOutcome, TaskEvaluator } from '../model/taskEvaluator.js';
import type { TaskConfig } from '@chorus/protocol';
import { readTrust } from '../store/history.js';
import type { UpdateRecord } from '../store/types.js';

const silent = pino({ level: 'silent' });
const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });

async function connection(): Promise<Redis> {
  const r = new Redis(server().url, { maxRetriesPerRequest: null });
  cleanup.push(() => r.disconnect());
  return r;
}

async function openStore(nodeId: string, onFenced?: (taskId: string) => void): Promise<ReplicatedStore> {
  const store = await ReplicatedStore.open({
    redis: await connection(),
    reader: await connection(),
    nodeId,
    logger: silent,
    ...(onFenced ? { onFenced } : {}),
  });
  cleanup.push(() => store.close());
  return store;
}

const TASK = { taskId: 't', configJson: '{}', joinTokenHash: 'h', createdAt: 1 };

/**
 * Another node trying to take lease `t` every 50 ms, from a thread of its own (so it goes on while
 * this thread's event loop is blocked); resolves to the lease value it took, if it took one.
 */
function competitor(url: string): { stop: () => Promise<string | null> } {
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    const ioredis = require(workerData.ioredis);
    const redis = new (ioredis.default || ioredis)(workerData.url);
    let took = null;
    const timer = setInterval(() => {
      if (took === null) redis.eval(workerData.acquire, 2, 'chorus:lease:t', 'chorus:fence:t', 'b', 300).then(([got, value]) => { if (got === 1) took = value; });
    }, 50);
    parentPort.on('message', () => { clearInterval(timer); redis.quit().finally(() => parentPort.postMessage(took)); });
    `,
    { eval: true, workerData: { ioredis: createRequire(import.meta.url).resolve('ioredis'), url, acquire: ACQUIRE_SCRIPT } },
  );
  return {
    stop: async () => {
      const took = new Promise<string | null>((resolve) => worker.once('message', resolve));
      worker.postMessage('stop');
      const value = await took;
      await worker.terminate();
      return value;
    },
  };
}

function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // A blocked event loop: no timer, no socket read.
  }
}

describe('the replicated store', () => {
  it('round-trips entries with their bytes, and refuses an entry that is not a known write', () => {
    const bytes = new Uint8Array([0, 1, 254, 255]);
    const back = decodeEntry(encodeEntry({ node: 'a', method: 'saveInitialCheckpoint', args: [{ bytes }] }));
    expect((back.args[0] as { bytes: Uint8Array }).bytes).toEqual(bytes);
    expect(() => decodeEntry(JSON.stringify({ node: 'a', method: 'close', args: [] }))).toThrow('not a log entry');
    expect(() => decodeEntry('{')).toThrow();
  });

  it("shows one node's writes to another, and replays the whole log into a node that starts later", async () => {
    const a = await openStore('a');
    const b = await openStore('b');
    a.upsertTask(TASK);
    a.createClient({ clientId: 'c1', taskId: 't', secretHash: 's', capabilitiesJson: null, createdAt: 1, lastSeenAt: 1 });
    await a.flush();
    await b.sync();
    expect(b.getClient('c1')?.secretHash).toBe('s');
    const late = await openStore('late');
    expect(late.getTask('t')?.taskId).toBe('t');
    expect(late.listClients('t').map((c) => c.clientId)).toEqual(['c1']);
    // The follower reads without being asked, too.
    b.createClient({ clientId: 'c2', taskId: 't', secretHash: 's2', capabilitiesJson: null, createdAt: 2, lastSeenAt: 2 });
    await until('the follower to apply c2', () => a.getClient('c2') !== undefined);
  });

  it("refuses a leader's write without the lease (NOT_LEADER), and a deposed leader's late commit (FENCED), which the rebuilt replica drops", async () => {
    const r = await connection();
    const fenced: string[] = [];
    const a = await openStore('a', (taskId) => fenced.push(taskId));
    a.upsertTask(TASK);
    expect(() => a.setTaskStatus('t', 'running', 2)).toThrow(/NOT_LEADER/);
    // a holds the lease, writes, then loses it to b while a write is on its way.
    await r.set('chorus:lease:t', 'a:1');
    a.setFence('t', 'a:1');
    a.setTaskStatus('t', 'running', 2);
    await a.flush();
    await r.set('chorus:lease:t', 'b:2');
    a.setTaskStatus('t', 'paused', 3);
    expect(a.getTask('t')?.status).toBe('paused');
    await expect(a.flush()).rejects.toThrow(/FENCED/);
    expect(fenced).toEqual(['t']);
    // Its fence is gone: the next write is refused before it is applied.
    expect(() => a.setTaskStatus('t', 'stopped', 4)).toThrow(/NOT_LEADER/);
    const b = await openStore('b');
    expect(b.getTask('t')?.status).toBe('running');
    await a.rebuild();
    expect(a.getTask('t')?.status).toBe('running');
  });
});

describe('compacting the log', () => {
  const client = (clientId: string, at: number) => ({ clientId, taskId: 't', secretHash: clientId, capabilitiesJson: null, createdAt: at, lastSeenAt: at });

  it('replays a node the compaction overtook from the snapshot, and never goes back to an older snapshot', async () => {
    const r = await connection();
    const a = await openStore('a');
    const b = await openStore('b');
    a.upsertTask(TASK);
    a.createClient(client('c1', 1));
    await a.flush();
    await b.sync();
    // b stops reading (a node away) while a writes on and compacts everything it wrote.
    b.close();
    const away = b.position;
    for (let i = 2; i <= 5; i++) a.createClient(client(`c${i}`, i));
    await a.flush();
    await a.sync();
    const done = await a.compact(a.position);
    expect(done).toMatchObject({ lastId: a.position, trimmed: 6 });
    expect(await r.xlen('chorus:log')).toBe(0);
    expect(await r.get('chorus:snapshot:id')).toBe(a.position);
    // Reading on from where it was would find nothing after `away`: b replays from the snapshot instead.
    await b.sync();
    expect(b.position).not.toBe(away);
    expect(
      b
        .listClients('t')
        .map((c) => c.clientId)
        .sort(),
    ).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    // A compaction up to an older entry changes nothing.
    expect(await a.compact(away)).toBeNull();
    expect(await r.get('chorus:snapshot:id')).toBe(a.position);
    // Writes after the snapshot reach a node that starts later through the log.
    a.createClient(client('c6', 6));
    await a.flush();
    const late = await openStore('late');
    expect(
      late
        .listClients('t')
        .map((c) => c.clientId)
        .sort(),
    ).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    expect(await r.xlen('chorus:log')).toBe(1);
  });

  it('replays a following node from the snapshot when its reader comes back after a compaction', async () => {
    const reader = await connection();
    const a = await openStore('a');
    const b = await ReplicatedStore.open({ redis: await connection(), reader, nodeId: 'b', logger: silent });
    cleanup.push(() => b.close());
    a.upsertTask(TASK);
    a.createClient(client('c1', 1));
    await until('b to follow c1', () => b.getClient('c1') !== undefined);
    // b's reader loses Redis while a writes on and compacts; one more write lands after the snapshot.
    reader.disconnect();
    for (let i = 2; i <= 5; i++) a.createClient(client(`c${i}`, i));
    await a.flush();
    await a.sync();
    expect(await a.compact(a.position)).not.toBeNull();
    a.createClient(client('c6', 6));
    await a.flush();
    await reader.connect();
    await until('b to hold every client', () => b.listClients('t').length === 6);
    expect(b.getClient('c3')?.secretHash).toBe('c3');
  });

  it('refuses a snapshot it cannot read (STORE_SCHEMA) and writes nothing', async () => {
    const r = await connection();
    for (const bad of ['{', '{"state":{"version":1}}', '{"lastId":"5-0","state":{"version":2}}', '{"lastId":"5-0","state":{"version":1,"tasks":[{}]}}']) {
      await r.set('chorus:snapshot', bad);
      await expect(openStore('x')).rejects.toMatchObject({ code: 'STORE_SCHEMA' });
    }
    expect(await r.exists('chorus:log')).toBe(0);
  });

  it('compacts on its own past compactEntries, never past what a live node has applied', { timeout: 30_000 }, async () => {
    const r = await connection();
    const a = await connectCluster({ url: server().url, nodeId: 'a', logger: silent, compactEntries: 5, compactCheckMs: 100 });
    cleanup.push(() => a.close());
    const b = await connectCluster({ url: server().url, nodeId: 'b', logger: silent, compactEntries: 0 });
    cleanup.push(() => b.close());
    a.store.upsertTask(TASK);
    a.store.createClient(client('c1', 1));
    await a.store.flush();
    await b.store.sync();
    // b stops applying the log but stays alive (it goes on announcing itself, with its position).
    b.store.close();
    const held = b.store.position;
    await until('b to announce its position', async () => JSON.parse((await r.hget('chorus:nodes', 'b')) ?? '{}').applied === held);
    for (let i = 2; i <= 12; i++) a.store.createClient(client(`c${i}`, i));
    await a.store.flush();
    await until('a compaction', async () => (await r.get('chorus:snapshot:id')) !== null);
    expect(await r.get('chorus:snapshot:id')).toBe(held);
    expect(await r.xlen('chorus:log')).toBe(11);
    expect(await a.log()).toEqual({ entries: 11, snapshotId: held, applied: a.store.position });
    // Once b has read on, the next compaction takes the rest.
    await b.store.sync();
    await until('b to announce its new position', async () => JSON.parse((await r.hget('chorus:nodes', 'b')) ?? '{}').applied === b.store.position);
    await until('the second compaction', async () => (await r.xlen('chorus:log')) === 0);
    const late = await openStore('late');
    expect(late.listClients('t')).toHaveLength(12);
  });
});

describe('a leader whose lease lapsed', () => {
  it('keeps its term when no other node took the lease meanwhile, and is fenced once one did', async () => {
    const r = await connection();
    const a = await openStore('a');
    a.upsertTask(TASK);
    await r.set('chorus:fence:t', '1');
    a.setFence('t', 'a:1');
    // The key lapsed (a busy event loop, say) and nobody acquired: the write restores it.
    a.setTaskStatus('t', 'running', 2);
    await a.flush();
    expect(await r.get('chorus:lease:t')).toBe('a:1');
    // Another node acquired (counter 2) and its key lapsed too: a's term is over.
    await r.del('chorus:lease:t');
    await r.set('chorus:fence:t', '2');
    a.setTaskStatus('t', 'paused', 3);
    await expect(a.flush()).rejects.toThrow(/FENCED/);
    expect(await r.get('chorus:lease:t')).toBeNull();
  });

  /** Node a leading task t with a 500 ms lease; `events` records what it heard. */
  async function leading(stallMs?: number): Promise<{ lease: TaskLease; events: string[] }> {
    const events: string[] = [];
    const lease = new TaskLease({
      redis: await connection(),
      key: 'chorus:lease:t',
      fenceKey: 'chorus:fence:t',
      nodeId: 'a',
      ttlMs: 500,
      ...(stallMs === undefined ? {} : { stallMs }),
      logger: silent,
      onAcquired: (value) => events.push(`got ${value}`),
      onLost: (reason) => events.push(`lost: ${reason}`),
    });
    cleanup.push(() => lease.stop());
    lease.start();
    await until('a to lead', () => lease.value !== null);
    await lease.renewerReady();
    return { lease, events };
  }

  it('keeps the lease through a busy event loop while another node tries to take it', async () => {
    const { lease, events } = await leading();
    const b = competitor(server().url);
    // Five times the lease's TTL, as a large round's aggregation on a shared machine can take.
    blockEventLoop(2500);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await b.stop()).toBeNull();
    expect(events).toEqual(['got a:1']);
    expect(lease.value).toBe('a:1');
    expect(await (await connection()).get('chorus:lease:t')).toBe('a:1');
  });

  it('gives the lease up to another node once its event loop has stalled for longer than stallMs', async () => {
    const { lease, events } = await leading(1000);
    const b = competitor(server().url);
    // Renewals stop 1 s into the stall and the key lapses 0.5 s later: b takes it within the stall.
    blockEventLoop(3000);
    await until('a to step down', () => lease.value === null);
    expect(await b.stop()).toBe('b:2');
    expect(events).toEqual(['got a:1', 'lost: lease taken by another node']);
    expect(lease.holder).not.toBe('a');
  });
});

describe('task leases', () => {
  it('gives the lease to one node, and to another once the holder stops renewing, within the time to live', async () => {
    const events: string[] = [];
    const make = async (nodeId: string): Promise<TaskLease> => {
      const lease = new TaskLease({
        redis: await connection(),
        key: 'chorus:lease:t',
        fenceKey: 'chorus:fence:t',
        nodeId,
        ttlMs: 600,
        logger: silent,
        onAcquired: (value) => events.push(`${nodeId} got ${value}`),
        onLost: (reason) => events.push(`${nodeId} lost: ${reason}`),
      });
      cleanup.push(() => lease.stop());
      return lease;
    };
    const a = await make('a');
    a.start();
    await until('a to lead', () => a.value !== null);
    const b = await make('b');
    b.start();
    await new Promise((r) => setTimeout(r, 900));
    expect(b.value).toBeNull();
    expect(b.holder).toBe('a');
    const released = Date.now();
    await a.stop();
    await until('b to lead', () => b.value !== null);
    expect(Date.now() - released).toBeLessThan(600);
    expect(events).toEqual(['a got a:1', 'a lost: released', 'b got b:2']);
  });
});

/** Six scripted clients joining the nodes in turn; resolves once the task has finished (every round committed). */
async function runToTheEnd(nodes: readonly { coordinator: { url: string }; cluster: { store: ReplicatedStore } }[]) {
  const clients: ScriptedClient[] = [];
  for (let i = 0; i < 6; i++) {
    const c = await ScriptedClient.join(nodes[i % nodes.length]!.coordinator.url, 'cluster');
    cleanup.push(() => c.close());
    clients.push(c);
  }
  const reader = nodes[0]!.cluster.store;
  await until('the task to finish', async () => {
    await reader.sync();
    return reader.getTask('cluster')?.status === 'finished';
  });
  return { clients, reader };
}

describe('several coordinator nodes', () => {
  it(
    'runs a task across three nodes with clients on each, to the same global-model hashes as one node given the same uploads',
    { timeout: 60_000 },
    async () => {
      const task = { rounds: 3 };
      const nodes = [];
      for (const nodeId of ['n1', 'n2', 'n3']) {
        const node = await startNode({ redisUrl: server().url, nodeId, task, leaseTtlMs: 1500, reconcileMs: 100 });
        cleanup.push(() => node.close());
        nodes.push(node);
      }
      const { clients, reader } = await runToTheEnd(nodes);
      const leaders = nodes.filter((n) => n.coordinator.engines.size > 0).map((n) => n.cluster.nodeId);
      expect(leaders).toHaveLength(1);
      // Every node tells operators the same leader, and sends a researcher's action to it.
      const leaderUrl = nodes.find((n) => n.cluster.nodeId === leaders[0])!.coordinator.url;
      for (const n of nodes) {
        const res = await fetch(`${n.coordinator.url}/api/cluster`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        const body = (await res.json()) as {
          nodeId: string;
          nodes: { nodeId: string; url: string }[];
          leaders: Record<string, string>;
          log: { entries: number; snapshotId: string | null; applied: string };
        };
        expect(body.nodeId).toBe(n.cluster.nodeId);
        expect(body.leaders).toEqual({ cluster: leaders[0] });
        // Nothing compacted in so short a log; each node says how far it has applied it.
        expect(body.log.entries).toBeGreaterThan(0);
        expect(body.log.snapshotId).toBeNull();
        expect(body.log.applied).toMatch(/^\d+-\d+$/);
        expect(body.nodes.map((x) => x.nodeId)).toEqual(['n1', 'n2', 'n3']);
      }
      const follower = nodes.find((n) => n.cluster.nodeId !== leaders[0])!;
      const refused = await fetch(`${follower.coordinator.url}/api/tasks/cluster/pause`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(refused.status).toBe(409);
      const error = (await refused.json()) as { error: { code: string; message: string } };
      expect(error.error.code).toBe('NOT_LEADER');
      expect(error.error.message).toContain(leaderUrl);
      // Uploads through every node were accepted, relayed or not.
      for (const c of clients) expect(c.accepted).toEqual([1, 2, 3]);
      // A node keeps a run's latest model only; the log keeps every round's, as a fresh replica shows.
      expect(reader.getCheckpoint('cluster', 1)).toBeUndefined();
      expect(reader.latestCheckpoint('cluster')?.serverRound).toBe(3);
      const history = await openStore('observer');
      const clusterHashes = [1, 2, 3].map((r) => history.getCheckpoint('cluster', r)?.sha256);

      // One node, the same identities and uploads.
      const single = await replayOnSingleNode(clusterTask(task), clients);
      cleanup.push(() => single.close());
      const store = single.store;
      const singleHashes = [1, 2, 3].map((r) => store.getCheckpoint('cluster', r)?.sha256);
      expect(clusterHashes.every((h) => typeof h === 'string')).toBe(true);
      expect(clusterHashes).toEqual(singleHashes);
      // A node's replica keeps the latest two rounds' upload records; every node's API answers each
      // round's from Redis, as the single node's store holds them.
      expect([...new Set(reader.listUpdates('cluster').map((u) => u.serverRound))]).toEqual([2, 3]);
      const verdicts = (updates: readonly UpdateRecord[]) =>
        updates
          .map((u) => [u.clientId, u.serverRound, u.attempt, u.status, u.numExamples, u.byteLength])
          .sort((x, y) => String(x[0]).localeCompare(String(y[0])));
      for (const n of nodes)
        for (const round of [1, 2, 3]) {
          const res = await fetch(`${n.coordinator.url}/api/tasks/cluster/rounds/${round}/updates`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
          const body = (await res.json()) as { updates: UpdateRecord[] };
          expect(body.updates).toHaveLength(6);
          expect(verdicts(body.updates)).toEqual(verdicts(store.listUpdates('cluster', round)));
        }
      // So with round records and metrics: the replica keeps the latest two rounds', every node's API
      // answers every round's as a replica that keeps everything (the observer) holds them.
      expect(reader.listRounds('cluster').map((r) => r.serverRound)).toEqual([2, 3]);
      expect(reader.listMetrics('cluster').map((m) => m.serverRound)).toEqual([2, 3]);
      expect(history.listRounds('cluster').map((r) => r.serverRound)).toEqual([1, 2, 3]);
      for (const n of nodes) {
        const get = async (path: string): Promise<unknown> =>
          (await fetch(`${n.coordinator.url}/api/tasks/cluster/${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
        expect(await get('rounds')).toEqual({ rounds: history.listRounds('cluster') });
        expect(await get('metrics')).toEqual({ taskId: 'cluster', run: 1, metrics: history.listMetrics('cluster') });
      }
    },
  );
});

describe('hierarchical aggregation', () => {
  it(
    'sums an exact-sum task on the nodes its uploads reach: followers send the leader partial sums, and the hashes are one node’s',
    { timeout: 60_000 },
    async () => {
      const task = {
        rounds: 3,
        strategy: { name: 'fedavg', exactSum: true },
        admission: { newIdentitiesPerAddress: null, newIdentitiesPerTask: null, proofOfWorkBits: 0, probationRounds: 0, similarityDamping: false },
      };
      const { clients, history } = await runExactSum(task);
      for (const c of clients) expect(c.accepted).toEqual([1, 2, 3]);
      // Each round, the four clients on the two followers were summed there, not sent to the leader.
      expect(history.listMetrics('cluster').map((m) => m.metrics['numSummedElsewhere'])).toEqual([4, 4, 4]);
      await expectSingleNodeHashes(task, clients, history, 3);
    },
  );

  it(
    'sums under the default probation, each node in the contribution counts stored with the round’s global, to one node’s hashes',
    { timeout: 60_000 },
    async () => {
      // Six invited, the first four in the seeded sampling order kept: histories, and so probation weights, differ.
      const task = {
        rounds: 4,
        clientsPerRound: 4,
        overSelection: 0.5,
        minClients: 4,
        waitingRoomMs: 10_000,
        strategy: { name: 'fedavg', exactSum: true },
        admission: { newIdentitiesPerAddress: null, newIdentitiesPerTask: null, proofOfWorkBits: 0, similarityDamping: false },
      };
      const { clients, history } = await runExactSum(task);
      const metrics = history.listMetrics('cluster').map((m) => m.metrics);
      expect(metrics.some((m) => (m['numSummedElsewhere'] ?? 0) > 0)).toBe(true);
      expect(metrics.every((m) => (m['strategy.numOnProbation'] ?? 0) > 0)).toBe(true);
      await expectSingleNodeHashes(task, clients, history, 4);
    },
  );

  /** Three nodes run `task` with six clients spread over them; the log's history as a fresh replica reads it. */
  async function runExactSum(task: Record<string, unknown>) {
    const nodes = [];
    for (const nodeId of ['n1', 'n2', 'n3']) {
      const node = await startNode({ redisUrl: server().url, nodeId, task, leaseTtlMs: 1500, reconcileMs: 100 });
      cleanup.push(() => node.close());
      nodes.push(node);
    }
    const { clients } = await runToTheEnd(nodes);
    return { clients, history: await openStore('observer') };
  }

  /** One node given the same identities and uploads commits the same models. */
  async function expectSingleNodeHashes(task: Record<string, unknown>, clients: readonly ScriptedClient[], history: ReplicatedStore, rounds: number) {
    const ids = Array.from({ length: rounds }, (_, i) => i + 1);
    const clusterHashes = ids.map((r) => history.getCheckpoint('cluster', r)?.sha256);
    const single = await replayOnSingleNode(clusterTask(task), clients);
    cleanup.push(() => single.close());
    expect(single.store.listMetrics('cluster').some((m) => 'numSummedElsewhere' in m.metrics)).toBe(false);
    expect(clusterHashes.every((h) => typeof h === 'string')).toBe(true);
    expect(clusterHashes).toEqual(ids.map((r) => single.store.getCheckpoint('cluster', r)?.sha256));
  }
});

describe('identity quotas across nodes', () => {
  it('admits the task’s burst of new identities through two nodes together, then refuses with IDENTITY_LIMIT', { timeout: 30_000 }, async () => {
    // Arrange: three new identities a task, refilled at one an hour.
    const task = { admission: { newIdentitiesPerTask: { burst: 3, perHour: 1 }, newIdentitiesPerAddress: null, proofOfWorkBits: 0 } };
    const nodes = [];
    for (const nodeId of ['n1', 'n2']) {
      const node = await startNode({ redisUrl: server().url, nodeId, task, leaseTtlMs: 1500, reconcileMs: 100 });
      cleanup.push(() => node.close());
      nodes.push(node);
    }
    const clients: FakeClient[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await FakeClient.connect(nodes[i % 2]!.coordinator.url, { taskId: 'cluster', token: JOIN_TOKEN });
      cleanup.push(() => c.close());
      clients.push(c);
    }
    // Act: all at once, four through each node.
    const answers = await Promise.all(clients.map((c) => c.hello({ backend: 'cpu', modalities: ['image', 'text'], numExamples: 10 })));
    const late = [];
    for (const n of nodes) {
      const c = await FakeClient.connect(n.coordinator.url, { taskId: 'cluster', token: JOIN_TOKEN });
      cleanup.push(() => c.close());
      late.push(await c.hello({ backend: 'cpu', modalities: ['image', 'text'], numExamples: 10 }));
    }
    const reader = nodes[0]!.cluster.store;
    await reader.sync();
    // Assert
    expect(answers.filter((a) => a.ok)).toHaveLength(3);
    expect(answers.filter((a) => !a.ok).map((a) => !a.ok && a.error.code)).toEqual(Array(5).fill('IDENTITY_LIMIT'));
    expect(late.map((a) => !a.ok && a.error.code)).toEqual(['IDENTITY_LIMIT', 'IDENTITY_LIMIT']);
    expect(reader.listClients('cluster')).toHaveLength(3);
  });
});

/**
 * A server-side model whose probe outputs are a function of the candidate alone (float32 all the
 * way): what a node's evaluator is to the cluster, without TF.js. Counts the candidates it probed.
 */
function fakeModel(task: TaskConfig): TaskEvaluator & { probed: number } {
  const labels = new Int32Array([0, 1, 0, 1, 1, 0]);
  const outputs = (global: Parameters, delta: Parameters | null): Float32Array => {
    let s = Math.fround(0);
    for (const t of delta ?? global) for (let i = 0; i < t.values.length; i += 7) s = Math.fround(s + t.values[i]!);
    const p = new Float32Array(labels.length * 2);
    labels.forEach((_, j) => {
      const a = Math.fround(1 / (1 + Math.exp(-(s * 40 + (j % 3) - 1))));
      p[2 * j] = a;
      p[2 * j + 1] = Math.fround(1 - a);
    });
    return p;
  };
  const model = {
    probed: 0,
    modalities: ['image', 'text'] as const,
    probeLabels: labels,
    initialParameters: () => defaultInitialGlobal(task)(),
    probeRound: async (global: Parameters, deltas: readonly Parameters[]) => {
      model.probed += deltas.length;
      return {
        baseline: { probabilities: outputs(global, null) },
        candidates: deltas.map((d): ProbeOutcome => ({ ok: true, probabilities: outputs(global, d) })),
      };
    },
    probeCandidates: async (global: Parameters, deltas: readonly Parameters[]) => {
      model.probed += deltas.length;
      return deltas.map((d): ProbeOutcome => ({ ok: true, probabilities: outputs(global, d) }));
    },
    evaluate: async () => ({}),
    rootUpdate: async () => null,
    exportMerged: () => Promise.reject(new Error('no export')),
    exportAdapters: () => Promise.reject(new Error('no export')),
    close: async () => undefined,
  };
  return model as unknown as TaskEvaluator & { probed: number };
}

describe('trust probing across nodes', () => {
  it(
    'probes each upload on the node it arrived at (the leader as they arrive), and keeps the hashes of a single node probing at the close under FedMM-X trust',
    { timeout: 60_000 },
    async () => {
      const task = { rounds: 3, strategy: { name: 'fedmm-x', inner: { name: 'fedavg' } }, evaluation: { probeExamples: 6, testExamples: 0 } };
      const config = clusterTask(task);
      const nodes: Awaited<ReturnType<typeof startNode>>[] = [];
      const models = [];
      for (const nodeId of ['n1', 'n2', 'n3']) {
        const model = fakeModel(config);
        const node = await startNode({ redisUrl: server().url, nodeId, task, leaseTtlMs: 1500, reconcileMs: 100 }, silent, model);
        cleanup.push(() => node.close());
        nodes.push(node);
        models.push(model);
      }
      await until('a leader', () => nodes.some((n) => n.coordinator.engines.size > 0));
      const { clients, reader } = await runToTheEnd(nodes);
      // Two uploads a round reached each node, and each node probed its own two: none was probed twice.
      for (const m of models) expect(m.probed).toBe(2 * 3);
      // The leader probed its own two as they arrived.
      for (const m of reader.listMetrics('cluster')) expect([m.metrics['numProbedElsewhere'], m.metrics['numProbedOnArrival']]).toEqual([4, 2]);
      const history = await openStore('observer');
      const clusterHashes = [1, 2, 3].map((r) => history.getCheckpoint('cluster', r)?.sha256);
      // A node's replica keeps the latest two rounds' trust scores; Redis keeps every round's.
      expect([...new Set(reader.listTrust('cluster').map((t) => t.serverRound))]).toEqual([2, 3]);
      const trust = await readTrust(reader, 'cluster');
      expect(new Set(trust.map((t) => t.trust)).size).toBeGreaterThan(1);

      // The single node probes every candidate at the round's close, so the same hashes and trust also
      // show that outcomes measured on arrival and elsewhere are those of a probe at the close.
      const atClose = fakeModel(config);
      const single = await replayOnSingleNode(config, clients, { model: atClose, probeOnArrival: false });
      cleanup.push(() => single.close());
      const store = single.store;
      expect(store.listMetrics('cluster').map((m) => m.metrics['numProbedOnArrival'] ?? 0)).toEqual([0, 0, 0]);
      expect(clusterHashes).toEqual([1, 2, 3].map((r) => store.getCheckpoint('cluster', r)?.sha256));
      expect(trust.map((t) => [t.serverRound, t.clientId, t.trust])).toEqual(store.listTrust('cluster').map((t) => [t.serverRound, t.clientId, t.trust]));
    },
  );
});

describe('a node’s record of its clients', () => {
  it(
    'writes its clients to Redis as they join and leave, and writes them whole again once its connection to Redis comes back',
    { timeout: 30_000 },
    async () => {
      // Arrange
      const node = await startNode({ redisUrl: server().url, nodeId: 'n1', task: { rounds: 100 }, leaseTtlMs: 1500, reconcileMs: 100 });
      cleanup.push(() => node.close());
      const r = await connection();
      const recorded = async (): Promise<string[]> => (await r.hkeys('chorus:members:cluster:n1')).sort();
      // Act / Assert
      const a = await ScriptedClient.join(node.coordinator.url, 'cluster');
      const b = await ScriptedClient.join(node.coordinator.url, 'cluster');
      cleanup.push(() => b.close());
      await until('both clients recorded', async () => (await recorded()).length === 2);
      a.close();
      await until("a's leave recorded", async () => (await recorded()).length === 1);
      // What a restarted Redis lost: the node writes its record whole again when its connection is back.
      await r.del('chorus:members:cluster:n1');
      node.cluster.redis.disconnect(true);
      await until('the record written again', async () => (await recorded()).length === 1, 10_000);
      expect(await r.llen('chorus:members:cluster:n1:log')).toBe(0);
    },
  );
});
