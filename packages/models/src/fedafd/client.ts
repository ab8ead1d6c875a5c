/**
 * FedAFD's heterogeneous client models and their local training ("FedAFD: Multimodal Federated
 * Learning via Adversarial Fusion and Distillation", §3.2). A client is built from a plain spec
 * `{kind, arch, dim}`: image or text classifiers (10-class heads) and image–caption or
 * speech–caption retrieval dual encoders, each with its own architecture and size. Every encoder
 * maps its input to a local feature, projected to the shared D-dimensional space and L2-normalised:
 * the representation z the client uploads for public data.
 *
 * One local step (Algorithm 1's client part, on a local mini-batch and a public batch whose global
 * representations come in as arrays):
 * 1. BAA (Eq. 1–2): the intra- and cross-modal discriminators take one step on the public batch,
 *    telling the client's z^m from the global g^m (intra) and g^{m'} (cross; m' is the partner
 *    modality: text for image, image or audio for text);
 * 2. the model takes one step on L = L_task(F) + λ_adv · L_adv^enc, where F is the GFF fusion
 *    (Eq. 3–6) of z and the frozen global encoder's representation of the local input, L_task is
 *    cross-entropy for classifiers and symmetric InfoNCE for retrieval clients, and L_adv^enc the
 *    encoder's side of Eq. 2 on the public batch (λ_adv = 0.5).
 * Ablations: `useBaa: false` drops both parts of step 1–2's adversarial term; `useGff: false`
 * feeds z alone to the task head (and the client needs no global encoder).
 *
 * The comparison methods' clients (FedMD, FedGEMS, FedET, FedMKD; §4.1) run without BAA and GFF and
 * add the local distillation of fedafd/localDistillation.ts, L = L_task + λ_dis · L_dis^local, with
 * L_dis^local the mean squared L2 distance between the client's representations z^m of the public
 * batch and the server's g^m (`localDistillationWeight` = λ_dis, default 0: FedAFD itself). With
 * none of the three (LOCAL) a step reads no public data at all.
 */
import * as tf from '@tensorflow/tfjs';
import type { Parameters, Tensor as NamedTensor } from '@chorus/fl-core';
import type { Modality } from '../encoders.js';
import { ModelsError } from '../errors.js';
import { crossEntropyLoss } from '../losses.js';
import type { MultimodalBatch } from '../model.js';
import { BaaDiscriminators } from './baa.js';
import { buildFeatureEncoder, type EncoderInputs, type FeatureEncoder } from './encoders.js';
import { GranularityFusion } from './gff.js';
import { FEDAFD_DIM, GlobalEncoders, type GlobalEncoderSizes } from './globalEncoders.js';
import { checkBatchAsync, checkRepresentation, readRepresentations, type RepresentationArrays } from './inputs.js';
import { localDistillationLoss } from './localDistillation.js';
import { FEDAFD_ADVERSARIAL_WEIGHT, INFO_NCE_TEMPERATURE, l2Normalize, symmetricInfoNce } from './losses.js';
import { retrievalMetrics, type RetrievalMetrics } from './retrievalMetrics.js';
import { countParameters, engineVariables, exportNamed, importNamed, layerWeights, type NamedVariable } from './weights.js';

/** Kinds of FedAFD client. */
export const FEDAFD_CLIENT_KINDS = ['image-classifier', 'text-classifier', 'image-text-retrieval', 'audio-text-retrieval'] as const;

/** One of {@link FEDAFD_CLIENT_KINDS}. */
export type FedAfdClientKind = (typeof FEDAFD_CLIENT_KINDS)[number];

/**
 * Architectures of each kind. A retrieval arch `a+b` pairs the first modality's encoder `a` with
 * the text encoder `b` (see fedafd/encoders.ts for each encoder).
 */
export const FEDAFD_CLIENT_ARCHS: Readonly<Record<FedAfdClientKind, readonly string[]>> = {
  'image-classifier': ['cnn', 'frozen-base'],
  'text-classifier': ['bag-mlp', 'conv1d'],
  'image-text-retrieval': ['cnn+bag-mlp', 'frozen-base+conv1d'],
  'audio-text-retrieval': ['cnn+bag-mlp', 'pool-mlp+conv1d'],
};

/** Modalities each kind holds, in the order its archs name them. */
export const FEDAFD_CLIENT_MODALITIES: Readonly<Record<FedAfdClientKind, readonly Modality[]>> = {
  'image-classifier': ['image'],
  'text-classifier': ['text'],
  'image-text-retrieval': ['image', 'text'],
  'audio-text-retrieval': ['audio', 'text'],
};

/** A client as a task file names it (plain data). */
export interface FedAfdClientSpec {
  kind: FedAfdClientKind;
  /** One of `FEDAFD_CLIENT_ARCHS[kind]`. */
  arch: string;
  /** Shared width D; default 256. */
  dim?: number;
  /** Classes of a classifier's head; default 10 (ignored by retrieval clients). */
  numClasses?: number;
  /** Width of the encoders' dense layers (the local feature width); default 64. */
  hiddenUnits?: number;
  /** Filters of the encoders' convolutions; default [8, 16] (a 1-D convolution uses the first). */
  filters?: [number, number];
  /** Groups P of GFF's attention (D must be a multiple); default 8. */
  fusionGroups?: number;
  /** Bottleneck reduction r of GFF's attention; default 4. */
  fusionReduction?: number;
  /** Hidden width of the BAA discriminators; default 128. */
  discriminatorHiddenUnits?: number;
  /** Adam learning rate of the model and of the discriminators; default 1e-3. */
  learningRate?: number;
  /** λ_adv on the encoder's BAA term; default 0.5. */
  adversarialWeight?: number;
  /** InfoNCE temperature of retrieval clients; default 0.07. */
  temperature?: number;
  /** Bi-level adversarial alignment on (default) or off (ablation "w/o BAA"). */
  useBaa?: boolean;
  /** Granularity-aware fusion on (default) or off (ablation "w/o GFF": local features only). */
  useGff?: boolean;
  /** λ_dis on the local distillation towards the global public representations (the baselines' 0.4); default 0 (off, FedAFD). */
  localDistillationWeight?: number;
  /** Seed of every initialiser; default 0. */
  seed?: number;
}

/** What a client needs besides its spec: input formats, and the global encoders' sizes (they must match the server's). */
export interface FedAfdClientOptions extends EncoderInputs {
  /** Sizes of the server's global encoders, of which the client keeps a frozen copy for GFF; default the server's defaults. */
  global?: GlobalEncoderSizes;
}

/** Inputs of {@link FedAfdClient.trainStep}. */
export interface FedAfdStepInput {
  /** Local mini-batch: every modality the client holds (pairs for retrieval clients), and labels for classifiers. */
  local: MultimodalBatch;
  /** Public mini-batch (the client's modalities); required with BAA or local distillation, ignored otherwise. */
  public?: MultimodalBatch;
  /**
   * Global representations of `public`, [batch, D] row-major per modality of
   * {@link FedAfdClient.globalModalitiesNeeded}; required with BAA or local distillation, ignored otherwise.
   */
  globalPublic?: RepresentationArrays;
}

/** Loss values of one step. */
export interface FedAfdStepResult {
  /** L_task + λ_adv · L_adv^enc + λ_dis · L_dis^local before the step. */
  loss: number;
  /** Cross-entropy or InfoNCE on the fused features. */
  task: number;
  /** The encoder's BAA term (0 without BAA). */
  adversarial: number;
  /** The discriminators' loss −L_adv before their step (0 without BAA). */
  discriminator: number;
  /** The local distillation term L_dis^local, unweighted (0 when `localDistillationWeight` is 0). */
  distillation: number;
  numExamples: number;
}

/** What {@link FedAfdClient.evaluate} returns. */
export interface FedAfdEvaluation {
  loss: number;
  numExamples: number;
  /** Classifiers: the fraction of correct predictions. */
  accuracy?: number;
  /** Retrieval clients: recalls over the batch's pairs. */
  retrieval?: RetrievalMetrics;
}

/** Parameter counts of a client, by part. */
export interface FedAfdParameterCounts {
  /** Trainable encoders and projections. */
  encoders: number;
  /** GFF modules (0 without GFF). */
  fusion: number;
  /** Classifier head (0 for retrieval clients). */
  head: number;
  /** BAA discriminators (0 without BAA). */
  discriminators: number;
  /** Frozen pretrained base, not trained. */
  frozen: number;
  /** The frozen copy of the global encoders (0 without GFF). */
  global: number;
}

type ResolvedSpec = Required<FedAfdClientSpec>;

function specError(field: keyof FedAfdClientSpec, message: string): never {
  throw new ModelsError('MODELS_BAD_CONFIG', `FedAFD client spec: ${message}`, `spec.${field}`);
}

/** Checks a plain client spec and fills its defaults; throws `MODELS_BAD_CONFIG` naming the bad field (`spec.arch`). */
export function resolveClientSpec(spec: unknown): ResolvedSpec {
  if (typeof spec !== 'object' || spec === null) throw new ModelsError('MODELS_BAD_CONFIG', 'FedAFD client spec: expected an object', 'spec');
  const s = spec as Record<string, unknown>;
  if (!(FEDAFD_CLIENT_KINDS as readonly unknown[]).includes(s.kind))
    specError('kind', `kind must be one of ${FEDAFD_CLIENT_KINDS.join(', ')}, got ${JSON.stringify(s.kind)}`);
  const kind = s.kind as FedAfdClientKind;
  if (!FEDAFD_CLIENT_ARCHS[kind].includes(s.arch as string))
    specError('arch', `arch of a ${kind} must be one of ${FEDAFD_CLIENT_ARCHS[kind].join(', ')}, got ${JSON.stringify(s.arch)}`);
  const int = (field: keyof FedAfdClientSpec, fallback: number, min: number): number => {
    const v = s[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) specError(field, `${field} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (field: keyof FedAfdClientSpec, fallback: number, positive: boolean): number => {
    const v = s[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0))
      specError(field, `${field} must be a finite number ${positive ? '> 0' : '≥ 0'}, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (field: keyof FedAfdClientSpec): boolean => {
    const v = s[field] ?? true;
    if (typeof v !== 'boolean') specError(field, `${field} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const filters = s.filters ?? [8, 16];
  if (!Array.isArray(filters) || filters.length !== 2 || !filters.every((f) => Number.isInteger(f) && f >= 1))
    specError('filters', `filters must be two integers ≥ 1, got ${JSON.stringify(s.filters)}`);
  const dim = int('dim', FEDAFD_DIM, 1);
  const fusionGroups = int('fusionGroups', dim % 8 === 0 ? 8 : 1, 1);
  if (dim % fusionGroups !== 0) specError('fusionGroups', `dim ${dim} is not a multiple of fusionGroups ${fusionGroups}`);
  return {
    kind,
    arch: s.arch as string,
    dim,
    numClasses: int('numClasses', 10, 2),
    hiddenUnits: int('hiddenUnits', 64, 1),
    filters: filters as [number, number],
    fusionGroups,
    fusionReduction: int('fusionReduction', 4, 1),
    discriminatorHiddenUnits: int('discriminatorHiddenUnits', 128, 1),
    learningRate: num('learningRate', 1e-3, true),
    adversarialWeight: num('adversarialWeight', FEDAFD_ADVERSARIAL_WEIGHT, false),
    temperature: num('temperature', INFO_NCE_TEMPERATURE, true),
    useBaa: bool('useBaa'),
    useGff: bool('useGff'),
    localDistillationWeight: num('localDistillationWeight', 0, false),
    seed: int('seed', 0, 0),
  };
}

/** A FedAFD client model: local encoders and projections, GFF, task head, BAA discriminators, and a frozen copy of the global encoders. */
export class FedAfdClient {
  readonly spec: Readonly<ResolvedSpec>;
  readonly kind: FedAfdClientKind;
  /** Modalities the client holds (and uploads representations of). */
  readonly modalities: readonly Modality[];
  readonly dim: number;
  private readonly vocabSize: number | undefined;
  private readonly encoders = new Map<Modality, FeatureEncoder>();
  private readonly projections = new Map<Modality, tf.layers.Layer>();
  private readonly fusions = new Map<Modality, GranularityFusion>();
  private head: tf.layers.Layer | null = null;
  private globalEncoders: GlobalEncoders | null = null;
  private baa: BaaDiscriminators | null = null;
  private readonly optimizer: tf.Optimizer;
  /** Trainable weights of encoders, projections, GFF and head (not the discriminators). */
  private readonly modelWeights: NamedVariable[] = [];

  constructor(spec: FedAfdClientSpec, options: FedAfdClientOptions = {}) {
    this.spec = resolveClientSpec(spec);
    const { kind, arch, dim, seed } = this.spec;
    this.kind = kind;
    this.dim = dim;
    this.modalities = FEDAFD_CLIENT_MODALITIES[kind];
    this.vocabSize = options.textEmbedder?.vocabSize;
    const archs = arch.split('+');
    try {
      this.modalities.forEach((m, i) => {
        const encoder = buildFeatureEncoder(m, archs[i]!, options, { hiddenUnits: this.spec.hiddenUnits, filters: this.spec.filters, seed: seed + 100 * i });
        this.encoders.set(m, encoder);
        const projection = tf.layers.dense({ name: 'projection', units: dim, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 100 * i + 50 }) });
        tf.tidy(() => {
          projection.apply(tf.zeros([1, encoder.featureDim]));
        });
        this.projections.set(m, projection);
        this.modelWeights.push(...encoder.weights, ...layerWeights(m, projection));
      });
      if (this.spec.useGff) {
        this.modalities.forEach((m, i) => {
          const fusion = new GranularityFusion({
            name: 'gff',
            dim,
            groups: this.spec.fusionGroups,
            reduction: this.spec.fusionReduction,
            seed: seed + 100 * i + 70,
          });
          tf.tidy(() => {
            fusion.apply([tf.zeros([1, dim]), tf.zeros([1, dim])]);
          });
          this.fusions.set(m, fusion);
          this.modelWeights.push(...fusion.namedWeights().map((w) => ({ name: `fusion/${m}/${w.name}`, variable: w.variable })));
        });
        this.globalEncoders = new GlobalEncoders({ ...options, ...options.global, dim, modalities: this.modalities });
      }
      if (this.isClassifier) {
        const head = tf.layers.dense({
          name: 'classifier',
          units: this.spec.numClasses,
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 90 }),
        });
        tf.tidy(() => {
          head.apply(tf.zeros([1, dim]));
        });
        this.head = head;
        this.modelWeights.push(...layerWeights('head', head));
      }
      if (this.spec.useBaa)
        this.baa = new BaaDiscriminators({ dim, hiddenUnits: this.spec.discriminatorHiddenUnits, learningRate: this.spec.learningRate, seed: seed + 300 });
    } catch (err) {
      this.dispose();
      throw err;
    }
    this.optimizer = tf.train.adam(this.spec.learningRate);
  }

  /** Whether the client is an image or text classifier. */
  get isClassifier(): boolean {
    return this.kind === 'image-classifier' || this.kind === 'text-classifier';
  }

  /** The partner modality m' whose global representations the cross-modal discriminator compares with z^m. */
  partner(modality: Modality): Modality {
    if (this.modalities.length === 2) return this.modalities[0] === modality ? this.modalities[1]! : this.modalities[0]!;
    return modality === 'image' ? 'text' : 'image';
  }

  /** Whether a step reads a public batch and its global representations: with BAA or local distillation. */
  get needsPublicData(): boolean {
    return this.baa !== null || this.distills;
  }

  /** Whether a step adds the local distillation term (a positive `localDistillationWeight`). */
  private get distills(): boolean {
    return this.spec.localDistillationWeight > 0;
  }

  /**
   * Modalities whose global public representations a step needs: with BAA the client's own and their
   * partners, with local distillation the client's own, and none without either (LOCAL).
   */
  globalModalitiesNeeded(): Modality[] {
    const baa = this.baa ? this.modalities.flatMap((m) => [m, this.partner(m)]) : [];
    return [...new Set([...baa, ...(this.distills ? this.modalities : [])])];
  }

  /** Trainable parameters: encoders, projections, GFF, head and discriminators. */
  parameterCount(): number {
    const c = this.parameterCounts();
    return c.encoders + c.fusion + c.head + c.discriminators;
  }

  /** Parameter counts by part. */
  parameterCounts(): FedAfdParameterCounts {
    const named = (prefix: string): number => countParameters(this.modelWeights.filter((w) => w.name.startsWith(prefix)));
    const fusion = named('fusion/');
    const head = named('head/');
    return {
      encoders: countParameters(this.modelWeights) - fusion - head,
      fusion,
      head,
      discriminators: this.baa?.parameterCount() ?? 0,
      frozen: [...this.encoders.values()].reduce((n, e) => n + e.frozenParameterCount, 0),
      global: this.globalEncoders?.parameterCount() ?? 0,
    };
  }

  /** The client's unit-norm representations z^m [batch, D] of `input` (token ids must have been range-checked). */
  represent(modality: Modality, input: tf.Tensor): tf.Tensor2D {
    const encoder = this.encoders.get(modality);
    if (!encoder) throw new ModelsError('MODELS_BAD_INPUT', `FedAfdClient.represent: no '${modality}' encoder (have ${this.modalities.join(', ')})`);
    return tf.tidy(() => l2Normalize(this.projections.get(modality)!.apply(encoder.apply(input)) as tf.Tensor));
  }

  /** Eq. 3–4: the fused feature F of `input` (z alone without GFF). */
  private fused(modality: Modality, input: tf.Tensor): tf.Tensor2D {
    const z = this.represent(modality, input);
    if (!this.globalEncoders) return z;
    const g = this.globalEncoders.encode(modality, input);
    return this.fusions.get(modality)!.apply([z, g]) as tf.Tensor2D;
  }

  /** Eq. 6's L_task on a checked local batch. */
  private taskLoss(batch: MultimodalBatch): tf.Scalar {
    if (this.head) {
      const m = this.modalities[0]!;
      return crossEntropyLoss(this.head.apply(this.fused(m, batch[m]!)) as tf.Tensor, batch.labels!);
    }
    const [a, b] = this.modalities as [Modality, Modality];
    return symmetricInfoNce(this.fused(a, batch[a]!), this.fused(b, batch[b]!), this.spec.temperature);
  }

  /** Logits [batch, K] of a classifier on `batch` (token ids must have been range-checked). */
  predict(batch: MultimodalBatch): tf.Tensor2D {
    if (!this.head) throw new ModelsError('MODELS_BAD_CONFIG', `FedAfdClient.predict: a ${this.kind} has no classifier head`);
    const m = this.modalities[0]!;
    return tf.tidy(() => this.head!.apply(this.fused(m, batch[m]!)) as tf.Tensor2D);
  }

  /** The representations of a public batch to upload: [batch, D] row-major per modality the client holds. */
  async publicRepresentations(batch: MultimodalBatch): Promise<RepresentationArrays> {
    await checkBatchAsync('FedAfdClient.publicRepresentations', batch, this.modalities, { vocabSize: this.vocabSize });
    return readRepresentations(Object.fromEntries(this.modalities.map((m) => [m, this.represent(m, batch[m]!)])));
  }

  /** Task loss and accuracy (classifiers) or recalls over the batch's pairs (retrieval clients) on `batch`. */
  async evaluate(batch: MultimodalBatch): Promise<FedAfdEvaluation> {
    const numClasses = this.isClassifier ? this.spec.numClasses : undefined;
    const n = await checkBatchAsync('FedAfdClient.evaluate', batch, this.modalities, { vocabSize: this.vocabSize, numClasses });
    if (this.head) {
      const [loss, correct] = tf.tidy(() => {
        const logits = this.predict(batch);
        return [crossEntropyLoss(logits, batch.labels!), tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels!), 'float32'))];
      });
      const values = [(await loss!.data())[0]!, (await correct!.data())[0]!];
      tf.dispose([loss!, correct!]);
      return { loss: values[0]!, accuracy: values[1]! / n, numExamples: n };
    }
    const [a, b] = this.modalities as [Modality, Modality];
    const [loss, similarity] = tf.tidy(() => {
      const fa = this.fused(a, batch[a]!);
      const fb = this.fused(b, batch[b]!);
      return [symmetricInfoNce(fa, fb, this.spec.temperature), tf.matMul(l2Normalize(fa), l2Normalize(fb), false, true)];
    });
    const lossValue = (await loss!.data())[0]!;
    const sim = await similarity!.data();
    tf.dispose([loss!, similarity!]);
    return { loss: lossValue, numExamples: n, retrieval: retrievalMetrics(sim, n) };
  }

  private async publicInputs(input: FedAfdStepInput): Promise<{ batch: MultimodalBatch; global: Map<Modality, tf.Tensor2D> } | null> {
    if (!this.needsPublicData) return null;
    const fn = 'FedAfdClient.trainStep';
    if (!input.public || !input.globalPublic)
      throw new ModelsError(
        'MODELS_BAD_INPUT',
        `${fn}: ${this.baa ? 'BAA' : 'local distillation'} needs a public batch and its global representations`,
        input.public ? 'globalPublic' : 'public',
      );
    const rows = await checkBatchAsync(fn, input.public, this.modalities, { vocabSize: this.vocabSize });
    const arrays = this.globalModalitiesNeeded().map((m) => [m, checkRepresentation(fn, `globalPublic.${m}`, input.globalPublic![m], rows, this.dim)] as const);
    return { batch: input.public, global: new Map(arrays.map(([m, values]) => [m, tf.tensor2d(values, [rows, this.dim])])) };
  }

  /**
   * One local step: the discriminators' update, then the model's on L_task + λ_adv · L_adv^enc +
   * λ_dis · L_dis^local, each term present only when switched on (see the file header). A step
   * without BAA and distillation needs only `local`. Bad input — including a missing public batch or
   * global representation the step needs — raises `MODELS_BAD_INPUT` before any weight moves.
   */
  async trainStep(input: FedAfdStepInput): Promise<FedAfdStepResult> {
    const numClasses = this.isClassifier ? this.spec.numClasses : undefined;
    const numExamples = await checkBatchAsync('FedAfdClient.trainStep', input.local, this.modalities, { vocabSize: this.vocabSize, numClasses });
    const pub = await this.publicInputs(input);
    try {
      let discriminator = 0;
      if (this.baa && pub) {
        const local = tf.tidy(() => this.modalities.map((m) => this.represent(m, pub.batch[m]!)));
        try {
          discriminator = await this.baa.trainStep({
            local,
            intraGlobal: this.modalities.map((m) => pub.global.get(m)!),
            crossGlobal: this.modalities.map((m) => pub.global.get(this.partner(m))!),
          });
        } finally {
          tf.dispose(local);
        }
      }
      const parts: { task?: tf.Scalar; adversarial?: tf.Scalar; distillation?: tf.Scalar } = {};
      const adversarialOn = this.baa !== null && this.spec.adversarialWeight > 0;
      const loss = this.optimizer.minimize(
        () => {
          const task = this.taskLoss(input.local);
          parts.task = tf.keep(task);
          if (!pub || (!adversarialOn && !this.distills)) return task;
          const z = this.modalities.map((m) => this.represent(m, pub.batch[m]!));
          let total: tf.Scalar = task;
          if (adversarialOn) {
            const adversarial = this.baa!.encoderLoss(z);
            parts.adversarial = tf.keep(adversarial);
            total = tf.add(total, tf.mul(adversarial, this.spec.adversarialWeight)) as tf.Scalar;
          }
          if (this.distills) {
            const distillation = localDistillationLoss(
              z,
              this.modalities.map((m) => pub.global.get(m)!),
            );
            parts.distillation = tf.keep(distillation);
            total = tf.add(total, tf.mul(distillation, this.spec.localDistillationWeight)) as tf.Scalar;
          }
          return total;
        },
        true,
        engineVariables(this.modelWeights),
      )!;
      const read = async (t: tf.Tensor | undefined): Promise<number> => (t ? (await t.data())[0]! : 0);
      const result = {
        loss: await read(loss),
        task: await read(parts.task),
        adversarial: await read(parts.adversarial),
        discriminator,
        distillation: await read(parts.distillation),
        numExamples,
      };
      tf.dispose([loss, ...[parts.task, parts.adversarial, parts.distillation].filter((t): t is tf.Scalar => t !== undefined)]);
      return result;
    } finally {
      if (pub) tf.dispose([...pub.global.values()]);
    }
  }

  /** Copies of every trainable weight (model, then discriminators), named `image/conv_1/kernel`, `fusion/image/…`, `head/…`, `baa/…`. */
  async exportWeights(): Promise<NamedTensor[]> {
    return exportNamed(this.allWeights());
  }

  /** Writes weights exported by {@link exportWeights} of a client with the same spec; checks everything before writing anything. */
  importWeights(params: Parameters): void {
    importNamed('FedAfdClient.importWeights', this.allWeights(), params);
  }

  /**
   * Loads the frozen global encoders from the server's export (`FedAfdServerModel.exportWeights`);
   * entries of modalities the client lacks are ignored, its own must all be there.
   */
  setGlobalWeights(params: Parameters): void {
    if (!this.globalEncoders)
      throw new ModelsError('MODELS_BAD_CONFIG', 'FedAfdClient.setGlobalWeights: the client runs without GFF and holds no global encoders');
    const own = params.filter((t) => this.modalities.some((m) => t.name.startsWith(`${m}/`)));
    importNamed('FedAfdClient.setGlobalWeights', this.globalEncoders.weights, own);
  }

  private allWeights(): NamedVariable[] {
    return [...this.modelWeights, ...(this.baa?.weights ?? [])];
  }

  dispose(): void {
    for (const e of this.encoders.values()) e.dispose();
    for (const p of this.projections.values()) p.dispose();
    for (const f of this.fusions.values()) f.dispose();
    this.head?.dispose();
    this.globalEncoders?.dispose();
    this.baa?.dispose();
    // Also runs from the constructor's failure path, before the optimiser exists.
    this.optimizer?.dispose();
  }
}

/** A client from a plain spec (see {@link FedAfdClientSpec}); throws `MODELS_BAD_CONFIG` with `field` naming the bad spec field. */
export function createFedAfdClient(spec: FedAfdClientSpec, options: FedAfdClientOptions = {}): FedAfdClient {
  return new FedAfdClient(spec, options);
}
