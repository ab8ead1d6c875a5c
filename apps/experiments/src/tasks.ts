/**
 * Task configurations of the experiments: the demo digits task with the experiment's overrides,
 * validated by the coordinator's own schema, so an experiment can only run what a task file could.
 */
import type { ModelFactory } from '@chorus/client';
import { headlessOptions, parseCliArgs, partitionBuiltin } from '@chorus/client/node';
import type { HeadlessShard } from '@chorus/client/node';
import { MODALITIES } from '@chorus/fl-core';
import { parseTask } from '@chorus/coordinator';
import type { TaskConfig } from '@chorus/coordinator';

/** Fields of the base task every experiment starts from (the demo task's model and data, tuned for short runs). */
export const BASE_TASK = {
  dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
  model: { base: 'chorus-digits-v1', adapterRank: 4, adapterAlpha: 8, namConcepts: 8 },
  strategy: { name: 'fedavg' },
  evaluation: { probeExamples: 64, testExamples: 256 },
  rounds: 10,
  clientsPerRound: 10,
  minClients: 10,
  overSelection: 0,
  roundDeadlineMs: 600_000,
  waitingRoomMs: 1_000,
  maxRoundAttempts: 3,
  localEpochs: 1,
  batchSize: 32,
  learningRate: 0.01,
  uploadEncoding: 'fp32',
  maxUpdateBytes: 4_194_304,
  normBound: null,
  // The sections compare aggregation rules among established clients; similarity damping, an
  // admission defence against Sybils, is measured in the Sybil section, which sets its own section.
  admission: { similarityDamping: false },
  seed: 0,
} as const;

/** The base task with `overrides` applied (shallow, per top-level key), validated; throws a coded CoordinatorError when invalid. */
export function experimentTask(id: string, overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({ ...BASE_TASK, id, ...overrides }, `experiment task ${id}`);
}

/**
 * The shards `numClients` headless clients of `dataset` compute with the partition flags `args`
 * (`--alpha`, `--seed`, …): the same command line, so the same partitioner and the same examples.
 */
export async function headlessShards(dataset: string, numClients: number, args: readonly string[], models: ModelFactory): Promise<HeadlessShard[]> {
  const cli = parseCliArgs([
    '--url',
    'http://127.0.0.1:1',
    '--task',
    'shards',
    '--clients',
    String(numClients),
    '--dataset',
    dataset,
    '--modalities',
    MODALITIES.join(','),
    ...args,
  ]);
  return partitionBuiltin(headlessOptions(cli, 'wasm', models));
}
