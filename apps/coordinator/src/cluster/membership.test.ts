/** The cluster membership on a real redis-server: each node's joined clients, and a leader's view of every live node's. */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '@chorus/fl-core';
import type { Capabilities } from '@chorus/protocol';
import { useRedisServer } from '../testing/redisServer.js';
import { MemberView, Membership, PRUNE_AFTER_MS } from './membership.js';
import type { MemberChanges } from './membership.js';

const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });

async function connection(): Promise<Redis> {
  const r = new Redis(server().url, { maxRetriesPerRequest: null });
  cleanup.push(() => r.disconnect());
  return r;
}

const caps = (numExamples: number): Capabilities => ({ backend: 'cpu', modalities: ['image'], numExamples }) as Capabilities;

/** A node: its joined clients of task t, its membership writes, and its relay subscription (what makes it live). */
async function node(nodeId: string, logLimit?: number): Promise<{ local: Map<string, Capabilities>; membership: Membership; subscriber: Redis }> {
  const subscriber = await connection();
  await subscriber.subscribe(`chorus:node:${nodeId}`);
  const local = new Map<string, Capabilities>();
  return { local, membership: new Membership(await connection(), 'chorus:', nodeId, () => local, logLimit), subscriber };
}

const ids = (changes: MemberChanges) => ({
  joined: changes.joined.map(([id]) => id).sort(),
  left: [...changes.left].sort(),
  members: [...changes.members.keys()].sort(),
});

/** Node a holding c1 and c2 of task t, and a leader's view that has read them both. */
async function viewOfTwoClients(logLimit?: number): Promise<{ a: Awaited<ReturnType<typeof node>>; redis: Redis; view: MemberView }> {
  const a = await node('a', logLimit);
  const redis = await connection();
  const view = new MemberView(redis, 'chorus:', 't');
  for (const id of ['c1', 'c2']) {
    a.local.set(id, caps(1));
    await a.membership.add('t', id, caps(1));
  }
  expect(ids(await view.read()).joined).toEqual(['c1', 'c2']);
  return { a, redis, view };
}

describe('cluster membership', () => {
  it("shows a leader every live node's joined clients as changes, and drops a node once it no longer listens on its relay channel", async () => {
    // Arrange
    const a = await node('a');
    const b = await node('b');
    const view = new MemberView(await connection(), 'chorus:', 't');
    // Act / Assert
    await a.membership.add('t', 'c1', caps(1));
    await b.membership.add('t', 'c2', caps(2));
    await b.membership.add('t', 'c3', caps(3));
    await b.membership.add('other', 'c9', caps(9));
    const first = await view.read();
    expect(first.members).toEqual(
      new Map([
        ['c1', caps(1)],
        ['c2', caps(2)],
        ['c3', caps(3)],
      ]),
    );
    expect(ids(first)).toEqual({ joined: ['c1', 'c2', 'c3'], left: [], members: ['c1', 'c2', 'c3'] });
    await b.membership.remove('t', 'c2');
    expect(ids(await view.read())).toEqual({ joined: [], left: ['c2'], members: ['c1', 'c3'] });
    expect(ids(await view.read())).toEqual({ joined: [], left: [], members: ['c1', 'c3'] });
    // b dies: Redis drops its subscription with its connection.
    const redis = await connection();
    await redis.hset('chorus:nodes', 'b', JSON.stringify({ seenAt: Date.now() }));
    b.subscriber.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    expect(ids(await view.read())).toEqual({ joined: [], left: ['c3'], members: ['c1'] });
    // Its records stay while it announced itself lately (it may come back), and go once it has been silent for long.
    expect(await redis.hkeys('chorus:members:t')).toEqual(['a', 'b']);
    await redis.hset('chorus:nodes', 'b', JSON.stringify({ seenAt: Date.now() - PRUNE_AFTER_MS - 1 }));
    expect(ids(await view.read())).toEqual({ joined: [], left: [], members: ['c1'] });
    expect(await redis.hkeys('chorus:members:t')).toEqual(['a']);
    expect(await redis.exists('chorus:members:t:b', 'chorus:members:t:b:log')).toBe(0);
  });

  it('keeps a client that two nodes hold until both have let it go', async () => {
    const a = await node('a');
    const b = await node('b');
    const view = new MemberView(await connection(), 'chorus:', 't');
    await a.membership.add('t', 'c1', caps(1));
    expect(ids(await view.read()).joined).toEqual(['c1']);
    // The client reconnects to b before a sees its old connection close.
    await b.membership.add('t', 'c1', caps(1));
    await a.membership.remove('t', 'c1');
    expect(ids(await view.read())).toEqual({ joined: [], left: [], members: ['c1'] });
    await b.membership.remove('t', 'c1');
    expect(ids(await view.read())).toEqual({ joined: [], left: ['c1'], members: [] });
  });

  it("reads a node's log from where it left off, and its hash whole after the node rewrote it (a new epoch, an emptied log)", async () => {
    // Arrange: node a's log is written whole after 3 entries.
    const { a, redis, view } = await viewOfTwoClients(3);
    // Act: two more entries pass the limit, so a writes its hash whole.
    a.local.set('c3', caps(3));
    await a.membership.add('t', 'c3', caps(3));
    a.local.delete('c1');
    await a.membership.remove('t', 'c1');
    // Assert
    expect(await redis.llen('chorus:members:t:a:log')).toBe(0);
    expect(ids(await view.read())).toEqual({ joined: ['c3'], left: ['c1'], members: ['c2', 'c3'] });
    // Emptied before the node serves a task again: everything it held leaves.
    await a.membership.replace('t', new Map());
    expect(ids(await view.read())).toEqual({ joined: [], left: ['c2', 'c3'], members: [] });
  });

  it("reads past a malformed log entry or hash field: the node's hash is read whole, the bad record counts as not joined, and later changes are read", async () => {
    // Arrange
    const { a, redis, view } = await viewOfTwoClients();
    // Act: a garbage log entry, a join with capabilities the protocol refuses, and a hash field that is not JSON.
    await redis.rpush('chorus:members:t:a:log', '{not json', JSON.stringify(['+', 'c7', { backend: 'cpu', modalities: ['smell'], numExamples: 1 }]));
    await redis.hset('chorus:members:t:a', 'c8', '{not json');
    await redis.hincrby('chorus:members:t', 'a', 2);
    a.local.set('c3', caps(3));
    await a.membership.add('t', 'c3', caps(3));
    const changes = await view.read();
    // Assert: c3 comes in from the hash; c7 was never in the hash, and c8's field cannot be read.
    expect(changes.malformed).toBe(3);
    expect(ids(changes)).toEqual({ joined: ['c3'], left: [], members: ['c1', 'c2', 'c3'] });
    a.local.delete('c1');
    await a.membership.remove('t', 'c1');
    const next = await view.read();
    expect(next.malformed).toBe(0);
    expect(ids(next)).toEqual({ joined: [], left: ['c1'], members: ['c2', 'c3'] });
  });

  it('agrees with the nodes’ own records under seeded random joins, leaves and rewrites on three nodes', async () => {
    const rng = createRng(5);
    const nodes = [await node('a', 7), await node('b', 7), await node('c', 7)];
    const view = new MemberView(await connection(), 'chorus:', 't');
    const seen = new Set<string>();
    for (let step = 0; step < 300; step++) {
      const n = nodes[Math.floor(rng() * nodes.length)]!;
      const id = `c${Math.floor(rng() * 25)}`;
      const roll = rng();
      if (roll < 0.03) await n.membership.replace('t', n.local);
      else if (n.local.has(id)) {
        n.local.delete(id);
        await n.membership.remove('t', id);
      } else {
        n.local.set(id, caps(step));
        await n.membership.add('t', id, caps(step));
      }
      if (step % 7 === 0 || step === 299) {
        const changes = await view.read();
        for (const [joined] of changes.joined) seen.add(joined);
        for (const left of changes.left) seen.delete(left);
        const union = new Set(nodes.flatMap((x) => [...x.local.keys()]));
        expect([...changes.members.keys()].sort()).toEqual([...union].sort());
        // The changes, applied in turn, give the members.
        expect([...seen].sort()).toEqual([...union].sort());
      }
    }
  });
});
