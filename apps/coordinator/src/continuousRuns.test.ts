/**
 * A `runs: continuous` task end to end: the real coordinator on port 0 with SQLite, scripted
 * clients over real sockets, and the admin API. A finished run is followed by the next under the
 * same join link, the past run stays readable, and a restart of the coordinator resumes the run it
 * was in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import type { ParsedRoundStart } from '@chorus/protocol';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startCoordinator } from './server.js';
import type { Coordinator } from './server.js';
import { SqliteStore } from './store/sqliteStore.js';
import { parseTask } from './task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { FakeClient, constantDelta, globalOf } from './testing/fakeClient.js';

const ADMIN = 'admin-secret';
const JOIN = 'join-secret';
const open: { coordinators: Coordinator[]; clients: FakeClient[]; stores: SqliteStore[]; dirs: string[] } = {
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

const initialGlobal = (): Tensor[] => [tensor('image/w', [2], new Float32Array([1, 2])), tensor('fusion/b', [1], new Float32Array([0]))];

function continuousTask(overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 2,
    runs: 'continuous',
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

async function start(path: string): Promise<Coordinator> {
  const store = new SqliteStore({ path });
  open.stores.push(store);
  const coordinator = await startCoordinator({
    tasks: [{ config: continuousTask(), joinToken: JOIN, initialGlobal }],
    store,
    adminToken: ADMIN,
    logger: pino({ level: 'silent' }),
    retryDelayMs: 10,
    processMetrics: false,
  });
  open.coordinators.push(coordinator);
  return coordinator;
}

async function joinClient(c: Coordinator, identity?: { clientId: string; clientSecret: string }): Promise<FakeClient> {
  const client = await FakeClient.connect(c.url, { taskId: 'demo', token: JOIN, ...identity });
  if (identity) Object.assign(client, identity);
  open.clients.push(client);
  const res = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 10 });
  expect(res.ok ? 'ok' : res.error.code).toBe('ok');
  return client;
}

/** Both clients upload for the round they were sent; resolves with that round and the hash it committed. */
async function completeRound(a: FakeClient, b: FakeClient): Promise<{ round: ParsedRoundStart; hash: string }> {
  const [ra, rb] = await Promise.all([a.roundStarts.next(5000, 'round start a'), b.roundStarts.next(5000, 'round start b')]);
  const acks = await Promise.all([
    a.submitDelta(ra, constantDelta(globalOf(ra), ['image'], 0.1), 1),
    b.submitDelta(rb, constantDelta(globalOf(rb), ['image'], 0.3), 1),
  ]);
  expect(acks.map((x) => (x.ok ? 'ok' : x.error.code))).toEqual(['ok', 'ok']);
  const end = await a.roundEnds.next(5000, 'round end');
  expect(end).toMatchObject({ status: 'completed', roundId: ra.roundId });
  return { round: ra, hash: end.globalHash };
}

async function api(c: Coordinator, path: string): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(`${c.url}/api/tasks/demo${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const type = res.headers.get('content-type') ?? '';
  const body = type.startsWith('application/json') ? ((await res.json()) as Record<string, unknown>) : { bytes: (await res.arrayBuffer()).byteLength };
  return { status: res.status, headers: res.headers, body };
}

function sqliteFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-runs-'));
  open.dirs.push(dir);
  return join(dir, 'coordinator.db');
}

describe('a continuous task over sockets, SQLite and the admin API', () => {
  it('starts run 2 for the same clients after run 1 finishes, keeps run 1 readable, and resumes run 2 after a restart', async () => {
    // Arrange
    const path = sqliteFile();
    const c1 = await start(path);
    const initialHash = c1.engines.get('demo')!.globalHash;
    const a = await joinClient(c1);
    const b = await joinClient(c1);
    // Act: run 1's two rounds, then run 2's first round start.
    const first = await completeRound(a, b);
    const last = await completeRound(a, b);
    const [nextA, nextB] = await Promise.all([a.roundStarts.next(5000, 'run 2 start a'), b.roundStarts.next(5000, 'run 2 start b')]);
    const newcomer = await joinClient(c1);
    const task = await api(c1, '');
    const runs = await api(c1, '/runs');
    const pastMetrics = await api(c1, '/metrics?run=1');
    const currentMetrics = await api(c1, '/metrics');
    const pastRounds = await api(c1, '/rounds?run=1');
    const pastModel = await api(c1, '/checkpoint?run=1');
    const currentModel = await api(c1, '/checkpoint');
    const unknownRun = await api(c1, '/metrics?run=9');
    const badRun = await api(c1, '/metrics?run=0');
    const identities = [a, b].map((x) => ({ clientId: x.clientId!, clientSecret: x.clientSecret! }));
    for (const x of [a, b, newcomer]) x.close();
    await c1.close();
    const c2 = await start(path);
    const afterRestart = await api(c2, '');
    const runsAfterRestart = await api(c2, '/runs');
    const metricsAfterRestart = await api(c2, '/metrics?run=1');
    const [a2, b2] = [await joinClient(c2, identities[0]), await joinClient(c2, identities[1])];
    const resumed = await completeRound(a2, b2);
    // Assert: run 2 began at once, from the initial model, for the clients already there; nobody was told the task ended.
    expect(first.round.roundId).toBe('demo.r1.a1');
    expect(last.round.roundId).toBe('demo.r2.a1');
    expect([nextA.roundId, nextB.roundId]).toEqual(['demo:run2.r1.a1', 'demo:run2.r1.a1']);
    expect(nextA.serverRound).toBe(1);
    expect([...globalOf(nextA)[0]!.values]).toEqual([1, 2]);
    expect(a.taskEnds.size + b.taskEnds.size).toBe(0);
    expect(task.body['task']).toMatchObject({ run: 2, status: 'running', engine: { run: 2, completedRounds: 0, globalHash: initialHash } });
    // Run 1 is a past run with its rounds, metrics and final model.
    expect(runs.body['runs']).toEqual([
      expect.objectContaining({ run: 1, status: 'finished', completedRounds: 2, globalHash: last.hash, endedAt: expect.any(Number) }),
      expect.objectContaining({ run: 2, status: 'running', completedRounds: 0, globalHash: initialHash, endedAt: null }),
    ]);
    expect(pastMetrics.body).toMatchObject({ run: 1, metrics: [expect.objectContaining({ serverRound: 1 }), expect.objectContaining({ serverRound: 2 })] });
    expect(currentMetrics.body).toMatchObject({ run: 2, metrics: [] });
    expect((pastRounds.body['rounds'] as { roundId: string }[]).map((r) => r.roundId)).toEqual(['demo.r1.a1', 'demo.r2.a1']);
    expect(pastModel.status).toBe(200);
    expect(pastModel.headers.get('x-chorus-sha256')).toBe(last.hash);
    expect(pastModel.headers.get('content-disposition')).toContain('demo-run1-global.chrs');
    expect(currentModel.headers.get('x-chorus-sha256')).toBe(initialHash);
    expect(unknownRun).toMatchObject({ status: 404, body: { error: { code: 'RUN_NOT_FOUND' } } });
    expect(badRun).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } });
    // After the restart: still run 2, run 1 still there, and run 2's round 1 goes on (its interrupted attempt abandoned).
    expect(afterRestart.body['task']).toMatchObject({ run: 2, engine: { run: 2, completedRounds: 0, globalHash: initialHash } });
    expect(runsAfterRestart.body['runs']).toEqual(runs.body['runs']);
    expect(metricsAfterRestart.body['metrics']).toEqual(pastMetrics.body['metrics']);
    expect(resumed.round).toMatchObject({ serverRound: 1, roundId: 'demo:run2.r1.a2' });
    expect(resumed.hash).toBe(first.hash);
  });

  it('ends for good when the researcher stops it: clients are told, and no run 2 begins, now or after a restart', async () => {
    // Arrange
    const path = sqliteFile();
    const c1 = await start(path);
    const a = await joinClient(c1);
    const b = await joinClient(c1);
    await completeRound(a, b);
    await a.roundStarts.next(5000, 'round 2');
    // Act: stopped during the run's last round.
    const stop = await fetch(`${c1.url}/api/tasks/demo/stop`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    const taskEnd = await a.taskEnds.next(5000, 'task end');
    await c1.close();
    const c2 = await start(path);
    const runs = await api(c2, '/runs');
    // Assert
    expect(stop.status).toBe(200);
    expect(taskEnd).toMatchObject({ status: 'stopped', completedRounds: 1 });
    expect(runs.body['runs']).toEqual([expect.objectContaining({ run: 1, status: 'stopped', completedRounds: 1 })]);
    expect(c2.engines.get('demo')!.snapshot()).toMatchObject({ run: 1, status: 'stopped' });
  });

  it('refuses to serve a continuous task under dp, whose ε per run would leave out the runs before it', async () => {
    // Arrange
    const task = continuousTask({ strategy: { name: 'dp', clipNorm: 5, noiseMultiplier: 1, samplingRate: 1, delta: 1e-5, noise: 'seeded' } });
    const store = new SqliteStore({ path: sqliteFile() });
    open.stores.push(store);
    // Act
    const starting = startCoordinator({
      tasks: [{ config: task, joinToken: JOIN, initialGlobal }],
      store,
      logger: pino({ level: 'silent' }),
      processMetrics: false,
    });
    // Assert
    await expect(starting).rejects.toThrow(/TASK_INVALID: task demo: runs: continuous is refused with dp/);
  });
});
