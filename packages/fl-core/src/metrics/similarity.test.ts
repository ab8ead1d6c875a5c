import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { centredCosineSimilarity, meanExplanationConsistency, meanRowCosine } from './similarity.js';

/** Adds `offsets[r]` to every entry of row r of a row-major `numRows × dim` matrix. */
function offsetRows(matrix: Float32Array, offsets: readonly number[], dim: number): Float32Array {
  return matrix.map((v, i) => v + offsets[Math.floor(i / dim)]!);
}

/** Sum of squares of a row after subtracting its mean. */
function centredSquaredNorm(row: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < row.length; i++) mean += row[i]!;
  mean /= row.length;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += (row[i]! - mean) ** 2;
  return s;
}

describe('centredCosineSimilarity', () => {
  it('is the cosine of the mean-removed vectors, 0 for a constant vector', () => {
    // (1, 2, 3) → (−1, 0, 1); (3, 2, 7) → (−1, −2, 3): dot 4, norms √2 and √14.
    const a = Float32Array.from([1, 2, 3]);
    const b = Float32Array.from([3, 2, 7]);

    expect(centredCosineSimilarity(a, b)).toBeCloseTo(4 / Math.sqrt(28), 6);
    expect(centredCosineSimilarity(a, Float32Array.from([5, 5, 5]))).toBe(0);
    expectFlCoreError(() => centredCosineSimilarity(a, b.subarray(0, 2)), 'METRICS_BAD_INPUT');
  });

  it('ignores a shared offset that makes the raw cosine look like agreement', () => {
    // Two modalities favouring opposite classes, both shifted by +10 on every class.
    const image = Float32Array.from([11, 9]);
    const text = Float32Array.from([9, 11]);

    expect(centredCosineSimilarity(image, text)).toBeCloseTo(-1, 6);
    expect(meanRowCosine(image, text, 1)).toBeCloseTo(198 / 202, 6);
  });
});

describe('meanExplanationConsistency', () => {
  it('centres by default and gives the raw cosine with {centred: false}', () => {
    // One input, two modalities, 3 classes: image (4, 1, 1) and text (2, 2, −1).
    // Centred: (2, −1, −1) · (1, 1, −2) = 3, norms √6 and √6 → 0.5. Raw: 9 / (√18 · 3) = 1/√2.
    const image = Float32Array.from([4, 1, 1]);
    const text = Float32Array.from([2, 2, -1]);

    expect(meanExplanationConsistency([image, text], 1)).toBeCloseTo(0.5, 6);
    expect(meanExplanationConsistency([image, text], 1, { centred: true })).toBeCloseTo(0.5, 6);
    expect(meanExplanationConsistency([image, text], 1, { centred: false })).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('is unchanged by a per-input, per-modality constant added across the classes', () => {
    const numInputs = 3;
    const k = 4;
    const row = fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: k, maxLength: k });
    // Rows that are almost constant have an ill-conditioned centred direction; float32 rounding of the offset would dominate.
    const matrix = fc
      .array(row, { minLength: numInputs, maxLength: numInputs })
      .filter((rows) => rows.every((r) => centredSquaredNorm(r) > 0.5))
      .map((rows) => Float32Array.from(rows.flat()));
    const offsets = fc.array(fc.integer({ min: -50, max: 50 }), { minLength: numInputs, maxLength: numInputs });
    fc.assert(
      fc.property(fc.array(matrix, { minLength: 2, maxLength: 3 }), fc.array(offsets, { minLength: 3, maxLength: 3 }), (explanations, shifts) => {
        const shifted = explanations.map((m, i) => offsetRows(m, shifts[i]!, k));

        const before = meanExplanationConsistency(explanations, numInputs);
        const after = meanExplanationConsistency(shifted, numInputs);

        expect(after).toBeCloseTo(before, 4);
      }),
    );
  });

  it('the raw cosine moves under such an offset', () => {
    const image = Float32Array.from([1, 0, 0, 1]);
    const text = Float32Array.from([0, 1, 1, 0]);
    const shiftedText = offsetRows(text, [3, 3], 2);

    expect(meanExplanationConsistency([image, text], 2, { centred: false })).toBe(0);
    expect(meanExplanationConsistency([image, shiftedText], 2, { centred: false })).toBeCloseTo(3 / 5, 6);
    expect(meanExplanationConsistency([image, shiftedText], 2)).toBeCloseTo(meanExplanationConsistency([image, text], 2), 6);
    expect(meanExplanationConsistency([image, text], 2)).toBeCloseTo(-1, 6);
  });

  it('meanRowCosine centres each row only when asked', () => {
    const a = Float32Array.from([1, 3, 5, 5]);
    const b = Float32Array.from([2, 4, 0, 1]);

    expect(meanRowCosine(a, b, 2, { centred: true })).toBeCloseTo((1 + 0) / 2, 6);
    expect(meanRowCosine(a, b, 2)).toBeCloseTo((14 / Math.sqrt(10 * 20) + 5 / Math.sqrt(50)) / 2, 6);
  });
});
