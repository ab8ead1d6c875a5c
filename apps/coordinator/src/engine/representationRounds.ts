/**
 * Representation rounds (FedAFD family — "FedAFD: Multimodal Federated Learning via Adversarial
 * Fusion and Distillation", Algorithm 1, server part) as the round engine's hooks, over the SAME
 * engine, store and protocol as weight rounds:
 *
 *  - the global the engine holds and checkpoints is the server model's weights plus
 *    `public/<modality>` [B, D]: the server's representations of THIS round's public batch, whose
 *    indices {@link publicBatchIndices} draws from the task seed and the round (fl-core's
 *    `samplePublicBatch`), so a retried or resumed round asks for the same samples;
 *  - {@link RepresentationRoundHooks.section} is the round config's `representation` section (the
 *    batch's indices, D, the upload encoding and the strategy's client coefficients);
 *  - {@link RepresentationRoundHooks.validate} checks an upload with fl-core's
 *    `validateRepresentations` against the sender's own modalities and refuses it with the protocol's
 *    `UPDATE_*` code (`representationRefusalCode`); an accepted upload enters the round as a fit
 *    result whose `delta` holds its `rep/<modality>` tensors;
 *  - {@link RepresentationRoundHooks.serverUpdate} runs the fl-core representation strategy over the
 *    round's uploads (SED, Eq. 7–9, or a baseline's weighting: per-sample teachers and per-client
 *    weights, whose trust goes where FedMM-X's trust goes), then the server step (`distill`, in the
 *    evaluator process: L_ret + λ_dis · L_dis, Eq. 10, on the public batch with the teachers), whose
 *    result — new server weights and the next round's public representations — is the next global.
 *
 * Resume: the engine checkpoints this global (fp32, lossless) with each committed round, so a task
 * restarted on its store continues from its last committed round with the same server weights,
 * public batch and metrics. The server's Adam moments are not part of it, and need not be: the
 * server step resets them at the start of every round, so the rounds after a resume (or after the
 * evaluator was suspended when idle) are bit-identical to an uninterrupted run's.
 *
 * Round metrics: the strategy's (`strategy.loss`, `strategy.meanWeight/<m>` …), the server step's
 * (`server.i2tR1`, `server.t2iR1`, `server.rsum`, `server.distillationLoss` …), the bytes sent
 * (`bytesOut`; the engine adds `bytesIn`), and per client kind — a kind is the set of modalities its
 * upload carries, `image`, `text`, `image+text` … — its client count and the example-weighted means
 * of what its clients reported (`kind.image.accuracy`, `kind.image+text.rsum` …).
 */
import {
  FlCoreError,
  MODALITIES,
  isFlCoreError,
  modalityOfRepresentationTensor,
  readPublicRepresentations,
  representationUploadTensors,
  samplePublicBatch,
  validateRepresentations,
} from '@chorus/fl-core';
import type {
  AggregateFitResult,
  FitFailure,
  FitResult,
  Modality,
  Parameters,
  RejectedResult,
  RepresentationRejectionCode,
  RepresentationStrategy,
  RepresentationUpload,
} from '@chorus/fl-core';
import { ProtocolError, representationRefusalCode } from '@chorus/protocol';
import type { RepresentationRoundConfig } from '@chorus/protocol';
import { fastCrc32 } from '../codec/fastCrc32.js';
import type { RepresentationTask } from '@chorus/protocol';
import { roundRng } from './sampling.js';

/** The task seed is mixed with this before drawing public batches, so they share no stream with client sampling or DP noise. */
const PUBLIC_BATCH_STREAM = 0xafd0_b47c;

/**
 * The public batch of `serverRound`: `batchSize` distinct indices into a public split of `publicSize`
 * samples, a function of (seed, round) only. Throws `REP_BAD_CONFIG` when the batch is larger than the split.
 */
export function publicBatchIndices(seed: number, serverRound: number, publicSize: number, batchSize: number): number[] {
  return samplePublicBatch(roundRng((seed ^ PUBLIC_BATCH_STREAM) >>> 0, serverRound, 0), publicSize, batchSize);
}

/** What the server step returns: the next global and its figures. */
export interface DistillResult {
  /** New server weights plus `public/<modality>` of the next round's batch. */
  readonly parameters: Parameters;
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * The server step of a round: from the current global (server weights + this round's public
 * representations) and the teachers of its public batch, the next global.
 */
export type DistillFn = (serverRound: number, global: Parameters, teachers: Readonly<Partial<Record<Modality, Float32Array>>>) => Promise<DistillResult>;

/** What a representation round's aggregation gives the engine: the outcome it commits and figures stored beside it. */
export interface RepresentationServerUpdate {
  readonly outcome: AggregateFitResult;
  readonly serverMetrics: Readonly<Record<string, number>>;
}

/** The round engine's hooks for a representation task; see the module comment. */
export interface RepresentationRoundHooks {
  /** The round config's `representation` section of `serverRound`. */
  section(serverRound: number): RepresentationRoundConfig;
  /** The upload's `rep/<modality>` tensors; throws a `ProtocolError` with an `UPDATE_*` code (or `INTERNAL`). */
  validate(bytes: Uint8Array, expect: { readonly serverRound: number; readonly clientId: string; readonly modalities: readonly string[] }): Parameters;
  /** Aggregates the round's accepted uploads and runs the server step; null when nothing can be distilled. */
  serverUpdate(
    serverRound: number,
    global: Parameters,
    results: readonly FitResult[],
    failures: readonly FitFailure[],
  ): Promise<RepresentationServerUpdate | null>;
}

/** Options of {@link createRepresentationRounds}. */
export interface RepresentationRoundsOptions {
  readonly task: RepresentationTask;
  readonly strategy: RepresentationStrategy;
  /** Samples in the dataset's public split. */
  readonly publicSize: number;
  readonly distill: DistillFn;
}

const REJECTION_CODE: Readonly<Record<RepresentationRejectionCode, RejectedResult['code']>> = {
  DUPLICATE_RESULT: 'DUPLICATE_RESULT',
  AGG_BAD_WEIGHTS: 'AGG_BAD_WEIGHTS',
  REP_MODALITIES: 'PARAMS_MISMATCH',
  REP_SHAPE: 'PARAMS_MISMATCH',
  REP_NON_FINITE: 'PARAMS_NON_FINITE',
};

/** The modalities a fit result's `rep/<modality>` tensors carry, in MODALITIES order. */
function uploadModalities(result: FitResult): Modality[] {
  const held = new Set(result.delta.map((t) => modalityOfRepresentationTensor(t.name)));
  return MODALITIES.filter((m) => held.has(m));
}

/** Per client kind (modality set): client count and example-weighted means of the clients' finite metrics. */
export function perKindMetrics(results: readonly FitResult[]): Record<string, number> {
  const groups = new Map<string, FitResult[]>();
  for (const r of results) {
    const key = uploadModalities(r).join('+');
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Record<string, number> = {};
  for (const [key, members] of [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out[`kind.${key}.clients`] = members.length;
    const sums = new Map<string, { weighted: number; examples: number }>();
    for (const r of members) {
      for (const [name, value] of Object.entries(r.metrics ?? {})) {
        if (!Number.isFinite(value)) continue;
        const s = sums.get(name) ?? { weighted: 0, examples: 0 };
        s.weighted += value * r.numExamples;
        s.examples += r.numExamples;
        sums.set(name, s);
      }
    }
    for (const [name, s] of sums) if (s.examples > 0) out[`kind.${key}.${name}`] = s.weighted / s.examples;
  }
  return out;
}

/** The engine hooks of a representation task; see the module comment. */
export function createRepresentationRounds(options: RepresentationRoundsOptions): RepresentationRoundHooks {
  const { task, strategy, publicSize, distill } = options;
  const { dim, publicBatch: numSamples, encoding } = task.representation;
  if (numSamples > publicSize)
    throw new FlCoreError('REP_BAD_CONFIG', `representation.publicBatch ${numSamples} is larger than the public split (${publicSize} samples)`);
  const coefficients = strategy.clientCoefficients;
  return {
    section(serverRound) {
      return {
        publicIndices: publicBatchIndices(task.seed, serverRound, publicSize, numSamples),
        dim,
        encoding,
        adversarialWeight: coefficients.adversarialWeight,
        fusion: coefficients.fusion,
        localDistillationWeight: coefficients.localDistillationWeight,
      };
    },

    validate(bytes, expect) {
      const modalities = MODALITIES.filter((m) => expect.modalities.includes(m));
      if (modalities.length === 0) throw new ProtocolError('UPDATE_SHAPE', 'the sender holds no modality a representation round exchanges');
      try {
        const valid = validateRepresentations(bytes, {
          taskId: task.id,
          serverRound: expect.serverRound,
          clientId: expect.clientId,
          modalities,
          numSamples,
          dim,
          maxBytes: task.maxUpdateBytes,
          crc32: fastCrc32,
        });
        return representationUploadTensors(valid.representations, numSamples, dim);
      } catch (err) {
        if (!isFlCoreError(err)) throw err;
        throw new ProtocolError(representationRefusalCode(err.code), err.message);
      }
    },

    async serverUpdate(serverRound, global, results) {
      const { global: globalReps } = readPublicRepresentations(global, numSamples, dim);
      const uploads: RepresentationUpload[] = results.map((r) => ({
        clientId: r.clientId,
        numExamples: r.numExamples,
        representations: Object.fromEntries(r.delta.map((t) => [modalityOfRepresentationTensor(t.name), t.values])),
      }));
      const aggregate = strategy.aggregate(serverRound, globalReps, uploads);
      const teachers = Object.fromEntries(Object.entries(aggregate.teachers).map(([m, t]) => [m, t.teacher])) as Partial<Record<Modality, Float32Array>>;
      // The server step starts from the global as it was: its weights and this round's public representations.
      const next = await distill(serverRound, global, teachers);
      const trust = aggregate.clients.map((c) => ({ clientId: c.clientId, trust: c.trust }));
      const outcome: AggregateFitResult = {
        parameters: [...next.parameters],
        metrics: { ...aggregate.metrics, numExcluded: aggregate.excluded.length },
        groups: [],
        rejected: aggregate.rejected.map((r) => ({ clientId: r.clientId, code: REJECTION_CODE[r.code], message: r.message })),
        trust,
      };
      return { outcome, serverMetrics: { ...next.metrics, ...perKindMetrics(results) } };
    },
  };
}
