/**
 * No process that is not needed: a task whose rounds never use the model keeps no evaluator
 * process; one whose rounds do suspends it while idle and starts it again when a round opens.
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { EvaluatorProcess } from './model/taskEvaluator.js';
import { startCoordinator } from './server.js';
import type { Coordinator } from './server.js';
import { MemoryStore } from './store/memoryStore.js';
import { parseTask } from './task/loadTask.js';
import { FakeClient, constantDelta, globalOf } from './testing/fakeClient.js';

const taskOf = (id: string, testExamples: number) =>
  parseTask({
    id,
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    evaluation: { probeExamples: 8, testExamples },
    rounds: 1,
    clientsPerRound: 2,
    minClients: 2,
    overSelection: 0,
    waitingRoomMs: 0,
    roundDeadlineMs: 30_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.01,
    maxUpdateBytes: 1_000_000,
    seed: 3,
    // The scripted clients' deltas are parallel (constant values): similarity damping would take them for copies.
    admission: { similarityDamping: false },
  });

const open: { coordinator?: Coordinator; clients: FakeClient[] } = { clients: [] };
afterAll(async () => {
  for (const c of open.clients) c.close();
  await open.coordinator?.close();
});

const waitFor = async (check: () => boolean, ms: number): Promise<boolean> => {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return check();
};

describe('evaluator processes', () => {
  it('keeps none for a FedAvg task without evaluation, and runs one only around the rounds of a task that evaluates', async () => {
    // Arrange
    const plain = taskOf('plain', 0);
    const evaluated = taskOf('evaluated', 8);
    const c = await startCoordinator({
      tasks: [
        { config: plain, joinToken: 'join' },
        { config: evaluated, joinToken: 'join' },
      ],
      store: new MemoryStore(),
      logger: pino({ level: 'silent' }),
      processMetrics: false,
      evaluatorIdleMs: 50,
    });
    open.coordinator = c;
    const evaluator = (id: string) => c.models.get(id) as EvaluatorProcess;
    // Act / Assert: at once for the plain task, after the idle time for the other.
    expect(evaluator('plain').pid).toBeNull();
    expect(await waitFor(() => evaluator('evaluated').pid === null, 5_000)).toBe(true);

    // Act: two clients join the evaluated task; the round opens and the evaluator starts while they train.
    const clients = await Promise.all([0, 1].map(() => FakeClient.connect(c.url, { taskId: 'evaluated', token: 'join' })));
    open.clients.push(...clients);
    for (const client of clients) await client.hello({ backend: 'cpu', modalities: ['image'], numExamples: 4 });
    const rounds = await Promise.all(clients.map((client) => client.roundStarts.next(10_000, 'round start')));
    const startedForRound = await waitFor(() => evaluator('evaluated').pid !== null, 30_000);
    await Promise.all(clients.map((client, i) => client.submitDelta(rounds[i]!, constantDelta(globalOf(rounds[i]!), ['image'], 0.001), 4)));
    const end = await clients[0]!.taskEnds.next(60_000, 'task end');

    // Assert: the round was evaluated, and the finished task let its evaluator go again.
    expect(startedForRound).toBe(true);
    expect(end.status).toBe('finished');
    expect(c.engines.get('evaluated')!.snapshot().completedRounds).toBe(1);
    expect(await waitFor(() => evaluator('evaluated').pid === null, 5_000)).toBe(true);
    expect(evaluator('plain').pid).toBeNull();
  }, 120_000);
});
