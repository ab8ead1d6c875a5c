import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { A, B, G, S_BETWEEN, S_EXACT } from './fixtures.testkit.js';
import { sedSimilarities, sedWeighting, sedWeights, similarityDistributions } from './sed.js';

describe('SED Eq. 7: contrastive similarity to the own sample’s global representation', () => {
  it('gives e/(e+1) to a row pointing at its own sample and 1/2 to one between both (τ = 1)', () => {
    // Arrange: A_0 = (1,1) is at 45° to g_0 and g_1; A_1 = (0,1) is g_1's direction, orthogonal to g_0.
    // Act
    const sA = sedSimilarities(A, G, 2, 2, 1);
    const sB = sedSimilarities(B, G, 2, 2, 1);
    // Assert
    expect(sA[0]).toBeCloseTo(S_BETWEEN, 12);
    expect(sA[1]).toBeCloseTo(S_EXACT, 12);
    expect(sB[0]).toBeCloseTo(S_EXACT, 12);
    expect(sB[1]).toBeCloseTo(S_BETWEEN, 12);
  });

  it('sharpens with a lower τ: at τ = 0.1 the exact row gets e^10/(e^10+1)', () => {
    const s = sedSimilarities(A, G, 2, 2, 0.1);

    expect(s[1]).toBeCloseTo(Math.exp(10) / (Math.exp(10) + 1), 12);
    expect(s[0]).toBeCloseTo(0.5, 12);
  });

  it('is a distribution over the batch per row, and s is its diagonal', () => {
    const p = similarityDistributions(A, G, 2, 2, 1);

    expect([...p]).toEqual([0.5, 0.5, 1 - S_EXACT, S_EXACT].map((v) => expect.closeTo(v, 12)));
  });

  it('ignores the scale of a client’s rows', () => {
    const scaled = A.map((v) => v * 10);

    expect([...sedSimilarities(scaled, G, 2, 2, 0.1)]).toEqual([...sedSimilarities(A, G, 2, 2, 0.1)].map((v) => expect.closeTo(v, 12)));
  });

  it('refuses a temperature that is not a finite positive number', () => {
    for (const t of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expectFlCoreError(() => sedSimilarities(A, G, 2, 2, t), 'REP_BAD_CONFIG');
    expectFlCoreError(() => sedWeighting({ weightTemperature: 0 }), 'REP_BAD_CONFIG');
  });
});

describe('SED Eq. 8: softmax over the clients of a modality', () => {
  it('weights the two-client fixture as written out by hand (τ = τ_w = 1)', () => {
    // Sample 0: A has s = 1/2, B has s = e/(e+1) → w_A = 1 / (1 + e^{s_B − s_A}).
    const wA0 = 1 / (1 + Math.exp(S_EXACT - S_BETWEEN));

    const [wA, wB] = sedWeights([sedSimilarities(A, G, 2, 2, 1), sedSimilarities(B, G, 2, 2, 1)], 1);

    expect(wA![0]).toBeCloseTo(wA0, 12); // 0.4425
    expect(wB![0]).toBeCloseTo(1 - wA0, 12); // 0.5575
    expect(wA![1]).toBeCloseTo(1 - wA0, 12);
    expect(wB![1]).toBeCloseTo(wA0, 12);
    expect(wA0).toBeCloseTo(0.4425, 4);
  });

  it('separates clients far more at the default τ_w = 0.1 than the literal τ_w = 1', () => {
    const s = [new Float64Array([1]), new Float64Array([0.5])];

    const [literal] = sedWeights(s, 1);
    const [scaled] = sedWeights(s, 0.1);

    expect(literal![0]).toBeCloseTo(1 / (1 + Math.exp(-0.5)), 12); // 0.62
    expect(scaled![0]).toBeCloseTo(1 / (1 + Math.exp(-5)), 12); // 0.993
  });

  it('sums to 1 per sample and permutes with the clients (property)', () => {
    const sims = fc.array(fc.float64Array({ min: 0, max: 1, noNaN: true, minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(sims, fc.double({ min: 0.01, max: 2, noNaN: true }), (s, tw) => {
        const w = sedWeights(s, tw);
        const reversed = sedWeights([...s].reverse(), tw);
        for (let i = 0; i < 3; i++) expect(w.reduce((a, wk) => a + wk[i]!, 0)).toBeCloseTo(1, 12);
        w.forEach((wk, k) => wk.forEach((v, i) => expect(reversed[s.length - 1 - k]![i]).toBeCloseTo(v, 12)));
      }),
      { numRuns: 200 },
    );
  });
});
