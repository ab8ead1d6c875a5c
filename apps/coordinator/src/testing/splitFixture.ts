/** What the split-task tests share: the small split task and its headless clients (the client runtime, WASM). */
import type { TaskConfig } from '@chorus/protocol';
import { parseTask } from '../task/loadTask.js';

export const SPLIT_MODALITIES = ['image', 'text'] as const;

/** A split task over image + text of the digits base, small enough for tests (c 4, d 8, one block); `overrides` on top. */
export function splitTestTask(overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'split',
    dataset: { name: 'digits', modalities: [...SPLIT_MODALITIES] },
    model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    split: { fusedDim: 8, numBlocks: 1, numHeads: 2, returnEncoding: 'fp32', maxPendingSteps: 8, stepTimeoutMs: 20_000 },
    evaluation: { probeExamples: 8, testExamples: 32 },
    rounds: 2,
    clientsPerRound: 2,
    minClients: 1,
    overSelection: 0,
    waitingRoomMs: 200,
    roundDeadlineMs: 60_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.01,
    maxUpdateBytes: 1_000_000,
    admission: { proofOfWorkBits: 0, probationRounds: 0 },
    seed: 3,
    ...overrides,
  });
}

/**
 * Two headless clients of `taskId` at `url` (the client runtime on the WASM backend, 24 IID digits
 * examples each, both modalities); `close` closes them and frees their models.
 */
export async function splitHeadlessClients(url: string, taskId: string, token: string) {
  const { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } = await import('@chorus/client/node');
  await useNodeBackend('wasm');
  const models = createNodeDigitsFactory({ adapterAlpha: 4 });
  const made = await createHeadlessClients({
    url,
    taskId,
    token,
    models,
    backend: 'wasm',
    dataset: 'digits',
    numClients: 2,
    scheme: 'iid',
    modalities: [...SPLIT_MODALITIES],
    maxExamplesPerClient: 24,
    seed: 4,
    client: { evalExamples: 8 },
  });
  return {
    clients: made.map(({ client }) => client),
    /** Starts every client and resolves with how each ended. */
    runToTheEnd: () =>
      Promise.all(
        made.map(async ({ client }) => {
          await client.start();
          return client.finished();
        }),
      ),
    async close(): Promise<void> {
      await Promise.all(made.map(({ client }) => client.close()));
      models.dispose();
    },
  };
}
