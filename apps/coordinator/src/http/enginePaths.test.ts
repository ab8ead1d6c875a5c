import { request } from 'node:http';
import { tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startCoordinator } from '../server.js';
import type { Coordinator } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { parseTask } from '../task/loadTask.js';

const open: Coordinator[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

/** One raw HTTP exchange; resolves with the status and body, or the error that ended it. */
function raw(url: string, method: 'GET' | 'POST', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers: body === undefined ? {} : { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('engine.io paths', () => {
  it('a stranger’s long-polling session without a token is refused by socket.io, and the coordinator keeps serving', async () => {
    // Arrange
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    const task = parseTask({
      id: 'demo',
      dataset: { name: 'digits', modalities: ['image'] },
      model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
      strategy: { name: 'fedavg' },
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      roundDeadlineMs: 10_000,
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.1,
      maxUpdateBytes: 4096,
      seed: 1,
    });
    const c = await startCoordinator({
      tasks: [{ config: task, joinToken: 'join-secret', initialGlobal: () => [tensor('image/w', [1], new Float32Array([0]))] }],
      store: new MemoryStore(),
      logger: pino({ level: 'silent' }),
      processMetrics: false,
    });
    open.push(c);
    try {
      // Act: handshake, a long-poll GET engine.io holds open, then the CONNECT packet with no auth.
      const handshake = await raw(`${c.url}/socket.io/?EIO=4&transport=polling`, 'GET');
      expect(handshake.status).toBe(200);
      const sid = (JSON.parse(handshake.body.slice(handshake.body.indexOf('{'))) as { sid: string }).sid;
      const poll = raw(`${c.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, 'GET');
      await new Promise((r) => setTimeout(r, 50));
      const post = await raw(`${c.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, 'POST', '40');
      const polled = await poll;
      await new Promise((r) => setTimeout(r, 50));
      const health = await raw(`${c.url}/healthz`, 'GET');

      // Assert: engine.io answered both, socket.io refused the connect, and the process is still serving.
      expect(post.status).toBe(200);
      expect(polled.status).toBe(200);
      expect(polled.body).toContain('AUTH_REQUIRED');
      expect(health.status).toBe(200);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
