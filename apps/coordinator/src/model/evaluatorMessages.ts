/**
 * The messages between the coordinator and its evaluator process (model/evaluatorProcess.ts). They
 * travel over Node's IPC channel with the V8 serializer, so typed arrays arrive as typed arrays
 * (binary, never JSON text); parameters travel as fl-core codec bytes in fp32, so they arrive
 * exactly as sent. Each end parses what it receives with the schemas below before using it:
 * the other end is our own code, but a bug there must surface as a coded error, not as a wrong T_k.
 *
 * Every request carries an `id`; the evaluator answers each with one response of the same `id`,
 * `{ok: true, result, wasmHeapMb}` or `{ok: false, error: {code, message}, wasmHeapMb}`, in the
 * order the requests arrived.
 */
import { MODALITIES } from '@chorus/fl-core';
import { z } from 'zod';

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a Uint8Array');
const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, 'must be a Float32Array');
const int32 = z.custom<Int32Array>((v) => v instanceof Int32Array, 'must be an Int32Array');

/** A coded failure, as both ends report it. */
export const evaluatorErrorSchema = z.object({
  code: z.string().min(1),
  message: z.string(),
  /** A refused task's `path: message` problems, which the coordinator's error carries on. */
  issues: z.array(z.string()).optional(),
});
/** A coded failure. */
export type EvaluatorErrorBody = z.infer<typeof evaluatorErrorSchema>;

/** Options the evaluator builds its TaskModel with. */
export const evaluatorInitOptionsSchema = z.object({
  rootExamples: z.number().int().min(0),
  weightsDir: z.string().optional(),
  dataDir: z.string().optional(),
});

/** What each half of a split step carries to the evaluator. */
const splitStepFields = {
  roundId: z.string().min(1),
  clientId: z.string().min(1),
  step: z.number().int().nonnegative(),
  batchSize: z.number().int().positive(),
  payload: bytes,
};

/** What the coordinator asks of the evaluator. */
export const evaluatorRequestSchema = z.discriminatedUnion('op', [
  /** Build the task's model (the task as the coordinator parsed it; parsed again on arrival). */
  z.object({ id: z.number().int(), op: z.literal('init'), task: z.unknown(), options: evaluatorInitOptionsSchema }),
  /** Probe `global` + each delta; a null delta probes `global` itself. */
  z.object({ id: z.number().int(), op: z.literal('probe'), global: bytes, deltas: z.array(bytes.nullable()) }),
  z.object({ id: z.number().int(), op: z.literal('evaluate'), parameters: bytes }),
  z.object({ id: z.number().int(), op: z.literal('rootUpdate'), global: bytes }),
  z.object({ id: z.number().int(), op: z.literal('export'), kind: z.enum(['merged', 'adapters']), parameters: bytes }),
  z.object({ id: z.number().int(), op: z.literal('stats') }),
  /**
   * A representation task's server step: `global` (server weights + `public/<modality>`) and the
   * round's teachers (`teacher/<modality>` [B, D]) → the next global and the step's figures.
   */
  z.object({ id: z.number().int(), op: z.literal('distill'), serverRound: z.number().int().positive(), global: bytes, teachers: bytes }),
  /**
   * A split task's edge (model/edgeService.ts): start attempt `roundId` from `edge` (codec bytes of
   * the global's `edge/…` tensors), forgetting every pending step and the optimiser's moments.
   */
  z.object({ id: z.number().int(), op: z.literal('splitOpen'), roundId: z.string().min(1), edge: bytes }),
  /** End attempt `roundId`: pending steps are dropped, later ones refused. */
  z.object({ id: z.number().int(), op: z.literal('splitClose'), roundId: z.string().min(1) }),
  /** One half of a client's split step; `payload` is the client's codec bytes, checked there. */
  z.object({ id: z.number().int(), op: z.literal('splitForward'), ...splitStepFields }),
  z.object({ id: z.number().int(), op: z.literal('splitBackward'), ...splitStepFields }),
  /** Forget `clientId`'s pending step (its connection went away). */
  z.object({ id: z.number().int(), op: z.literal('splitDrop'), clientId: z.string().min(1) }),
  /** The edge's current weights. */
  z.object({ id: z.number().int(), op: z.literal('splitWeights') }),
]);
/** One request. */
export type EvaluatorRequest = z.infer<typeof evaluatorRequestSchema>;
/** The operations the evaluator serves. */
export type EvaluatorOp = EvaluatorRequest['op'];

/** The envelope of every response; `result` is parsed with the schema of the request's op. */
export const evaluatorResponseSchema = z.discriminatedUnion('ok', [
  z.object({ id: z.number().int(), ok: z.literal(true), result: z.unknown(), wasmHeapMb: z.number() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: evaluatorErrorSchema, wasmHeapMb: z.number() }),
]);
/** One response. */
export type EvaluatorResponse = z.infer<typeof evaluatorResponseSchema>;

/** One candidate's probe: the outputs FedMM-X scores, or why there are none. */
export const probeOutcomeSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), probabilities: float32, explanations: z.array(float32).optional() }),
  z.object({ ok: z.literal(false), error: evaluatorErrorSchema }),
]);
/** One candidate's probe. */
export type ProbeOutcome = z.infer<typeof probeOutcomeSchema>;

/** The result schema of each op. */
export const evaluatorResultSchemas = {
  init: z.object({
    initial: bytes,
    probeLabels: int32,
    modalities: z.array(z.enum(MODALITIES)),
    pretrained: z.array(z.enum(MODALITIES)),
    /** A representation task's public split size (its public batches index it). */
    publicExamples: z.number().int().nonnegative().optional(),
  }),
  probe: z.object({ outcomes: z.array(probeOutcomeSchema) }),
  evaluate: z.object({ metrics: z.record(z.string(), z.number()) }),
  rootUpdate: z.object({ update: bytes.nullable() }),
  // The model.json fields are produced by TF.js's own serialiser on the other side; checked for shape only.
  export: z.object({ modelJson: z.record(z.string(), z.unknown()), weights: bytes }),
  distill: z.object({ parameters: bytes, metrics: z.record(z.string(), z.number()) }),
  splitOpen: z.object({}),
  splitClose: z.object({}),
  splitForward: z.object({ payload: bytes }),
  splitBackward: z.object({ payload: bytes }),
  splitDrop: z.object({}),
  splitWeights: z.object({ edge: bytes }),
  stats: z.object({ rssMb: z.number(), heapUsedMb: z.number(), wasmHeapMb: z.number(), numTensors: z.number().int() }),
} as const satisfies Record<EvaluatorOp, z.ZodType>;
/** The result of op `K`. */
export type EvaluatorResult<K extends EvaluatorOp> = z.infer<(typeof evaluatorResultSchemas)[K]>;
