import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { ADMIN_NAMESPACE, taskStatusChangedSchema } from '@chorus/protocol';
import type { AdminServerToClientEvents, ParsedRoundStart, TaskStatusChangedPayload } from '@chorus/protocol';
import { pino } from 'pino';
import { io as connectAdmin } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startCoordinator } from '../server.js';
import type { Coordinator, CoordinatorOptions } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { SqliteStore } from '../store/sqliteStore.js';
import type { CoordinatorStore } from '../store/types.js';
import { parseTask } from '../task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { FakeClient, constantDelta, globalOf } from '../testing/fakeClient.js';

const silent = pino({ level: 'silent' });
const ADMIN = 'admin-secret';
const JOIN = 'join-secret';
const open: { coordinators: Coordinator[]; clients: FakeClient[]; stores: CoordinatorStore[]; sockets: Socket[]; dirs: string[] } = {
  coordinators: [],
  clients: [],
  stores: [],
  sockets: [],
  dirs: [],
};

afterEach(async () => {
  for (const s of open.sockets.splice(0)) s.close();
  for (const c of open.clients.splice(0)) c.close();
  for (const c of open.coordinators.splice(0)) await c.close();
  for (const s of open.stores.splice(0)) s.close();
  for (const d of open.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const initialGlobal = (): Tensor[] => [tensor('image/w', [2], new Float32Array([1, 2])), tensor('fusion/b', [1], new Float32Array([0]))];

function makeTask(overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 3,
    clientsPerRound: 2,
    minClients: 2,
    overSelection: 0,
    roundDeadlineMs: 10_000,
    waitingRoomMs: 0,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    normBound: 100,
    seed: 1,
    // The scripted clients' deltas are parallel (constant values): similarity damping would take them for copies.
    admission: { similarityDamping: false },
    ...overrides,
  });
}

async function start(task: TaskConfig, store: CoordinatorStore = new MemoryStore(), extra: Partial<CoordinatorOptions> = {}): Promise<Coordinator> {
  if (!open.stores.includes(store)) open.stores.push(store);
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: JOIN, initialGlobal }],
    store,
    adminToken: ADMIN,
    logger: silent,
    retryDelayMs: 10,
    processMetrics: false,
    ...extra,
  });
  open.coordinators.push(coordinator);
  return coordinator;
}

function sqliteFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-control-'));
  open.dirs.push(dir);
  return join(dir, 'coordinator.db');
}

async function joinClient(c: Coordinator): Promise<FakeClient> {
  const client = await FakeClient.connect(c.url, { taskId: 'demo', token: JOIN });
  open.clients.push(client);
  const res = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 10 });
  expect(res.ok).toBe(true);
  return client;
}

interface Answer {
  readonly status: number;
  readonly body: { task?: { status: string; actions: string[] }; previous?: string; error?: { code: string; message: string } };
}

async function control(
  c: Coordinator,
  action: string,
  options: { token?: string | null; body?: string; taskId?: string; method?: string } = {},
): Promise<Answer> {
  const token = options.token === undefined ? ADMIN : options.token;
  const res = await fetch(`${c.url}/api/tasks/${options.taskId ?? 'demo'}/${action}`, {
    method: options.method ?? 'POST',
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

async function statusOf(c: Coordinator): Promise<string> {
  const res = await fetch(`${c.url}/api/tasks/demo`, { headers: { authorization: `Bearer ${ADMIN}` } });
  return ((await res.json()) as { task: { status: string } }).task.status;
}

/** Both clients upload for the round they were sent; resolves once the round has ended. */
async function completeRound(a: FakeClient, b: FakeClient): Promise<{ ra: ParsedRoundStart; hash: string }> {
  const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round start a'), b.roundStarts.next(5000, 'round start b')]);
  const acks = await Promise.all([
    a.submitDelta(ra, constantDelta(globalOf(ra), ['image'], 0.1), 1),
    b.submitDelta(rb, constantDelta(globalOf(rb), ['image'], 0.3), 1),
  ]);
  expect(acks.map((x) => x.ok)).toEqual([true, true]);
  const end = await a.roundEnds.next(5000, 'round end');
  expect(end).toMatchObject({ status: 'completed', serverRound: ra.serverRound });
  return { ra, hash: end.globalHash };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('task control over HTTP', () => {
  it('walks every allowed transition, lists the actions each status allows, and counts them', async () => {
    // Arrange: 3 per round wanted, a long waiting room, so nothing starts on its own.
    const c = await start(makeTask({ clientsPerRound: 3, waitingRoomMs: 600_000 }));
    // Act
    const steps: [string, number, string | undefined, string | undefined, string[] | undefined][] = [];
    for (const action of ['pause', 'resume', 'start', 'pause', 'resume', 'stop']) {
      const { status, body } = await control(c, action);
      steps.push([action, status, body.previous, body.task?.status, body.task?.actions]);
    }
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    // Assert: resume goes back to waiting while no round was ever opened, to running after a start.
    expect(steps).toEqual([
      ['pause', 200, 'waiting', 'paused', ['resume', 'stop']],
      ['resume', 200, 'paused', 'waiting', ['start', 'pause', 'stop']],
      ['start', 200, 'waiting', 'running', ['pause', 'stop']],
      ['pause', 200, 'running', 'paused', ['resume', 'stop']],
      ['resume', 200, 'paused', 'running', ['pause', 'stop']],
      ['stop', 200, 'running', 'stopped', []],
    ]);
    expect(await statusOf(c)).toBe('stopped');
    expect(metrics).toContain('chorus_task_controls_total{task="demo",action="pause",outcome="applied"} 2');
    expect(metrics).toContain('chorus_task_controls_total{task="demo",action="stop",outcome="applied"} 1');
  });

  it('refuses a transition the status does not allow with 409 TASK_TRANSITION and changes nothing', async () => {
    // Arrange
    const c = await start(makeTask({ clientsPerRound: 3, waitingRoomMs: 600_000 }));
    // Act
    const fromWaiting = await control(c, 'resume');
    await control(c, 'start');
    const fromRunning = [await control(c, 'start'), await control(c, 'resume')];
    await control(c, 'stop');
    const fromStopped = await Promise.all(['start', 'pause', 'resume', 'stop'].map((a) => control(c, a)));
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    // Assert
    expect(fromWaiting).toEqual({ status: 409, body: { error: { code: 'TASK_TRANSITION', message: 'cannot resume task demo: it is waiting' } } });
    expect(fromRunning.map((a) => [a.status, a.body.error?.code])).toEqual([
      [409, 'TASK_TRANSITION'],
      [409, 'TASK_TRANSITION'],
    ]);
    expect(fromStopped.map((a) => [a.status, a.body.error?.code])).toEqual(Array.from({ length: 4 }, () => [409, 'TASK_TRANSITION']));
    expect(await statusOf(c)).toBe('stopped');
    expect(metrics).toContain('chorus_task_controls_total{task="demo",action="resume",outcome="refused"} 3');
  });

  it('answers bad requests with coded errors and leaves the task as it was', async () => {
    // Arrange
    const c = await start(makeTask({ clientsPerRound: 3, waitingRoomMs: 600_000 }));
    // Act
    const answers = {
      noToken: await control(c, 'pause', { token: null }),
      wrongToken: await control(c, 'pause', { token: 'wrong' }),
      joinToken: await control(c, 'pause', { token: JOIN }),
      unknownTask: await control(c, 'pause', { taskId: 'nope' }),
      unknownAction: await control(c, 'explode'),
      postOnARead: await control(c, 'rounds'),
      getOnAControl: await control(c, 'pause', { method: 'GET' }),
      notJson: await control(c, 'pause', { body: '{reason:' }),
      unknownField: await control(c, 'pause', { body: '{"force": true}' }),
      longReason: await control(c, 'pause', { body: JSON.stringify({ reason: 'x'.repeat(201) }) }),
      tooLarge: await control(c, 'pause', { body: JSON.stringify({ reason: 'x'.repeat(5000) }) }),
      badEncoding: await control(c, 'pause', { taskId: '%E0%A4%A' }),
    };
    // Assert
    expect(Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, [a.status, a.body.error?.code]]))).toEqual({
      noToken: [401, 'AUTH_REQUIRED'],
      wrongToken: [403, 'AUTH_INVALID'],
      joinToken: [403, 'AUTH_INVALID'],
      unknownTask: [404, 'TASK_NOT_FOUND'],
      unknownAction: [404, 'NOT_FOUND'],
      postOnARead: [405, 'METHOD_NOT_ALLOWED'],
      getOnAControl: [405, 'METHOD_NOT_ALLOWED'],
      notJson: [400, 'BAD_REQUEST'],
      unknownField: [400, 'BAD_REQUEST'],
      longReason: [400, 'BAD_REQUEST'],
      tooLarge: [413, 'BODY_TOO_LARGE'],
      badEncoding: [400, 'BAD_REQUEST'],
    });
    expect(await statusOf(c)).toBe('waiting');
    // A well-formed reason is accepted.
    expect((await control(c, 'pause', { body: '{"reason": "checking the data"}' })).body.task?.status).toBe('paused');
  });

  it('allows POST from an allowed origin in the CORS preflight, and only from it', async () => {
    // Arrange
    const c = await start(makeTask(), new MemoryStore(), { corsOrigins: ['http://dash.example'] });
    const preflight = (origin: string) =>
      fetch(`${c.url}/api/tasks/demo/pause`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
      });
    // Act
    const [allowed, other] = await Promise.all([preflight('http://dash.example'), preflight('http://evil.example')]);
    // Assert
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://dash.example');
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('starts a waiting task early: round 1 opens without waiting out the waiting room', async () => {
    // Arrange: 3 wanted per round, 2 waiting, a ten-minute waiting room.
    const c = await start(makeTask({ clientsPerRound: 3, waitingRoomMs: 600_000 }));
    const a = await joinClient(c);
    await joinClient(c);
    await sleep(150);
    const before = c.engines.get('demo')!.snapshot();
    // Act
    const started = await control(c, 'start');
    const round = await a.roundStarts.next(5000, 'round 1 after start');
    // Assert
    expect(before.openRound).toBeNull();
    expect(started.body.task?.status).toBe('running');
    expect(round.serverRound).toBe(1);
  });
});

describe('task control and the rounds', () => {
  it('a paused task finishes the round in flight, opens no new one while clients wait, and resume continues', async () => {
    // Arrange
    const c = await start(makeTask());
    const a = await joinClient(c);
    const b = await joinClient(c);
    const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round 1 a'), b.roundStarts.next(5000, 'round 1 b')]);
    // Act: pause mid-round, then both upload.
    const paused = await control(c, 'pause');
    const acks = await Promise.all([
      a.submitDelta(ra, constantDelta(globalOf(ra), ['image'], 0.1), 1),
      b.submitDelta(rb, constantDelta(globalOf(rb), ['image'], 0.3), 1),
    ]);
    const end = await a.roundEnds.next(5000, 'round 1 end');
    await sleep(300);
    const whilePaused = c.engines.get('demo')!.snapshot();
    const storedWhilePaused = await statusOf(c);
    const startsWhilePaused = a.roundStarts.size + b.roundStarts.size;
    const resumed = await control(c, 'resume');
    const next = await a.roundStarts.next(5000, 'round 2 after resume');
    // Assert
    expect(paused.body.task?.status).toBe('paused');
    expect(acks.map((x) => x.ok)).toEqual([true, true]);
    expect(end).toMatchObject({ status: 'completed', serverRound: 1 });
    expect(whilePaused).toMatchObject({ status: 'paused', phase: 'idle', completedRounds: 1, waiting: 2, openRound: null });
    expect(storedWhilePaused).toBe('paused');
    expect(startsWhilePaused).toBe(0);
    expect(resumed.body.task?.status).toBe('running');
    expect(next.serverRound).toBe(2);
    expect(next.globalHash).toBe(end.globalHash);
  });

  it('stop is final: clients are told, uploads and joins get TASK_STOPPED, the checkpoint stays, and a restart keeps it stopped', async () => {
    // Arrange: round 1 completes, round 2 opens.
    const path = sqliteFile();
    const store1 = new SqliteStore({ path });
    const c1 = await start(makeTask(), store1);
    const a = await joinClient(c1);
    const b = await joinClient(c1);
    const { hash } = await completeRound(a, b);
    const r2 = await a.roundStarts.next(5000, 'round 2');
    // Act
    const stopped = await control(c1, 'stop', { body: '{"reason": "enough data"}' });
    const taskEnd = await a.taskEnds.next(5000, 'task end');
    const late = await a.submitDelta(r2, constantDelta(globalOf(r2), ['image'], 0.1), 1);
    const newcomer = await FakeClient.connect(c1.url, { taskId: 'demo', token: JOIN });
    open.clients.push(newcomer);
    const hello = await newcomer.hello({ backend: 'cpu', modalities: ['image'], numExamples: 10 });
    const rounds = (await (await fetch(`${c1.url}/api/tasks/demo/rounds`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      rounds: { serverRound: number; status: string; reason: string | null }[];
    };
    await c1.close();
    store1.close();
    const store2 = new SqliteStore({ path });
    const c2 = await start(makeTask(), store2);
    const afterRestart = await statusOf(c2);
    const restartAction = await control(c2, 'resume');
    const checkpoint = await fetch(`${c2.url}/api/tasks/demo/checkpoint`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const rejoin = await FakeClient.connect(c2.url, { taskId: 'demo', token: JOIN });
    open.clients.push(rejoin);
    const rehello = await rejoin.hello({ backend: 'cpu', modalities: ['image'], numExamples: 10 });
    // Assert
    expect(stopped.body.task).toMatchObject({ status: 'stopped', actions: [] });
    expect(taskEnd).toMatchObject({ type: 'task-end', status: 'stopped', completedRounds: 1, globalHash: hash });
    expect(late.ok ? 'ok' : late.error.code).toBe('TASK_STOPPED');
    expect(hello.ok ? 'ok' : hello.error.code).toBe('TASK_STOPPED');
    expect(rounds.rounds.at(-1)).toMatchObject({ serverRound: 2, status: 'retry', reason: 'task stopped' });
    expect(afterRestart).toBe('stopped');
    expect(restartAction.status).toBe(409);
    expect(checkpoint.status).toBe(200);
    expect(checkpoint.headers.get('x-chorus-sha256')).toBe(hash);
    expect(rehello.ok ? 'ok' : rehello.error.code).toBe('TASK_STOPPED');
  });

  it('a paused task comes back paused after a restart and opens no round until resumed', async () => {
    // Arrange
    const path = sqliteFile();
    const store1 = new SqliteStore({ path });
    const c1 = await start(makeTask(), store1);
    await control(c1, 'pause');
    await c1.close();
    store1.close();
    const c2 = await start(makeTask(), new SqliteStore({ path }));
    // Act
    const a = await joinClient(c2);
    await joinClient(c2);
    await sleep(300);
    const startsWhilePaused = a.roundStarts.size;
    const statusWhilePaused = await statusOf(c2);
    const resumed = await control(c2, 'resume');
    const round = await a.roundStarts.next(5000, 'round 1 after resume');
    // Assert
    expect(statusWhilePaused).toBe('paused');
    expect(startsWhilePaused).toBe(0);
    expect(resumed.body).toMatchObject({ previous: 'paused', task: { status: 'waiting' } });
    expect(round.serverRound).toBe(1);
    expect(await statusOf(c2)).toBe('running');
  });

  it('streams every status change to the admin namespace, with the action that caused it', async () => {
    // Arrange
    const c = await start(makeTask({ rounds: 1 }));
    const admin: Socket<AdminServerToClientEvents> = connectAdmin(`${c.url}${ADMIN_NAMESPACE}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      auth: { adminToken: ADMIN },
    });
    open.sockets.push(admin);
    const changes: TaskStatusChangedPayload[] = [];
    admin.on('taskStatus', (p) => changes.push(taskStatusChangedSchema.parse(p)));
    await new Promise<void>((resolve, reject) => {
      admin.once('connect', () => resolve());
      admin.once('connect_error', reject);
    });
    // Act: pause and resume while waiting, then the rounds move it to running and finished.
    await control(c, 'pause', { body: '{"reason": "lunch"}' });
    await control(c, 'resume');
    const a = await joinClient(c);
    const b = await joinClient(c);
    await completeRound(a, b);
    await a.taskEnds.next(5000, 'task end');
    await sleep(100);
    // Assert
    expect(changes.map((x) => [x.previous, x.status, x.action, x.reason])).toEqual([
      ['waiting', 'paused', 'pause', 'lunch'],
      ['paused', 'waiting', 'resume', undefined],
      ['waiting', 'running', null, undefined],
      ['running', 'finished', null, undefined],
    ]);
    expect(changes.every((x) => x.taskId === 'demo')).toBe(true);
  });
});
