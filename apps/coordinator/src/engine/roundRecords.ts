/**
 * What the round engine sends and stores, built by pure functions from the engine's state: the
 * round-start payload (the strategy plan's config beside the task's training settings), the
 * round-end and task-end payloads, a committed round's metrics and its store record.
 */
import { weightedMetrics } from '@chorus/fl-core';
import type { AggregateEvaluateResult, AggregateFitResult, EvaluateResult, FitResult, Parameters, RoundConfig as StrategyRoundConfig } from '@chorus/fl-core';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { RepresentationRoundConfig, RoundEndPayload, SplitRoundConfig, RoundStartPayload, TaskEndPayload } from '@chorus/protocol';
import type { RoundCompletion, StoredStrategyState, TaskStatus } from '../store/types.js';
import type { TaskConfig } from '@chorus/protocol';
import type { AttemptState } from './engineState.js';

/** A global model as the engine holds it: tensors, their codec bytes and the bytes' SHA-256. */
export interface GlobalModel {
  readonly tensors: Parameters;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

/**
 * The id of one attempt, unique across the task's runs and across tasks: `<task>.r<round>.a<attempt>`
 * in run 1 (as before runs existed), `<task>:run<n>.r<round>.a<attempt>` after it (task ids hold no
 * ':', so no task's id can be read into another's).
 */
export function roundIdOf(taskId: string, run: number, serverRound: number, attempt: number): string {
  return run === 1 ? `${taskId}.r${serverRound}.a${attempt}` : `${taskId}:run${run}.r${serverRound}.a${attempt}`;
}

/** The message that invites the attempt's selected clients to train on `global` (in a representation round, with its `representation` section). */
export function roundStartPayload(
  task: TaskConfig,
  cur: Pick<AttemptState, 'roundId' | 'serverRound' | 'attempt' | 'deadlineAt'>,
  planConfig: StrategyRoundConfig,
  global: GlobalModel,
  representation?: RepresentationRoundConfig,
  split?: SplitRoundConfig,
): RoundStartPayload {
  return {
    type: 'round-start',
    protocolVersion: PROTOCOL_VERSION,
    taskId: task.id,
    roundId: cur.roundId,
    serverRound: cur.serverRound,
    attempt: cur.attempt,
    deadlineAt: cur.deadlineAt,
    config: {
      localEpochs: task.localEpochs,
      batchSize: task.batchSize,
      learningRate: task.learningRate,
      uploadEncoding: task.uploadEncoding,
      maxUpdateBytes: task.maxUpdateBytes,
      normBound: task.normBound,
      modalWeight: task.model.modalWeight,
      modalLoss: task.model.modalLoss,
      interpretabilityWeight: task.model.interpretabilityWeight,
      head: task.model.head,
      adapterAlpha: task.model.adapterAlpha,
      // The strategy's own entries (FedProx's proximalMu, …), exactly as its plan gave them.
      strategy: { ...planConfig },
      // Present exactly in a representation round (FedAFD family).
      ...(representation ? { representation } : {}),
      // Present exactly in a split round (FedUMM's device–edge split).
      ...(split ? { split } : {}),
    },
    globalHash: global.sha256,
    global: global.bytes,
  };
}

/** The message that tells every client of the task how an attempt closed. */
export function roundEndPayload(
  taskId: string,
  cur: AttemptState,
  outcome: { readonly status: 'completed' | 'retry'; readonly globalHash: string; readonly reason?: string },
): RoundEndPayload {
  return {
    type: 'round-end',
    protocolVersion: PROTOCOL_VERSION,
    taskId,
    roundId: cur.roundId,
    serverRound: cur.serverRound,
    attempt: cur.attempt,
    status: outcome.status,
    globalHash: outcome.globalHash,
    ...(outcome.reason === undefined ? {} : { reason: outcome.reason.slice(0, 500) }),
  };
}

/** The message that tells every client of the task that it ended. */
export function taskEndPayload(taskId: string, status: 'finished' | 'failed' | 'stopped', completedRounds: number, globalHash: string): TaskEndPayload {
  return { type: 'task-end', protocolVersion: PROTOCOL_VERSION, taskId, status, completedRounds, globalHash };
}

/** Inputs of {@link roundMetrics}. */
export interface RoundMetricsInput {
  readonly cur: AttemptState;
  readonly outcome: AggregateFitResult;
  /** Figures the server measured around the strategy (probe time, root update time). */
  readonly serverMetrics: Readonly<Record<string, number>>;
  /** The new global model's server-side evaluation, or null when the task has none or it failed. */
  readonly evaluation: Readonly<Record<string, number>> | null;
  readonly evalMs: number | null;
  readonly aggregationMs: number;
  /** The strategy's `aggregateEvaluate` of the clients' evaluations of the round's starting model, or null when none reported one. */
  readonly federated?: AggregateEvaluateResult | null;
}

/**
 * Every figure stored with a committed round: the strategy's (prefixed `strategy.`), the server's,
 * trust summaries, the privacy spent (`epsilon`, `delta`), the evaluation, the attempt's counts and
 * the example-weighted means of what clients reported (prefixed `client.`), and the strategy's
 * aggregate of the clients' evaluations of the round's starting model (prefixed `federatedEval.`).
 * Non-finite values are left out.
 */
export function roundMetrics(input: RoundMetricsInput): Record<string, number> {
  const { cur, outcome } = input;
  const out: Record<string, number> = {};
  const put = (key: string, value: number | undefined): void => {
    if (value !== undefined && Number.isFinite(value)) out[key] = value;
  };
  for (const [k, v] of Object.entries(outcome.metrics)) put(`strategy.${k}`, v);
  for (const [k, v] of Object.entries(input.serverMetrics)) put(k, v);
  const trust = roundTrust(outcome);
  if (trust.length > 0) {
    const values = trust.map((t) => t.trust);
    put('trust.mean', values.reduce((a, b) => a + b, 0) / values.length);
    put('trust.min', Math.min(...values));
    put('trust.max', Math.max(...values));
    // Zero-trust clients are rejected by the trust wrapper; those under minTrust are counted by the threshold inside it.
    put('numUntrusted', outcome.rejected.filter((r) => r.code === 'UNTRUSTED').length + (outcome.metrics['numBelowMinTrust'] ?? 0));
  }
  if (outcome.privacy) {
    put('epsilon', outcome.privacy.epsilon);
    put('delta', outcome.privacy.delta);
  }
  if (input.evaluation) for (const [k, v] of Object.entries(input.evaluation)) put(k, v);
  if (input.evalMs !== null) put('evalMs', input.evalMs);
  if (input.federated) {
    put('federatedEval.loss', input.federated.loss);
    for (const [k, v] of Object.entries(input.federated.metrics)) put(`federatedEval.${k}`, v);
  }
  put('attempt', cur.attempt);
  put('numSelected', cur.selected.size);
  put('numAccepted', cur.results.length);
  put('numRejected', cur.failures.filter((f) => f.code !== 'DISCONNECTED' && f.code !== 'TIMEOUT').length);
  put('numDropped', cur.dropped.size);
  put(
    'numExamples',
    cur.results.reduce((s, r) => s + r.numExamples, 0),
  );
  put('bytesIn', cur.bytesIn);
  put('meanUpdateNorm', cur.normSum / cur.results.length);
  put('aggregationMs', input.aggregationMs);
  for (const [k, v] of Object.entries(meanClientMetrics(cur.results))) put(k, v);
  return out;
}

/** The round's finite trust scores, sorted by client id. */
export function roundTrust(outcome: AggregateFitResult): { clientId: string; trust: number }[] {
  return (outcome.trust ?? [])
    .filter((t) => Number.isFinite(t.trust))
    .map((t) => ({ clientId: t.clientId, trust: t.trust }))
    .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}

/** The store record of a committed round. */
export function roundCompletion(input: {
  readonly taskId: string;
  readonly cur: AttemptState;
  readonly endedAt: number;
  readonly checkpoint: { readonly bytes: Uint8Array; readonly sha256: string };
  readonly strategyState: StoredStrategyState;
  readonly metrics: Readonly<Record<string, number>>;
  readonly trust: readonly { readonly clientId: string; readonly trust: number }[];
  readonly taskStatus: TaskStatus;
}): RoundCompletion {
  return {
    taskId: input.taskId,
    serverRound: input.cur.serverRound,
    attempt: input.cur.attempt,
    endedAt: input.endedAt,
    numAccepted: input.cur.results.length,
    checkpoint: input.checkpoint,
    strategyState: input.strategyState,
    metrics: input.metrics,
    trust: input.trust,
    taskStatus: input.taskStatus,
  };
}

/**
 * The clients' evaluations of the global model the round started from, as the strategy's
 * `aggregateEvaluate` takes them: every result that reported a finite `globalLoss` (its local
 * evaluation before training), weighted by `globalEvalExamples` (else its example count), with
 * `globalAccuracy` as `accuracy`.
 */
export function federatedEvaluations(results: readonly FitResult[]): EvaluateResult[] {
  const out: EvaluateResult[] = [];
  for (const r of canonicalResults(results)) {
    const m = r.metrics ?? {};
    const loss = m['globalLoss'];
    if (loss === undefined || !Number.isFinite(loss)) continue;
    const examples = m['globalEvalExamples'];
    const accuracy = m['globalAccuracy'];
    out.push({
      clientId: r.clientId,
      numExamples: examples !== undefined && Number.isFinite(examples) && examples > 0 ? examples : r.numExamples,
      loss,
      ...(accuracy !== undefined && Number.isFinite(accuracy) ? { metrics: { accuracy } } : {}),
    });
  }
  return out;
}

/** Results (or failures) in canonical order (by client id), so aggregation never depends on arrival order. */
export function canonicalResults<T extends { readonly clientId: string }>(results: readonly T[]): T[] {
  return [...results].sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}

/** Example-weighted means of the metrics clients reported (fl-core's `weightedMetrics`), prefixed `client.`. */
function meanClientMetrics(results: readonly FitResult[]): Record<string, number> {
  return Object.fromEntries(Object.entries(weightedMetrics(canonicalResults(results))).map(([k, v]) => [`client.${k}`, v]));
}
