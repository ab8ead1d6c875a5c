/**
 * Identity quotas in a real Redis (redis-server on loopback), with each limiter on its own
 * connection as each node of a cluster has: one quota however many nodes ask, refilled on Redis's clock.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseTask } from '../task/loadTask.js';
import { IdentityLimiter } from '../security/admission.js';
import type { IdentityQuota } from '../security/admission.js';
import type { TaskConfig } from '@chorus/protocol';
import { RedisServer } from '../testing/redisServer.js';
import { RedisIdentityLimiter } from './redisIdentityLimiter.js';

let redis: RedisServer;
const connections: Redis[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  const r = connections[0];
  await r?.flushall();
  for (const c of connections.splice(0)) c.disconnect();
});

function admissionOf(admission: Record<string, unknown>): TaskConfig['admission'] {
  return parseTask({
    id: 'quota',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 1,
    clientsPerRound: 1,
    minClients: 1,
    roundDeadlineMs: 10_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    admission,
  }).admission;
}

/** A node's limiter of task `quota`: its own connection to the shared Redis. */
function node(admission: TaskConfig['admission']): { limiter: RedisIdentityLimiter; redis: Redis } {
  const r = new Redis(redis.url, { maxRetriesPerRequest: null });
  connections.push(r);
  return { limiter: new RedisIdentityLimiter({ redis: r, prefix: 'chorus:', taskId: 'quota', admission }), redis: r };
}

const codeOf = (refusal: { code: string } | null): string => refusal?.code ?? 'ok';

describe('identity quotas in Redis', () => {
  it('answers a sequence of checks, takes and give-backs as the in-memory limiter does', async () => {
    // Arrange: refills too slow to matter while the test runs.
    const admission = admissionOf({ newIdentitiesPerAddress: { burst: 2, perHour: 1 }, newIdentitiesPerTask: { burst: 3, perHour: 1 } });
    const run = async (quota: IdentityQuota): Promise<string[]> => {
      const seen: string[] = [];
      const step = async (what: 'check' | 'take' | 'giveBack', address: string, openLink: boolean): Promise<void> => {
        if (what === 'giveBack') await quota.giveBack(address, openLink);
        else seen.push(`${what} ${address}: ${codeOf(await quota[what](address, openLink))}`);
      };
      await step('take', 'a', true);
      await step('check', 'a', true);
      await step('take', 'a', true);
      await step('check', 'a', true);
      await step('take', 'a', true);
      await step('take', 'a', false);
      await step('check', 'b', true);
      await step('giveBack', 'a', false);
      await step('take', 'b', true);
      await step('take', 'c', false);
      await step('giveBack', 'a', true);
      await step('take', 'a', true);
      return seen;
    };
    // Act
    const inMemory = await run(new IdentityLimiter(admission, () => 0));
    const inRedis = await run(node(admission).limiter);
    // Assert
    expect(inRedis).toEqual([
      'take a: ok',
      'check a: ok',
      'take a: ok',
      'check a: IDENTITY_LIMIT',
      'take a: IDENTITY_LIMIT',
      'take a: ok', // an invitation's identity: no address bucket; the task's last place
      'check b: IDENTITY_LIMIT',
      'take b: ok', // the place given back
      'take c: IDENTITY_LIMIT',
      'take a: ok', // given back to the task and to address a
    ]);
    expect(inRedis).toEqual(inMemory);
  });

  it('admits exactly the burst when two nodes take at once, in total and per address', async () => {
    // Arrange
    const admission = admissionOf({ newIdentitiesPerAddress: { burst: 2, perHour: 1 }, newIdentitiesPerTask: { burst: 5, perHour: 1 } });
    const nodes = [node(admission).limiter, node(admission).limiter];
    // Act: twelve new identities from one address, then twelve from distinct ones, alternating between the nodes.
    const sameAddress = await Promise.all(Array.from({ length: 12 }, (_, i) => nodes[i % 2]!.take('10.0.0.1', true)));
    const distinct = await Promise.all(Array.from({ length: 12 }, (_, i) => nodes[i % 2]!.take(`10.0.1.${i}`, true)));
    const afterwards = await Promise.all(nodes.map((n) => n.check('10.0.2.1', true)));
    // Assert
    expect(sameAddress.filter((r) => r === null)).toHaveLength(2);
    expect(distinct.filter((r) => r === null)).toHaveLength(3);
    expect(afterwards.map(codeOf)).toEqual(['IDENTITY_LIMIT', 'IDENTITY_LIMIT']);
  });

  it('refills on Redis’s clock: the next place comes 1/rate after the last was taken, not before', async () => {
    // Arrange: 7,200 an hour is one place every 500 ms.
    const admission = admissionOf({ newIdentitiesPerAddress: null, newIdentitiesPerTask: { burst: 1, perHour: 7200 } });
    const [a, b] = [node(admission).limiter, node(admission).limiter];
    const start = Date.now();
    // Act
    const first = await a.take('x', true);
    const second = await b.take('y', true);
    let checks = 0;
    while ((await b.check('y', true)) !== null) {
      checks++;
      await new Promise((r) => setTimeout(r, 20));
    }
    const refilledAfterMs = Date.now() - start;
    const third = await b.take('y', true);
    const fourth = await a.take('x', true);
    // Assert
    expect(first).toBeNull();
    expect(second?.code).toBe('IDENTITY_LIMIT');
    expect(checks).toBeGreaterThan(0);
    expect(refilledAfterMs).toBeGreaterThanOrEqual(490);
    expect(refilledAfterMs).toBeLessThan(3000);
    expect(third).toBeNull();
    expect(fourth?.code).toBe('IDENTITY_LIMIT');
  });

  it('keeps a bucket only until it would be full again, and nothing for a task without quotas', async () => {
    // Arrange: the address bucket refills in 500 ms a place, the task's in an hour.
    const { limiter, redis: r } = node(admissionOf({ newIdentitiesPerAddress: { burst: 2, perHour: 7200 }, newIdentitiesPerTask: { burst: 3, perHour: 1 } }));
    const unlimited = node(admissionOf({ newIdentitiesPerAddress: null, newIdentitiesPerTask: null })).limiter;
    // Act
    await limiter.take('10.0.0.1', true);
    const addressTtl = await r.pttl('chorus:identities:quota:10.0.0.1');
    const taskTtl = await r.pttl('chorus:identities:quota');
    await limiter.giveBack('10.0.0.1', true);
    const keysAfterGiveBack = await r.keys('chorus:*');
    const unlimitedTakes = await Promise.all([1, 2, 3].map(() => unlimited.take('10.0.0.1', true)));
    const keysAfterUnlimited = await r.keys('chorus:*');
    // Assert: one place short is 500 ms for the address and an hour (to the millisecond) for the task.
    expect(addressTtl).toBeGreaterThan(0);
    expect(addressTtl).toBeLessThanOrEqual(500);
    expect(taskTtl).toBeGreaterThan(3_590_000);
    expect(taskTtl).toBeLessThanOrEqual(3_600_001);
    expect(keysAfterGiveBack).toEqual([]);
    expect(unlimitedTakes).toEqual([null, null, null]);
    expect(keysAfterUnlimited).toEqual([]);
  });
});
