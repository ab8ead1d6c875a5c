/**
 * The edge half of FedUMM's device–edge split (Su et al. 2026, arXiv:2601.15390, §3.3–3.4): a cross-modal fusion transformer.
 *
 * The cut layer is the device's per-modality concept vectors, tokens [B, M, c] with a presence
 * mask [B, M]. Each modality's token enters through a shared projection c → d plus its own
 * low-rank adapter (A_m [c, r], B_m [r, d], B_m starting at zero) and a learned modality embedding
 * e_m: x_m = t_m W_in + t_m A_m B_m + e_m. FedUMM's shared alignment token a is prepended as
 * position 0 and always present; `numBlocks` pre-LayerNorm transformer blocks (multi-head
 * self-attention whose key mask hides absent modalities, then a GELU MLP of width 2d, both with
 * residuals) follow; the output is the final LayerNorm of the alignment token's state, [B, d].
 * Attention and MLP carry no biases in the projections q/k/v/o (the LayerNorms and e_m provide
 * the offsets).
 *
 * Gradient convention across the cut: every gradient is per example (the gradient of that
 * example's own loss, sum reduction). `backward` takes dFused with rows dL_b/dfused_b, returns
 * dTokens with rows dL_b/dtokens_b — examples are independent in the forward, so the
 * vector–Jacobian product of the whole batch is exactly that — and averages over the batch only
 * for its own Adam step.
 */
import * as tf from '@tensorflow/tfjs';
import { SPLIT_EDGE_GROUP } from '@chorus/fl-core';
import type { Parameters, Tensor as NamedTensor } from '@chorus/fl-core';
import { MODALITIES, type Modality } from '../encoders.js';
import { ModelsError, checkInt, checkPositive } from '../errors.js';
import { checkNamed, countNamed, createVariable, readNamed, writeNamed, type ExchangedVariable, type Initializer } from './namedVariables.js';

/** Configuration of {@link EdgeFusion}. */
export interface EdgeFusionConfig {
  /** Modalities in token order (the device model's `modalities`); at least one, no repeats. */
  modalities: readonly Modality[];
  /** Width c of each token (the device model's `conceptDim`). */
  tokenDim: number;
  /** Width d of the fusion stream and of the output; default 32. */
  modelDim?: number;
  /** Transformer blocks; default 2. */
  numBlocks?: number;
  /** Attention heads (must divide `modelDim`); default 2. */
  numHeads?: number;
  /** Rank r of each modality's input adapter; default 4. */
  adapterRank?: number;
  /** Adam learning rate; default 1e-3. */
  learningRate?: number;
  /** Seed of every initialiser; default 0. */
  seed?: number;
}

/** Options of {@link EdgeFusion.backward}. */
export interface EdgeBackwardOptions {
  /** Whether to take the Adam step on the edge weights; default true. */
  update?: boolean;
}

const LAYER_NORM_EPSILON = 1e-5;
/** Score added to attention logits of absent keys: exp underflows to exactly 0, so their values never reach the output. */
const MASKED_SCORE = -1e9;
/** Standard deviation of the modality embeddings and the alignment token at initialisation. */
const EMBEDDING_STDDEV = 0.02;

type Lookup = (name: string) => tf.Tensor;

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, LAYER_NORM_EPSILON))), gamma), beta);
}

/** GELU, tanh approximation (TF.js has no GELU op); smooth, so finite-difference checks of the backward pass hold. */
function gelu(x: tf.Tensor): tf.Tensor {
  const cubic = tf.mul(x, tf.mul(x, x));
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, cubic)));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** [rows, in] · [in, out] applied to the last axis of a [batch, T, in] tensor. */
function dense3d(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor {
  const [batch, steps, width] = x.shape as [number, number, number];
  return tf.reshape(tf.matMul(tf.reshape(x, [batch * steps, width]) as tf.Tensor2D, kernel as tf.Tensor2D), [batch, steps, kernel.shape[1]!]);
}

/** FedUMM's edge fusion network: tokens [B, M, c] and presence [B, M] → fused features [B, d], with a per-example backward pass. */
export class EdgeFusion {
  readonly modalities: readonly Modality[];
  readonly tokenDim: number;
  readonly modelDim: number;
  readonly numBlocks: number;
  readonly numHeads: number;
  readonly adapterRank: number;
  private readonly weights: ExchangedVariable[] = [];
  private readonly byName = new Map<string, tf.Variable>();
  private readonly learningRate: number;
  private optimizer: tf.Optimizer;

  constructor(config: EdgeFusionConfig) {
    const fn = 'EdgeFusion';
    if (!Array.isArray(config.modalities) || config.modalities.length === 0)
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: modalities must be a non-empty list, got ${String(config.modalities)}`, 'modalities');
    for (const m of config.modalities)
      if (!(MODALITIES as readonly string[]).includes(m))
        throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: unknown modality '${String(m)}' (known: ${MODALITIES.join(', ')})`, 'modalities');
    if (new Set(config.modalities).size !== config.modalities.length)
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: modalities repeat: ${config.modalities.join(', ')}`, 'modalities');
    this.modalities = [...config.modalities];
    this.tokenDim = checkInt(fn, 'tokenDim', config.tokenDim, 1);
    this.modelDim = checkInt(fn, 'modelDim', config.modelDim ?? 32, 1);
    this.numBlocks = checkInt(fn, 'numBlocks', config.numBlocks ?? 2, 1);
    this.numHeads = checkInt(fn, 'numHeads', config.numHeads ?? 2, 1);
    if (this.modelDim % this.numHeads !== 0)
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: numHeads ${this.numHeads} does not divide modelDim ${this.modelDim}`, 'numHeads');
    this.adapterRank = checkInt(fn, 'adapterRank', config.adapterRank ?? 4, 1);
    this.learningRate = checkPositive(fn, 'learningRate', config.learningRate ?? 1e-3);
    const seed = config.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isFinite(seed))
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: seed must be a finite number, got ${String(seed)}`, 'seed');

    const [c, d, r] = [this.tokenDim, this.modelDim, this.adapterRank];
    const glorot = (): Initializer => tf.initializers.glorotUniform({ seed: seed + this.weights.length });
    const normal = (): Initializer => tf.initializers.truncatedNormal({ stddev: EMBEDDING_STDDEV, seed: seed + this.weights.length });
    const add = (name: string, init: Initializer, shape: number[]): void => {
      const variable = createVariable(init, shape);
      this.weights.push({ name: `${SPLIT_EDGE_GROUP}/${name}`, variable });
      this.byName.set(name, variable);
    };
    add('in/kernel', glorot(), [c, d]);
    for (const m of this.modalities) {
      add(`${m}/adapter_a`, glorot(), [c, r]);
      add(`${m}/adapter_b`, tf.initializers.zeros(), [r, d]);
      add(`${m}/embedding`, normal(), [d]);
    }
    add('align_token', normal(), [d]);
    for (let i = 0; i < this.numBlocks; i++) {
      const block = `block${i}`;
      add(`${block}/ln1/gamma`, tf.initializers.ones(), [d]);
      add(`${block}/ln1/beta`, tf.initializers.zeros(), [d]);
      for (const w of ['wq', 'wk', 'wv', 'wo']) add(`${block}/attn/${w}`, glorot(), [d, d]);
      add(`${block}/ln2/gamma`, tf.initializers.ones(), [d]);
      add(`${block}/ln2/beta`, tf.initializers.zeros(), [d]);
      add(`${block}/mlp/w1`, glorot(), [d, 2 * d]);
      add(`${block}/mlp/b1`, tf.initializers.zeros(), [2 * d]);
      add(`${block}/mlp/w2`, glorot(), [2 * d, d]);
      add(`${block}/mlp/b2`, tf.initializers.zeros(), [d]);
    }
    add('final_ln/gamma', tf.initializers.ones(), [d]);
    add('final_ln/beta', tf.initializers.zeros(), [d]);
    this.optimizer = tf.train.adam(this.learningRate);
  }

  /** Drops Adam's moments and step count: the next update starts as the first one did (e.g. at the start of a round, from the global weights). */
  resetOptimizer(): void {
    this.optimizer.dispose();
    this.optimizer = tf.train.adam(this.learningRate);
  }

  /** Width d of the fused features. */
  get outputDim(): number {
    return this.modelDim;
  }

  /** Fused features [B, d] of tokens [B, M, c] with presence [B, M] (nonzero = present); the caller disposes them. */
  forward(tokens: tf.Tensor, mask: tf.Tensor): tf.Tensor2D {
    this.checkInputs('EdgeFusion.forward', tokens, mask);
    const weights = this.weights.map((e) => e.variable);
    return tf.tidy(() => this.fuse(tokens, mask, weights));
  }

  /**
   * Per-example token gradients dTokens [B, M, c] for per-example output gradients `dFused` [B, d]
   * (the vector–Jacobian product at the current weights; rows of absent modalities are zero), then,
   * unless `options.update` is false, one Adam step on the edge weights with the batch-mean
   * gradient (that product divided by B). The caller disposes dTokens. Bad input raises
   * `MODELS_BAD_INPUT` before any weight moves.
   */
  backward(tokens: tf.Tensor, mask: tf.Tensor, dFused: tf.Tensor, options: EdgeBackwardOptions = {}): tf.Tensor3D {
    const fn = 'EdgeFusion.backward';
    const batch = this.checkInputs(fn, tokens, mask);
    if (dFused.rank !== 2 || dFused.dtype !== 'float32' || dFused.shape[0] !== batch || dFused.shape[1] !== this.modelDim)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: dFused must be float32 [${batch}, ${this.modelDim}], got ${dFused.dtype} [${dFused.shape.join(',')}]`);
    const variables = this.weights.map((e) => e.variable);
    if (options.update === false) {
      return tf.tidy(() => tf.grad((t: tf.Tensor) => this.fuse(t, mask, variables))(tokens, dFused) as tf.Tensor3D);
    }
    // The variables go in as explicit arguments so one pass gives both the token and the weight gradients.
    const [dTokens, ...weightGrads] = tf.tidy(() => {
      const grads = tf.grads((...args: tf.Tensor[]) => this.fuse(args[0]!, mask, args.slice(1)))([tokens, ...variables], dFused);
      return [grads[0]!, ...grads.slice(1).map((g) => tf.div(g, batch))];
    });
    try {
      // TF.js's Adam keys its moments by position, so every variable goes in, always in the same order.
      this.optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: weightGrads[i]! })));
    } catch (err) {
      dTokens!.dispose();
      throw err;
    } finally {
      tf.dispose(weightGrads);
    }
    return dTokens as tf.Tensor3D;
  }

  /** Copies of every weight, named `edge/in/kernel`, `edge/image/adapter_a`, `edge/align_token`, `edge/block0/attn/wq` …, in a fixed order. */
  parameters(): NamedTensor[] {
    return readNamed(this.weights);
  }

  /** Names and shapes of {@link parameters}, without reading any value. */
  parameterShapes(): { name: string; shape: number[] }[] {
    return this.weights.map((e) => ({ name: e.name, shape: [...e.variable.shape] }));
  }

  /**
   * Writes any subset of {@link parameters} (Adam's moments are kept). Unknown or repeated names,
   * wrong shapes and NaN/Infinity raise `MODELS_BAD_INPUT` before anything is written.
   */
  setParameters(params: Parameters): void {
    checkNamed('EdgeFusion.setParameters', this.weights, params);
    writeNamed(this.weights, params);
  }

  /** Number of scalars of the edge weights. */
  parameterCount(): number {
    return countNamed(this.weights);
  }

  /** Releases the weights and the optimiser state. */
  dispose(): void {
    for (const e of this.weights) e.variable.dispose();
    this.optimizer.dispose();
  }

  /** Checks tokens [B, M, c] and mask [B, M]; returns B. */
  private checkInputs(fn: string, tokens: tf.Tensor, mask: tf.Tensor): number {
    const [m, c] = [this.modalities.length, this.tokenDim];
    if (tokens.rank !== 3 || tokens.dtype !== 'float32' || tokens.shape[0]! < 1 || tokens.shape[1] !== m || tokens.shape[2] !== c)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: tokens must be float32 [batch ≥ 1, ${m}, ${c}], got ${tokens.dtype} [${tokens.shape.join(',')}]`);
    const batch = tokens.shape[0]!;
    if (mask.rank !== 2 || mask.shape[0] !== batch || mask.shape[1] !== m)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: mask must be [${batch}, ${m}], got [${mask.shape.join(',')}]`);
    return batch;
  }

  /** The forward pass with the weights given in `this.weights` order (variables, or the same tensors as gradient arguments). */
  private fuse(tokens: tf.Tensor, mask: tf.Tensor, weights: readonly tf.Tensor[]): tf.Tensor2D {
    const byName = new Map(this.weights.map((e, i) => [e.name.slice(SPLIT_EDGE_GROUP.length + 1), weights[i]!]));
    const w: Lookup = (name) => byName.get(name)!;
    const [batch, , c] = tokens.shape as [number, number, number];
    const d = this.modelDim;
    const steps = this.modalities.length + 1;
    const streams = this.modalities.map((m, i) => {
      const t = tf.reshape(tf.slice(tokens, [0, i, 0], [batch, 1, c]), [batch, c]) as tf.Tensor2D;
      const adapted = tf.matMul(tf.matMul(t, w(`${m}/adapter_a`) as tf.Tensor2D), w(`${m}/adapter_b`) as tf.Tensor2D);
      return tf.add(tf.add(tf.matMul(t, w('in/kernel') as tf.Tensor2D), adapted), w(`${m}/embedding`));
    });
    const align = tf.tile(tf.reshape(w('align_token'), [1, d]), [batch, 1]);
    let x: tf.Tensor = tf.stack([align, ...streams], 1); // [B, 1 + M, d]
    const present = tf.concat([tf.ones([batch, 1]), tf.cast(tf.greater(mask, 0), 'float32')], 1);
    const keyBias = tf.reshape(tf.mul(tf.sub(1, present), MASKED_SCORE), [batch, 1, 1, steps]);
    for (let i = 0; i < this.numBlocks; i++) x = this.block(x, keyBias, `block${i}`, w);
    const first = tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, d]), [batch, d]);
    return layerNorm(first, w('final_ln/gamma'), w('final_ln/beta')) as tf.Tensor2D;
  }

  /** One pre-LayerNorm block on x [B, T, d]: x + MHSA(LN(x)), then + MLP(LN(·)). */
  private block(x: tf.Tensor, keyBias: tf.Tensor, block: string, w: Lookup): tf.Tensor {
    const [batch, steps, d] = x.shape as [number, number, number];
    const heads = this.numHeads;
    const headDim = d / heads;
    const split = (t: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(t, [batch, steps, heads, headDim]), [0, 2, 1, 3]); // [B, H, T, dh]
    const h = layerNorm(x, w(`${block}/ln1/gamma`), w(`${block}/ln1/beta`));
    const q = split(dense3d(h, w(`${block}/attn/wq`)));
    const k = split(dense3d(h, w(`${block}/attn/wk`)));
    const v = split(dense3d(h, w(`${block}/attn/wv`)));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(headDim)), keyBias);
    const attended = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [batch, steps, d]);
    const mixed = tf.add(x, dense3d(attended, w(`${block}/attn/wo`)));
    const h2 = layerNorm(mixed, w(`${block}/ln2/gamma`), w(`${block}/ln2/beta`));
    const hidden = gelu(tf.add(dense3d(h2, w(`${block}/mlp/w1`)), w(`${block}/mlp/b1`)));
    return tf.add(mixed, tf.add(dense3d(hidden, w(`${block}/mlp/w2`)), w(`${block}/mlp/b2`)));
  }
}
