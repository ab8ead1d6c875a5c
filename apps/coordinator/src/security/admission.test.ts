import { createHash } from 'node:crypto';
import { solveChallenge } from '@chorus/client';
import { PROTOCOL_VERSION, proofInput } from '@chorus/protocol';
import type { ProtocolErrorCode } from '@chorus/protocol';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { tensor } from '@chorus/fl-core';
import { startCoordinator } from '../server.js';
import type { Coordinator, CoordinatorOptions } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { parseTask } from '../task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { ConnectRefused, FakeClient } from '../testing/fakeClient.js';
import { CHALLENGE_TTL_MS, IdentityLimiter, checkProof, issueChallenge } from './admission.js';

const silent = pino({ level: 'silent' });
const caps = { backend: 'cpu', modalities: ['image' as const], numExamples: 10 };
const open: { coordinators: Coordinator[]; clients: FakeClient[] } = { coordinators: [], clients: [] };

afterEach(async () => {
  for (const cl of open.clients.splice(0)) cl.close();
  for (const c of open.coordinators.splice(0)) await c.close();
});

function makeTask(admission: Record<string, unknown>): TaskConfig {
  return parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 3,
    clientsPerRound: 2,
    minClients: 2,
    roundDeadlineMs: 10_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    admission,
  });
}

async function start(task: TaskConfig, extra: Partial<CoordinatorOptions> = {}): Promise<Coordinator> {
  const c = await startCoordinator({
    tasks: [{ config: task, joinToken: 'join-secret', initialGlobal: () => [tensor('image/w', [2], new Float32Array([1, 2]))] }],
    store: new MemoryStore(),
    adminToken: 'admin-secret',
    logger: silent,
    processMetrics: false,
    ...extra,
  });
  open.coordinators.push(c);
  return c;
}

/** Connects and says hello; the code of the refusal (handshake or hello), or 'ok'. */
async function tryJoin(c: Coordinator, token: string, headers?: Record<string, string>): Promise<ProtocolErrorCode | 'ok'> {
  let client: FakeClient;
  try {
    client = await FakeClient.connect(c.url, { taskId: 'demo', token }, headers);
  } catch (err) {
    if (err instanceof ConnectRefused && err.data) return err.data.code;
    throw err;
  }
  open.clients.push(client);
  const res = await client.hello(caps);
  return res.ok ? 'ok' : res.error.code;
}

async function post(c: Coordinator, path: string, body?: unknown): Promise<Response> {
  return fetch(`${c.url}${path}`, {
    method: 'POST',
    headers: { authorization: 'Bearer admin-secret', 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('checkProof', () => {
  const sha = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());

  it('accepts exactly the nonces that solve the connection’s own unexpired challenge', async () => {
    // Arrange
    const issued = issueChallenge(8, 1000);
    const nonce = await solveChallenge(issued.value, 8);
    let wrong = 0;
    while (sha(proofInput(issued.value, String(wrong)))[0] === 0) wrong++;
    // Act / Assert
    expect(checkProof(issued, { challenge: issued.value, nonce }, 1000)).toBeNull();
    expect(checkProof(issued, { challenge: issued.value, nonce: String(wrong) }, 1000)?.code).toBe('PROOF_INVALID');
    expect(checkProof(issued, { challenge: 'another', nonce }, 1000)?.code).toBe('PROOF_INVALID');
    expect(checkProof(issued, { challenge: issued.value, nonce }, 1000 + CHALLENGE_TTL_MS + 1)?.code).toBe('PROOF_INVALID');
    expect(checkProof(issued, undefined, 1000)?.code).toBe('PROOF_REQUIRED');
    expect(checkProof(undefined, { challenge: issued.value, nonce }, 1000)?.code).toBe('PROOF_REQUIRED');
  });
});

describe('IdentityLimiter', () => {
  it('checks without taking, keys the open link by address, and refills per hour', async () => {
    // Arrange
    let now = 0;
    const limiter = new IdentityLimiter(
      makeTask({ newIdentitiesPerAddress: { burst: 2, perHour: 1 }, newIdentitiesPerTask: { burst: 3, perHour: 3600 } }).admission,
      () => now,
    );
    // Act
    const checks: (string | null)[] = [];
    for (const address of ['a', 'a', 'a']) {
      checks.push((await limiter.check(address, true))?.code ?? null);
      if (checks.at(-1) === null) await limiter.take(address, true);
    }
    const otherAddress = await limiter.check('b', true);
    await limiter.take('b', true);
    const taskFull = await limiter.check('c', false);
    now += 1000;
    const afterASecond = await limiter.check('c', false);
    // Assert
    expect(checks).toEqual([null, null, 'IDENTITY_LIMIT']);
    expect(otherAddress).toBeNull();
    expect(taskFull?.code).toBe('IDENTITY_LIMIT');
    expect(afterASecond).toBeNull();
  });

  it('takes from the task and the address buckets together or from neither, and gives back no more than capacity', async () => {
    // Arrange
    const admission = makeTask({ newIdentitiesPerAddress: { burst: 1, perHour: 1 }, newIdentitiesPerTask: { burst: 2, perHour: 1 } }).admission;
    const limiter = new IdentityLimiter(admission, () => 0);
    const full = new IdentityLimiter(admission, () => 0);
    const codes: (string | null)[] = [];
    const take = async (l: IdentityLimiter, address: string): Promise<void> => {
      codes.push((await l.take(address, true))?.code ?? null);
    };
    // Act
    await take(limiter, 'a');
    await take(limiter, 'a'); // the address is spent: the task's second place stays
    await take(limiter, 'b');
    await take(limiter, 'c'); // the task is spent
    await limiter.giveBack('b', true);
    await take(limiter, 'c');
    await take(limiter, 'd');
    await full.giveBack('a', true);
    await take(full, 'b');
    await take(full, 'c');
    await take(full, 'd');
    // Assert
    expect(codes).toEqual([null, 'IDENTITY_LIMIT', null, 'IDENTITY_LIMIT', null, 'IDENTITY_LIMIT', null, null, 'IDENTITY_LIMIT']);
  });
});

describe('admission over real sockets', () => {
  it('stores at most the per-address burst of identities when 200 connections share one join token', async () => {
    // Arrange
    const c = await start(makeTask({ proofOfWorkBits: 2, newIdentitiesPerAddress: { burst: 4, perHour: 4 } }));
    // Act
    const codes: string[] = [];
    for (let i = 0; i < 200; i++) {
      codes.push(await tryJoin(c, 'join-secret'));
      open.clients.pop()?.close();
    }
    // Assert
    expect(codes.filter((x) => x === 'ok')).toHaveLength(4);
    expect(codes.slice(4).every((x) => x === 'IDENTITY_LIMIT')).toBe(true);
    const listed = (await (await fetch(`${c.url}/api/tasks/demo/clients`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as {
      clients: unknown[];
    };
    expect(listed.clients).toHaveLength(4);
  });

  it('names new identities from the coordinator’s id source when one is given (simulations replay their cohorts)', async () => {
    // Arrange
    let n = 0;
    const c = await start(makeTask({ proofOfWorkBits: 0 }), { newClientId: () => `c-sim-${n++}` });
    // Act
    await tryJoin(c, 'join-secret');
    await tryJoin(c, 'join-secret');
    // Assert
    expect(open.clients.map((cl) => cl.clientId)).toEqual(['c-sim-0', 'c-sim-1']);
  });

  it('behind a trusted proxy, keys the per-address quota on X-Forwarded-For', async () => {
    // Arrange
    const c = await start(makeTask({ proofOfWorkBits: 0, newIdentitiesPerAddress: { burst: 1, perHour: 1 } }), { trustProxy: true });
    // Act
    const codes = [
      await tryJoin(c, 'join-secret', { 'x-forwarded-for': '203.0.113.1' }),
      await tryJoin(c, 'join-secret', { 'x-forwarded-for': '203.0.113.1, 10.0.0.1' }),
      await tryJoin(c, 'join-secret', { 'x-forwarded-for': '203.0.113.2' }),
    ];
    // Assert
    expect(codes).toEqual(['ok', 'IDENTITY_LIMIT', 'ok']);
  });

  it('asks a new identity for proof of work, refuses missing, wrong and replayed proofs, and stores nothing then', async () => {
    // Arrange
    const c = await start(makeTask({ proofOfWorkBits: 8, newIdentitiesPerAddress: null }));
    const client = await FakeClient.connect(c.url, { taskId: 'demo', token: 'join-secret' });
    open.clients.push(client);
    const challenge = await client.socket.emitWithAck('challenge', { type: 'challenge', protocolVersion: PROTOCOL_VERSION });
    if (!challenge.ok) throw new Error('no challenge');
    const nonce = await solveChallenge(challenge.challenge, challenge.difficulty);
    // Act
    const none = await client.hello(caps, undefined, null);
    const stale = await client.hello(caps, undefined, { challenge: challenge.challenge, nonce });
    const fresh = await client.socket.emitWithAck('challenge', { type: 'challenge', protocolVersion: PROTOCOL_VERSION });
    if (!fresh.ok) throw new Error('no challenge');
    const otherChallenge = await client.hello(caps, undefined, { challenge: challenge.challenge, nonce });
    const storedAfterRefusals = c.engines.get('demo')!.waitingCount;
    const paid = await client.hello(caps);
    // Assert
    expect(challenge.difficulty).toBe(8);
    expect(none.ok ? 'ok' : none.error.code).toBe('PROOF_REQUIRED');
    // The first hello used up the challenge, so its answer no longer counts.
    expect(stale.ok ? 'ok' : stale.error.code).toBe('PROOF_REQUIRED');
    expect(otherChallenge.ok ? 'ok' : otherChallenge.error.code).toBe('PROOF_INVALID');
    expect(storedAfterRefusals).toBe(0);
    expect(paid.ok).toBe(true);
  });

  it('admits by invitation only: quotas, coded refusals, and revocation that ends the identities it admitted', async () => {
    // Arrange
    const c = await start(makeTask({ openLink: false, newIdentitiesPerAddress: { burst: 1, perHour: 1 } }));
    const created = await post(c, '/api/tasks/demo/invitations', { quota: 2, label: 'volunteer A' });
    const { token, invitation } = (await created.json()) as { token: string; invitation: { invitationId: string; used: number } };
    const badBody = await post(c, '/api/tasks/demo/invitations', { quota: 0 });
    // Act
    const openLink = await tryJoin(c, 'join-secret');
    const first = await tryJoin(c, token);
    const member = open.clients.at(-1)!;
    const second = await tryJoin(c, token);
    const third = await tryJoin(c, token);
    const listed = (await (await fetch(`${c.url}/api/tasks/demo/invitations`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as {
      invitations: Record<string, unknown>[];
    };
    const disconnected = new Promise<void>((resolve) => member.socket.once('disconnect', () => resolve()));
    const revoked = await post(c, `/api/tasks/demo/invitations/${invitation.invitationId}/revoke`);
    await disconnected;
    const unknownRevoke = await post(c, '/api/tasks/demo/invitations/inv-nope/revoke');
    const afterRevoke = await tryJoin(c, token);
    let resume: string = 'ok';
    try {
      await FakeClient.connect(c.url, { taskId: 'demo', token: 'join-secret', clientId: member.clientId!, clientSecret: member.clientSecret! });
    } catch (err) {
      resume = (err as ConnectRefused).data?.code ?? 'none';
    }
    // Assert
    expect(created.status).toBe(201);
    expect(invitation.used).toBe(0);
    expect(badBody.status).toBe(400);
    // The per-address quota is the open link's price; an invitation's quota prices its own identities.
    expect([openLink, first, second, third]).toEqual(['OPEN_LINK_CLOSED', 'ok', 'ok', 'INVITATION_EXHAUSTED']);
    expect(listed.invitations).toHaveLength(1);
    expect(listed.invitations[0]).toMatchObject({ used: 2, quota: 2, label: 'volunteer A', revokedAt: null });
    expect(listed.invitations[0]).not.toHaveProperty('tokenHash');
    expect(revoked.status).toBe(200);
    expect(unknownRevoke.status).toBe(404);
    expect(afterRevoke).toBe('INVITATION_REVOKED');
    expect(resume).toBe('INVITATION_REVOKED');
  });
});
