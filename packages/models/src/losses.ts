/**
 * Training losses. Cross-entropy; FedMM-X's loss terms (Balija 2025, arXiv:2503.19564) L_modal —
 * in one of two variants, see {@link MODAL_LOSSES} — and L_intp (shape-function smoothness plus
 * contribution sparsity); the FedProx proximal term (Li et al. 2020, arXiv:1812.06127); and
 * temperature-scaled knowledge distillation (Hinton et al. 2015, arXiv:1503.02531), which
 * FedAFD-style strategies apply on the public split. Each returns a scalar tensor and is meant to
 * be called inside a gradient scope (it does not tidy its caller's tensors).
 */
import * as tf from '@tensorflow/tfjs';
import { MODAL_LOSSES, type ModalLoss } from '@chorus/protocol';
import { ModelsError } from './errors.js';

/**
 * Variants of L_modal (the protocol's list, which task files and round configs name):
 * - `'js'` (default): {@link modalConsistency}, the generalised Jensen–Shannon divergence between
 *   the present modalities' predictions — a symmetric agreement term with no teacher.
 * - `'distill'`: {@link crossModalDistillation}, FedMM-X's cross-modal distillation — each present
 *   modality's own prediction is pulled toward the fused prediction, which is held fixed.
 */
export { MODAL_LOSSES };
export type { ModalLoss };

/** Temperature T of {@link crossModalDistillation} (softens the fused teacher; the loss is scaled by T²). */
export const MODAL_DISTILL_TEMPERATURE = 2;

/** Concept grid of the smoothness part of L_intp: 33 evenly spaced points over the tanh range [-1, 1] of the concepts. */
export const SMOOTHNESS_GRID = { points: 33, min: -1, max: 1 } as const;

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

/** The identity whose gradient is zero: a stop-gradient (TF.js has no such op). */
const stopGradient = tf.customGrad((x, save) => {
  void save;
  return { value: tf.clone(x as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * FedMM-X's cross-modal distillation, the `'distill'` variant of L_modal: for each example with ≥ 2
 * modalities present, the mean over those modalities of T² · KL(softmax(ℓ/T) ‖ softmax(ℓ_m/T)),
 * where ℓ is the fused logits — the teacher, behind a stop-gradient so only the single-modality
 * heads move toward it — and ℓ_m the modality's own logits; averaged over the batch with zero for
 * the other examples (so a unimodal client gets exactly zero, as with the `'js'` variant).
 *
 * @param perModalityLogits [batch, M, K]: each modality's own logits (β + its terms).
 * @param fusedLogits [batch, K]: the model's logits (β + every present term).
 * @param present [batch, M] of 0/1.
 * @param temperature T > 0; default {@link MODAL_DISTILL_TEMPERATURE}.
 */
export function crossModalDistillation(
  perModalityLogits: tf.Tensor,
  fusedLogits: tf.Tensor,
  present: tf.Tensor,
  temperature: number = MODAL_DISTILL_TEMPERATURE,
): tf.Scalar {
  if (!(Number.isFinite(temperature) && temperature > 0))
    throw new ModelsError('MODELS_BAD_CONFIG', `crossModalDistillation: temperature must be > 0, got ${temperature}`);
  const [batch, numModalities, numClasses] = perModalityLogits.shape;
  if (perModalityLogits.rank !== 3 || fusedLogits.shape.join(',') !== `${batch},${numClasses}` || present.shape.join(',') !== `${batch},${numModalities}`) {
    throw new ModelsError(
      'MODELS_BAD_INPUT',
      `crossModalDistillation: need logits [B, M, K], fused [B, K] and present [B, M], got [${perModalityLogits.shape.join(',')}], [${fusedLogits.shape.join(',')}], [${present.shape.join(',')}]`,
    );
  }
  return tf.tidy(() => {
    const logTeacher = tf.logSoftmax(tf.div(stopGradient(fusedLogits), temperature)); // [B, K]
    const logStudent = tf.logSoftmax(tf.div(perModalityLogits, temperature), 2); // [B, M, K]
    const teacher = tf.exp(logTeacher);
    const kl = tf.sum(tf.mul(tf.expandDims(teacher, 1), tf.sub(tf.expandDims(logTeacher, 1), logStudent)), 2); // [B, M]
    const count = tf.sum(present, 1); // [B]
    const perExample = tf.div(tf.sum(tf.mul(kl, present), 1), tf.maximum(count, 1));
    const eligible = tf.cast(tf.greaterEqual(count, 2), 'float32');
    return tf.mul(tf.div(tf.sum(tf.mul(perExample, eligible)), batch!), temperature * temperature) as tf.Scalar;
  });
}

/** L_modal in the given variant (see {@link MODAL_LOSSES}); arguments as {@link crossModalDistillation}'s. */
export function crossModalLoss(kind: ModalLoss, perModalityLogits: tf.Tensor, fusedLogits: tf.Tensor, present: tf.Tensor): tf.Scalar {
  if (kind === 'js') return modalConsistency(perModalityLogits, present);
  if (kind === 'distill') return crossModalDistillation(perModalityLogits, fusedLogits, present);
  throw new ModelsError('MODELS_BAD_CONFIG', `crossModalLoss: kind must be one of ${MODAL_LOSSES.join(', ')}, got ${String(kind)}`);
}

/**
 * Roughness of shape functions sampled on an even grid: the mean, over terms, classes and interior
 * grid points, of the squared change of slope between neighbouring cells ((f_{p+1} − 2f_p +
 * f_{p−1}) / step)². Zero exactly when every shape function is linear over the grid; for a
 * piecewise-linear (ReLU) shape function it sums the squared kinks it makes.
 *
 * @param values [points, F, K]: every term at every grid point (`head.terms` of the tiled grid).
 * @param step Grid spacing (> 0).
 */
export function shapeSmoothness(values: tf.Tensor, step: number): tf.Scalar {
  if (!(Number.isFinite(step) && step > 0)) throw new ModelsError('MODELS_BAD_CONFIG', `shapeSmoothness: step must be > 0, got ${step}`);
  const points = values.shape[0]!;
  if (values.rank !== 3 || points < 3)
    throw new ModelsError('MODELS_BAD_INPUT', `shapeSmoothness: need values [≥ 3 points, F, K], got [${values.shape.join(',')}]`);
  return tf.tidy(() => {
    const [f, k] = [values.shape[1]!, values.shape[2]!];
    const next = tf.slice(values, [2, 0, 0], [points - 2, f, k]);
    const mid = tf.slice(values, [1, 0, 0], [points - 2, f, k]);
    const prev = tf.slice(values, [0, 0, 0], [points - 2, f, k]);
    const secondDifference = tf.add(tf.sub(next, tf.mul(mid, 2)), prev);
    return tf.mean(tf.square(tf.div(secondDifference, step))) as tf.Scalar;
  });
}

/** Sparsity part of L_intp: mean |contribution| over [batch, F, K] (an L1 penalty on the per-concept contributions). */
export function contributionSparsity(contributions: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(contributions)) as tf.Scalar);
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
