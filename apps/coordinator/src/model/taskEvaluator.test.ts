/**
 * The evaluator process against the same model in this process: identical probe outputs and
 * evaluations; a killed evaluator fails the request in flight with a code and the next request
 * starts it again; a start that takes too long, or a task it cannot serve, is refused with a code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCoordinatorError } from '../errors.js';
import { evaluatorTask, filled } from '../testing/evaluatorTask.js';
import { EvaluatorProcess, inProcessEvaluator } from './taskEvaluator.js';
import type { TaskEvaluator } from './taskEvaluator.js';
import { TaskModel } from './taskModel.js';

const taskWith = (base: string) => evaluatorTask({ base });
const task = taskWith('chorus-digits-v1');

const refusal = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: unknown) => err,
  );

let remote: EvaluatorProcess;
let local: TaskEvaluator;
beforeAll(async () => {
  [remote, local] = await Promise.all([EvaluatorProcess.start(task, { probeBatch: 1 }), TaskModel.create(task).then(inProcessEvaluator)]);
}, 120_000);
afterAll(async () => {
  await remote?.close();
  await local?.close();
});

describe('EvaluatorProcess', () => {
  it('builds the same initial adapters and probes and evaluates exactly as the model in this process', async () => {
    // Arrange: the baseline plus two candidates, sent one per request (probeBatch 1) so batches are reassembled in order.
    const global = remote.initialParameters();
    const deltas = [filled(global, (i) => 0.01 * ((i % 7) - 3)), filled(global, (i) => -0.02 * ((i % 5) - 2))];
    // Act
    const [a, b] = await Promise.all([remote.probeRound(global, deltas), local.probeRound(global, deltas)]);
    const [evalA, evalB] = await Promise.all([remote.evaluate(global), local.evaluate(global)]);
    // Assert
    expect(global.map((t) => [t.name, [...t.values]])).toEqual(local.initialParameters().map((t) => [t.name, [...t.values]]));
    expect([...remote.probeLabels]).toEqual([...local.probeLabels]);
    expect([...a.baseline.probabilities]).toEqual([...b.baseline.probabilities]);
    expect(a.candidates).toHaveLength(2);
    for (let k = 0; k < 2; k++) {
      const [x, y] = [a.candidates[k]!, b.candidates[k]!];
      if (!x.ok || !y.ok) throw new Error('a probe failed');
      expect([...x.probabilities]).toEqual([...y.probabilities]);
      expect(x.explanations!.map((e) => [...e])).toEqual(y.explanations!.map((e) => [...e]));
      // The candidates differ from the baseline, so the deltas reached the model.
      expect([...x.probabilities]).not.toEqual([...a.baseline.probabilities]);
    }
    expect(evalA).toEqual(evalB);
  });

  it('fails the request in flight with EVALUATOR_EXITED when the evaluator dies, then starts it again for the next one', async () => {
    // Arrange
    const global = remote.initialParameters();
    const before = await remote.probeRound(global, []);
    const firstPid = remote.pid!;
    // Act: killed while a probe is in flight.
    const inFlight = remote.probeRound(global, [filled(global, () => 0.01)]);
    process.kill(firstPid, 'SIGKILL');
    const error = await refusal(inFlight);
    const after = await remote.probeRound(global, []);
    // Assert
    expect(isCoordinatorError(error, 'EVALUATOR_EXITED')).toBe(true);
    expect(remote.restartCount).toBe(1);
    expect(remote.pid).not.toBe(firstPid);
    expect([...after.baseline.probabilities]).toEqual([...before.baseline.probabilities]);
  }, 120_000);

  it('retires an evaluator whose WASM heap passed the cap, and raises a cap that a fresh evaluator cannot stay under', async () => {
    // Arrange: a 4 MB cap, below what building and evaluating the model takes (about 16 MB), so the first process is retired after its first request.
    const capped = await EvaluatorProcess.start(task, { maxWasmHeapMb: 4 });
    try {
      const global = capped.initialParameters();
      const firstPid = capped.pid;
      // Act
      const first = await capped.evaluate(global);
      const afterFirst = capped.pid;
      const again = [await capped.evaluate(global), await capped.evaluate(global), await capped.evaluate(global)];
      const { wasmHeapMb } = await capped.stats();
      // Assert: retired once (the next request started a fresh one), then the raised cap held.
      expect(afterFirst).toBeNull();
      expect(capped.restartCount).toBe(1);
      expect(capped.pid).not.toBe(firstPid);
      expect(capped.wasmHeapCapMb).toBeGreaterThan(wasmHeapMb);
      // The cap is bounded: at most 8 × the configured 4 MB.
      expect(capped.wasmHeapCapMb).toBeLessThanOrEqual(32);
      for (const e of again) expect(e).toEqual(first);
    } finally {
      await capped.close();
    }
  }, 120_000);

  it('suspends: the process exits, the initial parameters stay, and the next request starts it again with the same model', async () => {
    // Arrange
    const global = remote.initialParameters();
    const before = await remote.evaluate(global);
    const pid = remote.pid!;
    const restarts = remote.restartCount;
    // Act
    await remote.suspend();
    const whileSuspended = remote.pid;
    const initial = remote.initialParameters();
    const after = await remote.evaluate(global);
    // Assert
    expect(whileSuspended).toBeNull();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(initial.map((t) => [...t.values])).toEqual(global.map((t) => [...t.values]));
    expect(after).toEqual(before);
    expect(remote.restartCount).toBe(restarts + 1);
  }, 120_000);

  it('refuses with a code: a start past its time limit, a task it cannot serve, a request after close', async () => {
    // Act
    const slow = await refusal(EvaluatorProcess.start(task, { startTimeoutMs: 1 }));
    const unknownBase = await refusal(EvaluatorProcess.start(taskWith('no-such-base')));
    const pid = remote.pid!;
    await remote.close();
    const afterClose = await refusal(remote.evaluate(remote.initialParameters()));
    // Assert
    expect(isCoordinatorError(slow, 'EVALUATOR_TIMEOUT')).toBe(true);
    expect(isCoordinatorError(unknownBase, 'TASK_INVALID')).toBe(true);
    expect(isCoordinatorError(afterClose, 'EVALUATOR_EXITED')).toBe(true);
    expect(() => process.kill(pid, 0)).toThrow();
  }, 120_000);
});
