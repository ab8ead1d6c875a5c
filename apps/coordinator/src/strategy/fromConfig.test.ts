import { DEFAULT_MAX_HISTORIES, DifferentialPrivacy, FedAdam, FlTrust, NormClipping, TrustWeighting, createRng, tensor } from '@chorus/fl-core';
import type { FitResult, Krum, Tensor, SimilarityDamping } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { roundMetrics } from '../engine/roundRecords.js';
import type { AttemptState } from '../engine/engineState.js';
import { createRoundMeasurer } from '../engine/serverMeasurements.js';
import type { BuiltStrategy } from './fromConfig.js';
import type { TaskEvaluator } from '../model/taskEvaluator.js';
import { isCoordinatorError } from '../errors.js';
import type { CoordinatorError } from '../errors.js';
import { parseTask } from '../task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { buildStrategy, rootExamplesOf, withAdmission } from './fromConfig.js';

function task(strategy: unknown, extra: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 't',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy,
    rounds: 3,
    clientsPerRound: 4,
    minClients: 2,
    roundDeadlineMs: 1000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 10_000,
    seed: 9,
    ...extra,
  });
}

const global: Tensor[] = [tensor('image/w', [2], new Float32Array([0, 0]))];
const result = (clientId: string, values: number[]) => ({ clientId, numExamples: 1, delta: [tensor('image/w', [2], new Float32Array(values))] });

function refusal(fn: () => unknown): CoordinatorError {
  try {
    fn();
  } catch (err) {
    if (isCoordinatorError(err)) return err;
    throw err;
  }
  throw new Error('expected a CoordinatorError');
}

describe('buildStrategy', () => {
  it('builds every named strategy as its fl-core class, named as the task file names it', () => {
    // Arrange
    const names: [unknown, string][] = [
      [{ name: 'fedavg' }, 'fedavg'],
      [{ name: 'fedprox', proximalMu: 0.01 }, 'fedprox'],
      [{ name: 'fedavgm' }, 'fedavgm'],
      [{ name: 'fedadam' }, 'fedadam'],
      [{ name: 'fedyogi' }, 'fedyogi'],
      [{ name: 'fedadagrad' }, 'fedadagrad'],
      [{ name: 'median' }, 'median'],
      [{ name: 'trimmed-mean', trimFraction: 0.25 }, 'trimmed-mean'],
      [{ name: 'krum', numByzantine: 0 }, 'krum'],
      [{ name: 'multi-krum', numByzantine: 0 }, 'multi-krum'],
      [{ name: 'fltrust' }, 'fltrust'],
      [{ name: 'server-only' }, 'server-only'],
      [{ name: 'clip', maxNorm: 1, inner: { name: 'median' } }, 'clip(median)'],
      [{ name: 'fedmm-x', inner: { name: 'fedadam' } }, 'fedmm-x(fedadam)'],
      [{ name: 'fedmm-x', inner: { name: 'clip', maxNorm: 'median', perGroup: true } }, 'fedmm-x(clip-median(fedavg))'],
      [{ name: 'dp', clipNorm: 1, noiseMultiplier: 1, inner: { name: 'fedmm-x', minTrust: 0.3 } }, 'dp(fedmm-x(mintrust(fedavg)))'],
      [{ name: 'multi-krum-select', numByzantine: 1 }, 'multi-krum-select'],
      [{ name: 'clip', maxNorm: 'reference', inner: { name: 'fedavg' } }, 'clip-reference(fedavg)'],
      [{ name: 'fedmm-x', maxNorm: 'median' }, 'fedmm-x(clip-median(fedavg))'],
      [{ name: 'fedmm-x', maxNorm: 'reference', minTrust: 0.2 }, 'fedmm-x(mintrust(clip-reference(fedavg)))'],
    ];
    // Act
    const built = names.map(([config]) => buildStrategy(task(config)).strategy.name);
    // Assert
    expect(built).toEqual(names.map(([, name]) => name));
  });

  it('puts the admission section around the strategy: probation, similarity damping (a default) outermost, neither under DP', () => {
    // Arrange
    const cases: [Record<string, unknown>, Record<string, unknown>, string][] = [
      [{ name: 'fedmm-x' }, {}, 'similarity-damping(probation(fedmm-x(fedavg)))'],
      [{ name: 'fedmm-x' }, { admission: { similarityDamping: false } }, 'probation(fedmm-x(fedavg))'],
      [{ name: 'fedmm-x' }, { admission: { probationRounds: 0, similarityDamping: false } }, 'fedmm-x(fedavg)'],
      [{ name: 'fedavg' }, { admission: { similarityDamping: true, probationRounds: 1 } }, 'similarity-damping(fedavg)'],
      [{ name: 'dp', clipNorm: 1, noiseMultiplier: 1, inner: { name: 'fedavg' } }, {}, 'dp(fedavg)'],
    ];
    // Act
    const names = cases.map(([strategy, extra]) => {
      const t = task(strategy, extra);
      return withAdmission(t, buildStrategy(t)).name;
    });
    // Assert
    expect(names).toEqual(cases.map(([, , name]) => name));
    expect(task({ name: 'fedavg' }).admission.similarityDamping).toBe(true);
  });

  it("bounds the histories similarity damping keeps by admission.similarityMaxHistories (fl-core's default when left out, and then absent from the parsed task)", () => {
    // Arrange
    const plain = task({ name: 'fedavg' });
    const bounded = task({ name: 'fedavg' }, { admission: { similarityMaxHistories: 250 } });
    // Act
    const of = (t: TaskConfig) => withAdmission(t, buildStrategy(t)) as SimilarityDamping;
    // Assert
    expect(of(plain).maxHistories).toBe(DEFAULT_MAX_HISTORIES);
    expect(of(bounded).maxHistories).toBe(250);
    expect('similarityMaxHistories' in plain.admission).toBe(false);
    for (const bad of [1, 2.5, 2_000_000, null]) expect(() => task({ name: 'fedavg' }, { admission: { similarityMaxHistories: bad } })).toThrow();
  });

  it('offers partial sums (per-node sums on a cluster) for an exact-sum task only without similarity damping, which needs every update', () => {
    // Arrange
    const exact = { name: 'fedavg', exactSum: true };
    // Act
    const damped = task(exact);
    const undamped = task(exact, { admission: { similarityDamping: false } });
    // Assert
    expect(withAdmission(damped, buildStrategy(damped)).partials).toBeUndefined();
    expect(withAdmission(undamped, buildStrategy(undamped)).partials).toBeDefined();
  });

  it('hands back the parts the coordinator feeds, with FedProx μ for clients', () => {
    // Arrange / Act
    const nested = buildStrategy(
      task({
        name: 'dp',
        clipNorm: 1,
        noiseMultiplier: 1,
        noise: 'seeded',
        inner: { name: 'fedmm-x', inner: { name: 'clip', maxNorm: 2, inner: { name: 'fltrust' } } },
      }),
    );
    const prox = buildStrategy(task({ name: 'fedprox', proximalMu: 0.05 }));
    // Assert
    expect(nested.strategy).toBeInstanceOf(DifferentialPrivacy);
    expect(nested.privacy).toEqual([nested.strategy]);
    expect(nested.trust).toHaveLength(1);
    expect(nested.trust[0]).toBeInstanceOf(TrustWeighting);
    expect(nested.trust[0]!.inner).toBeInstanceOf(NormClipping);
    expect(nested.flTrust[0]).toBeInstanceOf(FlTrust);
    expect(nested.noise).toBe('seeded');
    expect(prox.strategy.configureFit({ serverRound: 1, availableClients: ['a'], rng: createRng(1) }).config).toMatchObject({ proximalMu: 0.05 });
    expect(buildStrategy(task({ name: 'fedadam', serverLearningRate: 0.3 })).strategy).toBeInstanceOf(FedAdam);
    expect((buildStrategy(task({ name: 'multi-krum', numByzantine: 1 }, { clientsPerRound: 5 })).strategy as Krum).numToKeep).toBe(4);
  });

  it('asks for the root update exactly when a part uses it, with the largest root data any part names', () => {
    const needs = (config: unknown) => {
      const t = task(config);
      const built = buildStrategy(t);
      return [built.needsRootUpdate, built.rootUpdate.length, rootExamplesOf(t)];
    };
    expect(needs({ name: 'fedmm-x' })).toEqual([false, 0, 0]);
    expect(needs({ name: 'fedmm-x', maxNorm: 'median' })).toEqual([false, 0, 0]);
    expect(needs({ name: 'fedmm-x', agreementReference: 'root', rootExamples: 40 })).toEqual([true, 0, 40]);
    expect(needs({ name: 'fedmm-x', maxNorm: 'reference' })).toEqual([true, 1, 100]);
    expect(needs({ name: 'fedmm-x', maxNorm: 'reference', rootExamples: 30, inner: { name: 'fltrust', rootExamples: 50 } })).toEqual([true, 2, 50]);
    expect(needs({ name: 'clip', maxNorm: 'reference', rootExamples: 20 })).toEqual([true, 1, 20]);
    expect(needs({ name: 'server-only' })).toEqual([true, 1, 100]);
  });

  it('refuses Multi-Krum selection that could keep nobody, and an unknown norm bound', () => {
    const error = refusal(() => task({ name: 'multi-krum-select', numByzantine: 4, numSelected: 5 }));
    expect(error.issues).toEqual(
      expect.arrayContaining([expect.stringMatching(/^strategy\.numByzantine: must be < clientsPerRound/), expect.stringMatching(/^strategy\.numSelected:/)]),
    );
    expect(refusal(() => task({ name: 'fedmm-x', maxNorm: 'mean' })).issues.some((i) => i.startsWith('strategy.maxNorm:'))).toBe(true);
    expect(refusal(() => task({ name: 'fedmm-x', agreementReference: 'probe' })).issues.some((i) => i.startsWith('strategy.agreementReference:'))).toBe(true);
  });

  it('plans the task’s over-selected cohort, and Poisson-samples at the DP sampling rate instead', () => {
    // Arrange
    const clients = Array.from({ length: 40 }, (_, k) => `c${String(k).padStart(2, '0')}`);
    const plan = (config: unknown, extra: Record<string, unknown> = {}) =>
      buildStrategy(task(config, extra)).strategy.configureFit({ serverRound: 1, availableClients: clients, rng: createRng(3) });
    // Act
    const cohort = plan({ name: 'fedavg' }, { clientsPerRound: 4, overSelection: 0.5 });
    const poisson = plan({ name: 'dp', clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.25 }, { overSelection: 0 });
    // Assert
    expect([cohort.clientIds.length, cohort.target]).toEqual([6, 4]);
    const draws = createRng(3);
    expect(poisson.clientIds).toEqual(clients.filter(() => draws() < 0.25));
    expect(poisson.target).toBe(poisson.clientIds.length);
  });

  it('refuses DP settings under which the reported ε would understate the leak, naming the path', () => {
    // Act
    const outer = refusal(() => buildStrategy(task({ name: 'fedmm-x', inner: { name: 'dp', clipNorm: 1, noiseMultiplier: 1 } })));
    const overSelected = refusal(() => buildStrategy(task({ name: 'dp', clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.5 }, { overSelection: 0.2 })));
    // Assert
    expect(outer.code).toBe('TASK_INVALID');
    expect(outer.issues[0]).toMatch(/^strategy\.inner: dp must be the outermost strategy: 'fedmm-x'/);
    expect(overSelected.issues[0]).toMatch(/^overSelection: must be 0 with strategy\.samplingRate < 1/);
    expect(() => buildStrategy(task({ name: 'dp', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1 }, { overSelection: 0.2 }))).not.toThrow();
  });

  it('turns an fl-core refusal into TASK_INVALID naming the strategy path', () => {
    // Arrange: values the schema would refuse, given straight to the builder (as a program might).
    const trimmed = { ...task({ name: 'fedavg' }), strategy: { name: 'trimmed-mean' as const, trimFraction: 0.7 } };
    const nested = {
      ...task({ name: 'fedavg' }),
      strategy: {
        name: 'clip' as const,
        maxNorm: 1,
        perGroup: false,
        rootExamples: 100,
        inner: { name: 'fedavgm' as const, serverLearningRate: 1, serverMomentum: 1.5 },
      },
    };
    // Act
    const errors = [refusal(() => buildStrategy(trimmed)), refusal(() => buildStrategy(nested))];
    // Assert
    expect(errors.map((e) => e.code)).toEqual(['TASK_INVALID', 'TASK_INVALID']);
    expect(errors[0]!.issues[0]).toMatch(/^strategy: AGG_BAD_CONFIG: FedTrimmedAvg: trimFraction/);
    expect(errors[1]!.issues[0]).toMatch(/^strategy\.inner: AGG_BAD_CONFIG/);
  });

  it('refuses bad strategy settings in a task file with TASK_INVALID', () => {
    // Act
    const error = refusal(() => task({ name: 'fedmm-x', historyDecay: 1, weights: { history: 1 } }));
    // Assert
    expect(error.code).toBe('TASK_INVALID');
    expect(error.issues.some((i) => i.startsWith('strategy.historyDecay:'))).toBe(true);
    expect(error.issues.some((i) => i.startsWith('strategy.weights:'))).toBe(true);
  });
});

/** One round through the task's measurer and strategy, with the figures the engine would store. */
function aggregate(built: BuiltStrategy, serverRound: number, results: readonly FitResult[]) {
  const measured = createRoundMeasurer(built, null)(serverRound, global, results, []);
  if (measured instanceof Promise) throw new Error('expected synchronous measurements without a model');
  const out = built.strategy.aggregateFit(serverRound, global, measured.results, measured.failures);
  if (!out) return null;
  const cur: AttemptState = {
    serverRound,
    attempt: 1,
    roundId: 'r',
    selected: new Set(results.map((r) => r.clientId)),
    target: results.length,
    minUpdates: 1,
    deadlineAt: 0,
    results,
    failures: [],
    uploaded: new Set(results.map((r) => r.clientId)),
    dropped: new Set(),
    bytesIn: 0,
    normSum: 0,
  };
  return { ...out, stored: roundMetrics({ cur, outcome: out, serverMetrics: measured.serverMetrics, evaluation: null, evalMs: null, aggregationMs: 0 }) };
}

describe('the task strategy without a model', () => {
  it('draws the same DP noise twice when seeded and different noise from the CSPRNG, and reports ε growing', () => {
    // Arrange
    const seeded = () => buildStrategy(task({ name: 'dp', clipNorm: 10, noiseMultiplier: 1, noise: 'seeded' }));
    const crypto = () => buildStrategy(task({ name: 'dp', clipNorm: 10, noiseMultiplier: 1 }));
    const round = [result('a', [1, 0]), result('b', [0, 1])];
    // Act
    const [s1, s2, c1, c2] = [seeded(), seeded(), crypto(), crypto()].map((built) => aggregate(built, 1, round));
    const again = seeded();
    aggregate(again, 1, round);
    const second = aggregate(again, 2, round);
    // Assert
    expect([...s1!.parameters[0]!.values]).toEqual([...s2!.parameters[0]!.values]);
    expect([...c1!.parameters[0]!.values]).not.toEqual([...c2!.parameters[0]!.values]);
    expect(s1!.stored['epsilon']).toBeGreaterThan(0);
    expect(second!.stored['epsilon']).toBeGreaterThan(s1!.stored['epsilon']!);
    expect(s1!.stored['delta']).toBe(1e-5);
  });

  it('scores trust from update agreement, drops clients below minTrust, and reports T_k apart from the metrics', () => {
    // Arrange: a, b, c, e agree (median (1, 0)); d points elsewhere (cos ≈ 0.55 with the median).
    const round = [result('a', [1, 0]), result('b', [1, 0.1]), result('c', [1, -0.1]), result('e', [1, 0]), result('d', [1, 1.5])];
    const strict = buildStrategy(task({ name: 'fedmm-x', minTrust: 0.6 }));
    const lenient = buildStrategy(task({ name: 'fedmm-x' }));
    // Act
    const out = aggregate(strict, 1, round);
    const all = aggregate(lenient, 1, round);
    // Assert: b and c are mirror images with equal trust, so without d the second coordinate cancels.
    const trust = Object.fromEntries(out!.trust!.map((t) => [t.clientId, t.trust]));
    expect(trust['d']).toBeLessThan(0.6);
    expect(trust['a']).toBeGreaterThan(0.6);
    expect(out!.parameters[0]!.values[0]).toBeCloseTo(1, 5);
    expect(out!.parameters[0]!.values[1]).toBeCloseTo(0, 6);
    expect(out!.stored['numUntrusted']).toBe(1);
    expect(all!.parameters[0]!.values[1]).toBeGreaterThan(0.1);
    expect(Object.keys(out!.metrics).some((k) => k.startsWith('trust:'))).toBe(false);
  });

  it('bounds a scaled update under the recommended FedMM-X configuration, and without it does not', () => {
    // Arrange: four honest clients near (1, 0) and one ×20 update that still points roughly the same way.
    const round = [result('a', [1, 0.1]), result('b', [1, -0.1]), result('c', [0.9, 0]), result('e', [1.1, 0]), result('x', [20, 10])];
    const weights = { agreement: 1, accuracy: 0, loss: 0, calibration: 0, explanation: 0 };
    // Act
    const bounded = aggregate(buildStrategy(task({ name: 'fedmm-x', weights, maxNorm: 'median' })), 1, round)!;
    const plain = aggregate(buildStrategy(task({ name: 'fedmm-x', weights })), 1, round)!;
    // Assert
    const off = (v: Float32Array) => Math.hypot(v[0]! - 1, v[1]!);
    expect(off(bounded.parameters[0]!.values)).toBeLessThan(0.3);
    expect(off(plain.parameters[0]!.values)).toBeGreaterThan(2);
    expect(bounded.metrics['image:clipBound']).toBeCloseTo(Math.hypot(1, 0.1), 5);
  });

  it('with the root reference and no root update this round, agreement is absent and every client keeps its prior', () => {
    const out = aggregate(buildStrategy(task({ name: 'fedmm-x', agreementReference: 'root' })), 1, [
      result('a', [1, 0]),
      result('b', [-1, 0]),
      result('c', [-1, 0]),
    ])!;
    expect(out.trust!.map((t) => t.trust)).toEqual([0.5, 0.5, 0.5]);
  });
});

describe('the task strategy with the server’s root update', () => {
  /** An evaluator whose probe says nothing (uniform outputs) and whose root update is `root`; it counts root updates. */
  function fakeEvaluator(root: Tensor[]): TaskEvaluator & { rootCalls: number } {
    const uniform = new Float32Array([0.5, 0.5, 0.5, 0.5]);
    const fake = {
      rootCalls: 0,
      modalities: ['image' as const],
      probeLabels: Int32Array.of(0, 1),
      initialParameters: () => global,
      probeRound: async (_g: unknown, deltas: readonly unknown[]) => ({
        baseline: { probabilities: uniform },
        candidates: deltas.map(() => ({ ok: true as const, probabilities: uniform })),
      }),
      evaluate: async () => ({}),
      rootUpdate: async () => {
        fake.rootCalls += 1;
        return root;
      },
      exportMerged: () => Promise.reject(new Error('unused')),
      exportAdapters: () => Promise.reject(new Error('unused')),
      close: async () => undefined,
    };
    return fake;
  }

  it('keeps a colluding majority out and bounds the round by the root update’s norm when the task says so', async () => {
    // Arrange: 3 honest clients near (1, 0), 4 identical attackers at (−3, 1.5); the root update (0.6, 0.8) has norm 1.
    const honest = [result('a', [1, 0.1]), result('b', [1, -0.1]), result('c', [2, 0])];
    const sybils = ['s1', 's2', 's3', 's4'].map((id) => result(id, [-3, 1.5]));
    const weights = { agreement: 1, accuracy: 0, loss: 0, calibration: 0, explanation: 0 };
    const built = buildStrategy(task({ name: 'fedmm-x', weights, historyDecay: 0, agreementReference: 'root', maxNorm: 'reference' }, { clientsPerRound: 7 }));
    const evaluator = fakeEvaluator([tensor('image/w', [2], new Float32Array([0.6, 0.8]))]);
    // Act
    const measured = await createRoundMeasurer(built, evaluator)(1, global, [...honest, ...sybils], []);
    const out = built.strategy.aggregateFit(1, global, measured.results, measured.failures)!;
    // Assert: the root update was trained once; every attacker is untrusted; the honest updates are clipped to norm 1.
    expect(evaluator.rootCalls).toBe(1);
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual(sybils.map((s) => [s.clientId, 'UNTRUSTED']));
    expect(out.metrics['image:clipBound']).toBeCloseTo(1, 6);
    expect(out.metrics['image:clipBoundFromReference']).toBe(1);
    expect(Math.hypot(...out.parameters[0]!.values)).toBeLessThanOrEqual(1 + 1e-6);
    expect(out.parameters[0]!.values[0]).toBeGreaterThan(0.9);
  });

  it('trains no root update when nothing in the strategy uses it', async () => {
    const evaluator = fakeEvaluator([]);
    await createRoundMeasurer(buildStrategy(task({ name: 'fedmm-x', maxNorm: 'median' })), evaluator)(1, global, [result('a', [1, 0])], []);
    expect(evaluator.rootCalls).toBe(0);
  });
});
