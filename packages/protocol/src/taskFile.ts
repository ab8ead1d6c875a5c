/**
 * The task file (one home: the coordinator reads task files with it, the dashboard's New task form
 * checks what it sends with it): what a federated task trains, with which strategy, and under which limits.
 *
 * Objects are strict (an unknown key is an error, so a typo never silently falls back to a default)
 * and every number has a range. Cross-field rules (e.g. `minClients ≤ clientsPerRound`, Krum's
 * n > 2f + 2) are checked after the field rules, each naming the path it is about.
 */
import { z } from 'zod';
import { MAX_PUBLIC_BATCH, MAX_REPRESENTATION_DIM, MODALITIES, MODAL_LOSSES, MODEL_HEADS, UPLOAD_ENCODINGS, cutLayerReleaseSchema } from './protocol.js';
import { MAX_CLASSES, audioInputSchema, imageInputSchema, textInputSchema } from './taskSpec.js';
import { REPRESENTATION_STRATEGY_NAMES } from '@chorus/fl-core';
import type { RepresentationStrategyName } from '@chorus/fl-core';

/** Largest update a task may allow (socket.io buffers a whole message in memory). */
export const MAX_UPDATE_BYTES_CAP = 256 * 1024 * 1024;

const idSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 characters of [A-Za-z0-9._-]');
const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();
const unitInterval = z.number().min(0).max(1);

/** Strategies that aggregate deltas directly (no wrapped strategy). */
export type BaseStrategyConfig =
  /**
   * `exactSum`: sum updates exactly, so a round's model depends only on its results (not their
   * order, nor how they were spread over coordinator nodes); in a cluster each node then sums its
   * own clients and sends the leader one partial sum instead of every update.
   */
  | { readonly name: 'fedavg'; readonly exactSum?: boolean }
  | { readonly name: 'fedprox'; readonly proximalMu: number; readonly exactSum?: boolean }
  | { readonly name: 'fedavgm'; readonly serverLearningRate: number; readonly serverMomentum: number }
  | { readonly name: 'fedadam' | 'fedyogi'; readonly serverLearningRate: number; readonly beta1: number; readonly beta2: number; readonly tau: number }
  | { readonly name: 'fedadagrad'; readonly serverLearningRate: number; readonly tau: number }
  | { readonly name: 'median' }
  | { readonly name: 'trimmed-mean'; readonly trimFraction: number }
  | { readonly name: 'krum'; readonly numByzantine: number }
  | { readonly name: 'multi-krum'; readonly numByzantine: number; readonly numSelected: number | null }
  /** Multi-Krum selecting whole clients from their Krum scores over the groups they sent; `multi-krum` selects per group. */
  | { readonly name: 'multi-krum-select'; readonly numByzantine: number; readonly numSelected: number | null }
  | { readonly name: 'fltrust'; readonly rootExamples: number }
  /** A baseline: the server's root-data update alone, client updates ignored. */
  | { readonly name: 'server-only'; readonly rootExamples: number };

/**
 * FedMM-X trust-aware aggregation around an inner strategy. Every signal is measured by the
 * coordinator (update agreement, and the candidate model's accuracy, loss, calibration and
 * explanation consistency on the server's probe set); history enters through `historyDecay`.
 */
export interface TrustStrategyConfig {
  readonly name: 'fedmm-x';
  readonly inner: StrategyConfig;
  /** Relative weights of the signals combined into a round's score s_k. */
  readonly weights: {
    readonly agreement: number;
    readonly accuracy: number;
    readonly loss: number;
    readonly calibration: number;
    readonly explanation: number;
  };
  /** Weight β of the previous T_k in the exponential moving average over rounds, in [0, 1). */
  readonly historyDecay: number;
  /** T_k of a client never seen before. */
  readonly prior: number;
  /** Updates whose T_k falls below this are left out of the round. */
  readonly minTrust: number;
  /** Zero the round score of a client whose update points away from the reference (agreement 0). */
  readonly agreementGate: boolean;
  /**
   * The agreement reference: `'median'` of the round's updates, or `'root'`: the server's own root
   * update (trained on `rootExamples` of the public split), which survives a majority of attackers.
   */
  readonly agreementReference: 'median' | 'root';
  /**
   * The norm bound under the trust weighting (FedMM-X's recommended configuration sets one): every
   * update is clipped per parameter group to a constant, to the round's `'median'` norm, or to the
   * norm of the server's root update (`'reference'`), so no weighting can be overwhelmed by scale.
   * Null: no bound.
   */
  readonly maxNorm: number | 'median' | 'reference' | null;
  /** Public-split examples the server trains its root update on, when `agreementReference` or `maxNorm` uses it. */
  readonly rootExamples: number;
}

/** Norm clipping of every client delta before the inner strategy sees it. */
export interface ClipStrategyConfig {
  readonly name: 'clip';
  readonly inner: StrategyConfig;
  /** A fixed bound, `'median'`: each round's median norm (FLAME's adaptive bound), or `'reference'`: the root update's norm. */
  readonly maxNorm: number | 'median' | 'reference';
  /** Clip each parameter group on its own instead of the whole delta. */
  readonly perGroup: boolean;
  /** Public-split examples the server trains its root update on, under `maxNorm: 'reference'`. */
  readonly rootExamples: number;
}

/** Differentially private FedAvg-style wrapper (clip each update, add Gaussian noise to the sum). */
export interface DpStrategyConfig {
  readonly name: 'dp';
  readonly inner: StrategyConfig;
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  /** δ of the (ε, δ) guarantee reported by the accountant. */
  readonly delta: number;
  /**
   * q, the probability that a given client takes part in a round, as the accountant assumes. 1 (the
   * default) claims no amplification by sampling, which bounds ε from above whatever the sampling.
   */
  readonly samplingRate: number;
  /**
   * Noise source: 'crypto' draws from the operating system's CSPRNG (production); 'seeded' derives
   * each round's noise from the task seed, so a rerun or a resumed run adds identical noise (tests,
   * reproducible experiments — not private against anyone who knows the seed).
   */
  readonly noise: 'crypto' | 'seeded';
}

/** Any strategy a task can name. */
export type StrategyConfig = BaseStrategyConfig | TrustStrategyConfig | ClipStrategyConfig | DpStrategyConfig;

const baseStrategySchemas = [
  z.strictObject({ name: z.literal('fedavg'), exactSum: z.boolean().optional() }),
  z.strictObject({ name: z.literal('fedprox'), proximalMu: z.number().positive(), exactSum: z.boolean().optional() }),
  z.strictObject({
    name: z.literal('fedavgm'),
    serverLearningRate: z.number().positive().default(1),
    serverMomentum: z.number().min(0).lt(1).default(0.9),
  }),
  z.strictObject({
    name: z.enum(['fedadam', 'fedyogi']),
    serverLearningRate: z.number().positive().default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.99),
    tau: z.number().positive().default(1e-9),
  }),
  z.strictObject({
    name: z.literal('fedadagrad'),
    serverLearningRate: z.number().positive().default(0.1),
    tau: z.number().positive().default(1e-9),
  }),
  z.strictObject({ name: z.literal('median') }),
  z.strictObject({ name: z.literal('trimmed-mean'), trimFraction: z.number().min(0).lt(0.5).default(0.1) }),
  z.strictObject({ name: z.literal('krum'), numByzantine: z.number().int().nonnegative() }),
  z.strictObject({
    name: z.literal('multi-krum'),
    numByzantine: z.number().int().nonnegative(),
    numSelected: positiveInt.nullable().default(null),
  }),
  z.strictObject({
    name: z.literal('multi-krum-select'),
    numByzantine: z.number().int().nonnegative(),
    numSelected: positiveInt.nullable().default(null),
  }),
  z.strictObject({ name: z.literal('fltrust'), rootExamples: positiveInt.default(100) }),
  z.strictObject({ name: z.literal('server-only'), rootExamples: positiveInt.default(100) }),
] as const;

const trustWeightsSchema = z.strictObject({
  agreement: nonNegative.default(1),
  accuracy: nonNegative.default(1),
  loss: nonNegative.default(1),
  calibration: nonNegative.default(0.5),
  explanation: nonNegative.default(0.5),
});

/** Schema of {@link StrategyConfig}; wrappers nest another strategy under `inner`. */
export const strategySchema: z.ZodType<StrategyConfig, unknown> = z.lazy(() =>
  z.discriminatedUnion('name', [
    ...baseStrategySchemas,
    z.strictObject({
      name: z.literal('fedmm-x'),
      inner: strategySchema.default({ name: 'fedavg' }),
      weights: trustWeightsSchema.default({ agreement: 1, accuracy: 1, loss: 1, calibration: 0.5, explanation: 0.5 }),
      historyDecay: z.number().min(0).lt(1).default(0.5),
      prior: unitInterval.default(0.5),
      minTrust: unitInterval.default(0),
      agreementGate: z.boolean().default(true),
      agreementReference: z.enum(['median', 'root']).default('median'),
      maxNorm: z
        .union([z.number().positive(), z.enum(['median', 'reference'])])
        .nullable()
        .default(null),
      rootExamples: positiveInt.default(100),
    }),
    z.strictObject({
      name: z.literal('clip'),
      inner: strategySchema.default({ name: 'fedavg' }),
      maxNorm: z.union([z.number().positive(), z.enum(['median', 'reference'])]),
      perGroup: z.boolean().default(false),
      rootExamples: positiveInt.default(100),
    }),
    z.strictObject({
      name: z.literal('dp'),
      inner: strategySchema.default({ name: 'fedavg' }),
      clipNorm: z.number().positive(),
      noiseMultiplier: nonNegative,
      delta: z.number().positive().lt(1).default(1e-5),
      samplingRate: z.number().positive().max(1).default(1),
      noise: z.enum(['crypto', 'seeded']).default('crypto'),
    }),
  ]),
);

/** `model.base` of a task that brings its own encoders (`model.encoders`). */
export const CUSTOM_BASE = 'custom';

/** A path in a task folder: relative to the task file (made absolute when the file is read). */
const taskPathSchema = z.string().min(1).max(1000);
const adapterTargetsSchema = z.array(z.string().min(1).max(200)).min(1).max(64);

/**
 * A task's own frozen encoders, by modality: a folder holding a TF.js LayersModel (`model.json` and
 * the weight files it names), the Dense / 1×1 Conv2D layers that take LoRA adapters, and the input
 * spec its input is made by. A text encoder also names its word-vector table (`word v1 … vd` lines).
 */
const customEncodersSchema = z.strictObject({
  image: z.strictObject({ path: taskPathSchema, adapters: adapterTargetsSchema, input: imageInputSchema }).optional(),
  text: z.strictObject({ path: taskPathSchema, adapters: adapterTargetsSchema, input: textInputSchema, vocabulary: taskPathSchema }).optional(),
  audio: z.strictObject({ path: taskPathSchema, adapters: adapterTargetsSchema, input: audioInputSchema }).optional(),
});
/** See {@link customEncodersSchema}. */
export type CustomEncoders = z.output<typeof customEncodersSchema>;

/**
 * Server-side data of a custom task, by modality, in the formats the datasets package reads:
 * class-folder images, CSV / JSONL text (with its text and label columns), class-folder WAVs.
 */
const customDataSchema = z.strictObject({
  image: taskPathSchema.optional(),
  text: z
    .strictObject({
      path: taskPathSchema,
      textColumn: z.union([z.string().min(1), z.number().int().nonnegative()]).default('text'),
      labelColumn: z.union([z.string().min(1), z.number().int().nonnegative()]).default('label'),
    })
    .optional(),
  audio: taskPathSchema.optional(),
});
/** See {@link customDataSchema}. */
export type CustomData = z.output<typeof customDataSchema>;

/** The LoRA/NAM model of a weight task. */
const modelSchema = z.strictObject({
  /** `chorus-digits-v1` (the built-in demo encoders) or {@link CUSTOM_BASE} (the task's own `encoders`). */
  base: z.string().min(1).max(200),
  /** The task's own encoders (with `base: custom` only). */
  encoders: customEncodersSchema.optional(),
  adapterRank: positiveInt.max(256),
  adapterAlpha: z.number().positive(),
  namConcepts: positiveInt.max(256),
  /** Weight λ₁ of FedMM-X's cross-modal consistency loss L_modal in every client's training (0: off, the ablation). */
  modalWeight: z.number().min(0).max(100).default(0.1),
  /** Which L_modal: 'js' (default), the Jensen–Shannon term, or 'distill', FedMM-X's cross-modal distillation toward the fused prediction. */
  modalLoss: z.enum(MODAL_LOSSES).default('js'),
  /** Weight λ₂ of FedMM-X's interpretability loss L_intp (shape-function smoothness + contribution sparsity); 0 (default) turns it off. */
  interpretabilityWeight: z.number().min(0).max(100).default(0),
  /** 'nam' (default) or 'linear': a plain linear head over the concatenated concepts (the "without NAM" ablation). */
  head: z.enum(MODEL_HEADS).default('nam'),
});

/**
 * What a representation task records as its `model` section: it trains no LoRA/NAM model, so none
 * of these values is used (the weight-round fields of its round configs carry them unread).
 */
export const REPRESENTATION_TASK_MODEL = {
  base: 'none',
  adapterRank: 1,
  adapterAlpha: 1,
  namConcepts: 1,
  modalWeight: 0,
  modalLoss: 'js',
  interpretabilityWeight: 0,
  head: 'nam',
} as const satisfies z.output<typeof modelSchema>;

/**
 * A representation strategy (FedAFD family) as a task file names it: `name` plus the method's own
 * settings, which fl-core's `createRepresentationStrategy` checks (errors name `strategy.<field>`).
 */
export interface RepresentationStrategyTaskConfig {
  readonly name: RepresentationStrategyName;
  readonly [setting: string]: unknown;
}

const representationStrategySchema = z.looseObject({ name: z.enum(REPRESENTATION_STRATEGY_NAMES) });

/** One entry of a representation task's client mix (checked against the models' kinds by the evaluator). */
const clientKindSchema = z.strictObject({
  kind: z.string().min(1).max(64),
  arch: z.string().min(1).max(64),
  share: z.number().min(0).max(1),
});

const filterPair = z.tuple([positiveInt.max(1024), positiveInt.max(1024)]);

/**
 * The `representation` section of a FedAFD-family task ("FedAFD: Multimodal Federated Learning via
 * Adversarial Fusion and Distillation", §3.2, §4.1): the shared space, the public batch each round
 * exchanges representations of, the upload encoding, the clients' and server's loss coefficients,
 * the server model and the client mix.
 */
export const representationTaskSchema = z.strictObject({
  /** D: width of the shared representation space (the paper's 256). */
  dim: positiveInt.max(MAX_REPRESENTATION_DIM).default(256),
  /** B: public samples whose representations a round exchanges. */
  publicBatch: positiveInt.max(MAX_PUBLIC_BATCH).default(64),
  /** Wire encoding of the clients' uploads. */
  encoding: z.enum(UPLOAD_ENCODINGS).default('fp16'),
  /** Clients' BAA coefficient (FedAFD: 0.5); overrides the strategy's `adversarialWeight` (fedafd only). */
  adversarialWeight: z.number().min(0).max(100).optional(),
  /** The server's distillation coefficient λ_dis (FedAFD: 0.4); overrides the strategy's `distillationWeight`. */
  distillationWeight: z.number().min(0).max(100).optional(),
  /** The server model: its global encoders' sizes, Adam's learning rate and the distillation steps per round. */
  server: z
    .strictObject({
      hiddenUnits: positiveInt.max(4096).default(512),
      imageFilters: filterPair.default([32, 64]),
      textFilters: positiveInt.max(4096).default(256),
      audioFilters: filterPair.default([16, 32]),
      learningRate: z.number().positive().max(10).default(1e-3),
      stepsPerRound: positiveInt.max(1000).default(1),
    })
    .default({ hiddenUnits: 512, imageFilters: [32, 64], textFilters: 256, audioFilters: [16, 32], learningRate: 1e-3, stepsPerRound: 1 }),
  /** The client mix: kinds, architectures and shares summing to 1. */
  clientKinds: z.array(clientKindSchema).min(1).max(16),
});
/** See {@link representationTaskSchema}. */
export type RepresentationTaskConfig = z.output<typeof representationTaskSchema>;

/** A token bucket of new identities: `burst` at once, refilled at `perHour`. */
const identityBucketSchema = z.strictObject({
  burst: positiveInt.max(1_000_000),
  perHour: z.number().positive().max(3_600_000),
});

/** Strategies a split task may aggregate its device weights with: FedUMM's Eq. 1 is per-modality FedAvg. */
export const SPLIT_STRATEGIES = ['fedavg'] as const;

/**
 * The `split` section of a weight task: FedUMM's device–edge split (Su et al. 2026,
 * arXiv:2601.15390 §3.3). Clients keep the encoders, adapters and task head; the coordinator (the
 * edge) trains a fusion network over the clients' cut-layer tokens; the secure interface clips,
 * noises and compresses what crosses (see the protocol module's comment).
 */
export const splitTaskSchema = z.strictObject({
  /** d: width of the edge's fusion network and of the fused features it returns. */
  fusedDim: positiveInt.max(1024).default(32),
  /** Transformer blocks of the fusion network. */
  numBlocks: positiveInt.max(16).default(2),
  /** Attention heads per block (must divide fusedDim). */
  numHeads: positiveInt.max(16).default(2),
  /** Adam learning rate of the edge's fusion network. */
  edgeLearningRate: z.number().positive().max(10).default(1e-3),
  /** Weight of the client's local NAM head's own cross-entropy beside the task head's. */
  localHeadWeight: z.number().min(0).max(100).default(0.5),
  /** Release of the clients' cut-layer activations. */
  activations: cutLayerReleaseSchema.default({ clipNorm: 4, noiseMultiplier: 0, encoding: 'int8' }),
  /** Release of the clients' gradients w.r.t. the fused features. */
  gradients: cutLayerReleaseSchema.default({ clipNorm: 1, noiseMultiplier: 0, encoding: 'int8' }),
  /** Encoding of what the edge sends back. */
  returnEncoding: z.enum(UPLOAD_ENCODINGS).default('int8'),
  /** Split steps the edge holds at once over all the task's clients (queued or computing); more are refused with EDGE_BUSY. */
  maxPendingSteps: positiveInt.max(100_000).default(64),
  /** How long a client waits for a step's ack, and how long the edge keeps a forward waiting for its backward. */
  stepTimeoutMs: positiveInt.max(600_000).default(30_000),
  /** δ of the interface's reported (ε, δ). */
  delta: z.number().positive().max(0.1).default(1e-5),
});
/** See {@link splitTaskSchema}. */
export type SplitTaskConfig = z.output<typeof splitTaskSchema>;

/** Defaults of {@link admissionSchema}: an open volunteer task that still charges for each new identity. */
export const DEFAULT_ADMISSION = {
  openLink: true,
  proofOfWorkBits: 12,
  newIdentitiesPerAddress: { burst: 4, perHour: 4 },
  newIdentitiesPerTask: { burst: 100, perHour: 600 },
  slots: 'sampling-order',
  probationRounds: 5,
  similarityDamping: true,
} as const;

/**
 * Who may open a new identity on the task, what each costs, and how much a newcomer counts — the
 * task's defence against one person joining as many (Sybils). Resumed identities are never charged.
 */
export const admissionSchema = z
  .strictObject({
    /** The task's join token admits new identities (false: invitation links only). */
    openLink: z.boolean().default(DEFAULT_ADMISSION.openLink),
    /** Leading zero bits of SHA-256(challenge ‖ nonce) a new identity must find (0: no work; 12 ≈ 4k hashes, well under a second in a browser). */
    proofOfWorkBits: z.number().int().min(0).max(32).default(DEFAULT_ADMISSION.proofOfWorkBits),
    /** New identities one source address may open (null: unlimited). */
    newIdentitiesPerAddress: identityBucketSchema.nullable().default(DEFAULT_ADMISSION.newIdentitiesPerAddress),
    /** New identities the whole task may issue (null: unlimited), against attackers with many addresses. */
    newIdentitiesPerTask: identityBucketSchema.nullable().default(DEFAULT_ADMISSION.newIdentitiesPerTask),
    /**
     * Which valid updates fill a round's `clientsPerRound` slots under over-selection: 'arrival' (the
     * first to arrive — rewards skipping the work) or 'sampling-order' (the first in the round's seeded
     * sampling order among those that upload before the deadline).
     */
    slots: z.enum(['arrival', 'sampling-order']).default(DEFAULT_ADMISSION.slots),
    /** A client's aggregation weight is scaled by min(1, (rounds it contributed to + 1) / probationRounds); 0 turns probation off. */
    probationRounds: z.number().int().min(0).max(10_000).default(DEFAULT_ADMISSION.probationRounds),
    /**
     * FoolsGold similarity damping (fl-core `SimilarityDamping`): a client whose summed updates copy
     * another's loses weight, copies all of it. On by default; not applied under differential privacy.
     * It needs every update, so a cluster does not sum such a task per node (`strategy.exactSum`).
     */
    similarityDamping: z.boolean().default(DEFAULT_ADMISSION.similarityDamping),
    /**
     * Most clients whose update histories similarity damping keeps (left out: fl-core's
     * `DEFAULT_MAX_HISTORIES`, 1,000). Past it the least recently seen are forgotten, which bounds
     * the work of every round's close (it grows with the square of the histories kept) and the size
     * of every checkpoint; a forgotten client starts a new history when it next sends an update.
     */
    similarityMaxHistories: z.number().int().min(2).max(1_000_000).optional(),
  })
  .default(DEFAULT_ADMISSION);

/** Schema of a task file (see tasks/demo-digits.yaml for a commented example). */
export const taskSchema = z
  .strictObject({
    id: idSchema,
    name: z.string().min(1).max(200).optional(),
    dataset: z.strictObject({
      name: z.string().min(1).max(100),
      modalities: z
        .array(z.enum(MODALITIES))
        .min(1)
        .refine((m) => new Set(m).size === m.length, 'modalities must not repeat'),
      /** A custom task's public data: trust probing and FLTrust's root update read it. */
      probe: customDataSchema.optional(),
      /** A custom task's test data: the server evaluates the global model on it after every round. */
      test: customDataSchema.optional(),
    }),
    /** Class names in id order (a custom task; a built-in dataset brings its own). */
    classes: z
      .array(z.string().min(1).max(200))
      .min(2)
      .max(MAX_CLASSES)
      .refine((c) => new Set(c).size === c.length, 'class names must not repeat')
      .optional(),
    /** The LoRA/NAM model of a weight task (required there); a representation task has none and may omit it. */
    model: modelSchema.optional(),
    // A discriminated union of the two families, so an unknown name still gets the one 'invalid discriminator' error.
    strategy: z.discriminatedUnion('name', [representationStrategySchema, strategySchema as unknown as typeof representationStrategySchema]),
    /** FedAFD-family settings: required with a representation strategy, refused with a weight strategy. */
    representation: representationTaskSchema.optional(),
    /** FedUMM's device–edge split (weight tasks with a split strategy only); absent: clients train the whole model. */
    split: splitTaskSchema.optional(),
    rounds: positiveInt.max(100_000),
    clientsPerRound: positiveInt.max(100_000),
    minClients: positiveInt,
    overSelection: z.number().min(0).max(10).default(0.2),
    roundDeadlineMs: positiveInt.min(10).max(86_400_000),
    /**
     * Once minClients wait, how long to wait for the full invitation (clientsPerRound · (1 +
     * overSelection)) before starting with fewer.
     */
    waitingRoomMs: z.number().int().min(0).max(3_600_000).default(5000),
    /** Attempts at one round (each waits for enough clients) before the task is marked failed. */
    maxRoundAttempts: positiveInt.max(1000).default(10),
    localEpochs: positiveInt.max(1000),
    batchSize: positiveInt.max(65_536),
    learningRate: z.number().positive().max(10),
    uploadEncoding: z.enum(UPLOAD_ENCODINGS).default('fp32'),
    maxUpdateBytes: positiveInt.max(MAX_UPDATE_BYTES_CAP),
    /** L2 bound on a client's whole delta; null disables the check. */
    normBound: z.number().positive().nullable().default(null),
    /** Seed of client sampling, of the initial adapters and of the probe/test subsets. */
    seed: z.number().int().nonnegative().max(0xffffffff).default(0),
    /**
     * Server-side evaluation with the task's model: `probeExamples` of the dataset's public split
     * score each candidate update for trust (and train FLTrust's root update); `testExamples` of the
     * test split evaluate the new global model after every round (0 turns that off).
     */
    evaluation: z
      .strictObject({
        probeExamples: positiveInt.max(4096).default(64),
        testExamples: z.number().int().min(0).max(100_000).default(256),
      })
      .default({ probeExamples: 64, testExamples: 256 }),
    admission: admissionSchema,
    /**
     * What follows a run's last round: 'once' ends the task; 'continuous' keeps the finished run as a
     * past run (rounds, metrics, final model) and starts a fresh one from the initial model under the
     * same join link. A stopped or failed run never restarts.
     */
    // Optional rather than defaulted, so a task that does not name it keeps the same parsed form (and the experiments' stored keys).
    runs: z.enum(['once', 'continuous']).optional(),
  })
  .superRefine((task, ctx) => {
    if (task.minClients > task.clientsPerRound) {
      ctx.addIssue({ code: 'custom', path: ['minClients'], message: `must be ≤ clientsPerRound (${task.clientsPerRound}), got ${task.minClients}` });
    }
    const strategy = task.strategy as unknown as StrategyConfig | RepresentationStrategyTaskConfig;
    if (task.split !== undefined && !(SPLIT_STRATEGIES as readonly string[]).includes(strategy.name))
      ctx.addIssue({
        code: 'custom',
        path: ['split'],
        message: `a split task aggregates with ${SPLIT_STRATEGIES.join(', ')} (FedUMM Eq. 1), not '${strategy.name}': the server's trust probe cannot score a split model`,
      });
    if (task.split !== undefined && task.split.fusedDim % task.split.numHeads !== 0)
      ctx.addIssue({ code: 'custom', path: ['split', 'numHeads'], message: `must divide fusedDim (${task.split.fusedDim}), got ${task.split.numHeads}` });
    if (isRepresentationStrategy(strategy)) {
      if (task.representation === undefined)
        ctx.addIssue({ code: 'custom', path: ['representation'], message: `required with the representation strategy '${strategy.name}'` });
      else checkClientKinds(task.representation.clientKinds, ctx);
      return;
    }
    if (task.model === undefined) ctx.addIssue({ code: 'custom', path: ['model'], message: `required with the weight strategy '${strategy.name}'` });
    else checkCustomModel(task, ctx);
    if (task.representation !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['representation'],
        message: `only a representation strategy (${REPRESENTATION_STRATEGY_NAMES.join(', ')}) takes this section`,
      });
    checkStrategy(strategy, task.clientsPerRound, ['strategy'], ctx);
  })
  .transform(({ model, strategy, ...rest }) => ({
    ...rest,
    model: model ?? { ...REPRESENTATION_TASK_MODEL },
    strategy: strategy as unknown as StrategyConfig | RepresentationStrategyTaskConfig,
  }));

/** A validated task, defaults filled in. */
export type TaskConfig = z.output<typeof taskSchema>;

/** Whether a task's strategy is of the FedAFD family (rounds exchange representations, not weights). */
export function isRepresentationStrategy(strategy: { readonly name: string }): strategy is RepresentationStrategyTaskConfig {
  return (REPRESENTATION_STRATEGY_NAMES as readonly string[]).includes(strategy.name);
}

/** A representation task: its strategy and representation section, narrowed. */
export type RepresentationTask = TaskConfig & { readonly strategy: RepresentationStrategyTaskConfig; readonly representation: RepresentationTaskConfig };

/** Whether `task` is a representation task (FedAFD family). */
export function isRepresentationTask(task: TaskConfig): task is RepresentationTask {
  return isRepresentationStrategy(task.strategy) && task.representation !== undefined;
}

/** A split task: its split section, narrowed. */
export type SplitTask = TaskConfig & { readonly split: SplitTaskConfig };

/** Whether `task` splits its model between the clients and the edge (FedUMM §3.3). */
export function isSplitTask(task: TaskConfig): task is SplitTask {
  return task.split !== undefined;
}

/** Whether `task` brings its own encoders (`model.base: custom`). */
export function isCustomTask(task: Pick<TaskConfig, 'model'>): boolean {
  return task.model.base === CUSTOM_BASE;
}

/** A custom task needs encoders for every modality, classes and probe data; a built-in base takes none of them. */
function checkCustomModel(
  task: {
    readonly model?: { readonly base: string; readonly encoders?: CustomEncoders | undefined };
    readonly dataset: { readonly modalities: readonly string[]; readonly probe?: CustomData | undefined; readonly test?: CustomData | undefined };
    readonly classes?: readonly string[] | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
  if (task.model?.base !== CUSTOM_BASE) {
    const base = task.model?.base ?? '';
    if (task.model?.encoders !== undefined) issue(['model', 'encoders'], `only model.base '${CUSTOM_BASE}' takes encoders (base is '${base}')`);
    if (task.classes !== undefined) issue(['classes'], `only model.base '${CUSTOM_BASE}' takes classes; '${base}' brings its dataset's`);
    for (const key of ['probe', 'test'] as const)
      if (task.dataset[key] !== undefined) issue(['dataset', key], `only model.base '${CUSTOM_BASE}' takes server data; '${base}' reads its dataset's`);
    return;
  }
  const encoders = task.model.encoders;
  if (encoders === undefined) issue(['model', 'encoders'], `required with model.base '${CUSTOM_BASE}'`);
  if (task.classes === undefined) issue(['classes'], `required with model.base '${CUSTOM_BASE}'`);
  if (task.dataset.probe === undefined) issue(['dataset', 'probe'], `required with model.base '${CUSTOM_BASE}' (trust probing reads it)`);
  for (const m of task.dataset.modalities as readonly (keyof CustomEncoders)[]) {
    if (encoders && encoders[m] === undefined) issue(['model', 'encoders', m], `dataset.modalities lists ${m}, so the task needs its ${m} encoder`);
  }
  for (const m of Object.keys(encoders ?? {}))
    if (!task.dataset.modalities.includes(m)) issue(['model', 'encoders', m], `dataset.modalities does not list ${m}`);
  for (const key of ['probe', 'test'] as const) {
    const data = task.dataset[key];
    if (!data) continue;
    const given = Object.keys(data);
    if (given.length === 0) issue(['dataset', key], 'names no data');
    for (const m of given) if (!task.dataset.modalities.includes(m)) issue(['dataset', key, m], `dataset.modalities does not list ${m}`);
  }
}

/** Shares of the client mix must sum to 1 (kinds and architectures are checked where the models are known). */
function checkClientKinds(kinds: readonly { readonly share: number }[], ctx: z.RefinementCtx): void {
  const sum = kinds.reduce((s, k) => s + k.share, 0);
  if (Math.abs(sum - 1) > 1e-6) ctx.addIssue({ code: 'custom', path: ['representation', 'clientKinds'], message: `shares must sum to 1, got ${sum}` });
}

function checkStrategy(strategy: StrategyConfig, clientsPerRound: number, path: (string | number)[], ctx: z.RefinementCtx): void {
  switch (strategy.name) {
    case 'krum':
    case 'multi-krum': {
      // Blanchard et al. need n > 2f + 2 updates to tolerate f Byzantine ones.
      const f = strategy.numByzantine;
      if (clientsPerRound <= 2 * f + 2) {
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'numByzantine'],
          message: `Krum needs clientsPerRound > 2·numByzantine + 2; ${clientsPerRound} ≤ ${2 * f + 2}`,
        });
      }
      if (strategy.name === 'multi-krum' && strategy.numSelected !== null && strategy.numSelected > clientsPerRound - f) {
        ctx.addIssue({ code: 'custom', path: [...path, 'numSelected'], message: `must be ≤ clientsPerRound − numByzantine (${clientsPerRound - f})` });
      }
      return;
    }
    case 'multi-krum-select': {
      // Selection keeps n − f clients, so at least one must remain.
      const f = strategy.numByzantine;
      if (f >= clientsPerRound) {
        ctx.addIssue({ code: 'custom', path: [...path, 'numByzantine'], message: `must be < clientsPerRound (${clientsPerRound}), got ${f}` });
      }
      if (strategy.numSelected !== null && strategy.numSelected > clientsPerRound) {
        ctx.addIssue({ code: 'custom', path: [...path, 'numSelected'], message: `must be ≤ clientsPerRound (${clientsPerRound})` });
      }
      return;
    }
    case 'fedmm-x':
    case 'clip':
    case 'dp':
      checkStrategy(strategy.inner, clientsPerRound, [...path, 'inner'], ctx);
      return;
    default:
      return;
  }
}
