import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isExperimentsError } from './errors.js';
import {
  FULL_ROBUSTNESS,
  QUICK_ROBUSTNESS,
  ROBUSTNESS_ENGINE,
  ROBUSTNESS_VERIFY,
  againstServerOnly,
  aggregatorStrategy,
  krumByzantine,
  robustnessCacheKey,
  robustnessChecks,
  robustnessClientArgs,
  robustnessMarkdown,
  robustnessPlan,
  robustnessTask,
  runRobustness,
  selectionByzantine,
  trustAggregator,
  trustSeparationRow,
  trustSeparations,
} from './robustness.js';
import { PROBE_ENGINE, cacheFileName, createRunCache } from './runCache.js';
import type { RobustnessRun } from './robustnessAnalysis.js';

describe('robustness grid', () => {
  it("caps Krum's f by n > 2f + 2", () => {
    // 40% of 10 is 4, but 10 > 2·4 + 2 fails, so 3; 20% of 5 is 1 and 5 > 4 holds.
    expect(krumByzantine({ numClients: 10, fractions: [0.2, 0.4] })).toBe(3);
    expect(krumByzantine({ numClients: 5, fractions: [0.2] })).toBe(1);
    expect(krumByzantine({ numClients: 10, fractions: [0.2] })).toBe(2);
  });

  it("sets Multi-Krum selection's f to the largest fraction's attackers, leaving one client", () => {
    expect(selectionByzantine({ numClients: 10, fractions: [0.2, 0.4] })).toBe(4);
    expect(selectionByzantine({ numClients: 5, fractions: [0.2] })).toBe(1);
    expect(selectionByzantine({ numClients: 2, fractions: [1] })).toBe(1);
  });

  it('builds a valid task for every aggregator of both grids, on the dataset the settings name', () => {
    for (const settings of [QUICK_ROBUSTNESS, FULL_ROBUSTNESS]) {
      for (const a of settings.aggregators) {
        const task = robustnessTask(a, settings, 3);
        // Every FedMM-X variant is the trust wrapper with its own settings.
        expect(task.strategy.name).toBe(a.startsWith('fedmm-x') ? 'fedmm-x' : a);
        expect(task.dataset.name).toBe('fashion-mm');
        expect(task.clientsPerRound).toBe(settings.numClients);
        expect(task.minClients).toBe(settings.numClients);
        expect(task.seed).toBe(3);
      }
    }
  });

  it('expresses the norm bounds and the trust-signal ablations in the task file', () => {
    const strategy = (a: Parameters<typeof robustnessTask>[0]) => robustnessTask(a, FULL_ROBUSTNESS, 1).strategy;
    expect(strategy('fedmm-x')).toMatchObject({ maxNorm: null, agreementReference: 'median', agreementGate: true });
    expect(strategy('fedmm-x-bounded')).toMatchObject({ maxNorm: 'median', agreementReference: 'median', inner: { name: 'fedavg' } });
    expect(strategy('fedmm-x-rooted')).toMatchObject({ maxNorm: 'reference', agreementReference: 'root', rootExamples: 100 });
    const off = { agreement: 0, accuracy: 0, loss: 0, calibration: 0, explanation: 0 };
    expect(strategy('fedmm-x-agreement-only')).toMatchObject({ maxNorm: 'median', weights: { ...off, agreement: 1 }, agreementGate: true });
    expect(strategy('fedmm-x-probe-only')).toMatchObject({ maxNorm: 'median', weights: { ...off, accuracy: 1, loss: 1 }, agreementGate: false });
    expect(strategy('fedmm-x-expl-calib-only')).toMatchObject({
      maxNorm: 'median',
      weights: { ...off, calibration: 0.5, explanation: 0.5 },
      agreementGate: false,
    });
    expect(strategy('multi-krum-select')).toMatchObject({ numByzantine: 4, numSelected: null });
    // The quick grid keeps the norm-bounded configuration; the full grid has the server-only reference.
    expect(QUICK_ROBUSTNESS.aggregators).toEqual(['fedavg', 'fedmm-x-bounded']);
    expect(FULL_ROBUSTNESS.aggregators).toEqual(expect.arrayContaining(['fedmm-x-bounded', 'server-only']));
    expect(trustAggregator(QUICK_ROBUSTNESS)).toBe('fedmm-x-bounded');
  });

  it('switches the dataset of the tasks and of the clients by configuration', () => {
    const fashion = { ...QUICK_ROBUSTNESS, dataset: 'fashion' as const };
    expect(robustnessTask('fedavg', fashion, 1).dataset.name).toBe('fashion');
    const args = robustnessClientArgs(fashion, 1, null, 0);
    expect(args[args.indexOf('--dataset') + 1]).toBe('fashion');
    expect(robustnessCacheKey(fashion, { aggregator: 'fedavg', attack: null, fraction: 0, seed: 1 })).not.toEqual(
      robustnessCacheKey(QUICK_ROBUSTNESS, { aggregator: 'fedavg', attack: null, fraction: 0, seed: 1 }),
    );
  });

  it('refuses an unknown aggregator with a coded error', () => {
    let caught: unknown;
    try {
      aggregatorStrategy('krum-2' as never, QUICK_ROBUSTNESS);
    } catch (err) {
      caught = err;
    }
    expect(isExperimentsError(caught, 'EXPERIMENTS_BAD_INPUT')).toBe(true);
  });

  it('gives clean and attacked runs the same data flags, differing only by --adversarial', () => {
    const clean = robustnessClientArgs(QUICK_ROBUSTNESS, 4, null, 0);
    const attacked = robustnessClientArgs(QUICK_ROBUSTNESS, 4, 'scaling', 0.2);
    expect(attacked).toEqual([...clean, '--adversarial', 'scaling:0.2']);
    expect(clean.slice(0, 4)).toEqual(['--max-examples', String(QUICK_ROBUSTNESS.maxExamples), '--seed', '4']);
    expect(() => robustnessClientArgs(QUICK_ROBUSTNESS, 4, 'scaling', 0)).toThrow(/fraction/);
  });

  it('plans the clean run of every aggregator and every attacked cell of the competitors, per seed', () => {
    const plan = robustnessPlan(FULL_ROBUSTNESS, [1, 2]);
    // (one clean run per aggregator + attacks × 2 fractions × competitors) × 2 seeds; the server-only reference runs clean only.
    const aggregators = FULL_ROBUSTNESS.aggregators.length;
    expect(plan).toHaveLength(2 * (aggregators + FULL_ROBUSTNESS.attacks.length * 2 * (aggregators - 1)));
    expect(plan.slice(0, aggregators).every((p) => p.attack === null && p.seed === 1)).toBe(true);
    expect(plan.filter((p) => p.aggregator === 'server-only').every((p) => p.attack === null)).toBe(true);
    expect(robustnessPlan(QUICK_ROBUSTNESS, [1])).toHaveLength(2 + 2 * 2);
  });

  it('refuses to run without seeds', async () => {
    await expect(runRobustness({ quick: true, seeds: [], log: () => undefined })).rejects.toThrow(/at least one seed/);
  });
});

describe('againstServerOnly', () => {
  const clean = (aggregator: RobustnessRun['aggregator'], seed: number, finalAccuracy: number | null): RobustnessRun => ({
    aggregator,
    attack: null,
    fraction: 0,
    seed,
    status: finalAccuracy === null ? 'failed' : 'finished',
    completedRounds: 6,
    initialAccuracy: 0.1,
    accuracyByRound: [],
    finalAccuracy,
    clients: [],
    trust: [],
    durationMs: 1,
    cpuMs: 1,
  });

  it("lists the aggregators whose mean clean accuracy is above server only's and those not above it, and says so when most are not", () => {
    // Arrange: server only 0.40 on average; FedAvg 0.45, median exactly 0.40, FLTrust 0.30; an attacked run and a failed run count for nothing.
    const runs = [
      clean('server-only', 1, 0.38),
      clean('server-only', 2, 0.42),
      clean('fedavg', 1, 0.5),
      clean('fedavg', 2, 0.4),
      clean('median', 1, 0.4),
      clean('median', 2, 0.4),
      clean('fltrust', 1, 0.3),
      clean('fltrust', 2, null),
      { ...clean('fltrust', 1, 0.9), attack: 'sign-flip' as const, fraction: 0.2 },
    ];
    // Act
    const text = againstServerOnly(runs, ['fedavg', 'median', 'fltrust', 'server-only']);
    const fewer = againstServerOnly(
      runs.filter((r) => r.aggregator !== 'median'),
      ['fedavg', 'fltrust', 'server-only'],
    );
    // Assert
    expect(text).toBe(
      "Clean accuracy (mean over seeds) above server only's 40.0%: FedAvg (45.0%); not above it: Median (40.0%), FLTrust (30.0%). Most aggregators' clean accuracy is not above the server's alone: in this setting the clients add little to what the server's root examples give, so retained accuracy measures how much an attack costs a weak model more than what the clients were worth.",
    );
    expect(fewer).toBe("Clean accuracy (mean over seeds) above server only's 40.0%: FedAvg (45.0%); not above it: FLTrust (30.0%).");
    expect(
      againstServerOnly(
        runs.filter((r) => r.aggregator !== 'server-only'),
        ['fedavg'],
      ),
    ).toBeNull();
  });
});

describe('robustnessMarkdown', () => {
  it('says when a full-grid report covers fewer seeds than the full mode runs, and never of the quick grid', () => {
    const text = (settings: typeof FULL_ROBUSTNESS, seeds: number[]) => robustnessMarkdown([], settings, seeds, 0, []);
    expect(text(FULL_ROBUSTNESS, [1, 2, 3])).toContain("These are 3 of the full mode's 5 seeds");
    expect(text(FULL_ROBUSTNESS, [1, 2, 3, 4, 5])).not.toContain("of the full mode's");
    expect(text(QUICK_ROBUSTNESS, [1])).not.toContain("of the full mode's");
  });
});

describe('robustnessChecks', () => {
  const base: RobustnessRun = {
    aggregator: 'fedmm-x',
    attack: null,
    fraction: 0,
    seed: 1,
    status: 'finished',
    completedRounds: 6,
    initialAccuracy: 0.1,
    accuracyByRound: [],
    finalAccuracy: 0.8,
    clients: [
      { client: 0, clientId: 'h', behaviour: null },
      { client: 1, clientId: 'x', behaviour: 'sign-flip' },
    ],
    trust: [],
    durationMs: 1,
    cpuMs: 1,
  };
  const trust = (adv: number): RobustnessRun['trust'] =>
    [4, 5].map((serverRound) => ({
      serverRound,
      trust: [
        { clientId: 'h', trust: 0.5 },
        { clientId: 'x', trust: adv },
      ],
    }));
  const settings = { ...QUICK_ROBUSTNESS, aggregators: ['fedmm-x'] as const, attacks: ['sign-flip'] as const };

  it('tabulates trust per attack and fraction over the seeds, counting the runs where the adversaries were trusted less', () => {
    // Arrange: sign-flip at 20% over three seeds (adversaries below honest in two), one seed of scaling at 40%, another aggregator's run ignored.
    const run = (attack: 'sign-flip' | 'scaling', fraction: number, seed: number, adv: number): RobustnessRun => ({
      ...base,
      attack,
      fraction,
      seed,
      trust: trust(adv),
    });
    const runs = [
      run('sign-flip', 0.2, 1, 0.2),
      run('sign-flip', 0.2, 2, 0.4),
      run('sign-flip', 0.2, 3, 0.6),
      run('scaling', 0.4, 1, 0.1),
      { ...run('scaling', 0.2, 1, 0.9), aggregator: 'fedavg' as const },
    ];
    // Act
    const cells = trustSeparations(runs, { attacks: ['sign-flip', 'scaling'], fractions: [0.2, 0.4] }, 'fedmm-x');
    // Assert
    expect(cells.map((c) => [c.below, c.compared])).toEqual([
      [2, 3],
      [1, 1],
    ]);
    expect(cells.map(trustSeparationRow)).toEqual([
      ['sign-flip', '20%', '0.500 ± 0.000', '0.400 ± 0.200', '2 of 3'],
      ['scaling', '40%', '0.500', '0.100', '1 of 1'],
    ]);
  });

  it('names in the report the cells where trust did not rank the adversaries below the honest clients in most runs', () => {
    // Arrange: the quick grid's trust-aware aggregator; sign-flip's adversaries trusted less, scaling's more.
    const trusted = trustAggregator(QUICK_ROBUSTNESS)!;
    const runs = [
      { ...base, aggregator: trusted, attack: 'sign-flip' as const, fraction: 0.2, trust: trust(0.2) },
      { ...base, aggregator: trusted, attack: 'scaling' as const, fraction: 0.2, trust: trust(0.8) },
    ];
    // Act
    const text = robustnessMarkdown(runs, QUICK_ROBUSTNESS, [1], 0, []);
    const separated = robustnessMarkdown(runs.slice(0, 1), QUICK_ROBUSTNESS, [1], 0, []);
    // Assert
    expect(text).toContain('Trust did not rank the adversarial clients below the honest ones in most runs of: scaling 20% (0 of 1).');
    expect(separated).not.toContain('Trust did not rank');
  });

  it('passes when runs finished, clean runs learned and trust separated the attackers', () => {
    const checks = robustnessChecks([base, { ...base, attack: 'sign-flip', fraction: 0.2, trust: trust(0.2) }], settings);
    expect(checks.map((c) => c.ok)).toEqual([true, true, true]);
  });

  it('fails on an unfinished run, a weak clean run and attackers trusted as much as honest clients', () => {
    const checks = robustnessChecks(
      [
        { ...base, finalAccuracy: 0.25 },
        { ...base, attack: 'sign-flip', fraction: 0.2, finalAccuracy: null, status: 'error', trust: trust(0.5) },
      ],
      settings,
    );
    expect(checks.map((c) => c.ok)).toEqual([false, false, false]);
    expect(checks[0]!.detail).toContain('fedmm-x sign-flip s1: error');
  });

  it('reports but does not assert the clean accuracy of aggregators outside the headline', () => {
    const checks = robustnessChecks([base, { ...base, aggregator: 'multi-krum', finalAccuracy: 0.09 }], { ...settings, attacks: [] });
    expect(checks[1]!.ok).toBe(true);
    expect(checks[1]!.detail).toContain('multi-krum s1: 9.0');
  });
});

/** A finished run of `cell` as a cache would hold it: 90% clean, 60% attacked, attackers trusted less. */
function storedRun(cell: ReturnType<typeof robustnessPlan>[number]): RobustnessRun {
  return {
    ...cell,
    status: 'finished',
    completedRounds: QUICK_ROBUSTNESS.rounds,
    initialAccuracy: 0.1,
    accuracyByRound: [0.5, 0.9],
    finalAccuracy: cell.attack === null ? 0.9 : 0.6,
    clients: [
      { client: 0, clientId: 'h', behaviour: null },
      { client: 1, clientId: 'x', behaviour: cell.attack },
    ],
    trust:
      cell.aggregator === 'fedmm-x-bounded'
        ? [4, 5].map((serverRound) => ({
            serverRound,
            trust: [
              { clientId: 'h', trust: 0.6 },
              { clientId: 'x', trust: cell.attack === null ? 0.6 : 0.2 },
            ],
          }))
        : [],
    durationMs: 60_000,
    cpuMs: 30_000,
  };
}

describe('runRobustness with stored runs', () => {
  it('reuses every stored run of the grid instead of running it, and counts the time they took', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-robustness-cache-'));
    try {
      const cache = createRunCache(dir);
      const plan = robustnessPlan(QUICK_ROBUSTNESS, [7]);
      for (const cell of plan) cache.put('robustness', robustnessCacheKey(QUICK_ROBUSTNESS, cell), storedRun(cell));
      const lines: string[] = [];

      const result = await runRobustness({ quick: true, seeds: [7], log: (l) => lines.push(l), cache });

      expect(lines.filter((l) => l.includes('stored run'))).toHaveLength(plan.length);
      expect(result.checks.every((c) => c.ok)).toBe(true);
      expect(result.durationMs).toBeGreaterThanOrEqual(plan.length * 60_000);
      expect(result.markdown).toContain(`${plan.length} of them were read from raw/runs/`);
      // Retained = 0.6 / 0.9 for every cell.
      expect(result.markdown).toContain('66.7');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("under --shard leaves another shard's missing cell to it and says the grid is incomplete", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-robustness-shard-'));
    try {
      const cache = createRunCache(dir);
      const plan = robustnessPlan(QUICK_ROBUSTNESS, [7]);
      // Every cell stored but the second (index 1), which is shard 1/2's.
      for (const [i, cell] of plan.entries()) if (i !== 1) cache.put('robustness', robustnessCacheKey(QUICK_ROBUSTNESS, cell), storedRun(cell));

      const result = await runRobustness({ quick: true, seeds: [7], log: () => undefined, cache, shard: { index: 0, count: 2 } });

      const incomplete = result.checks.find((c) => c.name === 'the grid is complete');
      expect(incomplete?.ok).toBe(false);
      expect(incomplete?.detail).toContain(`1 of ${plan.length} cells`);
      expect((result.raw as { runs: unknown[] }).runs).toHaveLength(plan.length - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keys a run by the grid's settings and its cell, not by which aggregators or attacks the grid lists", () => {
    const cell = { aggregator: 'median' as const, attack: 'scaling' as const, fraction: 0.2, seed: 1 };
    const key = robustnessCacheKey(QUICK_ROBUSTNESS, cell);
    expect(robustnessCacheKey({ ...QUICK_ROBUSTNESS, aggregators: ['median'], attacks: ['scaling'], maxSeeds: 3 }, cell)).toEqual(key);
    expect(robustnessCacheKey({ ...QUICK_ROBUSTNESS, rounds: 6 }, cell)).not.toEqual(key);
    expect(robustnessCacheKey({ ...QUICK_ROBUSTNESS, fractions: [0.2, 0.4] }, cell)).not.toEqual(key);
    expect(robustnessCacheKey(QUICK_ROBUSTNESS, { ...cell, seed: 2 })).not.toEqual(key);
  });
});

describe('robustness keys and the server probe', () => {
  type Cell = Parameters<typeof robustnessCacheKey>[1];
  const clean = (aggregator: Cell['aggregator']): Cell => ({ aggregator, attack: null, fraction: 0, seed: 2 });
  /** A key of the full grid as the section wrote it before `probe` existed (the committed files hold these). */
  const storedBefore = (cell: Cell) => ({
    section: 'robustness',
    engine: ROBUSTNESS_ENGINE,
    settings: {
      dataset: 'fashion-mm',
      numClients: 10,
      rounds: 6,
      localEpochs: 2,
      maxExamples: 96,
      alpha: 0.5,
      modalityKinds: 'image=0.25,text=0.25,audio=0.25,image+text+audio=0.25',
      testExamples: 256,
      probeExamples: 64,
      fractions: [0.2, 0.4],
    },
    cell,
  });

  it('keeps the key of every cell whose aggregation reads no probe output byte for byte', () => {
    // Names of files committed in docs/results/raw/runs before the change.
    expect(cacheFileName('robustness', storedBefore(clean('fedavg')))).toBe('robustness-86c61bb301058ea1.json');
    expect(cacheFileName('robustness', robustnessCacheKey(FULL_ROBUSTNESS, clean('fedavg')))).toBe('robustness-86c61bb301058ea1.json');
    expect(cacheFileName('robustness', robustnessCacheKey(FULL_ROBUSTNESS, clean('fedmm-x-agreement-only')))).toBe('robustness-d0aaaa31bc7cb5bc.json');
    for (const aggregator of [
      'fedavg',
      'median',
      'trimmed-mean',
      'multi-krum',
      'multi-krum-select',
      'fltrust',
      'server-only',
      'fedmm-x-agreement-only',
    ] as const)
      expect(robustnessCacheKey(FULL_ROBUSTNESS, clean(aggregator))).toEqual(storedBefore(clean(aggregator)));
  });

  it('retires the stored run of every cell whose trust reads the probe: the old file is not served', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-robustness-probe-'));
    try {
      const cache = createRunCache(dir);
      const probing = ['fedmm-x', 'fedmm-x-bounded', 'fedmm-x-rooted', 'fedmm-x-probe-only', 'fedmm-x-expl-calib-only'] as const;
      for (const aggregator of [...probing, 'fedavg', 'fedmm-x-agreement-only'] as const)
        cache.put('robustness', storedBefore(clean(aggregator)), storedRun(clean(aggregator)));

      for (const aggregator of probing) {
        const key = robustnessCacheKey(FULL_ROBUSTNESS, clean(aggregator));
        expect(key).toEqual({ ...storedBefore(clean(aggregator)), probe: PROBE_ENGINE });
        expect(cache.get('robustness', key)).toBeNull();
        expect(ROBUSTNESS_VERIFY.retired?.(storedBefore(clean(aggregator)))).toContain('before PROBE_ENGINE existed');
        expect(ROBUSTNESS_VERIFY.retired?.(key)).toBeNull();
      }
      // The committed probe-only run of this cell is one of them.
      expect(cacheFileName('robustness', storedBefore(clean('fedmm-x-probe-only')))).toBe('robustness-3cc1ac482a7eb739.json');
      for (const aggregator of ['fedavg', 'fedmm-x-agreement-only'] as const) {
        expect(cache.get('robustness', robustnessCacheKey(FULL_ROBUSTNESS, clean(aggregator)))).toEqual(storedRun(clean(aggregator)));
        expect(ROBUSTNESS_VERIFY.retired?.(storedBefore(clean(aggregator)))).toBeNull();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
