/**
 * Expected calibration error with equal-width confidence bins — Guo, Pleiss, Sun & Weinberger 2017, arXiv:1706.04599.
 *
 * ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)| over `numBins` bins of width 1/numBins. Bin b holds
 * confidences in (b/numBins, (b+1)/numBins] (the first bin also holds 0), the convention of the
 * paper's reference code, so a confidence that falls exactly on an edge lands in the lower bin.
 */
import { predictedClasses } from './classification.js';
import { badInput, checkLabels, checkProbabilityRows, columnsOf } from './validate.js';

/** Options of the calibration metrics. */
export interface CalibrationOptions {
  /** Number of equal-width bins over [0, 1] (default 15, as in Guo et al.). */
  readonly numBins?: number;
}

/** Per-bin statistics behind ECE, for reliability diagrams. Empty bins have count 0 and NaN means. */
export interface ReliabilityBins {
  /** Samples per bin. */
  readonly counts: Float64Array;
  /** Mean confidence of each bin's samples. */
  readonly meanConfidence: Float64Array;
  /** Fraction of each bin's samples that were correct. */
  readonly accuracy: Float64Array;
}

function numBinsOf(fn: string, options: CalibrationOptions): number {
  const numBins = options.numBins ?? 15;
  if (!Number.isInteger(numBins) || numBins < 1) badInput(fn, `numBins must be a positive integer, got ${numBins}`);
  return numBins;
}

function binOf(confidence: number, numBins: number): number {
  let b = Math.max(0, Math.ceil(confidence * numBins) - 1);
  // confidence·numBins can round across an edge; compare with the edges as the reference code computes them.
  if (b > 0 && confidence <= b / numBins) b--;
  else if (b < numBins - 1 && confidence > (b + 1) / numBins) b++;
  return b;
}

/** Confidence/accuracy statistics per equal-width bin, from top-1 confidences and 0/1 correctness. */
export function reliabilityBins(
  confidences: ArrayLike<number>,
  correct: ArrayLike<number> | ArrayLike<boolean>,
  options: CalibrationOptions = {},
): ReliabilityBins {
  const fn = 'reliabilityBins';
  const numBins = numBinsOf(fn, options);
  if (confidences.length !== correct.length) badInput(fn, `confidences and correct lengths differ (${confidences.length} vs ${correct.length})`);
  if (confidences.length === 0) badInput(fn, 'no samples');
  const counts = new Float64Array(numBins);
  const confSum = new Float64Array(numBins);
  const hits = new Float64Array(numBins);
  for (let i = 0; i < confidences.length; i++) {
    const conf = confidences[i]!;
    if (!(conf >= 0 && conf <= 1)) badInput(fn, `confidence ${i} is ${conf}, expected a number in [0, 1]`);
    const c = correct[i]!;
    if (c !== 0 && c !== 1 && c !== true && c !== false) badInput(fn, `correct ${i} is ${String(c)}, expected 0/1 or a boolean`);
    const b = binOf(conf, numBins);
    counts[b]!++;
    confSum[b]! += conf;
    if (c === 1 || c === true) hits[b]!++;
  }
  const meanConfidence = new Float64Array(numBins);
  const acc = new Float64Array(numBins);
  for (let b = 0; b < numBins; b++) {
    meanConfidence[b] = confSum[b]! / counts[b]!;
    acc[b] = hits[b]! / counts[b]!;
  }
  return { counts, meanConfidence, accuracy: acc };
}

/** ECE from top-1 confidences and 0/1 (or boolean) correctness. */
export function expectedCalibrationErrorFromConfidences(
  confidences: ArrayLike<number>,
  correct: ArrayLike<number> | ArrayLike<boolean>,
  options: CalibrationOptions = {},
): number {
  const bins = reliabilityBins(confidences, correct, options);
  let ece = 0;
  for (let b = 0; b < bins.counts.length; b++) {
    const n = bins.counts[b]!;
    if (n > 0) ece += (n / confidences.length) * Math.abs(bins.accuracy[b]! - bins.meanConfidence[b]!);
  }
  return ece;
}

/** ECE from row-major `numSamples × numClasses` probability rows and integer labels (top-1 confidence = row max). */
export function expectedCalibrationError(probabilities: ArrayLike<number>, labels: ArrayLike<number>, options: CalibrationOptions = {}): number {
  const fn = 'expectedCalibrationError';
  const numClasses = columnsOf(fn, probabilities, labels.length, 'probabilities');
  checkLabels(fn, labels, numClasses);
  checkProbabilityRows(fn, probabilities, numClasses);
  const predicted = predictedClasses(probabilities, labels.length);
  const confidences = new Float64Array(labels.length);
  const correct = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    confidences[i] = probabilities[i * numClasses + predicted[i]!]!;
    correct[i] = predicted[i] === labels[i] ? 1 : 0;
  }
  return expectedCalibrationErrorFromConfidences(confidences, correct, options);
}
