/**
 * Feature encoders of FedAFD's heterogeneous clients and of its server ("FedAFD: Multimodal
 * Federated Learning via Adversarial Fusion and Distillation"): each maps one modality's input —
 * 28×28 grey images [batch, h, w, 1], caption token ids [batch, length] over the shared vocabulary
 * (embedded by the frozen `TextEmbedder`, id 0 = padding), log-mel frames [batch, frames, mels] —
 * to a local feature [batch, F]. The projection to the shared space sits in the client and server
 * models, not here.
 *
 * Architectures (names are the `arch` values specs use):
 * - image `cnn`: two 3×3 convolution + 2×2 max-pool blocks, dense ReLU;
 * - image `frozen-base`: a frozen pretrained encoder (`buildDigitsEncoder('image')` or one passed
 *   in) under a trainable dense ReLU layer;
 * - text `bag-mlp`: masked mean of the word embeddings, dense ReLU;
 * - text `conv1d`: a width-3 1-D convolution over the word embeddings (as a dense layer over
 *   three shifted copies, which trains on every backend), ReLU, masked max over positions;
 * - audio `cnn`: the image CNN over the [frames, mels] spectrogram as a one-channel image;
 * - audio `pool-mlp`: per-band mean and max over frames, two dense ReLU layers.
 */
import * as tf from '@tensorflow/tfjs';
import { PortableConv2D } from '../conv.js';
import { buildDigitsEncoder, DIGITS_BASE_SEED } from '../demo.js';
import { maskedMeanPool, type Modality, type TextEmbedder } from '../encoders.js';
import { ModelsError, checkInt } from '../errors.js';
import { layerWeights, type NamedVariable } from './weights.js';

/** Image encoder architectures. */
export const IMAGE_ENCODER_ARCHS = ['cnn', 'frozen-base'] as const;
/** Text encoder architectures. */
export const TEXT_ENCODER_ARCHS = ['bag-mlp', 'conv1d'] as const;
/** Audio encoder architectures. */
export const AUDIO_ENCODER_ARCHS = ['cnn', 'pool-mlp'] as const;

/** One encoder architecture of any modality. */
export type EncoderArch = (typeof IMAGE_ENCODER_ARCHS)[number] | (typeof TEXT_ENCODER_ARCHS)[number] | (typeof AUDIO_ENCODER_ARCHS)[number];

/** A modality's input → local feature [batch, featureDim]; owns its layers (and an owned frozen base) until disposed. */
export interface FeatureEncoder {
  readonly modality: Modality;
  readonly arch: EncoderArch;
  /** Width F of the local feature. */
  readonly featureDim: number;
  /** Trainable weights, named `<prefix>/<layer>/<weight>`. */
  readonly weights: readonly NamedVariable[];
  /** Number of frozen scalars (the frozen base's), 0 when there is none. */
  readonly frozenParameterCount: number;
  /** Local features of `input` (checked against the input format first). */
  apply(input: tf.Tensor): tf.Tensor2D;
  dispose(): void;
}

/** Input formats and sizes shared by every encoder of a model. */
export interface EncoderInputs {
  /** [height, width, channels] of images; default [28, 28, 1]. */
  imageShape?: [number, number, number];
  /** Frames and mel bands of log-mel inputs; required for audio encoders. */
  audioShape?: [number, number];
  /** Frozen word-embedding table; required for text encoders (not owned). */
  textEmbedder?: TextEmbedder;
  /** Frozen pretrained image encoder of `frozen-base` (not owned); default a fresh `buildDigitsEncoder('image')`. */
  imageBase?: tf.LayersModel;
}

/** Sizes of one encoder. */
export interface EncoderSizes {
  /** Channels of the two convolutions (`cnn`) or of the 1-D convolution (`conv1d`, first entry); default [8, 16]. */
  filters?: [number, number];
  /** Width of the dense layer(s), the local feature width F; default 64. */
  hiddenUnits?: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

const glorot = (seed: number) => tf.initializers.glorotUniform({ seed });

function dense(name: string, units: number, seed: number, activation: 'relu' | 'linear' = 'relu'): tf.layers.Layer {
  return tf.layers.dense({ name, units, activation, kernelInitializer: glorot(seed) });
}

class LayeredEncoder implements FeatureEncoder {
  readonly weights: NamedVariable[];
  readonly featureDim: number;

  constructor(
    readonly modality: Modality,
    readonly arch: EncoderArch,
    private readonly layers: tf.layers.Layer[],
    private readonly forward: (x: tf.Tensor) => tf.Tensor,
    private readonly check: (x: tf.Tensor) => void,
    example: () => tf.Tensor,
    prefix: string,
    private readonly frozen: { model: tf.LayersModel; owned: boolean } | null = null,
  ) {
    // Built once on a one-example input so the weights exist (and can be counted or set) before any training.
    this.featureDim = tf.tidy(() => this.forward(example()).shape[1]!);
    this.weights = layers.flatMap((l) => layerWeights(prefix, l));
  }

  get frozenParameterCount(): number {
    return this.frozen ? this.frozen.model.countParams() : 0;
  }

  apply(input: tf.Tensor): tf.Tensor2D {
    this.check(input);
    return tf.tidy(() => this.forward(input) as tf.Tensor2D);
  }

  dispose(): void {
    for (const l of this.layers) l.dispose();
    if (this.frozen?.owned) this.frozen.model.dispose();
  }
}

function badInput(fn: string, want: string, x: tf.Tensor): never {
  throw new ModelsError('MODELS_BAD_INPUT', `${fn}: expected ${want}, got ${x.dtype} [${x.shape.join(',')}]`);
}

function checkShape(fn: string, x: tf.Tensor, tail: readonly number[], dtype: 'float32' | 'int32'): void {
  if (x.dtype !== dtype || x.rank !== tail.length + 1 || x.shape[0] === 0 || tail.some((d, i) => x.shape[i + 1] !== d))
    badInput(fn, `${dtype} [batch, ${tail.join(', ')}]`, x);
}

function checkIds(fn: string, x: tf.Tensor): void {
  if (x.dtype !== 'int32' || x.rank !== 2 || x.shape[0] === 0 || x.shape[1] === 0) badInput(fn, 'int32 token ids [batch, length]', x);
}

/** Two 3×3 conv + pool blocks and a dense layer over [batch, h, w, c]. */
function cnn(modality: Modality, inputShape: [number, number, number], sizes: EncoderSizes, prefix: string, reshape: boolean): FeatureEncoder {
  const [f1, f2] = sizes.filters ?? [8, 16];
  checkInt('cnn', 'filters[0]', f1, 1);
  checkInt('cnn', 'filters[1]', f2, 1);
  const seed = sizes.seed ?? 0;
  const layers = [
    new PortableConv2D({ name: 'conv_1', filters: f1, kernelSize: 3, padding: 'same', activation: 'relu', seed }),
    new PortableConv2D({ name: 'conv_2', filters: f2, kernelSize: 3, padding: 'same', activation: 'relu', seed: seed + 1 }),
    dense('dense_1', checkInt('cnn', 'hiddenUnits', sizes.hiddenUnits ?? 64, 1), seed + 2),
  ] as const;
  const [h, w, c] = inputShape;
  const forward = (x: tf.Tensor): tf.Tensor => {
    let y = reshape ? tf.reshape(x, [x.shape[0]!, h, w, c]) : x;
    y = tf.maxPool(layers[0].apply(y) as tf.Tensor4D, 2, 2, 'valid');
    y = tf.maxPool(layers[1].apply(y) as tf.Tensor4D, 2, 2, 'valid');
    return layers[2].apply(tf.reshape(y, [y.shape[0]!, -1])) as tf.Tensor;
  };
  const tail = reshape ? [h, w] : [h, w, c];
  const fn = `${modality} cnn encoder`;
  return new LayeredEncoder(
    modality,
    'cnn',
    [...layers],
    forward,
    (x) => checkShape(fn, x, tail, 'float32'),
    () => tf.zeros([1, ...tail]),
    prefix,
  );
}

function frozenBase(base: tf.LayersModel | undefined, sizes: EncoderSizes, prefix: string): FeatureEncoder {
  const owned = base === undefined;
  const model = base ?? buildDigitsEncoder('image', DIGITS_BASE_SEED);
  const out = model.outputs[0]?.shape;
  if (model.outputs.length !== 1 || out?.length !== 2 || out[1] == null)
    throw new ModelsError('MODELS_BAD_BASE', 'frozen-base image encoder: the base must output [batch, d]', 'imageBase');
  const tail = model.inputs[0]!.shape.slice(1) as number[];
  const top = dense('dense_1', checkInt('frozen-base', 'hiddenUnits', sizes.hiddenUnits ?? 64, 1), sizes.seed ?? 0);
  // The base's output is a constant to the optimiser: only `dense_1` is listed as trainable.
  const forward = (x: tf.Tensor): tf.Tensor => top.apply(model.apply(x) as tf.Tensor) as tf.Tensor;
  return new LayeredEncoder(
    'image',
    'frozen-base',
    [top],
    forward,
    (x) => checkShape('image frozen-base encoder', x, tail, 'float32'),
    () => tf.zeros([1, ...tail]),
    prefix,
    { model, owned },
  );
}

function textEncoder(arch: 'bag-mlp' | 'conv1d', embedder: TextEmbedder, sizes: EncoderSizes, prefix: string): FeatureEncoder {
  const seed = sizes.seed ?? 0;
  const hidden = checkInt(arch, 'hiddenUnits', sizes.hiddenUnits ?? 64, 1);
  const fn = `text ${arch} encoder`;
  if (arch === 'bag-mlp') {
    const top = dense('dense_1', hidden, seed);
    const forward = (ids: tf.Tensor): tf.Tensor => top.apply(maskedMeanPool(embedder.embed(ids, { idsChecked: true }), ids)) as tf.Tensor;
    return new LayeredEncoder(
      'text',
      arch,
      [top],
      forward,
      (x) => checkIds(fn, x),
      () => tf.zeros([1, 3], 'int32'),
      prefix,
    );
  }
  const conv = dense('conv1d', checkInt(arch, 'filters[0]', sizes.filters?.[0] ?? hidden, 1), seed);
  const top = dense('dense_1', hidden, seed + 1);
  const forward = (ids: tf.Tensor): tf.Tensor => {
    const [batch, length] = ids.shape as [number, number];
    const mask = tf.expandDims(tf.cast(tf.notEqual(ids, 0), 'float32'), 2); // [B, L, 1]
    const embedded = tf.mul(embedder.embed(ids, { idsChecked: true }), mask);
    const padded = tf.pad(embedded, [
      [0, 0],
      [1, 1],
      [0, 0],
    ]);
    const windows = tf.concat(
      [0, 1, 2].map((s) => tf.slice(padded, [0, s, 0], [batch, length, -1])),
      2,
    ); // [B, L, 3E]
    const activated = tf.mul(conv.apply(windows) as tf.Tensor, mask); // ReLU ≥ 0, so masked positions never win the max
    return top.apply(tf.max(activated, 1)) as tf.Tensor;
  };
  return new LayeredEncoder(
    'text',
    arch,
    [conv, top],
    forward,
    (x) => checkIds(fn, x),
    () => tf.zeros([1, 3], 'int32'),
    prefix,
  );
}

function audioPool(audioShape: [number, number], sizes: EncoderSizes, prefix: string): FeatureEncoder {
  const seed = sizes.seed ?? 0;
  const hidden = checkInt('pool-mlp', 'hiddenUnits', sizes.hiddenUnits ?? 64, 1);
  const layers = [dense('dense_1', hidden, seed), dense('dense_2', hidden, seed + 1)];
  const forward = (x: tf.Tensor): tf.Tensor => layers[1]!.apply(layers[0]!.apply(tf.concat([tf.mean(x, 1), tf.max(x, 1)], 1))) as tf.Tensor;
  return new LayeredEncoder(
    'audio',
    'pool-mlp',
    layers,
    forward,
    (x) => checkShape('audio pool-mlp encoder', x, audioShape, 'float32'),
    () => tf.zeros([1, ...audioShape]),
    prefix,
  );
}

/** The architectures `modality` offers. */
export function encoderArchs(modality: Modality): readonly EncoderArch[] {
  return modality === 'image' ? IMAGE_ENCODER_ARCHS : modality === 'text' ? TEXT_ENCODER_ARCHS : AUDIO_ENCODER_ARCHS;
}

/**
 * A fresh feature encoder of `modality` and `arch`, its weights named `<prefix>/…`; throws
 * `MODELS_BAD_CONFIG` naming the field for an unknown arch or a missing input format.
 */
export function buildFeatureEncoder(
  modality: Modality,
  arch: string,
  inputs: EncoderInputs,
  sizes: EncoderSizes = {},
  prefix: string = modality,
): FeatureEncoder {
  if (!(encoderArchs(modality) as readonly string[]).includes(arch))
    throw new ModelsError(
      'MODELS_BAD_CONFIG',
      `buildFeatureEncoder: ${modality} arch must be one of ${encoderArchs(modality).join(', ')}, got ${String(arch)}`,
      'arch',
    );
  if (modality === 'image') {
    const shape = inputs.imageShape ?? [28, 28, 1];
    if (!Array.isArray(shape) || shape.length !== 3)
      throw new ModelsError('MODELS_BAD_CONFIG', 'buildFeatureEncoder: imageShape must be [height, width, channels]', 'imageShape');
    shape.forEach((d, i) => checkInt('buildFeatureEncoder', `imageShape[${i}]`, d, i === 2 ? 1 : 4));
    return arch === 'cnn' ? cnn('image', shape, sizes, prefix, false) : frozenBase(inputs.imageBase, sizes, prefix);
  }
  if (modality === 'text') {
    if (!inputs.textEmbedder) throw new ModelsError('MODELS_BAD_CONFIG', 'buildFeatureEncoder: a text encoder needs textEmbedder', 'textEmbedder');
    return textEncoder(arch as 'bag-mlp' | 'conv1d', inputs.textEmbedder, sizes, prefix);
  }
  const audioShape = inputs.audioShape;
  if (!Array.isArray(audioShape) || audioShape.length !== 2)
    throw new ModelsError('MODELS_BAD_CONFIG', 'buildFeatureEncoder: an audio encoder needs audioShape [frames, mels]', 'audioShape');
  audioShape.forEach((d, i) => checkInt('buildFeatureEncoder', `audioShape[${i}]`, d, 4));
  return arch === 'cnn' ? cnn('audio', [audioShape[0], audioShape[1], 1], sizes, prefix, true) : audioPool(audioShape, sizes, prefix);
}
