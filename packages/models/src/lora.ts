/**
 * LoRA layers: Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685.
 *
 * A frozen kernel W (TF.js row convention, y = x·W with W of shape [in, out]) is adapted by
 * ΔW = (α/r)·Aᵀ·Bᵀ with A ∈ R^{r×in} (small Gaussian) and B ∈ R^{out×r} (zeros), the paper's
 * shapes for W₀ ∈ R^{out×in}. Because B starts at zero the adapted layer equals the base layer
 * exactly until B is trained. Only A and B are trainable; W and the bias are non-trainable weights
 * so optimizers never touch them. `merge()` folds ΔW into W for inference and `unmerge()` takes it
 * out again (restoring W up to float32 rounding); while merged the low-rank branch is skipped so
 * outputs do not change.
 */
import * as tf from '@tensorflow/tfjs';
import { activate, checkActivation, type LoraActivation } from './activations.js';
import { portableConv2d } from './conv.js';
import { ModelsError, checkInt, checkPositive } from './errors.js';

export { LORA_ACTIVATIONS, checkActivation } from './activations.js';
export type { LoraActivation } from './activations.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type LayerVariable = tf.LayerVariable;
type Shape = (number | null)[];

/** Arguments shared by both LoRA layers. */
export interface LoraArgs extends LayerArgs {
  /** Adapter rank r (≥ 1); the update ΔW has rank at most r. */
  rank: number;
  /** Scaling α; the low-rank branch is multiplied by α / r so changing r keeps the update's scale. */
  alpha: number;
  /** Activation applied after the (adapted) affine map; default 'linear'. */
  activation?: LoraActivation;
  /** Whether the frozen base has a bias; default true. */
  useBias?: boolean;
  /** Whether ΔW is currently folded into the kernel (kept in configs so a saved merged layer reloads merged). */
  merged?: boolean;
  /** Seed of A's Gaussian initialiser, for reproducible adapters; default 0. */
  seed?: number;
}

/** Arguments of {@link LoraDense}. */
export interface LoraDenseArgs extends LoraArgs {
  /** Output width (the frozen kernel is [in, units]). */
  units: number;
}

/** Arguments of {@link LoraConv1x1}. */
export interface LoraConv1x1Args extends LoraArgs {
  /** Output channels (the frozen kernel is [1, 1, in, filters]); stride 1, channels last. */
  filters: number;
}

abstract class LoraBase extends tf.layers.Layer {
  readonly rank: number;
  readonly alpha: number;
  readonly activationName: LoraActivation;
  readonly useBias: boolean;
  readonly seed: number;
  protected mergedState: boolean;
  protected kernel!: LayerVariable;
  protected bias: LayerVariable | null = null;
  protected loraA!: LayerVariable;
  protected loraB!: LayerVariable;

  constructor(fn: string, args: LoraArgs) {
    super(args);
    this.rank = checkInt(fn, 'rank', args.rank, 1);
    this.alpha = checkPositive(fn, 'alpha', args.alpha);
    this.activationName = checkActivation(fn, args.activation ?? 'linear');
    this.useBias = args.useBias ?? true;
    this.mergedState = args.merged ?? false;
    this.seed = args.seed ?? 0;
  }

  /** α / r, the factor on the low-rank branch. */
  get scaling(): number {
    return this.alpha / this.rank;
  }

  /** Whether ΔW is folded into the kernel. */
  get merged(): boolean {
    return this.mergedState;
  }

  /** The frozen kernel, the bias (or null), and the adapter matrices A [r, in] and B [out, r]. */
  get loraVariables(): { kernel: LayerVariable; bias: LayerVariable | null; loraA: LayerVariable; loraB: LayerVariable } {
    return { kernel: this.kernel, bias: this.bias, loraA: this.loraA, loraB: this.loraB };
  }

  protected addLoraWeights(inputDim: number, outputDim: number, kernelShape: number[]): void {
    this.kernel = this.addWeight('kernel', kernelShape, 'float32', tf.initializers.glorotUniform({ seed: this.seed }), undefined, false);
    if (this.useBias) this.bias = this.addWeight('bias', [outputDim], 'float32', tf.initializers.zeros(), undefined, false);
    const std = 1 / Math.sqrt(inputDim);
    this.loraA = this.addWeight(
      'lora_a',
      [this.rank, inputDim],
      'float32',
      tf.initializers.randomNormal({ mean: 0, stddev: std, seed: this.seed + 1 }),
      undefined,
      true,
    );
    this.loraB = this.addWeight('lora_b', [outputDim, this.rank], 'float32', tf.initializers.zeros(), undefined, true);
  }

  /** ΔW = (α/r)·Aᵀ·Bᵀ as a [in, out] matrix. */
  deltaKernel(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.matMul(this.loraA.read(), this.loraB.read(), true, true), this.scaling) as tf.Tensor2D);
  }

  /** Low-rank branch for a [n, in] input: (α/r)·(x·Aᵀ)·Bᵀ, never forming ΔW. */
  protected lowRank(x2d: tf.Tensor2D): tf.Tensor2D {
    const xa = tf.matMul(x2d, this.loraA.read(), false, true);
    return tf.mul(tf.matMul(xa, this.loraB.read(), false, true), this.scaling) as tf.Tensor2D;
  }

  /** Folds ΔW into the frozen kernel; throws `MODELS_BAD_CONFIG` if already merged. */
  merge(): void {
    if (this.mergedState) throw new ModelsError('MODELS_BAD_CONFIG', `${this.name}.merge: adapter is already merged`);
    this.applyDelta(1);
    this.mergedState = true;
  }

  /** Takes ΔW back out of the kernel; throws `MODELS_BAD_CONFIG` if not merged. */
  unmerge(): void {
    if (!this.mergedState) throw new ModelsError('MODELS_BAD_CONFIG', `${this.name}.unmerge: adapter is not merged`);
    this.applyDelta(-1);
    this.mergedState = false;
  }

  private applyDelta(sign: 1 | -1): void {
    const next = tf.tidy(() => {
      const delta = tf.reshape(this.deltaKernel(), this.kernel.shape as number[]);
      return sign === 1 ? tf.add(this.kernel.read(), delta) : tf.sub(this.kernel.read(), delta);
    });
    this.kernel.write(next);
    next.dispose();
  }

  protected finish(y: tf.Tensor): tf.Tensor {
    const withBias = this.bias ? tf.add(y, this.bias.read()) : y;
    return activate(withBias, this.activationName);
  }

  protected baseConfig(): tf.serialization.ConfigDict {
    return {
      rank: this.rank,
      alpha: this.alpha,
      activation: this.activationName,
      useBias: this.useBias,
      merged: this.mergedState,
      seed: this.seed,
      ...super.getConfig(),
    };
  }
}

/** A frozen Dense layer with a trainable low-rank adapter (applies to the last axis, any input rank ≥ 2). */
export class LoraDense extends LoraBase {
  static readonly className = 'LoraDense';
  readonly units: number;

  constructor(args: LoraDenseArgs) {
    super('LoraDense', args);
    this.units = checkInt('LoraDense', 'units', args.units, 1);
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = inputShape as Shape;
    const inputDim = shape[shape.length - 1];
    if (inputDim == null) throw new ModelsError('MODELS_BAD_CONFIG', `LoraDense.build: last input dimension must be known, got [${shape.join(',')}]`);
    this.addLoraWeights(inputDim, this.units, [inputDim, this.units]);
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = [...(inputShape as Shape)];
    shape[shape.length - 1] = this.units;
    return shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const inputDim = x.shape[x.shape.length - 1]!;
      const x2d = tf.reshape(x, [-1, inputDim]) as tf.Tensor2D;
      let y: tf.Tensor2D = tf.matMul(x2d, this.kernel.read() as tf.Tensor2D);
      if (!this.mergedState) y = tf.add(y, this.lowRank(x2d));
      const outShape = [...x.shape.slice(0, -1), this.units];
      return this.finish(tf.reshape(y, outShape));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { units: this.units, ...this.baseConfig() };
  }
}
tf.serialization.registerClass(LoraDense);

/** A frozen 1×1 convolution (stride 1, channels last) with a trainable low-rank adapter on its [in, filters] kernel. */
export class LoraConv1x1 extends LoraBase {
  static readonly className = 'LoraConv1x1';
  readonly filters: number;

  constructor(args: LoraConv1x1Args) {
    super('LoraConv1x1', args);
    this.filters = checkInt('LoraConv1x1', 'filters', args.filters, 1);
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = inputShape as Shape;
    const inputDim = shape[shape.length - 1];
    if (shape.length !== 4 || inputDim == null) {
      throw new ModelsError('MODELS_BAD_CONFIG', `LoraConv1x1.build: input must be [batch, h, w, channels] with known channels, got [${shape.join(',')}]`);
    }
    this.addLoraWeights(inputDim, this.filters, [1, 1, inputDim, this.filters]);
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = [...(inputShape as Shape)];
    shape[3] = this.filters;
    return shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      // portableConv2d rather than tf.conv2d so full fine-tuning of the frozen kernel also runs on wasm.
      let y: tf.Tensor4D = portableConv2d(x, this.kernel.read() as tf.Tensor4D);
      if (!this.mergedState) {
        const [n, h, w, c] = x.shape;
        const branch = this.lowRank(tf.reshape(x, [n * h * w, c]));
        y = tf.add(y, tf.reshape(branch, [n, h, w, this.filters]));
      }
      return this.finish(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { filters: this.filters, ...this.baseConfig() };
  }
}
tf.serialization.registerClass(LoraConv1x1);

/** True for either LoRA layer. */
export function isLoraLayer(layer: tf.layers.Layer): layer is LoraDense | LoraConv1x1 {
  return layer instanceof LoraDense || layer instanceof LoraConv1x1;
}
