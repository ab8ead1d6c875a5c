/**
 * Several coordinator nodes on one real Redis (redis-server on loopback): the same task served by
 * every node, clients spread across them, one leader. Nodes run in this process here (the crash
 * tests with real processes are in clusterFaults.test.ts).
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, defaultInitialGlobal } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { hashToken } from '../security/tokens.js';
import { ADMIN_TOKEN, JOIN_TOKEN, ScriptedClient, clusterTask, startNode } from '../testing/clusterFixture.js';
import { RedisServer } from '../testing/redisServer.js';
import { ReplicatedStore, decodeEntry, encodeEntry } from './replicatedStore.js';
import { TaskLease } from './lease.js';

const silent = pino({ level: 'silent' });
let redis: RedisServer;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  const r = new Redis(redis.url);
  await r.flushall();
  r.disconnect();
});

async function connection(): Promise<Redis> {
  const r = new Redis(redis.url, { maxRetriesPerRequest: null });
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

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const TASK = { taskId: 't', configJson: '{}', joinTokenHash: 'h', createdAt: 1 };

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

describe('several coordinator nodes', () => {
  it(
    'runs a task across three nodes with clients on each, to the same global-model hashes as one node given the same uploads',
    { timeout: 60_000 },
    async () => {
      const task = { rounds: 3 };
      const nodes = [];
      for (const nodeId of ['n1', 'n2', 'n3']) {
        const node = await startNode({ redisUrl: redis.url, nodeId, task, leaseTtlMs: 1500, reconcileMs: 100 });
        cleanup.push(() => node.close());
        nodes.push(node);
      }
      const clients: ScriptedClient[] = [];
      for (let i = 0; i < 6; i++) {
        const c = await ScriptedClient.join(nodes[i % 3]!.coordinator.url, 'cluster');
        cleanup.push(() => c.close());
        clients.push(c);
      }
      const reader = nodes[0]!.cluster.store;
      await until('three committed rounds', async () => {
        await reader.sync();
        return reader.getTask('cluster')?.status === 'finished';
      });
      const leaders = nodes.filter((n) => n.coordinator.engines.size > 0).map((n) => n.cluster.nodeId);
      expect(leaders).toHaveLength(1);
      // Every node tells operators the same leader, and sends a researcher's action to it.
      const leaderUrl = nodes.find((n) => n.cluster.nodeId === leaders[0])!.coordinator.url;
      for (const n of nodes) {
        const res = await fetch(`${n.coordinator.url}/api/cluster`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        const body = (await res.json()) as { nodeId: string; nodes: { nodeId: string; url: string }[]; leaders: Record<string, string> };
        expect(body.nodeId).toBe(n.cluster.nodeId);
        expect(body.leaders).toEqual({ cluster: leaders[0] });
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
      const clusterHashes = [1, 2, 3].map((r) => reader.getCheckpoint('cluster', r)?.sha256);

      // One node, the same identities and uploads.
      const store = new MemoryStore();
      const config = clusterTask(task);
      const single = await startCoordinator({
        tasks: [{ config, joinToken: JOIN_TOKEN, initialGlobal: defaultInitialGlobal(config) }],
        store,
        adminToken: ADMIN_TOKEN,
        logger: silent,
        retryDelayMs: 50,
        processMetrics: false,
      });
      cleanup.push(() => single.close());
      for (const c of clients)
        store.createClient({
          clientId: c.clientId,
          taskId: 'cluster',
          secretHash: hashToken(c.clientSecret),
          capabilitiesJson: null,
          createdAt: 1,
          lastSeenAt: 1,
        });
      for (const c of clients) {
        const again = await ScriptedClient.resume(single.url, 'cluster', c.clientId, c.clientSecret);
        cleanup.push(() => again.close());
      }
      await until('the single node to finish', () => store.getTask('cluster')?.status === 'finished');
      const singleHashes = [1, 2, 3].map((r) => store.getCheckpoint('cluster', r)?.sha256);
      expect(clusterHashes.every((h) => typeof h === 'string')).toBe(true);
      expect(clusterHashes).toEqual(singleHashes);
    },
  );
});
