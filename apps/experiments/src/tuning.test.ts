import { describe, expect, it } from 'vitest';
import { checkDisjointSeeds, chooseOnValidation, formatHyperparameters, gridCandidates, tuneOnValidation, tuningTable } from './tuning.js';

const grid = { learningRates: [0.01, 0.03], proximalMus: [0.01, 0.1], modalWeights: [0.1, 1], interpretabilityWeights: [0.1] };

describe('gridCandidates', () => {
  it('crosses the learning rates with μ or λ₁ only for the methods that have them', () => {
    expect(gridCandidates(grid)).toEqual([{ learningRate: 0.01 }, { learningRate: 0.03 }]);
    expect(gridCandidates(grid, { proximalMu: true })).toEqual([
      { learningRate: 0.01, proximalMu: 0.01 },
      { learningRate: 0.01, proximalMu: 0.1 },
      { learningRate: 0.03, proximalMu: 0.01 },
      { learningRate: 0.03, proximalMu: 0.1 },
    ]);
    expect(gridCandidates(grid, { modalWeight: true })).toHaveLength(4);
    expect(gridCandidates({ ...grid, interpretabilityWeights: [0.1, 1] }, { modalWeight: true, interpretabilityWeight: true })).toEqual([
      { learningRate: 0.01, modalWeight: 0.1, interpretabilityWeight: 0.1 },
      { learningRate: 0.01, modalWeight: 0.1, interpretabilityWeight: 1 },
      { learningRate: 0.01, modalWeight: 1, interpretabilityWeight: 0.1 },
      { learningRate: 0.01, modalWeight: 1, interpretabilityWeight: 1 },
      { learningRate: 0.03, modalWeight: 0.1, interpretabilityWeight: 0.1 },
      { learningRate: 0.03, modalWeight: 0.1, interpretabilityWeight: 1 },
      { learningRate: 0.03, modalWeight: 1, interpretabilityWeight: 0.1 },
      { learningRate: 0.03, modalWeight: 1, interpretabilityWeight: 1 },
    ]);
  });

  it('refuses an empty, repeated or zero learning-rate grid with a coded error', () => {
    expect(() => gridCandidates({ ...grid, learningRates: [] })).toThrow(/EXPERIMENTS_BAD_INPUT/);
    expect(() => gridCandidates({ ...grid, learningRates: [0.1, 0.1] })).toThrow(/EXPERIMENTS_BAD_INPUT/);
    expect(() => gridCandidates({ ...grid, learningRates: [0] })).toThrow(/EXPERIMENTS_BAD_INPUT/);
    expect(() => gridCandidates({ ...grid, proximalMus: [] }, { proximalMu: true })).toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});

describe('chooseOnValidation', () => {
  it('picks the highest mean validation score, the first on a tie, and keeps every candidate', () => {
    const scored = [
      { hyperparameters: { learningRate: 0.001 }, scores: [{ seed: 101, value: 0.5 }] },
      { hyperparameters: { learningRate: 0.01 }, scores: [{ seed: 101, value: 0.8 }] },
      { hyperparameters: { learningRate: 0.03 }, scores: [{ seed: 101, value: 0.8 }] },
      { hyperparameters: { learningRate: 0.1 }, scores: [{ seed: 101, value: Number.NaN }] },
    ];
    const r = chooseOnValidation('fedavg', scored);
    expect(r.chosen).toEqual({ learningRate: 0.01 });
    expect(r.validationScore).toBe(0.8);
    expect(r.candidates.map((c) => c.mean)).toEqual([0.5, 0.8, 0.8, Number.NaN]);
    const table = tuningTable([{ ...r, label: 'FedAvg' }]);
    expect(table).toContain(
      '| FedAvg | lr 0.01 | lr 0.001: 50.0; **lr 0.01: 80.0**; lr 0.03: 80.0; lr 0.1: — (no score on tuning seed 101: the run did not finish; not eligible) |',
    );
  });

  it('never chooses a candidate whose run on one tuning seed did not finish, however well its other seed scored', () => {
    const r = chooseOnValidation('fedmm-x', [
      {
        hyperparameters: { learningRate: 0.003 },
        scores: [
          { seed: 101, value: 0.4 },
          { seed: 102, value: 0.5 },
        ],
      },
      {
        hyperparameters: { learningRate: 0.01 },
        scores: [
          { seed: 101, value: 0.9 },
          { seed: 102, value: Number.NaN },
        ],
      },
    ]);
    expect(r.chosen).toEqual({ learningRate: 0.003 });
    expect(r.validationScore).toBeCloseTo(0.45, 12);
    expect(Number.isNaN(r.candidates[1]!.mean)).toBe(true);
  });

  it('refuses a grid without any finite score', () => {
    expect(() => chooseOnValidation('x', [{ hyperparameters: { learningRate: 1 }, scores: [] }])).toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});

describe('tuneOnValidation', () => {
  it('scores every candidate with every tuning seed and chooses on the mean', async () => {
    const calls: string[] = [];
    const r = await tuneOnValidation('fedprox', gridCandidates(grid, { proximalMu: true }), [101, 102], async (h, seed) => {
      calls.push(`${formatHyperparameters(h)}/${seed}`);
      return h.learningRate === 0.03 && h.proximalMu === 0.01 ? 0.9 : 0.4 + seed / 1000;
    });
    expect(calls).toHaveLength(8);
    expect(calls[0]).toBe('lr 0.01, μ 0.01/101');
    expect(r.chosen).toEqual({ learningRate: 0.03, proximalMu: 0.01 });
  });

  it('chooses the only candidate of a one-value grid without a validation run, and the table says so', async () => {
    const calls: number[] = [];
    const r = await tuneOnValidation('fedavg', [{ learningRate: 0.01 }], [101, 102], async (_h, seed) => {
      calls.push(seed);
      return 0.5;
    });
    expect(calls).toEqual([]);
    expect(r.chosen).toEqual({ learningRate: 0.01 });
    expect(r.candidates).toEqual([{ hyperparameters: { learningRate: 0.01 }, scores: [], mean: Number.NaN }]);
    expect(tuningTable([{ ...r, label: 'FedAvg' }])).toContain('**lr 0.01: the only candidate (no validation run)**');
  });
});

describe('checkDisjointSeeds', () => {
  it('refuses a tuning seed that is also an evaluation seed, and no tuning seed', () => {
    expect(() => checkDisjointSeeds([101], [1, 2])).not.toThrow();
    expect(() => checkDisjointSeeds([1, 101], [1, 2])).toThrow(/EXPERIMENTS_BAD_INPUT: seeds 1 are both/);
    expect(() => checkDisjointSeeds([], [1])).toThrow(/EXPERIMENTS_BAD_INPUT/);
  });
});
