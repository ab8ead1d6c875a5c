/**
 * A FedAFD client in the runtime ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and
 * Distillation", Algorithm 1, client part): what a {@link ChorusClient} runs when a round start
 * carries the round config's `representation` section.
 *
 * Each round it reads the global from the round start (the server's encoder weights and its
 * `public/<modality>` [B, D] representations of the round's public batch), reads the same public
 * samples from its own copy of the public split, runs the FedAFD local round (localRound.ts) with
 * its kind's model, and answers with codec bytes of kind `representations`: `rep/<modality>`
 * [B, D] for each modality it holds, in the round's encoding. The model is kept between rounds (its
 * local encoders, head and discriminators keep learning) and rebuilt only when the round asks for
 * another D, other coefficients, or global encoders of other sizes.
 *
 * The client's learning rate is the round config's (the task's `learningRate`), as in weight rounds.
 * The server's encoder sizes are not in the round config: they are read off the shapes of the
 * global weights ({@link globalSizesFromWeights}), so a client needs no copy of the task file.
 * A round start that is not a well-formed representation round is refused with `CLIENT_BAD_ROUND`
 * before any weight moves.
 */
import { createRng, decodeUpdate, encodeUpdate, isFlCoreError, readPublicRepresentations, representationUploadTensors } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import { createFedAfdClient } from '@chorus/models';
import type { FedAfdClient, FedAfdClientOptions, GlobalEncoderSizes } from '@chorus/models';
import type { ParsedRoundStart } from '@chorus/protocol';
import type { AdversarialBehaviour } from '../adversarial.js';
import type { LocalDataset } from '../dataset.js';
import { ClientError } from '../errors.js';
import { roundSeed } from '../localRound.js';
import type { FedAfdAssignment, FedAfdPublicData } from './clientData.js';
import { runFedAfdLocalRound } from './localRound.js';
import { fedAfdClientSpec } from './spec.js';
import type { FedAfdSpecBase } from './spec.js';

/** What the runtime hands a representation round. */
export interface RepresentationRoundInput {
  readonly round: ParsedRoundStart;
  readonly clientId: string;
  /** True abandons the round at the next step. */
  readonly shouldStop: () => boolean;
  /** Awaited between steps. */
  readonly pause: () => Promise<void>;
  /** Hears each local step (1-based epoch and batch, its loss), for progress bars; optional. */
  readonly onStep?: (step: {
    readonly epoch: number;
    readonly numEpochs: number;
    readonly batch: number;
    readonly numBatches: number;
    readonly loss: number;
  }) => void;
}

/** The upload of a representation round: codec bytes of kind `representations` and the client's figures. */
export interface RepresentationRoundOutput {
  readonly bytes: Uint8Array;
  readonly metrics: Record<string, number>;
}

/** Runs a client's representation rounds; the runtime calls it for every round start with a `representation` section. */
export interface RepresentationRoundRunner {
  /** The round's upload, or null when it was abandoned. Throws a `ClientError` for a round it cannot run. */
  run(input: RepresentationRoundInput): Promise<RepresentationRoundOutput | null>;
  /** Frees the model it keeps between rounds. */
  dispose(): void;
}

/** Options of {@link FedAfdRoundRunner}. */
export interface FedAfdRoundRunnerOptions {
  /** The client's kind and architecture. */
  readonly assignment: Pick<FedAfdAssignment, 'kind' | 'arch'>;
  /** The client's local data (the modalities of its kind, with labels). */
  readonly dataset: LocalDataset;
  /** The public split, known to the server and every client. */
  readonly publicData: FedAfdPublicData;
  /** Input formats and frozen parts of the client models (the text embedder, …); `global` is read off each round's weights. */
  readonly modelOptions: Omit<FedAfdClientOptions, 'global'>;
  /** The model's other spec fields (sizes, classes, learning rate, seed). */
  readonly spec?: FedAfdSpecBase;
  /** Seed of the local shuffles (each round draws from (seed, round) alone). */
  readonly seed: number;
  /** Local examples scored after training (default the local round's). */
  readonly evalExamples?: number;
  /** Held-out examples of the kind's modalities scored instead of local ones (experiments: a validation or test part). */
  readonly evalData?: LocalDataset;
  /** Experiments only: an adversarial behaviour on what is uploaded. */
  readonly behaviour?: AdversarialBehaviour | null;
}

/**
 * The global encoders' sizes from the shapes of their exported weights (`image/conv_1/kernel`
 * [3, 3, c, f₁], `image/conv_2/kernel` [3, 3, f₁, f₂], `<m>/dense_1/kernel` [·, hidden],
 * `text/conv1d/kernel` [·, filters], `audio/conv_…`). Throws `CLIENT_BAD_ROUND` when they are missing
 * or disagree.
 */
export function globalSizesFromWeights(weights: Parameters): GlobalEncoderSizes {
  const shape = (name: string): readonly number[] | undefined => weights.find((t) => t.name === name)?.shape;
  const last = (name: string): number | undefined => {
    const s = shape(name);
    return s === undefined ? undefined : s[s.length - 1];
  };
  const hidden = ['image', 'text', 'audio'].map((m) => last(`${m}/dense_1/kernel`)).filter((h): h is number => h !== undefined);
  if (hidden.length === 0 || hidden.some((h) => h !== hidden[0]))
    throw new ClientError('CLIENT_BAD_ROUND', 'FedAFD round: the global weights carry no consistent <modality>/dense_1/kernel');
  const sizes: GlobalEncoderSizes = { hiddenUnits: hidden[0]! };
  const pair = (m: string): [number, number] | undefined => {
    const f1 = last(`${m}/conv_1/kernel`);
    const f2 = last(`${m}/conv_2/kernel`);
    return f1 !== undefined && f2 !== undefined ? [f1, f2] : undefined;
  };
  const image = pair('image');
  const audio = pair('audio');
  const text = last('text/conv1d/kernel');
  return {
    ...sizes,
    ...(image ? { imageFilters: image } : {}),
    ...(audio ? { audioFilters: audio } : {}),
    ...(text !== undefined ? { textFilters: text } : {}),
  };
}

/** A FedAFD client's representation rounds; see the module comment. */
export class FedAfdRoundRunner implements RepresentationRoundRunner {
  private model: FedAfdClient | null = null;
  private modelKey = '';

  constructor(private readonly options: FedAfdRoundRunnerOptions) {}

  /** The model kept between rounds (null before the first round). */
  get client(): FedAfdClient | null {
    return this.model;
  }

  async run(input: RepresentationRoundInput): Promise<RepresentationRoundOutput | null> {
    const { round, clientId } = input;
    const section = round.config.representation;
    if (!section) throw new ClientError('CLIENT_BAD_ROUND', 'FedAFD round: the round start has no representation section');
    const numSamples = section.publicIndices.length;
    let split;
    try {
      const decoded = decodeUpdate(round.global, { maxBytes: round.global.byteLength });
      if (decoded.kind !== 'model') throw new ClientError('CLIENT_BAD_ROUND', `FedAFD round: the global is a ${decoded.kind}, not a model`);
      split = readPublicRepresentations(decoded.tensors, numSamples, section.dim);
    } catch (err) {
      if (isFlCoreError(err)) throw new ClientError('CLIENT_BAD_ROUND', `FedAFD round: ${err.message}`);
      throw err;
    }
    const client = this.clientFor(section, globalSizesFromWeights(split.weights), round.config.learningRate);
    const publicBatch = await this.options.publicData.batch(section.publicIndices);
    const result = await runFedAfdLocalRound({
      client,
      dataset: this.options.dataset,
      publicBatch,
      globalPublic: split.global.representations,
      ...(section.fusion ? { globalWeights: split.weights } : {}),
      localEpochs: round.config.localEpochs,
      batchSize: round.config.batchSize,
      rng: createRng(roundSeed(this.options.seed, round.serverRound)),
      behaviour: this.options.behaviour ?? null,
      ...(this.options.evalExamples === undefined ? {} : { evalExamples: this.options.evalExamples }),
      ...(this.options.evalData === undefined ? {} : { evalData: this.options.evalData }),
      shouldStop: input.shouldStop,
      pause: input.pause,
      ...(input.onStep ? { onStep: input.onStep } : {}),
    });
    if (!result) return null;
    const bytes = encodeUpdate({
      kind: 'representations',
      taskId: round.taskId,
      round: round.serverRound,
      clientId,
      encoding: section.encoding,
      tensors: representationUploadTensors(result.representations, numSamples, section.dim),
    });
    const metrics = Object.fromEntries(Object.entries(result.metrics).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
    return { bytes, metrics };
  }

  /** The kept model, rebuilt when the round asks for another D, other coefficients, learning rate or global sizes. */
  private clientFor(section: NonNullable<ParsedRoundStart['config']['representation']>, global: GlobalEncoderSizes, learningRate: number): FedAfdClient {
    const coefficients = { adversarialWeight: section.adversarialWeight, fusion: section.fusion, localDistillationWeight: section.localDistillationWeight };
    const key = JSON.stringify({ dim: section.dim, coefficients, global, learningRate });
    if (this.model && key === this.modelKey) return this.model;
    // The task's learning rate is the clients' (as in weight rounds); the spec's own is only a default for direct use.
    const spec = fedAfdClientSpec(this.options.assignment, coefficients, { ...this.options.spec, dim: section.dim, learningRate });
    const next = createFedAfdClient(spec, { ...this.options.modelOptions, global });
    this.model?.dispose();
    this.model = next;
    this.modelKey = key;
    return next;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = null;
  }
}
