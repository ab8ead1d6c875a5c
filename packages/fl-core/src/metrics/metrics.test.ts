import { describe, expect, it } from 'vitest';
import { expectedCalibrationError, expectedCalibrationErrorFromConfidences, reliabilityBins } from './calibration.js';
import { accuracy, predictedClasses } from './classification.js';
import { crossEntropy, negativeLogLikelihood } from './logLoss.js';
import { recallAtK, retrievalRanks } from './retrieval.js';
import { meanExplanationConsistency, meanRowCosine } from './similarity.js';
import { expectFlCoreError } from '../errors.test-util.js';
import type { FlCoreErrorCode } from '../errors.js';

/** {@link expectFlCoreError} with this module's usual code. */
const expectCode = (fn: () => unknown, code: FlCoreErrorCode = 'METRICS_BAD_INPUT'): void => expectFlCoreError(fn, code);

describe('accuracy and predictedClasses', () => {
  it('counts exact matches', () => {
    // Arrange
    const predictions = new Int32Array([0, 1, 2, 1]);
    const labels = new Int32Array([0, 1, 1, 1]);
    // Act
    const acc = accuracy(predictions, labels);
    // Assert
    expect(acc).toBe(0.75);
  });

  it('takes the arg-max of each row, ties to the lowest index', () => {
    const scores = new Float32Array([0.1, 0.7, 0.2, 0.5, 0.5, 0, -1, -3, -2]);
    expect(Array.from(predictedClasses(scores, 3))).toEqual([1, 0, 0]);
  });

  it('refuses mismatched, empty or non-integer input', () => {
    expectCode(() => accuracy([0, 1], [0]));
    expectCode(() => accuracy([], []));
    expectCode(() => accuracy([0.5], [0]));
    expectCode(() => accuracy([0], [-1]));
    expectCode(() => predictedClasses(new Float32Array(5), 2));
  });
});

describe('negativeLogLikelihood and crossEntropy', () => {
  it('is the mean −log p(label)', () => {
    const probs = new Float32Array([0.5, 0.5, 0.25, 0.75]);
    const nll = negativeLogLikelihood(probs, [0, 1]);
    expect(nll).toBeCloseTo((Math.log(2) + Math.log(4 / 3)) / 2, 6);
  });

  it('floors zero probabilities so a confident mistake is large but finite', () => {
    const nll = negativeLogLikelihood(new Float32Array([1, 0]), [1], { minProbability: 1e-4 });
    expect(nll).toBeCloseTo(-Math.log(1e-4), 6);
  });

  it('cross-entropy with one-hot targets equals NLL, soft targets mix the terms', () => {
    const probs = new Float32Array([0.5, 0.5, 0.25, 0.75]);
    const oneHot = new Float32Array([1, 0, 0, 1]);
    expect(crossEntropy(probs, oneHot, { numSamples: 2 })).toBeCloseTo(negativeLogLikelihood(probs, [0, 1]), 6);
    const soft = new Float32Array([0.5, 0.5, 0.5, 0.5]);
    expect(crossEntropy(probs, soft, { numSamples: 2 })).toBeCloseTo((Math.log(2) + 0.5 * Math.log(4) + 0.5 * Math.log(4 / 3)) / 2, 6);
  });

  it('refuses rows that are not probabilities or labels out of range', () => {
    expectCode(() => negativeLogLikelihood(new Float32Array([0.6, 0.6]), [0]));
    expectCode(() => negativeLogLikelihood(new Float32Array([-0.5, 1.5]), [0]));
    expectCode(() => negativeLogLikelihood(new Float32Array([0.5, 0.5]), [2]));
    expectCode(() => negativeLogLikelihood(new Float32Array([0.5, 0.5, 1]), [0, 1]));
    expectCode(() => negativeLogLikelihood(new Float32Array([0.5, 0.5]), [0], { minProbability: 0 }));
    expectCode(() => crossEntropy(new Float32Array([0.5, 0.5]), new Float32Array([1]), { numSamples: 1 }));
  });
});

describe('expected calibration error', () => {
  it('matches a hand computation with 10 bins', () => {
    // Bin (0.8, 0.9]: confidences 0.85, 0.85 with 1 of 2 correct → |0.5 − 0.85| = 0.35, weight 2/4.
    // Bin (0.5, 0.6]: 0.55 correct → |1 − 0.55| = 0.45, weight 1/4.
    // Bin (0.9, 1.0]: 0.95 correct → |1 − 0.95| = 0.05, weight 1/4.
    const ece = expectedCalibrationErrorFromConfidences([0.85, 0.85, 0.55, 0.95], [1, 0, 1, 1], { numBins: 10 });
    expect(ece).toBeCloseTo(0.5 * 0.35 + 0.25 * 0.45 + 0.25 * 0.05, 12);
    expect(expectedCalibrationErrorFromConfidences([0.85, 0.85, 0.55, 0.95], [true, false, true, true], { numBins: 10 })).toBe(ece);
  });

  it('puts a confidence on a bin edge into the lower bin', () => {
    // 0.6 with 5 bins belongs to (0.4, 0.6]; 0.6·5 rounds to exactly 3, and 0.7·10 to 7.000000000000001.
    expect(Array.from(reliabilityBins([0.6], [1], { numBins: 5 }).counts)).toEqual([0, 0, 1, 0, 0]);
    expect(reliabilityBins([0.7], [1], { numBins: 10 }).counts[6]).toBe(1);
    expect(reliabilityBins([0], [0], { numBins: 4 }).counts[0]).toBe(1);
  });

  it('computes top-1 confidence and correctness from probability rows', () => {
    // Rows: predicts 0 with 0.9 (label 0, correct); predicts 1 with 0.7 (label 0, wrong).
    const probs = new Float32Array([0.9, 0.1, 0.3, 0.7]);
    const ece = expectedCalibrationError(probs, [0, 0]);
    // 15 bins: 0.9 → bin 13, 0.7 → bin 10, separate bins: 0.5·0.1 + 0.5·0.7.
    expect(ece).toBeCloseTo(0.5 * Math.abs(1 - 0.9) + 0.5 * Math.abs(0 - 0.7), 6);
  });

  it('is 0 for a perfectly calibrated predictor', () => {
    const confidences = [0.75, 0.75, 0.75, 0.75];
    expect(expectedCalibrationErrorFromConfidences(confidences, [1, 1, 1, 0])).toBeCloseTo(0, 12);
  });

  it('refuses bad confidences, correctness flags and bin counts', () => {
    expectCode(() => expectedCalibrationErrorFromConfidences([1.2], [1]));
    expectCode(() => expectedCalibrationErrorFromConfidences([0.5], [2]));
    expectCode(() => expectedCalibrationErrorFromConfidences([0.5, 0.5], [1]));
    expectCode(() => expectedCalibrationErrorFromConfidences([0.5], [1], { numBins: 0 }));
    expectCode(() => expectedCalibrationError(new Float32Array([0.5, 0.5]), [0, 1]));
  });
});

describe('retrieval', () => {
  // 3 queries × 4 items.
  const scores = new Float32Array([
    0.9,
    0.1,
    0.2,
    0.3, // match 0 is best → rank 0
    0.5,
    0.4,
    0.6,
    0.1, // match 1 has 2 above → rank 2
    0.3,
    0.3,
    0.3,
    0.3, // match 3 ties everything → rank 3 (ties count against it)
  ]);
  const matches = [0, 1, 3];

  it('ranks each match with ties counted against it', () => {
    expect(Array.from(retrievalRanks(scores, matches))).toEqual([0, 2, 3]);
  });

  it('recall@K is the fraction of matches within the top K', () => {
    expect(recallAtK(scores, matches, 1)).toBeCloseTo(1 / 3, 12);
    expect(recallAtK(scores, matches, 3)).toBeCloseTo(2 / 3, 12);
    expect(recallAtK(scores, matches, 4)).toBe(1);
  });

  it('refuses bad k, out-of-range matches and ragged matrices', () => {
    expectCode(() => recallAtK(scores, matches, 0));
    expectCode(() => recallAtK(scores, [0, 1, 4], 1));
    expectCode(() => recallAtK(scores.subarray(0, 11), matches, 1));
    expectCode(() => recallAtK(new Float32Array([Number.NaN, 1]), [1], 1));
  });
});

describe('similarity', () => {
  it('averages row cosines', () => {
    const a = new Float32Array([1, 0, 0, 1]);
    const b = new Float32Array([1, 0, 1, 0]);
    expect(meanRowCosine(a, b, 2)).toBeCloseTo(0.5, 12);
  });

  it('explanation consistency averages every modality pair', () => {
    // Pairs: (image, text) = 1, (image, audio) = −1, (text, audio) = −1 → mean −1/3.
    const image = new Float32Array([1, 2]);
    const text = new Float32Array([2, 4]);
    const audio = new Float32Array([-1, -2]);
    expect(meanExplanationConsistency([image, text, audio], 1)).toBeCloseTo(-1 / 3, 6);
  });

  it('refuses fewer than two modalities, shape mismatches and non-finite rows', () => {
    expectCode(() => meanExplanationConsistency([new Float32Array(2)], 1));
    expectCode(() => meanRowCosine(new Float32Array(4), new Float32Array(2), 2));
    expectCode(() => meanRowCosine(new Float32Array([Infinity, 1]), new Float32Array([1, 1]), 1));
  });
});
