/**
 * Training losses. Cross-entropy; FedMM-X's cross-modal consistency term L_modal (Balija 2025,
 * arXiv:2503.19564); the FedProx proximal term (Li et al. 2020, arXiv:1812.06127); and
 * temperature-scaled knowledge distillation (Hinton et al. 2015, arXiv:1503.02531), which
 * FedAFD-style strategies apply on the public split. Each returns a scalar tensor and is meant to
 * be called inside a gradient scope (it does not tidy its caller's tensors).
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError } from './errors.js';

/** Mean softmax cross-entropy of logits [batch, K] against int32 labels [batch], as a TF.js loss (fl-core's `crossEntropy` is the metric on probabilities). */
export function crossEntropyLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = logits.shape[1]!;
    const oneHot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, numClasses);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/**
 * Cross-modal consistency L_modal: for each example with ≥ 2 modalities present, the mean over those
 * modalities of KL(p_m ‖ p̄), p̄ being the mean of their predictive distributions (the generalised
 * Jensen–Shannon divergence), averaged over the batch. Examples with fewer than two modalities
 * contribute zero, so the loss is exactly zero for a unimodal client.
 *
 * @param perModalityLogits [batch, M, K]: each modality's own logits (β + its terms).
 * @param present [batch, M] of 0/1.
 */
export function modalConsistency(perModalityLogits: tf.Tensor, present: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const batch = perModalityLogits.shape[0]!;
    const logP = tf.logSoftmax(perModalityLogits, 2); // [B, M, K]
    const p = tf.exp(logP);
    const w = tf.expandDims(present, 2); // [B, M, 1]
    const count = tf.sum(present, 1); // [B]
    const mean = tf.div(tf.sum(tf.mul(p, w), 1), tf.expandDims(tf.maximum(count, 1), 1)); // [B, K]
    const logMean = tf.log(tf.add(mean, 1e-12));
    const kl = tf.sum(tf.mul(p, tf.sub(logP, tf.expandDims(logMean, 1))), 2); // [B, M]
    const perExample = tf.div(tf.sum(tf.mul(kl, present), 1), tf.maximum(count, 1)); // [B]
    const eligible = tf.cast(tf.greaterEqual(count, 2), 'float32');
    return tf.div(tf.sum(tf.mul(perExample, eligible)), batch) as tf.Scalar;
  });
}

/** FedProx proximal term μ/2 · Σ‖w − w_global‖² over matching tensor lists. */
export function proximalTerm(weights: readonly tf.Tensor[], globalWeights: readonly tf.Tensor[], mu: number): tf.Scalar {
  if (!(Number.isFinite(mu) && mu >= 0)) throw new ModelsError('MODELS_BAD_CONFIG', `proximalTerm: mu must be a finite number ≥ 0, got ${mu}`);
  if (weights.length !== globalWeights.length)
    throw new ModelsError('MODELS_BAD_INPUT', `proximalTerm: ${weights.length} weights against ${globalWeights.length} global weights`);
  return tf.tidy(() => {
    let total: tf.Tensor = tf.scalar(0);
    weights.forEach((w, i) => {
      total = tf.add(total, tf.sum(tf.squaredDifference(w, globalWeights[i]!)));
    });
    return tf.mul(total, mu / 2) as tf.Scalar;
  });
}

/**
 * Knowledge distillation T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch
 * (Hinton's T² keeps gradient magnitudes comparable across temperatures).
 */
export function distillationLoss(studentLogits: tf.Tensor, teacherLogits: tf.Tensor, temperature: number): tf.Scalar {
  if (!(Number.isFinite(temperature) && temperature > 0))
    throw new ModelsError('MODELS_BAD_CONFIG', `distillationLoss: temperature must be > 0, got ${temperature}`);
  if (studentLogits.shape.join(',') !== teacherLogits.shape.join(',')) {
    throw new ModelsError(
      'MODELS_BAD_INPUT',
      `distillationLoss: student [${studentLogits.shape.join(',')}] and teacher [${teacherLogits.shape.join(',')}] logits differ in shape`,
    );
  }
  return tf.tidy(() => {
    const logQ = tf.logSoftmax(tf.div(studentLogits, temperature));
    const logP = tf.logSoftmax(tf.div(teacherLogits, temperature));
    const kl = tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}
