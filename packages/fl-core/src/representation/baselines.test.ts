import { describe, expect, it } from 'vitest';
import { combineWeights } from './ensemble.js';
import { fedEtWeighting, similarityVariances } from './fedEt.js';
import { fedGemsWeighting, similarityEntropies } from './fedGems.js';
import { fedMdWeighting } from './fedMd.js';
import { attentionScores, fedMkdWeighting } from './fedMkd.js';
import { A, B, G, S_EXACT } from './fixtures.testkit.js';
import { matchRowNorms } from './rows.js';
import type { RepresentationWeighting } from './types.js';

// The two-client fixture, rows norm-matched to the global's as the strategy does before weighting.
const rows = [matchRowNorms(A, G, 2, 2), matchRowNorms(B, G, 2, 2)];
const input = { numSamples: 2, dim: 2, global: G, representations: rows, numExamples: [1, 3] };
const weightsOf = (w: RepresentationWeighting): number[][] => combineWeights(w.scores(input), [0, 1], w.form).map((x) => [...x]);
// Entropy (nats) of the row (1 − σ, σ) with σ = e/(e+1), normalised by log 2.
const H_EXACT = -((1 - S_EXACT) * Math.log(1 - S_EXACT) + S_EXACT * Math.log(S_EXACT)) / Math.log(2);

describe('FedMD: example-count weights', () => {
  it('gives 1/4 and 3/4 to clients with 1 and 3 examples, on every sample', () => {
    expect(weightsOf(fedMdWeighting())).toEqual([
      [0.25, 0.25],
      [0.75, 0.75],
    ]);
  });
});

describe('FedGEMS: entropy weights over the similarity distribution', () => {
  it('has normalised entropy 1 for a row between both samples and H(σ)/log 2 for an exact one (τ = 1)', () => {
    const h = similarityEntropies(A, G, 2, 2, 1);

    expect(h[0]).toBeCloseTo(1, 12);
    expect(h[1]).toBeCloseTo(H_EXACT, 12); // 0.8399
  });

  it('gives the lower-entropy client the larger weight: softmax of −Ĥ/τ_w', () => {
    const wA0 = 1 / (1 + Math.exp((1 - H_EXACT) / 1));

    const [[a0, a1], [b0, b1]] = weightsOf(fedGemsWeighting({ temperature: 1, weightTemperature: 1 })) as [number[], number[]];

    expect(a0).toBeCloseTo(wA0, 12);
    expect(b0).toBeCloseTo(1 - wA0, 12);
    expect(a1).toBeCloseTo(1 - wA0, 12);
    expect(b1).toBeCloseTo(wA0, 12);
  });

  it('is 0 for a single-sample batch', () => {
    expect([...similarityEntropies(new Float32Array([1, 0]), new Float32Array([1, 0]), 1, 2, 0.1)]).toEqual([0]);
  });
});

describe('FedET: variance weights over the similarity distribution', () => {
  it('gives all the weight of a sample to the only client whose distribution is not flat (τ = 1)', () => {
    // Row (½, ½) has variance 0; row (1 − σ, σ) has ((σ − ½)² + (½ − σ)²)/2 = (σ − ½)².
    expect([...similarityVariances(A, G, 2, 2, 1)]).toEqual([0, expect.closeTo((S_EXACT - 0.5) ** 2, 12)]);

    expect(weightsOf(fedEtWeighting({ temperature: 1 }))).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });
});

describe('FedMKD: attention weights', () => {
  it('scores ⟨g_i, r_i⟩/√D on the norm-matched rows and weights by softmax', () => {
    // Sample 0: ⟨(1,0), (1/√2,1/√2)⟩/√2 = 1/2 for A, ⟨(1,0),(1,0)⟩/√2 = 1/√2 for B.
    expect([...attentionScores(rows[0]!, G, 2, 2)]).toEqual([expect.closeTo(0.5, 6), expect.closeTo(Math.SQRT1_2, 6)]);
    const wA0 = 1 / (1 + Math.exp(Math.SQRT1_2 - 0.5));

    const [[a0], [b0]] = weightsOf(fedMkdWeighting()) as [number[], number[]];

    expect(a0).toBeCloseTo(wA0, 6);
    expect(b0).toBeCloseTo(1 - wA0, 6);
  });
});
