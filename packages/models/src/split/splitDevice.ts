/**
 * The device half of FedUMM's device–edge split (Su et al. 2026, arXiv:2601.15390, §3.3): encoders, adapters, local head and the task head.
 *
 * The device keeps a `MultimodalModel` — frozen encoders with their LoRA adapters, the
 * per-modality concept projections, whose outputs are the cut-layer tokens, and the NAM head, the
 * "light local head" for inference without the edge — plus a task head Dense(d → K) over the
 * fused features the edge returns. The split is U-shaped: labels never leave the device, which
 * sends tokens up, receives fused features, computes the task loss and sends dFused back down.
 *
 * Gradients crossing the cut are per example (sum reduction): `headStep` returns rows
 * dL_b/dfused_b and `backward` takes rows dL_b/dtokens_b from the edge; the device divides by B
 * when it forms its own update. The task head's batch-mean gradient from `headStep` is held until
 * the next `backward`, which applies it in the same Adam step as the adapters, so one training
 * step is one optimiser step for every device weight.
 *
 * Reads: `encode`, `headStep` and `backward` read values back synchronously (Node's CPU and WASM
 * backends); their `…Async` twins read only with `await data()`, as a WebGPU tab must (a
 * synchronous read there can return zeros). Each pair shares one computation and one set of
 * checks, differing only in how values are read, so the two give bit-identical results.
 */
import * as tf from '@tensorflow/tfjs';
import { FlCoreError, type Parameters, type Tensor as NamedTensor } from '@chorus/fl-core';
import { ModelsError, checkInt, checkPositive } from '../errors.js';
import { crossEntropyLoss } from '../losses.js';
import type { ForwardResult, MultimodalBatch, MultimodalModel } from '../model.js';
import { checkNamed, countNamed, createVariable, readNamed, readNamedAsync, writeNamed, type ExchangedVariable } from './namedVariables.js';

/** Exchange names of the task head's kernel [d, K] and bias [K]; group `fusion`, aggregated over every client. */
export const SPLIT_HEAD_NAMES = ['fusion/split_head/kernel', 'fusion/split_head/bias'] as const;

/** Configuration of {@link SplitDevice}. */
export interface SplitDeviceConfig {
  /** The device's encoder + adapter stack and local NAM head (not owned: the caller disposes it). */
  model: MultimodalModel;
  /** Width d of the fused features the edge returns (the edge's `outputDim`). */
  fusedDim: number;
  /** Adam learning rate of the device step; default 1e-3. */
  learningRate?: number;
  /** Weight of the local head's own mean cross-entropy in the device step; default 0.5 (0 trains the local head only through the cut). */
  localHeadWeight?: number;
  /** Seed of the task head's Glorot-uniform kernel; default 0. */
  seed?: number;
}

/** The cut-layer activations of one batch; the caller disposes both. */
export interface CutActivations {
  /** Concept vectors [B, M, c]; an absent modality's token is exactly zero. */
  tokens: tf.Tensor3D;
  /** Effective presence [B, M] of 0/1. */
  mask: tf.Tensor2D;
}

/** What {@link SplitDevice.headStep} returns. */
export interface HeadStepResult {
  /** Per-example dL_b/dfused_b [B, d] (sum reduction); the caller disposes it. */
  dFused: tf.Tensor2D;
  /** Mean task cross-entropy over the batch. */
  loss: number;
  /** Examples whose task-head argmax equals the label. */
  correct: number;
}

/** What {@link SplitDevice.backward} returns. */
export interface DeviceBackwardResult {
  /** Mean cross-entropy of the local NAM head on the batch before the step (0 for a batch without labels). */
  localLoss: number;
}

/** FedUMM's device: cut-layer encoding, the task head's loss and gradient, and the adapters' step from the edge's token gradients. */
export class SplitDevice {
  readonly model: MultimodalModel;
  readonly fusedDim: number;
  readonly localHeadWeight: number;
  private readonly head: ExchangedVariable[];
  private readonly learningRate: number;
  private optimizer: tf.Optimizer;
  /** The task head's batch-mean gradients summed over `headStep` calls since the last `backward`; null when none. */
  private pendingHeadGrads: [tf.Tensor, tf.Tensor] | null = null;

  constructor(config: SplitDeviceConfig) {
    const fn = 'SplitDevice';
    this.model = config.model;
    this.fusedDim = checkInt(fn, 'fusedDim', config.fusedDim, 1);
    this.learningRate = checkPositive(fn, 'learningRate', config.learningRate ?? 1e-3);
    const weight = config.localHeadWeight ?? 0.5;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0)
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: localHeadWeight must be a finite number ≥ 0, got ${String(weight)}`, 'localHeadWeight');
    this.localHeadWeight = weight;
    const seed = config.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isFinite(seed))
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: seed must be a finite number, got ${String(seed)}`, 'seed');
    const k = this.model.numClasses;
    this.head = [
      { name: SPLIT_HEAD_NAMES[0], variable: createVariable(tf.initializers.glorotUniform({ seed }), [this.fusedDim, k]) },
      { name: SPLIT_HEAD_NAMES[1], variable: createVariable(tf.initializers.zeros(), [k]) },
    ];
    this.optimizer = tf.train.adam(this.learningRate);
  }

  /** Drops Adam's moments and step count and any head gradient held from {@link headStep}: the next {@link backward} starts as the first one did. */
  resetOptimizer(): void {
    this.optimizer.dispose();
    this.optimizer = tf.train.adam(this.learningRate);
    this.discardHeadGradient();
  }

  /** Drops the task-head gradient held from {@link headStep} (if any), keeping Adam's moments and step count: the next {@link backward} applies only its own gradient. */
  discardHeadGradient(): void {
    if (this.pendingHeadGrads) tf.dispose(this.pendingHeadGrads);
    this.pendingHeadGrads = null;
  }

  /** The cut-layer activations of `batch` (no gradient tape); bad input raises `MODELS_BAD_INPUT`. */
  encode(batch: MultimodalBatch): CutActivations {
    const fn = 'SplitDevice.encode';
    this.model.checkBatch(batch, fn, false);
    this.checkRanges(fn, batch.labels?.dataSync(), batch.text?.dataSync());
    return this.cutOf(batch);
  }

  /** {@link encode} with the batch's label and token-id checks read asynchronously, as a WebGPU tab must (see `MultimodalModel.trainStepAsync`). */
  async encodeAsync(batch: MultimodalBatch): Promise<CutActivations> {
    const fn = 'SplitDevice.encodeAsync';
    this.model.checkBatch(batch, fn, false);
    this.checkRanges(fn, ...(await Promise.all([batch.labels?.data(), batch.text?.data()])));
    return this.cutOf(batch);
  }

  /** Task-head logits [B, K] of fused features [B, d]; the caller disposes them. */
  predict(fused: tf.Tensor): tf.Tensor2D {
    this.checkFused('SplitDevice.predict', fused);
    return tf.tidy(() => this.logits(fused, this.kernel, this.bias));
  }

  /**
   * The task head's cross-entropy on the fused features the edge returned: per-example dFused
   * (sum reduction) for the edge, the mean loss and the hit count. The head's batch-mean gradient
   * is added to what the next {@link backward} applies. Bad input raises `MODELS_BAD_INPUT`.
   */
  headStep(fused: tf.Tensor, labels: tf.Tensor): HeadStepResult {
    const fn = 'SplitDevice.headStep';
    const size = this.checkHeadInputs(fn, fused, labels);
    this.checkRanges(fn, labels.dataSync(), undefined);
    const head = this.headTensors(fused, labels, size);
    let values: [number, number];
    try {
      values = [head.loss.dataSync()[0]!, head.correct.dataSync()[0]!];
    } catch (err) {
      tf.dispose(Object.values(head));
      throw err;
    }
    return this.holdHeadGradient(head, ...values);
  }

  /** {@link headStep} with every value (label range, loss, hits) read asynchronously, as a WebGPU tab must; bit-identical results on the same backend. */
  async headStepAsync(fused: tf.Tensor, labels: tf.Tensor): Promise<HeadStepResult> {
    const fn = 'SplitDevice.headStepAsync';
    const size = this.checkHeadInputs(fn, fused, labels);
    this.checkRanges(fn, await labels.data(), undefined);
    const head = this.headTensors(fused, labels, size);
    let values: [number, number];
    try {
      const [loss, correct] = await Promise.all([head.loss.data(), head.correct.data()]);
      values = [loss[0]!, correct[0]!];
    } catch (err) {
      tf.dispose(Object.values(head));
      throw err;
    }
    return this.holdHeadGradient(head, ...values);
  }

  /**
   * One Adam step on every device weight: the model's adapters, concept projections and NAM head
   * get (1/B)·vjp of the edge's per-example `dTokens` [B, M, c] through {@link encode} plus
   * `localHeadWeight` times the gradient of the local head's mean cross-entropy; the task head gets
   * the gradient held from {@link headStep} (zero if none). Bad input raises `MODELS_BAD_INPUT`,
   * merged adapters `MODELS_BAD_CONFIG`, before any weight moves.
   */
  backward(batch: MultimodalBatch, dTokens: tf.Tensor): DeviceBackwardResult {
    const fn = 'SplitDevice.backward';
    const size = this.checkBackwardInputs(fn, batch, dTokens);
    this.checkRanges(fn, batch.labels?.dataSync(), batch.text?.dataSync());
    const localLoss = this.applyStep(batch, dTokens, size);
    try {
      return { localLoss: localLoss ? localLoss.dataSync()[0]! : 0 };
    } finally {
      localLoss?.dispose();
    }
  }

  /** {@link backward} with every value (label and token-id ranges, local loss) read asynchronously, as a WebGPU tab must; bit-identical results on the same backend. */
  async backwardAsync(batch: MultimodalBatch, dTokens: tf.Tensor): Promise<DeviceBackwardResult> {
    const fn = 'SplitDevice.backwardAsync';
    const size = this.checkBackwardInputs(fn, batch, dTokens);
    this.checkRanges(fn, ...(await Promise.all([batch.labels?.data(), batch.text?.data()])));
    const localLoss = this.applyStep(batch, dTokens, size);
    try {
      return { localLoss: localLoss ? (await localLoss.data())[0]! : 0 };
    } finally {
      localLoss?.dispose();
    }
  }

  /** Copies of the model's exchanged parameters (`model.adapterParameters()`) followed by {@link SPLIT_HEAD_NAMES}. */
  parameters(): NamedTensor[] {
    return [...this.model.adapterParameters(), ...readNamed(this.head)];
  }

  /** {@link parameters} reading values asynchronously (what a tab uses: WebGPU's synchronous reads are not safe). */
  async parametersAsync(): Promise<NamedTensor[]> {
    return [...(await this.model.adapterParametersAsync()), ...(await readNamedAsync(this.head))];
  }

  /**
   * Writes any subset of {@link parameters}. Unknown or repeated names, wrong shapes and
   * NaN/Infinity raise `MODELS_BAD_INPUT`, merged adapters `MODELS_BAD_CONFIG`, before anything is written.
   */
  setParameters(params: Parameters): void {
    const fn = 'SplitDevice.setParameters';
    const headNames = new Set<string>(SPLIT_HEAD_NAMES);
    const modelPart = params.filter((t) => !headNames.has(t.name));
    const headPart = params.filter((t) => headNames.has(t.name));
    checkNamed(fn, this.head, headPart);
    if (modelPart.length > 0 && this.model.merged) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: adapters are merged; unmerge first`);
    try {
      this.model.checkAdapterParameters(modelPart, fn);
    } catch (err) {
      if (err instanceof FlCoreError) throw new ModelsError('MODELS_BAD_INPUT', err.message.replace(/^[A-Z_]+: /, ''));
      throw err;
    }
    if (modelPart.length > 0) this.model.setAdapterParameters(modelPart);
    writeNamed(this.head, headPart);
  }

  /** Number of scalars of {@link parameters}. */
  parameterCount(): number {
    return this.model.adapterParameterCount() + countNamed(this.head);
  }

  /** Releases the task head, the optimiser state and any held head gradient (not the model, which the caller owns). */
  dispose(): void {
    for (const e of this.head) e.variable.dispose();
    this.optimizer.dispose();
    this.discardHeadGradient();
  }

  private get kernel(): tf.Variable {
    return this.head[0]!.variable;
  }

  private get bias(): tf.Variable {
    return this.head[1]!.variable;
  }

  private logits(fused: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
    return tf.add(tf.matMul(fused as tf.Tensor2D, kernel as tf.Tensor2D), bias) as tf.Tensor2D;
  }

  /**
   * The model's forward pass on a batch whose label and token-id ranges are already checked. The
   * labels are left out and the text embedded with `idsChecked` because `MultimodalModel.forward`
   * would otherwise check both with synchronous reads; the ops are the same, so are the results.
   */
  private forwardChecked(batch: MultimodalBatch): ForwardResult {
    const { labels: _labels, ...inputs } = batch;
    const embedder = this.model.textEmbedder;
    return this.model.forward(inputs, batch.text && embedder ? { textEmbedded: embedder.embed(batch.text, { idsChecked: true }) } : {});
  }

  /** {@link encode}'s computation on a checked batch. */
  private cutOf(batch: MultimodalBatch): CutActivations {
    const [tokens, mask] = tf.tidy(() => {
      const cut = this.cut(this.forwardChecked(batch));
      return [cut.tokens, cut.mask];
    });
    return { tokens: tokens as tf.Tensor3D, mask: mask as tf.Tensor2D };
  }

  /** Tokens [B, M, c] (absent modalities zeroed: the model masks per example only in its head) and the mask. */
  private cut(out: ForwardResult): CutActivations {
    const [batch, m] = out.mask.shape;
    const tokens = tf.mul(tf.reshape(out.concepts, [batch, m, this.model.conceptDim]), tf.expandDims(out.mask, 2)) as tf.Tensor3D;
    return { tokens, mask: out.mask };
  }

  /** {@link headStep}'s computation on checked input: dFused, the head's batch-mean gradients, the mean loss and the hit count, all owned by the caller. */
  private headTensors(fused: tf.Tensor, labels: tf.Tensor, size: number): HeadTensors {
    const [dFused, dKernel, dBias, loss, correct] = tf.tidy(() => {
      const total = (f: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Scalar => tf.mul(crossEntropyLoss(this.logits(f, kernel, bias), labels), size);
      const { value, grads } = tf.valueAndGrads(total)([fused, this.kernel, this.bias]);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(this.logits(fused, this.kernel, this.bias), 1), tf.cast(labels, 'int32')), 'float32'));
      return [grads[0]!, tf.div(grads[1]!, size), tf.div(grads[2]!, size), tf.div(value, size), hits];
    });
    return { dFused: dFused as tf.Tensor2D, dKernel: dKernel!, dBias: dBias!, loss: loss!, correct: correct! };
  }

  /** Adds the head's gradients to those held for the next {@link backward}, releases the read scalars and builds {@link headStep}'s result. */
  private holdHeadGradient(head: HeadTensors, loss: number, correct: number): HeadStepResult {
    tf.dispose([head.loss, head.correct]);
    const pending = this.pendingHeadGrads;
    if (pending) {
      this.pendingHeadGrads = [tf.add(pending[0], head.dKernel), tf.add(pending[1], head.dBias)];
      tf.dispose([...pending, head.dKernel, head.dBias]);
    } else this.pendingHeadGrads = [head.dKernel, head.dBias];
    return { dFused: head.dFused, loss, correct };
  }

  /**
   * {@link backward}'s computation on checked input: the Adam step on every device weight, which
   * consumes the held head gradient. Returns the local head's mean cross-entropy before the step
   * (null for a batch without labels), owned by the caller.
   */
  private applyStep(batch: MultimodalBatch, dTokens: tf.Tensor, size: number): tf.Scalar | null {
    const variables = this.model.trainableAdapterVariables();
    const restore = variables.map((v) => v.trainable);
    const held: { localLoss?: tf.Scalar } = {};
    try {
      for (const v of variables) v.trainable = true;
      const { value, grads } = tf.variableGrads(() => {
        const out = this.forwardChecked(batch);
        const { tokens } = this.cut(out);
        // Σ_b <tokens_b, dTokens_b> / B: its gradient is the batch mean of the per-example vjps.
        let total = tf.div(tf.sum(tf.mul(tokens, dTokens)), size) as tf.Scalar;
        if (batch.labels) {
          held.localLoss = tf.keep(crossEntropyLoss(out.logits, batch.labels));
          if (this.localHeadWeight > 0) total = tf.add(total, tf.mul(this.localHeadWeight, held.localLoss));
        }
        return total;
      }, variables);
      value.dispose();
      // variableGrads drops variables the loss does not reach (the encoder of a modality the batch
      // lacks), but Adam keys its moments by position: every variable goes in, in the same order.
      const filled = variables.filter((v) => !grads[v.name]).map((v) => [v.name, tf.zerosLike(v)] as const);
      const complete = { ...grads, ...Object.fromEntries(filled) } as tf.NamedTensorMap;
      const [kernel, bias] = this.pendingHeadGrads ?? [tf.zerosLike(this.kernel), tf.zerosLike(this.bias)];
      this.pendingHeadGrads = null;
      try {
        this.optimizer.applyGradients([
          ...variables.map((v) => ({ name: v.name, tensor: complete[v.name]! })),
          { name: this.kernel.name, tensor: kernel },
          { name: this.bias.name, tensor: bias },
        ]);
      } finally {
        tf.dispose([...Object.values(grads), ...filled.map(([, t]) => t), kernel, bias]);
      }
      return held.localLoss ?? null;
    } catch (err) {
      held.localLoss?.dispose();
      throw err;
    } finally {
      variables.forEach((v, i) => (v.trainable = restore[i]!));
    }
  }

  private checkFused(fn: string, fused: tf.Tensor): number {
    if (fused.rank !== 2 || fused.dtype !== 'float32' || fused.shape[0]! < 1 || fused.shape[1] !== this.fusedDim)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: fused must be float32 [batch ≥ 1, ${this.fusedDim}], got ${fused.dtype} [${fused.shape.join(',')}]`);
    return fused.shape[0]!;
  }

  /** Shapes and dtypes of {@link headStep}'s input (the label range is {@link checkRanges}'); returns the batch size. */
  private checkHeadInputs(fn: string, fused: tf.Tensor, labels: tf.Tensor): number {
    const size = this.checkFused(fn, fused);
    if (labels.rank !== 1 || labels.dtype !== 'int32' || labels.shape[0] !== size)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: labels must be int32 [${size}], got ${labels.dtype} [${labels.shape.join(',')}]`);
    return size;
  }

  /** Everything about {@link backward}'s input but the value ranges ({@link checkRanges}); returns the batch size. */
  private checkBackwardInputs(fn: string, batch: MultimodalBatch, dTokens: tf.Tensor): number {
    if (this.model.merged) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: adapters are merged; unmerge before training`);
    const size = this.model.checkBatch(batch, fn, false);
    const [m, c] = [this.model.modalities.length, this.model.conceptDim];
    if (dTokens.rank !== 3 || dTokens.dtype !== 'float32' || dTokens.shape[0] !== size || dTokens.shape[1] !== m || dTokens.shape[2] !== c)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: dTokens must be float32 [${size}, ${m}, ${c}], got ${dTokens.dtype} [${dTokens.shape.join(',')}]`);
    if (this.localHeadWeight > 0 && !batch.labels) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: localHeadWeight > 0 needs a batch with labels`);
    return size;
  }

  /**
   * The value checks, on values the caller has read (synchronously or not: the one difference
   * between the sync and async methods): labels in [0, K), text ids inside the embedding table.
   */
  private checkRanges(fn: string, labels: ArrayLike<number> | undefined, textIds: ArrayLike<number> | undefined): void {
    if (labels) {
      const [lo, hi] = valueRange(labels);
      if (lo < 0 || hi >= this.model.numClasses)
        throw new ModelsError('MODELS_BAD_INPUT', `${fn}: labels must lie in [0, ${this.model.numClasses}), got [${lo}, ${hi}]`);
    }
    const vocabSize = this.model.textEmbedder?.vocabSize;
    if (textIds && vocabSize !== undefined) {
      const [lo, hi] = valueRange(textIds);
      if (lo < 0 || hi >= vocabSize) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: text ids must lie in [0, ${vocabSize}), got [${lo}, ${hi}]`);
    }
  }
}

/** What {@link SplitDevice}'s head computation leaves for the caller: the step's tensors before any value is read. */
interface HeadTensors {
  dFused: tf.Tensor2D;
  dKernel: tf.Tensor;
  dBias: tf.Tensor;
  loss: tf.Tensor;
  correct: tf.Tensor;
}

/** [min, max] of `values`; [Infinity, -Infinity] when empty, which every range check passes. */
function valueRange(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * Seeds of a split task's initial task head and edge from the task's seed, offset so they share no
 * stream with the adapters' (seeded by the task seed itself): the coordinator's initial global and
 * the experiments' simulator build the same one.
 */
export function splitInitSeeds(taskSeed: number): { readonly head: number; readonly edge: number } {
  return { head: taskSeed + 11, edge: taskSeed + 13 };
}
