/**
 * Faithfulness Score as an input-deletion test: ERASER's comprehensiveness (DeYoung et al. 2020,
 * arXiv:1911.03429) against a random-deletion baseline, the FS of FedMM-X (Balija 2025, arXiv:2503.19564).
 *
 * Each input's elements — image pixels, caption tokens, audio frames — are ranked by an attribution
 * (default: gradient × input saliency toward the predicted class ŷ, signed, so the top elements are
 * the strongest evidence for ŷ). The top k % are deleted (set to a neutral value: a 0 pixel, the
 * padding token, a silent log-mel frame) and the model is run again; the same is done with k %
 * chosen at random (seeded, several trials). FS is p(ŷ) after the random deletions minus p(ŷ) after
 * the top deletion: positive when the attribution finds what the model relies on, about 0 for an
 * attribution no better than chance, negative for one that points at counter-evidence. Unlike
 * removing the largest terms of an additive head (which always hurts more than random terms, see
 * `termRemovalFaithfulness`), this can fail: it re-runs the encoders on edited inputs.
 *
 * Only elements that hold content can be deleted — pixels that are not already 0, non-padding
 * tokens, frames that are not already silent — and k % of an input's n such elements is ⌈k·n⌉ of
 * them (at least one): deleting a black background pixel is a no-op, so counting those would make
 * the random baseline nearly harmless on a digit and any attribution that finds the strokes look
 * faithful. Scores come per modality (only that modality's input edited; examples lacking it, or
 * with no content in it, left out) and overall (every tested modality edited at once, each ranked
 * within itself since attribution scales differ across modalities; trial r's random deletion is the
 * union of the per-modality trial-r draws), for several k. Every deletion's edited copy of the batch
 * is stacked into one batched forward pass (a few, for large batches), and the per-modality scores
 * come from that same pass: the head is additive over modalities, so a modality's edited share of
 * the logits is swapped into the intact ones (see `deletedProbabilities`).
 * Every value is read with `await data()`, so it runs in a WebGPU tab; no tensor outlives a call.
 */
import * as tf from '@tensorflow/tfjs';
import { shuffled, type Rng } from '@chorus/fl-core';
import { LOG_MEL_SILENCE } from './audio.js';
import type { Modality } from './encoders.js';
import { ModelsError, checkInt } from './errors.js';
import { checkBatchAsync, embedChecked, saliencyByModalityAsync } from './explain.js';
import type { MultimodalBatch, MultimodalModel } from './model.js';

/** Options of {@link deletionFaithfulness}. */
export interface DeletionFaithfulnessOptions {
  /** Draws the random deletions. */
  rng: Rng;
  /** Fractions k of each input's elements deleted, each in (0, 1]; default {@link DELETION_FRACTIONS}. */
  fractions?: readonly number[];
  /** Random deletions per example and fraction; default 4. */
  trials?: number;
  /** Modalities to test; default every modality of the model the batch carries. */
  modalities?: readonly Modality[];
  /**
   * Attributions to rank by, per modality, laid out like `Saliency.values` (image [batch, h, w],
   * text [batch, length], audio [batch, frames]); default gradient × input saliency toward ŷ.
   */
  attributions?: Partial<Record<Modality, Float32Array>>;
  /** Value of a deleted audio frame (every mel band); default {@link LOG_MEL_SILENCE}. */
  audioSilence?: number;
}

/** FS of one kind of deletion at one fraction. */
export interface DeletionScore {
  /** Mean over the scored examples of p(ŷ) after random deletion − p(ŷ) after top deletion. */
  fs: number;
  /** Mean drop of p(ŷ) when the top-attributed elements are deleted (ERASER comprehensiveness). */
  topDrop: number;
  /** Mean drop of p(ŷ) when random elements are deleted (mean over trials). */
  randomDrop: number;
  /** Examples scored (those holding the modality with some content in it; for `overall`, any tested modality). */
  numExamples: number;
  /** FS per example, NaN where the example is not scored. */
  perExample: Float64Array;
}

/** FS at one fraction. */
export interface DeletionPoint {
  fraction: number;
  perModality: Partial<Record<Modality, DeletionScore>>;
  overall: DeletionScore;
}

/** What {@link deletionFaithfulness} returns. */
export interface DeletionFaithfulness {
  modalities: Modality[];
  /** Predicted class ŷ per example on the intact input. */
  predicted: Int32Array;
  /** p(ŷ) on the intact input. */
  probability: Float32Array;
  points: DeletionPoint[];
  /** FS averaged over the fractions (per modality and overall; NaN where nothing was scored). */
  mean: { perModality: Partial<Record<Modality, number>>; overall: number };
}

/** Log-mel frames within this of the silence value in every band count as silent (nothing to delete). */
const SILENCE_TOLERANCE = 1e-3;

/** Default fractions of {@link deletionFaithfulness}: 5, 10 and 20 % of each input's elements. */
export const DELETION_FRACTIONS: readonly number[] = [0.05, 0.1, 0.2];

/** One modality's deletable elements: per example, the element indices a deletion may pick. */
interface ElementSets {
  numElements: number;
  eligible: number[][];
}

/** One deletion: per modality it edits, per example, the indices of the elements deleted. */
export type Deletion = Partial<Record<Modality, number[][]>>;

/** Per example, the indices of its elements in descending attribution (ties by index). */
function ranking(scores: Float32Array, sets: ElementSets, example: number): number[] {
  const base = example * sets.numElements;
  return [...sets.eligible[example]!].sort((p, q) => scores[base + q]! - scores[base + p]! || p - q);
}

/** Elements of one example of `modality`'s input that a deletion picks from: pixels, token positions or frames. */
function elementsOf(x: tf.Tensor, modality: Modality): number {
  return modality === 'image' ? x.shape[1]! * x.shape[2]! : x.shape[1]!;
}

/** Builds the batch with `deleted[m][b]` elements of each modality set to its neutral value (call inside a tidy). */
function editedInputs(inputs: MultimodalBatch, deleted: Deletion, silence: number): MultimodalBatch {
  const edited: MultimodalBatch = { ...inputs };
  for (const [m, perExample] of Object.entries(deleted) as [Modality, number[][]][]) {
    const x = inputs[m]!;
    const numElements = elementsOf(x, m);
    const keep = new Float32Array(perExample.length * numElements).fill(1);
    perExample.forEach((elements, b) => {
      for (const e of elements) keep[b * numElements + e] = 0;
    });
    if (m === 'text') {
      edited.text = tf.mul(x, tf.tensor2d(keep, [perExample.length, numElements]).toInt());
    } else if (m === 'image') {
      const [, h, w] = x.shape;
      edited.image = tf.mul(x, tf.tensor4d(keep, [perExample.length, h!, w!, 1]));
    } else {
      const mask = tf.tensor3d(keep, [perExample.length, numElements, 1]);
      edited.audio = tf.add(tf.mul(x, mask), tf.mul(tf.sub(1, mask), silence));
    }
  }
  return edited;
}

/** `inputs` repeated `times` along the batch axis (call inside a tidy). */
function repeatedInputs(inputs: MultimodalBatch, times: number): MultimodalBatch {
  if (times === 1) return inputs;
  const repeated: MultimodalBatch = {};
  for (const [key, t] of Object.entries(inputs) as [keyof MultimodalBatch, tf.Tensor][])
    repeated[key] = tf.concat(
      Array.from({ length: times }, () => t),
      0,
    );
  return repeated;
}

/** Rows (deletions × examples) one batched forward pass of {@link deletedProbabilities} holds at most, bounding its memory. */
export const DELETION_MAX_ROWS = 256;

/** What {@link deletedProbabilities} needs besides the model, the batch and the deletions. */
export interface DeletedProbabilitiesOptions {
  /** ŷ per example: the class whose probability is read. */
  predicted: Int32Array;
  /** Value of a deleted audio frame. */
  silence: number;
  /** Most rows per forward pass; default {@link DELETION_MAX_ROWS} (at least one deletion a pass). */
  maxRows?: number;
}

/** p(ŷ) per example after each deletion, overall and with one modality edited at a time. */
export interface DeletedProbabilities {
  /** Per deletion, p(ŷ) [batch] with every modality of the deletion edited at once. */
  overall: Float32Array[];
  /** Per modality of the deletions, per deletion, p(ŷ) [batch] with only that modality edited. */
  perModality: Partial<Record<Modality, Float32Array[]>>;
}

/**
 * p(ŷ) after every deletion in `deletions` (each naming the same modalities), from as few forward
 * passes as {@link DELETION_MAX_ROWS} allows: the deletions' edited copies of the batch are stacked
 * along the batch axis and run together, which on a GPU backend replaces dozens of small passes
 * (each paying per-kernel overhead) by one. The head is additive over modalities (logits = β + Σ_m
 * S_m, and modality m's own logits are β + S_m), so the single-modality scores come from the same
 * pass: the intact logits with S_m swapped for the edited one; exact, without re-running anything.
 * Package-internal (not exported from the index); reads only with `await data()`.
 */
export async function deletedProbabilities(
  model: MultimodalModel,
  inputs: MultimodalBatch,
  deletions: readonly Deletion[],
  options: DeletedProbabilitiesOptions,
): Promise<DeletedProbabilities> {
  const size = model.checkBatch(inputs, 'deletedProbabilities', false);
  const k = model.numClasses;
  const edited = Object.keys(deletions[0] ?? {}) as Modality[];
  const perPass = Math.max(1, Math.floor((options.maxRows ?? DELETION_MAX_ROWS) / size));
  const intact = tf.tidy(() => {
    const embedded = embedChecked(model, inputs);
    const out = model.forward(inputs, embedded ? { textEmbedded: embedded } : {});
    return { logits: out.logits, shares: out.perModalityLogits };
  });
  const pending: tf.Tensor[] = [];
  try {
    for (let first = 0; first < deletions.length; first += perPass) {
      const chunk = deletions.slice(first, first + perPass);
      pending.push(
        tf.tidy(() => {
          const rows = chunk.length * size;
          const stacked = Object.fromEntries(edited.map((m) => [m, chunk.flatMap((d) => d[m]!)])) as Deletion;
          const batch = editedInputs(repeatedInputs(inputs, chunk.length), stacked, options.silence);
          const embedded = embedChecked(model, batch);
          const out = model.forward(batch, embedded ? { textEmbedded: embedded } : {});
          const oneHot = tf.oneHot(
            tf.tensor1d(
              Array.from({ length: rows }, (_, r) => options.predicted[r % size]!),
              'int32',
            ),
            k,
          );
          const probabilityOf = (logits: tf.Tensor): tf.Tensor => tf.sum(tf.mul(tf.softmax(logits), oneHot), 1);
          const intactLogits = tf.tile(intact.logits, [chunk.length, 1]);
          const share = (t: tf.Tensor, m: Modality): tf.Tensor => tf.squeeze(tf.slice(t, [0, model.modalities.indexOf(m), 0], [t.shape[0]!, 1, k]), [1]);
          const alone = edited.map((m) =>
            probabilityOf(tf.add(tf.sub(intactLogits, tf.tile(share(intact.shares, m), [chunk.length, 1])), share(out.perModalityLogits, m))),
          );
          // [1 + edited modalities, rows]: overall first.
          return tf.stack([probabilityOf(out.logits), ...alone]);
        }),
      );
    }
    const values = (await Promise.all(pending.map((t) => t.data()))) as Float32Array[];
    const row = (d: number, which: number): Float32Array => {
      const v = values[Math.floor(d / perPass)]!;
      const rows = v.length / (1 + edited.length);
      const start = which * rows + (d % perPass) * size;
      return v.slice(start, start + size);
    };
    return {
      overall: deletions.map((_, d) => row(d, 0)),
      perModality: Object.fromEntries(edited.map((m, i) => [m, deletions.map((_, d) => row(d, 1 + i))])),
    };
  } finally {
    tf.dispose([...pending, intact.logits, intact.shares]);
  }
}

function checkOptions(options: DeletionFaithfulnessOptions): { fractions: readonly number[]; trials: number; silence: number } {
  const fn = 'deletionFaithfulness';
  const fractions = options.fractions ?? DELETION_FRACTIONS;
  if (fractions.length === 0 || fractions.some((f) => !(Number.isFinite(f) && f > 0 && f <= 1)))
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: fractions must be a non-empty list of numbers in (0, 1], got ${JSON.stringify(fractions)}`);
  const trials = checkInt(fn, 'trials', options.trials ?? 4, 1);
  const silence = options.audioSilence ?? LOG_MEL_SILENCE;
  if (!Number.isFinite(silence)) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: audioSilence must be finite, got ${silence}`);
  return { fractions, trials, silence };
}

/** Mean over the examples where `scored` holds (NaN when none). */
function meanWhere(values: Float64Array, scored: readonly boolean[]): number {
  let sum = 0;
  let n = 0;
  scored.forEach((s, i) => {
    if (s) {
      sum += values[i]!;
      n++;
    }
  });
  return n > 0 ? sum / n : Number.NaN;
}

/**
 * Input-deletion FS of `model` on `batch` (see the module doc): per modality and overall, for each
 * fraction. Throws `MODELS_BAD_CONFIG` for bad options and `MODELS_BAD_INPUT` for a bad batch,
 * modality list or attribution array.
 */
export async function deletionFaithfulness(
  model: MultimodalModel,
  batch: MultimodalBatch,
  options: DeletionFaithfulnessOptions,
): Promise<DeletionFaithfulness> {
  const fn = 'deletionFaithfulness';
  const { fractions, trials, silence } = checkOptions(options);
  const inputs = await checkBatchAsync(model, batch, fn);
  const tested = options.modalities ? [...options.modalities] : model.modalities.filter((m) => inputs[m] !== undefined);
  if (tested.length === 0 || new Set(tested).size !== tested.length || tested.some((m) => inputs[m] === undefined || !model.modalities.includes(m)))
    throw new ModelsError(
      'MODELS_BAD_INPUT',
      `${fn}: modalities must be distinct modalities of the model that the batch carries, got ${tested.join(', ') || 'none'}`,
    );
  const size = model.checkBatch(inputs, fn, false);

  // The intact prediction, its probability and which examples hold which modality.
  const intact = tf.tidy(() => {
    const embedded = embedChecked(model, inputs);
    const out = model.forward(inputs, embedded ? { textEmbedded: embedded } : {});
    return { probabilities: tf.softmax(out.logits), mask: out.mask };
  });
  // Which elements hold content, [batch, elements] of 0/1 per modality: deleting one already at the
  // neutral value (a black pixel, padding, a silent frame) changes nothing, so neither the top nor the
  // random deletions draw from those; otherwise random deletions on a mostly black image would be
  // near no-ops and any attribution that points at the strokes would look faithful.
  const contentTensors = tf.tidy(() =>
    tested.map((m) => {
      const x = inputs[m]!;
      if (m === 'text') return tf.notEqual(x, 0);
      if (m === 'image') return tf.any(tf.notEqual(x, 0), 3);
      return tf.any(tf.greater(tf.abs(tf.sub(x, silence)), SILENCE_TOLERANCE), 2);
    }),
  );
  const [probs, maskValues, ...content] = await Promise.all([intact.probabilities.data(), intact.mask.data(), ...contentTensors.map((t) => t.data())]).finally(
    () => tf.dispose([intact.probabilities, intact.mask, ...contentTensors]),
  );
  const k = model.numClasses;
  const predicted = new Int32Array(size);
  const probability = new Float32Array(size);
  for (let b = 0; b < size; b++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[b * k + j]! > probs[b * k + best]!) best = j;
    predicted[b] = best;
    probability[b] = probs[b * k + best]!;
  }
  const holds = (m: Modality, b: number): boolean => maskValues[b * model.modalities.length + model.modalities.indexOf(m)] !== 0;

  // Elements and attributions per modality.
  const sets: Partial<Record<Modality, ElementSets>> = {};
  const scores: Partial<Record<Modality, Float32Array>> = {};
  for (const m of tested) {
    const numElements = elementsOf(inputs[m]!, m);
    const hasContent = content[tested.indexOf(m)]!;
    const eligible = Array.from({ length: size }, (_, b) =>
      Array.from({ length: numElements }, (_, e) => e).filter((e) => hasContent[b * numElements + e] !== 0),
    );
    sets[m] = { numElements, eligible };
    const given = options.attributions?.[m];
    if (given) {
      if (given.length !== size * numElements || !given.every(Number.isFinite))
        throw new ModelsError('MODELS_BAD_INPUT', `${fn}: ${m} attributions must be ${size * numElements} finite values, got ${given.length}`);
      scores[m] = given;
    }
  }
  // The default attributions of every modality left, from one backward pass.
  const missing = tested.filter((m) => scores[m] === undefined);
  if (missing.length > 0) {
    const computed = await saliencyByModalityAsync(model, inputs, missing, predicted);
    for (const m of missing) scores[m] = computed[m]!.values;
  }
  const ranked = Object.fromEntries(tested.map((m) => [m, Array.from({ length: size }, (_, b) => ranking(scores[m]!, sets[m]!, b))])) as Record<
    Modality,
    number[][]
  >;

  // Per fraction, the top deletion and `trials` random ones (drawn fraction by fraction, trial by trial).
  const plans = fractions.map((fraction) => {
    const count = (m: Modality, b: number): number => {
      const n = sets[m]!.eligible[b]!.length;
      return n === 0 ? 0 : Math.max(1, Math.ceil(fraction * n));
    };
    const top: Deletion = Object.fromEntries(tested.map((m) => [m, ranked[m].map((order, b) => order.slice(0, count(m, b)))]));
    const random = Array.from({ length: trials }, (): Deletion =>
      Object.fromEntries(tested.map((m) => [m, sets[m]!.eligible.map((elements, b) => shuffled(options.rng, elements).slice(0, count(m, b)))])),
    );
    return { fraction, deletions: [top, ...random] };
  });
  // Every deletion of every fraction, run in as few batched passes as memory allows.
  const after = await deletedProbabilities(
    model,
    inputs,
    plans.flatMap((p) => p.deletions),
    { predicted, silence },
  );
  const perFraction = 1 + trials;
  const slot = (i: number, d: number): number => i * perFraction + d;

  const score = (probabilities: readonly Float32Array[], i: number, scored: readonly boolean[]): DeletionScore => {
    const top = probabilities[slot(i, 0)]!;
    const random = Array.from({ length: trials }, (_, r) => probabilities[slot(i, 1 + r)]!);
    const perExample = new Float64Array(size).fill(Number.NaN);
    const topDrops = new Float64Array(size);
    const randomDrops = new Float64Array(size);
    for (let b = 0; b < size; b++) {
      if (!scored[b]) continue;
      topDrops[b] = probability[b]! - top[b]!;
      let r = 0;
      for (const values of random) r += probability[b]! - values[b]!;
      randomDrops[b] = r / random.length;
      perExample[b] = topDrops[b]! - randomDrops[b]!;
    }
    return {
      fs: meanWhere(perExample, scored),
      topDrop: meanWhere(topDrops, scored),
      randomDrop: meanWhere(randomDrops, scored),
      numExamples: scored.filter(Boolean).length,
      perExample,
    };
  };
  const scoredBy = Object.fromEntries(
    tested.map((m) => [m, Array.from({ length: size }, (_, b) => holds(m, b) && sets[m]!.eligible[b]!.length > 0)]),
  ) as Record<Modality, boolean[]>;
  const scoredAny = Array.from({ length: size }, (_, b) => tested.some((m) => scoredBy[m][b]));
  const points: DeletionPoint[] = plans.map((plan, i) => ({
    fraction: plan.fraction,
    perModality: Object.fromEntries(tested.map((m) => [m, score(after.perModality[m]!, i, scoredBy[m])])),
    overall: score(after.overall, i, scoredAny),
  }));
  const average = (pick: (p: DeletionPoint) => number | undefined): number => {
    const xs = points.map(pick).filter((v): v is number => v !== undefined && !Number.isNaN(v));
    return xs.length > 0 ? xs.reduce((a, v) => a + v, 0) / xs.length : Number.NaN;
  };
  return {
    modalities: tested,
    predicted,
    probability,
    points,
    mean: {
      perModality: Object.fromEntries(tested.map((m) => [m, average((p) => p.perModality[m]?.fs)])),
      overall: average((p) => p.overall.fs),
    },
  };
}
