/** The cluster membership on a real redis-server: each node's joined clients, and a leader's view of every live node's. */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Capabilities } from '@chorus/protocol';
import { useRedisServer } from '../testing/redisServer.js';
import { MemberView, Membership, PRUNE_AFTER_MS } from './membership.js';

const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });

async function connection(): Promise<Redis> {
  const r = new Redis(server().url, { maxRetriesPerRequest: null });
  cleanup.push(() => r.disconnect());
  return r;
}

/** A node: its membership writes, and its relay subscription (what makes it live). */
async function node(nodeId: string): Promise<{ membership: Membership; subscriber: Redis }> {
  const subscriber = await connection();
  await subscriber.subscribe(`chorus:node:${nodeId}`);
  return { membership: new Membership(await connection(), 'chorus:', nodeId), subscriber };
}

const caps = (numExamples: number): Capabilities => ({ backend: 'cpu', modalities: ['image'], numExamples }) as Capabilities;

describe('cluster membership', () => {
  it("shows a leader every live node's joined clients, and drops a node once it no longer listens on its relay channel", async () => {
    // Arrange
    const a = await node('a');
    const b = await node('b');
    const view = new MemberView(await connection(), 'chorus:', 't');
    // Act
    await a.membership.add('t', 'c1', caps(1));
    await b.membership.add('t', 'c2', caps(2));
    await b.membership.add('t', 'c3', caps(3));
    await b.membership.add('other', 'c9', caps(9));
    // Assert
    expect((await view.read()).members).toEqual(
      new Map([
        ['c1', caps(1)],
        ['c2', caps(2)],
        ['c3', caps(3)],
      ]),
    );
    await b.membership.remove('t', 'c2');
    expect([...(await view.read()).members.keys()].sort()).toEqual(['c1', 'c3']);
    // b dies: Redis drops its subscription with its connection.
    const redis = await connection();
    await redis.hset('chorus:nodes', 'b', JSON.stringify({ seenAt: Date.now() }));
    b.subscriber.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    expect([...(await view.read()).members.keys()]).toEqual(['c1']);
    // Its record stays while it announced itself lately (it may come back), and goes once it has been silent for long.
    expect(await redis.hkeys('chorus:members:t')).toEqual(['a', 'b']);
    await redis.hset('chorus:nodes', 'b', JSON.stringify({ seenAt: Date.now() - PRUNE_AFTER_MS - 1 }));
    expect([...(await view.read()).members.keys()]).toEqual(['c1']);
    expect(await redis.hkeys('chorus:members:t')).toEqual(['a']);
    expect(await redis.exists('chorus:members:t:b')).toBe(0);
  });

  it('re-reads only the nodes whose clients changed', async () => {
    // Arrange
    const a = await node('a');
    const b = await node('b');
    await a.membership.add('t', 'c1', caps(1));
    await b.membership.add('t', 'c2', caps(2));
    const redis = await connection();
    const view = new MemberView(redis, 'chorus:', 't');
    await view.read();
    const read: string[] = [];
    const hgetall = redis.hgetall.bind(redis);
    redis.hgetall = ((key: string) => {
      read.push(key);
      return hgetall(key);
    }) as typeof redis.hgetall;
    // Act
    const unchanged = await view.read();
    await a.membership.add('t', 'c3', caps(3));
    const after = await view.read();
    // Assert: the versions each time, and a's hash once it changed.
    expect(read).toEqual(['chorus:members:t', 'chorus:members:t', 'chorus:members:t:a']);
    expect(unchanged.changed).toBe(false);
    expect(after.changed).toBe(true);
    expect([...after.members.keys()].sort()).toEqual(['c1', 'c2', 'c3']);
  });

  it('replaces a node’s record whole: emptied before it serves a task, or rewritten with the clients it holds', async () => {
    // Arrange: what an earlier process of node a left behind.
    const a = await node('a');
    await a.membership.add('t', 'stale', caps(1));
    const view = new MemberView(await connection(), 'chorus:', 't');
    expect([...(await view.read()).members.keys()]).toEqual(['stale']);
    // Act / Assert
    await a.membership.replace('t', new Map());
    expect((await view.read()).members.size).toBe(0);
    await a.membership.replace(
      't',
      new Map([
        ['c1', caps(1)],
        ['c2', caps(2)],
      ]),
    );
    expect([...(await view.read()).members.keys()].sort()).toEqual(['c1', 'c2']);
  });
});
