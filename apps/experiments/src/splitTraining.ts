/**
 * A sequential, bit-reproducible in-process simulator of FedUMM's device–edge split (Su et al. 2026,
 * arXiv:2601.15390 §3.3) and of its adapter-only baseline, with no coordinator and no sockets.
 *
 * Every round: the global is encoded as a coordinator would send it (fl-core codec, kind `model`);
 * each client, in index order, runs its round from that round start — a split client through an
 * in-process {@link SplitLink} over ONE shared {@link EdgeSteps}, so the edge trains on the clients'
 * steps in that fixed order; an adapter-only client through `runLocalRound`, the runtime's own
 * weight round; then the device deltas go through the coordinator's own strategy
 * (`buildStrategy(task)`: FedAvg, groupwise, weighted by example counts — FedUMM Eq. 1) in
 * canonical client order, and the edge's weights are taken as they are after the round, as the
 * coordinator's split hooks do. A run is therefore a function of the task, the clients' data and
 * seeds: no clock or arrival order reaches a weight (time enters the figures only).
 *
 * What is measured per client and round: the bytes of the real encoded payloads (the round start's
 * global, the upload, every split step both ways), the device's own compute and the time it waited
 * for the edge. Centralized split training (one device + edge on the pooled data, mixed batches, no
 * interface) is {@link trainCentralizedSplit}.
 */
import * as tf from '@tensorflow/tfjs';
import { SPLIT_EDGE_GROUP, createRng, groupOf } from '@chorus/fl-core';
import type { FitResult, Parameters, Tensor } from '@chorus/fl-core';
import {
  encodeLocalUpdate,
  evaluateLocally,
  globalFor,
  inferAdapterLayout,
  roundSeed,
  runLocalRound,
  runSplitRound,
  toModelBatch,
  trainLocally,
} from '@chorus/client';
import type { LocalDataset, LocalRoundOptions, ModelFactory } from '@chorus/client';
import { buildStrategy, canonicalResults, encodeGlobal, roundIdOf, roundStartPayload, sha256HexSync, splitRoundSection } from '@chorus/coordinator';
import type { TaskConfig } from '@chorus/coordinator';
import { modelRequestOf } from '@chorus/coordinator/simulate';
import { EdgeFusion, EdgeSteps, SplitDevice, evaluateSplit, splitInitSeeds, splitStepInProcess } from '@chorus/models';
import type { MultimodalBatch, MultimodalModel, SplitLink } from '@chorus/models';
import { unionBatch, unionEpoch } from './centralized.js';
import { ExperimentsError } from './errors.js';

/** A parsed round start, as `runLocalRound` takes it. */
export type RoundStart = LocalRoundOptions['round'];

/** The round config's `split` section (FedUMM's device–edge split). */
export type SplitSection = NonNullable<RoundStart['config']['split']>;

/** The split settings of a task (its `split` section, defaults filled in). */
export type SplitTaskSettings = NonNullable<TaskConfig['split']>;

/** One simulated client. */
export interface SimulatedClient {
  /** Its id (codec headers, canonical aggregation order). */
  readonly clientId: string;
  /** Its seed: round r draws from `roundSeed(seed, r)`, as a headless client's does. */
  readonly seed: number;
  readonly dataset: LocalDataset;
}

/** What one client's round came to. */
export interface ClientRoundFigures {
  readonly clientId: string;
  readonly numExamples: number;
  /** Examples visited in training this round (examples × local epochs). */
  readonly examplesSeen: number;
  readonly trainLoss: number;
  /** Bytes of the round start's global the client downloads (everything the coordinator sends). */
  readonly downloadBytes: number;
  /** The device's part of that global (adapters, local head, task head), encoded alone; equal to `downloadBytes` without a split. */
  readonly downloadDeviceBytes: number;
  /** Bytes of the encoded delta it uploads. */
  readonly uploadBytes: number;
  /** Split steps: bytes the device sent to the edge (tokens + mask, then fused-feature gradients) and received (fused features, token gradients). */
  readonly stepBytesUp: number;
  readonly stepBytesDown: number;
  readonly numSteps: number;
  /** Fractions of the example rows (tokens, fused-feature gradients) the interface scaled down to its clip norm. */
  readonly clippedActivationsFraction: number;
  readonly clippedGradientsFraction: number;
  /** Wall-clock of the whole round on the device (ms), the device's own compute in split steps, and the time it waited for the edge. */
  readonly roundMs: number;
  readonly deviceMs: number;
  readonly waitMs: number;
}

/** Options of {@link simulateFederated}. */
export interface FederatedSimulationOptions {
  /** The task; a `split` section makes it a split run, its absence an adapter-only (FedUMM) run. */
  readonly task: TaskConfig;
  readonly clients: readonly SimulatedClient[];
  readonly models: ModelFactory;
  /** Called after each round with its figures (progress). */
  readonly onRound?: (serverRound: number, clients: readonly ClientRoundFigures[]) => void;
}

/** What a simulated run produced. */
export interface FederatedSimulationResult {
  /** The global after the last completed round (device tensors, then the edge's for a split run). */
  readonly global: Tensor[];
  readonly completedRounds: number;
  /** Per round, every client's figures in index order. */
  readonly rounds: readonly (readonly ClientRoundFigures[])[];
  readonly durationMs: number;
}

/**
 * The round start the coordinator sends for `serverRound` of `task` with `global` (its own
 * `roundStartPayload`; FedAvg's plan adds no config entries). Attempt 1, no deadline.
 */
export function roundStartOf(task: TaskConfig, serverRound: number, global: Parameters): RoundStart {
  const bytes = encodeGlobal(task.id, serverRound - 1, global);
  const payload = roundStartPayload(
    task,
    { roundId: roundIdOf(task.id, 1, serverRound, 1), serverRound, attempt: 1, deadlineAt: 0 },
    {},
    { tensors: global, bytes, sha256: sha256HexSync(bytes) },
    undefined,
    task.split ? splitRoundSection(task.split) : undefined,
  );
  // Every field the parsed form defaults is set by the coordinator, and `global` is already a Uint8Array.
  return payload as RoundStart;
}

/** The edge's fusion network for `task`'s split section over `model`'s tokens, seeded from the task seed as the coordinator seeds it. */
export function createEdge(task: TaskConfig, model: MultimodalModel): EdgeFusion {
  const split = requireSplit(task, 'createEdge');
  return new EdgeFusion({
    modalities: model.modalities,
    tokenDim: model.conceptDim,
    modelDim: split.fusedDim,
    numBlocks: split.numBlocks,
    numHeads: split.numHeads,
    learningRate: split.edgeLearningRate,
    seed: splitInitSeeds(task.seed).edge,
  });
}

/** The device half for `task` over `model` (which the caller disposes), its task head seeded by `seed`. */
function createDevice(task: TaskConfig, model: MultimodalModel, learningRate: number, seed: number): SplitDevice {
  const split = requireSplit(task, 'createDevice');
  return new SplitDevice({ model, fusedDim: split.fusedDim, learningRate, localHeadWeight: split.localHeadWeight, seed });
}

function requireSplit(task: TaskConfig, fn: string): SplitTaskSettings {
  if (task.split === undefined) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `${fn}: task ${task.id} has no split section`);
  return task.split;
}

/**
 * The initial global of `task`: the adapters as a client's model factory builds them from the task's
 * seed, and for a split task the task head `fusion/split_head/*` and the edge's `edge/*` tensors
 * seeded as the coordinator seeds them (`splitInitSeeds`).
 */
export async function initialGlobal(task: TaskConfig, models: ModelFactory): Promise<Tensor[]> {
  const model = await models.create(modelRequestOf(task));
  try {
    if (task.split === undefined) return model.adapterParameters();
    const device = createDevice(task, model, task.learningRate, splitInitSeeds(task.seed).head);
    const edge = createEdge(task, model);
    try {
      return [...device.parameters(), ...edge.parameters()];
    } finally {
      device.dispose();
      edge.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** The tensors of `global` outside the edge's group (what clients train), and the edge's, both in order. */
export function splitGlobal(global: Parameters): { device: Tensor[]; edge: Tensor[] } {
  return { device: global.filter((t) => groupOf(t.name) !== SPLIT_EDGE_GROUP), edge: global.filter((t) => groupOf(t.name) === SPLIT_EDGE_GROUP) };
}

/** A {@link SplitLink} to an in-process edge for one client in one round. */
export class InProcessSplitLink implements SplitLink {
  constructor(
    private readonly edge: EdgeSteps,
    private readonly roundId: string,
    private readonly clientId: string,
  ) {}

  forward(step: number, batchSize: number, payload: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.edge.forward({ roundId: this.roundId, clientId: this.clientId, step, batchSize, payload }));
  }

  backward(step: number, batchSize: number, payload: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.edge.backward({ roundId: this.roundId, clientId: this.clientId, step, batchSize, payload }));
  }
}

/**
 * Runs `task` for its rounds over `clients` (see the module comment). A round whose strategy
 * produces no model ends the run early (`completedRounds` says how far it got).
 */
export async function simulateFederated(options: FederatedSimulationOptions): Promise<FederatedSimulationResult> {
  const { task, clients, models } = options;
  if (clients.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'simulateFederated: needs at least one client');
  if (new Set(clients.map((c) => c.clientId)).size !== clients.length)
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'simulateFederated: client ids must be distinct');
  const started = performance.now();
  const { strategy } = buildStrategy(task);
  let global = await initialGlobal(task, models);
  const rounds: ClientRoundFigures[][] = [];
  // The edge lives for the whole run; each round opens it from the global's `edge` tensors with fresh optimiser state.
  let edge: { fusion: EdgeFusion; steps: EdgeSteps; model: MultimodalModel } | null = null;
  if (task.split !== undefined) {
    const model = await models.create(modelRequestOf(task));
    const fusion = createEdge(task, model);
    const steps = new EdgeSteps(fusion, {
      taskId: task.id,
      returnEncoding: task.split.returnEncoding,
      maxBatch: task.batchSize,
      stepTimeoutMs: task.split.stepTimeoutMs,
      // A frozen clock: no step ever times out, so nothing the edge does depends on time.
      now: () => 0,
    });
    edge = { fusion, steps, model };
  }
  let completedRounds = 0;
  try {
    for (let serverRound = 1; serverRound <= task.rounds; serverRound++) {
      const round = roundStartOf(task, serverRound, global);
      const parts = splitGlobal(global);
      const downloadDeviceBytes = edge === null ? round.global.byteLength : encodeGlobal(task.id, serverRound - 1, parts.device).byteLength;
      edge?.steps.open(round.roundId, parts.edge);
      const results: FitResult[] = [];
      const figures: ClientRoundFigures[] = [];
      for (const client of clients) {
        const t0 = performance.now();
        const outcome =
          edge === null
            ? await runLocalRound({ round, dataset: client.dataset, models, seed: client.seed, behaviour: null, evalExamples: 0 })
            : await runSplitRound({
                round,
                dataset: client.dataset,
                models,
                seed: client.seed,
                behaviour: null,
                evalExamples: 0,
                clientId: client.clientId,
                link: new InProcessSplitLink(edge.steps, round.roundId, client.clientId),
                now: () => performance.now(),
              });
        const roundMs = performance.now() - t0;
        if (outcome === null)
          throw new ExperimentsError('EXPERIMENTS_RUN_FAILED', `simulateFederated: client ${client.clientId} abandoned round ${serverRound}`);
        const m = outcome.metrics;
        const upload = encodeLocalUpdate(round, client.clientId, outcome.tensors);
        results.push({ clientId: client.clientId, numExamples: client.dataset.numExamples, delta: outcome.tensors, metrics: m });
        figures.push({
          clientId: client.clientId,
          numExamples: client.dataset.numExamples,
          examplesSeen: client.dataset.numExamples * task.localEpochs,
          trainLoss: m['trainLoss'] ?? Number.NaN,
          downloadBytes: round.global.byteLength,
          downloadDeviceBytes,
          uploadBytes: upload.byteLength,
          stepBytesUp: m['splitBytesUp'] ?? 0,
          stepBytesDown: m['splitBytesDown'] ?? 0,
          numSteps: m['numSteps'] ?? 0,
          clippedActivationsFraction: m['splitClippedActivationsFraction'] ?? 0,
          clippedGradientsFraction: m['splitClippedGradientsFraction'] ?? 0,
          roundMs,
          deviceMs: edge === null ? roundMs : (m['splitDeviceMs'] ?? Number.NaN),
          waitMs: m['splitWaitMs'] ?? 0,
        });
      }
      const aggregated = strategy.aggregateFit(serverRound, parts.device, canonicalResults(results), []);
      if (edge !== null) {
        const weights = edge.steps.weights();
        edge.steps.close(round.roundId);
        if (aggregated === null) break;
        global = [...aggregated.parameters, ...weights];
      } else {
        if (aggregated === null) break;
        global = aggregated.parameters;
      }
      rounds.push(figures);
      completedRounds = serverRound;
      options.onRound?.(serverRound, figures);
    }
  } finally {
    if (edge !== null) {
      edge.steps.dispose();
      edge.fusion.dispose();
      edge.model.dispose();
    }
  }
  return { global, completedRounds, rounds, durationMs: performance.now() - started };
}

/** Test-time batches of `data` with its modalities, in chunks of `chunk`; the caller disposes them. */
async function evaluationBatches(data: LocalDataset, chunk: number): Promise<MultimodalBatch[]> {
  const batches: MultimodalBatch[] = [];
  for (let start = 0; start < data.numExamples; start += chunk) {
    const indices = Array.from({ length: Math.min(chunk, data.numExamples - start) }, (_, i) => start + i);
    batches.push(toModelBatch(await data.read(indices), data.modalities));
  }
  return batches;
}

/** Accuracy and mean cross-entropy of `global` on `data`: the split model (device → edge → task head) for a split task, else the adapted model. */
export async function evaluateGlobal(
  task: TaskConfig,
  global: Parameters,
  data: LocalDataset,
  models: ModelFactory,
): Promise<{ accuracy: number; loss: number }> {
  const model = await models.create(modelRequestOf(task));
  try {
    if (task.split === undefined) {
      model.setAdapterParameters(globalFor(model, global));
      const r = await evaluateLocally(
        model,
        data,
        Array.from({ length: data.numExamples }, (_, i) => i),
      );
      return { accuracy: r.accuracy, loss: r.loss };
    }
    const device = createDevice(task, model, task.learningRate, splitInitSeeds(task.seed).head);
    const edge = createEdge(task, model);
    const batches = await evaluationBatches(data, 64);
    try {
      const { device: deviceTensors, edge: edgeTensors } = splitGlobal(global);
      device.setParameters(deviceTensors);
      edge.setParameters(edgeTensors);
      const r = evaluateSplit(device, edge, batches);
      return { accuracy: r.accuracy, loss: r.loss };
    } finally {
      for (const b of batches) tf.dispose(Object.values(b) as tf.Tensor[]);
      device.dispose();
      edge.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** Options of {@link trainCentralizedSplit}. */
export interface CentralizedSplitOptions {
  /** A split task: its model, learning rates (device: `learningRate`, edge: `split.edgeLearningRate`), batch size and seed. */
  readonly task: TaskConfig;
  /** The clients' datasets, pooled; each example keeps only its dataset's modalities. */
  readonly datasets: readonly LocalDataset[];
  readonly models: ModelFactory;
  readonly epochs: number;
  /** Seed of the epoch shuffles. */
  readonly seed: number;
}

/**
 * One split model — device and edge in one process, no codec, clip or noise on the cut — trained
 * from the task's initial global on the union of `datasets` for `epochs` epochs of mixed batches
 * (one Adam optimiser each for device and edge over the whole run). Returns the final global.
 */
export async function trainCentralizedSplit(options: CentralizedSplitOptions): Promise<{ global: Tensor[]; numSteps: number; durationMs: number }> {
  const { task, datasets, models, epochs } = options;
  if (!(Number.isInteger(epochs) && epochs >= 1))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `trainCentralizedSplit: epochs must be an integer ≥ 1, got ${epochs}`);
  if (datasets.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'trainCentralizedSplit: needs at least one dataset');
  const started = performance.now();
  const initial = splitGlobal(await initialGlobal(task, models));
  const model = await models.create(modelRequestOf(task));
  const device = createDevice(task, model, task.learningRate, splitInitSeeds(task.seed).head);
  const edge = createEdge(task, model);
  try {
    device.setParameters(initial.device);
    edge.setParameters(initial.edge);
    const rng = createRng(options.seed);
    let numSteps = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      for (const chunk of unionEpoch(
        datasets.map((d) => d.numExamples),
        task.batchSize,
        rng,
      )) {
        const batch = await unionBatch(datasets, chunk, model.modalities);
        try {
          splitStepInProcess(device, edge, batch);
        } finally {
          tf.dispose(Object.values(batch) as tf.Tensor[]);
        }
        numSteps++;
      }
    }
    return { global: [...device.parameters(), ...edge.parameters()], numSteps, durationMs: performance.now() - started };
  } finally {
    device.dispose();
    edge.dispose();
    model.dispose();
  }
}

/**
 * Wall-clock (ms) of an adapter-only client's local training steps alone in round 1 of `task`: the
 * model `runLocalRound` would build (the client's modalities only) from the initial global, then
 * `trainLocally` with the round's settings and generator, timed without the model build or the delta.
 */
export async function timeLocalTraining(task: TaskConfig, client: SimulatedClient, models: ModelFactory): Promise<number> {
  if (task.split !== undefined) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `timeLocalTraining: task ${task.id} is a split task`);
  const global = await initialGlobal(task, models);
  const layout = inferAdapterLayout(global);
  const modalities = layout.modalities.filter((m) => client.dataset.modalities.includes(m));
  const model = await models.create({ ...layout, modalities, adapterAlpha: task.model.adapterAlpha, learningRate: task.learningRate, seed: 1 });
  try {
    model.setAdapterParameters(globalFor(model, global));
    const started = performance.now();
    await trainLocally({
      model,
      dataset: client.dataset,
      modalities,
      localEpochs: task.localEpochs,
      batchSize: task.batchSize,
      modalWeight: task.model.modalWeight,
      modalLoss: task.model.modalLoss,
      interpretabilityWeight: task.model.interpretabilityWeight,
      rng: createRng(roundSeed(client.seed, 1)),
    });
    return performance.now() - started;
  } finally {
    model.dispose();
  }
}
