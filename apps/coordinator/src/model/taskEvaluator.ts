/**
 * What the coordinator asks of a task's model — FedMM-X's server-side measurements (Balija 2025,
 * arXiv:2503.19564): probe outputs of every candidate global + Δ_k, the evaluation of each new
 * global model, FLTrust's root update, exports — as one asynchronous interface, {@link TaskEvaluator},
 * with two implementations:
 *
 * - {@link EvaluatorProcess} (the coordinator's default): a child process (model/evaluatorProcess.ts)
 *   owns TF.js and the {@link TaskModel}, so the coordinator process loads neither and its event loop
 *   keeps serving sockets while candidates are probed. Parameters cross as fl-core codec bytes.
 * - {@link inProcessEvaluator}: the same interface over a TaskModel in the caller's process (tests,
 *   and the benchmark's comparison with the former layout); it blocks the event loop while it works.
 *
 * Failure behaviour of {@link EvaluatorProcess}: every failure is a {@link CoordinatorError} —
 * `EVALUATOR_EXITED` when the process died or was closed with the request in flight,
 * `EVALUATOR_TIMEOUT` when a request outlived `requestTimeoutMs` (the process is then killed),
 * `EVALUATOR_ERROR` when the evaluator answered with an error (its own code leads the message) or
 * with a malformed answer. A dead process is started again by the next request, and its initial
 * parameters must equal the first ones byte for byte. Nothing here ever waits without a timer.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeUpdate, encodeUpdate } from '@chorus/fl-core';
import type { CandidateProbeOutputs, Parameters, Tensor } from '@chorus/fl-core';
import type { Modality } from '@chorus/models';
import type { Logger } from 'pino';
import { CoordinatorError } from '../errors.js';
import { candidateParameters } from '../engine/serverMeasurements.js';
import type { DistillFn, DistillResult } from '../engine/representationRounds.js';
import type { TaskConfig } from '@chorus/protocol';
import type { EvaluatorErrorBody, EvaluatorOp, EvaluatorRequest, EvaluatorResult, ProbeOutcome } from './evaluatorMessages.js';
import { evaluatorResponseSchema, evaluatorResultSchemas } from './evaluatorMessages.js';
// Type-only: the coordinator process must not load TF.js through this module.
import type { ExportedArtifacts, TaskModel } from './taskModel.js';
import type { EdgeOps } from './edgeService.js';

export type { ProbeOutcome } from './evaluatorMessages.js';

/** Probe outputs of a round: the current global model's (the loss baseline) and each candidate's. */
export interface RoundProbe {
  readonly baseline: CandidateProbeOutputs;
  /** In the order of the deltas given; a candidate that could not be probed has a coded error. */
  readonly candidates: readonly ProbeOutcome[];
}

/** The server's model of one task, as the coordinator uses it; see the module comment. */
export interface TaskEvaluator {
  readonly modalities: readonly Modality[];
  /** Labels of the probe set. */
  readonly probeLabels: Int32Array;
  /** The initial global adapters (a copy). */
  initialParameters(): Tensor[];
  /** Probe outputs of `global` and of `global` + each of `deltas`. */
  probeRound(global: Parameters, deltas: readonly Parameters[]): Promise<RoundProbe>;
  /**
   * Probe outputs of `global` + each of `deltas` alone (no baseline): a cluster node probing the
   * uploads its own clients sent before passing them to the task's leader. Bit-identical to the same
   * candidates' outcomes in {@link probeRound}. Optional.
   */
  probeCandidates?(global: Parameters, deltas: readonly Parameters[]): Promise<ProbeOutcome[]>;
  /** Test-subset accuracy and loss of `parameters` (see {@link TaskModel.evaluate}). */
  evaluate(parameters: Parameters): Promise<Record<string, number>>;
  /** FLTrust's root update from `global`, or null without root data. */
  rootUpdate(global: Parameters): Promise<Tensor[] | null>;
  /** The merged TF.js model with `parameters`. */
  exportMerged(parameters: Parameters): Promise<ExportedArtifacts>;
  /** The adapters artifact of `parameters`. */
  exportAdapters(parameters: Parameters): Promise<ExportedArtifacts>;
  /** Releases the model (and stops the evaluator process); later calls fail with `EVALUATOR_EXITED`. */
  close(): Promise<void>;
  /** Frees what the model holds while nobody asks anything of it; the next request rebuilds it. Optional. */
  suspend?(): Promise<void>;
  /** Readies the model for requests soon to come (starts a suspended evaluator). Optional. */
  prepare?(): Promise<void>;
  /** A representation task's public split size; absent for a weight task. */
  readonly publicExamples?: number;
  /** A representation task's server step (model/fedAfdServer.ts); absent for a weight task. */
  distill?: DistillFn;
  /** A split task's edge (model/edgeService.ts drives it); absent where the evaluator cannot hold one. */
  readonly split?: EdgeOps;
}

/** {@link TaskEvaluator} over a TaskModel in this process (blocks the event loop while it works). */
export function inProcessEvaluator(model: TaskModel): TaskEvaluator {
  const candidate = candidateParameters;
  let closed = false;
  const open = (): TaskModel => {
    if (closed) throw new CoordinatorError('EVALUATOR_EXITED', 'the task model was closed');
    return model;
  };
  return {
    modalities: model.modalities,
    probeLabels: model.probeLabels,
    initialParameters: () => model.initialParameters(),
    probeRound: async (global, deltas) => {
      const m = open();
      // The global model first, scored in the same passes as the candidates.
      const [first, ...rest] = m.probeCandidates([global, ...deltas.map((d) => candidate(global, d))]);
      if (!first!.ok) throw first!.error;
      const baseline = first!.outputs;
      const candidates = rest.map((outcome): ProbeOutcome => {
        if (!outcome.ok) {
          const err = outcome.error;
          return { ok: false, error: { code: 'EVALUATOR_ERROR', message: err instanceof Error ? err.message : String(err) } };
        }
        const out = outcome.outputs;
        return { ok: true, probabilities: out.probabilities, ...(out.explanations ? { explanations: [...out.explanations] } : {}) };
      });
      return { baseline, candidates };
    },
    probeCandidates: async (global, deltas) =>
      open()
        .probeCandidates(deltas.map((d) => candidate(global, d)))
        .map((outcome): ProbeOutcome => {
          if (!outcome.ok) {
            const err = outcome.error;
            return { ok: false, error: { code: 'EVALUATOR_ERROR', message: err instanceof Error ? err.message : String(err) } };
          }
          const out = outcome.outputs;
          return { ok: true, probabilities: out.probabilities, ...(out.explanations ? { explanations: [...out.explanations] } : {}) };
        }),
    evaluate: async (parameters) => open().evaluate(parameters),
    rootUpdate: async (global) => open().rootUpdate(global),
    exportMerged: (parameters) => open().exportMerged(parameters),
    exportAdapters: (parameters) => open().exportAdapters(parameters),
    close: async () => {
      if (!closed) model.dispose();
      closed = true;
    },
  };
}

/** Options of {@link EvaluatorProcess.start}. */
export interface EvaluatorProcessOptions {
  /** Examples of the public split kept as FLTrust root data (0: none). */
  readonly rootExamples?: number;
  readonly weightsDir?: string;
  readonly dataDir?: string;
  /** A request still unanswered after this long kills the process (default 300,000 ms). */
  readonly requestTimeoutMs?: number;
  /** Building the model (start and each restart) may take this long (default 120,000 ms). */
  readonly startTimeoutMs?: number;
  /**
   * The WASM heap never shrinks: once an answer reports it above this size, the process is stopped
   * when it next has no request in flight, and the next request starts a fresh one (default 64 MB).
   * A process retired within its first {@link YOUNG_REQUESTS} answers shows that the task's working
   * set (e.g. FLTrust's root training) is above the cap, so the cap is raised past what it used, up
   * to {@link MAX_CAP_FACTOR} times this value, instead of restarting the evaluator every round.
   */
  readonly maxWasmHeapMb?: number;
  /** V8 old-space limit of the process, `--max-old-space-size` (default 96 MB). */
  readonly maxOldSpaceMb?: number;
  /**
   * Candidates per probe request (default 32): bounds what is queued on the channel at once (the
   * demo's deltas are 47 KB each). Larger requests let more candidates share the passes of an
   * encoder whose adapters they hold alike (models cachedProbe.ts); the outputs are the same bits.
   */
  readonly probeBatch?: number;
  readonly logger?: Logger;
}

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (err: CoordinatorError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

interface Running {
  readonly child: ChildProcess;
  readonly pending: Map<number, Pending>;
  readonly maxWasmHeapMb: number;
  /** Its WASM heap passed the cap: stop it once idle. */
  retiring: boolean;
  exited: boolean;
  /** Answers received (init included). */
  answered: number;
  /** Largest WASM heap an answer reported. */
  peakWasmHeapMb: number;
}

const DEFAULT_WASM_HEAP_CAP_MB = 64;
/** A process retired after at most this many answers was retired for its working set, not for growth over time. */
export const YOUNG_REQUESTS = 16;
/** The WASM heap cap never rises above this multiple of the configured one. */
export const MAX_CAP_FACTOR = 8;

/** Requests kept in flight during a probe round: one being probed, one queued behind it. */
const PROBE_WINDOW = 2;

const ENTRY = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './evaluatorProcess.ts' : './evaluatorProcess.js', import.meta.url));

/** Node flags for the child: the TypeScript loader when running from sources, and the heap limits. */
function childExecArgv(maxOldSpaceMb: number): string[] {
  const flags = [`--max-old-space-size=${maxOldSpaceMb}`, '--max-semi-space-size=2'];
  if (ENTRY.endsWith('.ts')) flags.unshift('--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href);
  return flags;
}

/** A {@link TaskEvaluator} served by a child process; see the module comment. */
export class EvaluatorProcess implements TaskEvaluator {
  private running: Running | null = null;
  private starting: Promise<Running> | null = null;
  private nextId = 1;
  private closed = false;
  private restarts = 0;
  private heapCapMb: number;

  private constructor(
    private readonly task: TaskConfig,
    private readonly options: EvaluatorProcessOptions,
    private readonly initialBytes: Uint8Array,
    readonly probeLabels: Int32Array,
    readonly modalities: readonly Modality[],
    /** Modalities whose encoder came from pretrained weights. */
    readonly pretrained: readonly Modality[],
    first: Running,
  ) {
    this.running = first;
    this.heapCapMb = first.maxWasmHeapMb;
  }

  /** Forks the evaluator and builds the task's model in it; rejects with the evaluator's code (e.g. `TASK_INVALID`). */
  static async start(task: TaskConfig, options: EvaluatorProcessOptions = {}): Promise<EvaluatorProcess> {
    const { running, init } = await launch(task, options);
    const evaluator = new EvaluatorProcess(task, options, init.initial, init.probeLabels, init.modalities, init.pretrained, running);
    if (init.publicExamples !== undefined) evaluator.publicExamples = init.publicExamples;
    return evaluator;
  }

  /** A representation task's public split size (from the evaluator's init); undefined for a weight task. */
  publicExamples: number | undefined = undefined;

  /** A representation task's server step, served by the evaluator's `distill` op. */
  readonly distill = async (serverRound: number, global: Parameters, teachers: Readonly<Partial<Record<Modality, Float32Array>>>): Promise<DistillResult> => {
    const tensors = Object.entries(teachers)
      .filter((e): e is [string, Float32Array] => e[1] !== undefined)
      .map(([m, values]) => ({ name: `teacher/${m}`, shape: [values.length / this.dimOf(global), this.dimOf(global)], values }));
    const { parameters, metrics } = await this.request('distill', {
      serverRound,
      global: this.encode(global, 'model'),
      teachers: encodeUpdate({ kind: 'model', taskId: this.task.id, round: serverRound, clientId: '', encoding: 'fp32', tensors }),
    });
    return { parameters: decodeUpdate(parameters, { maxBytes: parameters.byteLength }).tensors, metrics };
  };

  /** D of a representation global: the width of its `public/…` tensors. */
  private dimOf(global: Parameters): number {
    const t = global.find((p) => p.name.startsWith('public/'));
    if (!t || t.shape.length !== 2) throw new CoordinatorError('EVALUATOR_ERROR', 'distill: the global holds no public/<modality> [B, D] tensor');
    return t.shape[1]!;
  }

  /** Process id of the evaluator now running (null between a death and the restart). */
  get pid(): number | null {
    return this.running?.child.pid ?? null;
  }

  /** Times the evaluator was started again after dying or being retired. */
  get restartCount(): number {
    return this.restarts;
  }

  /** The WASM heap size (MB) above which the evaluator is retired now (raised from the configured cap when a young process needed more). */
  get wasmHeapCapMb(): number {
    return this.heapCapMb;
  }

  initialParameters(): Tensor[] {
    return decodeUpdate(this.initialBytes, { maxBytes: this.initialBytes.byteLength }).tensors;
  }

  async probeRound(global: Parameters, deltas: readonly Parameters[]): Promise<RoundProbe> {
    // Index -1 is the baseline (the global model itself).
    const outcomes = await this.probeIndices(global, deltas, [-1, ...deltas.map((_, i) => i)]);
    const [baseline, ...candidates] = outcomes;
    if (!baseline?.ok)
      throw new CoordinatorError(
        'EVALUATOR_ERROR',
        `probe of the global model failed: ${baseline ? `${baseline.error.code}: ${baseline.error.message}` : 'no outcome'}`,
      );
    return { baseline: { probabilities: baseline.probabilities, ...(baseline.explanations ? { explanations: baseline.explanations } : {}) }, candidates };
  }

  probeCandidates(global: Parameters, deltas: readonly Parameters[]): Promise<ProbeOutcome[]> {
    return this.probeIndices(
      global,
      deltas,
      deltas.map((_, i) => i),
    );
  }

  /** Probe outcomes of `global` + `deltas[i]` for each index (-1: `global` itself), in batches of `probeBatch` requests. */
  private async probeIndices(global: Parameters, deltas: readonly Parameters[], indices: readonly number[]): Promise<ProbeOutcome[]> {
    const globalBytes = this.encode(global, 'model');
    const batch = Math.max(1, this.options.probeBatch ?? 32);
    const outcomes: ProbeOutcome[] = new Array<ProbeOutcome>(indices.length);
    let next = 0;
    let failed = false;
    const lane = async (): Promise<void> => {
      while (next < indices.length && !failed) {
        const start = next;
        next = Math.min(indices.length, next + batch);
        // Encoded only when sent, so at most PROBE_WINDOW batches of copies exist at once.
        const part = indices.slice(start, next).map((i) => (i < 0 ? null : this.encode(deltas[i]!, 'delta')));
        try {
          const { outcomes: got } = await this.request('probe', { global: globalBytes, deltas: part });
          if (got.length !== part.length) throw new CoordinatorError('EVALUATOR_ERROR', `probe: ${got.length} outcomes for ${part.length} candidates`);
          got.forEach((o, k) => (outcomes[start + k] = o));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: PROBE_WINDOW }, lane));
    return outcomes;
  }

  async evaluate(parameters: Parameters): Promise<Record<string, number>> {
    return (await this.request('evaluate', { parameters: this.encode(parameters, 'model') })).metrics;
  }

  async rootUpdate(global: Parameters): Promise<Tensor[] | null> {
    const { update } = await this.request('rootUpdate', { global: this.encode(global, 'model') });
    return update ? decodeUpdate(update, { maxBytes: update.byteLength }).tensors : null;
  }

  exportMerged(parameters: Parameters): Promise<ExportedArtifacts> {
    return this.exportAs('merged', parameters);
  }

  exportAdapters(parameters: Parameters): Promise<ExportedArtifacts> {
    return this.exportAs('adapters', parameters);
  }

  /** The split edge's operations, each one request to the process (which refuses them for a task that is not split). */
  readonly split: EdgeOps = {
    open: async (roundId, edge) => {
      await this.request('splitOpen', { roundId, edge });
    },
    close: async (roundId) => {
      await this.request('splitClose', { roundId });
    },
    step: async ({ direction, ...body }) => (await this.request(direction === 'forward' ? 'splitForward' : 'splitBackward', body)).payload,
    drop: async (clientId) => {
      await this.request('splitDrop', { clientId });
    },
    weights: async () => (await this.request('splitWeights', {})).edge,
  };

  /** Memory of the evaluator process as it reports it (starting it if it is not running). */
  stats(): Promise<EvaluatorResult<'stats'>> {
    return this.request('stats', {});
  }

  /**
   * Stops the process while nothing is asked of it (a task whose rounds never need the model); the
   * next request starts it again, with the same initial parameters, and `initialParameters` and
   * `probeLabels` stay available meanwhile. Requests in flight are answered first.
   */
  async suspend(): Promise<void> {
    const starting = this.starting;
    if (starting) await starting.catch(() => undefined);
    const running = this.running;
    if (!running || running.pending.size > 0) return;
    this.running = null;
    await stopProcess(running, 'the evaluator was suspended');
    this.options.logger?.info({ task: this.task.id }, 'evaluator suspended until the model is needed');
  }

  async prepare(): Promise<void> {
    if (this.closed) throw new CoordinatorError('EVALUATOR_EXITED', 'the evaluator was closed');
    await this.ensureRunning();
  }

  async close(): Promise<void> {
    this.closed = true;
    const starting = this.starting;
    if (starting) await starting.catch(() => undefined);
    if (this.running) await stopProcess(this.running, 'the evaluator was closed');
    this.running = null;
  }

  private async exportAs(kind: 'merged' | 'adapters', parameters: Parameters): Promise<ExportedArtifacts> {
    const { modelJson, weights } = await this.request('export', { kind, parameters: this.encode(parameters, 'model') });
    return { modelJson: modelJson as unknown as ExportedArtifacts['modelJson'], weights };
  }

  private encode(tensors: Parameters, kind: 'model' | 'delta'): Uint8Array {
    return encodeUpdate({ kind, taskId: this.task.id, round: 0, clientId: kind === 'delta' ? 'candidate' : '', encoding: 'fp32', tensors });
  }

  private async request<K extends Exclude<EvaluatorOp, 'init'>>(
    op: K,
    body: Omit<Extract<EvaluatorRequest, { op: K }>, 'id' | 'op'>,
  ): Promise<EvaluatorResult<K>> {
    if (this.closed) throw new CoordinatorError('EVALUATOR_EXITED', 'the evaluator was closed');
    const running = await this.ensureRunning();
    let result: unknown;
    try {
      result = await send(running, { ...body, id: this.nextId++, op } as EvaluatorRequest, this.options.requestTimeoutMs ?? 300_000);
    } finally {
      if (running.retiring && running.pending.size === 0 && this.running === running) {
        this.running = null;
        this.options.logger?.info(
          { task: this.task.id, pid: running.child.pid, wasmHeapMb: running.peakWasmHeapMb },
          'evaluator retired: its WASM heap passed the cap',
        );
        void stopProcess(running, 'the evaluator was retired');
        this.raiseCapIfYoung(running);
      }
    }
    const parsed = evaluatorResultSchemas[op].safeParse(result);
    if (!parsed.success) throw new CoordinatorError('EVALUATOR_ERROR', `${op}: malformed answer (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    return parsed.data as EvaluatorResult<K>;
  }

  /**
   * A fresh process that passed the cap within a few answers would pass it again after every
   * restart: raise the cap to the next power of two above 1.25 × what it used, within the bound.
   */
  private raiseCapIfYoung(retired: Running): void {
    if (retired.answered > YOUNG_REQUESTS) return;
    const bound = (this.options.maxWasmHeapMb ?? DEFAULT_WASM_HEAP_CAP_MB) * MAX_CAP_FACTOR;
    const wanted = 2 ** Math.ceil(Math.log2(Math.max(1, retired.peakWasmHeapMb * 1.25)));
    const next = Math.min(bound, Math.max(this.heapCapMb, wanted));
    if (next === this.heapCapMb) return;
    this.options.logger?.warn(
      { task: this.task.id, wasmHeapMb: retired.peakWasmHeapMb, capMb: next },
      "raising the evaluator's WASM heap cap: a fresh evaluator needs more for this task",
    );
    this.heapCapMb = next;
  }

  private ensureRunning(): Promise<Running> {
    if (this.running && !this.running.exited) return Promise.resolve(this.running);
    this.starting ??= (async () => {
      try {
        this.options.logger?.info({ task: this.task.id }, 'starting the evaluator again');
        const { running, init } = await launch(this.task, { ...this.options, maxWasmHeapMb: this.heapCapMb });
        if (!bytesEqual(init.initial, this.initialBytes)) {
          await stopProcess(running, 'initial parameters differ');
          throw new CoordinatorError('EVALUATOR_ERROR', 'the restarted evaluator built different initial parameters');
        }
        if (this.closed) {
          await stopProcess(running, 'the evaluator was closed');
          throw new CoordinatorError('EVALUATOR_EXITED', 'the evaluator was closed');
        }
        this.restarts++;
        this.running = running;
        return running;
      } finally {
        this.starting = null;
      }
    })();
    return this.starting;
  }
}

/** Forks an evaluator and sends `init`; the process is killed if that fails. */
async function launch(task: TaskConfig, options: EvaluatorProcessOptions): Promise<{ running: Running; init: EvaluatorResult<'init'> }> {
  const child = fork(ENTRY, [], {
    execArgv: childExecArgv(options.maxOldSpaceMb ?? 96),
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const running: Running = {
    child,
    pending: new Map(),
    maxWasmHeapMb: options.maxWasmHeapMb ?? DEFAULT_WASM_HEAP_CAP_MB,
    retiring: false,
    exited: false,
    answered: 0,
    peakWasmHeapMb: 0,
  };
  child.on('message', (raw: unknown) => receive(running, raw));
  child.on('exit', (code, signal) => {
    running.exited = true;
    for (const [id, p] of running.pending) {
      clearTimeout(p.timer);
      p.reject(new CoordinatorError('EVALUATOR_EXITED', `the evaluator exited (${signal ?? `code ${code}`}) with request ${id} in flight`));
    }
    running.pending.clear();
  });
  // A fork that cannot start emits 'error' and then (usually) no exit: settle the pending requests here too.
  child.on('error', (err) => {
    for (const p of running.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new CoordinatorError('EVALUATOR_EXITED', `the evaluator could not run: ${err.message}`));
    }
    running.pending.clear();
  });
  try {
    const raw = await send(
      running,
      {
        id: 0,
        op: 'init',
        task,
        options: {
          rootExamples: options.rootExamples ?? 0,
          ...(options.weightsDir === undefined ? {} : { weightsDir: options.weightsDir }),
          ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
        },
      },
      options.startTimeoutMs ?? 120_000,
    );
    const init = evaluatorResultSchemas.init.safeParse(raw);
    if (!init.success) throw new CoordinatorError('EVALUATOR_ERROR', `init: malformed answer (${init.error.issues[0]?.message ?? 'invalid'})`);
    return { running, init: init.data };
  } catch (err) {
    await stopProcess(running, 'init failed');
    throw err;
  }
}

function receive(running: Running, raw: unknown): void {
  const parsed = evaluatorResponseSchema.safeParse(raw);
  // Without a readable id there is no request to settle; the request's own timer will.
  if (!parsed.success) return;
  const response = parsed.data;
  const p = running.pending.get(response.id);
  if (!p) return;
  running.pending.delete(response.id);
  clearTimeout(p.timer);
  running.answered++;
  running.peakWasmHeapMb = Math.max(running.peakWasmHeapMb, response.wasmHeapMb);
  if (response.wasmHeapMb > running.maxWasmHeapMb) running.retiring = true;
  if (response.ok) p.resolve(response.result);
  else p.reject(remoteError(response.error));
  if (running.pending.size === 0) running.child.channel?.unref();
}

/** The evaluator's own coordinator codes pass through (e.g. `TASK_INVALID` at init); anything else is `EVALUATOR_ERROR`. */
function remoteError(error: EvaluatorErrorBody): CoordinatorError {
  if (error.code === 'TASK_INVALID' || error.code === 'CONFIG_INVALID')
    return new CoordinatorError(error.code, error.message.replace(/^[A-Z_]+: /, ''), error.issues ?? []);
  return new CoordinatorError('EVALUATOR_ERROR', `${error.code}: ${error.message}`);
}

function send(running: Running, request: EvaluatorRequest, timeoutMs: number): Promise<unknown> {
  if (running.exited || !running.child.connected)
    return Promise.reject(new CoordinatorError('EVALUATOR_EXITED', `the evaluator is not running (request ${request.op})`));
  return new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => {
      running.pending.delete(request.id);
      reject(new CoordinatorError('EVALUATOR_TIMEOUT', `${request.op} got no answer in ${timeoutMs} ms; the evaluator is stopped`));
      // A stuck evaluator is of no further use; the next request starts a fresh one.
      running.child.kill('SIGKILL');
    }, timeoutMs);
    running.pending.set(request.id, { resolve, reject, timer });
    running.child.channel?.ref();
    running.child.send(request, (err) => {
      if (!err) return;
      const p = running.pending.get(request.id);
      if (!p) return;
      running.pending.delete(request.id);
      clearTimeout(p.timer);
      reject(new CoordinatorError('EVALUATOR_EXITED', `the request could not be sent: ${err.message}`));
    });
  });
}

/** Stops an evaluator: closing the channel makes it exit; a kill follows if it has not within 5 s. */
async function stopProcess(running: Running, reason: string): Promise<void> {
  if (running.exited) return;
  for (const [, p] of running.pending) {
    clearTimeout(p.timer);
    p.reject(new CoordinatorError('EVALUATOR_EXITED', reason));
  }
  running.pending.clear();
  const exited = new Promise<void>((resolve) => running.child.once('exit', () => resolve()));
  if (running.child.connected) running.child.disconnect();
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
