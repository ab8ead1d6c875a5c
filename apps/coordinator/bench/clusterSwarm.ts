/**
 * Clients for bench/cluster.ts, in a process of their own: connects `count` clients round-robin to
 * the given node URLs (websocket, join token), says hello, and answers every round start with a
 * delta over the global it carried: the same constant delta from every client, or with `noise` set,
 * fresh seeded Gaussian noise of that σ per client and round (bench/benchClients.ts does the same), so
 * no two candidates are alike and a FedMM-X probe cannot share an encoder pass between them. With
 * `trainMs`, each client waits that long after a round start before it uploads, as a client
 * training locally would (absent: it uploads at once, and rounds run back to back). Driven over
 * IPC: `{add: n}` connects n more, and the process reports `{connected}` after each batch.
 *
 * Config as JSON in `CHORUS_SWARM_CONFIG`: { urls, taskId, token, modalities, noise?, seed?, trainMs? }.
 */
import { createRng, gaussian } from '@chorus/fl-core';
import type { Rng, Tensor } from '@chorus/fl-core';
import { FakeClient, constantDelta, globalOf } from '../src/testing/fakeClient.js';

interface SwarmConfig {
  readonly urls: readonly string[];
  readonly taskId: string;
  readonly token: string;
  readonly modalities: readonly ('image' | 'text' | 'audio')[];
  /** σ of each client's Gaussian delta; absent: one constant delta (0.001) from every client. */
  readonly noise?: number;
  readonly seed?: number;
  /** How long a client "trains" before it uploads (ms); absent: no wait. */
  readonly trainMs?: number;
}

const config = JSON.parse(process.env['CHORUS_SWARM_CONFIG'] ?? '{}') as SwarmConfig;
const clients: FakeClient[] = [];
let next = 0;

/** `global`'s tensors of the client's modalities (and the shared groups), each value N(0, σ²) from `rng`. */
function noiseDelta(global: readonly Tensor[], rng: Rng, sigma: number): Tensor[] {
  return constantDelta(global, config.modalities, 0).map((t) => {
    for (let i = 0; i < t.values.length; i++) t.values[i] = gaussian(rng) * sigma;
    return t;
  });
}

async function addOne(): Promise<void> {
  const index = next++;
  const url = config.urls[index % config.urls.length]!;
  const rng = createRng((config.seed ?? 1) * 100_003 + index);
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
      if (config.trainMs) await new Promise((r) => setTimeout(r, config.trainMs));
      const global = globalOf(round);
      const delta = config.noise === undefined ? constantDelta(global, config.modalities, 0.001) : noiseDelta(global, rng, config.noise);
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
