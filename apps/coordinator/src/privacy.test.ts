/**
 * Privacy accounting against what runs: a DP task with samplingRate q < 1 Poisson-samples its
 * clients exactly as the accountant assumes, and the ε the admin API serves (what the dashboard
 * shows) equals an independent computation for the sampling performed.
 */
import { tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { roundRng } from './engine/sampling.js';
import { startCoordinator } from './server.js';
import type { Coordinator } from './server.js';
import { MemoryStore } from './store/memoryStore.js';
import { parseTask } from './task/loadTask.js';
import { FakeClient, constantDelta, globalOf } from './testing/fakeClient.js';

const open: { coordinators: Coordinator[]; clients: FakeClient[] } = { coordinators: [], clients: [] };
afterEach(async () => {
  for (const c of open.clients.splice(0)) c.close();
  for (const c of open.coordinators.splice(0)) await c.close();
});

/**
 * ε of T releases of the Poisson-subsampled Gaussian mechanism, computed here from first
 * principles at integer orders: A_α = Σ_k C(α,k)(1−q)^(α−k) q^k exp((k²−k)/(2σ²)) (Mironov, Talwar,
 * Zhang 2019, arXiv:1908.10530, §3.3), RDP_α = T·log(A_α)/(α−1), then Balle et al.'s 2020 conversion
 * ε = RDP_α + log((α−1)/α) − (log δ + log α)/(α−1), minimised over α = 2…256.
 */
function independentEpsilon(q: number, sigma: number, releases: number, delta: number): number {
  let best = Infinity;
  for (let alpha = 2; alpha <= 256; alpha++) {
    // log-sum-exp over k of log C(α,k) + (α−k)·log(1−q) + k·log q + (k²−k)/(2σ²)
    const terms: number[] = [];
    let logBinom = 0;
    for (let k = 0; k <= alpha; k++) {
      if (k > 0) logBinom += Math.log(alpha - k + 1) - Math.log(k);
      terms.push(logBinom + (alpha - k) * Math.log1p(-q) + k * Math.log(q) + (k * k - k) / (2 * sigma * sigma));
    }
    const max = Math.max(...terms);
    const logA = max + Math.log(terms.reduce((s, t) => s + Math.exp(t - max), 0));
    const rdp = (releases * logA) / (alpha - 1);
    const eps = rdp + Math.log((alpha - 1) / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1);
    best = Math.min(best, eps);
  }
  return best;
}

describe('DP accounting matches the sampling performed', () => {
  it('Poisson-samples each attempt at q from the task seed, and serves the ε an independent computation gives', async () => {
    // Arrange: six clients, q = 0.5, σ = 1.2, three released rounds.
    const q = 0.5;
    const sigma = 1.2;
    const targetDelta = 1e-5;
    const task = parseTask({
      id: 'dp',
      dataset: { name: 'digits', modalities: ['image'] },
      model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
      strategy: { name: 'dp', clipNorm: 5, noiseMultiplier: sigma, samplingRate: q, delta: targetDelta, noise: 'seeded' },
      rounds: 3,
      // The release's denominator qW; the round opens once all six wait, so each sample is of the same six.
      clientsPerRound: 6,
      minClients: 6,
      overSelection: 0,
      waitingRoomMs: 0,
      roundDeadlineMs: 20_000,
      maxRoundAttempts: 20,
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.1,
      maxUpdateBytes: 4096,
      normBound: 100,
      seed: 11,
      // Every test client connects from 127.0.0.1: no per-address quota of new identities.
      admission: { newIdentitiesPerAddress: null },
    });
    const initialGlobal = (): Tensor[] => [tensor('image/w', [2], new Float32Array([0, 0])), tensor('fusion/b', [1], new Float32Array([0]))];
    const store = new MemoryStore();
    const c = await startCoordinator({
      tasks: [{ config: task, joinToken: 'join', initialGlobal }],
      store,
      adminToken: 'admin',
      logger: pino({ level: 'silent' }),
      retryDelayMs: 10,
      processMetrics: false,
    });
    open.coordinators.push(c);
    const clientIds: string[] = [];
    for (let i = 0; i < 6; i++) {
      const client = await FakeClient.connect(c.url, { taskId: 'dp', token: 'join' });
      open.clients.push(client);
      const hello = await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 5 });
      if (!hello.ok) throw new Error('hello refused');
      clientIds.push(hello.clientId);
      // Every invited client uploads a small delta at once.
      void (async () => {
        for (;;) {
          const round = await client.roundStarts.next(60_000, 'round start').catch(() => null);
          if (!round) return;
          await client.submitDelta(round, constantDelta(globalOf(round), ['image'], 0.1), 5).catch(() => undefined);
        }
      })();
    }
    // Act: wait for the task to finish.
    const deadline = Date.now() + 30_000;
    while (c.engines.get('dp')!.snapshot().phase !== 'finished' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const served = (await (await fetch(`${c.url}/api/tasks/dp/metrics`, { headers: { authorization: 'Bearer admin' } })).json()) as {
      metrics: { serverRound: number; metrics: Record<string, number> }[];
    };

    // Assert: every attempt invited exactly the Poisson sample of the sorted waiting room at q.
    expect(c.engines.get('dp')!.snapshot().phase).toBe('finished');
    const rounds = store.listRounds('dp');
    const sorted = [...clientIds].sort();
    for (const r of rounds) {
      const rng = roundRng(task.seed, r.serverRound, r.attempt);
      expect([...r.selected]).toEqual(sorted.filter(() => rng() < q));
    }
    // The cohort is a Poisson sample, not a fixed-size one: over the attempts its size is not always clientsPerRound.
    expect(rounds.length).toBeGreaterThanOrEqual(3);
    // The ε after each release is the independent value for that many releases at q and σ.
    const epsilons = served.metrics.map((m) => m.metrics['epsilon']!);
    expect(epsilons).toHaveLength(3);
    epsilons.forEach((eps, i) => {
      const independent = independentEpsilon(q, sigma, i + 1, targetDelta);
      // The accountant also tracks fractional orders, so it may be a hair tighter, never looser.
      expect(eps).toBeLessThanOrEqual(independent + 1e-9);
      expect(eps).toBeGreaterThan(independent * 0.98);
    });
  }, 60_000);
});
