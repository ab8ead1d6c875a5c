/**
 * FedAFD's bi-level adversarial alignment, BAA (Eq. 1–2 of "FedAFD: Multimodal Federated Learning
 * via Adversarial Fusion and Distillation"; the losses and their reconstruction are in losses.ts).
 * Each client holds two discriminators over public-data representations [batch, D]: the
 * intra-modal one tells the client's representation z^m of modality m from the global g^m, the
 * cross-modal one tells z^m from the global representation of the partner modality g^{m'} (text
 * for an image feature, and so on). Both output the logit of "this feature is the server's".
 *
 * The paper's appendix A.2.1 (the discriminator's architecture) is not in the text we have; the
 * text says only that it takes a feature vector and outputs a scalar probability. We use the usual
 * domain-adversarial MLP: D → h → h → 1 with LeakyReLU(0.2) between, h = 128 by default.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt, checkPositive } from '../errors.js';
import { discriminatorLoss, encoderAdversarialLoss } from './losses.js';
import { countParameters, engineVariables, layerWeights, type NamedVariable } from './weights.js';

/** Slope of the discriminators' LeakyReLU for negative inputs. */
export const BAA_LEAKY_SLOPE = 0.2;

/** Sizes of {@link BaaDiscriminators}. */
export interface BaaDiscriminatorsConfig {
  /** Width D of the representations. */
  dim: number;
  /** Width h of both hidden layers; default 128. */
  hiddenUnits?: number;
  /** Adam learning rate of the discriminator update; default 1e-3. */
  learningRate?: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

/** Representations of one public batch seen by BAA, one [batch, D] tensor per modality the client holds. */
export interface BaaInputs {
  /** The client's own representations z^m. */
  local: readonly tf.Tensor[];
  /** The global representations of the same modality, g^m, in `local`'s order. */
  intraGlobal: readonly tf.Tensor[];
  /** The global representations of each one's partner modality, g^{m'}, in `local`'s order. */
  crossGlobal: readonly tf.Tensor[];
}

/** The two discriminators of one client, with their own optimiser. */
export class BaaDiscriminators {
  readonly dim: number;
  readonly hiddenUnits: number;
  private readonly layers: Record<'intra' | 'cross', tf.layers.Layer[]>;
  private readonly optimizer: tf.Optimizer;
  /** Weights named `baa/intra/dense_1/kernel` …, intra first. */
  readonly weights: NamedVariable[];

  constructor(config: BaaDiscriminatorsConfig) {
    this.dim = checkInt('BaaDiscriminators', 'dim', config.dim, 1);
    this.hiddenUnits = checkInt('BaaDiscriminators', 'hiddenUnits', config.hiddenUnits ?? 128, 1);
    const learningRate = checkPositive('BaaDiscriminators', 'learningRate', config.learningRate ?? 1e-3);
    const seed = config.seed ?? 0;
    const make = (offset: number): tf.layers.Layer[] =>
      [this.hiddenUnits, this.hiddenUnits, 1].map((units, i) =>
        tf.layers.dense({ name: `dense_${i + 1}`, units, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + offset + i }) }),
      );
    this.layers = { intra: make(0), cross: make(10) };
    tf.tidy(() => {
      this.logits('intra', tf.zeros([1, this.dim]));
      this.logits('cross', tf.zeros([1, this.dim]));
    });
    this.weights = (['intra', 'cross'] as const).flatMap((k) => this.layers[k].flatMap((l) => layerWeights(`baa/${k}`, l)));
    this.optimizer = tf.train.adam(learningRate);
  }

  /** Number of scalars in both discriminators. */
  parameterCount(): number {
    return countParameters(this.weights);
  }

  /** Logits [batch, 1] of `which` discriminator on features [batch, D]. */
  logits(which: 'intra' | 'cross', x: tf.Tensor): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.dim)
      throw new ModelsError('MODELS_BAD_INPUT', `BaaDiscriminators.logits: expected [batch, ${this.dim}], got [${x.shape.join(',')}]`);
    return tf.tidy(() => {
      const [a, b, c] = this.layers[which] as [tf.layers.Layer, tf.layers.Layer, tf.layers.Layer];
      const h1 = tf.leakyRelu(a.apply(x) as tf.Tensor, BAA_LEAKY_SLOPE);
      const h2 = tf.leakyRelu(b.apply(h1) as tf.Tensor, BAA_LEAKY_SLOPE);
      return c.apply(h2) as tf.Tensor2D;
    });
  }

  private checkInputs(fn: string, inputs: BaaInputs): void {
    const n = inputs.local.length;
    if (n === 0 || inputs.intraGlobal.length !== n || inputs.crossGlobal.length !== n)
      throw new ModelsError(
        'MODELS_BAD_INPUT',
        `${fn}: expected as many intra and cross global tensors as local ones (≥ 1), got ${n}, ${inputs.intraGlobal.length}, ${inputs.crossGlobal.length}`,
      );
  }

  /** −L_adv of Eq. 2 (the sum of both discriminators' cross-entropies), which the discriminators minimise. */
  discriminatorLoss(inputs: BaaInputs): tf.Scalar {
    this.checkInputs('BaaDiscriminators.discriminatorLoss', inputs);
    return tf.tidy(() => {
      const local = tf.concat([...inputs.local], 0);
      const intra = discriminatorLoss(this.logits('intra', tf.concat([...inputs.intraGlobal], 0)), this.logits('intra', local));
      const cross = discriminatorLoss(this.logits('cross', tf.concat([...inputs.crossGlobal], 0)), this.logits('cross', local));
      return tf.add(intra, cross) as tf.Scalar;
    });
  }

  /** The encoder's part of L_adv (Eq. 2): the sum over both discriminators of mean log(1 − D(z)); gradients flow into `local`. */
  encoderLoss(local: readonly tf.Tensor[]): tf.Scalar {
    if (local.length === 0) throw new ModelsError('MODELS_BAD_INPUT', 'BaaDiscriminators.encoderLoss: no local representations');
    return tf.tidy(() => {
      const z = tf.concat([...local], 0);
      return tf.add(encoderAdversarialLoss(this.logits('intra', z)), encoderAdversarialLoss(this.logits('cross', z))) as tf.Scalar;
    });
  }

  /** One Adam step of both discriminators on {@link discriminatorLoss} (the inputs are constants); returns the loss before the step. */
  async trainStep(inputs: BaaInputs): Promise<number> {
    this.checkInputs('BaaDiscriminators.trainStep', inputs);
    const loss = this.optimizer.minimize(() => this.discriminatorLoss(inputs), true, engineVariables(this.weights))!;
    const value = (await loss.data())[0]!;
    loss.dispose();
    return value;
  }

  dispose(): void {
    for (const l of [...this.layers.intra, ...this.layers.cross]) l.dispose();
    this.optimizer.dispose();
  }
}
