/** The update relay's wire: framing, probe outcomes, and what a leader does with malformed requests. */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { ParsedUpdate } from '@chorus/protocol';
import { useRedisServer } from '../testing/redisServer.js';
import { UpdateRelay, decodeProbe, encodeProbe, frame, unframe } from './relay.js';

const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });
const silent = pino({ level: 'silent' });

function connection(): Redis {
  const r = new Redis(server().url, { maxRetriesPerRequest: null });
  cleanup.push(() => r.disconnect());
  return r;
}

const UPDATE: ParsedUpdate = {
  type: 'update',
  protocolVersion: PROTOCOL_VERSION,
  taskId: 't',
  roundId: 't.r1.a1',
  serverRound: 1,
  numExamples: 3,
  metrics: {},
  update: new Uint8Array([1, 2, 3, 4]),
};

describe('relay framing', () => {
  it('round-trips a header and bytes, and refuses a short or overrunning frame', () => {
    const { header, bytes } = unframe(frame({ a: 1 }, new Uint8Array([9, 8])));
    expect(header).toEqual({ a: 1 });
    expect([...bytes]).toEqual([9, 8]);
    expect(() => unframe(Buffer.from([0, 0]))).toThrow('short message');
    const overrun = Buffer.alloc(6);
    overrun.writeUInt32BE(100, 0);
    expect(() => unframe(overrun)).toThrow('header runs past the message');
  });

  it('round-trips a probe outcome, and reads anything else as no probe (the leader then probes itself)', () => {
    const probabilities = new Float32Array([0.25, 0.75]);
    const explanations = [new Float32Array([1, -1])];
    const back = decodeProbe(encodeProbe({ globalHash: 'h', outcome: { ok: true, probabilities, explanations } }));
    expect(back?.globalHash).toBe('h');
    expect(back?.outcome.ok && [...back.outcome.probabilities]).toEqual([0.25, 0.75]);
    for (const bad of [
      null,
      'x',
      { globalHash: 1 },
      { globalHash: 'h', outcome: { ok: true, probabilities: 'abc' } },
      { globalHash: 'h', outcome: { ok: 'yes' } },
    ])
      expect(decodeProbe(bad)).toBeNull();
  });
});

describe('the update relay', () => {
  it("passes an upload to the leader and back, answers a malformed relayed payload BAD_PAYLOAD without judging it, and drops garbage on a node's channel", async () => {
    const judged: string[] = [];
    const leader = await UpdateRelay.start({
      publisher: connection(),
      subscriber: connection(),
      nodeId: 'leader',
      prefix: 'chorus:',
      logger: silent,
      handle: (clientId) => {
        judged.push(clientId);
        return { ok: true, serverRound: 1, roundId: 't.r1.a1' };
      },
    });
    cleanup.push(() => leader.close());
    const follower = await UpdateRelay.start({
      publisher: connection(),
      subscriber: connection(),
      nodeId: 'follower',
      prefix: 'chorus:',
      logger: silent,
      timeoutMs: 2000,
      handle: () => null,
    });
    cleanup.push(() => follower.close());
    expect(await follower.send('leader', 'c1', UPDATE)).toEqual({ ok: true, serverRound: 1, roundId: 't.r1.a1' });
    // A payload that is not an update (a negative round) is refused by the leader before its engine sees it.
    const bad = await follower.send('leader', 'c2', { ...UPDATE, serverRound: -1 });
    expect(bad.ok ? 'ok' : bad.error.code).toBe('BAD_PAYLOAD');
    // Garbage on the leader's channel is dropped; the relay keeps working.
    await connection().publish('chorus:node:leader', Buffer.from([1, 2, 3]));
    expect((await follower.send('leader', 'c3', UPDATE)).ok).toBe(true);
    expect(judged).toEqual(['c1', 'c3']);
    // Nobody listens on a gone node's channel: the upload is refused at once, not after the timeout.
    const started = Date.now();
    const gone = await follower.send('nobody', 'c4', UPDATE);
    expect(gone.ok ? 'ok' : gone.error.code).toBe('NODE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
