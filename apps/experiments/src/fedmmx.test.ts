import * as tf from '@tensorflow/tfjs';
import { createRng } from '@chorus/fl-core';
import { ArrayDataset, buildDigitsEncoder } from '@chorus/client';
import { DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL, MultimodalModel, explain, explanationConsistency, frameCount } from '@chorus/models';
import { meanExplanationConsistency } from '@chorus/fl-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { restrictModalities } from './centralized.js';
import type { BoundsRun, FederatedRun, FedMmxMeasurements, ModelScores } from './fedmmx.js';
import {
  FEDMMX_QUICK,
  chosenFor,
  federatedRunKey,
  fedMmxChecks,
  fedMmxRetirement,
  fedMmxMethods,
  fedMmxSection,
  fedMmxTask,
  fedMmxVerifySpec,
  interpretability,
  methodOfTask,
  renderFedMmx,
  reusedRun,
  runSettingsKey,
  sameConfigurationAs,
  settingsOfKey,
  shuffledPairing,
} from './fedmmx.js';
import { PROBE_ENGINE, createRunCache } from './runCache.js';
import type { TuningRecord } from './tuning.js';
import { storedRuns } from './verify.js';

const scores = (accuracy: number, fs: number): ModelScores => ({ accuracy, byModality: { image: accuracy }, ec: 0.5, ecShuffled: 0.1, ecRaw: 0.8, fs });
const record = (method: string, chosen: TuningRecord['chosen']): TuningRecord => ({
  method,
  candidates: [{ hyperparameters: chosen, scores: [{ seed: 101, value: 0.5 }], mean: 0.5 }],
  chosen,
  validationScore: 0.5,
});
const tuning: TuningRecord[] = [
  record('fedavg', { learningRate: 0.01 }),
  record('fedprox', { learningRate: 0.01, proximalMu: 0.01 }),
  record('fedmm-x', { learningRate: 0.03, modalWeight: 0.1, interpretabilityWeight: 0.1 }),
  record('centralized', { learningRate: 0.01 }),
  record('local', { learningRate: 0.03 }),
];
const splits: FedMmxMeasurements['splits'] = {
  dataset: 'digits',
  validationSource: 'carved from test',
  validationPool: 500,
  testPool: 1001,
  validationExamples: 200,
  testExamples: 200,
};
const chosen = (method: string) =>
  chosenFor(
    fedMmxMethods().find((m) => m.id === method)!,
    tuning,
  );
const run = (method: string, accuracy: number, fs = 0.1, completedRounds = FEDMMX_QUICK.rounds): FederatedRun => ({
  method,
  seed: 1,
  hyperparameters: chosen(method),
  status: 'finished',
  completedRounds,
  roundAccuracy: [accuracy],
  final: scores(accuracy, fs),
  durationMs: 1,
});
const bounds = (initialAccuracy: number, centralized: number, localMean: number): BoundsRun => ({
  seed: 1,
  centralized: scores(centralized, 0.1),
  localMean,
  local: [],
  localByModality: {},
  centralizedLearningRate: 0.01,
  localLearningRate: 0.03,
  initialAccuracy,
  initialInterpretability: { ec: 0.02, ecShuffled: 0.01, ecRaw: -0.3, fs: 0 },
  trainableParameters: 1,
  durationMs: 1,
});

/** A small input-deletion FS setting for the tests: every example, half of each input deleted, one random trial. */
const FS_TEST = { examples: 4, fractions: [0.5], trials: 1 };

describe('fedMmxMethods and fedMmxTask', () => {
  it('build valid tasks with the chosen values: every client every round, the seed as task seed, no test reads, ablations changing one thing of FedMM-X', () => {
    const methods = fedMmxMethods();

    const tasks = methods.map((m) => fedMmxTask(m, FEDMMX_QUICK, 5, chosenFor(m, tuning)));

    expect(methods.map((m) => m.id)).toEqual(['fedavg', 'fedprox', 'fedmm-x', 'no-lmodal', 'no-lintp', 'distill', 'no-trust', 'linear-head']);
    for (const t of tasks) {
      expect(t.clientsPerRound).toBe(FEDMMX_QUICK.numClients);
      expect(t.minClients).toBe(FEDMMX_QUICK.numClients);
      expect(t.rounds).toBe(FEDMMX_QUICK.rounds);
      expect(t.seed).toBe(5);
      expect(t.evaluation.testExamples).toBe(0);
      expect(t.dataset.name).toBe('digits');
    }
    expect(tasks[0]!.learningRate).toBe(0.01);
    expect(tasks[1]!.strategy).toEqual({ name: 'fedprox', proximalMu: 0.01 });
    const [full, noModal, noIntp, distill, noTrust, linear] = tasks.slice(2);
    expect(full!.learningRate).toBe(0.03);
    expect(tasks.slice(3).every((t) => t.learningRate === 0.03)).toBe(true);
    expect(noModal!.strategy).toEqual(full!.strategy);
    expect(noModal!.model).toMatchObject({ modalWeight: 0, interpretabilityWeight: 0.1, head: 'nam' });
    expect(noIntp!.model).toMatchObject({ modalWeight: 0.1, interpretabilityWeight: 0, modalLoss: 'js' });
    expect(distill!.model).toMatchObject({ modalWeight: 0.1, interpretabilityWeight: 0.1, modalLoss: 'distill' });
    expect(noTrust!.strategy).toMatchObject({ name: 'fedavg' });
    expect(noTrust!.model).toEqual(full!.model);
    expect(linear!.model).toMatchObject({ modalWeight: 0.1, head: 'linear' });
    expect(full!.model).toMatchObject({ modalWeight: 0.1, interpretabilityWeight: 0.1, modalLoss: 'js', head: 'nam' });
  });

  it('finds the run of the same task (all but its id) so it is not repeated, and nothing when a value differs', () => {
    const noTrust = fedMmxMethods().find((m) => m.id === 'no-trust')!;
    const fedavgRun = { ...run('fedavg', 0.6), hyperparameters: { learningRate: 0.03 } };
    // FedMM-X's λ₂ chosen as the task default (0), so its no-trust ablation is FedAvg's task.
    const sameRate = tuning.map((r) =>
      r.method === 'fedavg'
        ? { ...r, chosen: { learningRate: 0.03 } }
        : r.method === 'fedmm-x'
          ? { ...r, chosen: { learningRate: 0.03, modalWeight: 0.1, interpretabilityWeight: 0 } }
          : r,
    );

    expect(sameConfigurationAs(noTrust, sameRate, [fedavgRun], FEDMMX_QUICK, 1)).toBe(fedavgRun);
    expect(sameConfigurationAs(noTrust, sameRate, [fedavgRun], FEDMMX_QUICK, 2)).toBeUndefined();
    // With λ₂ > 0 chosen for FedMM-X, its no-trust ablation trains with L_intp and FedAvg does not: not the same task.
    const withIntp = tuning.map((r) => (r.method === 'fedavg' ? { ...r, chosen: { learningRate: 0.03 } } : r));
    expect(sameConfigurationAs(noTrust, withIntp, [fedavgRun], FEDMMX_QUICK, 1)).toBeUndefined();
    expect(sameConfigurationAs(noTrust, sameRate, [{ ...fedavgRun, hyperparameters: { learningRate: 0.01 } }], FEDMMX_QUICK, 1)).toBeUndefined();
    const linear = fedMmxMethods().find((m) => m.id === 'linear-head')!;
    expect(sameConfigurationAs(linear, sameRate, [fedavgRun], FEDMMX_QUICK, 1)).toBeUndefined();
    // The reused run carries the ablation's own chosen values, so the protocol check accepts it.
    const reused = reusedRun(noTrust, sameRate, [fedavgRun], FEDMMX_QUICK, 1)!;
    expect(reused).toMatchObject({
      method: 'no-trust',
      reusedFrom: 'fedavg',
      hyperparameters: { learningRate: 0.03, modalWeight: 0.1, interpretabilityWeight: 0 },
      final: fedavgRun.final,
    });
    const checks = fedMmxChecks({
      runs: [fedavgRun, reused],
      bounds: [bounds(0.1, 0.8, 0.4)],
      settings: FEDMMX_QUICK,
      skipped: {},
      tuning: sameRate,
      seeds: [1],
    });
    expect(checks[2]).toMatchObject({ ok: true });
  });

  it('chosenFor refuses a method whose choice was never made', () => {
    expect(() => chosenFor(fedMmxMethods()[3]!, [record('fedavg', { learningRate: 0.01 })])).toThrow(
      /EXPERIMENTS_BAD_INPUT: chosenFor: no tuning record of 'fedmm-x'/,
    );
  });

  it('a section on a dataset this checkout cannot open fails with a coded error before training', async () => {
    const section = fedMmxSection('fedmmx-other', 'nope' as never);

    await expect(section.run({ quick: true, seeds: [1], log: () => undefined })).rejects.toThrow(/EXPERIMENTS_UNKNOWN_DATASET/);
    // A tuning seed used as an evaluation seed is refused before anything runs.
    await expect(fedMmxSection('fedmmx', 'digits').run({ quick: true, seeds: [FEDMMX_QUICK.tuningSeeds[0]!], log: () => undefined })).rejects.toThrow(
      /EXPERIMENTS_BAD_INPUT: seeds 101 are both tuning and evaluation seeds/,
    );
  });
});

describe('fedMmxChecks', () => {
  it('pass when every run finished, every ablation ran, FedMM-X gained ≥ 20 points, centralized beat LOCAL and FS > 0', () => {
    const ablationRuns = fedMmxMethods()
      .filter((m) => m.ablation)
      .map((m) => run(m.id, 0.6));
    const checks = fedMmxChecks({
      runs: [run('fedavg', 0.6), run('fedmm-x', 0.61), ...ablationRuns],
      bounds: [bounds(0.1, 0.8, 0.4)],
      settings: FEDMMX_QUICK,
      skipped: {},
      tuning,
      seeds: [1],
    });

    expect(checks.map((c) => c.ok)).toEqual([true, true, true, true, true, true]);
    // An ablation without a run fails the check even when none failed outright.
    const missing = fedMmxChecks({
      runs: [run('fedavg', 0.6), run('fedmm-x', 0.61), ...ablationRuns.slice(1)],
      bounds: [bounds(0.1, 0.8, 0.4)],
      settings: FEDMMX_QUICK,
      skipped: {},
      tuning,
      seeds: [1],
    });
    expect(missing[1]).toMatchObject({ name: 'every ablation ran', ok: false });
    expect(missing[1]!.detail).toContain(`${ablationRuns[0]!.method} (0 runs), ${ablationRuns[1]!.method} (1 run)`);
    // A grid without ablations has no such check.
    const without = fedMmxChecks({
      runs: [run('fedavg', 0.6), run('fedmm-x', 0.61)],
      bounds: [bounds(0.1, 0.8, 0.4)],
      settings: { ...FEDMMX_QUICK, ablations: false },
      skipped: {},
      tuning,
      seeds: [1],
    });
    expect(without.map((c) => c.name)).not.toContain('every ablation ran');
    expect(without.every((c) => c.ok)).toBe(true);
  });

  it('fail on an unfinished run, a failed ablation, a small gain, LOCAL above centralized, and unfaithful explanations', () => {
    const checks = fedMmxChecks({
      runs: [run('fedavg', 0.6, 0.1, 2), run('fedmm-x', 0.29, -0.01)],
      bounds: [bounds(0.1, 0.4, 0.5)],
      settings: FEDMMX_QUICK,
      skipped: { 'linear-head': 'EVALUATOR_EXITED' },
      tuning: tuning.slice(0, 4),
      seeds: [1, 101],
    });

    expect(checks.map((c) => c.ok)).toEqual([false, false, false, false, false, false]);
    expect(checks[0]!.detail).toContain('fedavg/s1');
    expect(checks[1]!.detail).toBe('linear-head: EVALUATOR_EXITED');
    expect(checks[2]!.detail).toBe('local not tuned; seed 101 in both');
    expect(checks[3]!.detail).toBe('initial 10.0%, FedMM-X 29.0%');
  });
});

describe('renderFedMmx', () => {
  const at = (seed: number, r: FederatedRun): FederatedRun => ({ ...r, seed });
  const input = (runs: FederatedRun[], boundsRuns: BoundsRun[], seeds: number[], skipped: Record<string, string> = {}): FedMmxMeasurements => ({
    settings: FEDMMX_QUICK,
    seeds,
    splits,
    tuning,
    skipped,
    runs,
    bounds: boundsRuns,
    durationMs: 61_000,
    quick: true,
  });

  it('tabulates mean ± std over seeds, the validation grid and choices, paired differences with intervals, and marks a failed ablation', () => {
    const runs = [run('fedavg', 0.5), at(2, run('fedavg', 0.7)), run('fedmm-x', 0.65), at(2, run('fedmm-x', 0.75)), run('fedprox', 0.6), run('no-lmodal', 0.6)];

    const section = renderFedMmx(input(runs, [bounds(0.1, 0.9, 0.3), { ...bounds(0.1, 0.9, 0.3), seed: 2 }], [1, 2], { 'linear-head': 'EVALUATOR_EXITED' }));

    expect(section.markdown).toContain('| FedAvg | 60.0 ± 14.1 | 60.0 ± 14.1 | — | — |');
    expect(section.markdown).toContain('| FedMM-X (trust-aware) | 70.0 ± 7.1 |');
    // Per seed FedMM-X − FedAvg: +15, +5; mean +10, s = 7.07, t(1) = 12.706: half-width 63.5.
    expect(section.markdown).toContain('| FedMM-X (trust-aware) | +10.0 [−53.5, +73.5] |');
    expect(section.markdown).toContain(
      'FedMM-X (trust-aware) − FedAvg: +10.0 [−53.5, +73.5] points; the 95 % interval includes 0, so these 2 seeds do not separate them.',
    );
    expect(section.markdown).toContain('| FedMM-X (trust-aware) | lr 0.03, λ₁ 0.1, λ₂ 0.1 | **lr 0.03, λ₁ 0.1, λ₂ 0.1: 50.0** |');
    expect(section.markdown).toContain('carved out of its test split');
    expect(section.markdown).toContain('| without NAM (linear head) | not run |');
    expect(section.markdown).toContain('| without L_intp (λ₂ = 0) |');
    expect(section.markdown).toContain('| L_modal = cross-modal distillation (instead of Jensen–Shannon) |');
    expect(section.markdown).toContain('Runtime: 61 s');
    expect(section.markdown).not.toContain('read from raw/runs/');
    const readBack = renderFedMmx({ ...input(runs, [bounds(0.1, 0.9, 0.3)], [1], {}), readBack: { stored: 7, total: 9 } });
    expect(readBack.markdown).toContain(
      '7 of its 9 runs were read from raw/runs/, stored by earlier invocations, so this is not the compute time of the grid.',
    );
    expect(section.checks.find((c) => c.name === 'every ablation ran')?.ok).toBe(false);
    expect(section.figures.map((f) => f.file)).toEqual(['fedmmx-accuracy-by-round.svg', 'fedmmx-accuracy-by-modality.svg']);
    expect(section.markdown).toContain('| Centralized (upper bound) | 90.0 ± 0.0 |');
    expect(section.markdown).toContain('| LOCAL (lower bound; own modalities) | 30.0 ± 0.0 |');
    expect(section.markdown).toContain('| Method | EC | EC, shuffled pairs (chance) | EC, raw cosine | FS |');
    expect(section.markdown).toContain('| FedAvg | 50.0 ± 0.0 | 10.0 ± 0.0 | 80.0 ± 0.0 | 10.0 ± 0.0 |');
    expect(section.markdown).toContain('| Initial model (round 0) | 2.0 ± 0.0 | 1.0 ± 0.0 | -30.0 ± 0.0 | 0.0 ± 0.0 |');
    expect((section.raw as { tasks: unknown[] }).tasks).toHaveLength(7);
    expect(section.markdown).not.toContain('runs are reused');
    const reused = renderFedMmx(input([...runs, { ...run('fedavg', 0.5), method: 'no-trust', reusedFrom: 'fedavg' }], [bounds(0.1, 0.9, 0.3)], [1]));
    expect(reused.markdown).toContain(
      "FedMM-X without trust weighting is, with the values chosen, the same task as FedAvg (bit-reproducible runs), so FedAvg's runs are reused for it.",
    );
  });

  it('says a difference is separated when its interval excludes 0, in the direction measured', () => {
    const seeds = [1, 2, 3];
    const runs = seeds.flatMap((seed, i) => [at(seed, run('fedavg', 0.6 + i * 0.05)), at(seed, run('fedmm-x', 0.58 + i * 0.05 - (i === 1 ? 0.002 : 0)))]);

    const section = renderFedMmx(
      input(
        runs,
        seeds.map((seed) => ({ ...bounds(0.1, 0.9, 0.3), seed })),
        seeds,
      ),
    );

    expect(section.markdown).toMatch(
      /FedMM-X \(trust-aware\) − FedAvg: −2\.1 \[−2\.\d, −1\.\d\] points; the 95 % interval excludes 0, so over these 3 seeds FedMM-X \(trust-aware\) is below FedAvg\./,
    );
  });

  it('labels centralized training and LOCAL references, not bounds, when the numbers do not make them bounds', () => {
    const section = renderFedMmx(input([run('fedavg', 0.7), run('fedmm-x', 0.8)], [bounds(0.1, 0.75, 0.72)], [1]));

    expect(section.markdown).toContain('is not an upper bound here: FedMM-X (trust-aware) reaches 80.0 % against its 75.0 %, so it is labelled a reference.');
    expect(section.markdown).toContain('| Centralized (reference) | 75.0 |');
    expect(section.markdown).toContain('| LOCAL (reference; own modalities) | 72.0 |');
    expect(section.markdown).toContain('one seed gives no interval');
    expect(section.markdown).not.toContain('upper bound)');
  });

  it('names its figures after its section id and its dataset in the title', () => {
    const section = renderFedMmx({
      ...input([run('fedavg', 0.7)], [bounds(0.1, 0.75, 0.3)], [1]),
      id: 'fedmmx-fashion',
      settings: { ...FEDMMX_QUICK, dataset: 'fashion-mm' },
    });

    expect(section.id).toBe('fedmmx-fashion');
    expect(section.title).toContain('on fashion-mm');
    expect(section.figures.map((f) => f.file)).toEqual(['fedmmx-fashion-accuracy-by-round.svg', 'fedmmx-fashion-accuracy-by-modality.svg']);
  });
});

describe('shuffledPairing', () => {
  it('moves modality m by m places along a seeded cycle, so no two modalities are compared on the same input', () => {
    // Arrange: 5 inputs, 3 modalities; row i of every modality holds the input's index i.
    const numInputs = 5;
    const ids = Float32Array.from({ length: numInputs }, (_, i) => i);
    const rows = (m: Float32Array): number[] => Array.from(m);

    // Act
    const [first, second, third] = shuffledPairing([ids, ids, ids], numInputs, createRng(4));
    const again = shuffledPairing([ids, ids, ids], numInputs, createRng(4));

    // Assert: the first modality is untouched, the others are permutations with no input left in place or shared.
    expect(rows(first!)).toEqual(rows(ids));
    for (const moved of [second!, third!]) expect([...rows(moved)].sort()).toEqual(rows(ids));
    for (let i = 0; i < numInputs; i++) {
      expect(new Set([first![i], second![i], third![i]]).size).toBe(3);
    }
    expect(again.map(rows)).toEqual([first!, second!, third!].map(rows));
    expect(() => shuffledPairing([ids, ids, ids], 3, createRng(4))).toThrowError(/EXPERIMENTS_BAD_INPUT/);
  });

  it('turns identical explanations (EC 1) into agreement at chance between different inputs', () => {
    // Three inputs favouring classes 0, 1 and 2: the modalities agree on one input; across inputs the centred one-hots meet at −1/2.
    const image = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);

    const [a, b] = shuffledPairing([image, image], 3, createRng(1));

    expect(meanExplanationConsistency([image, image], 3)).toBeCloseTo(1, 6);
    expect(meanExplanationConsistency([a!, b!], 3)).toBeCloseTo(-0.5, 6);
  });
});

describe('interpretability', () => {
  it('averages EC over the modality pairs independently of how the test set is chunked, and gives a finite FS', async () => {
    // Arrange: an image + audio model (fresh encoders) and 4 random examples.
    await tf.setBackend('cpu');
    const frames = frameCount(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL.frameLength, DIGITS_LOG_MEL.hopLength);
    const rng = createRng(9);
    const image = Float32Array.from({ length: 4 * 784 }, () => rng());
    const audio = Float32Array.from({ length: 4 * frames * DIGITS_LOG_MEL.numMels }, () => rng());
    const test = new ArrayDataset(Int32Array.from([0, 1, 2, 3]), {
      image: { values: image, shape: [4, 28, 28, 1] },
      audio: { values: audio, shape: [4, frames, DIGITS_LOG_MEL.numMels] },
    });
    const bases = { image: buildDigitsEncoder('image', 0), audio: buildDigitsEncoder('audio', 0) };
    const model = new MultimodalModel({
      numClasses: 4,
      encoders: { image: { base: bases.image }, audio: { base: bases.audio } },
      conceptDim: 2,
      namHiddenUnits: 4,
      loraRank: 2,
      seed: 3,
    });
    bases.image.dispose();
    bases.audio.dispose();
    try {
      // Act
      const whole = await interpretability(model, test, { fs: FS_TEST, rng: createRng(1), pairingRng: createRng(2), chunk: 64 });
      const pieces = await interpretability(model, test, { fs: FS_TEST, rng: createRng(1), pairingRng: createRng(2), chunk: 3 });
      const inputs = { image: tf.tensor4d(image, [4, 28, 28, 1]), audio: tf.tensor3d(audio, [4, frames, DIGITS_LOG_MEL.numMels]) };
      const direct = explain(model, inputs);
      tf.dispose([inputs.image, inputs.audio]);

      // Assert
      expect(whole.ec).toBeCloseTo(explanationConsistency(direct, 'image', 'audio').mean, 6);
      expect(whole.ecRaw).toBeCloseTo(explanationConsistency(direct, 'image', 'audio', { centred: false }).mean, 6);
      expect(pieces.ec).toBeCloseTo(whole.ec, 6);
      expect(pieces.ecShuffled).toBeCloseTo(whole.ecShuffled, 6);
      expect(Math.abs(whole.ecShuffled)).toBeLessThanOrEqual(1);
      expect(Math.abs(whole.ec)).toBeLessThanOrEqual(1);
      expect(Number.isFinite(whole.fs)).toBe(true);
      await expect(
        interpretability(model, restrictModalities(test, ['image']), { fs: FS_TEST, rng: createRng(1), pairingRng: createRng(2) }),
      ).rejects.toMatchObject({
        code: 'EXPERIMENTS_BAD_INPUT',
      });
    } finally {
      model.dispose();
    }
  });
});

describe('stored runs recomputable from their key (--verify)', () => {
  const stored = storedRuns(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'results', 'raw', 'runs'), 'fedmmx');
  const spec = fedMmxVerifySpec('digits');
  type Key = { kind: string; what?: string; task?: { id: string }; settings: unknown; seed: number };

  it('every committed key gives back its settings, method and hyperparameters, the same the stored run reports', () => {
    expect(stored.length).toBeGreaterThan(0);
    const fashion = fedMmxVerifySpec('fashion-mm');
    const digits = stored.filter((r) => spec.owns(r.key));
    expect(new Set(digits.map((r) => spec.kindOf(r.key)))).toEqual(new Set(['tuning', 'bounds', 'run']));
    // every stored run belongs to exactly one dataset's section
    expect(stored.every((r) => spec.owns(r.key) !== fashion.owns(r.key))).toBe(true);
    for (const r of stored) {
      const key = r.key as Key;
      const settings = settingsOfKey(key);
      expect(runSettingsKey(settings)).toEqual(key.settings);
      if (key.task === undefined) continue;
      const { method, h } = methodOfTask(key.task, key.kind === 'validation' ? key.what! : null, settings, key.seed, r.value);
      if (key.kind === 'validation') expect(method.id).toBe(key.what);
      else expect({ method: method.id, h }).toEqual({ method: (r.value as FederatedRun).method, h: (r.value as FederatedRun).hyperparameters });
    }
  });

  it('retires exactly the committed federated runs whose trust reads the server probe, and rebuilds every other key byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-fedmmx-probe-'));
    try {
      const seen = { retired: 0, kept: 0 };
      for (const [i, r] of stored.entries()) {
        // A cache of this file alone: a rerun of the same cell stored beside it must not answer for it.
        const cache = createRunCache(join(dir, String(i)));
        const key = r.key as Key;
        if (key.task === undefined) {
          // Baselines (centralized, LOCAL) run no coordinator task.
          expect(fedMmxRetirement(key)).toBeNull();
          continue;
        }
        const settings = settingsOfKey(key);
        const what = key.kind === 'validation' ? key.what! : null;
        const { method, h } = methodOfTask(key.task, what, settings, key.seed, r.value);
        const requested = federatedRunKey(settings, fedMmxTask(method, settings, key.seed, h), key.seed, what);
        // A probing run stored before the probe field (retired), or since (a rerun under the current probe: kept).
        const trust = method.strategy.name === 'fedmm-x';
        const retired = trust && !('probe' in key);
        expect(requested).toEqual(retired ? { ...key, probe: PROBE_ENGINE } : key);
        expect(fedMmxRetirement(key) === null).toBe(!retired);
        // The stored file, put back under its stored key, is served only where the key did not change.
        cache.put('fedmmx', key, r.value);
        expect(cache.get('fedmmx', requested)).toEqual(retired ? null : r.value);
        seen[retired ? 'retired' : 'kept'] += 1;
      }
      expect(seen.retired).toBeGreaterThan(0);
      expect(seen.kept).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a key the code no longer builds, or one from another engine', () => {
    const run = stored.find((r) => (r.key as Key).kind === 'run')!;
    const key = run.key as Key & { task: { rounds: number } };
    const settings = settingsOfKey(key);
    expect(() => methodOfTask({ ...key.task, rounds: key.task.rounds + 1 }, null, settings, key.seed, run.value)).toThrow(
      expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }),
    );
    expect(() => methodOfTask({ ...key.task, id: 'fedmmx-nope-s1' }, null, settings, key.seed, run.value)).toThrow(
      expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }),
    );
    expect(() => settingsOfKey({ ...key, settings: { ...(key.settings as object), engine: 0 } })).toThrow(
      expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }),
    );
  });
});
