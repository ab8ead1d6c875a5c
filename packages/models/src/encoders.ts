/**
 * Base encoders, each a chain-shaped `tf.LayersModel` mapping one modality's features to a
 * d-dimensional embedding, plus the frozen text front end (tokenizer, embedding table, masked mean
 * pooling). Layer names are fixed (`conv_1`, `pointwise`, `dense_1`, `embedding`, …) because
 * adapter parameter names (`image/pointwise/lora_a`) are built from them and must agree across
 * clients. `DEFAULT_LORA_TARGETS` lists the Dense and 1×1 layers that take adapters; they sit at
 * the top of each encoder so back-propagation never has to enter the convolution stack. The
 * convolutions are {@link PortableConv2D} (a Conv2D whose gradients run on the wasm backend too), so
 * the encoders can be pretrained or fully fine-tuned wherever they run.
 */
import * as tf from '@tensorflow/tfjs';
import { MODALITIES } from '@chorus/fl-core';
import type { Modality } from '@chorus/fl-core';
import { PortableConv2D } from './conv.js';
import { ModelsError, checkInt } from './errors.js';

// Modalities a multimodal model can hold, in the order the NAM head stacks them: fl-core's list,
// re-exported for the model code that reads it from here.
export { MODALITIES };
export type { Modality };

/** Layers that take LoRA adapters in the encoders built here. */
export const DEFAULT_LORA_TARGETS: Readonly<Record<Modality, readonly string[]>> = {
  image: ['pointwise', 'embedding'],
  text: ['dense_1', 'embedding'],
  audio: ['pointwise', 'embedding'],
};

/** Sizes of {@link buildImageEncoder}. */
export interface ImageEncoderOptions {
  /** [height, width, channels]; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  /** Channels of the two 3×3 convolutions; default [32, 64]. */
  filters?: [number, number];
  /** Channels of the 1×1 convolution after them; default 64. */
  pointwiseFilters?: number;
  /** Width of the hidden dense layer; default 256. */
  hiddenUnits?: number;
  /** Embedding size d; default 128. */
  embeddingDim?: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

/** Sizes of {@link buildTextEncoder} (its input is a pooled word embedding). */
export interface TextEncoderOptions {
  /** Width of the pooled word embedding; default 100 (GloVe). */
  inputDim?: number;
  /** Width of the hidden dense layer; default 256. */
  hiddenUnits?: number;
  /** Embedding size d; default 128. */
  embeddingDim?: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

/** Sizes of {@link buildAudioEncoder} (its input is a [frames, mels] log-mel spectrogram). */
export interface AudioEncoderOptions {
  /** Frames of the log-mel input. */
  numFrames: number;
  /** Mel bands of the log-mel input; default 40. */
  numMels?: number;
  /** Channels of the two 3×3 convolutions; default [16, 32]. */
  filters?: [number, number];
  /** Channels of the 1×1 convolution; default 32. */
  pointwiseFilters?: number;
  /** Width of the hidden dense layer; default 256. */
  hiddenUnits?: number;
  /** Embedding size d; default 128. */
  embeddingDim?: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

const glorot = (seed: number) => tf.initializers.glorotUniform({ seed });

/** Compact CNN for small single-channel images: two 3×3 conv + pool blocks, a 1×1 conv, dense, embedding. */
export function buildImageEncoder(options: ImageEncoderOptions = {}): tf.Sequential {
  const [h, w, c] = options.inputShape ?? [28, 28, 1];
  for (const [field, v] of [
    ['height', h],
    ['width', w],
    ['channels', c],
  ] as const)
    checkInt('buildImageEncoder', field, v, field === 'channels' ? 1 : 4);
  const [f1, f2] = options.filters ?? [32, 64];
  const seed = options.seed ?? 0;
  const model = tf.sequential({ name: 'image_encoder' });
  model.add(new PortableConv2D({ name: 'conv_1', inputShape: [h, w, c], filters: f1, kernelSize: 3, padding: 'same', activation: 'relu', seed }));
  model.add(tf.layers.maxPooling2d({ name: 'pool_1', poolSize: 2 }));
  model.add(new PortableConv2D({ name: 'conv_2', filters: f2, kernelSize: 3, padding: 'same', activation: 'relu', seed: seed + 1 }));
  model.add(tf.layers.maxPooling2d({ name: 'pool_2', poolSize: 2 }));
  model.add(new PortableConv2D({ name: 'pointwise', filters: options.pointwiseFilters ?? 64, kernelSize: 1, activation: 'relu', seed: seed + 2 }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ name: 'dense_1', units: options.hiddenUnits ?? 256, activation: 'relu', kernelInitializer: glorot(seed + 3) }));
  model.add(tf.layers.dense({ name: 'embedding', units: options.embeddingDim ?? 128, activation: 'relu', kernelInitializer: glorot(seed + 4) }));
  return model;
}

/** Two dense layers from a pooled word embedding to the d-dimensional text embedding. */
export function buildTextEncoder(options: TextEncoderOptions = {}): tf.Sequential {
  const inputDim = checkInt('buildTextEncoder', 'inputDim', options.inputDim ?? 100, 1);
  const seed = options.seed ?? 0;
  const model = tf.sequential({ name: 'text_encoder' });
  model.add(
    tf.layers.dense({ name: 'dense_1', inputShape: [inputDim], units: options.hiddenUnits ?? 256, activation: 'relu', kernelInitializer: glorot(seed) }),
  );
  model.add(tf.layers.dense({ name: 'embedding', units: options.embeddingDim ?? 128, activation: 'relu', kernelInitializer: glorot(seed + 1) }));
  return model;
}

/** Small CNN over a [frames, mels] log-mel spectrogram, same block structure as the image encoder. */
export function buildAudioEncoder(options: AudioEncoderOptions): tf.Sequential {
  const numFrames = checkInt('buildAudioEncoder', 'numFrames', options.numFrames, 4);
  const numMels = checkInt('buildAudioEncoder', 'numMels', options.numMels ?? 40, 4);
  const [f1, f2] = options.filters ?? [16, 32];
  const seed = options.seed ?? 0;
  const model = tf.sequential({ name: 'audio_encoder' });
  model.add(tf.layers.reshape({ name: 'channel', inputShape: [numFrames, numMels], targetShape: [numFrames, numMels, 1] }));
  model.add(new PortableConv2D({ name: 'conv_1', filters: f1, kernelSize: 3, padding: 'same', activation: 'relu', seed }));
  model.add(tf.layers.maxPooling2d({ name: 'pool_1', poolSize: 2 }));
  model.add(new PortableConv2D({ name: 'conv_2', filters: f2, kernelSize: 3, padding: 'same', activation: 'relu', seed: seed + 1 }));
  model.add(tf.layers.maxPooling2d({ name: 'pool_2', poolSize: 2 }));
  model.add(new PortableConv2D({ name: 'pointwise', filters: options.pointwiseFilters ?? 32, kernelSize: 1, activation: 'relu', seed: seed + 2 }));
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ name: 'dense_1', units: options.hiddenUnits ?? 256, activation: 'relu', kernelInitializer: glorot(seed + 3) }));
  model.add(tf.layers.dense({ name: 'embedding', units: options.embeddingDim ?? 128, activation: 'relu', kernelInitializer: glorot(seed + 4) }));
  return model;
}

/** Turns text into token ids; id 0 is padding and never produced for a real token. */
export interface Tokenizer {
  /** Token ids of `text`, truncated or right-padded with 0 to exactly `maxLength`. */
  encode(text: string, maxLength: number): Int32Array;
}

/** Lower-cases, splits on anything that is not a letter, digit or apostrophe, and looks words up in a vocabulary. */
export class WordTokenizer implements Tokenizer {
  private readonly ids: Map<string, number>;

  /**
   * @param vocabulary word of each id; index 0 is the padding slot and is never matched.
   * @param unknownId id for words missing from the vocabulary, or null to skip them.
   */
  constructor(
    vocabulary: readonly string[],
    private readonly unknownId: number | null = null,
  ) {
    if (unknownId !== null && (!Number.isInteger(unknownId) || unknownId < 1 || unknownId >= vocabulary.length)) {
      throw new ModelsError('MODELS_BAD_CONFIG', `WordTokenizer: unknownId must be a vocabulary id ≥ 1, got ${unknownId}`);
    }
    this.ids = new Map();
    for (let i = 1; i < vocabulary.length; i++) if (!this.ids.has(vocabulary[i]!)) this.ids.set(vocabulary[i]!, i);
  }

  encode(text: string, maxLength: number): Int32Array {
    checkInt('WordTokenizer.encode', 'maxLength', maxLength, 1);
    const out = new Int32Array(maxLength);
    let n = 0;
    for (const word of text.toLowerCase().split(/[^\p{L}\p{N}']+/u)) {
      if (n === maxLength) break;
      if (word === '') continue;
      const id = this.ids.get(word) ?? this.unknownId;
      if (id !== null) out[n++] = id;
    }
    return out;
  }
}

/** A frozen word-embedding table (row 0 = padding) with masked mean pooling; owns one tensor until disposed. */
export class TextEmbedder {
  readonly vocabSize: number;
  readonly dim: number;
  private readonly table: tf.Tensor2D;

  /** `values` holds vocabSize × dim floats row-major (e.g. the GloVe table from @chorus/datasets). */
  constructor(values: Float32Array, dim: number) {
    checkInt('TextEmbedder', 'dim', dim, 1);
    if (values.length === 0 || values.length % dim !== 0) {
      throw new ModelsError('MODELS_BAD_CONFIG', `TextEmbedder: table of ${values.length} values is not a whole number of ${dim}-wide rows`);
    }
    this.vocabSize = values.length / dim;
    this.dim = dim;
    this.table = tf.tensor2d(values, [this.vocabSize, dim]);
  }

  /**
   * Embeddings of int32 ids [batch, length] → [batch, length, dim]; ids outside the table raise
   * `MODELS_BAD_INPUT`, unless `idsChecked` says the caller has checked them (asynchronously).
   */
  embed(ids: tf.Tensor, options: { idsChecked?: boolean } = {}): tf.Tensor3D {
    if (ids.rank !== 2 || ids.dtype !== 'int32')
      throw new ModelsError('MODELS_BAD_INPUT', `TextEmbedder.embed: expected int32 ids [batch, length], got ${ids.dtype} [${ids.shape.join(',')}]`);
    if (options.idsChecked) return tf.gather(this.table, ids) as unknown as tf.Tensor3D;
    const range = tf.tidy(() => [tf.min(ids).dataSync()[0]!, tf.max(ids).dataSync()[0]!]);
    if (ids.size > 0 && (range[0]! < 0 || range[1]! >= this.vocabSize)) {
      throw new ModelsError('MODELS_BAD_INPUT', `TextEmbedder.embed: ids must lie in [0, ${this.vocabSize}), got [${range[0]}, ${range[1]}]`);
    }
    return tf.gather(this.table, ids) as unknown as tf.Tensor3D;
  }

  /** Releases the table. */
  dispose(): void {
    this.table.dispose();
  }
}

/** Mean of the embeddings of non-padding tokens ([batch, length, dim] → [batch, dim]); all-padding rows give zeros. */
export function maskedMeanPool(embedded: tf.Tensor3D, ids: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const mask = tf.cast(tf.notEqual(ids, 0), 'float32');
    const summed = tf.sum(tf.mul(embedded, tf.expandDims(mask, 2)), 1);
    const count = tf.maximum(tf.sum(mask, 1, true), 1);
    return tf.div(summed, count) as tf.Tensor2D;
  });
}
