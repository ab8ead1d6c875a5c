/**
 * FedAFD's global encoders ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and
 * Distillation"): the server's larger image, text and audio encoders, each followed by a linear
 * projection to the shared D-dimensional space (D = 256, as in the paper) and L2 normalisation,
 * so every representation exchanged in the federation is a unit vector and cosine similarity is a
 * dot product. The server trains them; clients hold a frozen copy of the ones for their
 * modalities to fuse with (GFF). Architectures: image `cnn` with [32, 64] filters, text `conv1d`
 * with 256 filters, audio `cnn` with [16, 32] filters, each with a 512-wide dense layer.
 * Weights are named `<modality>/<layer>/<weight>` (`image/projection/kernel`).
 */
import * as tf from '@tensorflow/tfjs';
import { MODALITIES, type Modality } from '../encoders.js';
import { ModelsError, checkInt } from '../errors.js';
import { buildFeatureEncoder, type EncoderInputs, type FeatureEncoder } from './encoders.js';
import { l2Normalize } from './losses.js';
import { countParameters, layerWeights, type NamedVariable } from './weights.js';

/** Width D of the shared representation space (the paper's 256). */
export const FEDAFD_DIM = 256;

/** Sizes of the global encoders. */
export interface GlobalEncoderSizes {
  /** Width of each encoder's dense layer; default 512. */
  hiddenUnits?: number;
  /** Filters of the image CNN; default [32, 64]. */
  imageFilters?: [number, number];
  /** Filters of the text 1-D convolution; default 256. */
  textFilters?: number;
  /** Filters of the audio CNN; default [16, 32]. */
  audioFilters?: [number, number];
  /** Initialiser seed; default 0 (every party building the same seed gets the same initial weights). */
  seed?: number;
}

/** Configuration of {@link GlobalEncoders}. */
export interface GlobalEncodersConfig extends EncoderInputs, GlobalEncoderSizes {
  /** Shared width D; default {@link FEDAFD_DIM}. */
  dim?: number;
  /** Modalities to build, in any order; default all three when `audioShape` is given, else image and text. */
  modalities?: readonly Modality[];
}

/** The global image / text / audio encoders with their projections to the shared space. */
export class GlobalEncoders {
  readonly dim: number;
  readonly modalities: Modality[];
  private readonly encoders = new Map<Modality, FeatureEncoder>();
  private readonly projections = new Map<Modality, tf.layers.Layer>();
  /** Every weight, by modality in `modalities` order. */
  readonly weights: NamedVariable[] = [];

  constructor(config: GlobalEncodersConfig) {
    this.dim = checkInt('GlobalEncoders', 'dim', config.dim ?? FEDAFD_DIM, 1);
    const wanted = config.modalities ?? (config.audioShape ? MODALITIES : (['image', 'text'] as const));
    for (const m of wanted)
      if (!(MODALITIES as readonly string[]).includes(m))
        throw new ModelsError('MODELS_BAD_CONFIG', `GlobalEncoders: unknown modality '${String(m)}' (known: ${MODALITIES.join(', ')})`, 'modalities');
    this.modalities = MODALITIES.filter((m) => wanted.includes(m));
    if (this.modalities.length === 0) throw new ModelsError('MODELS_BAD_CONFIG', 'GlobalEncoders: at least one modality is required', 'modalities');
    const seed = config.seed ?? 0;
    const hiddenUnits = config.hiddenUnits ?? 512;
    try {
      this.modalities.forEach((m, i) => {
        const sizes =
          m === 'image'
            ? { filters: config.imageFilters ?? ([32, 64] as [number, number]), hiddenUnits }
            : m === 'text'
              ? { filters: [config.textFilters ?? 256, 0] as [number, number], hiddenUnits }
              : { filters: config.audioFilters ?? ([16, 32] as [number, number]), hiddenUnits };
        const encoder = buildFeatureEncoder(m, m === 'text' ? 'conv1d' : 'cnn', config, { ...sizes, seed: seed + 100 * i });
        this.encoders.set(m, encoder);
        const projection = tf.layers.dense({
          name: 'projection',
          units: this.dim,
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 100 * i + 50 }),
        });
        tf.tidy(() => {
          projection.apply(tf.zeros([1, encoder.featureDim]));
        });
        this.projections.set(m, projection);
        this.weights.push(...encoder.weights, ...layerWeights(m, projection));
      });
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** Number of scalars of every encoder and projection. */
  parameterCount(): number {
    return countParameters(this.weights);
  }

  /** The weights of `modality` only. */
  modalityWeights(modality: Modality): NamedVariable[] {
    return this.weights.filter((w) => w.name.startsWith(`${modality}/`));
  }

  /** Unit-norm representations [batch, D] of `modality`'s `inputs` (token ids must have been range-checked). */
  encode(modality: Modality, inputs: tf.Tensor): tf.Tensor2D {
    const encoder = this.encoders.get(modality);
    if (!encoder) throw new ModelsError('MODELS_BAD_INPUT', `GlobalEncoders.encode: no '${modality}' encoder (have ${this.modalities.join(', ')})`);
    return tf.tidy(() => l2Normalize(this.projections.get(modality)!.apply(encoder.apply(inputs)) as tf.Tensor));
  }

  dispose(): void {
    for (const e of this.encoders.values()) e.dispose();
    for (const p of this.projections.values()) p.dispose();
  }
}
