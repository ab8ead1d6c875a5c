/**
 * How the runtime gets a model for a round. The frozen base encoders are loaded once per factory
 * (and may be shared by several in-process clients); each round builds a fresh MultimodalModel on
 * them — its LoRA copies, concept projections and NAM head take the global weights — and disposes
 * it afterwards, so no optimiser state or tensor outlives the round.
 *
 * The adapter layout (head, rank, concepts, hidden width, classes) is read off the global model's
 * tensor names and shapes; the LoRA scale α cannot be, so the round config carries the task's α
 * into the request; the base itself must match the task file.
 */
import * as tf from '@tensorflow/tfjs';
import { groupOf } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import {
  DIGITS_AUDIO_SAMPLES,
  DIGITS_LOG_MEL,
  LogMelFrontend,
  MODALITIES,
  MultimodalModel,
  TextEmbedder,
  buildDigitsEncoder,
  frameCount,
} from '@chorus/models';
import type { EncoderSpec, Modality, ModelHead } from '@chorus/models';
import { ClientError } from './errors.js';

/** What the global model's shapes say about the adapters. */
export interface AdapterLayout {
  /** Modality groups the global model holds, in the models package's order. */
  readonly modalities: Modality[];
  readonly numClasses: number;
  readonly adapterRank: number;
  readonly namConcepts: number;
  /** Hidden width of the NAM shape functions; 0 with the linear head, which has none. */
  readonly namHiddenUnits: number;
  /** 'nam', or 'linear' when the global model holds `fusion/linear/bias` instead of `fusion/nam/beta`. */
  readonly head: ModelHead;
}

/** Reads the layout off global tensors named as MultimodalModel names them; throws `CLIENT_MODEL_MISMATCH`. */
export function inferAdapterLayout(global: Parameters): AdapterLayout {
  const byName = new Map(global.map((t) => [t.name, t]));
  const groups = new Set(global.map((t) => groupOf(t.name)));
  const modalities = MODALITIES.filter((m) => groups.has(m));
  const head: ModelHead = byName.has('fusion/linear/bias') ? 'linear' : 'nam';
  const biasName = head === 'linear' ? 'fusion/linear/bias' : 'fusion/nam/beta';
  const beta = byName.get(biasName);
  const mismatch = (why: string): ClientError => new ClientError('CLIENT_MODEL_MISMATCH', `global model: ${why}`);
  if (modalities.length === 0) throw mismatch('holds no modality group');
  if (!beta || beta.shape.length !== 1) throw mismatch(`has no '${biasName}' [K]`);
  if (head === 'linear' && byName.has('fusion/nam/beta')) throw mismatch('holds both a NAM and a linear head');
  const first = modalities[0]!;
  const concept = byName.get(`${first}/concept/kernel`);
  const loraA = global.find((t) => groupOf(t.name) === first && t.name.endsWith('/lora_a'));
  if (!concept || concept.shape.length !== 2) throw mismatch(`has no '${first}/concept/kernel' [d, c]`);
  if (!loraA || loraA.shape.length !== 2) throw mismatch(`has no LoRA factor in group '${first}'`);
  let namHiddenUnits = 0;
  if (head === 'nam') {
    const w1 = byName.get(`${first}/nam/w1`);
    if (!w1 || w1.shape.length !== 2) throw mismatch(`has no '${first}/nam/w1' [c, h]`);
    namHiddenUnits = w1.shape[1]!;
  }
  return { modalities, numClasses: beta.shape[0]!, adapterRank: loraA.shape[0]!, namConcepts: concept.shape[1]!, namHiddenUnits, head };
}

/** What a round asks a factory for; `head` defaults to 'nam'. */
export interface ModelRequest extends Omit<AdapterLayout, 'head'> {
  readonly head?: ModelHead;
  /** LoRA α (scale α / rank), the task's as the round config carries it; absent: the factory's own default. */
  readonly adapterAlpha?: number;
  readonly learningRate: number;
  readonly seed: number;
}

/** Builds a round's model; the caller disposes it. The factory's owner disposes the factory. */
export interface ModelFactory {
  /** Modalities this factory can build encoders for. */
  readonly modalities: readonly Modality[];
  create(request: ModelRequest): Promise<MultimodalModel>;
  dispose(): void;
}

/** Checks that every parameter of `model` is in `global` with the same shape; returns those global tensors. */
export function globalFor(model: MultimodalModel, global: Parameters): Parameters {
  const byName = new Map(global.map((t) => [t.name, t]));
  // Shapes only: reading the values synchronously would stall (and on WebGPU, break) the tab.
  const local = model.adapterShapes();
  return local.map((t) => {
    const g = byName.get(t.name);
    if (!g) throw new ClientError('CLIENT_MODEL_MISMATCH', `the global model lacks '${t.name}'`);
    if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) {
      throw new ClientError('CLIENT_MODEL_MISMATCH', `'${t.name}' is [${g.shape.join(',')}] in the global model, [${t.shape.join(',')}] here`);
    }
    return g;
  });
}

// The demo digits model's architecture lives in packages/models (demo.ts); re-exported for callers
// of this package.
export {
  DIGITS_AUDIO_SAMPLES,
  DIGITS_BASE,
  DIGITS_BASE_SEED,
  DIGITS_CAPTION_TOKENS,
  DIGITS_EMBEDDING_DIM,
  DIGITS_LOG_MEL,
  DIGITS_NUM_CLASSES,
  buildDigitsEncoder,
} from '@chorus/models';
/** LoRA α of the demo task, and of a request that names none to a factory given none. */
export const DIGITS_ADAPTER_ALPHA = 8;

/** Sources of the digits factory's frozen parts. */
export interface DigitsFactoryOptions {
  /** A pretrained base encoder, or null to build the fresh one every party agrees on. */
  readonly loadBase?: (modality: Modality) => Promise<tf.LayersModel | null>;
  /** The word-embedding table (needed only for text). */
  readonly loadEmbeddings?: () => Promise<{ readonly vectors: Float32Array; readonly dim: number }>;
  /** LoRA α of requests that name none; default {@link DIGITS_ADAPTER_ALPHA}. A request's own α wins. */
  readonly adapterAlpha?: number;
}

function checkAlpha(adapterAlpha: number, where: string): number {
  if (!(Number.isFinite(adapterAlpha) && adapterAlpha > 0))
    throw new ClientError('CLIENT_BAD_CONFIG', `${where}: adapterAlpha must be a finite number > 0, got ${adapterAlpha}`);
  return adapterAlpha;
}

/** A factory for the demo digits model; bases and the embedding table load on first use and are shared. */
export function createDigitsModelFactory(options: DigitsFactoryOptions = {}): ModelFactory {
  const defaultAlpha = checkAlpha(options.adapterAlpha ?? DIGITS_ADAPTER_ALPHA, 'createDigitsModelFactory');
  const bases = new Map<Modality, Promise<tf.LayersModel>>();
  let embedder: Promise<TextEmbedder> | null = null;
  let disposed = false;
  const base = (m: Modality): Promise<tf.LayersModel> => {
    let p = bases.get(m);
    if (!p) {
      p = (async () => (options.loadBase ? await options.loadBase(m) : null) ?? buildDigitsEncoder(m))();
      bases.set(m, p);
    }
    return p;
  };
  const textEmbedder = (): Promise<TextEmbedder> => {
    if (!options.loadEmbeddings) return Promise.reject(new ClientError('CLIENT_BAD_CONFIG', 'the digits model needs loadEmbeddings for text'));
    embedder ??= options.loadEmbeddings().then((e) => new TextEmbedder(e.vectors, e.dim));
    return embedder;
  };
  return {
    modalities: options.loadEmbeddings ? ['image', 'text', 'audio'] : ['image', 'audio'],
    async create(request) {
      if (disposed) throw new ClientError('CLIENT_CLOSED', 'the model factory was disposed');
      // Checked before any base loads, so a bad request builds nothing.
      const adapterAlpha = checkAlpha(request.adapterAlpha ?? defaultAlpha, 'ModelFactory.create');
      const encoders: Partial<Record<Modality, EncoderSpec>> = {};
      for (const m of request.modalities) encoders[m] = { base: await base(m) };
      return modelForRequest(request, { encoders, ...(request.modalities.includes('text') ? { textEmbedder: await textEmbedder() } : {}), adapterAlpha });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      disposeLoaded([...bases.values(), embedder]);
    },
  };
}

/** A round's model for `request` on the factory's frozen parts (encoders with their adapter layers, the word-embedding table) and LoRA α. */
export function modelForRequest(
  request: ModelRequest,
  parts: { readonly encoders: Partial<Record<Modality, EncoderSpec>>; readonly textEmbedder?: TextEmbedder; readonly adapterAlpha: number },
): MultimodalModel {
  return new MultimodalModel({
    numClasses: request.numClasses,
    encoders: parts.encoders,
    ...(parts.textEmbedder ? { textEmbedder: parts.textEmbedder } : {}),
    conceptDim: request.namConcepts,
    head: request.head ?? 'nam',
    // The linear head has no shape functions, so its layout carries no hidden width.
    ...(request.head === 'linear' ? {} : { namHiddenUnits: request.namHiddenUnits }),
    loraRank: request.adapterRank,
    loraAlpha: parts.adapterAlpha,
    learningRate: request.learningRate,
    seed: request.seed,
  });
}

/** Disposes what each load resolves to, once it has; a failed load holds nothing to release. */
export function disposeLoaded(loads: Iterable<Promise<{ dispose(): void }> | null | undefined>): void {
  for (const p of loads)
    void p?.then(
      (loaded) => loaded.dispose(),
      () => undefined,
    );
}

/** Log-mel features [n, frames, mels] of int16 clips, cropped or zero-padded to 1 s (the demo's rule), as host data. */
export async function digitsLogMel(clips: readonly Int16Array[], chunk = 64): Promise<{ values: Float32Array; shape: number[] }> {
  const frontend = new LogMelFrontend(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL);
  const frames = frameCount(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL.frameLength, DIGITS_LOG_MEL.hopLength);
  const rowSize = frames * DIGITS_LOG_MEL.numMels;
  const out = new Float32Array(clips.length * rowSize);
  try {
    for (let start = 0; start < clips.length; start += chunk) {
      const part = clips.slice(start, start + chunk);
      const pcm = new Float32Array(part.length * DIGITS_AUDIO_SAMPLES);
      part.forEach((clip, i) => {
        const len = Math.min(clip.length, DIGITS_AUDIO_SAMPLES);
        for (let j = 0; j < len; j++) pcm[i * DIGITS_AUDIO_SAMPLES + j] = clip[j]! / 32768;
      });
      const input = tf.tensor2d(pcm, [part.length, DIGITS_AUDIO_SAMPLES]);
      const features = frontend.compute(input);
      input.dispose();
      out.set(await features.data(), start * rowSize);
      features.dispose();
    }
  } finally {
    frontend.dispose();
  }
  return { values: out, shape: [clips.length, frames, DIGITS_LOG_MEL.numMels] };
}
