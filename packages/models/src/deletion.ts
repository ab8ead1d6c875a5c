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
 * union of the per-modality trial-r draws), for several k. A per-modality score re-runs only that
 * modality's encoder (the head is additive over modalities, so its share of the logits is swapped).
 * Every value is read with `await data()`, so it runs in a WebGPU tab; no tensor outlives a call.
 */
import * as tf from '@tensorflow/tfjs';
import { shuffled, type Rng } from '@chorus/fl-core';
import { LOG_MEL_SILENCE } from './audio.js';
import type { Modality } from './encoders.js';
import { ModelsError, checkInt } from './errors.js';
import { checkBatchAsync, embedChecked, saliencyAsync } from './explain.js';
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

/** Per example, the indices of its elements in descending attribution (ties by index). */
function ranking(scores: Float32Array, sets: ElementSets, example: number): number[] {
  const base = example * sets.numElements;
  return [...sets.eligible[example]!].sort((p, q) => scores[base + q]! - scores[base + p]! || p - q);
}

/** Builds the batch with `deleted[m][b]` elements of each modality set to its neutral value (call inside a tidy). */
function editedInputs(
  inputs: MultimodalBatch,
  deleted: Partial<Record<Modality, number[][]>>,
  sets: Partial<Record<Modality, ElementSets>>,
  silence: number,
): MultimodalBatch {
  const edited: MultimodalBatch = { ...inputs };
  for (const [m, perExample] of Object.entries(deleted) as [Modality, number[][]][]) {
    const x = inputs[m]!;
    const { numElements } = sets[m]!;
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

/** p(ŷ) per example [batch] for `inputs` (call inside a tidy). */
function probabilityOfPredicted(model: MultimodalModel, inputs: MultimodalBatch, oneHot: tf.Tensor): tf.Tensor {
  const embedded = embedChecked(model, inputs);
  const logits = model.forward(inputs, embedded ? { textEmbedded: embedded } : {}).logits;
  return tf.sum(tf.mul(tf.softmax(logits), oneHot), 1);
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
    const x = inputs[m]!;
    const numElements = m === 'image' ? x.shape[1]! * x.shape[2]! : x.shape[1]!;
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
    } else {
      scores[m] = (await saliencyAsync(model, inputs, m, predicted)).values;
    }
  }
  const ranked = Object.fromEntries(tested.map((m) => [m, Array.from({ length: size }, (_, b) => ranking(scores[m]!, sets[m]!, b))])) as Record<
    Modality,
    number[][]
  >;

  // Every edited forward pass, queued as [batch] probability tensors and read together.
  const oneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(predicted, 'int32'), k));
  const base = tf.tidy(() => {
    const embedded = embedChecked(model, inputs);
    const out = model.forward(inputs, embedded ? { textEmbedded: embedded } : {});
    return { logits: out.logits, shares: out.perModalityLogits };
  });
  const pending: tf.Tensor[] = [];
  const run = (deleted: Partial<Record<Modality, number[][]>>): number => {
    pending.push(tf.tidy(() => probabilityOfPredicted(model, editedInputs(inputs, deleted, sets, silence), oneHot)));
    return pending.length - 1;
  };
  // One modality edited: the head is additive over modalities (logits = β + Σ_m S_m, and that
  // modality's own logits are β + S_m), so the edited logits are the intact ones with S_m swapped —
  // exact, and only that modality's encoder runs again.
  const runModality = (m: Modality, deleted: number[][]): number => {
    const column = model.modalities.indexOf(m);
    pending.push(
      tf.tidy(() => {
        const alone: MultimodalBatch = { [m]: editedInputs(inputs, { [m]: deleted }, sets, silence)[m]! };
        if (inputs.present) alone.present = inputs.present;
        const embedded = embedChecked(model, alone);
        const own = model.forward(alone, embedded ? { textEmbedded: embedded } : {}).perModalityLogits;
        const share = (t: tf.Tensor): tf.Tensor => tf.reshape(tf.slice(t, [0, column, 0], [size, 1, k]), [size, k]);
        const logits = tf.add(tf.sub(base.logits, share(base.shares)), share(own));
        return tf.sum(tf.mul(tf.softmax(logits), oneHot), 1);
      }),
    );
    return pending.length - 1;
  };
  let plans: { fraction: number; perModality: { m: Modality; top: number; random: number[] }[]; overall: { top: number; random: number[] } }[];
  let values: Float32Array[];
  try {
    plans = fractions.map((fraction) => {
      const count = (m: Modality, b: number): number => {
        const n = sets[m]!.eligible[b]!.length;
        return n === 0 ? 0 : Math.max(1, Math.ceil(fraction * n));
      };
      const top = Object.fromEntries(tested.map((m) => [m, ranked[m].map((order, b) => order.slice(0, count(m, b)))])) as Record<Modality, number[][]>;
      const random = Array.from(
        { length: trials },
        () =>
          Object.fromEntries(tested.map((m) => [m, sets[m]!.eligible.map((elements, b) => shuffled(options.rng, elements).slice(0, count(m, b)))])) as Record<
            Modality,
            number[][]
          >,
      );
      return {
        fraction,
        perModality: tested.map((m) => ({ m, top: runModality(m, top[m]), random: random.map((r) => runModality(m, r[m])) })),
        overall: { top: run(top), random: random.map((r) => run(r)) },
      };
    });
    values = (await Promise.all(pending.map((t) => t.data()))) as Float32Array[];
  } finally {
    tf.dispose([...pending, oneHot, base.logits, base.shares]);
  }

  const score = (top: number, random: readonly number[], scored: readonly boolean[]): DeletionScore => {
    const perExample = new Float64Array(size).fill(Number.NaN);
    const topDrops = new Float64Array(size);
    const randomDrops = new Float64Array(size);
    for (let b = 0; b < size; b++) {
      if (!scored[b]) continue;
      topDrops[b] = probability[b]! - values[top]![b]!;
      let r = 0;
      for (const i of random) r += probability[b]! - values[i]![b]!;
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
  const points: DeletionPoint[] = plans.map((plan) => ({
    fraction: plan.fraction,
    perModality: Object.fromEntries(plan.perModality.map(({ m, top, random }) => [m, score(top, random, scoredBy[m])])),
    overall: score(plan.overall.top, plan.overall.random, scoredAny),
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
