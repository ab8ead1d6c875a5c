/**
 * Exports on a node without the task's engine (a cluster node that does not lead it): the latest
 * model the store holds, and a stored model that cannot be read answered CHECKPOINT_CORRUPT.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tensor } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeGlobal, sha256HexSync } from '../engine/checkpoint.js';
import type { TaskEvaluator } from '../model/taskEvaluator.js';
import { MemoryStore } from '../store/memoryStore.js';
import { createRequestHandler } from './api.js';
import { CoordinatorMetrics } from './metrics.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A node serving `store` with a model for task `t` and no engine; resolves with its URL and what the model was asked to export. */
async function nodeWithoutEngine(store: MemoryStore): Promise<{ url: string; asked: Parameters[] }> {
  const asked: Parameters[] = [];
  const model = {
    exportAdapters: async (parameters: Parameters) => {
      asked.push(parameters);
      return { modelJson: { format: 'test' }, weights: new Uint8Array([1, 2, 3]) };
    },
  } as unknown as TaskEvaluator;
  const handler = createRequestHandler({
    store,
    engines: new Map(),
    metrics: new CoordinatorMetrics({ defaultMetrics: false }),
    adminToken: 'admin',
    corsOrigins: [],
    logger: pino({ level: 'silent' }),
    models: new Map([['t', model]]),
  });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

function storeWith(bytes: Uint8Array): MemoryStore {
  const store = new MemoryStore();
  store.upsertTask({ taskId: 't', configJson: JSON.stringify({ id: 't', strategy: { name: 'fedavg' } }), joinTokenHash: 'h', createdAt: 1 });
  store.saveInitialCheckpoint({ taskId: 't', bytes, sha256: sha256HexSync(bytes), strategyState: null, createdAt: 1 });
  return store;
}

const get = (url: string): Promise<Response> => fetch(`${url}/api/tasks/t/export/adapters/weights.bin`, { headers: { authorization: 'Bearer admin' } });

describe('an export on a node without the task’s engine', () => {
  it('exports the latest model its store holds', async () => {
    const global = [tensor('image/w', [2], new Float32Array([1, 2]))];
    const { url, asked } = await nodeWithoutEngine(storeWith(encodeGlobal('t', 0, global)));
    const res = await get(url);
    expect(res.status).toBe(200);
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([1, 2, 3]);
    expect(asked.map((p) => p.map((t) => [t.name, [...t.values]]))).toEqual([[['image/w', [1, 2]]]]);
  });

  it('answers CHECKPOINT_CORRUPT for a stored model it cannot read, and exports nothing', async () => {
    const { url, asked } = await nodeWithoutEngine(storeWith(new Uint8Array([9, 9, 9, 9])));
    const res = await get(url);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CHECKPOINT_CORRUPT');
    expect(asked).toEqual([]);
  });
});
