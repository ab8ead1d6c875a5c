/**
 * A small FedMM-X task for tests of the server's model and its evaluator processes (digits, image
 * and text, 8 probe and 8 test examples), and deltas that move every adapter.
 */
import type { Tensor } from '@chorus/fl-core';
import { parseTask } from '../task/loadTask.js';

/** The test task with encoder base `base` (an unknown base makes a task the evaluator refuses). */
export const evaluatorTask = (base = 'chorus-digits-v1', id = 'evaluator') =>
  parseTask({
    id,
    dataset: { name: 'digits', modalities: ['image', 'text'] },
    model: { base, adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedmm-x' },
    evaluation: { probeExamples: 8, testExamples: 8 },
    rounds: 1,
    clientsPerRound: 2,
    minClients: 2,
    roundDeadlineMs: 30_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.01,
    maxUpdateBytes: 1_000_000,
    seed: 4,
  });

/** Every tensor of `ts` with each value replaced by `f(index)`: a delta that moves every adapter. */
export const filled = (ts: readonly Tensor[], f: (i: number) => number): Tensor[] =>
  ts.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map((_, i) => f(i)) }));
