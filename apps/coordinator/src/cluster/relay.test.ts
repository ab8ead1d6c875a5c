/** The update relay's wire: framing, probe outcomes, and what a leader does with malformed requests. */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import { ackError } from '@chorus/protocol';
import type { ParsedSplitStep, ParsedUpdate } from '@chorus/protocol';
import { useRedisServer } from '../testing/redisServer.js';
import { UpdateRelay, decodeProbe, encodeProbe, frame, unframe } from './relay.js';
import type { UpdateRelayOptions } from './relay.js';

const { server, cleanup } = useRedisServer({ beforeAll, afterAll, afterEach });
const silent = pino({ level: 'silent' });

function connection(): Redis {
  const r = new Redis(server().url, { maxRetriesPerRequest: null });
  cleanup.push(() => r.disconnect());
  return r;
}

/** A relay on node `nodeId` with its own connections (closed after the test); `handle` answers null unless given. */
async function relayOn(
  nodeId: string,
  options: Partial<Pick<UpdateRelayOptions, 'handle' | 'handleSplit' | 'handleHeld' | 'handlePartial' | 'timeoutMs'>> = {},
): Promise<UpdateRelay> {
  const relay = await UpdateRelay.start({
    publisher: connection(),
    subscriber: connection(),
    nodeId,
    prefix: 'chorus:',
    logger: silent,
    handle: () => null,
    ...options,
  });
  cleanup.push(() => relay.close());
  return relay;
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
    await relayOn('leader', {
      handle: (clientId) => {
        judged.push(clientId);
        return { ok: true, serverRound: 1, roundId: 't.r1.a1' };
      },
    });
    const follower = await relayOn('follower', { timeoutMs: 2000 });
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

const STEP: ParsedSplitStep = {
  type: 'split-forward',
  protocolVersion: PROTOCOL_VERSION,
  taskId: 't',
  roundId: 't.r1.a1',
  step: 0,
  batchSize: 2,
  payload: new Uint8Array([7, 7, 7]),
};

describe('split steps through the relay', () => {
  it("carries a step's payload to the leader's edge and the edge's half back, its refusals with their codes, and NODE_UNAVAILABLE where no edge runs", async () => {
    const seen: { clientId: string; payload: number[] }[] = [];
    await relayOn('leader', {
      handleSplit: (clientId, step) => {
        seen.push({ clientId, payload: [...step.payload] });
        if (step.step === 9) return ackError('SPLIT_STEP', 'step 9 is out of order');
        return { ok: true, step: step.step, payload: new Uint8Array([step.step, 42, 43]) };
      },
    });
    await relayOn('plain');
    const follower = await relayOn('follower', { timeoutMs: 2000 });
    const ok = await follower.sendSplit('leader', 'c1', { ...STEP, step: 3 });
    expect(ok.ok && { step: ok.step, payload: [...ok.payload] }).toEqual({ step: 3, payload: [3, 42, 43] });
    const refused = await follower.sendSplit('leader', 'c1', { ...STEP, step: 9 });
    expect(refused.ok ? 'ok' : refused.error.code).toBe('SPLIT_STEP');
    // A step that is not one (a batch of 0) is refused before the edge sees it.
    const bad = await follower.sendSplit('leader', 'c2', { ...STEP, batchSize: 0 });
    expect(bad.ok ? 'ok' : bad.error.code).toBe('BAD_PAYLOAD');
    expect(seen).toEqual([
      { clientId: 'c1', payload: [7, 7, 7] },
      { clientId: 'c1', payload: [7, 7, 7] },
    ]);
    const elsewhere = await follower.sendSplit('plain', 'c1', STEP);
    expect(elsewhere.ok ? 'ok' : elsewhere.error.code).toBe('NODE_UNAVAILABLE');
    // Uploads still travel as before beside steps.
    expect((await follower.send('leader', 'c1', UPDATE)).ok ? 'ok' : 'refused').toBe('refused');
  });
});

describe('partial sums through the relay', () => {
  it('tells the leader of a held upload (header, size and norm, no bytes), and brings a node’s partial sum back, its refusals as NODE_UNAVAILABLE', async () => {
    const held: unknown[] = [];
    await relayOn('leader', {
      handleHeld: (clientId, update, facts) => {
        held.push({ clientId, roundId: update.roundId, ...facts });
        return { ok: true, serverRound: 1, roundId: update.roundId };
      },
    });
    await relayOn('holder', {
      handlePartial: async (request) => {
        if (request.clientIds.includes('missing')) throw new Error('this node holds no upload of missing');
        return new Uint8Array([request.clientIds.length, 1, 2]);
      },
    });
    await relayOn('plain');
    const follower = await relayOn('follower', { timeoutMs: 2000 });
    const { update: _bytes, ...header } = UPDATE;
    expect(await follower.sendHeld('leader', 'c1', header, { norm: 0.5, byteLength: 40 })).toEqual({ ok: true, serverRound: 1, roundId: 't.r1.a1' });
    expect(held).toEqual([{ clientId: 'c1', roundId: 't.r1.a1', heldBy: 'follower', norm: 0.5, byteLength: 40 }]);
    // A header that is not an update's, or a negative size, is refused before the engine sees it.
    const bad = await follower.sendHeld('leader', 'c2', { ...header, serverRound: -1 }, { norm: 0.5, byteLength: 40 });
    expect(bad.ok ? 'ok' : bad.error.code).toBe('BAD_PAYLOAD');
    const badSize = await follower.sendHeld('leader', 'c2', header, { norm: 0.5, byteLength: -1 });
    expect(badSize.ok ? 'ok' : badSize.error.code).toBe('BAD_PAYLOAD');
    expect(held).toHaveLength(1);

    const request = { taskId: 't', roundId: 't.r1.a1', serverRound: 1, globalHash: 'h', clientIds: ['c1', 'c2'] };
    const partial = await follower.requestPartial('holder', request);
    expect(partial.ok && [...partial.payload]).toEqual([2, 1, 2]);
    const refused = await follower.requestPartial('holder', { ...request, clientIds: ['missing'] });
    expect(refused.ok ? 'ok' : refused.error).toEqual({ code: 'NODE_UNAVAILABLE', message: 'no partial sum: this node holds no upload of missing' });
    const none = await follower.requestPartial('plain', request);
    expect(none.ok ? 'ok' : none.error.code).toBe('NODE_UNAVAILABLE');
    // A malformed request (no client list) is answered BAD_PAYLOAD.
    const malformed = await follower.requestPartial('holder', { ...request, clientIds: 'c1' as unknown as string[] });
    expect(malformed.ok ? 'ok' : malformed.error.code).toBe('BAD_PAYLOAD');
  });
});
