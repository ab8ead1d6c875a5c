import { describe, expect, it } from 'vitest';
import type { UpdateEncoding } from '@chorus/fl-core';
import { MAIN_INTERFACE, SPLIT_QUICK, splitPlan } from './splitGrid.js';
import type { DeviceTiming, InterfaceVariant, SplitMethod, SplitRun, Traffic } from './splitGrid.js';
import {
  bytesFigures,
  costsAndBuys,
  deviceMsPerExample,
  estimateFullMinutes,
  gridEdgeSentence,
  intervalReading,
  splitChecks,
  splitReport,
} from './splitReport.js';
import type { SplitReportInput } from './splitReport.js';
import { pairedDifference } from './stats.js';
import type { TuningRecord } from './tuning.js';

const settings = SPLIT_QUICK;
const seeds = [1, 2, 3];
const rates: Record<SplitMethod, number> = { split: 0.003, adapters: 0.01, centralized: 0.003 };

/** Traffic of one run: 4 clients × 3 rounds of 32 examples; step bytes per example by encoding. */
function traffic(stepPerExample: number, clipped = 0.1): Traffic {
  const examplesSeen = 4 * 3 * 32;
  return {
    clientRounds: 12,
    examplesSeen,
    numSteps: 12,
    stepBytesUp: stepPerExample * examplesSeen,
    stepBytesDown: stepPerExample * examplesSeen,
    downloadBytes: stepPerExample === 0 ? 12 * 48_000 : 12 * 120_000,
    downloadDeviceBytes: stepPerExample === 0 ? 12 * 48_000 : 12 * 49_000,
    uploadBytes: 12 * 36_000,
    clippedActivationsFraction: clipped,
    clippedGradientsFraction: clipped,
  };
}

const STEP_BYTES: Record<UpdateEncoding, number> = { fp32: 240, fp16: 120, int8: 64 };

function run(method: SplitMethod, seed: number, accuracy: number, variant: InterfaceVariant | null = method === 'split' ? MAIN_INTERFACE : null): SplitRun {
  return {
    method,
    seed,
    learningRate: rates[method],
    variant,
    completedRounds: settings.rounds,
    numExamples: 128,
    accuracy,
    loss: 1,
    traffic: method === 'centralized' ? null : traffic(method === 'adapters' ? 0 : STEP_BYTES[variant!.encoding]),
    modalityHolders: { image: 3, text: 3, audio: 2 },
    durationMs: 5_000,
  };
}

/** A complete plan: every row at `accuracy(method, seed, variant)`. */
function runsWith(accuracy: (method: SplitMethod, seed: number, variant: InterfaceVariant | null) => number): SplitRun[] {
  return splitPlan(settings, seeds).map((p) => run(p.method, p.seed, accuracy(p.method, p.seed, p.variant), p.variant));
}

const baseline = (method: SplitMethod, seed: number, variant: InterfaceVariant | null): number => {
  const noise = variant?.noiseMultiplier ?? 0;
  const byMethod = { split: 0.7, adapters: 0.5, centralized: 0.85 }[method];
  return byMethod - 0.1 * noise + 0.01 * seed;
};

const tuned = (method: SplitMethod): TuningRecord => ({
  method,
  candidates: settings.learningRates.map((learningRate) => ({
    hyperparameters: { learningRate },
    scores: [{ seed: 101, value: learningRate === rates[method] ? 0.8 : 0.5 }],
    mean: learningRate === rates[method] ? 0.8 : 0.5,
  })),
  chosen: { learningRate: rates[method] },
  validationScore: 0.8,
});

const timing: DeviceTiming = {
  numExamples: 32,
  examplesSeen: 32,
  adaptersRoundMs: [300, 320, 310],
  adaptersTrainMs: [200, 220, 210],
  splitRoundMs: [500, 520, 510],
  splitStepDeviceMs: [300, 330, 320],
  splitWaitMs: [100, 110, 90],
};

function input(overrides: Partial<SplitReportInput> = {}): SplitReportInput {
  return {
    settings,
    seeds,
    splits: { dataset: 'digits', validationSource: 'carved from test', validationPool: 500, testPool: 1001, validationExamples: 80, testExamples: 120 },
    tuning: (['split', 'adapters', 'centralized'] as const).map(tuned),
    runs: runsWith(baseline),
    timing,
    stored: 0,
    total: 30,
    skipped: 0,
    loadMs: 30_000,
    durationMs: 150_000,
    quick: true,
    ...overrides,
  };
}

describe('split checks', () => {
  it('pass on a complete, consistent set of runs', () => {
    const checks = splitChecks(input());

    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks).toHaveLength(7);
  });

  it('fail on a missing run, a run at another learning rate, a split at chance, and compression that does not shrink', () => {
    const runs = input().runs;
    const fail = (r: SplitRun[]): string[] =>
      splitChecks(input({ runs: r }))
        .filter((c) => !c.ok)
        .map((c) => c.name);

    expect(fail(runs.slice(1))).toEqual([expect.stringMatching(/every run of the plan/)]);
    expect(fail(runs.map((r, i) => (i === 1 ? { ...r, learningRate: 0.5 } : r)))).toEqual([expect.stringMatching(/learning rate chosen on validation/)]);
    expect(fail(runs.map((r) => (r.method === 'split' ? { ...r, accuracy: 0.1 } : r)))).toContain(
      'split training is above chance (mean test accuracy ≥ 2 × 1/10)',
    );
    expect(fail(runs.map((r) => (r.variant?.encoding === 'int8' ? { ...r, traffic: traffic(STEP_BYTES.fp16) } : r)))).toEqual([
      expect.stringMatching(/compression shrinks/),
    ]);
    expect(fail(runs.map((r) => (r.method === 'adapters' ? { ...r, traffic: traffic(10) } : r)))).toEqual([expect.stringMatching(/split steps carry bytes/)]);
  });
});

describe('split figures', () => {
  it('turns traffic into bytes per example and per round, keeping the edge tensors apart from what the device needs', () => {
    const t = traffic(240);

    const perExample = bytesFigures(t, 'example');
    const perRound = bytesFigures(t, 'round');

    expect(perExample.up).toBeCloseTo(240 + 36_000 / 32, 9);
    expect(perExample.down).toBeCloseTo(240 + 49_000 / 32, 9);
    expect(perRound.downloadEdge).toBe(120_000 - 49_000);
    expect(perRound.upload).toBe(36_000);
  });

  it('counts the split device’s compute as its round less its waiting, per example visited', () => {
    const t = deviceMsPerExample(timing);

    expect(t.adapters).toBeCloseTo(310 / 32, 9);
    expect(t.adaptersSteps).toBeCloseTo(210 / 32, 9);
    expect(t.splitDevice).toBeCloseTo(410 / 32, 9);
    expect(t.splitSteps).toBeCloseTo(320 / 32, 9);
    expect(t.splitWait).toBeCloseTo(100 / 32, 9);
  });

  it('reads an interval in a few words', () => {
    const d = (a: number[], c: number[]): ReturnType<typeof pairedDifference> =>
      pairedDifference(
        a.map((value, i) => ({ seed: i, value })),
        c.map((value, i) => ({ seed: i, value })),
      );
    expect(intervalReading(d([0.5, 0.6, 0.7], [0.4, 0.5, 0.6]))).toBe('interval excludes 0: above over these 3 seeds');
    expect(intervalReading(d([0.5, 0.3, 0.7], [0.4, 0.5, 0.6]))).toBe('interval includes 0: not separated by these 3 seeds');
    expect(intervalReading(d([0.5], [0.4]))).toBe('one seed: no interval');
  });
});

describe('what the split costs and buys', () => {
  it('names every measured loss of the split: bytes, device compute, noise — and accuracy when it is below adapter-only', () => {
    const below = costsAndBuys(input({ runs: runsWith((m, s, v) => (m === 'split' ? 0.4 - 0.1 * (v?.noiseMultiplier ?? 0) + 0.01 * s : baseline(m, s, v))) }));

    expect(below.losses[0]).toMatch(/^accuracy against adapter-only FedUMM \(−10\.0 \[.*\] points, interval below 0\)$/);
    expect(below.losses.some((l) => l.startsWith('bytes sent per example'))).toBe(true);
    expect(below.losses.some((l) => l.startsWith('device compute per example'))).toBe(true);
    expect(below.losses.some((l) => l.startsWith('accuracy once noise is added'))).toBe(true);
    expect(below.paragraph).toMatch(/over these 3 seeds split is below adapter-only FedUMM/);
  });

  it('does not call the split worse in accuracy when it is above adapter-only', () => {
    const above = costsAndBuys(input());

    expect(above.losses.some((l) => l.startsWith('accuracy against'))).toBe(false);
    expect(above.paragraph).toMatch(/over these 3 seeds split is above adapter-only FedUMM/);
    expect(above.paragraph).toMatch(/int8 both ways cuts the split steps' bytes by 73 %/);
  });
});

describe('split report', () => {
  it('writes the tables, three figures, the tuning record and the full-grid estimate', () => {
    const section = splitReport(input());

    expect(section.id).toBe('split');
    expect(section.seeds).toEqual(seeds);
    expect(section.figures.map((f) => f.file)).toEqual(['split-accuracy.svg', 'split-bytes.svg', 'split-noise.svg']);
    for (const f of section.figures) expect(f.svg.startsWith('<svg')).toBe(true);
    expect(section.markdown).toContain('**lr 0.003: 80.0**');
    expect(section.markdown).toContain('| Split − adapter-only | +20.0 [+20.0, +20.0] | interval excludes 0: above over these 3 seeds |');
    expect(section.markdown).toContain('as measured it is an upper bound');
    expect(section.markdown).toMatch(/\| 2 \| 52\.0 ± 1\.0 \| −20\.0 \[−20\.0, −20\.0\] \| \d+\.\d\d \| 10 \/ 10 \|/);
    expect(section.markdown).toContain('| Adapter-only FedUMM: its local training steps only | 210 (200, 220, 210) | 6.56 |');
    expect(section.markdown).toMatch(/The full grid \(`pnpm experiments --only split`.*is estimated at about \d+ min/);
    expect(section.checks.every((c) => c.ok)).toBe(true);
  });

  it('says so when centralized training is not an upper bound as measured', () => {
    const section = splitReport(input({ runs: runsWith((m, s, v) => (m === 'centralized' ? 0.6 + 0.01 * s : baseline(m, s, v))) }));

    expect(section.markdown).toContain('is NOT an upper bound as measured');
  });

  it('estimates the full grid only from runs made by this invocation', () => {
    expect(estimateFullMinutes({ ...input(), stored: 30 })).toBeNull();
    expect(estimateFullMinutes(input())).toBeGreaterThan(0);
  });
});

describe('gridEdgeSentence', () => {
  it('names the methods whose chosen rate is the smallest or largest of the grid', () => {
    const tuning = (['split', 'adapters', 'centralized'] as const).map((method, i) => ({
      method,
      candidates: [],
      chosen: { learningRate: [0.003, 0.01, 0.03][i]! },
      validationScore: 0.5,
    }));

    expect(gridEdgeSentence(tuning, [0.003, 0.01, 0.03])).toMatch(
      /^The rates chosen for Split .*\(0\.003\) and Centralized split .*\(0\.03\) are at the edge of the grid, so better ones/,
    );
    expect(gridEdgeSentence(tuning.slice(0, 1), [0.003, 0.01, 0.03])).toMatch(
      /^The rate chosen for Split .*\(0\.003\) is at the edge of the grid, so a better one/,
    );
    expect(gridEdgeSentence(tuning.slice(1, 2), [0.003, 0.01, 0.03])).toBe('Every chosen rate lies inside the grid.');
  });
});
