/**
 * Runs the viewer's model on one sample and turns every explanation `@chorus/models` computes into
 * plain arrays for the panels: prediction and confidence, per-modality attribution, each NAM term's
 * contribution to the predicted class, shape-function curves of the strongest terms, gradient ×
 * input saliency of each raw input, and FedMM-X's EC and FS (Balija 2025, arXiv:2503.19564). No
 * tensor outlives the call. Every value is read with `await data()` (the `…Async` forms of
 * `@chorus/models`): the viewer may run on WebGPU, where a synchronous read can return zeros and
 * lose the device.
 */
import * as tf from '@tensorflow/tfjs';
import { MODALITIES, createRng } from '@chorus/fl-core';
import { deletionFaithfulness, explainAsync, explanationConsistency, saliencyByModalityAsync, type Modality, type MultimodalBatch } from '@chorus/models';
import { WebClientError } from '../lib/errors.js';
import type { Provenance, ViewerModel } from './demoModel.js';
import { timePhase as recordPhase } from './phases.js';
import { fitLength } from './signal.js';

/** One sample to explain; any non-empty subset of the model's modalities. */
export interface ViewerSample {
  /** Where it came from, shown above the results ("own file: 7.png", "digits test #12"). */
  readonly source: string;
  /** The image encoder's input, height × width × channels row-major (the demo's: 28×28 grey floats in [0, 1]). */
  readonly image?: Float32Array;
  /** What the image panel draws, height × width grey in [0, 1], when the input is not that already (a custom task's normalised RGB). */
  readonly imageDisplay?: Float32Array;
  /** Token ids (the viewer's `textTokens` of them, 0-padded) and the word shown for each position. */
  readonly text?: { readonly ids: Int32Array; readonly words: readonly string[] };
  /** Mono PCM in [-1, 1] at the audio encoder's rate, any length (the model sees the first `audioSamples`). */
  readonly audio?: Float32Array;
  /** True class id, when known. */
  readonly label?: number;
}

/** One NAM term's share of the decision. */
export interface TermContribution {
  readonly name: string;
  readonly modality: Modality;
  /** Concept value z_{m,i} of this sample. */
  readonly concept: number;
  /** f_{m,i}(z) for the predicted class. */
  readonly contribution: number;
}

/** A shape function sampled on a grid, for the predicted class. */
export interface ShapeCurve {
  readonly name: string;
  readonly grid: readonly number[];
  readonly values: readonly number[];
  /** Where this sample's concept value sits on the curve. */
  readonly concept: number;
}

/** Everything the viewer's panels draw. Plain data. */
export interface ExplanationView {
  readonly source: string;
  readonly provenance: Provenance;
  readonly classNames: readonly string[];
  readonly label: number | null;
  readonly predicted: number;
  readonly confidence: number;
  readonly probabilities: readonly number[];
  readonly modalities: readonly Modality[];
  readonly present: readonly boolean[];
  /** Share of |contribution to the predicted class| per modality (sums to 1 when any contributes). */
  readonly modalityAttribution: readonly number[];
  /** β for the predicted class. */
  readonly bias: number;
  /** Terms of present modalities, largest |contribution| first. */
  readonly terms: readonly TermContribution[];
  readonly shapeCurves: readonly ShapeCurve[];
  /** Grey pixels and saliency per pixel (summed over channels), height × width. */
  readonly image: { readonly width: number; readonly height: number; readonly pixels: Float32Array; readonly saliency: Float32Array } | null;
  readonly text: { readonly words: readonly string[]; readonly saliency: Float32Array } | null;
  readonly audio: {
    readonly samples: Float32Array;
    readonly sampleRate: number;
    /** Log-mel [frames × mels], row-major. */
    readonly logMel: Float32Array;
    readonly numFrames: number;
    readonly numMels: number;
    /** Saliency per frame. */
    readonly saliency: Float32Array;
  } | null;
  /** EC per pair of present modalities; empty when fewer than two are present. */
  readonly consistency: readonly { readonly a: Modality; readonly b: Modality; readonly value: number }[];
  /** FS as an input-deletion test: p(predicted) after deleting k % of each input at random (16 seeded draws) minus after deleting its top-saliency k %. */
  readonly faithfulness: number;
  /** k of {@link faithfulness}, in percent. */
  readonly faithfulnessK: number;
}

/** How many shape functions the viewer plots (the strongest terms). */
export const SHAPE_CURVES = 6;

function checkSample(viewer: ViewerModel, sample: ViewerSample): void {
  const given = MODALITIES.filter((m) => sample[m] !== undefined);
  if (given.length === 0) throw new WebClientError('WEB_BAD_SAMPLE', 'the sample has no image, text or audio');
  for (const m of given) {
    if (!viewer.modalities.includes(m))
      throw new WebClientError('WEB_BAD_SAMPLE', `the model has no ${m} encoder${m === 'text' ? ' (the word-embedding table could not be loaded)' : ''}`);
  }
  const { image, textTokens } = viewer.inputs;
  const imageSize = image.height * image.width * image.channels;
  if (sample.image && sample.image.length !== imageSize)
    throw new WebClientError(
      'WEB_BAD_SAMPLE',
      `image must hold ${image.height}×${image.width}×${image.channels} = ${imageSize} values, got ${sample.image.length}`,
    );
  if (sample.text && (sample.text.ids.length !== textTokens || sample.text.words.length !== textTokens)) {
    throw new WebClientError('WEB_BAD_SAMPLE', `text must hold ${textTokens} token positions, got ${sample.text.ids.length}`);
  }
  if (sample.text && sample.text.ids.every((id) => id === 0)) throw new WebClientError('WEB_BAD_SAMPLE', 'the text has no words');
  if (sample.audio && sample.audio.length === 0) throw new WebClientError('WEB_BAD_SAMPLE', 'the audio clip is empty');
  for (const m of given) {
    const values = m === 'text' ? null : sample[m]!;
    if (values && !values.every(Number.isFinite)) throw new WebClientError('WEB_BAD_SAMPLE', `the ${m} input holds NaN or Infinity`);
  }
}

/** Options of {@link explainSample}. */
export interface ExplainOptions {
  /** Whether to record the `chorus:<phase>` measures (see phases.ts); default true, false for the warm-up, whose phases would pass for a click's. */
  readonly timed?: boolean;
}

/** Explains `sample` with `viewer`'s model; rejects with `WEB_BAD_SAMPLE` (having computed nothing) on unusable input. */
export async function explainSample(
  viewer: ViewerModel,
  sample: ViewerSample,
  classNames: readonly string[],
  options: ExplainOptions = {},
): Promise<ExplanationView> {
  checkSample(viewer, sample);
  const timePhase: typeof recordPhase = options.timed === false ? (_, work) => work() : recordPhase;
  const { model } = viewer;
  const { image: imageShape, textTokens, audioSamples } = viewer.inputs;
  const audio = sample.audio ? fitLength(sample.audio, audioSamples) : null;
  const batch: MultimodalBatch = {};
  try {
    const logMel = await timePhase('inputs', async () => {
      if (sample.image) batch.image = tf.tensor4d(sample.image, [1, imageShape.height, imageShape.width, imageShape.channels]);
      if (sample.text) batch.text = tf.tensor2d(sample.text.ids, [1, textTokens], 'int32');
      if (audio) batch.audio = tf.tidy(() => viewer.logMel.compute(tf.tensor2d(audio, [1, audioSamples])));
      return batch.audio ? ((await batch.audio.data()) as Float32Array) : null;
    });
    const ex = await timePhase('forward', () => explainAsync(model, batch));
    const k = ex.numClasses;
    const predicted = ex.predicted[0]!;
    const present = model.modalities.map((_, m) => ex.present[m]! > 0);
    const c = ex.conceptDim;
    const terms: TermContribution[] = [];
    ex.termNames.forEach((name, t) => {
      const m = Math.floor(t / c);
      if (!present[m]) return;
      terms.push({ name, modality: model.modalities[m]!, concept: ex.concepts[t]!, contribution: ex.contributions[t * k + predicted]! });
    });
    terms.sort((p, q) => Math.abs(q.contribution) - Math.abs(p.contribution));
    const grid = await timePhase('shapes', () => viewer.shapeGrid());
    const points = grid.grid.length;
    const shapeCurves = terms.slice(0, SHAPE_CURVES).map((term) => {
      const t = grid.termNames.indexOf(term.name);
      const values = Array.from({ length: points }, (_, p) => grid.values[(t * points + p) * k + predicted]!);
      return { name: term.name, grid: Array.from(grid.grid), values, concept: term.concept };
    });
    const consistency: { a: Modality; b: Modality; value: number }[] = [];
    const live = model.modalities.filter((_, m) => present[m]);
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) consistency.push({ a: live[i]!, b: live[j]!, value: explanationConsistency(ex, live[i]!, live[j]!).mean });
    }
    // Every input's saliency from one backward pass; the faithfulness test ranks by the same values
    // (toward the same predicted class) instead of computing them again.
    const given = model.modalities.filter((m) => batch[m] !== undefined);
    const saliency = await timePhase('saliency', () => saliencyByModalityAsync(model, batch, given, ex.predicted));
    const attributions = Object.fromEntries(given.map((m) => [m, saliency[m]!.values]));
    const faithfulnessK = 10;
    const fs = await timePhase(
      'faithfulness',
      async () => (await deletionFaithfulness(model, batch, { rng: createRng(7), fractions: [faithfulnessK / 100], trials: 16, attributions })).mean.overall,
    );
    let audioView: ExplanationView['audio'] = null;
    if (audio && batch.audio && logMel) {
      const [, numFrames, numMels] = batch.audio.shape as [number, number, number];
      audioView = { samples: audio, sampleRate: viewer.logMel.config.sampleRate, logMel, numFrames, numMels, saliency: saliency.audio!.values };
    }
    const image = sample.image
      ? {
          width: imageShape.width,
          height: imageShape.height,
          pixels: sample.imageDisplay ?? sample.image,
          saliency: perPixel(saliency.image!.values, imageShape.channels),
        }
      : null;
    const text = sample.text ? { words: sample.text.words, saliency: saliency.text!.values } : null;
    return {
      source: sample.source,
      provenance: viewer.provenance,
      classNames,
      label: sample.label ?? null,
      predicted,
      confidence: ex.probabilities[predicted]!,
      probabilities: Array.from(ex.probabilities.subarray(0, k)),
      modalities: [...model.modalities],
      present,
      modalityAttribution: Array.from(ex.modalityAttribution),
      bias: ex.beta[predicted]!,
      terms,
      shapeCurves,
      image,
      text,
      audio: audioView,
      consistency,
      faithfulness: fs,
      faithfulnessK,
    };
  } finally {
    tf.dispose([batch.image, batch.text, batch.audio].filter((t): t is tf.Tensor => t !== undefined));
  }
}

/** Saliency per pixel: the sum over each pixel's `channels` values (channels last). */
export function perPixel(values: Float32Array, channels: number): Float32Array {
  if (channels === 1) return values;
  const out = new Float32Array(values.length / channels);
  for (let i = 0; i < out.length; i++) for (let c = 0; c < channels; c++) out[i]! += values[i * channels + c]!;
  return out;
}
