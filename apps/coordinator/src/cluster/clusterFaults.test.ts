/**
 * Faults a cluster survives, with real processes and a real redis-server on loopback: a node or
 * the leader SIGKILLed mid-round, Redis killed and restarted mid-task, and a leader cut off from
 * Redis (a paused connection) whose late commit is refused.
 *
 * Every test checks the same invariants on the log: each round is committed once, the task
 * finishes, and every round started from the checkpoint of the round before it (the clients record
 * the global-model hash each round start carried).
 */
import { Socket, createServer } from 'node:net';
import type { Server } from 'node:net';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess, ScriptedClient, startNode, until } from '../testing/clusterFixture.js';
import { freePort, useRedisServer } from '../testing/redisServer.js';
import { leaseHolder } from './lease.js';
import { ReplicatedStore, clusterKeys, decodeEntry } from './replicatedStore.js';
import type { RoundCompletion } from '../store/types.js';

const silent = pino({ level: 'silent' });
// Generous for a loaded CI machine: a node starved of CPU for a moment must not lose its lease.
const TTL = 3000;
const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });

/** Reads the cluster's log as an extra replica. */
async function observer(): Promise<{ store: ReplicatedStore; redis: Redis }> {
  const r = new Redis(server().url, { maxRetriesPerRequest: null });
  const reader = new Redis(server().url, { maxRetriesPerRequest: null });
  // Redis is restarted by one test: the connections reconnect.
  for (const c of [r, reader]) c.on('error', () => undefined);
  const store = await ReplicatedStore.open({ redis: r, reader, nodeId: 'observer', logger: silent });
  cleanup.push(() => {
    store.close();
    r.disconnect();
    reader.disconnect();
  });
  return { store, redis: r };
}

/** The committed rounds in the log, in log order, with the node that wrote each. */
async function commits(r: Redis): Promise<{ serverRound: number; node: string; sha256: string }[]> {
  const entries = (await r.xrange(clusterKeys('chorus:').log, '-', '+')) as [string, string[]][];
  return entries
    .map(([, fields]) => decodeEntry(fields[1]!))
    .filter((e) => e.method === 'completeRound')
    .map((e) => {
      const c = e.args[0] as RoundCompletion;
      return { serverRound: c.serverRound, node: e.node, sha256: c.checkpoint.sha256 };
    });
}

async function spawnNodes(ids: readonly string[], task: Record<string, unknown>): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = [];
  for (const nodeId of ids) {
    const node = await NodeProcess.spawn({ redisUrl: server().url, nodeId, task, leaseTtlMs: TTL, reconcileMs: 100, relayTimeoutMs: 3000 });
    cleanup.push(() => node.kill('SIGKILL'));
    nodes.push(node);
  }
  return nodes;
}

async function spawnClients(urls: readonly string[], perNode: number, uploadDelayMs: number): Promise<ScriptedClient[]> {
  const clients: ScriptedClient[] = [];
  for (const url of urls)
    for (let i = 0; i < perNode; i++) {
      const c = await ScriptedClient.join(url, 'cluster');
      c.uploadDelayMs = uploadDelayMs;
      cleanup.push(() => c.close());
      clients.push(c);
    }
  return clients;
}

async function holder(r: Redis): Promise<string | null> {
  const value = await r.get('chorus:lease:cluster');
  return value === null ? null : leaseHolder(value);
}

/** The invariants of a finished task: rounds 1..n committed once each, and each round started from the one before. */
async function expectIntactHistory(store: ReplicatedStore, r: Redis, clients: readonly ScriptedClient[], rounds: number): Promise<void> {
  await until('the task to finish', async () => {
    await store.sync();
    return store.getTask('cluster')?.status === 'finished';
  });
  const committed = await commits(r);
  expect(committed.map((c) => c.serverRound)).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
  const hashOf = new Map([[0, store.getCheckpoint('cluster', 0)!.sha256], ...committed.map((c) => [c.serverRound, c.sha256] as const)]);
  for (const c of clients) for (const s of c.starts) expect(s.globalHash).toBe(hashOf.get(s.serverRound - 1));
}

describe('a cluster under faults', () => {
  const task = { rounds: 4, clientsPerRound: 6, minClients: 2, roundDeadlineMs: 4000 };

  /** Three nodes, two clients on each; a node that does not lead is SIGKILLed as round 2 opens; the task must finish intact. */
  async function killFollowerMidRound(taskConfig: Record<string, unknown>): Promise<ReplicatedStore> {
    const { store, redis: r } = await observer();
    const nodes = await spawnNodes(['a', 'b', 'c'], taskConfig);
    await until('a leader', async () => (await holder(r)) !== null);
    const clients = await spawnClients(
      nodes.map((n) => n.url),
      2,
      300,
    );
    const leader = await holder(r);
    const victim = nodes.find((n) => n.nodeId !== leader)!;
    await until('round 2 to open', async () => {
      await store.sync();
      return store.listRounds('cluster').some((x) => x.serverRound === 2);
    });
    await victim.kill('SIGKILL');
    await expectIntactHistory(store, r, clients, 4);
    // The survivors' clients went on to the end; the ones on the dead node stopped.
    const survivors = clients.filter((_, i) => nodes[Math.floor(i / 2)] !== victim);
    for (const c of survivors) expect(c.accepted.at(-1)).toBe(4);
    expect(await holder(r)).toBe(leader);
    return store;
  }

  it('finishes the round without a SIGKILLed node and its clients, losing no committed round', { timeout: 90_000 }, async () => {
    await killFollowerMidRound(task);
  });

  it(
    'retries the round of an exact-sum task whose SIGKILLed node held accepted uploads (its partial sum never comes), then finishes intact',
    { timeout: 90_000 },
    async () => {
      const { store, redis: r } = await observer();
      const nodes = await spawnNodes(['a', 'b', 'c'], {
        ...task,
        strategy: { name: 'fedavg', exactSum: true },
        admission: { newIdentitiesPerAddress: null, newIdentitiesPerTask: null, proofOfWorkBits: 0, probationRounds: 0, similarityDamping: false },
      });
      await until('a leader', async () => (await holder(r)) !== null);
      const leader = await holder(r);
      const victim = nodes.find((n) => n.nodeId !== leader)!;
      const clients = await spawnClients(
        nodes.map((n) => n.url),
        2,
        1500,
      );
      const onVictim = clients.filter((_, i) => nodes[Math.floor(i / 2)] === victim);
      // The victim's clients upload at once; the others take 1.5 s.
      for (const c of onVictim) c.uploadDelayMs = 0;
      await until('the victim’s clients to upload in round 2', () => onVictim.every((c) => c.accepted.includes(2)));
      await victim.kill('SIGKILL');
      await expectIntactHistory(store, r, clients, 4);
      const rounds = store.listRounds('cluster');
      const retried = rounds.find((x) => x.serverRound === 2 && x.status === 'retry');
      expect(retried?.reason).toContain('aggregation failed');
      // Every other round summed the other follower's clients there.
      const summed = store.listMetrics('cluster').map((m) => m.metrics['numSummedElsewhere'] ?? 0);
      expect(summed.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
      const survivors = clients.filter((c) => !onVictim.includes(c));
      for (const c of survivors) expect(c.accepted.at(-1)).toBe(4);
    },
  );

  it('hands the task to another node within the lease bound when the leader is SIGKILLed, and goes on from its last commit', { timeout: 90_000 }, async () => {
    const { store, redis: r } = await observer();
    const nodes = await spawnNodes(['a', 'b', 'c'], task);
    await until('a leader', async () => (await holder(r)) !== null);
    const clients = await spawnClients(
      nodes.map((n) => n.url),
      2,
      300,
    );
    const leader = (await holder(r))!;
    await until('round 2 to open', async () => {
      await store.sync();
      return store.listRounds('cluster').some((x) => x.serverRound === 2);
    });
    const killedAt = Date.now();
    await nodes.find((n) => n.nodeId === leader)!.kill('SIGKILL');
    await until('a new leader', async () => {
      const h = await holder(r);
      return h !== null && h !== leader;
    });
    const failoverMs = Date.now() - killedAt;
    // The key lapses after the TTL; another node takes it at its next try (every TTL / 3).
    expect(failoverMs).toBeLessThan(TTL + TTL / 3 + 1500);
    await expectIntactHistory(store, r, clients, 4);
    const newLeader = await holder(r);
    expect((await commits(r)).at(-1)!.node).toBe(newLeader);
  });

  it('resumes the task when Redis is killed and restarted mid-task', { timeout: 90_000 }, async () => {
    const { store, redis: r } = await observer();
    const nodes = await spawnNodes(['a', 'b'], task);
    await until('a leader', async () => (await holder(r)) !== null);
    const clients = await spawnClients(
      nodes.map((n) => n.url),
      2,
      200,
    );
    await until('round 2 to open', async () => {
      await store.sync();
      return store.listRounds('cluster').some((x) => x.serverRound === 2);
    });
    await server().kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server().restart();
    await expectIntactHistory(store, r, clients, 4);
  });
});

/** A TCP proxy to Redis that can stop passing bytes (both ways) while keeping the connections open: a partition. */
class PausableProxy {
  private paused = false;
  private readonly held: (() => void)[] = [];
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  private constructor(readonly port: number) {}

  static async start(targetPort: number): Promise<PausableProxy> {
    const proxy = new PausableProxy(await freePort());
    proxy.server = createServer((inbound) => {
      const outbound = new Socket();
      outbound.connect(targetPort, '127.0.0.1');
      proxy.sockets.add(inbound).add(outbound);
      const pass = (from: Socket, to: Socket): void => {
        from.on('data', (chunk: Buffer) => {
          if (proxy.paused) proxy.held.push(() => to.write(chunk));
          else to.write(chunk);
        });
        from.on('close', () => to.destroy());
        from.on('error', () => to.destroy());
      };
      pass(inbound, outbound);
      pass(outbound, inbound);
    });
    await new Promise<void>((resolve) => proxy.server.listen(proxy.port, '127.0.0.1', resolve));
    return proxy;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const send of this.held.splice(0)) send();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('a leader cut off from Redis', () => {
  it('stops leading, and its late commit is refused (fenced) while the new leader commits the round', { timeout: 90_000 }, async () => {
    const { store, redis: r } = await observer();
    const proxy = await PausableProxy.start(server().port);
    cleanup.push(() => proxy.close());
    const lines: string[] = [];
    const captured = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const task = { rounds: 3, clientsPerRound: 4, minClients: 4, roundDeadlineMs: 6000 };
    // a leads, reached through the proxy; b waits, reached directly.
    const a = await startNode(
      { redisUrl: `redis://127.0.0.1:${proxy.port}`, nodeId: 'a', task, leaseTtlMs: TTL, reconcileMs: 100, relayTimeoutMs: 3000 },
      captured,
    );
    cleanup.push(() => a.close());
    await until('a to lead', async () => (await holder(r)) === 'a');
    const b = await startNode({ redisUrl: server().url, nodeId: 'b', task, leaseTtlMs: TTL, reconcileMs: 100, relayTimeoutMs: 3000 });
    cleanup.push(() => b.close());
    // Every client is on a, so a can close round 2 while cut off.
    const clients = await spawnClients([a.coordinator.url], 4, 400);
    await until('round 2 to open', async () => {
      await store.sync();
      return store.listRounds('cluster').some((x) => x.serverRound === 2);
    });
    proxy.pause();
    await until('a to stop leading', () => a.coordinator.engines.size === 0, 10_000);
    await until('b to lead', async () => (await holder(r)) === 'b', 10_000);
    proxy.resume();
    await expectIntactHistory(store, r, clients, 3);
    const committed = await commits(r);
    // Round 2 and after were committed by b; a's commit of round 2, if it made one, never reached the log.
    expect(committed.filter((c) => c.serverRound >= 2).every((c) => c.node === 'b')).toBe(true);
    // a closed round 2 while cut off (its clients' uploads reached it) and tried to commit it: refused.
    expect(lines.some((l) => l.includes('"code":"FENCED"') && l.includes('completeRound'))).toBe(true);
    expect(lines.some((l) => l.includes('"msg":"round commit was not made durable"'))).toBe(true);
    expect(lines.some((l) => l.includes('"msg":"lease lost"'))).toBe(true);
    // a's replica, rebuilt from the log, agrees with it.
    await a.cluster.store.sync();
    expect(a.cluster.store.getCheckpoint('cluster', 3)?.sha256).toBe(committed.at(-1)!.sha256);
  });
});
