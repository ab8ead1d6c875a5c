/**
 * Clients for bench/cluster.ts, in a process of their own: connects `count` clients round-robin to
 * the given node URLs (websocket, join token), says hello, and answers every round start with a
 * constant delta over the global it carried. Driven over IPC: `{add: n}` connects n more, and the
 * process reports `{connected}` after each batch.
 *
 * Config as JSON in `CHORUS_SWARM_CONFIG`: { urls, taskId, token, modalities }.
 */
import { FakeClient, constantDelta, globalOf } from '../src/testing/fakeClient.js';

interface SwarmConfig {
  readonly urls: readonly string[];
  readonly taskId: string;
  readonly token: string;
  readonly modalities: readonly ('image' | 'text' | 'audio')[];
}

const config = JSON.parse(process.env['CHORUS_SWARM_CONFIG'] ?? '{}') as SwarmConfig;
const clients: FakeClient[] = [];
let next = 0;

async function addOne(): Promise<void> {
  const url = config.urls[next++ % config.urls.length]!;
  const client = await FakeClient.connect(url, { taskId: config.taskId, token: config.token });
  const res = await client.hello({ backend: 'cpu', modalities: [...config.modalities], numExamples: 10 });
  if (!res.ok) throw new Error(`hello refused: ${res.error.code}`);
  clients.push(client);
  void (async () => {
    for (;;) {
      let round;
      try {
        round = await client.roundStarts.next(3_600_000, 'round start');
      } catch {
        return;
      }
      const delta = constantDelta(globalOf(round), config.modalities, 0.001);
      await client.submitDelta(round, delta, 10, 'fp16').catch(() => undefined);
    }
  })();
}

process.on('message', (msg: { add?: number }) => {
  const n = msg.add ?? 0;
  void (async () => {
    let failed = 0;
    let firstError: string | undefined;
    for (let i = 0; i < n; i += 50) {
      const batch = Math.min(50, n - i);
      const results = await Promise.allSettled(Array.from({ length: batch }, () => addOne()));
      for (const r of results)
        if (r.status === 'rejected') {
          failed += 1;
          firstError ??= (r.reason as Error).message;
        }
    }
    process.send!({ connected: clients.length, failed, firstError });
  })();
});
process.send!({ ready: true });
