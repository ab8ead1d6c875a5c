/**
 * Explanations of NAM predictions (Agarwal et al. 2021, arXiv:2004.13912) and FedMM-X's
 * Explanation Consistency (Balija 2025, arXiv:2503.19564; EC, cosine between the class-centred
 * explanation vectors of two modalities of one input). Gradient × input saliency covers the raw
 * inputs: image pixels, text tokens (at the embedding level, summed per token) and audio
 * spectrogram frames; it is what deletion.ts ranks inputs by for the Faithfulness Score.
 * `termRemovalFaithfulness` is the older term-removal check on the additive head, kept for
 * comparison only (it cannot fail). Results are plain arrays; no tensor outlives a call.
 * A linear-head model (the ablation) is explained the same way: its terms z_i·w_i are exact too, and
 * its "shape functions" are lines.
 *
 * Each computation has two forms that give the same arrays: `explain`, `saliency` and
 * `shapeFunctionGrid` read with `dataSync()` (Node, wasm, cpu), and their `…Async` forms read only
 * with `await data()` — the only read a WebGPU tab can use, since a synchronous read there can
 * return zeros and lose the device (see backend.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { centredCosineSimilarity, cosineSimilarity, shuffled, type ExplanationConsistencyOptions, type Rng } from '@chorus/fl-core';
import type { Modality } from './encoders.js';
import { ModelsError, checkInt } from './errors.js';
import { shapeSmoothness } from './losses.js';
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

const EXPLANATION_FIELDS = ['logits', 'probabilities', 'contributions', 'concepts', 'mask', 'beta'] as const;

/** Tensors an explanation reads, taken from one forward pass; the caller disposes them. */
type ExplanationTensors = Record<(typeof EXPLANATION_FIELDS)[number], tf.Tensor>;

/** The values read out of {@link ExplanationTensors}. */
type ExplanationValues = Record<(typeof EXPLANATION_FIELDS)[number], Float32Array>;

function termNamesOf(model: MultimodalModel): string[] {
  return model.modalities.flatMap((m) => Array.from({ length: model.conceptDim }, (_, i) => `${m}/z${i}`));
}

/** The forward tensors of `batch`; `textEmbedded` stands in for the embedding of ids already range-checked. */
function explanationTensors(model: MultimodalModel, batch: MultimodalBatch, textEmbedded?: tf.Tensor3D): ExplanationTensors {
  return tf.tidy(() => {
    const f = model.forward(batch, textEmbedded ? { textEmbedded } : {});
    // beta is cloned so that every field can be disposed alike; the variable itself must survive.
    return {
      logits: f.logits,
      probabilities: tf.softmax(f.logits),
      contributions: f.contributions,
      concepts: f.concepts,
      mask: f.mask,
      beta: tf.clone(model.conceptHead.beta.read()),
    };
  });
}

/** Builds the explanation from the values read out of {@link ExplanationTensors}; pure. */
function assembleExplanation(model: MultimodalModel, values: ExplanationValues): Explanation {
  const numModalities = model.modalities.length;
  const k = model.numClasses;
  const c = model.conceptDim;
  const { logits, contributions } = values;
  const batchSize = logits.length / k;
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
    termNames: termNamesOf(model),
    predicted,
    logits,
    probabilities: values.probabilities,
    beta: values.beta,
    concepts: values.concepts,
    contributions,
    modalityContributions,
    modalityAttribution,
    present: values.mask,
  };
}

/** Lowest and highest value of `t`, read asynchronously. */
async function rangeOf(t: tf.Tensor): Promise<[number, number]> {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of await t.data()) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * The checks `model.forward` makes, with the label and token-id ranges read by `await data()`: on
 * WebGPU a synchronous read goes through a canvas that SwiftShader answers with zeros while losing
 * the device. Returns the batch without labels (explanations never use them), so that a forward
 * pass on it — given the text embedding from {@link embedChecked} — reads nothing synchronously.
 * Package-internal (deletion.ts uses it too); not exported from the index.
 */
export async function checkBatchAsync(model: MultimodalModel, batch: MultimodalBatch, fn: string): Promise<MultimodalBatch> {
  model.checkBatch(batch, fn, false);
  const { labels, ...inputs } = batch;
  if (labels && labels.size > 0) {
    const [lo, hi] = await rangeOf(labels);
    if (lo < 0 || hi >= model.numClasses) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: labels must lie in [0, ${model.numClasses}), got [${lo}, ${hi}]`);
  }
  if (inputs.text && inputs.text.size > 0 && model.textEmbedder) {
    const [lo, hi] = await rangeOf(inputs.text);
    if (lo < 0 || hi >= model.textEmbedder.vocabSize)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: token ids must lie in [0, ${model.textEmbedder.vocabSize}), got [${lo}, ${hi}]`);
  }
  return inputs;
}

/** The token embedding of a batch whose ids {@link checkBatchAsync} has checked (undefined without text); package-internal. */
export function embedChecked(model: MultimodalModel, inputs: MultimodalBatch): tf.Tensor3D | undefined {
  return inputs.text ? model.textEmbedder!.embed(inputs.text, { idsChecked: true }) : undefined;
}

/** The forward override that feeds {@link embedChecked}'s embedding (none without text); call inside a tidy. */
function embedOverride(model: MultimodalModel, inputs: MultimodalBatch): { textEmbedded?: tf.Tensor3D } {
  const embedded = embedChecked(model, inputs);
  return embedded ? { textEmbedded: embedded } : {};
}

/** Runs the model and returns every term's contribution, per-modality vectors and attributions (synchronous reads; Node and the wasm/cpu backends). */
export function explain(model: MultimodalModel, batch: MultimodalBatch): Explanation {
  const out = explanationTensors(model, batch);
  try {
    const read = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;
    return assembleExplanation(model, {
      logits: read(out.logits),
      probabilities: read(out.probabilities),
      contributions: read(out.contributions),
      concepts: read(out.concepts),
      mask: read(out.mask),
      beta: read(out.beta),
    });
  } finally {
    tf.dispose(out);
  }
}

/** {@link explain} with every value read by `await data()`, as a WebGPU tab must; equal to it on every backend where both work. */
export async function explainAsync(model: MultimodalModel, batch: MultimodalBatch): Promise<Explanation> {
  const inputs = await checkBatchAsync(model, batch, 'explainAsync');
  const out = tf.tidy(() => explanationTensors(model, inputs, embedChecked(model, inputs)));
  try {
    const read = await Promise.all(EXPLANATION_FIELDS.map((f) => out[f].data() as Promise<Float32Array>));
    return assembleExplanation(model, Object.fromEntries(EXPLANATION_FIELDS.map((f, i) => [f, read[i]!])) as ExplanationValues);
  } finally {
    tf.dispose(out);
  }
}

/** Options of {@link shapeFunctionGrid}: `points` ≥ 2 over [`min`, `max`] (default 33 over [-1, 1]). */
export interface ShapeFunctionGridOptions {
  points?: number;
  min?: number;
  max?: number;
}

/** Shape functions sampled on a grid: values[F, points, K] at `grid`. */
export interface ShapeFunctionGrid {
  termNames: string[];
  grid: Float32Array;
  values: Float32Array;
  numClasses: number;
}

function gridOf(fn: string, options: ShapeFunctionGridOptions): Float32Array {
  const points = checkInt(fn, 'points', options.points ?? 33, 2);
  const lo = options.min ?? -1;
  const hi = options.max ?? 1;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: need min < max, got ${lo}, ${hi}`);
  const grid = new Float32Array(points);
  for (let p = 0; p < points; p++) grid[p] = lo + ((hi - lo) * p) / (points - 1);
  return grid;
}

/** Every term evaluated at every grid point, [F, points, K]; the caller disposes it. */
function shapeValues(model: MultimodalModel, grid: Float32Array): tf.Tensor {
  return tf.tidy(() => {
    const z = tf.tile(tf.reshape(tf.tensor1d(grid), [grid.length, 1]), [1, model.conceptHead.numTerms]); // [points, F]
    return tf.transpose(model.conceptHead.terms(z), [1, 0, 2]);
  });
}

/** Shape functions sampled on a grid, for plots (default 33 points over the tanh range [-1, 1]). */
export function shapeFunctionGrid(model: MultimodalModel, options: ShapeFunctionGridOptions = {}): ShapeFunctionGrid {
  const grid = gridOf('shapeFunctionGrid', options);
  const values = tf.tidy(() => shapeValues(model, grid).dataSync() as Float32Array);
  return { termNames: termNamesOf(model), grid, values, numClasses: model.numClasses };
}

/** {@link shapeFunctionGrid} read by `await data()`. */
export async function shapeFunctionGridAsync(model: MultimodalModel, options: ShapeFunctionGridOptions = {}): Promise<ShapeFunctionGrid> {
  const grid = gridOf('shapeFunctionGridAsync', options);
  const values = shapeValues(model, grid);
  try {
    return { termNames: termNamesOf(model), grid, values: (await values.data()) as Float32Array, numClasses: model.numClasses };
  } finally {
    values.dispose();
  }
}

/**
 * Roughness of sampled shape functions: `shapeSmoothness` (the smoothness part of L_intp, mean
 * squared change of slope between grid cells) of `grid`'s values, so plots and reports measure
 * exactly what the penalty trains down — on any grid, e.g. a finer one than the penalty's.
 */
export async function shapeFunctionRoughness(grid: ShapeFunctionGrid): Promise<number> {
  const points = grid.grid.length;
  const numTerms = grid.termNames.length;
  if (points < 3 || grid.values.length !== numTerms * points * grid.numClasses)
    throw new ModelsError('MODELS_BAD_INPUT', `shapeFunctionRoughness: need ≥ 3 grid points and values [${numTerms}, ${points}, ${grid.numClasses}]`);
  const roughness = tf.tidy(() =>
    shapeSmoothness(tf.transpose(tf.tensor3d(grid.values, [numTerms, points, grid.numClasses]), [1, 0, 2]), grid.grid[1]! - grid.grid[0]!),
  );
  try {
    return (await roughness.data())[0]!;
  } finally {
    roughness.dispose();
  }
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

/** Refuses a batch without `modality` and `classes` that are not one class id per example. */
function checkSaliencyArgs(
  model: MultimodalModel,
  batch: MultimodalBatch,
  modality: Modality,
  classes: Int32Array | undefined,
  fn: string,
  labelRange: boolean,
): void {
  if (!batch[modality]) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: the batch has no ${modality} input`);
  const size = model.checkBatch(batch, fn, labelRange);
  if (classes && (classes.length !== size || classes.some((k) => k < 0 || k >= model.numClasses))) {
    throw new ModelsError('MODELS_BAD_INPUT', `${fn}: classes must hold ${size} ids in [0, ${model.numClasses})`);
  }
}

/**
 * Gradient × input of each of `modalities` for `target` on an unlabelled batch, from one forward and
 * one backward pass (call inside a tidy). `embedded` is the batch's token embedding: text saliency
 * differentiates with respect to it, the others hold it fixed.
 */
function saliencyTensors(
  model: MultimodalModel,
  inputs: MultimodalBatch,
  modalities: readonly Modality[],
  target: Int32Array,
  embedded: tf.Tensor3D | undefined,
): tf.Tensor[] {
  const oneHot = tf.oneHot(tf.tensor1d(target, 'int32'), model.numClasses);
  const wrt = modalities.map((m) => (m === 'text' ? embedded! : inputs[m]!));
  const grads = tf.grads((...xs: tf.Tensor[]) => {
    const batch: MultimodalBatch = { ...inputs };
    let textEmbedded = embedded;
    modalities.forEach((m, i) => {
      if (m === 'text') textEmbedded = xs[i] as tf.Tensor3D;
      else batch[m] = xs[i]!;
    });
    return tf.sum(tf.mul(model.forward(batch, textEmbedded ? { textEmbedded } : {}).logits, oneHot));
  })(wrt);
  // Text sums over the embedding width (padding tokens never reach the pooled vector, so their
  // gradient is already 0), image over channels, audio over mel bands.
  return modalities.map((m, i) => tf.sum(tf.mul(grads[i]!, wrt[i]!), m === 'image' ? 3 : 2));
}

/** Gradient × input saliency of `modality` for the predicted (or given) class of each example (synchronous reads). */
export function saliency(model: MultimodalModel, batch: MultimodalBatch, modality: Modality, classes?: Int32Array): Saliency {
  checkSaliencyArgs(model, batch, modality, classes, 'saliency', true);
  const inputs: MultimodalBatch = { ...batch };
  delete inputs.labels;
  const target = classes ?? tf.tidy(() => tf.argMax(model.forward(inputs).logits, 1).dataSync() as Int32Array);
  const result = tf.tidy(() => saliencyTensors(model, inputs, [modality], target, inputs.text ? model.textEmbedder!.embed(inputs.text) : undefined)[0]!);
  try {
    return { modality, classes: target, values: result.dataSync() as Float32Array, shape: [...result.shape] };
  } finally {
    result.dispose();
  }
}

/** Saliency of every one of `modalities` read by `await data()`, after `fn`'s checks. */
async function saliencyOfAsync(
  fn: string,
  model: MultimodalModel,
  batch: MultimodalBatch,
  modalities: readonly Modality[],
  classes: Int32Array | undefined,
): Promise<Saliency[]> {
  if (modalities.length === 0 || new Set(modalities).size !== modalities.length)
    throw new ModelsError('MODELS_BAD_INPUT', `${fn}: modalities must be distinct and at least one, got [${modalities.join(', ')}]`);
  for (const m of modalities) checkSaliencyArgs(model, batch, m, classes, fn, false);
  const inputs = await checkBatchAsync(model, batch, fn);
  let target = classes;
  if (!target) {
    const predicted = tf.tidy(() => tf.argMax(model.forward(inputs, embedOverride(model, inputs)).logits, 1));
    try {
      target = (await predicted.data()) as Int32Array;
    } finally {
      predicted.dispose();
    }
  }
  const known = target;
  const values = tf.tidy(() => saliencyTensors(model, inputs, modalities, known, embedChecked(model, inputs)));
  try {
    const read = (await Promise.all(values.map((v) => v.data()))) as Float32Array[];
    return modalities.map((modality, i) => ({ modality, classes: known, values: read[i]!, shape: [...values[i]!.shape] }));
  } finally {
    tf.dispose(values);
  }
}

/** {@link saliency} with every value (ranges, predicted classes, saliency) read by `await data()`. */
export async function saliencyAsync(model: MultimodalModel, batch: MultimodalBatch, modality: Modality, classes?: Int32Array): Promise<Saliency> {
  return (await saliencyOfAsync('saliencyAsync', model, batch, [modality], classes))[0]!;
}

/**
 * {@link saliencyAsync} of several modalities from one forward and one backward pass, instead of one
 * of each per modality (the gradients with respect to every input come out of the same backward
 * pass); equal to calling it per modality up to float rounding.
 */
export async function saliencyByModalityAsync(
  model: MultimodalModel,
  batch: MultimodalBatch,
  modalities: readonly Modality[],
  classes?: Int32Array,
): Promise<Partial<Record<Modality, Saliency>>> {
  const all = await saliencyOfAsync('saliencyByModalityAsync', model, batch, modalities, classes);
  return Object.fromEntries(all.map((s) => [s.modality, s]));
}

/**
 * Per-example EC between modalities `a` and `b`: the cosine of their class-space contribution
 * vectors, each centred over the classes unless `{centred: false}` (a constant added to all of one
 * modality's class contributions leaves softmax unchanged, so EC ignores it; see fl-core's
 * similarity.ts); NaN where either modality is absent. (fl-core's `meanExplanationConsistency` is
 * the mean over a probe set and every pair.)
 */
export function explanationConsistency(
  explanation: Explanation,
  a: Modality,
  b: Modality,
  options: ExplanationConsistencyOptions = {},
): { perExample: Float64Array; mean: number } {
  const similarity = (options.centred ?? true) ? centredCosineSimilarity : cosineSimilarity;
  const ia = explanation.modalities.indexOf(a);
  const ib = explanation.modalities.indexOf(b);
  if (ia < 0 || ib < 0 || ia === ib)
    throw new ModelsError('MODELS_BAD_INPUT', `explanationConsistency: need two distinct modalities of the model, got ${a} and ${b}`);
  const { batchSize, numClasses: k, modalities, modalityContributions: mc, present } = explanation;
  const perExample = new Float64Array(batchSize);
  let sum = 0;
  let n = 0;
  for (let e = 0; e < batchSize; e++) {
    if (present[e * modalities.length + ia] === 0 || present[e * modalities.length + ib] === 0) {
      perExample[e] = Number.NaN;
      continue;
    }
    const u = (e * modalities.length + ia) * k;
    const v = (e * modalities.length + ib) * k;
    perExample[e] = similarity(mc.subarray(u, u + k), mc.subarray(v, v + k));
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
 * Term-removal "faithfulness" of the additive head: the drop in p(predicted) when the k present
 * terms with the largest contribution to the predicted class are subtracted from the logits, minus
 * the mean drop over `trials` removals of k random present terms (drawn with `rng`); k is capped at
 * the number of present terms. For an additive head this cannot fail — removing the largest terms
 * of a sum always hurts more than random ones — so it checks the arithmetic, not the explanation;
 * the Faithfulness Score is `deletionFaithfulness` (deletion.ts), which edits the inputs.
 */
export function termRemovalFaithfulness(
  explanation: Explanation,
  options: { k: number; rng: Rng; trials?: number },
): { perExample: Float64Array; mean: number } {
  const kTerms = checkInt('termRemovalFaithfulness', 'k', options.k, 1);
  const trials = checkInt('termRemovalFaithfulness', 'trials', options.trials ?? 8, 1);
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
