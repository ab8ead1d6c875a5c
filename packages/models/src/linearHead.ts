/**
 * Plain linear head over the concatenated concept vectors — the "without NAM" ablation of FedMM-X
 * (Balija 2025, arXiv:2503.19564): logits = β + W·[z_1; …; z_M].
 *
 * W is kept as one [c, K] block per modality (W = [W_1; …; W_M] stacked by rows), which is the same
 * linear map as one [M·c, K] kernel but lets each block be named and aggregated with its modality.
 * The same presence mask as the NAM head zeroes an absent modality's terms. Because the map is
 * linear, term F's contribution z_F·W_F is exact and the head exposes the NAM head's interface
 * (`terms`, `logits`, `beta`, contributions [batch, M·c, K]), so explanations work unchanged: the
 * "shape functions" are straight lines through the origin.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt } from './errors.js';
import { headInputs } from './headInputs.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Shape = (number | null)[];

/** Arguments of {@link LinearHead}. */
export interface LinearHeadArgs extends LayerArgs {
  /** Names of the modalities, in input order (also the order of the presence mask's columns). */
  modalities: string[];
  /** Concepts per modality c. */
  conceptDim: number;
  /** Number of classes K. */
  numClasses: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

/** The linear head layer: inputs [z_1 … z_M ([batch, c] each), mask [batch, M]] → contributions [batch, M·c, K]. */
export class LinearHead extends tf.layers.Layer {
  static readonly className = 'LinearHead';
  readonly modalities: string[];
  readonly conceptDim: number;
  readonly numClasses: number;
  readonly seed: number;
  private readonly kernels = new Map<string, tf.LayerVariable>();
  private betaWeight!: tf.LayerVariable;

  constructor(args: LinearHeadArgs) {
    super(args);
    if (!Array.isArray(args.modalities) || args.modalities.length === 0 || new Set(args.modalities).size !== args.modalities.length) {
      throw new ModelsError('MODELS_BAD_CONFIG', `LinearHead: modalities must be a non-empty list of distinct names, got ${JSON.stringify(args.modalities)}`);
    }
    this.modalities = [...args.modalities];
    this.conceptDim = checkInt('LinearHead', 'conceptDim', args.conceptDim, 1);
    this.numClasses = checkInt('LinearHead', 'numClasses', args.numClasses, 2);
    this.seed = args.seed ?? 0;
  }

  /** Total number of terms F = M·c. */
  get numTerms(): number {
    return this.modalities.length * this.conceptDim;
  }

  override build(): void {
    // Glorot over the whole [M·c, K] map, so the head starts at the scale a single Dense layer would.
    const limit = Math.sqrt(6 / (this.numTerms + this.numClasses));
    this.modalities.forEach((m, i) => {
      this.kernels.set(
        m,
        this.addWeight(
          `${m}/kernel`,
          [this.conceptDim, this.numClasses],
          'float32',
          tf.initializers.randomUniform({ minval: -limit, maxval: limit, seed: this.seed + i }),
        ),
      );
    });
    this.betaWeight = this.addWeight('beta', [this.numClasses], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  /** One modality's block W_m [c, K] of the kernel. */
  modalityKernel(modality: string): tf.LayerVariable {
    const kernel = this.kernels.get(modality);
    if (!kernel) throw new ModelsError('MODELS_BAD_INPUT', `LinearHead.modalityKernel: no modality '${modality}' (have ${this.modalities.join(', ')})`);
    return kernel;
  }

  /** The bias β [K]. */
  get beta(): tf.LayerVariable {
    return this.betaWeight;
  }

  /** Every term z_F·W_F evaluated at z [n, F] (no mask): [n, F, K]. */
  terms(z: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const kernel = tf.concat(
        this.modalities.map((m) => this.kernels.get(m)!.read()),
        0,
      ); // [F, K]
      return tf.mul(tf.expandDims(z, 2), kernel) as tf.Tensor3D;
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const first = (inputShape as Shape[])[0]!;
    return [first[0] ?? null, this.numTerms, this.numClasses];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const { concepts, mask, batch } = headInputs('LinearHead.call', inputs, this.modalities.length, this.conceptDim);
      // Masking the concepts (not only the products) keeps an absent modality's kernel block out of the gradient too.
      const termMask = tf.reshape(tf.tile(tf.expandDims(mask, 2), [1, 1, this.conceptDim]), [batch, this.numTerms]);
      return this.terms(tf.mul(tf.concat(concepts, 1), termMask));
    });
  }

  /** Logits from contributions: β + Σ over terms (= β + W·z). */
  logits(contributions: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.sum(contributions, 1), this.betaWeight.read()) as tf.Tensor2D);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { modalities: this.modalities, conceptDim: this.conceptDim, numClasses: this.numClasses, seed: this.seed, ...super.getConfig() };
  }
}
tf.serialization.registerClass(LinearHead);
