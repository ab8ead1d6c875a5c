import { describe, expect, it } from 'vitest';
import type { AdversarialKind } from '@chorus/client';
import { isExperimentsError } from './errors.js';
import {
  adversarialTrustBelowHonest,
  cellKey,
  designTarget,
  designTargetLines,
  retainedAccuracy,
  retainedBarChart,
  retainedByCell,
  retainedOverAttacks,
  robustnessSummary,
  robustnessTables,
  trustFigure,
  trustGroupMeans,
  trustGroups,
} from './robustnessAnalysis.js';
import type { AggregatorId, RobustnessRun } from './robustnessAnalysis.js';

function run(
  aggregator: AggregatorId,
  attack: AdversarialKind | null,
  finalAccuracy: number | null,
  seed = 1,
  fraction = attack === null ? 0 : 0.2,
): RobustnessRun {
  return {
    aggregator,
    attack,
    fraction,
    seed,
    status: finalAccuracy === null ? 'error' : 'finished',
    completedRounds: finalAccuracy === null ? 0 : 2,
    initialAccuracy: 0.1,
    accuracyByRound: finalAccuracy === null ? [] : [0.5, finalAccuracy],
    finalAccuracy,
    clients: [],
    trust: [],
    durationMs: 1000,
    cpuMs: 900,
  };
}

/** Three clients: c0 and c2 honest, c1 sign-flip; T_k over rounds 1..5. */
function trustRun(adversarialTrust: readonly number[], honestTrust: readonly number[]): RobustnessRun {
  return {
    ...run('fedmm-x', 'sign-flip', 0.8),
    clients: [
      { client: 0, clientId: 'a', behaviour: null },
      { client: 1, clientId: 'b', behaviour: 'sign-flip' },
      { client: 2, clientId: 'c', behaviour: null },
    ],
    trust: adversarialTrust.map((adv, i) => ({
      serverRound: i + 1,
      trust: [
        { clientId: 'a', trust: honestTrust[i]! },
        { clientId: 'b', trust: adv },
        { clientId: 'c', trust: honestTrust[i]! + 0.1 },
      ],
    })),
  };
}

describe('retainedAccuracy', () => {
  it('divides the attacked accuracy by the clean one', () => {
    expect(retainedAccuracy(0.6, 0.8)).toBeCloseTo(0.75, 12);
  });

  it('gives null when a value is missing or the clean accuracy is 0', () => {
    expect(retainedAccuracy(null, 0.8)).toBeNull();
    expect(retainedAccuracy(0.5, null)).toBeNull();
    expect(retainedAccuracy(0.5, 0)).toBeNull();
  });

  it('refuses a value that is not an accuracy with a coded error', () => {
    let caught: unknown;
    try {
      retainedAccuracy(1.5, 0.8);
    } catch (err) {
      caught = err;
    }
    expect(isExperimentsError(caught, 'EXPERIMENTS_BAD_INPUT')).toBe(true);
    expect(() => retainedAccuracy(0.5, Number.NaN)).toThrow(/clean/);
  });
});

describe('retainedByCell', () => {
  it('pairs each attacked run with the clean run of the same aggregator and seed', () => {
    // Arrange: FedAvg clean 0.8 / 0.5 (seeds 1 / 2); median clean 0.6.
    const runs = [
      run('fedavg', null, 0.8, 1),
      run('fedavg', null, 0.5, 2),
      run('median', null, 0.6, 1),
      run('fedavg', 'sign-flip', 0.4, 2),
      run('fedavg', 'sign-flip', 0.6, 1),
      run('median', 'sign-flip', 0.6, 1),
    ];

    // Act
    const cells = retainedByCell(runs);

    // Assert: sorted by seed; 0.6/0.8 and 0.4/0.5.
    const fedavg = cells.get(cellKey('fedavg', 'sign-flip', 0.2))!;
    expect(fedavg.map((v) => v.seed)).toEqual([1, 2]);
    expect(fedavg[0]!.retained).toBeCloseTo(0.75, 12);
    expect(fedavg[1]!.retained).toBeCloseTo(0.8, 12);
    expect(cells.get(cellKey('median', 'sign-flip', 0.2))![0]!.retained).toBeCloseTo(1, 12);
  });

  it('leaves out a run whose clean partner is missing or failed', () => {
    const cells = retainedByCell([run('fedavg', null, null), run('fedavg', 'scaling', 0.5), run('median', 'scaling', 0.5)]);
    expect(cells.size).toBe(0);
  });

  it('reports nothing against a clean run that did not learn', () => {
    // 0.15 is below twice chance on 10 classes; with a threshold of 0.1 the same pair counts.
    const runs = [run('multi-krum', null, 0.15), run('multi-krum', 'scaling', 0.15)];
    expect(retainedByCell(runs).size).toBe(0);
    expect(retainedByCell(runs, 0.1).get(cellKey('multi-krum', 'scaling', 0.2))![0]!.retained).toBeCloseTo(1, 12);
    expect(() => retainedByCell(runs, 1)).toThrow(/minCleanAccuracy/);
  });

  it('refuses two clean runs of one aggregator and seed', () => {
    expect(() => retainedByCell([run('fedavg', null, 0.8), run('fedavg', null, 0.7)])).toThrow(/two clean runs/);
  });
});

describe('retainedOverAttacks', () => {
  it('averages over attacks per seed, counting only seeds with every attack', () => {
    // Arrange: seed 1 has both attacks (0.5 and 1.0 retained); seed 2 only sign-flip.
    const runs = [
      run('fedavg', null, 0.8, 1),
      run('fedavg', null, 0.8, 2),
      run('fedavg', 'sign-flip', 0.4, 1),
      run('fedavg', 'scaling', 0.8, 1),
      run('fedavg', 'sign-flip', 0.8, 2),
    ];

    // Act
    const values = retainedOverAttacks(retainedByCell(runs), 'fedavg', 0.2, ['sign-flip', 'scaling']);

    // Assert
    expect(values).toHaveLength(1);
    expect(values[0]).toBeCloseTo(0.75, 12);
  });
});

describe('trust of honest and adversarial clients', () => {
  it('averages each group per round', () => {
    const means = trustGroupMeans(trustRun([0.3, 0.2], [0.5, 0.6]));
    expect(means[0]!.serverRound).toBe(1);
    expect(means[0]!.honest).toBeCloseTo(0.55, 12);
    expect(means[0]!.adversarial).toBeCloseTo(0.3, 12);
    expect(means[1]!.honest).toBeCloseTo(0.65, 12);
  });

  it("gives each group's range beside its mean", () => {
    const groups = trustGroups(trustRun([0.3], [0.5]));
    expect(groups[0]!.honest!.min).toBeCloseTo(0.5, 12);
    expect(groups[0]!.honest!.max).toBeCloseTo(0.6, 12);
    expect(groups[0]!.adversarial).toEqual({ mean: 0.3, min: 0.3, max: 0.3 });
  });

  it('passes only when adversarial trust is below honest in every round after the threshold', () => {
    // Rounds 1–3 do not count; round 5 is where the gap closes in the failing run.
    const separated = trustRun([0.9, 0.9, 0.9, 0.2, 0.1], [0.5, 0.5, 0.5, 0.5, 0.5]);
    const closing = trustRun([0.9, 0.9, 0.9, 0.2, 0.6], [0.5, 0.5, 0.5, 0.5, 0.5]);

    expect(adversarialTrustBelowHonest(separated, 3).ok).toBe(true);
    const failed = adversarialTrustBelowHonest(closing, 3);
    expect(failed.ok).toBe(false);
    expect(failed.detail).toContain('r5 adv 0.600 / honest 0.550');
  });

  it('fails when no round comes after the threshold', () => {
    expect(adversarialTrustBelowHonest(trustRun([0.1, 0.1], [0.5, 0.5]), 3).ok).toBe(false);
  });

  it('refuses trust of a client the run does not know', () => {
    const r = trustRun([0.1], [0.5]);
    const bad = { ...r, trust: [{ serverRound: 1, trust: [{ clientId: 'zz', trust: 0.5 }] }] };
    expect(() => trustGroupMeans(bad)).toThrow(/unknown client 'zz'/);
  });

  it('draws every client, adversarial ones dashed, and both group means', () => {
    const svg = trustFigure(trustRun([0.3, 0.2], [0.5, 0.6]), 'Trust <test>');
    expect(svg).toContain('Trust &lt;test&gt;');
    for (const name of ['honest mean (band: range)', 'adversarial mean (band: range)', 'honest c0', 'honest c2', 'sign-flip c1']) expect(svg).toContain(name);
    // Two dashed lines (adversarial mean and c1) plus their legend swatches.
    expect(svg.match(/<polyline[^>]*stroke-dasharray/g)).toHaveLength(2);
  });

  it('draws each group in its own hue: honest lines blue, adversarial lines red', () => {
    const svg = trustFigure(trustRun([0.3, 0.2], [0.5, 0.6]), 't');
    const strokes = (re: RegExp): string[] => [...svg.matchAll(re)].map((m) => m[1]!);
    // Solid polylines are honest (mean and two clients), dashed ones adversarial (mean and one client).
    const solid = strokes(/<polyline [^>]*stroke="(#[0-9a-f]{6})" stroke-width="[\d.]+"\/>/g);
    const dashed = strokes(/<polyline [^>]*stroke="(#[0-9a-f]{6})" stroke-width="[\d.]+" stroke-dasharray/g);
    expect(new Set(solid)).toEqual(new Set(['#1f4e9c', '#8fb3e8']));
    expect(new Set(dashed)).toEqual(new Set(['#b2182b', '#f0a0a0']));
  });

  it('refuses a run without trust scores', () => {
    expect(() => trustFigure(run('fedavg', 'sign-flip', 0.5), 't')).toThrow(/no trust/);
  });
});

describe('tables, summary and chart', () => {
  // FedAvg: clean 0.8, sign-flip 0.4 (50%); FedMM-X: clean 0.8, sign-flip 0.72 (90%); median: clean 0.5, sign-flip 0.5 (100%).
  const runs = [
    run('fedavg', null, 0.8),
    run('fedmm-x', null, 0.8),
    run('median', null, 0.5),
    run('fedavg', 'sign-flip', 0.4),
    run('fedmm-x', 'sign-flip', 0.72),
    run('median', 'sign-flip', 0.5),
  ];
  const grid = { aggregators: ['fedavg', 'median', 'fedmm-x'] as AggregatorId[], attacks: ['sign-flip'] as AdversarialKind[], fractions: [0.2] };

  it('tabulates retained and final accuracy per aggregator', () => {
    const { retained, accuracy } = robustnessTables(runs, grid);
    expect(retained).toContain('| FedAvg | 80.0 | 50.0 | 50.0 |');
    expect(retained).toContain('| FedMM-X (trust-aware, unbounded) | 80.0 | 90.0 | 90.0 |');
    expect(accuracy).toContain('| Median | 50.0 | 50.0 |');
  });

  it('states the headline for the method asked about', () => {
    const { headline } = robustnessSummary(runs, grid, 'fedmm-x');
    expect(headline[0]).toContain("FedMM-X (trust-aware, unbounded) retains 90.0% of its clean accuracy vs FedAvg's 50.0%; best: Median 100.0%");
  });

  it('leaves the server-only reference row out of every "best aggregator" comparison', () => {
    // 110% retained: it would rank first if it were compared.
    const withServer = [...runs, run('server-only', null, 0.6), run('server-only', 'sign-flip', 0.66)];
    const { headline } = robustnessSummary(withServer, { ...grid, aggregators: [...grid.aggregators, 'server-only'] }, 'fedmm-x');
    expect(headline[0]).toContain('best: Median 100.0%');
    const target = designTarget(
      [...withServer, run('fedmm-x-bounded', null, 0.8), run('fedmm-x-bounded', 'sign-flip', 0.76)],
      { ...grid, aggregators: [...grid.aggregators, 'fedmm-x-bounded', 'server-only'] },
      'fedmm-x-bounded',
    );
    expect(target.losing.map((l) => l.baseline)).toEqual(['median']);
  });

  it('draws one bar series per fraction with the retained percentages', () => {
    const svg = retainedBarChart(runs, grid);
    expect(svg).toContain('20% adversarial');
    expect(svg).toContain('20% adversarial · FedAvg: 50<');
  });
});

describe('designTarget', () => {
  const grid = {
    aggregators: ['fedavg', 'median', 'fedmm-x', 'fedmm-x-bounded', 'server-only'] as AggregatorId[],
    attacks: ['sign-flip', 'scaling'] as AdversarialKind[],
    fractions: [0.2, 0.4],
  };
  /** Clean 0.8 for everyone and each seed; attacked runs retain `retained[attack][fraction]` per seed. */
  function grid3(retained: Partial<Record<AggregatorId, Record<string, readonly number[]>>>): RobustnessRun[] {
    const out: RobustnessRun[] = [];
    for (const seed of [1, 2, 3]) {
      for (const a of grid.aggregators) {
        out.push(run(a, null, 0.8, seed));
        for (const attack of grid.attacks) {
          for (const fraction of grid.fractions) {
            const values = retained[a]?.[`${attack} ${fraction}`] ?? [1, 1, 1];
            out.push(run(a, attack, 0.8 * values[seed - 1]!, seed, fraction));
          }
        }
      }
    }
    return out;
  }

  it('reports the mean retained accuracy per fraction against 95% and 90%, and a cell lost by more than its interval', () => {
    // Arrange: the bounded method retains 100% except at scaling 40% (0.5, 0.55, 0.6), where median
    // keeps 100%: the paired difference −45 ± t₂·5/√3 (half-width 12.4) lies wholly below 0. At sign-flip 20%
    // it is 2 points under median but within noise (differences −0.1, +0.05, −0.01: the interval includes 0).
    // The server-only row would beat everyone and is not a baseline; unbounded FedMM-X is not one either.
    const runs = grid3({
      'fedmm-x-bounded': {
        'sign-flip 0.2': [0.9, 1.05, 0.99],
        'scaling 0.4': [0.5, 0.55, 0.6],
      },
      fedavg: { 'scaling 0.4': [0.1, 0.1, 0.1], 'scaling 0.2': [0.2, 0.2, 0.2] },
      'fedmm-x': { 'scaling 0.4': [1.2, 1.2, 1.2] },
    });
    // Act
    const result = designTarget(runs, grid, 'fedmm-x-bounded');
    // Assert: 20%: (0.98 + 1)/2 = 0.99 ≥ 0.95; 40%: (1 + 0.55)/2 = 0.775 < 0.90.
    expect(result.fractions.map((f) => [f.fraction, +f.retained!.toFixed(4), f.target, f.met])).toEqual([
      [0.2, 0.99, 0.95, true],
      [0.4, 0.775, 0.9, false],
    ]);
    expect(result.comparedCells).toBe(4);
    expect(result.losing).toHaveLength(1);
    const lost = result.losing[0]!;
    expect([lost.attack, lost.fraction, lost.baseline]).toEqual(['scaling', 0.4, 'median']);
    expect(lost.difference.mean).toBeCloseTo(-0.45, 10);
    expect(lost.difference.high).toBeLessThan(0);
    const lines = designTargetLines(result);
    expect(lines[0]).toBe('- FedMM-X + median norm bound at 20%: mean retained 99.0% against the design target ≥ 95%: met.');
    expect(lines[1]).toBe('- FedMM-X + median norm bound at 40%: mean retained 77.5% against the design target ≥ 90%: missed.');
    expect(lines[2]).toContain('Cells (1 of 4)');
    expect(lines[3]).toContain('scaling 40%: 55.0% vs Median 100.0%, difference −45.0 [');
  });

  it('with one seed lists every cell where the method is below the best baseline, saying there is no interval', () => {
    const one = grid3({ 'fedmm-x-bounded': { 'sign-flip 0.2': [0.99, 1, 1] } }).filter((r) => r.seed === 1);
    const result = designTarget(one, { ...grid, fractions: [0.2] }, 'fedmm-x-bounded');
    expect(result.losing.map((l) => `${l.attack} ${l.fraction}`)).toEqual(['sign-flip 0.2']);
    expect(designTargetLines(result).join('\n')).toContain('one seed gives no interval');
  });

  it('says so when nothing was lost, and when no baseline ran', () => {
    const runs = grid3({});
    expect(designTargetLines(designTarget(runs, grid, 'fedmm-x-bounded')).at(-1)).toContain('In none of the 4 cells');
    const alone = designTarget(runs, { ...grid, aggregators: ['fedmm-x-bounded'] }, 'fedmm-x-bounded');
    expect(designTargetLines(alone).at(-1)).toContain('no cell has a baseline');
  });
});
