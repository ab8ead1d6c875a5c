/**
 * The server side of a FedAFD-family task, as the evaluator process runs it ("FedAFD: Multimodal
 * Federated Learning via Adversarial Fusion and Distillation", Algorithm 1, server part): the
 * server model (`FedAfdServerModel`: global encoders projecting to the shared D-dimensional space),
 * the dataset's public split and a test subset for its retrieval metrics.
 *
 * One server step ({@link FedAfdServerTask.distill}) of round t, with B the round's public batch and
 * t_i^m SED's teacher of sample i and modality m (fl-core, from the clients' uploads):
 *
 *   L = L_ret + λ_dis · Σ_m L_dis^m,   L_dis^m = mean_i ‖g_i^m − t_i^m‖²   (Eq. 10)
 *
 * where L_ret is the symmetric InfoNCE of each public caption with its image (and speech clip), g_i^m
 * the server's unit-norm representation and λ_dis the strategy's distillation weight (0.4). It runs
 * `stepsPerRound` Adam steps on B with the teachers (Adam's moments reset at the start of every round, so
 * the step depends on the global it is given and nothing else), measures R@1 both ways and rsum on the test
 * subset (image↔text, and audio↔text when the server encodes audio), and encodes round t + 1's public batch, drawn from (seed, t + 1) as the coordinator draws it.
 *
 * The global it reads and returns is the server's weights followed by `public/<modality>` [B, D]
 * tensors (fl-core's `publicTensorName`). Bad input raises a coded error before any weight moves.
 */
import * as tf from '@tensorflow/tfjs';
import { FEDAFD_BUILTIN_INPUTS, checkFedAfdKinds, isClientError, publicDataOver, toModelBatch } from '@chorus/client';
import type { FedAfdPublicData } from '@chorus/client';
import { openFedAfdPublicDataFromFiles } from '@chorus/client/node';
import { BUILTIN_MODALITIES, BUILTIN_NAMES, openBuiltin, readManifest } from '@chorus/datasets';
import type { BuiltinName } from '@chorus/datasets';
import { fileSource, loadBuiltinEmbeddings } from '@chorus/datasets/node';
import { publicRepresentationTensors, readPublicRepresentations } from '@chorus/fl-core';
import type { Modality, Parameters, Tensor } from '@chorus/fl-core';
import { FedAfdServerModel, TextEmbedder } from '@chorus/models';
import type { MultimodalBatch } from '@chorus/models';
import { CoordinatorError } from '../errors.js';
import { publicBatchIndices } from '../engine/representationRounds.js';
import { buildRepresentationStrategy } from '../strategy/representation.js';
import type { RepresentationTask } from '@chorus/protocol';
import type { ExportedArtifacts } from './taskModel.js';

/** `format` of the server model's export: its encoders' weights by name, its sizes in the metadata (as the adapters export of weight tasks). */
export const FEDAFD_SERVER_FORMAT = 'chorus-fedafd-server';

/** Options of {@link FedAfdServerTask.create}. */
export interface FedAfdServerOptions {
  /** The datasets package's data folder; default its own. */
  readonly dataDir?: string;
}

/** The figures of one server step, as round metrics name them. */
export type FedAfdServerMetrics = Record<string, number>;

function invalid(task: RepresentationTask, issue: string): never {
  throw new CoordinatorError('TASK_INVALID', `task ${task.id}: ${issue}`, [issue]);
}

/** The server model of a representation task with its public and test data; see the module comment. */
export class FedAfdServerTask {
  private constructor(
    private readonly task: RepresentationTask,
    private readonly server: FedAfdServerModel,
    private readonly embedder: TextEmbedder,
    private readonly publicData: FedAfdPublicData,
    private readonly testBatch: MultimodalBatch | null,
    /** Modalities the server encodes (text and at least one of image, audio). */
    readonly modalities: readonly Modality[],
  ) {}

  /** Checks the task's client mix and builds the server model; throws `TASK_INVALID` naming the path. */
  static async create(task: RepresentationTask, options: FedAfdServerOptions = {}): Promise<FedAfdServerTask> {
    const dataset = task.dataset.name;
    if (!(BUILTIN_NAMES as readonly string[]).includes(dataset)) invalid(task, `dataset.name: FedAFD runs on a built-in dataset (${BUILTIN_NAMES.join(', ')})`);
    const name = dataset as BuiltinName;
    const modalities = task.dataset.modalities.filter((m) => BUILTIN_MODALITIES[name].includes(m));
    if (!modalities.includes('text') || !modalities.some((m) => m !== 'text'))
      invalid(task, 'dataset.modalities: the server model needs text and at least one of image and audio');
    try {
      checkFedAfdKinds(task.representation.clientKinds, modalities);
    } catch (err) {
      if (!isClientError(err)) throw err;
      // "FedAFD client kinds: kinds[1].arch: …" → "representation.clientKinds[1].arch: …"
      invalid(task, err.message.replace(/^(?:[A-Z_]+: )?FedAFD client kinds: kinds/, 'representation.clientKinds'));
    }
    const strategy = buildRepresentationStrategy(task);
    const embeddings = await loadBuiltinEmbeddings(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
    const embedder = new TextEmbedder(embeddings.vectors, embeddings.dim);
    let server: FedAfdServerModel | null = null;
    try {
      const publicData = await openFedAfdPublicDataFromFiles(name, options.dataDir);
      if (task.representation.publicBatch > publicData.numExamples)
        invalid(task, `representation.publicBatch: ${task.representation.publicBatch} is more than the ${publicData.numExamples} public samples`);
      const s = task.representation.server;
      server = new FedAfdServerModel({
        dim: task.representation.dim,
        imageShape: FEDAFD_BUILTIN_INPUTS.imageShape,
        ...(modalities.includes('audio') ? { audioShape: FEDAFD_BUILTIN_INPUTS.audioShape } : {}),
        textEmbedder: embedder,
        modalities,
        hiddenUnits: s.hiddenUnits,
        imageFilters: [...s.imageFilters],
        textFilters: s.textFilters,
        audioFilters: [...s.audioFilters],
        seed: task.seed,
        learningRate: s.learningRate,
        distillationWeight: strategy.distillationWeight,
      });
      let testBatch: MultimodalBatch | null = null;
      if (task.evaluation.testExamples > 0) {
        const source = fileSource(options.dataDir);
        const split = await openBuiltin(source, await readManifest(source), name, 'test');
        const test = publicDataOver(name, split.numExamples, split);
        const n = Math.min(task.evaluation.testExamples, test.numExamples);
        testBatch = toModelBatch(
          await test.batch(
            Array.from({ length: n }, (_, i) => i),
            modalities,
          ),
          modalities,
        );
      }
      return new FedAfdServerTask(task, server, embedder, publicData, testBatch, modalities);
    } catch (err) {
      server?.dispose();
      embedder.dispose();
      throw err;
    }
  }

  /** Samples in the public split. */
  get publicExamples(): number {
    return this.publicData.numExamples;
  }

  private get numSamples(): number {
    return this.task.representation.publicBatch;
  }

  /** The public batch of `serverRound` as model inputs (the caller disposes). */
  private async publicBatch(serverRound: number): Promise<MultimodalBatch> {
    const indices = publicBatchIndices(this.task.seed, serverRound, this.publicData.numExamples, this.numSamples);
    return toModelBatch(await this.publicData.batch(indices, this.modalities), this.modalities);
  }

  /** The server's weights followed by its `public/<modality>` representations of round `serverRound`'s batch. */
  private async globalFor(serverRound: number): Promise<Tensor[]> {
    const batch = await this.publicBatch(serverRound);
    try {
      const representations = await this.server.representations(batch);
      const publicTensors = publicRepresentationTensors({ numSamples: this.numSamples, dim: this.server.dim, representations });
      return [...(await this.server.exportWeights()), ...publicTensors];
    } finally {
      tf.dispose(Object.values(batch) as tf.Tensor[]);
    }
  }

  /** The first global: the seeded server model and round 1's public representations. */
  initialParameters(): Promise<Tensor[]> {
    return this.globalFor(1);
  }

  /**
   * One server step of `serverRound` (see the module comment): `global` is the round's global,
   * `teachers` SED's teacher [B, D] per modality (none: retrieval alone, as LOCAL's server trains).
   * Returns the next global and the step's figures.
   */
  async distill(
    serverRound: number,
    global: Parameters,
    teachers: Readonly<Partial<Record<Modality, Float32Array>>>,
  ): Promise<{ parameters: Tensor[]; metrics: FedAfdServerMetrics }> {
    const { weights } = readPublicRepresentations(global, this.numSamples, this.server.dim);
    this.server.importWeights(weights);
    // Adam starts afresh every round: the round is then a function of the global alone, the same
    // after a restart or after the evaluator was suspended and re-created.
    this.server.resetOptimizer();
    const batch = await this.publicBatch(serverRound);
    const metrics: FedAfdServerMetrics = {};
    try {
      const present = Object.fromEntries(Object.entries(teachers).filter(([m, t]) => t !== undefined && this.modalities.includes(m as Modality)));
      for (let step = 0; step < this.task.representation.server.stepsPerRound; step++) {
        const result = await this.server.trainStep({ batch, teachers: present });
        if (step === 0) {
          metrics['server.loss'] = result.loss;
          metrics['server.retrievalLoss'] = result.retrieval;
          metrics['server.distillationLoss'] = result.distillation;
        }
      }
      metrics['server.teachers'] = Object.keys(present).length;
    } finally {
      tf.dispose(Object.values(batch) as tf.Tensor[]);
    }
    if (this.testBatch) Object.assign(metrics, await this.retrievalMetrics(this.testBatch));
    return { parameters: await this.globalFor(serverRound + 1), metrics };
  }

  /**
   * The server's retrieval on the test pairs: `server.i2t*`, `server.t2i*` and `server.rsum` for its
   * first query modality (image, else audio: the figures the dashboard charts), and, when it encodes
   * audio, audio↔text as `server.a2tR1`, `server.t2aR1`, `server.a2tR5`, `server.t2aR5`, `server.audioRsum`.
   */
  private async retrievalMetrics(testBatch: MultimodalBatch): Promise<FedAfdServerMetrics> {
    const metrics: FedAfdServerMetrics = {};
    const primary = this.modalities.includes('image') ? 'image' : 'audio';
    const r = await this.server.evaluateRetrieval(testBatch, primary);
    metrics['server.i2tR1'] = r.i2tR1;
    metrics['server.t2iR1'] = r.t2iR1;
    metrics['server.i2tR5'] = r.i2tR5;
    metrics['server.t2iR5'] = r.t2iR5;
    metrics['server.rsum'] = r.rsum;
    metrics['server.testPairs'] = r.numPairs;
    if (this.modalities.includes('audio')) {
      const a = primary === 'audio' ? r : await this.server.evaluateRetrieval(testBatch, 'audio');
      metrics['server.a2tR1'] = a.i2tR1;
      metrics['server.t2aR1'] = a.t2iR1;
      metrics['server.a2tR5'] = a.i2tR5;
      metrics['server.t2aR5'] = a.t2iR5;
      metrics['server.audioRsum'] = a.rsum;
    }
    return metrics;
  }

  /**
   * The server model of `global` as TF.js artifacts in {@link FEDAFD_SERVER_FORMAT}: every encoder
   * weight by name (`image/conv_1/kernel` …, what `FedAfdServerModel.importWeights` reads; the
   * public representations are left out), D, the modalities and the encoder sizes in the metadata.
   */
  async exportArtifacts(global: Parameters): Promise<ExportedArtifacts> {
    const { weights } = readPublicRepresentations(global, this.numSamples, this.server.dim);
    this.server.importWeights(weights);
    const named = (await this.server.exportWeights()).map((t) => ({ name: t.name, tensor: tf.tensor(t.values, [...t.shape]) }));
    try {
      const { data, specs } = await tf.io.encodeWeights(named);
      const s = this.task.representation.server;
      const config = {
        dim: this.server.dim,
        modalities: [...this.modalities],
        hiddenUnits: s.hiddenUnits,
        imageFilters: [...s.imageFilters],
        textFilters: s.textFilters,
        audioFilters: [...s.audioFilters],
      };
      return {
        modelJson: {
          modelTopology: null as unknown as tf.io.ModelJSON['modelTopology'],
          format: FEDAFD_SERVER_FORMAT,
          generatedBy: '@chorus/coordinator',
          weightsManifest: [{ paths: ['./weights.bin'], weights: specs }],
          userDefinedMetadata: { taskId: this.task.id, config },
        },
        weights: new Uint8Array(data),
      };
    } finally {
      for (const n of named) n.tensor.dispose();
    }
  }

  dispose(): void {
    if (this.testBatch) tf.dispose(Object.values(this.testBatch) as tf.Tensor[]);
    this.server.dispose();
    this.embedder.dispose();
  }
}
