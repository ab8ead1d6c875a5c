/**
 * A split task (FedUMM's device–edge split) on two coordinator nodes over a real Redis: the edge
 * runs on the node leading the task, and clients connected to the other node reach it through the
 * relay (cluster/relay.ts) with every forward and backward step.
 */
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../server.js';
import { ADMIN_TOKEN, JOIN_TOKEN, until } from '../testing/clusterFixture.js';
import { useRedisServer } from '../testing/redisServer.js';
import { splitHeadlessClients, splitTestTask } from '../testing/splitFixture.js';
import { connectCluster } from './cluster.js';

const silent = pino({ level: 'silent' });
const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });

const task = splitTestTask({ id: 'split-cluster', minClients: 2, waitingRoomMs: 0, roundDeadlineMs: 120_000, maxRoundAttempts: 1 });

async function startNode(nodeId: string) {
  const cluster = await connectCluster({ url: server().url, nodeId, logger: silent, leaseTtlMs: 1500, reconcileMs: 100 });
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: JOIN_TOKEN }],
    store: cluster.store,
    cluster,
    adminToken: ADMIN_TOKEN,
    logger: silent,
    retryDelayMs: 50,
    processMetrics: false,
  });
  cleanup.push(async () => {
    await coordinator.close();
    await cluster.close();
  });
  return { cluster, coordinator };
}

describe('a split task on two nodes', () => {
  it('runs every round through the edge on the leading node for clients connected to the other node, and exports the model from either node', async () => {
    // Arrange: a leads the task; both clients connect to b, which does not run the edge.
    const a = await startNode('a');
    await until('a to lead the task', () => a.coordinator.engines.size > 0);
    const b = await startNode('b');
    const clients = await splitHeadlessClients(b.coordinator.url, task.id, JOIN_TOKEN);
    cleanup.push(() => clients.close());

    // Act
    const outcomes = await clients.runToTheEnd();

    // Assert: both rounds committed on their first attempt (maxRoundAttempts 1), led by a, with the edge's split steps.
    expect(outcomes.map((o) => o.kind)).toEqual(['task-end', 'task-end']);
    expect(b.coordinator.engines.size).toBe(0);
    const store = a.cluster.store;
    expect(store.listRounds(task.id).map((r) => [r.serverRound, r.attempt, r.status])).toEqual([
      [1, 1, 'completed'],
      [2, 1, 'completed'],
    ]);
    expect(store.listUpdates(task.id).filter((u) => u.status === 'accepted')).toHaveLength(4);
    for (const m of store.listMetrics(task.id).map((x) => x.metrics)) expect(m['eval.accuracy']).toBeGreaterThanOrEqual(0);

    // Either node exports the final model: b, which does not lead the task, from its replica's latest checkpoint.
    await b.cluster.store.sync();
    expect(b.cluster.store.latestCheckpoint(task.id)?.sha256).toBe(store.latestCheckpoint(task.id)?.sha256);
    const exportOf = async (url: string, file: string): Promise<Buffer> => {
      const res = await fetch(`${url}/api/tasks/${task.id}/export/adapters/${file}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(200);
      return Buffer.from(await res.arrayBuffer());
    };
    const fromLeader = await exportOf(a.coordinator.url, 'weights.bin');
    const fromFollower = await exportOf(b.coordinator.url, 'weights.bin');
    expect(fromFollower.byteLength).toBeGreaterThan(0);
    expect(fromFollower.equals(fromLeader)).toBe(true);
    expect(JSON.parse((await exportOf(b.coordinator.url, 'model.json')).toString())).toEqual(
      JSON.parse((await exportOf(a.coordinator.url, 'model.json')).toString()),
    );
  }, 300_000);
});
