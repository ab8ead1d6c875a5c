import { describe, expect, it } from 'vitest';
import { isFlCoreError } from '../errors.js';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { createRng } from '../rng.js';
import { FedAvg, FedProx } from './fedAvg.js';
import { FedAvgMStrategy } from './fedAvgM.js';
import { FedAdagrad, FedAdam, FedYogi } from './fedOpt.js';
import { FedMedian } from './fedMedian.js';
import { FedTrimmedAvg } from './fedTrimmedAvg.js';
import { FlTrust, ServerOnly } from './flTrust.js';
import { Krum } from './krum.js';
import { NormClipping } from './normClipping.js';
import { DifferentialPrivacy } from './differentialPrivacy.js';
import { Probation } from './probation.js';
import { SimilarityDamping } from './similarityDamping.js';
import { TrustWeighting } from './trustWeighting.js';
import type { FitResult, Strategy, StrategyState } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const values = (params: Parameters) => Object.fromEntries(params.map((p) => [p.name, Array.from(p.values)]));
const fit = (clientId: string, numExamples: number, ...delta: Parameters[number][]): FitResult => ({ clientId, numExamples, delta });

const global = [t('image/w', 0, 0), t('text/w', 10, 10), t('audio/w', 5)];
// Image-only, text-only and both-modality clients.
const round = [fit('a', 1, t('image/w', 1, 1)), fit('b', 3, t('text/w', 2, 4)), fit('c', 1, t('image/w', 3, 3), t('text/w', 4, 0))];

/** Exported state after a trip through JSON, as a checkpoint file would hold it. */
function checkpoint(state: StrategyState): StrategyState {
  return {
    json: JSON.parse(JSON.stringify(state.json)) as StrategyState['json'],
    tensors: state.tensors.map((x) => tensor(x.name, x.shape, Float32Array.from(JSON.parse(JSON.stringify(Array.from(x.values))) as number[]))),
  };
}

describe('configureFit', () => {
  it('samples max(fraction · available, minFitClients) clients reproducibly from the rng', () => {
    const strategy = new FedAvg({ fractionFit: 0.5, minFitClients: 3 });
    const clients = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'];

    const plan = strategy.configureFit({ serverRound: 1, availableClients: clients, rng: createRng(1) });
    const again = strategy.configureFit({ serverRound: 1, availableClients: [...clients].reverse(), rng: createRng(1) });
    const few = strategy.configureFit({ serverRound: 1, availableClients: ['c1', 'c2', 'c3', 'c4'], rng: createRng(1) });

    expect(plan.clientIds).toHaveLength(4);
    expect(new Set(plan.clientIds).size).toBe(4);
    expect(again.clientIds).toEqual(plan.clientIds);
    expect(few.clientIds).toHaveLength(3);
    expect(plan.config).toEqual({ serverRound: 1 });
  });

  it('invites an over-selected fixed cohort and waits for clientsPerRound of it', () => {
    const clients = Array.from({ length: 10 }, (_, k) => `c${k}`);
    const strategy = new FedAvg({ cohort: { clientsPerRound: 3, overSelection: 0.5 } });
    const plan = strategy.configureFit({ serverRound: 1, availableClients: clients, rng: createRng(2) });
    expect(plan.clientIds).toHaveLength(5);
    expect(plan.target).toBe(3);
    const few = strategy.configureFit({ serverRound: 1, availableClients: ['a', 'b'], rng: createRng(2) });
    expect([few.clientIds.length, few.target]).toEqual([2, 2]);
    expect(() => new FedAvg({ cohort: { clientsPerRound: 0, overSelection: 0 } })).toThrowError(/AGG_BAD_CONFIG/);
  });

  it('asks nobody when fewer than minAvailableClients are connected', () => {
    const plan = new FedAvg({ minAvailableClients: 3 }).configureFit({ serverRound: 2, availableClients: ['x', 'y'], rng: createRng(0) });
    expect(plan.clientIds).toEqual([]);
  });

  it('FedProx sends proximalMu with the static round config', () => {
    const plan = new FedProx({ proximalMu: 0.01, roundConfig: { localEpochs: 2 } }).configureFit({
      serverRound: 3,
      availableClients: ['x'],
      rng: createRng(0),
    });
    expect(plan.config).toEqual({ localEpochs: 2, proximalMu: 0.01, serverRound: 3 });
  });

  it('rejects bad options', () => {
    expect(() => new FedAvg({ fractionFit: 0 })).toThrowError(/AGG_BAD_CONFIG/);
    expect(() => new FedProx({ proximalMu: -1 })).toThrowError(/AGG_BAD_CONFIG/);
    expect(() => new Krum({ numByzantine: -1 })).toThrowError(/AGG_BAD_CONFIG/);
    expect(() => new FedAdam({ beta2: 1 })).toThrowError(/AGG_BAD_CONFIG/);
  });
});

describe('aggregateFit', () => {
  it('FedAvg aggregates groupwise and reports per group', () => {
    const out = new FedAvg().aggregateFit(1, global, round, [{ clientId: 'd', code: 'TIMEOUT' }])!;

    expect(values(out.parameters)).toEqual({ 'image/w': [2, 2], 'text/w': [12.5, 13], 'audio/w': [5] });
    expect(out.groups.map((g) => [g.group, g.status, g.clientIds])).toEqual([
      ['image', 'updated', ['a', 'c']],
      ['text', 'updated', ['b', 'c']],
      ['audio', 'kept', []],
    ]);
    expect(out.metrics).toMatchObject({ numResults: 3, numFailures: 1, numRejected: 0, numExamples: 5, 'clients:image': 2, 'clients:audio': 0 });
  });

  it('sets aside invalid results and aggregates the rest', () => {
    const bad = [
      fit('nan', 1, t('image/w', Number.NaN, 0)),
      fit('shape', 1, t('image/w', 1, 2, 3)),
      fit('zero', 0, t('image/w', 1, 1)),
      fit('a', 1, t('image/w', 100, 100)),
      fit('empty', 1),
    ];
    const out = new FedAvg().aggregateFit(1, global, [...round, ...bad], [])!;

    expect(values(out.parameters)['image/w']).toEqual([2, 2]);
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual([
      ['nan', 'PARAMS_NON_FINITE'],
      ['shape', 'PARAMS_MISMATCH'],
      ['zero', 'AGG_BAD_WEIGHTS'],
      ['a', 'DUPLICATE_RESULT'],
      ['empty', 'AGG_NO_UPDATES'],
    ]);
  });

  it('returns null ("no new model") when nothing valid remains, or on failures when they are not accepted', () => {
    expect(new FedAvg().aggregateFit(1, global, [], [{ clientId: 'x', code: 'DISCONNECTED' }])).toBeNull();
    expect(new FedAvg().aggregateFit(1, global, [fit('nan', 1, t('text/w', Number.NaN, 1))], [])).toBeNull();
    expect(new FedAvg({ acceptFailures: false }).aggregateFit(1, global, round, [{ clientId: 'x', code: 'TIMEOUT' }])).toBeNull();
  });

  it('median and trimmed mean strategies resist one outlier per group', () => {
    const withOutlier = [...round, fit('evil', 1000, t('image/w', 1e6, -1e6), t('text/w', 1e6, 1e6)), fit('e', 1, t('image/w', 2, 2), t('text/w', 3, 3))];
    const med = new FedMedian().aggregateFit(1, global, withOutlier, [])!;
    const trimmed = new FedTrimmedAvg({ trimFraction: 0.25 }).aggregateFit(1, global, withOutlier, [])!;

    // image deltas: [1,1], [3,3], [1e6,−1e6], [2,2] → medians [2.5, 1.5]; text: [2,4], [4,0], [1e6,1e6], [3,3] → [3.5, 3.5]
    expect(values(med.parameters)).toEqual({ 'image/w': [2.5, 1.5], 'text/w': [13.5, 13.5], 'audio/w': [5] });
    // β = 0.25 of 4 cuts one from each end: image [2.5, 1.5], text [3.5, 3.5] again.
    expect(values(trimmed.parameters)).toEqual(values(med.parameters));
  });

  it('Krum bounds f by a group’s senders and scores the groups it can', () => {
    const image = (id: string, x: number, y: number) => fit(id, 1, t('image/w', x, y));
    const results = [image('p', 0, 0), image('q', 1, 0), image('r', 0, 2), image('s', 1, 1), image('evil', 10, 10), fit('txt', 1, t('text/w', 1, 1))];
    const out = new Krum({ numByzantine: 1 }).aggregateFit(1, global, results, [])!;

    // A lone sender cannot be compared with anyone, so the text group takes its delta (f_g = 0).
    expect(values(out.parameters)).toEqual({ 'image/w': [1, 0], 'text/w': [11, 11], 'audio/w': [5] });
    expect(out.groups[0]!.clientScores).toEqual({ p: 3, q: 2, r: 6, s: 3, evil: 326 });
    expect(out.groups[0]!.metrics).toMatchObject({ effectiveNumByzantine: 1, numSelected: 1 });
    expect(out.groups[1]).toMatchObject({ group: 'text', status: 'updated', metrics: { effectiveNumByzantine: 0, numSelected: 1 } });
  });

  it('FLTrust needs the round’s root update and reports trust per client', () => {
    const strategy = new FlTrust();
    const results = [fit('good', 1, t('image/w', 2, 0)), fit('flip', 1, t('image/w', -2, 0))];
    expect(() => strategy.aggregateFit(1, global, results, [])).toThrowError(/AGG_BAD_CONFIG/);

    strategy.setRootUpdate(1, [t('image/w', 0.5, 0)]);
    const out = strategy.aggregateFit(1, global, results, [])!;

    // The trusted delta is rescaled to the root's norm 0.5.
    expect(values(out.parameters)['image/w']).toEqual([0.5, 0]);
    expect(out.groups[0]!.clientScores).toEqual({ good: 1, flip: 0 });
  });

  it('NormClipping scales deltas into the ball before the inner strategy, without touching the results', () => {
    const results = [fit('big', 1, t('image/w', 3, 4)), fit('small', 1, t('image/w', 0.3, 0.4))];
    const strategy = new NormClipping(new FedAvg(), { maxNorm: 1 });
    const out = strategy.aggregateFit(1, global, results, [])!;

    // ([0.6, 0.8] + [0.3, 0.4]) / 2
    expect(values(out.parameters)['image/w']!.map((x) => +x.toFixed(6))).toEqual([0.45, 0.6]);
    expect(out.metrics.numClipped).toBe(1);
    expect(out.metrics.meanDeltaNorm).toBeCloseTo(2.75, 6);
    expect(Array.from(results[0]!.delta[0]!.values)).toEqual([3, 4]);
    expect(strategy.name).toBe('clip(fedavg)');
  });

  it('ServerOnly applies the root update and ignores every client update, for the groups clients sent', () => {
    const strategy = new ServerOnly();
    expect(() => strategy.aggregateFit(1, global, [fit('a', 1, t('image/w', 1, 1))], [])).toThrowError(/AGG_BAD_CONFIG/);
    strategy.setRootUpdate(1, [t('image/w', 0.5, -0.5), t('text/w', 1, 1)]);
    const out = strategy.aggregateFit(1, global, [fit('a', 1, t('image/w', 100, 100)), fit('b', 3, t('image/w', -7, 2))], [])!;
    const v = values(out.parameters);
    expect(v['image/w']).toEqual([0.5, -0.5]);
    // Nobody sent text, so it keeps its value even though the root update has it.
    expect(v['text/w']).toEqual([10, 10]);
    expect(strategy.name).toBe('server-only');
  });

  it('NormClipping to the round’s median norm bounds every update by a typical one, per group', () => {
    // Arrange: image norms 5, 1, 2 (median 2); text sent by two clients, norms 1 and 3 (median 2).
    const results = [
      fit('a', 1, t('image/w', 3, 4), t('text/w', 1, 0)),
      fit('b', 1, t('image/w', 0.6, 0.8)),
      fit('c', 1, t('image/w', 0, 2), t('text/w', 0, 3)),
    ];
    const strategy = new NormClipping(new FedAvg(), { maxNorm: 'median', perGroup: true });
    // Act
    const out = strategy.aggregateFit(1, global, results, [])!;
    // Assert: a's image delta scaled to norm 2 → (1.2, 1.6); c's text delta to norm 2 → (0, 2).
    expect(values(out.parameters)['image/w']!.map((x) => +x.toFixed(6))).toEqual([+((1.2 + 0.6 + 0) / 3).toFixed(6), +((1.6 + 0.8 + 2) / 3).toFixed(6)]);
    expect(values(out.parameters)['text/w']!.map((x) => +x.toFixed(6))).toEqual([10.5, 11]);
    expect(out.metrics).toMatchObject({ 'image:clipBound': 2, 'text:clipBound': 2, numClipped: 2 });
    expect(strategy.name).toBe('clip-median(fedavg)');
  });

  it('trust weighting with a median norm bound is not overwhelmed by one scaled update; without it, it is', () => {
    // Arrange: four honest clients near (1, 0); one attacker sends a ×20 update that still agrees
    // well enough with the reference (cos ≈ 0.89) to keep a positive trust score.
    const weights = { agreement: 1, quality: 0, lossImprovement: 0, calibration: 0, explanation: 0 };
    const honest = [
      fit('h1', 1, t('image/w', 1, 0.1)),
      fit('h2', 1, t('image/w', 1, -0.1)),
      fit('h3', 1, t('image/w', 0.9, 0)),
      fit('h4', 1, t('image/w', 1.1, 0)),
    ];
    const results = [...honest, fit('x', 1, t('image/w', 20, 10))];
    const plain = new TrustWeighting(new FedAvg(), { weights, historyDecay: 0 });
    const bounded = new TrustWeighting(new NormClipping(new FedAvg(), { maxNorm: 'median' }), { weights, historyDecay: 0 });
    for (const s of [plain, bounded]) s.setRoundContext(1, { rootUpdate: [t('image/w', 1, 0)] });
    // Act
    const [p, b] = [plain, bounded].map((s) => values(s.aggregateFit(1, global, results, [])!.parameters)['image/w']!);
    // Assert: the honest mean is (1, 0); the attacker drags the unbounded mean far off it.
    const off = (v: number[]) => Math.hypot(v[0]! - 1, v[1]!);
    expect(off(p!)).toBeGreaterThan(2);
    expect(off(b!)).toBeLessThan(0.3);
    expect(bounded.name).toBe('fedmm-x(clip-median(fedavg))');
  });
});

describe('aggregateEvaluate', () => {
  it('is the example-weighted loss and metrics, ignoring unusable reports', () => {
    const out = new FedAvg().aggregateEvaluate(
      1,
      [
        { clientId: 'a', numExamples: 1, loss: 1, metrics: { accuracy: 0.5 } },
        { clientId: 'b', numExamples: 3, loss: 3, metrics: { accuracy: 0.9 } },
        { clientId: 'c', numExamples: 2, loss: Number.NaN },
      ],
      [],
    )!;
    expect(out.loss).toBe(2.5);
    expect(out.metrics.accuracy).toBeCloseTo(0.8, 12);
    expect(out.metrics.numEvaluations).toBe(2);
    expect(new FedAvg().aggregateEvaluate(1, [], [])).toBeNull();
  });
});

describe('server state', () => {
  const rounds: FitResult[][] = [
    round,
    [fit('a', 2, t('image/w', -1, 0.5)), fit('c', 1, t('text/w', 0.25, -2))],
    [fit('b', 1, t('image/w', 0.5, 0.5), t('text/w', 1, 1), t('audio/w', 2))],
  ];

  it.each<[string, () => Strategy]>([
    ['TrustWeighting', () => new TrustWeighting(new FedAvg())],
    ['Probation', () => new Probation(new FedAvg(), 4)],
    ['SimilarityDamping', () => new SimilarityDamping(new FedAvg(), { sketchSize: 16 })],
    [
      'DifferentialPrivacy',
      () =>
        new DifferentialPrivacy(new FedAvg(), {
          clipNorm: 1,
          noiseMultiplier: 0,
          samplingRate: 0.5,
          expectedClientsPerRound: 2,
          targetDelta: 1e-5,
          noiseRng: (r: number) => createRng(r),
        }),
    ],
  ])('%s hands out an exported state that shares nothing with it: changing it changes no later export', (_name, make) => {
    // Arrange
    const strategy = make();
    strategy.aggregateFit(1, global, rounds[0]!, []);
    const before = JSON.stringify(strategy.exportState().json);
    // Act: overwrite every array and object inside the exported extra, in place.
    const scribble = (x: unknown): void => {
      if (typeof x !== 'object' || x === null) return;
      const slots = x as Record<string, unknown>;
      for (const [k, v] of Object.entries(slots)) {
        if (typeof v === 'object' && v !== null) scribble(v);
        else slots[k] = 'scribbled';
      }
    };
    const exported = strategy.exportState();
    expect(exported.json.extra).toBeDefined();
    scribble(exported.json.extra);
    // Assert
    expect(JSON.stringify(strategy.exportState().json)).toBe(before);
  });

  const makers: [string, () => Strategy][] = [
    ['FedAvgM', () => new FedAvgMStrategy({ serverMomentum: 0.9, serverLearningRate: 0.7 })],
    ['FedAdam', () => new FedAdam({ serverLearningRate: 0.3 })],
    ['FedYogi', () => new FedYogi()],
    ['FedAdagrad', () => new FedAdagrad()],
    ['clipped FedAdam', () => new NormClipping(new FedAdam(), { maxNorm: 2 })],
  ];

  it.each(makers)('%s resumes from a checkpoint with identical weights', (_name, make) => {
    const straight = make();
    let model: Parameters = global;
    model = straight.aggregateFit(1, model, rounds[0]!, [])!.parameters;
    model = straight.aggregateFit(2, model, rounds[1]!, [])!.parameters;
    const saved = checkpoint(straight.exportState());
    const expected = straight.aggregateFit(3, model, rounds[2]!, [])!.parameters;

    const resumed = make();
    resumed.importState(saved);
    const actual = resumed.aggregateFit(3, model, rounds[2]!, [])!.parameters;

    expect(values(actual)).toEqual(values(expected));
    expect(saved.json).toMatchObject({ roundsAggregated: 2, lastServerRound: 2 });
    // Without the state the third round differs, so the check above is not vacuous.
    expect(values(make().aggregateFit(3, model, rounds[2]!, [])!.parameters)).not.toEqual(values(expected));
  });

  it('keeps a group’s momentum when nobody trains it', () => {
    const strategy = new FedAvgMStrategy({ serverMomentum: 0.5 });
    strategy.aggregateFit(1, global, [fit('a', 1, t('image/w', 1, 1))], []);
    strategy.aggregateFit(2, global, [fit('b', 1, t('text/w', 1, 1))], []);
    expect(values(strategy.exportState().tensors)).toEqual({ 'momentum:image/w': [1, 1], 'momentum:text/w': [1, 1] });
  });

  it('refuses a state from another strategy or with bad tensors, changing nothing', () => {
    const strategy = new FedAvgMStrategy({ serverMomentum: 0.9 });
    strategy.aggregateFit(1, global, round, []);
    const before = strategy.exportState();
    const attempts: StrategyState[] = [
      new FedAdam().exportState(),
      { json: before.json, tensors: [t('velocity:image/w', 1, 1)] },
      { json: before.json, tensors: [t('momentum:image/w', Number.NaN, 1)] },
      { json: { ...before.json, roundsAggregated: -1 }, tensors: [] },
    ];
    for (const state of attempts) {
      try {
        strategy.importState(state);
        expect.unreachable();
      } catch (err) {
        expect(isFlCoreError(err, 'AGG_BAD_STATE'), String(err)).toBe(true);
      }
    }
    expect(strategy.exportState()).toEqual(before);
  });

  it('leaves the state untouched when a round yields no model', () => {
    const strategy = new FedAdam();
    strategy.aggregateFit(1, global, round, []);
    const before = strategy.exportState();
    expect(strategy.aggregateFit(2, global, [fit('nan', 1, t('image/w', Number.NaN, 0))], [])).toBeNull();
    expect(strategy.exportState()).toEqual(before);
  });
});

describe('DifferentialPrivacy wrapper', () => {
  const options = { clipNorm: 1, noiseMultiplier: 0, samplingRate: 0.5, expectedClientsPerRound: 2, targetDelta: 1e-5, noiseRng: (r: number) => createRng(r) };

  it('releases clipped deltas over the fixed denominator through the inner rule, and spends privacy', () => {
    const strategy = new DifferentialPrivacy(new FedAvg(), { ...options, noiseMultiplier: 1 });
    const noiseless = new DifferentialPrivacy(new FedAvg(), options);
    const results = [fit('big', 1, t('image/w', 3, 4)), fit('small', 5, t('image/w', 0.3, 0.4))];

    const exact = noiseless.aggregateFit(1, global, results, [])!;
    const noisy = strategy.aggregateFit(1, global, results, [])!;

    // ([0.6, 0.8] + [0.3, 0.4]) / qW = 2, example counts ignored; text and audio get zero signal.
    expect(values(exact.parameters)['image/w']!.map((x) => +x.toFixed(6))).toEqual([0.45, 0.6]);
    expect(values(exact.parameters)['text/w']).toEqual([10, 10]);
    expect(exact.metrics).toMatchObject({ numResults: 2, numClipped: 1, noiseStd: 0 });
    expect(exact.groups[0]!.clientIds).toEqual(['big', 'small']);
    // With z = 1 every tensor is noised (σ = 1·1/2) and ε grows with each round.
    expect(noisy.metrics.noiseStd).toBe(0.5);
    expect(values(noisy.parameters)['audio/w']).not.toEqual([5]);
    const eps1 = strategy.epsilon;
    strategy.aggregateFit(2, noisy.parameters, results, []);
    expect(eps1).toBeGreaterThan(0);
    expect(strategy.epsilon).toBeGreaterThan(eps1);
  });

  it('Poisson-samples clients and resumes with the same accountant and noise', () => {
    const make = () => new DifferentialPrivacy(new FedAdam(), { ...options, noiseMultiplier: 0.8 });
    const plan = make().configureFit({ serverRound: 1, availableClients: Array.from({ length: 200 }, (_, k) => `c${k}`), rng: createRng(9) });
    expect(plan.clientIds.length).toBeGreaterThan(70);
    expect(plan.clientIds.length).toBeLessThan(130);
    // A Poisson cohort waits for every client it sampled; a cohort setting of the inner rule does not change it.
    expect(plan.target).toBe(plan.clientIds.length);
    const inner = new DifferentialPrivacy(new FedAvg({ cohort: { clientsPerRound: 3, overSelection: 1 } }), { ...options, samplingRate: 0.5 });
    const draws = createRng(4);
    const sampled = Array.from({ length: 10 }, (_, k) => `c${k}`)
      .sort()
      .filter(() => draws() < 0.5);
    const poisson = inner.configureFit({ serverRound: 1, availableClients: Array.from({ length: 10 }, (_, k) => `c${k}`), rng: createRng(4) });
    expect(poisson.clientIds).toEqual(sampled);
    expect(inner.aggregateFit(1, global, round, [])!.privacy).toMatchObject({ samplingRate: 0.5, releases: 1, delta: options.targetDelta });

    const a = make();
    const model = a.aggregateFit(1, global, round, [])!.parameters;
    const saved = checkpoint(a.exportState());
    const expected = a.aggregateFit(2, model, round, [])!;
    const b = make();
    b.importState(saved);
    const actual = b.aggregateFit(2, model, round, [])!;
    expect(values(actual.parameters)).toEqual(values(expected.parameters));
    expect(actual.metrics.epsilon).toBe(expected.metrics.epsilon);
  });

  it('rejects bad privacy settings', () => {
    expect(() => new DifferentialPrivacy(new FedAvg(), { ...options, clipNorm: 0 })).toThrowError(/PRIVACY_BAD_CONFIG/);
    expect(() => new DifferentialPrivacy(new FedAvg(), { ...options, samplingRate: 0 })).toThrowError(/PRIVACY_BAD_CONFIG/);
  });
});

describe('TrustWeighting wrapper', () => {
  it('weights by trust against the root update, drops distrusted clients and keeps history in its state', () => {
    const strategy = new TrustWeighting(new FedAvg(), {
      weights: { agreement: 1, quality: 0, lossImprovement: 0, calibration: 0, explanation: 0 },
      historyDecay: 0,
    });
    strategy.setRoundContext(1, { rootUpdate: [t('image/w', 1, 0)] });
    const results = [fit('aligned', 1, t('image/w', 2, 0)), fit('opposed', 1, t('image/w', -2, 0))];

    const out = strategy.aggregateFit(1, global, results, [])!;

    // Only the aligned client keeps positive trust, so its delta is the aggregate.
    expect(values(out.parameters)['image/w']).toEqual([2, 0]);
    expect(out.trust).toEqual([
      { clientId: 'aligned', trust: 1 },
      { clientId: 'opposed', trust: 0 },
    ]);
    expect(out.metrics).toMatchObject({ numUntrusted: 1 });
    expect(Object.keys(out.metrics).some((k) => k.startsWith('trust:'))).toBe(false);
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual([['opposed', 'UNTRUSTED']]);
    const saved = checkpoint(strategy.exportState());
    expect(saved.json.extra).toEqual({
      history: [
        ['aligned', 1],
        ['opposed', 0],
      ],
    });
    const resumed = new TrustWeighting(new FedAvg());
    resumed.importState(saved);
    expect(resumed.trustScores().get('opposed')).toBe(0);
  });

  it('rejects malformed probe signals', () => {
    const strategy = new TrustWeighting(new FedAvg());
    const bad: FitResult = { ...fit('x', 1, t('image/w', 1, 1)), signals: { probe: { probabilities: [0.5, 0.5] } } };
    expect(() => strategy.aggregateFit(1, global, [bad], [])).toThrowError(/TRUST_BAD_INPUT/);
  });
});

describe('trust weighting with the root update as its reference', () => {
  it('keeps the model on the honest side when 20 colluding attackers face 6 honest clients', () => {
    // Arrange: honest updates near (1, 0); 20 identical attacker updates at (−1, 0.5); the root update (1, 0).
    const honest = [0.1, -0.1, 0.05, -0.05, 0.2, -0.2].map((e, k) => fit(`h${k}`, 1, t('image/w', 1, e)));
    const sybils = Array.from({ length: 20 }, (_, k) => fit(`s${String(k).padStart(2, '0')}`, 1, t('image/w', -1, 0.5)));
    const weights = { agreement: 1, quality: 0, lossImprovement: 0, calibration: 0, explanation: 0 };
    const rooted = new TrustWeighting(new FedAvg(), { weights, historyDecay: 0, agreementReference: 'root' });
    const median = new TrustWeighting(new FedAvg(), { weights, historyDecay: 0, agreementReference: 'median' });
    for (const s of [rooted, median]) s.setRoundContext(1, { rootUpdate: [t('image/w', 1, 0)] });
    // Act
    const [r, m] = [rooted, median].map((s) => s.aggregateFit(1, global, [...honest, ...sybils], [])!);
    // Assert: against the root the attackers are untrusted and left out; against the round's median they own the model.
    expect(r!.rejected.filter((x) => x.code === 'UNTRUSTED').map((x) => x.clientId)).toEqual(sybils.map((s) => s.clientId));
    expect(values(r!.parameters)['image/w']![0]).toBeCloseTo(1, 6);
    expect(values(m!.parameters)['image/w']![0]).toBeCloseTo(-1, 6);
  });
});
