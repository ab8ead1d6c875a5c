import { describe, expect, it } from 'vitest';
import { isExperimentsError } from './errors.js';
import { cacheFileName } from './runCache.js';
import {
  MAIN_INTERFACE,
  SPLIT_ENGINE,
  SPLIT_FULL,
  SPLIT_QUICK,
  checkSplitSettings,
  evaluationSeeds,
  runEpsilon,
  splitCacheKey,
  splitPlan,
  splitSettingsKey,
  splitTaskOf,
  trafficOf,
} from './splitGrid.js';
import type { SplitCell, SplitSettings } from './splitGrid.js';
import type { ClientRoundFigures } from './splitTraining.js';

const cell: SplitCell = { method: 'split', seed: 1, learningRate: 0.003, variant: MAIN_INTERFACE };

function refused(settings: SplitSettings): string {
  try {
    checkSplitSettings(settings);
  } catch (err) {
    if (isExperimentsError(err, 'EXPERIMENTS_BAD_INPUT')) return err.message;
    throw err;
  }
  return 'accepted';
}

describe('split settings', () => {
  it('accepts both grids', () => {
    expect(() => checkSplitSettings(SPLIT_QUICK)).not.toThrow();
    expect(() => checkSplitSettings(SPLIT_FULL)).not.toThrow();
  });

  it('refuses settings that cannot run or cannot give the figures, naming the field', () => {
    expect(refused({ ...SPLIT_QUICK, numClients: 1 })).toMatch(/numClients/);
    expect(refused({ ...SPLIT_QUICK, noiseMultipliers: [0.5, 1] })).toMatch(/noiseMultipliers.*including 0/);
    expect(refused({ ...SPLIT_QUICK, noiseMultipliers: [0, 1, 1] })).toMatch(/noiseMultipliers/);
    expect(refused({ ...SPLIT_QUICK, encodings: ['int8'] })).toMatch(/encodings.*fp32/);
    expect(refused({ ...SPLIT_QUICK, fusedDim: 30, numHeads: 4 })).toMatch(/numHeads 4 must divide fusedDim 30/);
    expect(refused({ ...SPLIT_QUICK, clipNorms: { activations: 0, gradients: 1 } })).toMatch(/clipNorms.activations/);
    expect(refused({ ...SPLIT_QUICK, learningRates: [0, 0.01] })).toMatch(/learning rate of 0/);
    expect(refused({ ...SPLIT_QUICK, tuningSeeds: [] })).toMatch(/tuning seed/);
    expect(refused({ ...SPLIT_QUICK, totalExamples: 3 })).toMatch(/totalExamples/);
  });

  it('extends the evaluation seeds to minSeeds, skipping tuning seeds and seeds already given', () => {
    expect(evaluationSeeds([1], { minSeeds: 2, tuningSeeds: [101] })).toEqual([1, 2]);
    expect(evaluationSeeds([1, 2, 3], { minSeeds: 2, tuningSeeds: [101] })).toEqual([1, 2, 3]);
    expect(evaluationSeeds([100], { minSeeds: 3, tuningSeeds: [101] })).toEqual([100, 102, 103]);
  });
});

describe('split tasks and plan', () => {
  it('gives the split and centralized methods a split section with one learning rate for device and edge, and adapter-only none', () => {
    const split = splitTaskOf(SPLIT_QUICK, { ...cell, variant: { noiseMultiplier: 1, encoding: 'int8' } });
    const adapters = splitTaskOf(SPLIT_QUICK, { ...cell, method: 'adapters', variant: null });
    const central = splitTaskOf(SPLIT_QUICK, { ...cell, method: 'centralized', variant: null });

    expect(split.split?.edgeLearningRate).toBe(0.003);
    expect(split.split?.activations).toEqual({ clipNorm: 4, noiseMultiplier: 1, encoding: 'int8' });
    expect(split.split?.gradients).toEqual({ clipNorm: 1, noiseMultiplier: 1, encoding: 'int8' });
    expect(split.split?.returnEncoding).toBe('int8');
    expect(adapters.split).toBeUndefined();
    expect(central.split?.activations.noiseMultiplier).toBe(0);
    for (const t of [split, adapters, central]) {
      expect([t.strategy.name, t.rounds, t.clientsPerRound, t.localEpochs, t.batchSize, t.seed]).toEqual(['fedavg', 3, 4, 1, 32, 1]);
      // The same id for every method of a seed, so codec headers (and byte counts) do not differ by method.
      expect(t.id).toBe('split-s1');
    }
  });

  it('plans per seed the three methods, then every other z in fp32 and every other encoding at z = 0', () => {
    const plan = splitPlan(SPLIT_QUICK, [1, 2]);

    expect(plan).toHaveLength(2 * (3 + 3 + 2));
    expect(plan.slice(0, 3).map((p) => p.method)).toEqual(['split', 'adapters', 'centralized']);
    expect(plan[0]!.variant).toEqual(MAIN_INTERFACE);
    expect(plan.slice(3, 8).map((p) => p.variant)).toEqual([
      { noiseMultiplier: 0.5, encoding: 'fp32' },
      { noiseMultiplier: 1, encoding: 'fp32' },
      { noiseMultiplier: 2, encoding: 'fp32' },
      { noiseMultiplier: 0, encoding: 'fp16' },
      { noiseMultiplier: 0, encoding: 'int8' },
    ]);
    expect(plan[8]!.seed).toBe(2);
  });
});

describe('split cache keys', () => {
  const file = (settings: SplitSettings, c: SplitCell, scored: 'validation' | 'test' = 'test'): string =>
    cacheFileName('split', splitCacheKey(settings, scored, c));

  it('name every input of a run: subset, method, seed, learning rate, interface and the settings, with the engine', () => {
    const base = file(SPLIT_QUICK, cell);
    expect(file(SPLIT_QUICK, cell)).toBe(base);
    expect(file(SPLIT_QUICK, cell, 'validation')).not.toBe(base);
    expect(file(SPLIT_QUICK, { ...cell, seed: 2 })).not.toBe(base);
    expect(file(SPLIT_QUICK, { ...cell, learningRate: 0.01 })).not.toBe(base);
    expect(file(SPLIT_QUICK, { ...cell, variant: { noiseMultiplier: 0, encoding: 'int8' } })).not.toBe(base);
    expect(file(SPLIT_QUICK, { ...cell, method: 'centralized', variant: null })).not.toBe(base);
    expect(file({ ...SPLIT_QUICK, clipNorms: { activations: 2, gradients: 1 } }, cell)).not.toBe(base);
    expect(file({ ...SPLIT_QUICK, testExamples: 121 }, cell)).not.toBe(base);
    expect(splitSettingsKey(SPLIT_QUICK)['engine']).toBe(SPLIT_ENGINE);
  });

  it('ignore the settings that change no single run (the grids, seeds and timing repetitions)', () => {
    const base = file(SPLIT_QUICK, cell);
    expect(
      file(
        { ...SPLIT_QUICK, learningRates: [0.001, 0.003], tuningSeeds: [7], minSeeds: 5, timingReps: 9, noiseMultipliers: [0, 4], encodings: ['fp32'] },
        cell,
      ),
    ).toBe(base);
  });
});

describe('run figures', () => {
  it('computes the per-example ε of a run: ∞ without noise, decreasing with z, from epochs × rounds × 2 releases', () => {
    const zero = runEpsilon(SPLIT_QUICK, 0);
    const eps = [0.5, 1, 2].map((z) => runEpsilon(SPLIT_QUICK, z).epsilon);

    expect(zero).toEqual({ epsilon: Infinity, releasesPerExample: 6 });
    expect(eps[0]!).toBeGreaterThan(eps[1]!);
    expect(eps[1]!).toBeGreaterThan(eps[2]!);
    expect(eps.every(Number.isFinite)).toBe(true);
  });

  it('sums a run’s traffic over clients and rounds, weighting the clipped fractions by examples', () => {
    const figures = (examplesSeen: number, clipped: number): ClientRoundFigures => ({
      clientId: 'c',
      numExamples: examplesSeen,
      examplesSeen,
      trainLoss: 1,
      downloadBytes: 300,
      downloadDeviceBytes: 100,
      uploadBytes: 50,
      stepBytesUp: 10,
      stepBytesDown: 20,
      numSteps: 2,
      clippedActivationsFraction: clipped,
      clippedGradientsFraction: 0,
      roundMs: 1,
      deviceMs: 1,
      waitMs: 0,
    });

    const t = trafficOf([[figures(10, 1), figures(30, 0)], [figures(10, 1)]]);

    expect(t).toEqual({
      clientRounds: 3,
      examplesSeen: 50,
      numSteps: 6,
      stepBytesUp: 30,
      stepBytesDown: 60,
      downloadBytes: 900,
      downloadDeviceBytes: 300,
      uploadBytes: 150,
      clippedActivationsFraction: 20 / 50,
      clippedGradientsFraction: 0,
    });
  });
});
