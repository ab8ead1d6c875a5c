/**
 * FedAFD's losses ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and Distillation"):
 * the retrieval clients' and the server's symmetric InfoNCE, the bi-level adversarial value of
 * BAA (Eq. 1–2) and the server's L2 distillation toward the SED teacher (Eq. 10). The paper's
 * equations were lost in the text we have; they are reconstructed here from its words:
 *
 * - InfoNCE (the paper trains retrieval with PCME; we use the symmetric contrastive loss of
 *   CLIP-style dual encoders): S_ij = cos(a_i, b_j) / τ, L = ½ [CE(S, diag) + CE(Sᵀ, diag)], each CE
 *   the mean over rows of −log softmax(row)_i. τ = {@link INFO_NCE_TEMPERATURE}.
 * - BAA, Eq. 1: for a discriminator D (logit s, probability σ(s) that a feature is the server's),
 *   L = (1/N) Σ_i log D(g_i) + (1/N) Σ_i log(1 − D(z_i)), g_i the global and z_i the local
 *   representation of public sample i (the same modality for D_intra, the partner modality's
 *   global representation for D_cross). Eq. 2: L_adv = L_intra + L_cross. The discriminators
 *   maximise L_adv (we minimise −L_adv, the binary cross-entropy with global = 1, local = 0); the
 *   encoder minimises it, i.e. its z-dependent part (1/N) Σ log(1 − D(z_i)) (the paper's minimax
 *   form, not the non-saturating variant).
 * - Eq. 10: L_dis = (1/N) Σ_i ‖g_i − t_i‖², t_i the similarity-weighted teacher representation.
 *
 * Each returns a scalar tensor and is meant to be called inside a gradient scope.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError } from '../errors.js';

/**
 * Temperature τ of {@link symmetricInfoNce}: 0.07, CLIP's initial value, which spreads cosine
 * similarities in [−1, 1] over logits in about [−14, 14].
 */
export const INFO_NCE_TEMPERATURE = 0.07;

/** Adversarial coefficient λ_adv on the encoder's BAA term (the paper's 0.5). */
export const FEDAFD_ADVERSARIAL_WEIGHT = 0.5;

/** Distillation coefficient on the server's L2 term, Eq. 10 (the paper's 0.4). */
export const FEDAFD_DISTILLATION_WEIGHT = 0.4;

function checkPair(fn: string, a: tf.Tensor, b: tf.Tensor): void {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1] || a.shape[0] === 0) {
    throw new ModelsError(
      'MODELS_BAD_INPUT',
      `${fn}: expected two non-empty [batch, dim] tensors of one shape, got [${a.shape.join(',')}] and [${b.shape.join(',')}]`,
    );
  }
}

/** Rows of `x` [n, d] scaled to unit L2 norm (a zero row stays zero). */
export function l2Normalize(x: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D);
}

/**
 * Symmetric InfoNCE between paired rows of `a` and `b` [n, d]: row i of each is the other's
 * positive, every other row a negative; similarities are cosines divided by `temperature`.
 */
export function symmetricInfoNce(a: tf.Tensor, b: tf.Tensor, temperature = INFO_NCE_TEMPERATURE): tf.Scalar {
  checkPair('symmetricInfoNce', a, b);
  if (!(temperature > 0) || !Number.isFinite(temperature))
    throw new ModelsError('MODELS_BAD_CONFIG', `symmetricInfoNce: temperature must be a finite number > 0, got ${temperature}`);
  return tf.tidy(() => {
    const n = a.shape[0]!;
    const logits = tf.div(tf.matMul(l2Normalize(a), l2Normalize(b), false, true), temperature);
    const eye = tf.eye(n);
    // TF.js's logSoftmax works on the last axis only: the column direction is the transpose's rows.
    const rows = tf.neg(tf.mean(tf.sum(tf.mul(eye, tf.logSoftmax(logits)), 1)));
    const cols = tf.neg(tf.mean(tf.sum(tf.mul(eye, tf.logSoftmax(tf.transpose(logits))), 1)));
    return tf.mul(tf.add(rows, cols), 0.5) as tf.Scalar;
  });
}

/** Eq. 10: mean over samples of the squared L2 distance between `student` and `teacher` rows [n, d]. */
export function representationDistillation(student: tf.Tensor, teacher: tf.Tensor): tf.Scalar {
  checkPair('representationDistillation', student, teacher);
  return tf.tidy(() => tf.mean(tf.sum(tf.square(tf.sub(student, teacher)), 1)) as tf.Scalar);
}

/**
 * The discriminator's side of Eq. 1: −[mean log σ(s_global) + mean log(1 − σ(s_local))], the binary
 * cross-entropy of logits on global (label 1) and local (label 0) features; minimising it
 * maximises Eq. 1.
 */
export function discriminatorLoss(globalLogits: tf.Tensor, localLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.add(tf.mean(tf.softplus(tf.neg(globalLogits))), tf.mean(tf.softplus(localLogits))) as tf.Scalar);
}

/**
 * The encoder's side of Eq. 1: mean log(1 − σ(s_local)) = −mean softplus(s_local), the part of
 * Eq. 1 that depends on the local features; the encoder minimises it (it falls as the
 * discriminator takes local features for global ones).
 */
export function encoderAdversarialLoss(localLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.softplus(localLogits))) as tf.Scalar);
}
