/**
 * Log-likelihood losses computed from predicted probabilities (not logits): the mean negative
 * log-likelihood of hard labels and the cross-entropy against soft target rows. Probabilities are
 * floored at `minProbability` so one confident mistake yields a large finite loss, not Infinity.
 */
import { badInput, checkLabels, checkProbabilityRows, columnsOf } from './validate.js';

/** Options shared by the log-likelihood losses. */
export interface LogLossOptions {
  /** Floor applied to a probability before its log is taken (default 1e-12, loss ≤ 27.6 per sample). */
  readonly minProbability?: number;
}

function floorOf(fn: string, options: LogLossOptions): number {
  const floor = options.minProbability ?? 1e-12;
  if (!(floor > 0 && floor < 1)) badInput(fn, `minProbability must be in (0, 1), got ${floor}`);
  return floor;
}

/** Mean of −log p(label) over samples, from row-major `numSamples × numClasses` probability rows. */
export function negativeLogLikelihood(probabilities: ArrayLike<number>, labels: ArrayLike<number>, options: LogLossOptions = {}): number {
  const fn = 'negativeLogLikelihood';
  const floor = floorOf(fn, options);
  const numClasses = columnsOf(fn, probabilities, labels.length, 'probabilities');
  checkLabels(fn, labels, numClasses);
  checkProbabilityRows(fn, probabilities, numClasses);
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    total -= Math.log(Math.max(floor, probabilities[i * numClasses + labels[i]!]!));
  }
  return total / labels.length;
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions extends LogLossOptions {
  /** Rows in the probability and target matrices. */
  readonly numSamples: number;
}

/**
 * Mean cross-entropy −Σ_c t_c log p_c between soft target rows and predicted rows (both row-major,
 * same shape); with one-hot targets it equals {@link negativeLogLikelihood}.
 */
export function crossEntropy(probabilities: ArrayLike<number>, targets: ArrayLike<number>, options: CrossEntropyOptions): number {
  const fn = 'crossEntropy';
  const floor = floorOf(fn, options);
  const numSamples = options.numSamples;
  if (probabilities.length !== targets.length) badInput(fn, `probabilities and targets lengths differ (${probabilities.length} vs ${targets.length})`);
  const numClasses = columnsOf(fn, probabilities, numSamples, 'probabilities');
  checkProbabilityRows(fn, probabilities, numClasses);
  checkProbabilityRows(fn, targets, numClasses);
  let total = 0;
  for (let i = 0; i < probabilities.length; i++) {
    const t = targets[i]!;
    if (t > 0) total -= t * Math.log(Math.max(floor, probabilities[i]!));
  }
  return total / numSamples;
}
