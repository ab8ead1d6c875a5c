import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FEDUMM_FULL,
  FEDUMM_QUICK,
  FEDUMM_TUNED,
  fedUmmCacheKey,
  fedUmmChecks,
  fedUmmPlan,
  fedUmmReport,
  fedUmmRuns,
  fedUmmSection,
  fedUmmTask,
} from './fedumm.js';
import type { CentralRun, ClientCost, FedUmmReportInput, FedUmmSettings, FedUmmSteps, GridRun } from './fedumm.js';
import { cacheFileName, createRunCache } from './runCache.js';
import type { TuningRecord } from './tuning.js';

const settings = { ...FEDUMM_QUICK, alphas: [0.1, 1.0], clientCounts: [2, 8], reference: { alpha: 1.0, numClients: 8 } };

function gridRun(alpha: number, numClients: number, accuracy: number, seed = 1): GridRun {
  return { alpha, numClients, seed, learningRate: 0.03, status: 'finished', completedRounds: settings.rounds, numExamples: 320, accuracy, durationMs: 10_000 };
}

const central: CentralRun = {
  seed: 1,
  numExamples: 320,
  epochs: 3,
  numClients: 8,
  modalityHolders: { image: 6, text: 6, audio: 5 },
  initialAccuracy: 0.1,
  lora: { learningRate: 0.003, accuracy: 0.8, durationMs: 4000, numSteps: 30 },
  full: { learningRate: 0.003, accuracy: 0.85, durationMs: 20_000, numSteps: 30 },
};

const tuned = (method: string, learningRate: number): TuningRecord => ({
  method,
  candidates: [
    { hyperparameters: { learningRate: 0.003 }, scores: [{ seed: 101, value: 0.7 }], mean: 0.7 },
    { hyperparameters: { learningRate: 0.03 }, scores: [{ seed: 101, value: 0.6 }], mean: 0.6 },
  ].map((c) => (c.hyperparameters.learningRate === learningRate ? { ...c, mean: 0.9 } : c)),
  chosen: { learningRate },
  validationScore: 0.9,
});
const tuning = [tuned(FEDUMM_TUNED.federated, 0.03), tuned(FEDUMM_TUNED.lora, 0.003), tuned(FEDUMM_TUNED.full, 0.003)];

const costs: ClientCost[] = [
  { mode: 'adapters', numExamples: 40, numScalars: 11_778, bytes: { fp32: 48_000, fp16: 24_600, int8: 12_900 }, trainMs: [300, 200, 250] },
  { mode: 'full', numExamples: 40, numScalars: 1_403_930, bytes: { fp32: 5_620_000, fp16: 2_810_000, int8: 1_410_000 }, trainMs: [1500, 1300, 1400] },
];

function input(overrides: Partial<FedUmmReportInput> = {}): FedUmmReportInput {
  return {
    settings,
    seeds: [1],
    splits: { dataset: 'digits', validationSource: 'carved from test', validationPool: 500, testPool: 1001, validationExamples: 200, testExamples: 256 },
    tuning,
    grid: [gridRun(0.1, 2, 0.6), gridRun(0.1, 8, 0.4), gridRun(1.0, 2, 0.7), gridRun(1.0, 8, 0.65)],
    central: [central],
    costs,
    durationMs: 120_000,
    quick: true,
    ...overrides,
  };
}

describe('FedUMM grid', () => {
  it('builds a valid FedAvg task for every cell of both grids', () => {
    for (const s of [FEDUMM_QUICK, FEDUMM_FULL]) {
      for (const alpha of s.alphas) {
        for (const k of s.clientCounts) {
          const task = fedUmmTask(s, { alpha, numClients: k, seed: 2, learningRate: 0.003 });
          expect(task.strategy.name).toBe('fedavg');
          expect([task.clientsPerRound, task.minClients, task.rounds, task.seed, task.learningRate]).toEqual([k, k, s.rounds, 2, 0.003]);
          expect(task.evaluation.testExamples).toBe(0);
        }
      }
      expect(s.alphas).toContain(s.reference.alpha);
      expect(s.clientCounts).toContain(s.reference.numClients);
    }
    expect(FEDUMM_FULL.alphas).toEqual([0.1, 0.5, 1.0]);
    expect(FEDUMM_FULL.clientCounts).toEqual([2, 4, 8, 16]);
  });
});

describe('fedUmmSection', () => {
  it('refuses a dataset this checkout cannot open, and a tuning seed among the evaluation seeds, before training', async () => {
    const log = (): void => undefined;

    await expect(fedUmmSection('fedumm-x', 'fashion' as never).run({ quick: true, seeds: [1], log })).rejects.toThrow(/EXPERIMENTS_UNKNOWN_DATASET/);
    await expect(fedUmmSection('fedumm', 'digits').run({ quick: true, seeds: [1, 101], log })).rejects.toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});

describe('fedUmmChecks', () => {
  it('passes on sane figures', () => {
    expect(fedUmmChecks(input()).filter((c) => !c.ok)).toEqual([]);
  });

  it('fails on an unfinished run, an untuned rate, clients all holding every modality, no learning, int8 not a quarter, and LoRA no cheaper than full', () => {
    // Arrange
    const bad = input({
      grid: [{ ...gridRun(0.1, 2, 0.15), status: 'failed', completedRounds: 1, learningRate: 0.01 }],
      central: [{ ...central, modalityHolders: { image: 8, text: 8, audio: 8 } }],
      costs: [
        { ...costs[0]!, bytes: { fp32: 48_000, fp16: 24_600, int8: 30_000 }, trainMs: [2000] },
        { ...costs[1]!, bytes: { fp32: 60_000, fp16: 30_000, int8: 15_000 }, trainMs: [1000] },
      ],
    });
    // Act
    const failed = fedUmmChecks(bad)
      .filter((c) => !c.ok)
      .map((c) => c.name);
    // Assert
    expect(failed).toHaveLength(7);
    expect(fedUmmChecks(bad)[1]!.detail).toBe('3 of 3 tuned; α 0.1 × 2 s1 ran at another rate');
  });
});

describe('fedUmmReport', () => {
  it('writes Tables 1, 3 and 4 with the differences from centralized, a figure and the raw numbers', () => {
    // Act
    const r = fedUmmReport(input());
    // Assert: α = 0.1 averages 50.0, 20 points under centralized LoRA's 80.0.
    expect(r.id).toBe('fedumm');
    expect(r.markdown).toContain('| vs. centralized (points, difference of means) | −30.0 | −12.5 | −21.3 |  |');
    expect(r.markdown).toContain('| Centralized LoRA (upper bound) | — | — | 80.0 | 320 |');
    expect(r.markdown).toContain('| 8 | 40.0 | 65.0 | 52.5 ± 17.7 | 320 |');
    expect(r.markdown).toContain('| Centralized (full fine-tuning) | 0.003 | 85.0 | — | ✗ |');
    expect(r.markdown).toContain('| Centralized LoRA | lr 0.003 | **lr 0.003: 90.0**; lr 0.03: 60.0 |');
    expect(r.markdown).toContain('| 2 | −20.0 (1 seed, no interval) | −10.0 (1 seed, no interval) |');
    expect(r.markdown).toContain('With one evaluation seed there are no intervals');
    expect(r.markdown).toContain('image 6, text 6, audio 5');
    expect(r.markdown).toContain('| Adapters ÷ full | 0.0084 |');
    expect(r.markdown).toMatch(/estimated at about \d+ min/);
    // α = 1 vs 0.1: (70 + 65) / 2 − (60 + 40) / 2 = 17.5 points; 2 vs 8 clients: 65 − 52.5 = 12.5 points.
    expect(r.markdown).toContain('from α = 1 to α = 0.1 accuracy falls by 17.5 points');
    expect(r.markdown).toContain('from 2 to 8 clients it falls by 12.5 points');
    expect(r.figures.map((f) => f.file)).toEqual(['fedumm-accuracy.svg']);
    expect(r.figures[0]!.svg.startsWith('<svg') || r.figures[0]!.svg.startsWith('<?xml')).toBe(true);
    expect((r.raw as { grid: GridRun[] }).grid).toHaveLength(4);
    expect(r.markdown).not.toContain('trained on fewer examples');
  });

  it('names the configurations whose clients held fewer examples than the budget', () => {
    const r = fedUmmReport(input({ grid: [gridRun(0.1, 2, 0.6), { ...gridRun(0.1, 8, 0.4), numExamples: 250 }] }));

    expect(r.markdown).toContain('so α = 0.1 × 8 clients trained on fewer examples in all');
  });
});

describe('fedUmmReport over several seeds', () => {
  it('pairs each configuration with centralized LoRA per seed, counts the separated ones, and says when centralized is only a reference', () => {
    const c2 = { ...central, seed: 2, lora: { ...central.lora, accuracy: 0.6 } };
    const grid = [1, 2].flatMap((seed) => [
      gridRun(0.1, 2, seed === 1 ? 0.6 : 0.41, seed),
      gridRun(0.1, 8, seed === 1 ? 0.79 : 0.59, seed),
      gridRun(1.0, 2, seed === 1 ? 0.9 : 0.5, seed),
      gridRun(1.0, 8, seed === 1 ? 0.7 : 0.6, seed),
    ]);

    const r = fedUmmReport(input({ seeds: [1, 2], grid, central: [central, c2] }));

    // α = 0.1 × 2: −20, −19 → mean −19.5, s = 0.707, t(1) = 12.706: half-width 6.35, interval [−25.9, −13.1].
    expect(r.markdown).toContain('| 2 | −19.5 [−25.9, −13.1] |');
    expect(r.markdown).toContain(
      'Of the 4 configurations, 2 are below centralized LoRA with a 95 % interval that excludes 0 (α = 0.1 × 2, α = 0.1 × 8), 0 above it, and the interval of the other 2 includes 0',
    );
    // α = 1 × 2 averages 70.0, centralized LoRA 70.0: still a bound; α = 1 × 8 averages 65.0.
    expect(r.markdown).toContain('Centralized LoRA (upper bound)');
    const beaten = fedUmmReport(
      input({ seeds: [1, 2], grid: grid.map((g) => (g.alpha === 1 && g.numClients === 2 ? { ...g, accuracy: 0.95 } : g)), central: [central, c2] }),
    );
    expect(beaten.markdown).toContain('| Centralized LoRA (reference) |');
    expect(beaten.markdown).toContain('is not an upper bound here: the best federated configuration averages 95.0 %');
  });
});

describe('fedUmmRuns with the run cache', () => {
  // Two learning rates × one tuning seed for each of the three tuned models, two grid cells and one centralized run: 9 stored runs.
  const small: FedUmmSettings = { ...settings, alphas: [1.0], clientCounts: [2, 8], learningRates: [0.003, 0.01], tuningSeeds: [101] };
  let dir: string;
  let calls: string[];
  const steps: FedUmmSteps = {
    federatedValidation: (lr, seed) => (calls.push(`federated ${lr} s${seed}`), Promise.resolve(lr === 0.01 ? 0.7 : 0.6)),
    centralizedValidation: (mode, lr, seed) => (calls.push(`${mode} ${lr} s${seed}`), Promise.resolve(lr === 0.003 ? 0.8 : 0.5)),
    gridRun: (cell) => (
      calls.push(`grid ${cell.numClients} s${cell.seed}`),
      Promise.resolve({ ...gridRun(cell.alpha, cell.numClients, 0.6, cell.seed), learningRate: cell.learningRate })
    ),
    centralRun: (seed, rates) => (calls.push(`central s${seed}`), Promise.resolve({ ...central, seed, lora: { ...central.lora, learningRate: rates.lora } })),
    clientCosts: (seed) => (calls.push(`costs s${seed}`), Promise.resolve(costs)),
  };
  const ctx = (warnings: string[] = []) => ({ quick: false, seeds: [1], log: () => undefined, cache: createRunCache(dir, { warn: (l) => warnings.push(l) }) });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-fedumm-cache-'));
    calls = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every tuning, grid and centralized run back instead of running it again, and measures the client costs again', async () => {
    const first = await fedUmmRuns(ctx(), small, [1], steps);
    expect(calls).toHaveLength(10);
    expect(readdirSync(dir)).toHaveLength(9);
    calls = [];

    const second = await fedUmmRuns(ctx(), small, [1], steps);

    expect(calls).toEqual(['costs s1']);
    expect({ ...second, stored: 0 }).toEqual({ ...first, stored: 0 });
    expect([first.stored, second.stored, second.total, second.skipped]).toEqual([0, 9, 9, 0]);
    expect(second.tuning.map((r) => r.chosen.learningRate)).toEqual([0.01, 0.003, 0.003]);
    const report = fedUmmReport({ ...input(), settings: small, ...second, reuse: { stored: second.stored, total: second.total, skipped: 0 } });
    expect(report.markdown).toContain('9 of its 9 tuning, grid and centralized runs were read from raw/runs/, stored by earlier invocations');
    expect(report.markdown).toContain("one client's round times (Table 4) were measured again by this invocation");
  });

  it('runs again what a changed setting defines, and nothing for a changed list of cells', async () => {
    await fedUmmRuns(ctx(), small, [1], steps);
    calls = [];
    await fedUmmRuns(ctx(), { ...small, clientCounts: [8] }, [1], steps);
    expect(calls).toEqual(['costs s1']);
    calls = [];

    await fedUmmRuns(ctx(), { ...small, rounds: small.rounds + 1 }, [1], steps);

    expect(calls).toHaveLength(10);
    const cell = { alpha: 1.0, numClients: 2, seed: 1, learningRate: 0.01 };
    expect(fedUmmCacheKey(small, { kind: 'grid', cell })).not.toEqual(fedUmmCacheKey(small, { kind: 'grid', cell: { ...cell, learningRate: 0.003 } }));
  });

  it('reports a corrupt file and runs its cell again; keeps no unfinished federated run', async () => {
    await fedUmmRuns(ctx(), small, [1], steps);
    const cell = { alpha: 1.0, numClients: 8, seed: 1, learningRate: 0.01 };
    writeFileSync(join(dir, cacheFileName('fedumm', fedUmmCacheKey(small, { kind: 'grid', cell }))), 'not json');
    calls = [];
    const warnings: string[] = [];

    await fedUmmRuns(ctx(warnings), small, [1], steps);

    expect(calls).toEqual(['grid 8 s1', 'costs s1']);
    expect(warnings).toEqual([expect.stringContaining('not JSON')]);
    const unfinished: FedUmmSteps = {
      ...steps,
      federatedValidation: (lr, seed) => (lr === 0.003 ? Promise.resolve(Number.NaN) : steps.federatedValidation(lr, seed)),
      gridRun: (c) => steps.gridRun(c).then((r) => ({ ...r, status: 'failed' })),
    };
    await fedUmmRuns(ctx(), { ...small, rounds: 9 }, [1], unfinished);
    // Of the new settings' runs, the unfinished federated tuning run (NaN) and the failed grid runs were not kept.
    expect(readdirSync(dir)).toHaveLength(9 + 6);
  });

  it("under --shard leaves another shard's missing grid or centralized run to it, and the report says the grid is incomplete", async () => {
    expect(fedUmmPlan(small, [1]).map((p) => p.kind)).toEqual(['grid', 'grid', 'central']);

    const runs = await fedUmmRuns({ ...ctx(), shard: { index: 1, count: 2 } }, small, [1], steps);

    expect(calls.filter((c) => !/^(federated|adapters|full) /.test(c))).toEqual(['grid 8 s1', 'costs s1']);
    expect(runs.skipped).toBe(2);
    const checks = fedUmmChecks({ ...input(), reuse: { stored: 0, total: runs.total, skipped: runs.skipped } });
    expect(checks.find((c) => c.name === 'the fedumm grid is complete')?.ok).toBe(false);
  });
});
