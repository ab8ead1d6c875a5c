/**
 * FedAFD's granularity-aware feature fusion, GFF (Eq. 3–6 of "FedAFD: Multimodal Federated Learning
 * via Adversarial Fusion and Distillation"), the iterative attentional feature fusion (iAFF) of
 * Dai et al. 2021, "Attentional Feature Fusion", arXiv:2009.14082, adapted to feature vectors.
 *
 * With X the local and Y the global feature of one sample ([batch, D] each):
 * - Eq. 3: Z = M₁(X + Y) ⊙ X + (1 − M₁(X + Y)) ⊙ Y (the initial integration X ⊎ Y is the sum, as in iAFF);
 * - Eq. 4: F = M₂(Z) ⊙ X + (1 − M₂(Z)) ⊙ Y;
 * - Eq. 5: M(V) = σ(L(V) + G(V)), L and G two parallel bottleneck transforms;
 * - Eq. 6: the client's task loss is computed on F.
 *
 * Adaptation to vectors (MS-CAM works on [H, W, C] maps: L is a point-wise channel bottleneck at
 * every position, G the same bottleneck on the globally pooled channels): the D features are read
 * as P groups ("positions") of C = D / P channels, feature p·C + c being channel c of group p.
 * L(V) applies one bottleneck C → C/r → C (ReLU between, no batch norm: client batches are small)
 * to every group, the fine granularity; G(V) applies its own bottleneck to the mean over groups and
 * broadcasts it to all groups, the coarse granularity. M₁ and M₂ have separate weights, as in iAFF.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt } from '../errors.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Shape = (number | null)[];

/** Arguments of {@link GranularityFusion}. */
export interface GranularityFusionArgs extends LayerArgs {
  /** Feature width D of X and Y. */
  dim: number;
  /** Groups P the D features are read as (D must be a multiple of P); default 8, or 1 when D is not a multiple of 8. */
  groups?: number;
  /** Bottleneck reduction r: the hidden width is max(1, ⌊C / r⌋); default 4. */
  reduction?: number;
  /** Seed of the Glorot-uniform kernels (biases start at zero); default 0. */
  seed?: number;
}

/** Names of one bottleneck's weights, in order: V·w1 + b1 → ReLU → ·w2 + b2. */
const BOTTLENECK = ['w1', 'b1', 'w2', 'b2'] as const;
/** The four bottlenecks: the local and global branch of M₁ and of M₂. */
const BRANCHES = ['stage1/local', 'stage1/global', 'stage2/local', 'stage2/global'] as const;

/** Attention weights of both stages, [batch, D] each. */
export interface FusionGates {
  /** M₁(X + Y) of Eq. 3. */
  first: tf.Tensor2D;
  /** M₂(Z) of Eq. 4. */
  second: tf.Tensor2D;
}

/** Two-stage attentional gated fusion of a local and a global feature: inputs [X, Y] ([batch, D] each) → F [batch, D]. */
export class GranularityFusion extends tf.layers.Layer {
  static readonly className = 'GranularityFusion';
  readonly dim: number;
  readonly groups: number;
  readonly reduction: number;
  readonly seed: number;
  private readonly vars = new Map<string, tf.LayerVariable>();

  constructor(args: GranularityFusionArgs) {
    super(args);
    this.dim = checkInt('GranularityFusion', 'dim', args.dim, 1);
    this.groups = checkInt('GranularityFusion', 'groups', args.groups ?? (args.dim % 8 === 0 ? 8 : 1), 1);
    if (this.dim % this.groups !== 0)
      throw new ModelsError('MODELS_BAD_CONFIG', `GranularityFusion: dim ${this.dim} is not a multiple of groups ${this.groups}`, 'groups');
    this.reduction = checkInt('GranularityFusion', 'reduction', args.reduction ?? 4, 1);
    this.seed = args.seed ?? 0;
  }

  /** Channels per group C = D / P. */
  get channels(): number {
    return this.dim / this.groups;
  }

  /** Bottleneck width max(1, ⌊C / r⌋). */
  get hiddenUnits(): number {
    return Math.max(1, Math.floor(this.channels / this.reduction));
  }

  override build(): void {
    const c = this.channels;
    const h = this.hiddenUnits;
    BRANCHES.forEach((branch, i) => {
      const shapes: Record<(typeof BOTTLENECK)[number], number[]> = { w1: [c, h], b1: [h], w2: [h, c], b2: [c] };
      for (const w of BOTTLENECK) {
        const init = w.startsWith('w') ? tf.initializers.glorotUniform({ seed: this.seed + 2 * i + (w === 'w2' ? 1 : 0) }) : tf.initializers.zeros();
        this.vars.set(`${branch}/${w}`, this.addWeight(`${branch}/${w}`, shapes[w], 'float32', init));
      }
    });
    this.built = true;
  }

  /** Every weight by its name (`stage1/local/w1` …), in a fixed order. */
  namedWeights(): { name: string; variable: tf.LayerVariable }[] {
    return BRANCHES.flatMap((branch) => BOTTLENECK.map((w) => ({ name: `${branch}/${w}`, variable: this.vars.get(`${branch}/${w}`)! })));
  }

  private bottleneck(branch: string, v: tf.Tensor): tf.Tensor {
    const get = (w: string): tf.Tensor => this.vars.get(`${branch}/${w}`)!.read();
    const rank = v.rank;
    const flat = rank === 3 ? tf.reshape(v, [-1, this.channels]) : v;
    const hidden = tf.relu(tf.add(tf.matMul(flat as tf.Tensor2D, get('w1') as tf.Tensor2D), get('b1')));
    const out = tf.add(tf.matMul(hidden, get('w2') as tf.Tensor2D), get('b2'));
    return rank === 3 ? tf.reshape(out, v.shape) : out;
  }

  /** Eq. 5 for one stage: σ(L(V) + G(V)) of V [batch, D]. */
  private attention(stage: 'stage1' | 'stage2', v: tf.Tensor): tf.Tensor2D {
    const batch = v.shape[0]!;
    const grouped = tf.reshape(v, [batch, this.groups, this.channels]);
    const local = this.bottleneck(`${stage}/local`, grouped);
    const global = tf.expandDims(this.bottleneck(`${stage}/global`, tf.mean(grouped, 1)), 1);
    return tf.reshape(tf.sigmoid(tf.add(local, global)), [batch, this.dim]) as tf.Tensor2D;
  }

  private checkInputs(x: tf.Tensor, y: tf.Tensor): void {
    if (x.rank !== 2 || y.rank !== 2 || x.shape[1] !== this.dim || y.shape[1] !== this.dim || x.shape[0] !== y.shape[0]) {
      throw new ModelsError(
        'MODELS_BAD_INPUT',
        `GranularityFusion: expected X and Y of shape [batch, ${this.dim}], got [${x.shape.join(',')}] and [${y.shape.join(',')}]`,
      );
    }
  }

  private fuse(x: tf.Tensor, y: tf.Tensor): { fused: tf.Tensor2D; first: tf.Tensor2D; second: tf.Tensor2D } {
    const mix = (m: tf.Tensor): tf.Tensor2D => tf.add(tf.mul(m, x), tf.mul(tf.sub(1, m), y)) as tf.Tensor2D;
    const first = this.attention('stage1', tf.add(x, y));
    const z = mix(first);
    const second = this.attention('stage2', z);
    return { fused: mix(second), first, second };
  }

  /** The attention weights of both stages for local `x` and global `y` [batch, D] (the caller disposes them). */
  gates(x: tf.Tensor, y: tf.Tensor): FusionGates {
    if (!this.built) this.build();
    this.checkInputs(x, y);
    return tf.tidy(() => {
      const { first, second } = this.fuse(x, y);
      return { first, second };
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return [...(inputShape as Shape[])[0]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2)
      throw new ModelsError('MODELS_BAD_INPUT', 'GranularityFusion: expected inputs [X, Y] (local and global features)');
    const [x, y] = inputs as [tf.Tensor, tf.Tensor];
    this.checkInputs(x, y);
    return tf.tidy(() => this.fuse(x, y).fused);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { dim: this.dim, groups: this.groups, reduction: this.reduction, seed: this.seed, ...super.getConfig() };
  }
}
tf.serialization.registerClass(GranularityFusion);
