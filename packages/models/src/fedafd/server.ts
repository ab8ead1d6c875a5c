/**
 * FedAFD's server model ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and
 * Distillation", §3.2.3): the global encoders (globalEncoders.ts) trained on the public pairs with
 * L = L_ret + λ_dis · L_dis, where L_ret is the symmetric InfoNCE of each caption with its image
 * (and with its speech clip when the server has audio), and L_dis (Eq. 10) the mean squared L2
 * distance between the server's representation g_i^m and the similarity-weighted teacher t_i^m that
 * SED (Eq. 7–9, computed from the clients' uploads outside this package) builds for each public
 * sample and modality; λ_dis = 0.4. Also the server's retrieval metrics (R@1/5/10 both ways, rsum)
 * and the export of its encoders, which clients load to fuse with.
 */
import * as tf from '@tensorflow/tfjs';
import type { Parameters, Tensor as NamedTensor } from '@chorus/fl-core';
import type { Modality } from '../encoders.js';
import { ModelsError, checkPositive } from '../errors.js';
import type { MultimodalBatch } from '../model.js';
import { GlobalEncoders, type GlobalEncodersConfig } from './globalEncoders.js';
import { checkBatchAsync, checkRepresentation, readRepresentations, type RepresentationArrays } from './inputs.js';
import { FEDAFD_DISTILLATION_WEIGHT, INFO_NCE_TEMPERATURE, representationDistillation, symmetricInfoNce } from './losses.js';
import { retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics.js';
import { engineVariables, exportNamed, importNamed } from './weights.js';

/** Configuration of {@link FedAfdServerModel}. */
export interface FedAfdServerConfig extends GlobalEncodersConfig {
  /** Adam learning rate; default 1e-3. */
  learningRate?: number;
  /** InfoNCE temperature; default 0.07. */
  temperature?: number;
  /** λ_dis on Eq. 10's distillation term; default 0.4. */
  distillationWeight?: number;
}

/** Inputs of {@link FedAfdServerModel.trainStep}. */
export interface FedAfdServerStepInput {
  /** A public batch holding text and at least one of image and audio (every modality the server has that is given is used). */
  batch: MultimodalBatch;
  /** SED's teacher representations of the batch, [batch, D] row-major per modality; modalities without teacher are not distilled. */
  teachers?: RepresentationArrays;
}

/** Loss values of one server step. */
export interface FedAfdServerStepResult {
  /** L_ret + λ_dis · L_dis before the step. */
  loss: number;
  /** Summed InfoNCE of the batch's pairs. */
  retrieval: number;
  /** Eq. 10 summed over the distilled modalities (unweighted; 0 without teachers). */
  distillation: number;
  numExamples: number;
}

/** The server's global encoders with their training step, metrics and export. */
export class FedAfdServerModel {
  readonly encoders: GlobalEncoders;
  readonly temperature: number;
  readonly distillationWeight: number;
  private readonly vocabSize: number | undefined;
  private readonly learningRate: number;
  private optimizer: tf.Optimizer;

  constructor(config: FedAfdServerConfig) {
    this.temperature = checkPositive('FedAfdServerModel', 'temperature', config.temperature ?? INFO_NCE_TEMPERATURE);
    const weight = config.distillationWeight ?? FEDAFD_DISTILLATION_WEIGHT;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0)
      throw new ModelsError(
        'MODELS_BAD_CONFIG',
        `FedAfdServerModel: distillationWeight must be a finite number ≥ 0, got ${String(weight)}`,
        'distillationWeight',
      );
    this.distillationWeight = weight;
    const learningRate = checkPositive('FedAfdServerModel', 'learningRate', config.learningRate ?? 1e-3);
    this.encoders = new GlobalEncoders(config);
    if (!this.encoders.modalities.includes('text') || this.encoders.modalities.length < 2) {
      this.encoders.dispose();
      throw new ModelsError('MODELS_BAD_CONFIG', 'FedAfdServerModel: the server needs text and at least one of image and audio', 'modalities');
    }
    this.vocabSize = config.textEmbedder?.vocabSize;
    this.learningRate = learningRate;
    this.optimizer = tf.train.adam(learningRate);
  }

  /**
   * Drops Adam's moments and step count: the next {@link trainStep} starts as the first one did. A
   * server that resets at the start of every round computes each round from that round's inputs
   * alone, so a restarted or re-created server continues bit-identically.
   */
  resetOptimizer(): void {
    this.optimizer.dispose();
    this.optimizer = tf.train.adam(this.learningRate);
  }

  /** Width D of the shared space. */
  get dim(): number {
    return this.encoders.dim;
  }

  /** Modalities of the server's encoders. */
  get modalities(): readonly Modality[] {
    return this.encoders.modalities;
  }

  /** Number of scalars of the global encoders. */
  parameterCount(): number {
    return this.encoders.parameterCount();
  }

  /** Unit-norm representations [batch, D] of `modality`'s `inputs` (token ids must have been range-checked; the caller disposes). */
  encode(modality: Modality, inputs: tf.Tensor): tf.Tensor2D {
    return this.encoders.encode(modality, inputs);
  }

  /** Modalities of the server that `batch` holds. */
  private present(batch: MultimodalBatch): Modality[] {
    return this.encoders.modalities.filter((m) => batch[m] !== undefined);
  }

  /** The global representations of a public batch, [batch, D] row-major per server modality the batch holds (what clients receive). */
  async representations(batch: MultimodalBatch): Promise<RepresentationArrays> {
    const modalities = this.present(batch);
    if (modalities.length === 0)
      throw new ModelsError('MODELS_BAD_INPUT', `FedAfdServerModel.representations: the batch holds none of ${this.modalities.join(', ')}`);
    await checkBatchAsync('FedAfdServerModel.representations', batch, modalities, { vocabSize: this.vocabSize });
    return readRepresentations(Object.fromEntries(modalities.map((m) => [m, this.encode(m, batch[m]!)])));
  }

  /** Retrieval queries paired with text in `batch`: image and/or audio. */
  private queries(fn: string, batch: MultimodalBatch): Modality[] {
    const modalities = this.present(batch);
    const queries = modalities.filter((m) => m !== 'text');
    if (!modalities.includes('text') || queries.length === 0)
      throw new ModelsError(
        'MODELS_BAD_INPUT',
        `${fn}: the batch must hold text and at least one of ${this.modalities.filter((m) => m !== 'text').join(', ')}`,
      );
    return queries;
  }

  /** One Adam step on L_ret + λ_dis · L_dis (Eq. 10); bad input raises `MODELS_BAD_INPUT` before any weight moves. */
  async trainStep(input: FedAfdServerStepInput): Promise<FedAfdServerStepResult> {
    const fn = 'FedAfdServerModel.trainStep';
    const queries = this.queries(fn, input.batch);
    const n = await checkBatchAsync(fn, input.batch, [...queries, 'text'], { vocabSize: this.vocabSize });
    const teacherEntries = Object.entries(input.teachers ?? {}) as [Modality, Float32Array | undefined][];
    for (const [m] of teacherEntries)
      if (!this.present(input.batch).includes(m))
        throw new ModelsError('MODELS_BAD_INPUT', `${fn}: a teacher for '${m}', which the batch or the server lacks`, `teachers.${m}`);
    const checked = teacherEntries.map(([m, values]) => [m, checkRepresentation(fn, `teachers.${m}`, values, n, this.dim)] as const);
    const teachers = checked.map(([m, values]) => [m, tf.tensor2d(values, [n, this.dim])] as const);
    const parts: { retrieval?: tf.Scalar; distillation?: tf.Scalar } = {};
    try {
      const loss = this.optimizer.minimize(
        () => {
          const text = this.encode('text', input.batch.text!);
          const reps = new Map<Modality, tf.Tensor2D>([['text', text]]);
          let retrieval = tf.scalar(0);
          for (const q of queries) {
            const rep = this.encode(q, input.batch[q]!);
            reps.set(q, rep);
            retrieval = tf.add(retrieval, symmetricInfoNce(rep, text, this.temperature));
          }
          parts.retrieval = tf.keep(retrieval);
          if (teachers.length === 0) return retrieval;
          let distillation = tf.scalar(0);
          for (const [m, teacher] of teachers) distillation = tf.add(distillation, representationDistillation(reps.get(m)!, teacher));
          parts.distillation = tf.keep(distillation);
          return tf.add(retrieval, tf.mul(distillation, this.distillationWeight)) as tf.Scalar;
        },
        true,
        engineVariables(this.encoders.weights),
      )!;
      const read = async (t: tf.Tensor | undefined): Promise<number> => (t ? (await t.data())[0]! : 0);
      const result = { loss: await read(loss), retrieval: await read(parts.retrieval), distillation: await read(parts.distillation), numExamples: n };
      tf.dispose(loss);
      return result;
    } finally {
      tf.dispose([...teachers.map(([, t]) => t), ...(parts.retrieval ? [parts.retrieval] : []), ...(parts.distillation ? [parts.distillation] : [])]);
    }
  }

  /** Recalls of `query` (image or audio) ↔ text retrieval over the batch's pairs, with rsum. */
  async evaluateRetrieval(batch: MultimodalBatch, query: Modality = 'image'): Promise<RetrievalMetrics> {
    const fn = 'FedAfdServerModel.evaluateRetrieval';
    if (query === 'text' || !this.queries(fn, batch).includes(query))
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: query must be a non-text modality the server and the batch hold, got '${query}'`);
    const n = await checkBatchAsync(fn, batch, [query, 'text'], { vocabSize: this.vocabSize });
    const similarity = tf.tidy(() => tf.matMul(this.encode(query, batch[query]!), this.encode('text', batch.text!), false, true));
    const values = await similarity.data();
    similarity.dispose();
    return retrievalMetrics(values, n);
  }

  /** Copies of every encoder weight, named `image/conv_1/kernel`, `text/projection/bias` … (what clients load with `setGlobalWeights`). */
  async exportWeights(): Promise<NamedTensor[]> {
    return exportNamed(this.encoders.weights);
  }

  /** Writes weights from {@link exportWeights} of a server with the same config; checks everything before writing anything. */
  importWeights(params: Parameters): void {
    importNamed('FedAfdServerModel.importWeights', this.encoders.weights, params);
  }

  dispose(): void {
    this.encoders.dispose();
    this.optimizer.dispose();
  }
}
