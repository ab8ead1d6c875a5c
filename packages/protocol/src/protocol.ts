/**
 * The Chorus wire protocol: one module for the coordinator and every client (browser tab or headless
 * Node process). Browser-safe: it imports zod and fl-core (for the modality vocabulary), nothing
 * from Node.
 *
 * Each payload is tagged by a string `type`, carries `protocolVersion`, and has a zod schema beside
 * its type. The event maps below only describe what a well-behaved peer sends — types are not
 * validation — so the coordinator parses every inbound payload with its schema before use. Weights
 * (the global model, client updates) travel as binary attachments holding fl-core codec bytes,
 * never as JSON numbers.
 *
 * Two kinds of round share these events. A weight round (FedAvg and its relatives) sends the global
 * weights and receives a delta. A representation round (the FedAFD family — "FedAFD: Multimodal
 * Federated Learning via Adversarial Fusion and Distillation") exchanges representations of a shared
 * public batch instead, and is marked by the round config's `representation` section (present
 * exactly in such a round, see {@link representationRoundSchema}):
 *  - `roundStart.global` holds codec bytes of kind `model`: the global encoders' weights (the
 *    client fuses with them) and, for each modality the server encodes, the global representations
 *    of the batch as a tensor `public/<modality>` of shape [B, D] (B = `publicIndices.length`,
 *    D = `dim`; see fl-core's `publicTensorName`);
 *  - the client trains on its private data, then encodes the same public samples and answers with
 *    `submitUpdate`, whose `update` holds codec bytes of kind `representations`: one tensor
 *    `rep/<modality>` [B, D] for each modality it holds, no more, no fewer (fl-core's
 *    `representationTensorName`), in `representation.encoding`, within `maxUpdateBytes`;
 *  - the coordinator checks it with fl-core's `validateRepresentations` and refuses it with the usual
 *    `UPDATE_*` codes (too large, malformed, non-finite, wrong modalities or shape → `UPDATE_SHAPE`;
 *    see `representationRefusalCode`).
 *
 * A split round (FedUMM's device–edge split, Su et al. 2026, arXiv:2601.15390 §3.3) is marked by the
 * round config's `split` section. The client keeps the frozen encoders, its adapters and the task
 * head; a coordinator node (the edge) runs the fusion network. Each local training step is one
 * exchange of two acknowledged messages, U-shaped so labels never leave the client:
 *  - `splitForward`: the client's cut-layer activations (codec kind `split`: `split/tokens`
 *    [B, M, c] clipped per example and noised, and `split/mask` [B, M]) → the ack carries the
 *    fused features `split/fused` [B, d];
 *  - `splitBackward`: the per-example gradients of the client's loss w.r.t. those features
 *    (`split/fused_grad` [B, d], clipped and noised) → the edge updates its fusion network, and the
 *    ack carries `split/tokens_grad` [B, M, c], which the client back-propagates into its adapters.
 * A client has at most one step in flight, and waits for each ack (with the round config's
 * `stepTimeoutMs`), so a slow edge slows its clients instead of filling their memory; an edge whose
 * queue is full refuses a step with `EDGE_BUSY` and the client sends the same step again later. At
 * the end of its local epochs the client uploads its adapters' and task head's delta as in a weight
 * round.
 */
import { DEFAULT_ADVERSARIAL_WEIGHT, MAX_PUBLIC_BATCH, MAX_REPRESENTATION_DIM, MODALITIES } from '@chorus/fl-core';
import type { Modality } from '@chorus/fl-core';
import { z } from 'zod';
import type { Ack, ProtocolErrorCode } from './errors.js';

/**
 * Bumped on any incompatible change to an event or payload. Payloads are strict objects, so a new
 * field, even one with a default, is incompatible for a peer of the previous version: it would refuse
 * the message. A version mismatch is refused at `hello` instead, with a code.
 *
 * 2: the round config carries the task's LoRA `adapterAlpha`.
 * 3: the round config carries L_intp's weight `interpretabilityWeight` and L_modal's variant `modalLoss`.
 * 4: the `challenge` event and `hello`'s `proof` (proof-of-work for a new identity).
 * 5: representation rounds (FedAFD family): the round config's optional `representation` section.
 * 6: split rounds (FedUMM's device–edge split): the round config's optional `split` section and the
 *    `splitForward` / `splitBackward` events.
 */
export const PROTOCOL_VERSION = 6;

// Modalities a client can hold; they double as parameter group names (`image/…`). fl-core owns the list.
export { MODALITIES };
// A representation round's bounds and FedAFD's adversarial coefficient; fl-core owns them (its validation and strategies use them too).
export { DEFAULT_ADVERSARIAL_WEIGHT, MAX_PUBLIC_BATCH, MAX_REPRESENTATION_DIM };
export type { Modality };

/** Wire encodings of float tensors, as fl-core's codec names them. */
export const UPLOAD_ENCODINGS = ['fp32', 'fp16', 'int8'] as const;
/** One of {@link UPLOAD_ENCODINGS}. */
export type UploadEncoding = (typeof UPLOAD_ENCODINGS)[number];

/** Largest batch one split step may carry. */
export const MAX_SPLIT_BATCH = 1024;

/**
 * Heads a task's model can carry: the NAM (default) or a plain linear map over the concepts
 * (ablation). The one definition: `@chorus/models` imports it from here.
 */
export const MODEL_HEADS = ['nam', 'linear'] as const;
/** One of {@link MODEL_HEADS}. */
export type ModelHead = (typeof MODEL_HEADS)[number];

/**
 * Variants of FedMM-X's L_modal: `'js'` (default), the Jensen–Shannon divergence between the present
 * modalities' predictions; `'distill'`, cross-modal distillation of each modality's prediction toward
 * the fused one. The one definition: `@chorus/models` imports it from here and implements both.
 */
export const MODAL_LOSSES = ['js', 'distill'] as const;
/** One of {@link MODAL_LOSSES}. */
export type ModalLoss = (typeof MODAL_LOSSES)[number];

const shortString = (max: number) => z.string().min(1).max(max);
// Ids are opaque to clients but kept printable ASCII so they fit fl-core's codec header strings.
const idString = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1–128 characters of [A-Za-z0-9._:-]');
const finiteNumber = z.number().refine(Number.isFinite, 'must be finite');

/**
 * Binary attachment: socket.io delivers a `Buffer` in Node and an `ArrayBuffer` in browsers; both
 * become a `Uint8Array` view (no copy).
 */
export const binarySchema = z
  .custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'must be binary (Uint8Array or ArrayBuffer)')
  .transform((v): Uint8Array => (v instanceof Uint8Array ? v : new Uint8Array(v)));

const protocolVersionSchema = z.number().int().nonnegative();

const modalitiesSchema = z
  .array(z.enum(MODALITIES))
  .min(1)
  .max(MODALITIES.length)
  .refine((m) => new Set(m).size === m.length, 'modalities must not repeat');

// ---------------------------------------------------------------------------------------------
// Handshake (socket.io `auth`)

/** What a client passes as socket.io's `auth` option. `clientId`/`clientSecret` resume an identity. */
export const authSchema = z.strictObject({
  taskId: idString,
  token: shortString(256),
  clientId: idString.optional(),
  clientSecret: shortString(256).optional(),
});
/** See {@link authSchema}. */
export type AuthPayload = z.input<typeof authSchema>;

/** `data` of the `connect_error` a refused handshake produces. */
export interface ConnectErrorData {
  readonly code: ProtocolErrorCode;
  readonly message: string;
}

// ---------------------------------------------------------------------------------------------
// Client → server

/** What a client can do this session. */
export const capabilitiesSchema = z.strictObject({
  backend: shortString(32),
  modalities: modalitiesSchema,
  numExamples: z.number().int().nonnegative().max(1e9),
});
/** See {@link capabilitiesSchema}. */
export type Capabilities = z.output<typeof capabilitiesSchema>;

/** First message after connecting: joins the task's waiting room. */
export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  protocolVersion: protocolVersionSchema,
  capabilities: capabilitiesSchema,
  /** A solved proof-of-work challenge; needed only for a new identity on a task that asks for one. */
  proof: z
    .strictObject({
      challenge: shortString(128),
      nonce: z.string().regex(/^[0-9]{1,16}$/, 'must be 1–16 decimal digits'),
    })
    .optional(),
});
/** See {@link helloSchema}. */
export type HelloPayload = z.input<typeof helloSchema>;

/** Reply to `hello`. `clientSecret` is present only when a new identity was issued: keep it to reconnect. */
export interface HelloResult {
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly taskId: string;
  readonly protocolVersion: number;
  /** Last completed round (0 before the first). */
  readonly completedRounds: number;
}

/** Asks for a proof-of-work challenge before a `hello` that creates a new identity. */
export const challengeRequestSchema = z.strictObject({
  type: z.literal('challenge'),
  protocolVersion: protocolVersionSchema,
});
/** See {@link challengeRequestSchema}. */
export type ChallengeRequest = z.input<typeof challengeRequestSchema>;

/**
 * Reply to `challenge`: find a decimal `nonce` such that SHA-256 of the UTF-8 string
 * `challenge + nonce` starts with `difficulty` zero bits (0: no work asked). The challenge belongs to
 * this connection, is good for one `hello`, and expires at `expiresAt` (ms since the epoch).
 */
export interface ChallengeResult {
  readonly challenge: string;
  readonly difficulty: number;
  readonly expiresAt: number;
}

/**
 * A trained update for the open round; `update` holds codec bytes: kind `delta` in a weight round,
 * kind `representations` in a representation round.
 */
export const updateSchema = z.strictObject({
  type: z.literal('update'),
  protocolVersion: protocolVersionSchema,
  taskId: idString,
  roundId: idString,
  serverRound: z.number().int().positive(),
  numExamples: z.number().int().positive().max(1e9),
  metrics: z.record(z.string().max(64), finiteNumber).refine((m) => Object.keys(m).length <= 64, 'at most 64 metrics'),
  update: binarySchema,
});
/** See {@link updateSchema} (what a sender passes: `update` as `Uint8Array` or `ArrayBuffer`). */
export type UpdatePayload = z.input<typeof updateSchema>;
/** An update after parsing. */
export type ParsedUpdate = z.output<typeof updateSchema>;

/**
 * One half of a split step (see the module comment): `payload` holds codec bytes of kind `split`
 * whose header names this client, the task and `step`; `batchSize` is B, the rows every tensor has.
 * Steps count from 0 within a round attempt and go up by one; a step is sent forward, then backward.
 */
export const splitStepSchema = z.strictObject({
  type: z.enum(['split-forward', 'split-backward']),
  protocolVersion: protocolVersionSchema,
  taskId: idString,
  roundId: idString,
  step: z.number().int().nonnegative().max(0xffffffff),
  batchSize: z.number().int().positive().max(MAX_SPLIT_BATCH),
  payload: binarySchema,
});
/** See {@link splitStepSchema}. */
export type SplitStepPayload = z.input<typeof splitStepSchema>;
/** A split step after parsing. */
export type ParsedSplitStep = z.output<typeof splitStepSchema>;

/** Reply to a split step: the edge's half (codec bytes of kind `split`: `split/fused` forward, `split/tokens_grad` backward). */
export interface SplitStepResult {
  readonly step: number;
  readonly payload: Uint8Array;
}

/** Reply to an accepted update. */
export interface UpdateResult {
  readonly serverRound: number;
  readonly roundId: string;
}

// ---------------------------------------------------------------------------------------------
// Server → client

/** LoRA α a round config without one means: the scale every client used before the config carried it. */
export const DEFAULT_ADAPTER_ALPHA = 8;

/**
 * The section of a round config that makes it a representation round (FedAFD family; see the
 * module comment for what `global` and the upload then carry). It holds what a client needs and
 * cannot infer from the global model's bytes.
 */
export const representationRoundSchema = z.strictObject({
  /**
   * Indices into the task's public split of the B samples to encode, in row order of every
   * `public/<modality>` and `rep/<modality>` tensor; distinct, at most 4096.
   */
  publicIndices: z
    .array(z.number().int().nonnegative().max(0x7fffffff))
    .min(1)
    .max(MAX_PUBLIC_BATCH)
    .refine((indices) => new Set(indices).size === indices.length, 'public sample indices must be distinct'),
  /** D: the dimension of the shared representation space (FedAFD uses 256). */
  dim: z.number().int().positive().max(MAX_REPRESENTATION_DIM),
  /** Wire encoding of the uploaded representations. */
  encoding: z.enum(UPLOAD_ENCODINGS),
  /**
   * Weight of the bi-level adversarial alignment loss (FedAFD Eq. 1–2: intra- and cross-modal
   * discriminators telling local from global representations of the public batch) in local
   * training; 0 turns it off (the "w/o BAA" ablation and the baselines).
   */
  adversarialWeight: z.number().min(0).max(100).default(DEFAULT_ADVERSARIAL_WEIGHT),
  /**
   * Whether the client fuses its local features with the global encoders' (FedAFD's
   * granularity-aware feature fusion, Eq. 3–6); false is the "w/o GFF" ablation and the baselines.
   */
  fusion: z.boolean().default(true),
  /**
   * Weight of a local L2 distillation of the client's representations of the public batch towards
   * the global ones (how FedAFD §4.1 runs the FedMD, FedGEMS and FedET baselines on clients); 0 (the
   * default, FedAFD itself) turns it off.
   */
  localDistillationWeight: z.number().min(0).max(100).default(0),
});
/** See {@link representationRoundSchema}. */
export type RepresentationRoundConfig = z.output<typeof representationRoundSchema>;

/**
 * How one direction of the split's secure interface releases per-example rows: each row is clipped
 * to L2 norm `clipNorm`, Gaussian noise of std `noiseMultiplier · clipNorm` is added to every
 * element (0: none), and the result travels in `encoding`.
 */
export const cutLayerReleaseSchema = z.strictObject({
  clipNorm: z.number().positive().refine(Number.isFinite, 'must be finite'),
  noiseMultiplier: z.number().min(0).max(100),
  encoding: z.enum(UPLOAD_ENCODINGS),
});
/** See {@link cutLayerReleaseSchema}. */
export type CutLayerRelease = z.output<typeof cutLayerReleaseSchema>;

/**
 * The section of a round config that makes it a split round (see the module comment): what the
 * client needs to run its half of each step.
 */
export const splitRoundSchema = z.strictObject({
  /** d: width of the fused features the edge returns (the task head's input). */
  fusedDim: z.number().int().positive().max(4096),
  /** Weight of the client's local NAM head's own cross-entropy beside the task head's. */
  localHeadWeight: z.number().min(0).max(100),
  /** The client's cut-layer activations (`split/tokens`). */
  activations: cutLayerReleaseSchema,
  /** The client's gradients w.r.t. the fused features (`split/fused_grad`). */
  gradients: cutLayerReleaseSchema,
  /** Encoding of what the edge sends back (fused features, token gradients): compressed, not noised. */
  returnEncoding: z.enum(UPLOAD_ENCODINGS),
  /** How long the client waits for each step's acknowledgement before it gives the round up. */
  stepTimeoutMs: z.number().int().positive().max(600_000),
});
/** See {@link splitRoundSchema}. */
export type SplitRoundConfig = z.output<typeof splitRoundSchema>;

/** Hyper-parameters of one round, sent with the global weights. */
export const roundConfigSchema = z.strictObject({
  localEpochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  learningRate: z.number().positive(),
  uploadEncoding: z.enum(UPLOAD_ENCODINGS),
  maxUpdateBytes: z.number().int().positive(),
  normBound: z.number().positive().nullable(),
  /** Weight λ₁ of FedMM-X's cross-modal consistency loss L_modal in local training (0 turns it off). */
  modalWeight: z.number().min(0).max(100).default(0.1),
  /** Which L_modal local training uses (see {@link MODAL_LOSSES}). */
  modalLoss: z.enum(MODAL_LOSSES).default('js'),
  /** Weight λ₂ of FedMM-X's interpretability loss L_intp (shape-function smoothness + contribution sparsity); 0 turns it off. */
  interpretabilityWeight: z.number().min(0).max(100).default(0),
  /** The model's head; a client checks it against the global model's tensor names. */
  head: z.enum(MODEL_HEADS).default('nam'),
  /**
   * LoRA α of the task's adapters (scale α / rank). The global model's shapes cannot tell it, and a
   * client training with another α computes updates the coordinator's model does not expect.
   */
  adapterAlpha: z.number().positive().refine(Number.isFinite, 'must be finite').default(DEFAULT_ADAPTER_ALPHA),
  /** Strategy-specific settings (e.g. FedProx's `proximalMu`). */
  strategy: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  /** Present exactly in a representation round (FedAFD family); absent in a weight round. */
  representation: representationRoundSchema.optional(),
  /** Present exactly in a split round (FedUMM's device–edge split). */
  split: splitRoundSchema.optional(),
});
/** See {@link roundConfigSchema}. */
export type RoundConfig = z.output<typeof roundConfigSchema>;

/**
 * Sent to each selected client: train on `global` (codec bytes, kind: model) and upload the delta —
 * or, in a representation round, the representations of the public batch (see the module comment).
 */
export const roundStartSchema = z.strictObject({
  type: z.literal('round-start'),
  protocolVersion: protocolVersionSchema,
  taskId: idString,
  roundId: idString,
  serverRound: z.number().int().positive(),
  attempt: z.number().int().positive(),
  /** Epoch milliseconds after which an upload is refused as late. */
  deadlineAt: z.number().int(),
  config: roundConfigSchema,
  globalHash: z.string().regex(/^[0-9a-f]{64}$/),
  global: binarySchema,
});
/** See {@link roundStartSchema}. */
export type RoundStartPayload = z.input<typeof roundStartSchema>;
/** A round start after parsing. */
export type ParsedRoundStart = z.output<typeof roundStartSchema>;

/** Sent to every client of the task when a round closes. */
export const roundEndSchema = z.strictObject({
  type: z.literal('round-end'),
  protocolVersion: protocolVersionSchema,
  taskId: idString,
  roundId: idString,
  serverRound: z.number().int().positive(),
  attempt: z.number().int().positive(),
  status: z.enum(['completed', 'retry']),
  globalHash: z.string().regex(/^[0-9a-f]{64}$/),
  reason: z.string().max(500).optional(),
});
/** See {@link roundEndSchema}. */
export type RoundEndPayload = z.input<typeof roundEndSchema>;

/** Sent to every client of the task when it ends: its rounds are done, it failed, or a researcher stopped it. */
export const taskEndSchema = z.strictObject({
  type: z.literal('task-end'),
  protocolVersion: protocolVersionSchema,
  taskId: idString,
  status: z.enum(['finished', 'failed', 'stopped']),
  completedRounds: z.number().int().nonnegative(),
  globalHash: z.string().regex(/^[0-9a-f]{64}$/),
});
/** See {@link taskEndSchema}. */
export type TaskEndPayload = z.input<typeof taskEndSchema>;

// ---------------------------------------------------------------------------------------------
// socket.io event maps: `Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents,
// SocketData>` on the coordinator, `Socket<ServerToClientEvents, ClientToServerEvents>` in clients.

/** Events a client emits; every one is acknowledged. */
export interface ClientToServerEvents {
  challenge: (payload: ChallengeRequest, ack: (res: Ack<ChallengeResult>) => void) => void;
  hello: (payload: HelloPayload, ack: (res: Ack<HelloResult>) => void) => void;
  submitUpdate: (payload: UpdatePayload, ack: (res: Ack<UpdateResult>) => void) => void;
  splitForward: (payload: SplitStepPayload, ack: (res: Ack<SplitStepResult>) => void) => void;
  splitBackward: (payload: SplitStepPayload, ack: (res: Ack<SplitStepResult>) => void) => void;
}

/** Events the coordinator emits. */
export interface ServerToClientEvents {
  roundStart: (payload: RoundStartPayload) => void;
  roundEnd: (payload: RoundEndPayload) => void;
  taskEnd: (payload: TaskEndPayload) => void;
}

/** Events between coordinator nodes (none while one node serves a task). */
export type InterServerEvents = Record<string, never>;

/** Per-connection state the coordinator keeps on `socket.data`; kept small (thousands of sockets). */
export interface SocketData {
  taskId: string;
  /** Set by the handshake when the client resumed an identity, else by `hello`. */
  clientId: string | undefined;
  /** Set once `hello` succeeded. */
  joined: boolean;
  /** The invitation the handshake presented (null or absent: the open join link, or a resumed identity). */
  invitationId?: string | null;
  /** What the client advertised in its accepted `hello` (a cluster's leader reads it from every node). */
  capabilities?: Capabilities;
  /** The proof-of-work challenge issued to this connection, until a `hello` uses it. */
  challenge?: { readonly value: string; readonly difficulty: number; readonly expiresAt: number } | undefined;
}
