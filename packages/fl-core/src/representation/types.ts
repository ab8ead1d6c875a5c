/**
 * The contract of representation strategies (FedAFD family — "FedAFD: Multimodal Federated
 * Learning via Adversarial Fusion and Distillation", §3.2.3): a round exchanges representations of a
 * shared public batch, not weights. Every method (FedAFD's SED and the baselines) is one
 * {@link RepresentationStrategy} with the same `aggregate` hook; they differ only in how they weight
 * the clients' representations into a per-sample teacher (a {@link RepresentationWeighting}).
 *
 * All matrices are row-major `Float32Array`s of `numSamples × dim` (B × D): row i is public sample i.
 */
import type { Modality } from '../partition/modality.js';
import type { Metrics } from '../strategy/types.js';

/** Per-modality B × D matrices; a modality that is absent has no entry. */
export type RepresentationsByModality = Readonly<Partial<Record<Modality, Float32Array>>>;

/** The global model's representations of the round's public batch. */
export interface GlobalRepresentations {
  /** B: public samples in the batch (≥ 1). */
  readonly numSamples: number;
  /** D: dimension of the shared space (≥ 1). */
  readonly dim: number;
  /** One B × D matrix per modality the server encodes. */
  readonly representations: RepresentationsByModality;
}

/** One client's upload: its own representations of the same public batch. */
export interface RepresentationUpload {
  readonly clientId: string;
  /** Private examples the client holds (> 0): FedMD's weight. */
  readonly numExamples: number;
  /** One B × D matrix per modality the client holds. */
  readonly representations: RepresentationsByModality;
}

/** What a weighting sees for one modality: the contributing clients' rows and the global's. */
export interface WeightingInput {
  readonly numSamples: number;
  readonly dim: number;
  /** The global's B × D representations of this modality. */
  readonly global: Float32Array;
  /** Each contributing client's B × D rows, as they enter the teacher (norm-matched when the strategy does). */
  readonly representations: readonly Float32Array[];
  /** Each contributing client's private example count. */
  readonly numExamples: readonly number[];
}

/**
 * How a method turns per-client, per-sample scores into weights: `softmax` over clients of the
 * scores (logits), or `proportional` to non-negative scores (equal weights when all are 0).
 */
export type WeightingForm = 'softmax' | 'proportional';

/** One method's weighting: a score per client and public sample, and how scores become weights. */
export interface RepresentationWeighting {
  readonly form: WeightingForm;
  /** One `Float64Array(B)` per contributing client, in input order; finite (non-negative when proportional). */
  scores(input: WeightingInput): Float64Array[];
}

/** The teacher of one modality and how it was made. */
export interface ModalityTeacher {
  /** t_i = Σ_k w_{k,i} r^k_i, B × D. */
  readonly teacher: Float32Array;
  /** Clients whose rows entered the teacher (after screening). */
  readonly numContributors: number;
  /** Those clients, in upload order. */
  readonly clientIds: readonly string[];
  /** w_{k,i}: one `Float64Array(B)` per contributor (same order); each sample's weights sum to 1. */
  readonly weights: readonly Float64Array[];
  /** ½ · mean_i ‖t_i − g_i‖² against the global's representations of this round. */
  readonly loss: number;
}

/** A client's share of the round. */
export interface ClientRepresentationWeight {
  readonly clientId: string;
  /** Mean over public samples of the client's weight, per modality it uploaded (0 where it was excluded). */
  readonly meanWeights: Readonly<Partial<Record<Modality, number>>>;
  /**
   * Trust in [0, 1]: per modality min(1, mean weight × contributors), averaged over the modalities
   * the client uploaded. 1 means at least an average client's share; 0 means no say at all.
   */
  readonly trust: number;
}

/** Why a client's representations of a modality were left out of the teacher. */
export const REPRESENTATION_EXCLUSION_CODES = ['ECHO'] as const;
/** One of {@link REPRESENTATION_EXCLUSION_CODES}. */
export type RepresentationExclusionCode = (typeof REPRESENTATION_EXCLUSION_CODES)[number];

/** A client's modality left out of the teacher (its weight there is 0). */
export interface ExcludedRepresentation {
  readonly clientId: string;
  readonly modality: Modality;
  readonly code: RepresentationExclusionCode;
  readonly message: string;
}

/** Why a whole upload was set aside before weighting. */
export const REPRESENTATION_REJECTION_CODES = ['DUPLICATE_RESULT', 'AGG_BAD_WEIGHTS', 'REP_MODALITIES', 'REP_SHAPE', 'REP_NON_FINITE'] as const;
/** One of {@link REPRESENTATION_REJECTION_CODES}. */
export type RepresentationRejectionCode = (typeof REPRESENTATION_REJECTION_CODES)[number];

/** An upload set aside, and why. */
export interface RejectedRepresentation {
  readonly clientId: string;
  readonly code: RepresentationRejectionCode;
  readonly message: string;
}

/** What {@link RepresentationStrategy.aggregate} returns. */
export interface RepresentationAggregate {
  readonly serverRound: number;
  /** One teacher per modality with at least one contributor. */
  readonly teachers: Readonly<Partial<Record<Modality, ModalityTeacher>>>;
  /** Every accepted upload, in upload order. */
  readonly clients: readonly ClientRepresentationWeight[];
  readonly excluded: readonly ExcludedRepresentation[];
  readonly rejected: readonly RejectedRepresentation[];
  /**
   * `loss` (mean over modalities with a teacher; 0 when none), and per modality m: `loss/m`,
   * `clients/m` (contributors), `meanWeight/m` and `minWeight/m` (over contributors' mean weights).
   */
  readonly metrics: Metrics;
}

/** The names a task can choose a representation strategy by. */
export const REPRESENTATION_STRATEGY_NAMES = ['fedafd', 'fedmd', 'fedgems', 'fedet', 'fedmkd', 'local'] as const;
/** One of {@link REPRESENTATION_STRATEGY_NAMES}. */
export type RepresentationStrategyName = (typeof REPRESENTATION_STRATEGY_NAMES)[number];

/**
 * What a method asks of its clients' local training, sent in the round config's `representation`
 * section: FedAFD's bi-level adversarial alignment (Eq. 1–2) and granularity-aware fusion (Eq. 3–6),
 * or the baselines' local distillation towards the global representations.
 */
export interface ClientCoefficients {
  /** Weight of the adversarial alignment loss; 0: off. */
  readonly adversarialWeight: number;
  /** Whether local features are fused with the global encoders'. */
  readonly fusion: boolean;
  /** Weight of the local L2 distillation towards the global representations of the public batch; 0: off. */
  readonly localDistillationWeight: number;
}

/**
 * A server-side rule for a representation round. `aggregate` is pure: it never mutates its input,
 * treats bad uploads as data (`rejected`) and throws (`REP_BAD_INPUT`) only for the server's own
 * mistakes: a bad round number or malformed global representations.
 */
export interface RepresentationStrategy {
  readonly name: RepresentationStrategyName;
  /** False for LOCAL: clients train alone and the round exchanges nothing. */
  readonly exchangesRepresentations: boolean;
  /** Weight of the server's distillation loss (SED's coefficient; FedAFD §4.1 uses 0.4); 0 for LOCAL. */
  readonly distillationWeight: number;
  /** What clients train with (copied into each round's `representation` section). */
  readonly clientCoefficients: ClientCoefficients;
  aggregate(serverRound: number, global: GlobalRepresentations, uploads: readonly RepresentationUpload[]): RepresentationAggregate;
}
