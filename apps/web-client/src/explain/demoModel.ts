/**
 * The models the explanation viewer runs in the tab: the demo task's architecture from
 * `@chorus/models` (`buildDigitsEncoder`, `DIGITS_*`), on the pretrained base encoders when the
 * origin serves them, with the adapters of one source — the coordinator's current global model,
 * this browser's last local model, or fresh ones — and where those came from, stated on the page.
 * The frozen parts (encoders, word-embedding table, log-mel front end) are loaded once into a
 * {@link ViewerBase} and shared by every model built on it.
 */
import type * as tf from '@tensorflow/tfjs';
import { globalFor, inferAdapterLayout } from '@chorus/client';
import type { Embeddings } from '@chorus/datasets';
import type { Parameters } from '@chorus/fl-core';
import type { TaskSpec } from '@chorus/protocol';
import {
  DIGITS_AUDIO_SAMPLES,
  DIGITS_CAPTION_TOKENS,
  DIGITS_LOG_MEL,
  DIGITS_NUM_CLASSES,
  LogMelFrontend,
  MODALITIES,
  MultimodalModel,
  TextEmbedder,
  buildDigitsEncoder,
  shapeFunctionGridAsync,
  type Modality,
  type ShapeFunctionGrid,
  type Vocabulary,
} from '@chorus/models';
import { WebClientError } from '../lib/errors.js';
import { DEMO_IMAGE_TARGET } from '../lib/ownData.js';

/** Samples per clip fed to the log-mel front end (shorter clips are zero-padded). */
export const AUDIO_SAMPLES = DIGITS_AUDIO_SAMPLES;
/** Sample rate the audio encoder expects. */
export const AUDIO_SAMPLE_RATE = DIGITS_LOG_MEL.sampleRate;
/** Log-mel settings of the demo task. */
export const LOG_MEL = DIGITS_LOG_MEL;
/** Tokens per text input. */
export const TEXT_TOKENS = DIGITS_CAPTION_TOKENS;
/** Image side in pixels (the demo image target, which the image encoder's input matches). */
export const IMAGE_SIDE = DEMO_IMAGE_TARGET.height;
/** Classes of the demo task. */
export const NUM_CLASSES = DIGITS_NUM_CLASSES;

/** Where a model's adapters came from. */
export type AdapterSource =
  | { readonly kind: 'global'; readonly taskId: string; readonly serverRound: number; readonly sha256: string; readonly verified: boolean }
  | { readonly kind: 'local'; readonly taskId: string; readonly serverRound: number; readonly savedAt: number }
  | { readonly kind: 'fresh'; readonly reason: string };

/** Where a model's weights came from: the frozen base (the demo's pretrained or fresh encoders, or a custom task's own) and the adapters. */
export interface Provenance {
  readonly base: 'pretrained' | 'fresh' | 'task';
  readonly adapters: AdapterSource;
}

/** The input sizes a viewer's encoders take. */
export interface ViewerInputs {
  /** Size, and a custom task's per-channel normalisation (x − mean) / std of pixels in [0, 1]. */
  readonly image: {
    readonly height: number;
    readonly width: number;
    readonly channels: 1 | 3;
    readonly mean?: readonly number[];
    readonly std?: readonly number[];
  };
  /** Token positions per text. */
  readonly textTokens: number;
  /** Samples per clip fed to the log-mel front end (shorter clips are zero-padded). */
  readonly audioSamples: number;
}

/** The demo task's inputs: 28×28 grey images, 16-token captions, one second of 16 kHz audio. */
export const DEMO_INPUTS: ViewerInputs = {
  image: { height: DEMO_IMAGE_TARGET.height, width: DEMO_IMAGE_TARGET.width, channels: 1 },
  textTokens: DIGITS_CAPTION_TOKENS,
  audioSamples: DIGITS_AUDIO_SAMPLES,
};

/** The frozen parts every viewer model shares; the caller disposes it after every model built on it. */
export interface ViewerBase {
  /** Frozen encoders by modality (text only when the word-embedding table loaded). */
  readonly encoders: Partial<Record<Modality, tf.LayersModel>>;
  readonly base: Provenance['base'];
  /** Null when the word-embedding table could not be fetched (no text encoder then). */
  readonly embeddings: Embeddings | null;
  readonly embedder: TextEmbedder | null;
  readonly logMel: LogMelFrontend;
  readonly inputs: ViewerInputs;
  /** Layers taking adapters by modality (a custom task's); the demo encoders' defaults when absent. */
  readonly targets: Partial<Record<Modality, readonly string[]>>;
  /** Class names in id order (a custom task's), or null for the demo's digits. */
  readonly classNames: readonly string[] | null;
  /** A custom task's word-vector table (its texts' tokens), or null. */
  readonly vocabulary: Vocabulary | null;
  dispose(): void;
}

/** A model ready to explain, with the front ends its inputs need. */
export interface ViewerModel {
  readonly model: MultimodalModel;
  readonly logMel: LogMelFrontend;
  readonly embeddings: Embeddings | null;
  readonly modalities: readonly Modality[];
  readonly provenance: Provenance;
  readonly inputs: ViewerInputs;
  /** A custom task's word-vector table, or null (texts then use the demo's embeddings). */
  readonly vocabulary: Vocabulary | null;
  /** A custom task's class names, or null for the demo's digits. */
  readonly classNames: readonly string[] | null;
  /**
   * The model's shape functions on the default grid: they depend on the weights only, never on the
   * sample, and the viewer never changes a model's weights, so they are computed once (on first use)
   * and shared by every explanation.
   */
  shapeGrid(): Promise<ShapeFunctionGrid>;
  /** Releases the model's own tensors (adapters, head), not the shared base. */
  dispose(): void;
}

/**
 * The shared frozen parts: `encoders` as given (e.g. from `loadDigitsBase`), or the fresh demo
 * encoders every party agrees on when null. Text joins only with an embedding table. Takes
 * ownership of `encoders`.
 */
export function createViewerBase(encoders: Partial<Record<Modality, tf.LayersModel>> | null, embeddings: Embeddings | null): ViewerBase {
  const wanted = MODALITIES.filter((m) => m !== 'text' || embeddings !== null);
  const built: Partial<Record<Modality, tf.LayersModel>> = {};
  for (const m of wanted) built[m] = encoders?.[m] ?? buildDigitsEncoder(m);
  // Encoders given for a modality the viewer cannot feed are released now, not leaked.
  for (const m of MODALITIES) if (encoders?.[m] && !wanted.includes(m)) encoders[m].dispose();
  const embedder = embeddings ? new TextEmbedder(embeddings.vectors, embeddings.dim) : null;
  const logMel = new LogMelFrontend(AUDIO_SAMPLES, LOG_MEL);
  return {
    encoders: built,
    // Pretrained only when every encoder came in: a mix would mislabel the fresh ones.
    base: encoders !== null && wanted.every((m) => encoders[m] !== undefined) ? 'pretrained' : 'fresh',
    embeddings,
    embedder,
    logMel,
    inputs: DEMO_INPUTS,
    targets: {},
    classNames: null,
    vocabulary: null,
    dispose: () => {
      for (const e of Object.values(built)) e.dispose();
      embedder?.dispose();
      logMel.dispose();
    },
  };
}

/**
 * The frozen parts of a custom task (`model.base: custom`): its own encoders (fetched and checked
 * against their SHA-256 by the caller; ownership passes here), its vocabulary, and a log-mel front
 * end with its audio settings; inputs, adapter layers and classes from its spec.
 */
export function createTaskViewerBase(spec: TaskSpec, encoders: Partial<Record<Modality, tf.LayersModel>>, vocabulary: Vocabulary | null): ViewerBase {
  const image = spec.inputs?.image;
  const audio = spec.inputs?.audio;
  const embedder = vocabulary ? new TextEmbedder(vocabulary.vectors, vocabulary.dim) : null;
  const logMel = audio
    ? new LogMelFrontend(audio.clipSamples, {
        sampleRate: audio.sampleRate,
        frameLength: audio.frameLength,
        hopLength: audio.hopLength,
        fftLength: audio.fftLength,
        numMels: audio.numMels,
      })
    : new LogMelFrontend(AUDIO_SAMPLES, LOG_MEL);
  const targets: Partial<Record<Modality, readonly string[]>> = {};
  for (const m of MODALITIES) if (spec.encoders?.[m]) targets[m] = spec.encoders[m].adapters;
  return {
    encoders: { ...encoders },
    base: 'task',
    embeddings: null,
    embedder,
    logMel,
    inputs: {
      image: image
        ? {
            height: image.height,
            width: image.width,
            channels: image.channels,
            ...(image.mean ? { mean: image.mean } : {}),
            ...(image.std ? { std: image.std } : {}),
          }
        : DEMO_INPUTS.image,
      textTokens: spec.inputs?.text?.maxTokens ?? DEMO_INPUTS.textTokens,
      audioSamples: audio?.clipSamples ?? DEMO_INPUTS.audioSamples,
    },
    targets,
    classNames: spec.classes,
    vocabulary,
    dispose: () => {
      for (const e of Object.values(encoders)) e.dispose();
      embedder?.dispose();
      logMel.dispose();
    },
  };
}

/**
 * A model on `base` holding `adapters` (global or local fl-core tensors; its modalities are those
 * the adapters and the base share, its layout read off the tensor shapes), or fresh adapters when
 * `adapters` is null. Throws `WEB_BAD_RESPONSE` (nothing left allocated) when the adapters do not fit.
 */
export function buildViewerModel(
  base: ViewerBase,
  options: { readonly adapters: Parameters | null; readonly adapterAlpha?: number; readonly source: AdapterSource; readonly seed?: number },
): ViewerModel {
  const available = MODALITIES.filter((m) => base.encoders[m] !== undefined);
  let layout: ReturnType<typeof inferAdapterLayout> | null = null;
  if (options.adapters) {
    try {
      layout = inferAdapterLayout(options.adapters);
    } catch (err) {
      throw new WebClientError('WEB_BAD_RESPONSE', `the ${options.source.kind} adapters: ${(err as Error).message}`);
    }
  }
  const modalities = layout ? layout.modalities.filter((m) => available.includes(m)) : available;
  if (modalities.length === 0)
    throw new WebClientError('WEB_BAD_RESPONSE', `the ${options.source.kind} adapters hold no modality this viewer has (${available.join(', ')})`);
  const encoders: Partial<Record<Modality, { base: tf.LayersModel; targets?: readonly string[] }>> = {};
  for (const m of modalities) encoders[m] = { base: base.encoders[m]!, ...(base.targets[m] ? { targets: base.targets[m] } : {}) };
  const model = new MultimodalModel({
    numClasses: layout?.numClasses ?? base.classNames?.length ?? NUM_CLASSES,
    encoders,
    ...(modalities.includes('text') && base.embedder ? { textEmbedder: base.embedder } : {}),
    ...(layout ? { conceptDim: layout.namConcepts, namHiddenUnits: layout.namHiddenUnits, loraRank: layout.adapterRank } : {}),
    ...(options.adapterAlpha === undefined ? {} : { loraAlpha: options.adapterAlpha }),
    seed: options.seed ?? 0,
  });
  try {
    if (options.adapters) model.setAdapterParameters(globalFor(model, options.adapters));
  } catch (err) {
    model.dispose();
    throw new WebClientError(
      'WEB_BAD_RESPONSE',
      `the ${options.source.kind} adapters do not fit the ${base.base === 'task' ? "task's" : 'demo'} model: ${(err as Error).message}`,
    );
  }
  let grid: Promise<ShapeFunctionGrid> | null = null;
  return {
    model,
    logMel: base.logMel,
    embeddings: base.embeddings,
    modalities: model.modalities,
    provenance: { base: base.base, adapters: options.source },
    inputs: base.inputs,
    vocabulary: base.vocabulary,
    classNames: base.classNames,
    shapeGrid: () => {
      // A failed read is not kept: the next explanation tries again.
      grid ??= shapeFunctionGridAsync(model).catch((err: unknown) => {
        grid = null;
        throw err;
      });
      return grid;
    },
    dispose: () => model.dispose(),
  };
}

/** One line saying which weights a model runs, for the page ("global model, round 3 (sha256 1a2b3c4d5e6f…) on the pretrained base"). */
export function describeProvenance(p: Provenance): string {
  const base =
    p.base === 'pretrained'
      ? 'on the pretrained base'
      : p.base === 'task'
        ? "on the task's own encoders (checked against their SHA-256)"
        : 'on fresh, untrained base encoders (the origin serves no pretrained weights)';
  const a = p.adapters;
  switch (a.kind) {
    case 'global':
      return `global model, round ${a.serverRound} of task ${a.taskId} (sha256 ${a.sha256.slice(0, 12)}…${a.verified ? ', verified' : ''}) ${base}`;
    case 'local':
      return `local model of this browser, trained in round ${a.serverRound} of task ${a.taskId} (saved ${new Date(a.savedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC) ${base}`;
    case 'fresh':
      return `fallback: fresh, untrained adapters ${base}, because ${a.reason}`;
  }
}
