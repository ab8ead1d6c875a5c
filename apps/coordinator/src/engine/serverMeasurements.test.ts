/**
 * The server's measurements with a model: the measurer waits for the evaluator's probe without
 * blocking, leaves a candidate the evaluator could not probe out of the round with a code, and
 * rejects (before the strategy runs, so no strategy state changes) when the evaluator fails outright.
 */
import { tensor } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import type { RoundProbe, TaskEvaluator } from '../model/taskEvaluator.js';
import { buildStrategy } from '../strategy/fromConfig.js';
import { parseTask } from '../task/loadTask.js';
import { createRoundMeasurer } from './serverMeasurements.js';
import type { PreProbe } from './serverMeasurements.js';

const task = parseTask({
  id: 't',
  dataset: { name: 'digits', modalities: ['image'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedmm-x' },
  rounds: 3,
  clientsPerRound: 3,
  minClients: 2,
  roundDeadlineMs: 1000,
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.1,
  maxUpdateBytes: 10_000,
  seed: 9,
});

const global: Tensor[] = [tensor('image/w', [2], new Float32Array([0, 0]))];
const result = (clientId: string, values: number[]) => ({ clientId, numExamples: 1, delta: [tensor('image/w', [2], new Float32Array(values))] });
// Two probe examples, two classes; labels [0, 1]. A confident, correct model and a uniform one.
const labels = new Int32Array([0, 1]);
const correct = new Float32Array([0.9, 0.1, 0.1, 0.9]);
const uniform = new Float32Array([0.5, 0.5, 0.5, 0.5]);

/** An evaluator that answers from a script, records what it was asked, and fails when told to. */
function fakeEvaluator(answer: (deltas: readonly Parameters[]) => RoundProbe | Error): TaskEvaluator & { asked: number[] } {
  const asked: number[] = [];
  const unused = (): never => {
    throw new Error('not used by this test');
  };
  return {
    asked,
    modalities: ['image'],
    probeLabels: labels,
    initialParameters: () => global,
    probeRound: async (_global, deltas) => {
      asked.push(deltas.length);
      const out = answer(deltas);
      if (out instanceof Error) throw out;
      return out;
    },
    evaluate: unused,
    rootUpdate: unused,
    exportMerged: unused,
    exportAdapters: unused,
    close: async () => undefined,
  };
}

describe('createRoundMeasurer with an evaluator', () => {
  it('probes every candidate in one round request and leaves out, with PROBE_FAILED, the one the evaluator could not probe', async () => {
    // Arrange: b's probe failed in the evaluator.
    const evaluator = fakeEvaluator(() => ({
      baseline: { probabilities: uniform },
      candidates: [
        { ok: true, probabilities: correct },
        { ok: false, error: { code: 'MODELS_BAD_INPUT', message: 'bad adapters' } },
        { ok: true, probabilities: correct },
      ],
    }));
    const built = buildStrategy(task);
    const measure = createRoundMeasurer(built, evaluator);
    // Act
    const pending = measure(1, global, [result('a', [1, 0]), result('b', [-5, 5]), result('c', [1, 0])], []);
    const measured = await pending;
    const out = built.strategy.aggregateFit(1, global, measured.results, measured.failures);
    // Assert: a promise (the event loop is free meanwhile); b neither weighs in nor gets a T_k.
    expect(pending).toBeInstanceOf(Promise);
    expect(evaluator.asked).toEqual([3]);
    expect(measured.failures).toEqual([{ clientId: 'b', code: 'PROBE_FAILED', message: 'MODELS_BAD_INPUT: bad adapters' }]);
    expect(out!.trust!.map((t) => t.clientId).sort()).toEqual(['a', 'c']);
    expect([...out!.parameters[0]!.values]).toEqual([1, 0]);
    expect(measured.serverMetrics['numProbeFailed']).toBe(1);
    expect(measured.serverMetrics['probeExamples']).toBe(2);
  });

  it('rejects with the evaluator’s code and keeps the strategy state when the evaluator fails', async () => {
    // Arrange
    const evaluator = fakeEvaluator(() => new CoordinatorError('EVALUATOR_EXITED', 'the evaluator exited'));
    const built = buildStrategy(task);
    const measure = createRoundMeasurer(built, evaluator);
    const before = JSON.stringify(built.strategy.exportState().json);
    // Act
    const error = await Promise.resolve(measure(1, global, [result('a', [1, 0]), result('b', [1, 0])], [])).then(
      () => null,
      (err: unknown) => err,
    );
    // Assert
    expect(isCoordinatorError(error, 'EVALUATOR_EXITED')).toBe(true);
    expect(JSON.stringify(built.strategy.exportState().json)).toBe(before);
  });

  it('takes outcomes measured on arrival or elsewhere, probes only the rest, and probes again a candidate whose arrival probe came to nothing', async () => {
    // Arrange: a measured on arrival (12 ms of evaluator time), b relayed from another node, c's
    // arrival probe failed (undefined), d never probed before the close.
    const evaluator = fakeEvaluator((deltas) => ({
      baseline: { probabilities: uniform },
      candidates: deltas.map(() => ({ ok: true, probabilities: correct })),
    }));
    const pre = new Map<string, PreProbe>([
      ['a', { where: 'arrival', measured: Promise.resolve({ outcome: { ok: true, probabilities: correct }, ms: 12 }) }],
      ['b', { where: 'elsewhere', outcome: { ok: true, probabilities: correct } }],
      ['c', { where: 'arrival', measured: Promise.resolve(undefined) }],
    ]);
    const taken: string[] = [];
    const measure = createRoundMeasurer(buildStrategy(task), evaluator, (clientId) => {
      taken.push(clientId);
      return pre.get(clientId);
    });
    // Act
    const measured = await measure(1, global, [result('a', [1, 0]), result('b', [1, 0]), result('c', [1, 0]), result('d', [1, 0])], []);
    // Assert: c and d (and the baseline) in one request; every client keeps its probe outputs.
    expect(taken).toEqual(['a', 'b', 'c', 'd']);
    expect(evaluator.asked).toEqual([2]);
    expect(measured.results.map((r) => r.clientId)).toEqual(['a', 'b', 'c', 'd']);
    expect(measured.results.every((r) => r.signals !== undefined)).toBe(true);
    expect(measured.failures).toEqual([]);
    expect(measured.serverMetrics['numProbedOnArrival']).toBe(1);
    expect(measured.serverMetrics['numProbedElsewhere']).toBe(1);
    // This node's evaluator time per candidate counts a's arrival share: (own + 12) / (2 + 1 + 1).
    expect(measured.serverMetrics['probeMsPerCandidate']).toBeGreaterThanOrEqual(12 / 4);
  });

  it('stays synchronous without a model', () => {
    // Arrange
    const built = buildStrategy(task);
    // Act
    const measured = createRoundMeasurer(built, null)(1, global, [{ ...result('a', [1, 0]), signals: { smuggled: 1 } }, result('b', [1, 0])], []);
    // Assert: synchronous, and a client's own signals never reach the strategy.
    expect(measured).not.toBeInstanceOf(Promise);
    if (measured instanceof Promise) return;
    expect(measured.results.every((r) => r.signals === undefined)).toBe(true);
    expect([...built.strategy.aggregateFit(1, global, measured.results, measured.failures)!.parameters[0]!.values]).toEqual([1, 0]);
  });
});
