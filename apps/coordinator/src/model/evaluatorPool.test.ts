/**
 * A pool of evaluator processes against the same model in this process: a round's candidates split
 * across the processes come back in order, bit for bit as one model scores them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCoordinatorError } from '../errors.js';
import { evaluatorTask, filled } from '../testing/evaluatorTask.js';
import { EvaluatorPool, splitEvenly } from './evaluatorPool.js';
import { inProcessEvaluator } from './taskEvaluator.js';
import type { TaskEvaluator } from './taskEvaluator.js';
import { TaskModel } from './taskModel.js';

const task = evaluatorTask({ id: 'pool' });

describe('splitEvenly', () => {
  it('cuts contiguous parts of whole blocks, as even as the blocks allow, in order', () => {
    const items = Array.from({ length: 21 }, (_, i) => i);
    const parts = splitEvenly(items, 2, 8);
    expect(parts.map((p) => p.length)).toEqual([16, 5]);
    expect(parts.flat()).toEqual(items);
    expect(splitEvenly(items, 3, 4).map((p) => p.length)).toEqual([8, 8, 5]);
    expect(splitEvenly(items.slice(0, 3), 2, 8)).toEqual([[0, 1, 2]]);
    expect(splitEvenly([], 2, 8)).toEqual([]);
  });
});

describe('EvaluatorPool', () => {
  let pool: EvaluatorPool;
  let local: TaskEvaluator;
  beforeAll(async () => {
    [pool, local] = await Promise.all([EvaluatorPool.start(task, 2, { probeBatch: 2 }), TaskModel.create(task).then(inProcessEvaluator)]);
  }, 180_000);
  afterAll(async () => {
    await pool?.close();
    await local?.close();
  });

  it('probes a round with its candidates split over two processes, in order and bit for bit as one model', async () => {
    // Arrange: 11 candidates, so both processes get some (blocks of 8).
    const global = pool.initialParameters();
    const deltas = Array.from({ length: 11 }, (_, k) => filled(global, (i) => 0.004 * (((i + 3 * k) % 9) - 4)));
    // Act
    const [a, b] = await Promise.all([pool.probeRound(global, deltas), local.probeRound(global, deltas)]);
    const alone = await pool.probeCandidates(global, deltas.slice(2, 5));
    // Assert
    expect(new Set(pool.pids).size).toBe(2);
    expect([...a.baseline.probabilities]).toEqual([...b.baseline.probabilities]);
    expect(a.candidates).toHaveLength(11);
    a.candidates.forEach((x, k) => {
      const y = b.candidates[k]!;
      if (!x.ok || !y.ok) throw new Error('a probe failed');
      expect([...x.probabilities]).toEqual([...y.probabilities]);
      expect(x.explanations!.map((e) => [...e])).toEqual(y.explanations!.map((e) => [...e]));
    });
    expect(alone.map((o) => (o.ok ? [...o.probabilities] : null))).toEqual(a.candidates.slice(2, 5).map((o) => (o.ok ? [...o.probabilities] : null)));
    // Distinct candidates give distinct outputs, so a swapped order would show.
    const first = a.candidates[0]!;
    const last = a.candidates[10]!;
    if (!first.ok || !last.ok) throw new Error('a probe failed');
    expect([...first.probabilities]).not.toEqual([...last.probabilities]);
  });

  it('evaluates with its first process, as one model does', async () => {
    const global = pool.initialParameters();
    expect(await pool.evaluate(global)).toEqual(await local.evaluate(global));
  });

  it('refuses a pool of fewer than two processes with a code', async () => {
    const err = await EvaluatorPool.start(task, 1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isCoordinatorError(err, 'EVALUATOR_ERROR')).toBe(true);
  });
});
