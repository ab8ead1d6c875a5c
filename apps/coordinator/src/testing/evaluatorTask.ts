/**
 * A small FedMM-X task for tests of the server's model and its evaluator processes (digits, image
 * and text, 8 probe and 8 test examples), and deltas that move every adapter.
 */
import type { Tensor } from '@chorus/fl-core';
import { parseTask } from '../task/loadTask.js';

/** What a test may change of the task (an unknown `base` makes a task the evaluator refuses). */
export interface EvaluatorTaskOptions {
  readonly id?: string;
  readonly base?: string;
  readonly modalities?: readonly string[];
  readonly probeExamples?: number;
  readonly testExamples?: number;
  readonly seed?: number;
}

/** The test task: digits, image and text, 8 probe and 8 test examples, seed 4, unless told otherwise. */
export const evaluatorTask = (options: EvaluatorTaskOptions = {}) =>
  parseTask({
    id: options.id ?? 'evaluator',
    dataset: { name: 'digits', modalities: [...(options.modalities ?? ['image', 'text'])] },
    model: { base: options.base ?? 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedmm-x' },
    evaluation: { probeExamples: options.probeExamples ?? 8, testExamples: options.testExamples ?? 8 },
    rounds: 1,
    clientsPerRound: 2,
    minClients: 2,
    roundDeadlineMs: 30_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.01,
    maxUpdateBytes: 1_000_000,
    seed: options.seed ?? 4,
  });

/** Every tensor of `ts` with each value replaced by `f(index)`: a delta that moves every adapter. */
export const filled = (ts: readonly Tensor[], f: (i: number) => number): Tensor[] =>
  ts.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map((_, i) => f(i)) }));
