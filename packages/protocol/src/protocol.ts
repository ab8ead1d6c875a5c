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
 */
export const PROTOCOL_VERSION = 5;

// Modalities a client can hold; they double as parameter group names (`image/…`). fl-core owns the list.
export { MODALITIES };
// A representation round's bounds and FedAFD's adversarial coefficient; fl-core owns them (its validation and strategies use them too).
export { DEFAULT_ADVERSARIAL_WEIGHT, MAX_PUBLIC_BATCH, MAX_REPRESENTATION_DIM };
export type { Modality };

/** Wire encodings of float tensors, as fl-core's codec names them. */
export const UPLOAD_ENCODINGS = ['fp32', 'fp16', 'int8'] as const;
/** One of {@link UPLOAD_ENCODINGS}. */
export type UploadEncoding = (typeof UPLOAD_ENCODINGS)[number];

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
