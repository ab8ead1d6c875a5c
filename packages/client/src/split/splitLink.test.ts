import { PROTOCOL_VERSION, ackError } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import type { ClientSocket } from '../connection.js';
import type { ClientError } from '../errors.js';
import { isClientError } from '../errors.js';
import { EDGE_BUSY_MAX_WAIT_MS, createSplitLink, socketStepSender } from './splitLink.js';
import type { SplitLinkOptions, SplitStepSender } from './splitLink.js';

const BYTES = Uint8Array.of(1, 2, 3);
const ANSWER = Uint8Array.of(9, 8);

/** A fake clock that the fake sleep advances, and what the link slept. */
function fakeTime(start = 1000): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let at = start;
  const slept: number[] = [];
  return { now: () => at, sleep: (ms) => (slept.push(ms), (at += ms), Promise.resolve()), slept };
}

/** A sender answering from `answers` in turn (a function answers by throwing or returning), recording what it was sent. */
function scripted(answers: readonly unknown[]): { send: SplitStepSender; sent: { event: string; payload: unknown; timeoutMs: number }[] } {
  const sent: { event: string; payload: unknown; timeoutMs: number }[] = [];
  let i = 0;
  const send: SplitStepSender = (event, payload, timeoutMs) => {
    sent.push({ event, payload, timeoutMs });
    const a = answers[Math.min(i++, answers.length - 1)];
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  return { send, sent };
}

function link(send: SplitStepSender, time: ReturnType<typeof fakeTime>, overrides: Partial<SplitLinkOptions> = {}) {
  return createSplitLink({ taskId: 't', roundId: 'r.1', send, stepTimeoutMs: 500, deadlineAt: 1_000_000, now: time.now, sleep: time.sleep, ...overrides });
}

async function failure(p: Promise<unknown>): Promise<ClientError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isClientError(err, 'CLIENT_SPLIT_FAILED'), String(err)).toBe(true);
  return err as ClientError;
}

describe('createSplitLink', () => {
  it('sends a step half as the protocol’s payload, with the step timeout, and returns the edge’s bytes', async () => {
    // Arrange
    const time = fakeTime();
    const { send, sent } = scripted([{ ok: true, step: 3, payload: ANSWER }]);
    // Act
    const out = await link(send, time).backward(3, 4, BYTES);
    // Assert
    expect(out).toEqual(ANSWER);
    expect(sent).toEqual([
      {
        event: 'splitBackward',
        payload: { type: 'split-backward', protocolVersion: PROTOCOL_VERSION, taskId: 't', roundId: 'r.1', step: 3, batchSize: 4, payload: BYTES },
        timeoutMs: 500,
      },
    ]);
  });

  it('accepts an ArrayBuffer payload (what a browser receives) as bytes', async () => {
    const time = fakeTime();
    const { send } = scripted([{ ok: true, step: 0, payload: ANSWER.slice().buffer }]);
    expect(await link(send, time).forward(0, 1, BYTES)).toEqual(ANSWER);
  });

  it('sends the same half again after EDGE_BUSY, waiting 50 ms, doubling, at most 1 s', async () => {
    // Arrange: busy seven times, then the answer.
    const time = fakeTime();
    const busy = ackError('EDGE_BUSY', 'queue full');
    const { send, sent } = scripted([busy, busy, busy, busy, busy, busy, busy, { ok: true, step: 0, payload: ANSWER }]);
    // Act
    const out = await link(send, time).forward(0, 2, BYTES);
    // Assert
    expect(out).toEqual(ANSWER);
    expect(time.slept).toEqual([50, 100, 200, 400, 800, EDGE_BUSY_MAX_WAIT_MS, EDGE_BUSY_MAX_WAIT_MS]);
    expect(sent).toHaveLength(8);
    expect(sent.every((s) => s.payload === sent[0]!.payload)).toBe(true);
  });

  it('gives up with EDGE_BUSY once the next wait would end past the round’s deadline', async () => {
    // Arrange: 120 ms before the deadline: one 50 ms wait fits, the 100 ms one does not.
    const time = fakeTime(0);
    const { send, sent } = scripted([ackError('EDGE_BUSY', 'queue full')]);
    // Act
    const err = await failure(link(send, time, { deadlineAt: 120 }).forward(0, 2, BYTES));
    // Assert
    expect(err.protocolCode).toBe('EDGE_BUSY');
    expect(time.slept).toEqual([50]);
    expect(sent).toHaveLength(2);
  });

  it('gives the round up on any other refusal, a missing acknowledgement or a malformed one, sending nothing again', async () => {
    const cases: { answer: unknown; protocolCode: string | undefined }[] = [
      { answer: ackError('SPLIT_STEP', 'out of order'), protocolCode: 'SPLIT_STEP' },
      { answer: ackError('UPDATE_MALFORMED', 'bad bytes'), protocolCode: 'UPDATE_MALFORMED' },
      { answer: new Error('operation has timed out'), protocolCode: undefined },
      { answer: { ok: true, step: 1, payload: ANSWER }, protocolCode: undefined },
      { answer: { ok: true, step: 0, payload: [1, 2] }, protocolCode: undefined },
      { answer: { ok: false, error: { code: 'NOT_A_CODE', message: '' } }, protocolCode: undefined },
      { answer: null, protocolCode: undefined },
    ];
    for (const c of cases) {
      // Arrange
      const time = fakeTime();
      const { send, sent } = scripted([c.answer, { ok: true, step: 0, payload: ANSWER }]);
      // Act
      const err = await failure(link(send, time).forward(0, 2, BYTES));
      // Assert
      expect(err.protocolCode, JSON.stringify(c.answer)).toBe(c.protocolCode);
      expect(sent).toHaveLength(1);
      expect(time.slept).toEqual([]);
    }
  });

  it('sends nothing once the round is abandoned, nor after an EDGE_BUSY wait in which it was', async () => {
    // Arrange
    const time = fakeTime();
    let cancelled = false;
    const { send, sent } = scripted([ackError('EDGE_BUSY', 'queue full')]);
    const l = link(send, time, { cancelled: () => cancelled, sleep: (ms) => ((cancelled = true), time.sleep(ms)) });
    // Act
    await failure(l.forward(0, 2, BYTES));
    await failure(l.backward(0, 2, BYTES));
    // Assert
    expect(sent).toHaveLength(1);
  });
});

describe('socketStepSender', () => {
  it('emits with the timeout on the connected socket, and rejects at once without one', async () => {
    // Arrange: a fake socket recording timeout(ms).emitWithAck(event, payload).
    const calls: unknown[] = [];
    const socket = {
      connected: true,
      timeout: (ms: number) => ({ emitWithAck: (event: string, payload: unknown) => (calls.push([ms, event, payload]), Promise.resolve({ ok: true })) }),
    } as unknown as ClientSocket;
    let current: ClientSocket | null = socket;
    const send = socketStepSender(() => current);
    const payload = { type: 'split-forward' as const, protocolVersion: 6, taskId: 't', roundId: 'r', step: 0, batchSize: 1, payload: BYTES };
    // Act
    const ack = await send('splitForward', payload, 250);
    current = { ...socket, connected: false } as unknown as ClientSocket;
    const offline = await send('splitForward', payload, 250).catch((e: unknown) => e);
    current = null;
    const none = await send('splitBackward', payload, 250).catch((e: unknown) => e);
    // Assert
    expect(ack).toEqual({ ok: true });
    expect(calls).toEqual([[250, 'splitForward', payload]]);
    expect(offline).toBeInstanceOf(Error);
    expect(none).toBeInstanceOf(Error);
  });
});
