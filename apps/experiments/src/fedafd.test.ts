import { describe, expect, it } from 'vitest';
import { FEDAFD_QUICK, chosenLearningRate, evaluationCells, fedAfdChecks, fedAfdSection, runFigures, serverRoundsToTarget } from './fedafd.js';
import { onlyCandidate } from './tuning.js';
import type { FedAfdMeasurements, FedAfdTuning } from './fedafd.js';
import type { FedAfdRun, FedAfdSettings } from './fedafdRuns.js';

const settings: FedAfdSettings = { ...FEDAFD_QUICK, rounds: 2, methods: ['local', 'fedafd', 'no-baa'] };

const tuning: FedAfdTuning[] = [
  { partition: 'non-iid', record: onlyCandidate('local', { learningRate: 0.003 }) },
  { partition: 'non-iid', record: { ...onlyCandidate('fedafd', { learningRate: 0.01 }), validationScore: 0.4 } },
];

/** A finished run whose server rsum goes `rsum` by round and whose image client ends at `image`. */
function run(method: string, seed: number, rsum: [number, number], image: number): FedAfdRun {
  const round = (r: number): Record<string, number> => ({
    'server.rsum': rsum[r]!,
    'server.i2tR1': rsum[r]! / 10,
    'server.t2iR1': rsum[r]! / 20,
    'server.testPairs': 128,
    'kind.image.clients': 1,
    'kind.image.evalExamples': 128,
    'kind.image.accuracy': image,
    'kind.text.clients': 1,
    'kind.text.evalExamples': 128,
    'kind.text.accuracy': 0.2,
    bytesIn: 1000,
    bytesOut: 3000,
  });
  return {
    method,
    partition: 'non-iid',
    seed,
    learningRate: chosenLearningRate(method, 'non-iid', tuning),
    evaluate: true,
    status: 'finished',
    completedRounds: 2,
    rounds: [round(0), round(1)],
    durationMs: 1,
  };
}

const runs: FedAfdRun[] = [1, 2, 3].flatMap((seed) => [
  run('local', seed, [30, 40], 0.3 + seed / 100),
  run('fedafd', seed, [41, 50], 0.5 + seed / 100),
  run('no-baa', seed, [20, 30], 0.2),
]);

const measurements: FedAfdMeasurements = {
  settings,
  seeds: [1, 2, 3],
  quick: true,
  tuning,
  runs,
  parameters: { image: 100, text: 50, 'image+text': 150 },
  durationMs: 1000,
  cpuMs: 900,
};

describe('the grid', () => {
  it('runs each ablation with FedAFD’s chosen learning rate and refuses a method that was not tuned', () => {
    expect(chosenLearningRate('no-baa', 'non-iid', tuning)).toBe(0.01);
    expect(chosenLearningRate('local', 'non-iid', tuning)).toBe(0.003);
    expect(() => chosenLearningRate('fedmd', 'non-iid', tuning)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }) as Error);
  });

  it('lists partitions × seeds × methods with their learning rates', () => {
    const cells = evaluationCells(settings, [1, 2], tuning);
    expect(cells.map((c) => `${c.method}@${c.seed}:${c.learningRate}`)).toEqual([
      'local@1:0.003',
      'fedafd@1:0.01',
      'no-baa@1:0.01',
      'local@2:0.003',
      'fedafd@2:0.01',
      'no-baa@2:0.01',
    ]);
  });
});

describe('measures of a run', () => {
  it('reads the final round and the mean bytes per round', () => {
    const f = runFigures(run('fedafd', 1, [41, 50], 0.5));
    expect([f.imageAccuracy, f.textAccuracy, f.serverRsum, f.serverI2t, f.serverT2i, f.bytesPerRound, f.bytesInPerRound]).toEqual([
      50, 20, 50, 5, 2.5, 4000, 1000,
    ]);
    expect(f.retrievalI2t).toBeNaN();
  });

  it('counts rounds until the server reaches LOCAL’s final rsum of the same seed', () => {
    const local = run('local', 1, [30, 40], 0.3);
    expect(serverRoundsToTarget(run('fedafd', 1, [41, 50], 0.5), local)).toBe(1);
    expect(serverRoundsToTarget(local, local)).toBe(2);
    expect(serverRoundsToTarget(run('no-baa', 1, [20, 30], 0.2), local)).toBeNull();
    expect(serverRoundsToTarget(local, undefined)).toBeNull();
  });
});

describe('fedAfdChecks', () => {
  it('passes on a complete grid with the chosen rates, held-out scores and a server above chance', () => {
    expect(fedAfdChecks(measurements).filter((c) => !c.ok)).toEqual([]);
  });

  it('fails on an unfinished run, a run with another learning rate and a server at chance', () => {
    // Arrange
    const broken = [...runs];
    broken[0] = { ...broken[0]!, status: 'failed', completedRounds: 1 };
    broken[1] = { ...broken[1]!, learningRate: 0.5 };
    const atChance = runs.map((r) => (r.method === 'fedafd' ? { ...r, rounds: r.rounds.map((x) => ({ ...x, 'server.rsum': 20 })) } : r));
    // Act
    const failed = (rs: FedAfdRun[]): string[] =>
      fedAfdChecks({ ...measurements, runs: rs })
        .filter((c) => !c.ok)
        .map((c) => c.name);
    // Assert
    expect(failed(broken)).toEqual(['every evaluation run finished its rounds', 'every run used the learning rate chosen on validation (ablations: FedAFD’s)']);
    expect(failed(atChance)).toEqual(['FedAFD’s server retrieves above chance after training (rsum)']);
  });
});

describe('fedAfdSection', () => {
  it('reports the tables, where FedAFD loses or wins with intervals, bytes against FedAvg and two figures per partition', () => {
    // Act
    const section = fedAfdSection(measurements);
    // Assert: LOCAL − FedAFD image acc@1 is −20 points on every seed (interval excludes 0).
    expect(section.markdown).toContain(
      'LOCAL image acc@1 − FedAFD: −20.0 [−20.0, −20.0] points; the 95 % interval excludes 0, so over these 3 seeds LOCAL image acc@1 is below FedAFD.',
    );
    expect(section.markdown).toContain('No method is above FedAFD with an interval that excludes 0');
    // FedAvg: (1 × 100 + 1 × 50) × 2 directions × 2 bytes = 600 B; measured 4000 B a round.
    expect(section.markdown).toContain('| non-IID | FedAFD | 3.9 KiB | 1.0 KiB | 0.6 KiB | 0.3 KiB | 6.67× |');
    expect(section.figures.map((f) => f.file)).toEqual(['fedafd-server-rsum-non-iid.svg', 'fedafd-clients-non-iid.svg']);
    expect(section.checks.every((c) => c.ok)).toBe(true);
    expect(section.seeds).toEqual(measurements.seeds);
    expect(section.markdown).not.toContain('read from raw/runs/');
    expect(fedAfdSection({ ...measurements, readBack: { stored: 5, total: 8 } }).markdown).toContain(
      '5 of its 8 runs were read from raw/runs/, stored by earlier invocations, so this is not the compute time of the grid.',
    );
  });

  it('says where FedAFD loses when a method is above it on every seed', () => {
    const better = runs.map((r) => (r.method === 'local' ? { ...r, rounds: r.rounds.map((x) => ({ ...x, 'kind.image.accuracy': 0.9 })) } : r));
    expect(fedAfdSection({ ...measurements, runs: better }).markdown).toContain('**Where FedAFD loses** (interval above 0): LOCAL (image acc@1');
  });
});
