/**
 * Explanations of NAM predictions (Agarwal et al. 2021, arXiv:2004.13912) and FedMM-X's
 * interpretability metrics (Balija 2025, arXiv:2503.19564): Explanation Consistency (EC, cosine
 * between the explanation vectors of two modalities of one input) and Faithfulness Score (FS, the
 * drop in the predicted class's probability when the top-k attributed terms are removed, minus the
 * drop when k random present terms are removed). Because the head is additive, removing a term is
 * exact — subtract its contribution from the logits — so FS needs no extra forward pass. Gradient ×
 * input saliency covers the raw inputs: image pixels, text tokens (at the embedding level, summed
 * per token) and audio spectrogram frames. Results are plain arrays; no tensor outlives a call.
 * A linear-head model (the ablation) is explained the same way: its terms z_i·w_i are exact too, and
 * its "shape functions" are lines.
 */
import * as tf from '@tensorflow/tfjs';
import { shuffled, type Rng } from '@chorus/fl-core';
import type { Modality } from './encoders.js';
import { ModelsError, checkInt } from './errors.js';
import type { MultimodalBatch, MultimodalModel } from './model.js';

/** Term-by-term explanation of a batch. Arrays are row-major. */
export interface Explanation {
  modalities: Modality[];
  numClasses: number;
  conceptDim: number;
  batchSize: number;
  /** Term names `${modality}/z${i}` in contribution order. */
  termNames: string[];
  /** Predicted class per example. */
  predicted: Int32Array;
  /** Logits [batch, K]. */
  logits: Float32Array;
  /** Softmax probabilities [batch, K]. */
  probabilities: Float32Array;
  /** β [K]. */
  beta: Float32Array;
  /** Concept values [batch, F]. */
  concepts: Float32Array;
  /** Every term's contribution [batch, F, K] (F = M·c). */
  contributions: Float32Array;
  /** Per-modality contribution vectors Σ_i f_{m,i} [batch, M, K]. */
  modalityContributions: Float32Array;
  /** Share of |contribution to the predicted class| per modality [batch, M] (rows sum to 1 when any modality contributes). */
  modalityAttribution: Float32Array;
  /** Effective presence [batch, M]. */
  present: Float32Array;
}

/** Runs the model and returns every term's contribution, per-modality vectors and attributions. */
export function explain(model: MultimodalModel, batch: MultimodalBatch): Explanation {
  const out = tf.tidy(() => {
    const f = model.forward(batch);
    return { ...f, probabilities: tf.softmax(f.logits) };
  });
  try {
    const batchSize = out.logits.shape[0];
    const numModalities = model.modalities.length;
    const k = model.numClasses;
    const c = model.conceptDim;
    const logits = out.logits.dataSync() as Float32Array;
    const probabilities = out.probabilities.dataSync() as Float32Array;
    const contributions = out.contributions.dataSync() as Float32Array;
    const predicted = new Int32Array(batchSize);
    for (let b = 0; b < batchSize; b++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (logits[b * k + j]! > logits[b * k + best]!) best = j;
      predicted[b] = best;
    }
    const modalityContributions = new Float32Array(batchSize * numModalities * k);
    const modalityAttribution = new Float32Array(batchSize * numModalities);
    for (let b = 0; b < batchSize; b++) {
      let total = 0;
      for (let m = 0; m < numModalities; m++) {
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < k; j++) modalityContributions[(b * numModalities + m) * k + j]! += contributions[(b * numModalities * c + m * c + i) * k + j]!;
        }
        const toPredicted = Math.abs(modalityContributions[(b * numModalities + m) * k + predicted[b]!]!);
        modalityAttribution[b * numModalities + m] = toPredicted;
        total += toPredicted;
      }
      if (total > 0) for (let m = 0; m < numModalities; m++) modalityAttribution[b * numModalities + m]! /= total;
    }
    return {
      modalities: [...model.modalities],
      numClasses: k,
      conceptDim: c,
      batchSize,
      termNames: model.modalities.flatMap((m) => Array.from({ length: c }, (_, i) => `${m}/z${i}`)),
      predicted,
      logits,
      probabilities,
      beta: model.conceptHead.beta.read().dataSync() as Float32Array,
      concepts: out.concepts.dataSync() as Float32Array,
      contributions,
      modalityContributions,
      modalityAttribution,
      present: out.mask.dataSync() as Float32Array,
    };
  } finally {
    tf.dispose(out);
  }
}

/** Shape functions sampled on a grid, for plots: values[F, points, K] at `grid` (default 33 points over the tanh range [-1, 1]). */
export function shapeFunctionGrid(model: MultimodalModel, options: { points?: number; min?: number; max?: number } = {}): { termNames: string[]; grid: Float32Array; values: Float32Array; numClasses: number } {
  const points = checkInt('shapeFunctionGrid', 'points', options.points ?? 33, 2);
  const lo = options.min ?? -1;
  const hi = options.max ?? 1;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new ModelsError('MODELS_BAD_CONFIG', `shapeFunctionGrid: need min < max, got ${lo}, ${hi}`);
  const grid = new Float32Array(points);
  for (let p = 0; p < points; p++) grid[p] = lo + ((hi - lo) * p) / (points - 1);
  const numTerms = model.conceptHead.numTerms;
  const values = tf.tidy(() => {
    const z = tf.tile(tf.reshape(tf.tensor1d(grid), [points, 1]), [1, numTerms]); // [points, F]
    return tf.transpose(model.conceptHead.terms(z), [1, 0, 2]).dataSync() as Float32Array; // [F, points, K]
  });
  return { termNames: model.modalities.flatMap((m) => Array.from({ length: model.conceptDim }, (_, i) => `${m}/z${i}`)), grid, values, numClasses: model.numClasses };
}

/** Gradient × input saliency of one modality's raw input. */
export interface Saliency {
  modality: Modality;
  /** Class explained per example (predicted unless given). */
  classes: Int32Array;
  /** image: [batch, h, w] (summed over channels); text: [batch, length] (summed over embedding width, 0 at padding); audio: [batch, frames] (summed over mel bands). */
  values: Float32Array;
  shape: number[];
}

/** Gradient × input saliency of `modality` for the predicted (or given) class of each example. */
export function saliency(model: MultimodalModel, batch: MultimodalBatch, modality: Modality, classes?: Int32Array): Saliency {
  const x = batch[modality];
  if (!x) throw new ModelsError('MODELS_BAD_INPUT', `saliency: the batch has no ${modality} input`);
  const size = model.checkBatch(batch, 'saliency');
  if (classes && (classes.length !== size || classes.some((k) => k < 0 || k >= model.numClasses))) {
    throw new ModelsError('MODELS_BAD_INPUT', `saliency: classes must hold ${size} ids in [0, ${model.numClasses})`);
  }
  const target = classes ?? tf.tidy(() => tf.argMax(model.forward(batch).logits, 1).dataSync() as Int32Array);
  const result = tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(target, 'int32'), model.numClasses);
    const objective = (logits: tf.Tensor): tf.Scalar => tf.sum(tf.mul(logits, oneHot));
    if (modality === 'text') {
      const embedded = model.textEmbedder!.embed(x);
      const grad = tf.grad((e: tf.Tensor) => objective(model.forward(batch, { textEmbedded: e as tf.Tensor3D }).logits))(embedded);
      // Padding tokens never reach the pooled vector; their gradient is already 0.
      return tf.sum(tf.mul(grad, embedded), 2);
    }
    const grad = tf.grad((input: tf.Tensor) => objective(model.forward({ ...batch, [modality]: input }).logits))(x);
    return modality === 'image' ? tf.sum(tf.mul(grad, x), 3) : tf.sum(tf.mul(grad, x), 2);
  });
  try {
    return { modality, classes: target, values: result.dataSync() as Float32Array, shape: [...result.shape] };
  } finally {
    result.dispose();
  }
}

/** Per-example EC between modalities `a` and `b` (cosine of their class-space contribution vectors); NaN where either is absent. */
export function explanationConsistency(explanation: Explanation, a: Modality, b: Modality): { perExample: Float64Array; mean: number } {
  const ia = explanation.modalities.indexOf(a);
  const ib = explanation.modalities.indexOf(b);
  if (ia < 0 || ib < 0 || ia === ib) throw new ModelsError('MODELS_BAD_INPUT', `explanationConsistency: need two distinct modalities of the model, got ${a} and ${b}`);
  const { batchSize, numClasses: k, modalities, modalityContributions: mc, present } = explanation;
  const perExample = new Float64Array(batchSize);
  let sum = 0;
  let n = 0;
  for (let e = 0; e < batchSize; e++) {
    if (present[e * modalities.length + ia] === 0 || present[e * modalities.length + ib] === 0) {
      perExample[e] = Number.NaN;
      continue;
    }
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let j = 0; j < k; j++) {
      const u = mc[(e * modalities.length + ia) * k + j]!;
      const v = mc[(e * modalities.length + ib) * k + j]!;
      ab += u * v;
      aa += u * u;
      bb += v * v;
    }
    perExample[e] = aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
    sum += perExample[e]!;
    n++;
  }
  return { perExample, mean: n > 0 ? sum / n : Number.NaN };
}

function probabilityOf(logits: Float64Array, cls: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - max);
  return Math.exp(logits[cls]! - max) / z;
}

/**
 * Per-example FS: drop in p(predicted) when the k present terms with the largest contribution to the
 * predicted class are removed, minus the mean drop over `trials` removals of k random present terms
 * (drawn with `rng`). k is capped at the number of present terms.
 */
export function faithfulness(explanation: Explanation, options: { k: number; rng: Rng; trials?: number }): { perExample: Float64Array; mean: number } {
  const kTerms = checkInt('faithfulness', 'k', options.k, 1);
  const trials = checkInt('faithfulness', 'trials', options.trials ?? 8, 1);
  const { batchSize, numClasses: numK, conceptDim: c, modalities, contributions, logits, predicted, present } = explanation;
  const numTerms = modalities.length * c;
  const perExample = new Float64Array(batchSize);
  const dropAfterRemoving = (e: number, terms: readonly number[], cls: number): number => {
    const reduced = new Float64Array(numK);
    for (let j = 0; j < numK; j++) reduced[j] = logits[e * numK + j]!;
    for (const t of terms) for (let j = 0; j < numK; j++) reduced[j]! -= contributions[(e * numTerms + t) * numK + j]!;
    const full = new Float64Array(numK);
    for (let j = 0; j < numK; j++) full[j] = logits[e * numK + j]!;
    return probabilityOf(full, cls) - probabilityOf(reduced, cls);
  };
  let sum = 0;
  for (let e = 0; e < batchSize; e++) {
    const cls = predicted[e]!;
    const live: number[] = [];
    for (let t = 0; t < numTerms; t++) if (present[e * modalities.length + Math.floor(t / c)] !== 0) live.push(t);
    const k = Math.min(kTerms, live.length);
    const ranked = [...live].sort((p, q) => contributions[(e * numTerms + q) * numK + cls]! - contributions[(e * numTerms + p) * numK + cls]!);
    const topDrop = dropAfterRemoving(e, ranked.slice(0, k), cls);
    let randomDrop = 0;
    for (let r = 0; r < trials; r++) randomDrop += dropAfterRemoving(e, shuffled(options.rng, live).slice(0, k), cls);
    perExample[e] = topDrop - randomDrop / trials;
    sum += perExample[e]!;
  }
  return { perExample, mean: batchSize > 0 ? sum / batchSize : Number.NaN };
}
