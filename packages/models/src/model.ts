/**
 * The multimodal model clients train: frozen base encoders carrying LoRA adapters (Hu et al. 2021,
 * arXiv:2106.09685), per-modality concept projections, and a NAM head (Agarwal et al. 2021,
 * arXiv:2004.13912) or, for ablations, a plain linear head (linearHead.ts); trained with FedMM-X's
 * loss (Balija 2025, arXiv:2503.19564) L = L_task + λ₁ L_modal + λ₂ L_intp — cross-entropy; the
 * cross-modal term in the variant `modalLoss` names (the Jensen–Shannon divergence between the
 * modalities' predictions by default, or cross-modal distillation toward the fused prediction; see
 * losses.ts); and shape-function smoothness plus contribution sparsity — optionally with a FedProx
 * proximal term and distillation.
 *
 * Only adapters, concept projections and the head are trainable; they are exchanged with fl-core as
 * named `Parameters` whose first path segment is the modality (`image/pointwise/lora_a`,
 * `text/concept/kernel`, `audio/nam/w2`) or `fusion` for the shared bias β, so each group is
 * aggregated only over clients holding that modality. A batch may carry any subset of modalities;
 * a missing one contributes exactly zero through the head's mask.
 *
 * The linear head's kernel reads every modality's concepts, but its rows for modality m only ever
 * get a gradient from examples where m is present (the others' concepts are masked to zero), so
 * its block W_m is named `m/linear/kernel` and aggregated with m: putting the whole kernel in
 * `fusion` would average each block with the unchanged blocks of clients lacking m and dilute it,
 * and the ablation would then change the aggregation as well as the head. Only the shared bias is
 * `fusion/linear/bias`.
 */
import * as tf from '@tensorflow/tfjs';
import { FlCoreError, assertFinite, type Parameters, type Tensor as NamedTensor } from '@chorus/fl-core';
import { MODEL_HEADS } from '@chorus/protocol';
import type { ModalLoss, ModelHead } from '@chorus/protocol';
import { applyLora, chainLayers } from './adapt.js';
import { MODALITIES, DEFAULT_LORA_TARGETS, maskedMeanPool, type Modality, type TextEmbedder } from './encoders.js';
import { ModelsError, checkInt, checkPositive } from './errors.js';
import { isLoraLayer, type LoraConv1x1, type LoraDense } from './lora.js';
import {
  MODAL_LOSSES,
  SMOOTHNESS_GRID,
  contributionSparsity,
  crossEntropyLoss,
  distillationLoss,
  crossModalLoss,
  proximalTerm,
  shapeSmoothness,
} from './losses.js';
import { LinearHead } from './linearHead.js';
import { NAM_WEIGHT_NAMES, NamHead } from './nam.js';

// Heads a MultimodalModel can carry: the protocol's list, which task files and round configs name.
export { MODEL_HEADS };
export type { ModelHead };

/** A base encoder and the layers of it that take adapters. */
export interface EncoderSpec {
  /** Any chain-shaped LayersModel mapping the modality's features to a [batch, d] embedding. */
  base: tf.LayersModel;
  /** Dense / 1×1 Conv2D layers to adapt; default {@link DEFAULT_LORA_TARGETS} for the modality. */
  targets?: readonly string[];
}

/** Configuration of {@link MultimodalModel}. */
export interface MultimodalModelConfig {
  /** Number of classes K. */
  numClasses: number;
  /** Encoders by modality; at least one. */
  encoders: Partial<Record<Modality, EncoderSpec>>;
  /** Frozen word-embedding table; required with a text encoder (not owned: the caller disposes it). */
  textEmbedder?: TextEmbedder;
  /** Concepts per modality c; default 8. */
  conceptDim?: number;
  /** Hidden width of each NAM shape function; default 8 (not used by the linear head). */
  namHiddenUnits?: number;
  /** 'nam' (default): a NAM over the concepts; 'linear': one linear map over the concatenated concepts (ablation). */
  head?: ModelHead;
  /** Adapter rank r; default 4. */
  loraRank?: number;
  /** Adapter scaling α; default 8. */
  loraAlpha?: number;
  /** Adam learning rate; default 1e-3. */
  learningRate?: number;
  /** Seed of every initialiser; default 0. */
  seed?: number;
}

/** One batch. Inputs are optional per modality; arrays are [batch, …]. */
export interface MultimodalBatch {
  /** Images [batch, h, w, c], float32 in [0, 1]. */
  image?: tf.Tensor;
  /** Token ids [batch, length], int32, 0 = padding. */
  text?: tf.Tensor;
  /** Log-mel spectrograms [batch, frames, mels] (see `LogMelFrontend`). */
  audio?: tf.Tensor;
  /** Per-example presence [batch, numModalities] of 0/1 in `model.modalities` order; default 1 for every input given. */
  present?: tf.Tensor;
  /** Class labels [batch], int32. */
  labels?: tf.Tensor;
}

/** What {@link MultimodalModel.forward} returns; the caller owns (and disposes) every tensor. */
export interface ForwardResult {
  /** [batch, K] = β + Σ contributions. */
  logits: tf.Tensor2D;
  /** Every head term's contribution [batch, M·c, K]; terms of absent modalities are exactly 0. */
  contributions: tf.Tensor3D;
  /** Each modality's own logits β + Σ_i f_{m,i} [batch, M, K]. */
  perModalityLogits: tf.Tensor3D;
  /** Effective presence [batch, M]. */
  mask: tf.Tensor2D;
  /** Concept vectors [batch, M·c] (zeros for absent modalities). */
  concepts: tf.Tensor2D;
}

/** Options of {@link MultimodalModel.trainStep}. */
export interface TrainStepOptions {
  /** Weight λ₁ of L_modal; default 0.1. */
  modalWeight?: number;
  /** Which L_modal (see `MODAL_LOSSES`); default 'js'. */
  modalLoss?: ModalLoss;
  /** Weight λ₂ of L_intp (see {@link MultimodalModel.interpretabilityLoss}); default 0 (off). */
  interpretabilityWeight?: number;
  /** FedProx: μ and the global parameters (names from `adapterParameters()`, any subset). */
  proximal?: { mu: number; global: Parameters };
  /** Distillation toward teacher logits [batch, K] for this batch (e.g. on public data). */
  distillation?: { teacherLogits: tf.Tensor; temperature: number; weight: number };
  /** 'adapters' (default) trains adapters + head; 'full' trains every base weight + head (baseline for benchmarks). */
  mode?: 'adapters' | 'full';
}

/** Loss values of one step (plain numbers; no tensors escape). */
export interface TrainStepResult {
  loss: number;
  crossEntropy: number;
  modal: number;
  /** L_intp, unweighted (0 when off). */
  interpretability: number;
  proximal: number;
  distillation: number;
  numExamples: number;
}

/** The loss terms of one step as scalars; null where the term is off. */
interface StepTerms {
  loss: tf.Scalar;
  crossEntropy: tf.Scalar | null;
  modal: tf.Scalar | null;
  interpretability: tf.Scalar | null;
  proximal: tf.Scalar | null;
  distillation: tf.Scalar | null;
}

const TERM_NAMES = ['loss', 'crossEntropy', 'modal', 'interpretability', 'proximal', 'distillation'] as const;

function mapTerms(terms: StepTerms, read: (t: tf.Scalar | null, index: number) => number): Omit<TrainStepResult, 'numExamples'> {
  const [loss, crossEntropy, modal, interpretability, proximal, distillation] = TERM_NAMES.map((k, i) => read(terms[k], i)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { loss, crossEntropy, modal, interpretability, proximal, distillation };
}

/** The engine variable behind a layer weight (what optimisers and gradients key on). */
function variableOf(weight: tf.LayerVariable): tf.Variable {
  return weight.read() as tf.Variable;
}

interface NamedVariable {
  name: string;
  variable: tf.LayerVariable;
}

/** Frozen encoders + LoRA adapters + concept projections + NAM head, with training, prediction and parameter exchange. */
export class MultimodalModel {
  readonly modalities: Modality[];
  readonly numClasses: number;
  readonly conceptDim: number;
  /** Which head the model carries. */
  readonly headKind: ModelHead;
  /** The head layer, NAM or linear; both expose per-term contributions, `terms`, `logits` and `beta`. */
  readonly conceptHead: NamHead | LinearHead;
  readonly loraRank: number;
  readonly loraAlpha: number;
  readonly textEmbedder: TextEmbedder | null;
  private readonly encoders = new Map<Modality, tf.LayersModel>();
  /** L_intp's fixed grid, [points, numTerms]: built on first use and kept, not rebuilt every training step. */
  private smoothnessInputs: tf.Tensor2D | null = null;
  private readonly conceptLayers = new Map<Modality, tf.layers.Layer>();
  // TF.js optimisers keep slot variables by position in the gradient list, so each variable list gets its own optimiser.
  private readonly optimizers: Record<'adapters' | 'full', tf.Optimizer>;
  private readonly adapterList: NamedVariable[] = [];

  constructor(config: MultimodalModelConfig) {
    this.numClasses = checkInt('MultimodalModel', 'numClasses', config.numClasses, 2);
    this.conceptDim = checkInt('MultimodalModel', 'conceptDim', config.conceptDim ?? 8, 1);
    const hidden = checkInt('MultimodalModel', 'namHiddenUnits', config.namHiddenUnits ?? 8, 1);
    const headKind = config.head ?? 'nam';
    if (!(MODEL_HEADS as readonly string[]).includes(headKind))
      throw new ModelsError('MODELS_BAD_CONFIG', `MultimodalModel: head must be one of ${MODEL_HEADS.join(', ')}, got ${String(headKind)}`);
    this.headKind = headKind;
    this.loraRank = checkInt('MultimodalModel', 'loraRank', config.loraRank ?? 4, 1);
    this.loraAlpha = checkPositive('MultimodalModel', 'loraAlpha', config.loraAlpha ?? 8);
    const learningRate = checkPositive('MultimodalModel', 'learningRate', config.learningRate ?? 1e-3);
    const seed = config.seed ?? 0;
    for (const key of Object.keys(config.encoders)) {
      if (!(MODALITIES as readonly string[]).includes(key))
        throw new ModelsError('MODELS_BAD_CONFIG', `MultimodalModel: unknown modality '${key}' (known: ${MODALITIES.join(', ')})`);
    }
    this.modalities = MODALITIES.filter((m) => config.encoders[m] !== undefined);
    if (this.modalities.length === 0) throw new ModelsError('MODELS_BAD_CONFIG', 'MultimodalModel: at least one encoder is required');
    if (this.modalities.includes('text') && !config.textEmbedder)
      throw new ModelsError('MODELS_BAD_CONFIG', 'MultimodalModel: a text encoder needs textEmbedder');
    this.textEmbedder = config.textEmbedder ?? null;
    for (const m of this.modalities) {
      const base = config.encoders[m]!.base;
      const out = base.outputs[0]?.shape;
      if (base.outputs.length !== 1 || out?.length !== 2 || out[1] == null)
        throw new ModelsError('MODELS_BAD_BASE', `MultimodalModel: the ${m} encoder must output [batch, d]`);
      if (m === 'text' && base.inputs[0]!.shape[1] !== this.textEmbedder!.dim) {
        throw new ModelsError(
          'MODELS_BAD_BASE',
          `MultimodalModel: the text encoder takes ${base.inputs[0]!.shape[1]}-wide input but the embedding table is ${this.textEmbedder!.dim} wide`,
        );
      }
    }
    this.modalities.forEach((m, i) => {
      const spec = config.encoders[m]!;
      const adapted = applyLora(spec.base, {
        targets: spec.targets ?? DEFAULT_LORA_TARGETS[m],
        rank: this.loraRank,
        alpha: this.loraAlpha,
        seed: seed + 100 * i,
      });
      this.encoders.set(m, adapted);
      const dim = adapted.outputs[0]!.shape[1]!;
      const concept = tf.layers.dense({
        name: `${m}_concept`,
        units: this.conceptDim,
        activation: 'tanh',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 100 * i + 50 }),
      });
      tf.tidy(() => {
        concept.apply(tf.zeros([1, dim]));
      });
      this.conceptLayers.set(m, concept);
    });
    const headArgs = { modalities: [...this.modalities], conceptDim: this.conceptDim, numClasses: this.numClasses, seed: seed + 7 };
    this.conceptHead =
      headKind === 'nam' ? new NamHead({ ...headArgs, name: 'nam_head', hiddenUnits: hidden }) : new LinearHead({ ...headArgs, name: 'linear_head' });
    tf.tidy(() => {
      this.conceptHead.apply([...this.modalities.map(() => tf.zeros([1, this.conceptDim])), tf.ones([1, this.modalities.length])]);
    });
    for (const m of this.modalities) {
      for (const layer of chainLayers(this.encoders.get(m)!).filter(isLoraLayer)) {
        const { loraA, loraB } = layer.loraVariables;
        this.adapterList.push({ name: `${m}/${layer.name}/lora_a`, variable: loraA }, { name: `${m}/${layer.name}/lora_b`, variable: loraB });
      }
      const [kernel, bias] = this.conceptLayers.get(m)!.trainableWeights;
      this.adapterList.push({ name: `${m}/concept/kernel`, variable: kernel! }, { name: `${m}/concept/bias`, variable: bias! });
      const head = this.conceptHead;
      if (head instanceof NamHead)
        head.modalityWeights(m).forEach((variable, j) => this.adapterList.push({ name: `${m}/nam/${NAM_WEIGHT_NAMES[j]}`, variable }));
      else this.adapterList.push({ name: `${m}/linear/kernel`, variable: head.modalityKernel(m) });
    }
    this.adapterList.push({ name: headKind === 'nam' ? 'fusion/nam/beta' : 'fusion/linear/bias', variable: this.conceptHead.beta });
    this.optimizers = { adapters: tf.train.adam(learningRate), full: tf.train.adam(learningRate) };
  }

  /** The NAM head; throws `MODELS_BAD_CONFIG` for a linear-head model, which has no shape functions (see {@link conceptHead}). */
  get head(): NamHead {
    const head = this.conceptHead;
    if (!(head instanceof NamHead)) throw new ModelsError('MODELS_BAD_CONFIG', 'MultimodalModel.head: this model has a linear head, not a NAM');
    return head;
  }

  /** The adapted encoder of `modality` (its LoRA layers hold the frozen base weights). */
  encoder(modality: Modality): tf.LayersModel {
    const e = this.encoders.get(modality);
    if (!e) throw new ModelsError('MODELS_BAD_INPUT', `MultimodalModel.encoder: no '${modality}' encoder (have ${this.modalities.join(', ')})`);
    return e;
  }

  /** The concept projection (Dense d → c, tanh) of `modality`. */
  conceptLayer(modality: Modality): tf.layers.Layer {
    const c = this.conceptLayers.get(modality);
    if (!c) throw new ModelsError('MODELS_BAD_INPUT', `MultimodalModel.conceptLayer: no '${modality}' modality`);
    return c;
  }

  /** LoRA layers of every encoder, by modality. */
  loraLayers(): { modality: Modality; layer: LoraDense | LoraConv1x1 }[] {
    return this.modalities.flatMap((m) =>
      chainLayers(this.encoders.get(m)!)
        .filter(isLoraLayer)
        .map((layer) => ({ modality: m, layer })),
    );
  }

  /** Whether the adapters are folded into the base kernels. */
  get merged(): boolean {
    return this.loraLayers().some(({ layer }) => layer.merged);
  }

  /** Folds every adapter into its kernel (faster inference; training and parameter updates are refused until {@link unmerge}). */
  merge(): void {
    for (const { layer } of this.loraLayers()) if (!layer.merged) layer.merge();
  }

  /** Takes every adapter back out of its kernel. */
  unmerge(): void {
    for (const { layer } of this.loraLayers()) if (layer.merged) layer.unmerge();
  }

  /** Checks a batch's shapes (and, unless `labelRange` is false, its label range) against the model; returns its batch size. */
  checkBatch(batch: MultimodalBatch, fn = 'MultimodalModel', labelRange = true): number {
    let size: number | null = null;
    for (const key of Object.keys(batch)) {
      if (!['image', 'text', 'audio', 'present', 'labels'].includes(key)) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: unknown batch field '${key}'`);
    }
    for (const m of MODALITIES) {
      const x = batch[m];
      if (x === undefined) continue;
      if (!this.encoders.has(m)) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: batch has ${m} input but the model has no ${m} encoder`);
      const expected = m === 'text' ? [null, null] : this.encoders.get(m)!.inputs[0]!.shape;
      const okRank = x.rank === expected.length && expected.every((d, i) => i === 0 || d === null || d === x.shape[i]);
      const okType = m === 'text' ? x.dtype === 'int32' : x.dtype === 'float32';
      if (!okRank || !okType)
        throw new ModelsError(
          'MODELS_BAD_INPUT',
          `${fn}: ${m} input must be ${m === 'text' ? 'int32' : 'float32'} [${expected.map((d) => d ?? '?').join(',')}], got ${x.dtype} [${x.shape.join(',')}]`,
        );
      if (size !== null && x.shape[0] !== size) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: inputs disagree on batch size (${size} vs ${x.shape[0]})`);
      size = x.shape[0]!;
    }
    if (size === null) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: batch has no input of any modality the model holds`);
    if (batch.present && (batch.present.rank !== 2 || batch.present.shape[0] !== size || batch.present.shape[1] !== this.modalities.length)) {
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: present must be [${size}, ${this.modalities.length}], got [${batch.present.shape.join(',')}]`);
    }
    if (batch.labels) {
      if (batch.labels.rank !== 1 || batch.labels.shape[0] !== size || batch.labels.dtype !== 'int32') {
        throw new ModelsError('MODELS_BAD_INPUT', `${fn}: labels must be int32 [${size}], got ${batch.labels.dtype} [${batch.labels.shape.join(',')}]`);
      }
      if (labelRange) {
        const [lo, hi] = tf.tidy(() => [tf.min(batch.labels!).dataSync()[0]!, tf.max(batch.labels!).dataSync()[0]!]);
        this.checkLabelRange(lo!, hi!, fn);
      }
    }
    return size;
  }

  private checkLabelRange(lo: number, hi: number, fn: string): void {
    if (lo < 0 || hi >= this.numClasses) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: labels must lie in [0, ${this.numClasses}), got [${lo}, ${hi}]`);
  }

  /**
   * The label and token-id range checks, on values read asynchronously: on WebGPU a synchronous
   * read goes through a canvas, which SwiftShader answers with zeros while losing the device.
   */
  private async checkRangesAsync(batch: MultimodalBatch, fn: string): Promise<void> {
    const range = async (t: tf.Tensor): Promise<[number, number]> => {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of await t.data()) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      return [lo, hi];
    };
    if (batch.labels && batch.labels.size > 0) this.checkLabelRange(...(await range(batch.labels)), fn);
    if (batch.text && batch.text.size > 0 && this.textEmbedder) {
      const [lo, hi] = await range(batch.text);
      if (lo < 0 || hi >= this.textEmbedder.vocabSize)
        throw new ModelsError('MODELS_BAD_INPUT', `TextEmbedder.embed: ids must lie in [0, ${this.textEmbedder.vocabSize}), got [${lo}, ${hi}]`);
    }
  }

  /**
   * Forward pass. `textEmbedded` lets explanations differentiate with respect to the token
   * embeddings ([batch, length, dim]) instead of the ids. Call inside a tidy or dispose the result.
   */
  forward(batch: MultimodalBatch, overrides: { textEmbedded?: tf.Tensor3D } = {}): ForwardResult {
    return this.forwardChecked(batch, this.checkBatch(batch, 'MultimodalModel.forward'), overrides, false);
  }

  /** {@link forward} on a batch whose shapes (and, when `idsChecked`, token ids) are already checked. */
  private forwardChecked(batch: MultimodalBatch, size: number, overrides: { textEmbedded?: tf.Tensor3D }, idsChecked: boolean): ForwardResult {
    return tf.tidy(() => {
      const concepts: tf.Tensor[] = [];
      const provided: number[] = [];
      for (const m of this.modalities) {
        const x = batch[m];
        if (x === undefined) {
          concepts.push(tf.zeros([size, this.conceptDim]));
          provided.push(0);
          continue;
        }
        let features: tf.Tensor = x;
        if (m === 'text') features = maskedMeanPool(overrides.textEmbedded ?? this.textEmbedder!.embed(x, { idsChecked }), x);
        const embedding = this.encoders.get(m)!.apply(features) as tf.Tensor;
        concepts.push(this.conceptLayers.get(m)!.apply(embedding) as tf.Tensor);
        provided.push(1);
      }
      const providedRow = tf.tensor2d([provided], [1, this.modalities.length]);
      const mask = (batch.present ? tf.mul(tf.cast(batch.present, 'float32'), providedRow) : tf.tile(providedRow, [size, 1])) as tf.Tensor2D;
      const contributions = this.conceptHead.apply([...concepts, mask]) as tf.Tensor3D;
      const logits = this.conceptHead.logits(contributions);
      const grouped = tf.reshape(contributions, [size, this.modalities.length, this.conceptDim, this.numClasses]);
      const perModalityLogits = tf.add(tf.sum(grouped, 2), this.conceptHead.beta.read()) as tf.Tensor3D;
      return { logits, contributions, perModalityLogits, mask, concepts: tf.concat(concepts, 1) as tf.Tensor2D };
    });
  }

  /** Logits [batch, K] (caller disposes). */
  predict(batch: MultimodalBatch): tf.Tensor2D {
    return tf.tidy(() => this.forward(batch).logits);
  }

  /** One optimiser step on `batch`; returns the loss terms. Throws `MODELS_BAD_INPUT` (changing nothing) on a malformed batch. */
  trainStep(batch: MultimodalBatch, options: TrainStepOptions = {}): TrainStepResult {
    const size = this.checkBatch(batch, 'MultimodalModel.trainStep');
    const terms = this.stepTerms(batch, size, options, false);
    try {
      return { ...mapTerms(terms, (t) => (t ? t.dataSync()[0]! : 0)), numExamples: size };
    } finally {
      tf.dispose(Object.values(terms).filter((t): t is tf.Scalar => t !== null));
    }
  }

  /**
   * {@link trainStep} with every value (label and token ranges, losses) read asynchronously, as a
   * WebGPU tab must: a synchronous read there can return zeros and lose the device.
   */
  async trainStepAsync(batch: MultimodalBatch, options: TrainStepOptions = {}): Promise<TrainStepResult> {
    const fn = 'MultimodalModel.trainStepAsync';
    const size = this.checkBatch(batch, fn, false);
    await this.checkRangesAsync(batch, fn);
    const terms = this.stepTerms(batch, size, options, true);
    try {
      const values = await Promise.all(TERM_NAMES.map(async (k) => (terms[k] ? (await terms[k].data())[0]! : 0)));
      return { ...mapTerms(terms, (_, i) => values[i]!), numExamples: size };
    } finally {
      tf.dispose(Object.values(terms).filter((t): t is tf.Scalar => t !== null));
    }
  }

  /** Validates the options, takes one optimiser step and returns the loss terms as scalars the caller disposes. */
  private stepTerms(batch: MultimodalBatch, size: number, options: TrainStepOptions, idsChecked: boolean): StepTerms {
    const fn = 'MultimodalModel.trainStep';
    if (this.merged) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: adapters are merged; unmerge before training`);
    const modalWeight = options.modalWeight ?? 0.1;
    if (!(Number.isFinite(modalWeight) && modalWeight >= 0)) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: modalWeight must be ≥ 0, got ${modalWeight}`);
    const modalKind = options.modalLoss ?? 'js';
    if (!(MODAL_LOSSES as readonly string[]).includes(modalKind))
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: modalLoss must be one of ${MODAL_LOSSES.join(', ')}, got ${String(modalKind)}`);
    const intpWeight = options.interpretabilityWeight ?? 0;
    if (!(Number.isFinite(intpWeight) && intpWeight >= 0))
      throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: interpretabilityWeight must be ≥ 0, got ${intpWeight}`);
    if (!batch.labels && !options.distillation) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: a batch without labels needs a distillation target`);
    const kd = options.distillation;
    if (kd && (kd.teacherLogits.shape[0] !== size || kd.teacherLogits.shape[1] !== this.numClasses)) {
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: teacherLogits must be [${size}, ${this.numClasses}], got [${kd.teacherLogits.shape.join(',')}]`);
    }
    const mode = options.mode ?? 'adapters';
    const prox = options.proximal ? this.proximalPairs(options.proximal.global) : null;
    const variables = mode === 'full' ? this.fullVariables() : this.adapterList.map((e) => variableOf(e.variable));
    const restore = variables.map((v) => v.trainable);
    const parts: Omit<StepTerms, 'loss'> = { crossEntropy: null, modal: null, interpretability: null, proximal: null, distillation: null };
    try {
      for (const v of variables) v.trainable = true;
      const { value, grads } = tf.variableGrads(() => {
        const out = this.forwardChecked(batch, size, {}, idsChecked);
        let total: tf.Scalar = tf.scalar(0);
        if (batch.labels) total = tf.add(total, (parts.crossEntropy = tf.keep(crossEntropyLoss(out.logits, batch.labels))));
        if (modalWeight > 0 && this.modalities.length > 1)
          total = tf.add(total, tf.mul(modalWeight, (parts.modal = tf.keep(crossModalLoss(modalKind, out.perModalityLogits, out.logits, out.mask)))));
        if (intpWeight > 0) total = tf.add(total, tf.mul(intpWeight, (parts.interpretability = tf.keep(this.interpretabilityLoss(out.contributions)))));
        if (prox)
          total = tf.add(
            total,
            (parts.proximal = tf.keep(
              proximalTerm(
                prox.local.map((v) => v.read()),
                prox.global,
                options.proximal!.mu,
              ),
            )),
          );
        if (kd) total = tf.add(total, tf.mul(kd.weight, (parts.distillation = tf.keep(distillationLoss(out.logits, kd.teacherLogits, kd.temperature)))));
        return total;
      }, variables);
      // variableGrads drops variables the loss does not reach (e.g. text weights on an image-only
      // batch), but TF.js optimisers key slot variables by position, so always pass every variable,
      // in the same order, with zeros where there was no gradient.
      const complete: tf.NamedTensorMap = {};
      for (const v of variables) complete[v.name] = grads[v.name] ?? tf.zerosLike(v);
      this.optimizers[mode].applyGradients(complete);
      tf.dispose(variables.filter((v) => !grads[v.name]).map((v) => complete[v.name]!));
      tf.dispose(grads);
      return { loss: value, ...parts };
    } catch (err) {
      tf.dispose(Object.values(parts).filter((t): t is tf.Scalar => t !== null));
      throw err;
    } finally {
      variables.forEach((v, i) => (v.trainable = restore[i]!));
      if (prox) tf.dispose(prox.global);
    }
  }

  /**
   * FedMM-X's L_intp for a batch's contributions [batch, M·c, K]: the roughness of every shape
   * function over {@link SMOOTHNESS_GRID} (`shapeSmoothness`: mean squared change of slope, 0 for a
   * linear head) plus the mean |contribution| (`contributionSparsity`, an L1 penalty). Differentiable
   * in the head's weights (and, through the contributions, in everything before it); call inside a
   * gradient scope or tidy.
   */
  interpretabilityLoss(contributions: tf.Tensor): tf.Scalar {
    const f = this.conceptHead.numTerms;
    if (contributions.rank !== 3 || contributions.shape[1] !== f || contributions.shape[2] !== this.numClasses) {
      throw new ModelsError(
        'MODELS_BAD_INPUT',
        `MultimodalModel.interpretabilityLoss: contributions must be [batch, ${f}, ${this.numClasses}], got [${contributions.shape.join(',')}]`,
      );
    }
    const { points, min, max } = SMOOTHNESS_GRID;
    this.smoothnessInputs ??= tf.keep(tf.tidy(() => tf.tile(tf.reshape(tf.linspace(min, max, points), [points, 1]), [1, f]) as tf.Tensor2D));
    const inputs = this.smoothnessInputs;
    return tf.tidy(() => {
      const values = this.conceptHead.terms(inputs); // [points, F, K]
      return tf.add(shapeSmoothness(values, (max - min) / (points - 1)), contributionSparsity(contributions)) as tf.Scalar;
    });
  }

  /** Mean cross-entropy and accuracy over labelled batches. */
  evaluate(batches: readonly MultimodalBatch[]): { loss: number; accuracy: number; numExamples: number } {
    let loss = 0;
    let correct = 0;
    let n = 0;
    for (const batch of batches) {
      if (!batch.labels) throw new ModelsError('MODELS_BAD_INPUT', 'MultimodalModel.evaluate: every batch needs labels');
      const size = this.checkBatch(batch, 'MultimodalModel.evaluate');
      const [l, c] = tf.tidy(() => {
        const logits = this.forward(batch).logits;
        const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels!), 'float32'));
        return [crossEntropyLoss(logits, batch.labels!).dataSync()[0]!, hits.dataSync()[0]!];
      });
      loss += l! * size;
      correct += c!;
      n += size;
    }
    return { loss: n > 0 ? loss / n : 0, accuracy: n > 0 ? correct / n : 0, numExamples: n };
  }

  /** {@link evaluate} with every value read asynchronously (see {@link trainStepAsync}). */
  async evaluateAsync(batches: readonly MultimodalBatch[]): Promise<{ loss: number; accuracy: number; numExamples: number }> {
    const fn = 'MultimodalModel.evaluateAsync';
    let loss = 0;
    let correct = 0;
    let n = 0;
    for (const batch of batches) {
      if (!batch.labels) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: every batch needs labels`);
      const size = this.checkBatch(batch, fn, false);
      await this.checkRangesAsync(batch, fn);
      const [l, c] = tf.tidy(() => {
        const logits = this.forwardChecked(batch, size, {}, true).logits;
        const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels!), 'float32'));
        return [crossEntropyLoss(logits, batch.labels!), hits];
      });
      try {
        const [lv, cv] = await Promise.all([l.data(), c.data()]);
        loss += lv[0]! * size;
        correct += cv[0]!;
      } finally {
        tf.dispose([l, c]);
      }
      n += size;
    }
    return { loss: n > 0 ? loss / n : 0, accuracy: n > 0 ? correct / n : 0, numExamples: n };
  }

  /** The exchanged name of an adapter variable (`image/pointwise/lora_a`); throws `MODELS_BAD_INPUT` for any other variable. */
  adapterName(variable: tf.LayerVariable): string {
    const entry = this.adapterList.find((e) => e.variable === variable);
    if (!entry) throw new ModelsError('MODELS_BAD_INPUT', `MultimodalModel.adapterName: '${variable.name}' is not an exchanged parameter`);
    return entry.name;
  }

  /** Names of the exchanged parameters, in `adapterParameters()` order. */
  adapterNames(): string[] {
    return this.adapterList.map((e) => e.name);
  }

  /** Trainable state as fl-core Parameters (copies), optionally only the given groups (e.g. ['image', 'fusion']). */
  adapterParameters(groups?: readonly string[]): NamedTensor[] {
    const wanted = groups ? new Set(groups) : null;
    return this.adapterList
      .filter((e) => !wanted || wanted.has(e.name.slice(0, e.name.indexOf('/'))))
      .map((e) => {
        const value = e.variable.read();
        return { name: e.name, shape: [...value.shape], values: new Float32Array(value.dataSync()) };
      });
  }

  /** {@link adapterParameters} read asynchronously (see {@link trainStepAsync}). */
  async adapterParametersAsync(groups?: readonly string[]): Promise<NamedTensor[]> {
    const wanted = groups ? new Set(groups) : null;
    const entries = this.adapterList.filter((e) => !wanted || wanted.has(e.name.slice(0, e.name.indexOf('/'))));
    return Promise.all(
      entries.map(async (e) => {
        const value = e.variable.read();
        return { name: e.name, shape: [...value.shape], values: new Float32Array(await value.data()) };
      }),
    );
  }

  /** The engine variables behind the exchanged parameters, in `adapterNames()` order (for callers that run their own optimiser step, as split learning does). */
  trainableAdapterVariables(): tf.Variable[] {
    return this.adapterList.map((e) => variableOf(e.variable));
  }

  /** Names and shapes of the exchanged parameters, in `adapterParameters()` order, without reading any value. */
  adapterShapes(): { name: string; shape: number[] }[] {
    return this.adapterList.map((e) => ({ name: e.name, shape: [...e.variable.read().shape] }));
  }

  /**
   * Throws as {@link setAdapterParameters} would for `params` (unknown or repeated name, wrong shape:
   * `PARAMS_MISMATCH`; NaN/Infinity: `PARAMS_NON_FINITE`), messages led by `fn`; changes nothing.
   */
  checkAdapterParameters(params: Parameters, fn: string): void {
    const byName = new Map(this.adapterList.map((e) => [e.name, e.variable]));
    const seen = new Set<string>();
    for (const t of params) {
      const v = byName.get(t.name);
      if (!v) throw new FlCoreError('PARAMS_MISMATCH', `${fn}: unknown tensor '${t.name}'`);
      if (seen.has(t.name)) throw new FlCoreError('PARAMS_MISMATCH', `${fn}: '${t.name}' given twice`);
      seen.add(t.name);
      if (t.shape.join(',') !== v.shape.join(',') || t.values.length !== v.read().size) {
        throw new FlCoreError('PARAMS_MISMATCH', `${fn}: '${t.name}' has shape [${t.shape.join(',')}], expected [${v.shape.join(',')}]`);
      }
    }
    assertFinite(params, fn);
  }

  /**
   * Writes named parameters (any subset of `adapterNames()`). Every tensor is checked first — unknown
   * name or wrong shape: `PARAMS_MISMATCH`; NaN/Infinity: `PARAMS_NON_FINITE` — so bad input changes nothing.
   */
  setAdapterParameters(params: Parameters): void {
    if (this.merged) throw new ModelsError('MODELS_BAD_CONFIG', 'MultimodalModel.setAdapterParameters: adapters are merged; unmerge first');
    this.checkAdapterParameters(params, 'setAdapterParameters');
    const byName = new Map(this.adapterList.map((e) => [e.name, e.variable]));
    for (const t of params) {
      const v = byName.get(t.name)!;
      const value = tf.tensor(t.values, v.shape as number[]);
      v.write(value);
      value.dispose();
    }
  }

  /** Every base (non-adapter) weight of the encoders, as variables. */
  baseVariables(): tf.Variable[] {
    const adapters = new Set(this.adapterList.map((e) => variableOf(e.variable)));
    return this.modalities.flatMap((m) => this.encoders.get(m)!.weights.map(variableOf)).filter((v) => !adapters.has(v));
  }

  /** Scalars in the full model (base encoders + concept projections + head; adapters and the text table excluded). */
  fullParameterCount(): number {
    const base = this.baseVariables().reduce((n, v) => n + v.size, 0);
    const head = this.adapterList.filter((e) => !e.name.includes('/lora_')).reduce((n, e) => n + e.variable.read().size, 0);
    return base + head;
  }

  /** Scalars in the exchanged parameters of the given groups (all by default). */
  adapterParameterCount(groups?: readonly string[]): number {
    const wanted = groups ? new Set(groups) : null;
    return this.adapterList.filter((e) => !wanted || wanted.has(e.name.slice(0, e.name.indexOf('/')))).reduce((n, e) => n + e.variable.read().size, 0);
  }

  /** Releases every weight and the optimiser state (not the text embedder, which the caller owns). */
  dispose(): void {
    for (const e of this.encoders.values()) e.dispose();
    for (const c of this.conceptLayers.values()) c.dispose();
    this.conceptHead.dispose();
    this.optimizers.adapters.dispose();
    this.optimizers.full.dispose();
    this.smoothnessInputs?.dispose();
    this.smoothnessInputs = null;
  }

  private fullVariables(): tf.Variable[] {
    const heads = this.adapterList.filter((e) => !e.name.includes('/lora_')).map((e) => variableOf(e.variable));
    return [...this.baseVariables(), ...heads];
  }

  private proximalPairs(global: Parameters): { local: tf.LayerVariable[]; global: tf.Tensor[] } {
    const byName = new Map(this.adapterList.map((e) => [e.name, e.variable]));
    const local: tf.LayerVariable[] = [];
    for (const t of global) {
      const v = byName.get(t.name);
      if (!v) throw new FlCoreError('PARAMS_MISMATCH', `trainStep proximal: unknown tensor '${t.name}'`);
      if (t.shape.join(',') !== v.shape.join(','))
        throw new FlCoreError('PARAMS_MISMATCH', `trainStep proximal: '${t.name}' has shape [${t.shape.join(',')}], expected [${v.shape.join(',')}]`);
      local.push(v);
    }
    assertFinite(global, 'trainStep proximal');
    return { local, global: global.map((t) => tf.tensor(t.values, [...t.shape])) };
  }
}
