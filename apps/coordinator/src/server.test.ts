import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, decodeUpdate, encodeUpdate, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256HexSync } from './engine/roundEngine.js';
import type { ProtocolErrorCode } from '@chorus/protocol';
import { startCoordinator } from './server.js';
import type { Coordinator, CoordinatorOptions } from './server.js';
import { MemoryStore } from './store/memoryStore.js';
import { SqliteStore } from './store/sqliteStore.js';
import type { CoordinatorStore } from './store/types.js';
import { parseTask } from './task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { ConnectRefused, FakeClient, constantDelta, globalOf } from './testing/fakeClient.js';

const silent = pino({ level: 'silent' });
const open: { coordinators: Coordinator[]; clients: FakeClient[]; stores: CoordinatorStore[]; dirs: string[] } = {
  coordinators: [],
  clients: [],
  stores: [],
  dirs: [],
};

afterEach(async () => {
  for (const c of open.clients.splice(0)) c.close();
  for (const c of open.coordinators.splice(0)) await c.close();
  for (const s of open.stores.splice(0)) s.close();
  for (const d of open.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// Hand-checkable global: one tensor per group.
const initialGlobal = (): Tensor[] => [
  tensor('image/w', [2], new Float32Array([1, 2])),
  tensor('text/w', [1], new Float32Array([0])),
  tensor('fusion/b', [2], new Float32Array([0.5, -0.5])),
];

function makeTask(overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image', 'text'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 3,
    clientsPerRound: 2,
    minClients: 2,
    overSelection: 0,
    roundDeadlineMs: 10_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    normBound: 100,
    seed: 1,
    // Every test client connects from 127.0.0.1: no per-address quota of new identities (tested on its own);
    // the scripted clients' deltas are parallel (constant values), which similarity damping would take for copies.
    admission: { newIdentitiesPerAddress: null, similarityDamping: false },
    ...overrides,
  });
}

async function start(task: TaskConfig, extra: Partial<CoordinatorOptions> = {}, store: CoordinatorStore = new MemoryStore()): Promise<Coordinator> {
  if (!open.stores.includes(store)) open.stores.push(store);
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: 'join-secret', initialGlobal }],
    store,
    adminToken: 'admin-secret',
    logger: silent,
    retryDelayMs: 10,
    processMetrics: false,
    ...extra,
  });
  open.coordinators.push(coordinator);
  return coordinator;
}

async function joinClient(
  c: Coordinator,
  modalities: ('image' | 'text' | 'audio')[] = ['image', 'text'],
  auth: Record<string, string> = {},
): Promise<FakeClient> {
  const client = await FakeClient.connect(c.url, { taskId: 'demo', token: 'join-secret', ...auth });
  open.clients.push(client);
  const res = await client.hello({ backend: 'cpu', modalities, numExamples: 10 });
  expect(res.ok).toBe(true);
  return client;
}

async function admin(c: Coordinator, path: string): Promise<Response> {
  return fetch(`${c.url}${path}`, { headers: { authorization: 'Bearer admin-secret' } });
}

async function refusalOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConnectRefused) return err.data?.code;
    throw err;
  }
  return undefined;
}

function codeOf(res: { ok: boolean; error?: { code: ProtocolErrorCode } }): string {
  return res.ok ? 'ok' : res.error!.code;
}

describe('coordinator over real sockets', () => {
  it('sends the task’s model options in the round config, LoRA α included, so clients train the model the coordinator assumes', async () => {
    // Arrange
    const c = await start(makeTask({ model: { base: 'tiny', adapterRank: 2, adapterAlpha: 16, namConcepts: 4, modalWeight: 0.5, head: 'linear' } }));
    const a = await joinClient(c);
    await joinClient(c);
    // Act
    const round = await a.roundStarts.next(5000, 'round start');
    // Assert
    expect(round.config).toMatchObject({ adapterAlpha: 16, modalWeight: 0.5, head: 'linear', learningRate: 0.1, batchSize: 8 });
  });

  it('completes a round: the global becomes the example-weighted mean per group and the hash changes', async () => {
    // Arrange
    const c = await start(makeTask());
    const hashBefore = c.engines.get('demo')!.globalHash;
    const a = await joinClient(c, ['image', 'text']);
    const b = await joinClient(c, ['image']);
    const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round start'), b.roundStarts.next(5000, 'round start')]);
    // Act: a sends +0.1 on every group it holds with 1 example; b sends +0.3 on image and fusion with 3.
    const acks = await Promise.all([
      a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.1), 1),
      b.submitDelta(rb, constantDelta(globalOf(rb), ['image'], 0.3), 3),
    ]);
    const end = await a.roundEnds.next(5000, 'round end');
    // Assert
    expect(acks.map(codeOf)).toEqual(['ok', 'ok']);
    expect(ra.serverRound).toBe(1);
    expect(ra.globalHash).toBe(hashBefore);
    expect(end).toMatchObject({ status: 'completed', serverRound: 1 });
    expect(end.globalHash).not.toBe(hashBefore);
    const res = await admin(c, '/api/tasks/demo/checkpoint');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(res.headers.get('x-chorus-sha256')).toBe(end.globalHash);
    expect(sha256HexSync(bytes)).toBe(end.globalHash);
    const global = decodeUpdate(bytes, { maxBytes: bytes.length }).tensors;
    // image: 1 + (0.1·1 + 0.3·3)/4 = +0.25; text: only a sent it, +0.1; fusion: +0.25.
    expect(global.map((t) => [t.name, [...t.values].map((v) => Number(v.toFixed(5)))])).toEqual([
      ['image/w', [1.25, 2.25]],
      ['text/w', [0.1]],
      ['fusion/b', [0.75, -0.25]],
    ]);
    // The next round starts from the new global.
    const next = await a.roundStarts.next(5000, 'round 2');
    expect(next.serverRound).toBe(2);
    expect(next.globalHash).toBe(end.globalHash);
  });

  it('refuses a stranger at the handshake with a code and stores nothing', async () => {
    // Arrange
    const store = new MemoryStore();
    const c = await start(makeTask(), {}, store);
    // Act
    const codes = await Promise.all([
      refusalOf(FakeClient.connect(c.url, undefined)),
      refusalOf(FakeClient.connect(c.url, { taskId: 'demo', token: 'wrong' })),
      refusalOf(FakeClient.connect(c.url, { taskId: 'nope', token: 'join-secret' })),
      refusalOf(FakeClient.connect(c.url, { taskId: 'demo', token: 'join-secret', clientId: 'c-forged', clientSecret: 'guess' })),
      refusalOf(FakeClient.connect(c.url, { taskId: 'demo', token: 42 as unknown as string })),
    ]);
    // Assert
    expect(codes).toEqual(['AUTH_REQUIRED', 'AUTH_INVALID', 'TASK_NOT_FOUND', 'AUTH_INVALID', 'BAD_PAYLOAD']);
    expect(store.listClients('demo')).toEqual([]);
    expect(c.engines.get('demo')!.waitingCount).toBe(0);
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/chorus_connections_refused_total\{code="AUTH_INVALID"\} 2/);
  });

  it('refuses every kind of bad update with its code and leaves the global untouched', async () => {
    // Arrange: seven clients, all invited; two valid updates are needed, only one arrives.
    const store = new MemoryStore();
    const c = await start(makeTask({ clientsPerRound: 7, minClients: 2, maxUpdateBytes: 2048, normBound: 10 }), { retryDelayMs: 60_000 }, store);
    const hashBefore = c.engines.get('demo')!.globalHash;
    const clients: FakeClient[] = [];
    for (let i = 0; i < 7; i++) clients.push(await joinClient(c, i === 6 ? ['image'] : ['image', 'text']));
    const rounds = await Promise.all(clients.map((cl) => cl.roundStarts.next(5000, 'round start')));
    const r = rounds[0]!;
    const global = globalOf(r);
    const [good, malformed, wrongShape, nonFinite, oversized, tooLong, wrongGroup] = clients as [FakeClient, ...FakeClient[]];
    const late = await joinClient(c, ['image']);

    // A valid encoding whose one marked value is swapped for NaN, with its checksum fixed up.
    const marked = constantDelta(global, ['image', 'text'], 0);
    marked[0] = tensor('image/w', [2], new Float32Array([1234.5, 0]));
    const nanBytes = encodeUpdate({ kind: 'delta', taskId: 'demo', round: 1, clientId: nonFinite!.clientId!, encoding: 'fp32', tensors: marked });
    const view = new DataView(nanBytes.buffer);
    let at = -1;
    for (let i = 0; i + 4 <= nanBytes.length; i++) if (view.getFloat32(i, true) === 1234.5) at = i;
    view.setFloat32(at, Number.NaN, true);
    view.setUint32(nanBytes.length - 4, crc32(nanBytes.subarray(0, nanBytes.length - 4)), true);

    // Act (the last selected client to upload closes the round, so outsiders go first)
    const acks = {
      good: await good.submitDelta(r, constantDelta(global, ['image', 'text'], 0.5), 5),
      duplicate: await good.submitDelta(r, constantDelta(global, ['image', 'text'], 0.5), 5),
      notSelected: await late.submitDelta(r, constantDelta(global, ['image'], 0.1), 5),
      unknownRound: await late.submitDelta({ ...r, roundId: 'demo.r9.a9' }, constantDelta(global, ['image'], 0.1), 5),
      malformed: await malformed!.submitBytes(r, new Uint8Array([1, 2, 3, 4, 5])),
      wrongShape: await wrongShape!.submitDelta(r, [tensor('image/w', [3], new Float32Array(3)), ...constantDelta(global, ['text'], 0).slice(1)], 5),
      nonFinite: await nonFinite!.submitBytes(r, nanBytes),
      oversized: await oversized!.submitBytes(r, new Uint8Array(3000)),
      norm: await tooLong!.submitDelta(r, constantDelta(global, ['image', 'text'], 100), 5),
      unheldModality: await wrongGroup!.submitDelta(r, constantDelta(global, ['image', 'text'], 0.1), 5),
    };
    const end = await good.roundEnds.next(5000, 'round end');
    const lateAck = await good.submitDelta(r, constantDelta(global, ['image', 'text'], 0.5), 5);

    // Assert
    expect(Object.fromEntries(Object.entries(acks).map(([k, v]) => [k, codeOf(v)]))).toEqual({
      good: 'ok',
      duplicate: 'DUPLICATE_UPDATE',
      malformed: 'UPDATE_MALFORMED',
      wrongShape: 'UPDATE_SHAPE',
      nonFinite: 'UPDATE_NON_FINITE',
      oversized: 'UPDATE_TOO_LARGE',
      norm: 'UPDATE_NORM',
      unheldModality: 'UPDATE_SHAPE',
      notSelected: 'NOT_SELECTED',
      unknownRound: 'ROUND_CLOSED',
    });
    expect(codeOf(lateAck)).toBe('LATE_UPDATE');
    expect(end).toMatchObject({ status: 'retry', serverRound: 1, globalHash: hashBefore });
    expect(c.engines.get('demo')!.globalHash).toBe(hashBefore);
    expect(store.latestCheckpoint('demo')!.serverRound).toBe(0);
    const refused = store
      .listUpdates('demo')
      .filter((u) => u.status === 'rejected')
      .map((u) => u.code)
      .sort();
    expect(refused).toEqual(
      [
        'DUPLICATE_UPDATE',
        'UPDATE_MALFORMED',
        'UPDATE_SHAPE',
        'UPDATE_NON_FINITE',
        'UPDATE_TOO_LARGE',
        'UPDATE_NORM',
        'UPDATE_SHAPE',
        'NOT_SELECTED',
        'ROUND_CLOSED',
        'LATE_UPDATE',
      ].sort(),
    );
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/chorus_rejections_total\{task="demo",code="UPDATE_SHAPE"\} 2/);
    expect(metrics).toMatch(/chorus_rounds_total\{task="demo",status="retry"\} 1/);
  });

  it('refuses an update after the deadline as late, then retries the round', async () => {
    // Arrange
    const c = await start(makeTask({ roundDeadlineMs: 150 }), { retryDelayMs: 60_000 });
    const a = await joinClient(c);
    const b = await joinClient(c);
    const r = await a.roundStarts.next(5000, 'round start');
    await b.roundStarts.next(5000, 'round start');
    const end = await a.roundEnds.next(5000, 'round end');
    // Act
    const ack = await a.submitDelta(r, constantDelta(globalOf(r), ['image', 'text'], 0.1), 1);
    // Assert
    expect(end).toMatchObject({ status: 'retry' });
    expect(end.reason).toMatch(/deadline/);
    expect(codeOf(ack)).toBe('LATE_UPDATE');
  });

  it('drops a client that disconnects and completes with the rest before the deadline', async () => {
    // Arrange: three invited, two needed; one vanishes.
    const c = await start(makeTask({ clientsPerRound: 3, minClients: 2, roundDeadlineMs: 60_000 }));
    const [a, b, gone] = [await joinClient(c), await joinClient(c), await joinClient(c)];
    const rounds = await Promise.all([a, b, gone].map((x) => x.roundStarts.next(5000, 'round start')));
    // Act
    gone.close();
    await a.submitDelta(rounds[0]!, constantDelta(globalOf(rounds[0]!), ['image', 'text'], 0.2), 1);
    await b.submitDelta(rounds[1]!, constantDelta(globalOf(rounds[1]!), ['image', 'text'], 0.2), 1);
    const end = await a.roundEnds.next(5000, 'round end');
    // Assert
    expect(end).toMatchObject({ status: 'completed', serverRound: 1 });
    const metrics = (await (await admin(c, '/api/tasks/demo/metrics')).json()) as { metrics: { metrics: Record<string, number> }[] };
    expect(metrics.metrics[0]!.metrics).toMatchObject({ numSelected: 3, numAccepted: 2, numDropped: 1 });
  });

  it('retries a round that lost too many clients and completes it with newcomers', async () => {
    // Arrange
    const c = await start(makeTask({ clientsPerRound: 2, minClients: 2 }));
    const a = await joinClient(c);
    const gone = await joinClient(c);
    await Promise.all([a.roundStarts.next(5000, 'first attempt'), gone.roundStarts.next(5000, 'first attempt')]);
    // Act: one leaves, so two updates can no longer arrive; a newcomer makes the retry possible.
    gone.close();
    const retried = await a.roundEnds.next(5000, 'retry');
    const newcomer = await joinClient(c);
    const [ra, rn] = await Promise.all([a.roundStarts.next(5000, 'second attempt'), newcomer.roundStarts.next(5000, 'second attempt')]);
    await Promise.all([
      a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.1), 1),
      newcomer.submitDelta(rn, constantDelta(globalOf(rn), ['image', 'text'], 0.1), 1),
    ]);
    const end = await a.roundEnds.next(5000, 'round end');
    // Assert
    expect(retried).toMatchObject({ status: 'retry', attempt: 1 });
    expect(ra).toMatchObject({ serverRound: 1, attempt: 2 });
    expect(end).toMatchObject({ status: 'completed', serverRound: 1, attempt: 2 });
  });

  it('fails the task after maxRoundAttempts instead of hanging', async () => {
    // Arrange
    const c = await start(makeTask({ maxRoundAttempts: 2, roundDeadlineMs: 50 }));
    const a = await joinClient(c);
    await joinClient(c);
    // Act: nobody uploads; two attempts time out.
    const ended = await a.taskEnds.next(5000, 'task end');
    // Assert
    expect(ended).toMatchObject({ status: 'failed', completedRounds: 0 });
    const task = (await (await admin(c, '/api/tasks/demo')).json()) as { task: { status: string } };
    expect(task.task.status).toBe('failed');
  });

  it('resumes from the SQLite file with the same global hash and keeps client identities', async () => {
    // Arrange: complete round 1, leave round 2 open, then stop.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-resume-'));
    open.dirs.push(dir);
    const path = join(dir, 'coordinator.db');
    const first = await start(makeTask(), {}, new SqliteStore({ path }));
    const a = await joinClient(first);
    const b = await joinClient(first);
    const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round 1'), b.roundStarts.next(5000, 'round 1')]);
    await Promise.all([
      a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.3), 2),
      b.submitDelta(rb, constantDelta(globalOf(rb), ['image', 'text'], 0.1), 2),
    ]);
    const end = await a.roundEnds.next(5000, 'round 1 end');
    await a.roundStarts.next(5000, 'round 2');
    const identity = { clientId: a.clientId!, clientSecret: a.clientSecret! };
    a.close();
    b.close();
    await first.close();
    open.coordinators.splice(open.coordinators.indexOf(first), 1);
    // Act
    const second = await start(makeTask(), {}, new SqliteStore({ path }));
    const resumed = await FakeClient.connect(second.url, { taskId: 'demo', token: 'anything', ...identity });
    open.clients.push(resumed);
    const hello = await resumed.hello({ backend: 'cpu', modalities: ['image'], numExamples: 3 });
    // Assert
    expect(second.engines.get('demo')!.globalHash).toBe(end.globalHash);
    expect(second.engines.get('demo')!.snapshot().completedRounds).toBe(1);
    expect(hello).toMatchObject({ ok: true, clientId: identity.clientId, completedRounds: 1 });
    expect('clientSecret' in hello).toBe(false);
    const rounds = (await (await admin(second, '/api/tasks/demo/rounds')).json()) as {
      rounds: { serverRound: number; status: string; reason: string | null }[];
    };
    expect(rounds.rounds.map((r) => [r.serverRound, r.status])).toEqual([
      [1, 'completed'],
      [2, 'retry'],
    ]);
  });

  it('never refuses an upload a round asked for, however fast rounds go, while unasked-for uploads drain the limit', async () => {
    // Arrange: an upload bucket of one that practically never refills, and six quick rounds.
    const c = await start(makeTask({ rounds: 6 }), { rateLimits: { uploads: { capacity: 1, refillPerSecond: 0.001 } } });
    const a = await joinClient(c);
    const b = await joinClient(c);
    const codes: string[] = [];
    // Act
    for (let round = 1; round <= 6; round++) {
      const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round start'), b.roundStarts.next(5000, 'round start')]);
      const acks = await Promise.all([
        a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.01), 1),
        b.submitDelta(rb, constantDelta(globalOf(rb), ['image', 'text'], 0.01), 1),
      ]);
      codes.push(...acks.map(codeOf));
      if (round === 6) {
        // Two uploads nobody asked for: the first spends the bucket (and is refused by the engine), the second is rate limited.
        const spare = await a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.01), 1);
        const flood = await a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.01), 1);
        codes.push(codeOf(spare), codeOf(flood));
      }
    }
    // Assert
    expect(codes.slice(0, 12)).toEqual(Array.from({ length: 12 }, () => 'ok'));
    expect(codes[12]).not.toBe('RATE_LIMITED');
    expect(codes[13]).toBe('RATE_LIMITED');
  });

  it('answers bad requests on an authenticated socket with codes and keeps serving', async () => {
    // Arrange
    const c = await start(makeTask({ admission: { proofOfWorkBits: 0, newIdentitiesPerAddress: null, similarityDamping: false } }), {
      rateLimits: { messages: { capacity: 6, refillPerSecond: 0.001 } },
    });
    const client = await FakeClient.connect(c.url, { taskId: 'demo', token: 'join-secret' });
    open.clients.push(client);
    // Act
    const beforeHello = await client.socket.timeout(2000).emitWithAck('submitUpdate', { type: 'update' } as never);
    const badHello = await client.socket
      .timeout(2000)
      .emitWithAck('hello', { type: 'hello', protocolVersion: 1, capabilities: { backend: 'cpu', modalities: ['smell'], numExamples: 1 } } as never);
    const oldVersion = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 1 }, 0, null);
    (client.socket as unknown as { emit(event: string, payload: unknown): void }).emit('hello', 'no ack here');
    const ok = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 1 }, undefined, null);
    const limited = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 1 }, undefined, null);
    const limitedAgain = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 1 }, undefined, null);
    // Assert
    expect(codeOf(beforeHello)).toBe('NOT_JOINED');
    expect(badHello).toMatchObject({ ok: false, error: { code: 'BAD_PAYLOAD' } });
    expect(JSON.stringify(badHello)).not.toMatch(/at .*\.ts/);
    expect(codeOf(oldVersion)).toBe('PROTOCOL_VERSION');
    expect(codeOf(ok)).toBe('ok');
    expect([codeOf(limited), codeOf(limitedAgain)]).toEqual(['ok', 'RATE_LIMITED']);
    expect(client.socket.connected).toBe(true);
  });
});

describe('HTTP API', () => {
  it('requires the admin token and exports metrics as JSON and CSV', async () => {
    // Arrange
    const c = await start(makeTask({ rounds: 1 }));
    const a = await joinClient(c);
    const b = await joinClient(c);
    const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round'), b.roundStarts.next(5000, 'round')]);
    await a.submitDelta(ra, constantDelta(globalOf(ra), ['image', 'text'], 0.1), 1);
    await b.submitDelta(rb, constantDelta(globalOf(rb), ['image', 'text'], 0.1), 3);
    const finished = await a.taskEnds.next(5000, 'task end');
    // Act
    const noToken = await fetch(`${c.url}/api/tasks`);
    const badToken = await fetch(`${c.url}/api/tasks`, { headers: { authorization: 'Bearer nope' } });
    const tasks = (await (await admin(c, '/api/tasks')).json()) as { tasks: { taskId: string; status: string }[] };
    const csv = await (await admin(c, '/api/tasks/demo/metrics.csv')).text();
    const json = (await (await admin(c, '/api/tasks/demo/metrics.json')).json()) as { metrics: { serverRound: number; metrics: Record<string, number> }[] };
    const clients = (await (await admin(c, '/api/tasks/demo/clients')).json()) as { clients: Record<string, unknown>[] };
    const health = await fetch(`${c.url}/healthz`);
    const missing = await admin(c, '/api/tasks/nope');
    // Assert
    expect(finished).toMatchObject({ status: 'finished', completedRounds: 1 });
    expect([noToken.status, badToken.status, health.status, missing.status]).toEqual([401, 403, 200, 404]);
    expect(tasks.tasks).toMatchObject([{ taskId: 'demo', status: 'finished' }]);
    expect(json.metrics[0]).toMatchObject({ serverRound: 1, metrics: { numAccepted: 2, numExamples: 4 } });
    const [header, row] = csv.trim().split('\r\n');
    const columns = header!.split(',');
    const values = row!.split(',');
    expect(columns.slice(0, 2)).toEqual(['serverRound', 'createdAt']);
    expect(values[0]).toBe('1');
    expect(values[columns.indexOf('numExamples')]).toBe('4');
    expect(clients.clients).toHaveLength(2);
    expect(JSON.stringify(clients)).not.toMatch(/secret/i);
  });
});
