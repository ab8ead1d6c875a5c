/**
 * Settings that only fl-core's constructors refuse come back from the loader with the file, line
 * and path too. The schema covers every such setting today, so the builder is replaced here by one
 * that refuses the way fromConfig does (a `TASK_INVALID` whose issues start with the strategy path).
 */
import { describe, expect, it, vi } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { TaskFileError, parseTaskYaml } from './loadTask.js';

vi.mock('../strategy/fromConfig.js', () => ({
  buildStrategy: (): never => {
    const issue = 'strategy.inner: AGG_BAD_CONFIG: Krum: numToKeep must be a positive integer, got 0';
    throw new CoordinatorError('TASK_INVALID', `task t1: strategy is invalid:\n  ${issue}`, [issue]);
  },
}));

const yaml = `id: t1
dataset: { name: digits, modalities: [image] }
model: { base: tiny, adapterRank: 4, adapterAlpha: 8, namConcepts: 8 }
strategy:
  name: clip
  maxNorm: 1
  inner: { name: krum, numByzantine: 1 }
rounds: 5
clientsPerRound: 10
minClients: 2
roundDeadlineMs: 1000
localEpochs: 1
batchSize: 16
learningRate: 0.01
maxUpdateBytes: 100000
`;

describe('strategy errors from a task file', () => {
  it('name the file and the line of the strategy the builder refused', () => {
    // Act
    const error = ((): unknown => {
      try {
        return parseTaskYaml(yaml, 'tasks/krum.yaml');
      } catch (err) {
        return err;
      }
    })();
    // Assert
    expect(error).toBeInstanceOf(TaskFileError);
    expect((error as TaskFileError).message).toBe(
      'TASK_INVALID: tasks/krum.yaml:7:3: strategy.inner: AGG_BAD_CONFIG: Krum: numToKeep must be a positive integer, got 0',
    );
    expect((error as TaskFileError).issues).toEqual(['strategy.inner: AGG_BAD_CONFIG: Krum: numToKeep must be a positive integer, got 0']);
  });
});
