/**
 * Classification metrics over plain arrays: top-1 accuracy and the arg-max that turns probability
 * (or logit) rows into predicted classes.
 */
import { badInput, checkLabels, checkSameLength, columnsOf } from './validate.js';

/** Fraction of samples whose predicted class equals the label; `METRICS_BAD_INPUT` on empty or mismatched input. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = checkSameLength('accuracy', predictions, labels, 'predictions and labels');
  checkLabels('accuracy', labels);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const p = predictions[i]!;
    if (!Number.isInteger(p) || p < 0) badInput('accuracy', `prediction ${i} is ${p}, expected a class index`);
    if (p === labels[i]) correct++;
  }
  return correct / n;
}

/**
 * Arg-max of each row of a row-major `numSamples × numClasses` score matrix (probabilities or
 * logits). Ties go to the lowest class index, as NumPy's `argmax` does, so results are comparable.
 */
export function predictedClasses(scores: ArrayLike<number>, numSamples: number): Int32Array {
  const numClasses = columnsOf('predictedClasses', scores, numSamples, 'scores');
  const out = new Int32Array(numSamples);
  for (let r = 0; r < numSamples; r++) {
    const base = r * numClasses;
    let best = 0;
    let bestScore = scores[base]!;
    for (let c = 0; c < numClasses; c++) {
      const s = scores[base + c]!;
      if (Number.isNaN(s)) badInput('predictedClasses', `score [${r}, ${c}] is NaN`);
      if (s > bestScore) {
        best = c;
        bestScore = s;
      }
    }
    out[r] = best;
  }
  return out;
}
