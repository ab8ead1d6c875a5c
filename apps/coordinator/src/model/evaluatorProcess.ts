/**
 * The evaluator process: owns TF.js (WASM backend) and one task's {@link TaskModel}, and answers the
 * coordinator's requests (model/evaluatorMessages.ts) one at a time, in arrival order, over the IPC
 * channel it was forked with (model/taskEvaluator.ts starts it). FedMM-X's server-side probe
 * (Balija 2025, arXiv:2503.19564) runs here so the coordinator's event loop keeps serving sockets.
 * For a representation task (FedAFD family) it holds the server model instead (model/fedAfdServer.ts)
 * and serves `distill`, the server step of each round; the weight-model ops are refused.
 *
 * Failure behaviour: a request that cannot be parsed or served gets a coded error response and
 * changes nothing; one candidate that cannot be probed gets a coded outcome while the others are
 * still probed. When the coordinator goes away (the channel closes) the process exits at once, so a
 * killed coordinator leaves no evaluator behind.
 */
import * as tf from '@tensorflow/tfjs';
import { FlCoreError, MODALITIES, decodeUpdate, encodeUpdate } from '@chorus/fl-core';
import type { Modality, Tensor } from '@chorus/fl-core';
import { isCoordinatorError } from '../errors.js';
import { candidateParameters } from '../engine/serverMeasurements.js';
import { parseTask } from '../task/loadTask.js';
import { isRepresentationTask } from '@chorus/protocol';
import { FedAfdServerTask } from './fedAfdServer.js';
import type { EvaluatorErrorBody, EvaluatorRequest, EvaluatorResponse, ProbeOutcome } from './evaluatorMessages.js';
import { evaluatorRequestSchema } from './evaluatorMessages.js';
import { TaskModel } from './taskModel.js';
import type { EdgeSteps } from '@chorus/models';

if (!process.send) {
  process.stderr.write('evaluatorProcess: must be started with an IPC channel (see model/taskEvaluator.ts)\n');
  process.exit(2);
}

let model: TaskModel | null = null;
/** A representation task's server model (then `model` stays null). */
let fedAfd: FedAfdServerTask | null = null;
let taskId = '';

/** Size of the WASM backend's linear memory in MB. */
function wasmHeapMb(): number {
  if (tf.getBackend() !== 'wasm') return 0;
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return (backend.wasm?.HEAPU8?.byteLength ?? 0) / 2 ** 20;
}

function decode(bytes: Uint8Array): Tensor[] {
  return decodeUpdate(bytes, { maxBytes: bytes.byteLength }).tensors;
}

function encode(tensors: readonly Tensor[]): Uint8Array {
  return encodeUpdate({ kind: 'model', taskId, round: 0, clientId: '', encoding: 'fp32', tensors });
}

function errorBody(err: unknown): EvaluatorErrorBody {
  if (isCoordinatorError(err)) return { code: err.code, message: err.message, ...(err.issues.length > 0 ? { issues: [...err.issues] } : {}) };
  if (err instanceof FlCoreError) return { code: err.code, message: err.message };
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : 'EVALUATOR_ERROR';
  return { code, message: err instanceof Error ? err.message : String(err) };
}

function ready(): TaskModel {
  if (fedAfd) throw Object.assign(new Error('a representation task has no weight model: its evaluator serves distill'), { code: 'EVALUATOR_BAD_REQUEST' });
  if (!model) throw Object.assign(new Error('the evaluator has no model yet: send init first'), { code: 'EVALUATOR_NOT_READY' });
  return model;
}

/** A split task's edge; the split ops are refused for any other task. */
function edge(): EdgeSteps {
  const steps = ready().edgeSteps;
  if (!steps) throw Object.assign(new Error('the split ops serve split tasks only'), { code: 'EVALUATOR_BAD_REQUEST' });
  return steps;
}

async function serve(request: EvaluatorRequest): Promise<unknown> {
  switch (request.op) {
    case 'init': {
      if (model || fedAfd) throw Object.assign(new Error('the evaluator already holds a model'), { code: 'EVALUATOR_BAD_REQUEST' });
      const task = parseTask(request.task, 'evaluator task');
      const options = request.options;
      if (isRepresentationTask(task)) {
        fedAfd = await FedAfdServerTask.create(task, options.dataDir === undefined ? {} : { dataDir: options.dataDir });
        taskId = task.id;
        return {
          initial: encode(await fedAfd.initialParameters()),
          probeLabels: new Int32Array(0),
          modalities: [...fedAfd.modalities],
          pretrained: [],
          publicExamples: fedAfd.publicExamples,
        };
      }
      model = await TaskModel.create(task, {
        rootExamples: options.rootExamples,
        ...(options.weightsDir === undefined ? {} : { weightsDir: options.weightsDir }),
        ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
      });
      taskId = task.id;
      return {
        initial: encode(model.initialParameters()),
        probeLabels: model.probeLabels,
        modalities: [...model.modalities],
        pretrained: [...model.pretrained],
      };
    }
    case 'probe': {
      const m = ready();
      const global = decode(request.global);
      // Candidates whose delta cannot be read get their error; the others are scored together.
      const candidates: (Tensor[] | { error: unknown })[] = request.deltas.map((delta) => {
        try {
          return delta === null ? global : candidateParameters(global, decode(delta));
        } catch (error) {
          return { error };
        }
      });
      const readable = candidates.filter((c): c is Tensor[] => Array.isArray(c));
      const probed = m.probeCandidates(readable);
      let next = 0;
      const outcomes: ProbeOutcome[] = candidates.map((c) => {
        if (!Array.isArray(c)) return { ok: false, error: errorBody(c.error) };
        const outcome = probed[next++]!;
        if (!outcome.ok) return { ok: false, error: errorBody(outcome.error) };
        const { probabilities, explanations } = outcome.outputs;
        return { ok: true, probabilities, ...(explanations ? { explanations: [...explanations] } : {}) };
      });
      return { outcomes };
    }
    case 'evaluate':
      return { metrics: ready().evaluate(decode(request.parameters)) };
    case 'rootUpdate': {
      const update = ready().rootUpdate(decode(request.global));
      return { update: update ? encode(update) : null };
    }
    case 'export': {
      // A representation task's one model is its server's encoders (the coordinator asks for 'merged' only).
      if (fedAfd && request.kind === 'merged') {
        const artifacts = await fedAfd.exportArtifacts(decode(request.parameters));
        return { modelJson: artifacts.modelJson, weights: artifacts.weights };
      }
      const m = ready();
      const parameters = decode(request.parameters);
      const artifacts = request.kind === 'merged' ? await m.exportMerged(parameters) : await m.exportAdapters(parameters);
      return { modelJson: artifacts.modelJson, weights: artifacts.weights };
    }
    case 'distill': {
      if (!fedAfd) throw Object.assign(new Error('distill serves representation tasks only'), { code: 'EVALUATOR_BAD_REQUEST' });
      const teachers: Partial<Record<Modality, Float32Array>> = {};
      for (const t of decode(request.teachers)) {
        const m = t.name.startsWith('teacher/') ? (t.name.slice('teacher/'.length) as Modality) : null;
        if (m === null || !(MODALITIES as readonly string[]).includes(m))
          throw Object.assign(new Error(`distill: '${t.name}' is no teacher/<modality>`), { code: 'EVALUATOR_BAD_REQUEST' });
        teachers[m] = t.values;
      }
      const { parameters, metrics } = await fedAfd.distill(request.serverRound, decode(request.global), teachers);
      return { parameters: encode(parameters), metrics };
    }
    case 'splitOpen':
      edge().open(request.roundId, decode(request.edge));
      return {};
    case 'splitClose':
      edge().close(request.roundId);
      return {};
    case 'splitForward':
    case 'splitBackward': {
      const { roundId, clientId, step, batchSize, payload } = request;
      const half = { roundId, clientId, step, batchSize, payload };
      return { payload: request.op === 'splitForward' ? edge().forward(half) : edge().backward(half) };
    }
    case 'splitDrop':
      edge().drop(request.clientId);
      return {};
    case 'splitWeights':
      return { edge: encode(edge().weights()) };
    case 'stats': {
      const usage = process.memoryUsage();
      return { rssMb: usage.rss / 2 ** 20, heapUsedMb: usage.heapUsed / 2 ** 20, wasmHeapMb: wasmHeapMb(), numTensors: tf.memory().numTensors };
    }
  }
}

async function handle(raw: unknown): Promise<void> {
  const parsed = evaluatorRequestSchema.safeParse(raw);
  let response: EvaluatorResponse;
  if (!parsed.success) {
    const id = typeof raw === 'object' && raw !== null && 'id' in raw && typeof raw.id === 'number' ? raw.id : -1;
    response = {
      id,
      ok: false,
      error: { code: 'EVALUATOR_BAD_REQUEST', message: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') },
      wasmHeapMb: wasmHeapMb(),
    };
  } else {
    try {
      const result = await serve(parsed.data);
      response = { id: parsed.data.id, ok: true, result, wasmHeapMb: wasmHeapMb() };
    } catch (err) {
      response = { id: parsed.data.id, ok: false, error: errorBody(err), wasmHeapMb: wasmHeapMb() };
    }
  }
  // The coordinator may be gone (closed or killed) by the time an answer is ready: then there is no one to answer, so exit quietly.
  if (!process.connected) return;
  process.send!(response, undefined, {}, (err: Error | null) => {
    if (err) process.exit(0);
  });
}

// One request at a time: every TaskModel method sets the adapters it evaluates, so two must not interleave.
let queue: Promise<void> = Promise.resolve();
process.on('message', (raw: unknown) => {
  queue = queue.then(() => handle(raw));
});
process.on('disconnect', () => {
  model?.dispose();
  fedAfd?.dispose();
  process.exit(0);
});
