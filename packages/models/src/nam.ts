/**
 * Neural Additive Model head: Agarwal et al. 2021, "Neural Additive Models: Interpretable Machine
 * Learning with Neural Nets", arXiv:2004.13912.
 *
 * Each modality m contributes a concept vector z_m ∈ R^c; every concept z_{m,i} passes through its
 * own shape function f_{m,i}: R → R^K (a 1→h→h→K ReLU MLP), and logits = β + Σ_m Σ_i f_{m,i}(z_{m,i}).
 * All F = M·c shape functions run together as batched ops: one broadcast product for the first
 * layer and two batched matrix products ([F, batch, h] × [F, h, ·]) for the others, so the cost is
 * three kernels whatever F is. Weights are kept per modality (so adapter parameters can be named
 * and aggregated by modality) and concatenated inside `call`. A [batch, M] presence mask multiplies
 * each modality's terms, so an absent modality contributes exactly zero and any subset trains.
 * `call` returns every term's contribution [batch, F, K]; β + Σ_F equals the logits by construction.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt } from './errors.js';
import { headInputs } from './headInputs.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Shape = (number | null)[];

/** Arguments of {@link NamHead}. */
export interface NamHeadArgs extends LayerArgs {
  /** Names of the modalities, in input order (also the order of the presence mask's columns). */
  modalities: string[];
  /** Concepts per modality c (shape functions per modality). */
  conceptDim: number;
  /** Hidden width h of each shape function. */
  hiddenUnits: number;
  /** Number of classes K (outputs of each shape function). */
  numClasses: number;
  /** Initialiser seed; default 0. */
  seed?: number;
}

/** Names of one modality's shape-function weights, in the order {@link NamHead.modalityWeights} returns them. */
export const NAM_WEIGHT_NAMES = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;

/** The NAM head layer: inputs [z_1 … z_M ([batch, c] each), mask [batch, M]] → contributions [batch, M·c, K]. */
export class NamHead extends tf.layers.Layer {
  static readonly className = 'NamHead';
  readonly modalities: string[];
  readonly conceptDim: number;
  readonly hiddenUnits: number;
  readonly numClasses: number;
  readonly seed: number;
  private readonly perModality = new Map<string, tf.LayerVariable[]>();
  private betaWeight!: tf.LayerVariable;

  constructor(args: NamHeadArgs) {
    super(args);
    if (!Array.isArray(args.modalities) || args.modalities.length === 0 || new Set(args.modalities).size !== args.modalities.length) {
      throw new ModelsError('MODELS_BAD_CONFIG', `NamHead: modalities must be a non-empty list of distinct names, got ${JSON.stringify(args.modalities)}`);
    }
    this.modalities = [...args.modalities];
    this.conceptDim = checkInt('NamHead', 'conceptDim', args.conceptDim, 1);
    this.hiddenUnits = checkInt('NamHead', 'hiddenUnits', args.hiddenUnits, 1);
    this.numClasses = checkInt('NamHead', 'numClasses', args.numClasses, 2);
    this.seed = args.seed ?? 0;
  }

  /** Total number of shape functions F = M·c. */
  get numTerms(): number {
    return this.modalities.length * this.conceptDim;
  }

  override build(): void {
    const c = this.conceptDim;
    const h = this.hiddenUnits;
    const k = this.numClasses;
    let seed = this.seed;
    const normal = (stddev: number): ReturnType<typeof tf.initializers.randomNormal> => tf.initializers.randomNormal({ mean: 0, stddev, seed: seed++ });
    for (const m of this.modalities) {
      // First-layer kinks spread over the tanh range of the concepts so shape functions start non-trivial.
      this.perModality.set(m, [
        this.addWeight(`${m}/w1`, [c, h], 'float32', normal(1)),
        this.addWeight(`${m}/b1`, [c, h], 'float32', normal(0.5)),
        this.addWeight(`${m}/w2`, [c, h, h], 'float32', normal(Math.sqrt(2 / h))),
        this.addWeight(`${m}/b2`, [c, h], 'float32', tf.initializers.zeros()),
        this.addWeight(`${m}/w3`, [c, h, k], 'float32', normal(Math.sqrt(1 / h))),
        this.addWeight(`${m}/b3`, [c, k], 'float32', tf.initializers.zeros()),
      ]);
    }
    this.betaWeight = this.addWeight('beta', [k], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  /** One modality's weights w1 [c,h], b1 [c,h], w2 [c,h,h], b2 [c,h], w3 [c,h,K], b3 [c,K]. */
  modalityWeights(modality: string): tf.LayerVariable[] {
    const weights = this.perModality.get(modality);
    if (!weights) throw new ModelsError('MODELS_BAD_INPUT', `NamHead.modalityWeights: no modality '${modality}' (have ${this.modalities.join(', ')})`);
    return weights;
  }

  /** The bias β [K]. */
  get beta(): tf.LayerVariable {
    return this.betaWeight;
  }

  /** Every shape function evaluated at z [n, F] (no mask): [n, F, K]. */
  terms(z: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const cat = (i: number): tf.Tensor =>
        tf.concat(
          this.modalities.map((m) => this.perModality.get(m)![i]!.read()),
          0,
        );
      const [w1, b1, w2, b2, w3, b3] = [0, 1, 2, 3, 4, 5].map(cat) as [tf.Tensor, tf.Tensor, tf.Tensor3D, tf.Tensor, tf.Tensor3D, tf.Tensor];
      const h1 = tf.relu(tf.add(tf.mul(tf.expandDims(z, 2), w1), b1)); // [n, F, h]
      const h1t = tf.transpose(h1, [1, 0, 2]) as tf.Tensor3D; // [F, n, h]
      const h2 = tf.relu(tf.add(tf.matMul(h1t, w2), tf.expandDims(b2, 1))); // [F, n, h]
      const out = tf.add(tf.matMul(h2 as tf.Tensor3D, w3), tf.expandDims(b3, 1)); // [F, n, K]
      return tf.transpose(out, [1, 0, 2]) as tf.Tensor3D;
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const first = (inputShape as Shape[])[0]!;
    return [first[0] ?? null, this.numTerms, this.numClasses];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const { concepts, mask, batch } = headInputs('NamHead.call', inputs, this.modalities.length, this.conceptDim);
      const contributions = this.terms(tf.concat(concepts, 1));
      // [batch, M] → [batch, M·c, 1]: each modality's column repeated over its c terms.
      const termMask = tf.reshape(tf.tile(tf.expandDims(mask, 2), [1, 1, this.conceptDim]), [batch, this.numTerms, 1]);
      return tf.mul(contributions, termMask);
    });
  }

  /** Logits from contributions: β + Σ over terms. */
  logits(contributions: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.sum(contributions, 1), this.betaWeight.read()) as tf.Tensor2D);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      modalities: this.modalities,
      conceptDim: this.conceptDim,
      hiddenUnits: this.hiddenUnits,
      numClasses: this.numClasses,
      seed: this.seed,
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(NamHead);
