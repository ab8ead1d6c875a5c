import { decodeUpdate, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256HexSync } from '../engine/roundEngine.js';
import { startCoordinator } from '../server.js';
import type { Coordinator } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { parseTask } from '../task/loadTask.js';
import { FakeClient, constantDelta, globalOf } from '../testing/fakeClient.js';

// Hand-checkable global: one tensor per group.
const initialGlobal = (): Tensor[] => [tensor('image/w', [2], new Float32Array([1, 2])), tensor('fusion/b', [1], new Float32Array([0.5]))];

const taskOf = (id: string) =>
  parseTask({
    id,
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 3,
    clientsPerRound: 1,
    minClients: 1,
    overSelection: 0,
    roundDeadlineMs: 10_000,
    waitingRoomMs: 0,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    normBound: 100,
    seed: 1,
  });

describe('GET /api/tasks/:id/global over HTTP', () => {
  let coordinator: Coordinator;
  let store: MemoryStore;
  const get = (path: string, token?: string): Promise<Response> =>
    fetch(`${coordinator.url}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  const codeOf = async (res: Response): Promise<string> => ((await res.json()) as { error: { code: string } }).error.code;

  beforeAll(async () => {
    store = new MemoryStore();
    coordinator = await startCoordinator({
      tasks: [
        { config: taskOf('alpha'), joinToken: 'join-alpha', initialGlobal },
        { config: taskOf('beta'), joinToken: 'join-beta', initialGlobal },
      ],
      store,
      adminToken: 'admin-secret',
      logger: pino({ level: 'silent' }),
      processMetrics: false,
    });
  });

  afterAll(async () => {
    await coordinator?.close();
    store?.close();
  });

  it('gives the task join token the initial global as round 0 with its hash and adapter alpha', async () => {
    // Act
    const res = await get('/api/tasks/alpha/global', 'join-alpha');
    const bytes = new Uint8Array(await res.arrayBuffer());

    // Assert
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-chorus-round')).toBe('0');
    expect(res.headers.get('x-chorus-adapter-alpha')).toBe('4');
    expect(res.headers.get('x-chorus-base')).toBe('tiny');
    expect(res.headers.get('x-chorus-sha256')).toBe(sha256HexSync(bytes));
    const decoded = decodeUpdate(bytes, { maxBytes: bytes.length });
    expect(decoded.kind).toBe('model');
    expect(decoded.round).toBe(0);
    expect(decoded.tensors.map((t) => [t.name, [...t.values]])).toEqual([
      ['image/w', [1, 2]],
      ['fusion/b', [0.5]],
    ]);
  });

  it('follows the global after a completed round, for the join token and the admin token alike', async () => {
    // Arrange: one client completes round 1 of alpha with +0.25 on every tensor.
    const client = await FakeClient.connect(coordinator.url, { taskId: 'alpha', token: 'join-alpha' });
    try {
      expect((await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 4 })).ok).toBe(true);
      const round = await client.roundStarts.next(5000, 'round start');
      expect((await client.submitDelta(round, constantDelta(globalOf(round), ['image'], 0.25), 4)).ok).toBe(true);
      const end = await client.roundEnds.next(5000, 'round end');

      // Act
      const [asVolunteer, asAdmin] = await Promise.all([get('/api/tasks/alpha/global', 'join-alpha'), get('/api/tasks/alpha/global', 'admin-secret')]);
      const bytes = new Uint8Array(await asVolunteer.arrayBuffer());

      // Assert
      expect(asVolunteer.headers.get('x-chorus-round')).toBe(String(end.serverRound));
      expect(end.serverRound).toBe(1);
      expect(asVolunteer.headers.get('x-chorus-sha256')).toBe(end.globalHash);
      expect(sha256HexSync(bytes)).toBe(end.globalHash);
      expect(decodeUpdate(bytes, { maxBytes: bytes.length }).tensors.map((t) => [...t.values])).toEqual([[1.25, 2.25], [0.75]]);
      expect(asAdmin.status).toBe(200);
      expect(asAdmin.headers.get('x-chorus-sha256')).toBe(end.globalHash);
    } finally {
      client.close();
    }
  });

  it('refuses a missing token (401), a wrong or other task token (403), and an unknown task or sub-path (404)', async () => {
    // Act
    const missing = await get('/api/tasks/alpha/global');
    const wrong = await get('/api/tasks/alpha/global', 'nope');
    const otherTask = await get('/api/tasks/alpha/global', 'join-beta');
    const unknownAsVolunteer = await get('/api/tasks/gamma/global', 'join-alpha');
    const unknownAsAdmin = await get('/api/tasks/gamma/global', 'admin-secret');
    const subPath = await get('/api/tasks/alpha/global/more', 'join-alpha');

    // Assert
    expect([missing.status, await codeOf(missing)]).toEqual([401, 'AUTH_REQUIRED']);
    expect([wrong.status, await codeOf(wrong)]).toEqual([403, 'AUTH_INVALID']);
    expect([otherTask.status, await codeOf(otherTask)]).toEqual([403, 'AUTH_INVALID']);
    expect([unknownAsVolunteer.status, await codeOf(unknownAsVolunteer)]).toEqual([403, 'AUTH_INVALID']);
    expect([unknownAsAdmin.status, await codeOf(unknownAsAdmin)]).toEqual([404, 'TASK_NOT_FOUND']);
    expect([subPath.status, await codeOf(subPath)]).toEqual([404, 'NOT_FOUND']);
  });

  it('keeps every admin route closed to a join token', async () => {
    // Act
    const responses = await Promise.all(
      ['/api/tasks', '/api/tasks/alpha', '/api/tasks/alpha/checkpoint', '/api/tasks/alpha/clients', '/api/tasks/alpha/metrics.csv'].map((p) =>
        get(p, 'join-alpha'),
      ),
    );

    // Assert
    expect(responses.map((r) => r.status)).toEqual([403, 403, 403, 403, 403]);
  });
});
