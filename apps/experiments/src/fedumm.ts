/**
 * FedUMM's Tables 1, 3 and 4 (Su et al. 2026, arXiv:2601.15390) on a built-in multimodal dataset
 * (digits by default; the dataset is a setting): a frozen pretrained base with LoRA adapters,
 * FedAvg over adapters only, with clients that hold modality subsets, so each modality's adapters
 * are aggregated over the clients holding that modality (fl-core's groupwise aggregation, the
 * paper's per-modality adapters). Table 1: federated accuracy over Dirichlet α × number of clients,
 * against centralized LoRA on the same data, paired per seed; Table 3: centralized full fine-tuning
 * vs centralized LoRA vs federated LoRA; Table 4: bytes one client sends per round (adapters in
 * fp32, fp16 and int8 against the full model, sizes of real encoded updates) and one client's local
 * training time per round.
 *
 * Protocol: the learning rates of federated LoRA, centralized LoRA and centralized full
 * fine-tuning are each chosen on a validation subset from one documented grid, with tuning seeds
 * disjoint from the evaluation seeds, before any test number is read (tuning.ts,
 * evaluationSplits.ts). Centralized training is one model on the pooled client data with mixed
 * batches and the federated runs' example budget.
 *
 * The data budget is fixed: each configuration deals about `totalExamples` training examples over
 * its clients (each keeps at most totalExamples / K of its Dirichlet share), so more clients means
 * smaller local datasets, as in the paper.
 *
 * Every tuning run, grid run and centralized run is stored in the run cache (see runCache.ts) under
 * everything that defines it, so an interrupted full grid resumes where it stopped; `--shard i/n`
 * splits the missing grid and centralized runs. One client's round time (Table 4) is the measured
 * result itself, so every invocation measures it again rather than reading it back.
 */
import { cpus, loadavg } from 'node:os';
import { MODALITIES, decodeUpdate, parametersDelta } from '@chorus/fl-core';
import type { UpdateEncoding } from '@chorus/fl-core';
import { evaluateLocally } from '@chorus/client';
import type { LocalDataset, ModelFactory } from '@chorus/client';
import { createNodeDigitsFactory, loadShard, useNodeBackend } from '@chorus/client/node';
import type { HeadlessShard } from '@chorus/client/node';
import type { TaskConfig } from '@chorus/coordinator';
import { runSimulation, modelRequestOf } from '@chorus/coordinator/simulate';
import type { BuiltinName } from '@chorus/datasets';
import type { Modality, MultimodalModel } from '@chorus/models';
import { DEFAULT_SEEDS } from './args.js';
import { trainOnUnion } from './centralized.js';
import type { TrainingMode } from './centralized.js';
import { ExperimentsError } from './errors.js';
import { describeSplits, loadEvaluationSplits } from './evaluationSplits.js';
import type { EvaluationSplitInfo, ExperimentDataset } from './evaluationSplits.js';
import { encodedBytes, medianOf, trainedParameters } from './fedummTraining.js';
import { ROBUSTNESS_ENGINE } from './robustness.js';
import { cachedCell, cachedRun, dampingKey, probeKey, settingsKey } from './runCache.js';
import type { Check, ExperimentContext, Figure, SectionEntry, SectionResult } from './section.js';
import { formatMeanStd, formatPaired, markdownTable, meanStd, pairedDifference } from './stats.js';
import type { PairedDifference } from './stats.js';
import { barChart } from './svg.js';
import { BASE_TASK, experimentTask, headlessShards } from './tasks.js';
import { checkDisjointSeeds, gridCandidates, tuneOnValidation, tuningTable } from './tuning.js';
import type { TuningRecord } from './tuning.js';

const ENCODINGS: readonly UpdateEncoding[] = ['fp32', 'fp16', 'int8'];

/** Evaluation seeds of the full mode by default (the runtime estimate of a quick run scales to them). */
const FULL_SEED_COUNT = DEFAULT_SEEDS.full.split(',').length;

/** The grid of the section. */
export interface FedUmmSettings {
  /** The built-in dataset the clients train on and every model is scored on. */
  readonly dataset: ExperimentDataset;
  /** Dirichlet concentrations of the label split (lower: more heterogeneous). */
  readonly alphas: readonly number[];
  readonly clientCounts: readonly number[];
  readonly rounds: number;
  /** Training examples dealt over the clients of one configuration (each keeps ≤ totalExamples / K). */
  readonly totalExamples: number;
  /** `--modality-kinds` of the clients: which modality subsets they hold, by share. */
  readonly modalityKinds: string;
  /** Size of the validation subset learning rates are chosen on. */
  readonly validationExamples: number;
  /** Size of the fixed test subset (disjoint from validation). */
  readonly testExamples: number;
  /** The configuration of Table 3, of the tuning runs and of the timing and byte measurements. */
  readonly reference: { readonly alpha: number; readonly numClients: number };
  /** Repetitions of one client's local round, per training mode (the median is reported). */
  readonly timingReps: number;
  /** Learning-rate grid of federated LoRA, centralized LoRA and centralized full fine-tuning (each chosen on validation). */
  readonly learningRates: readonly number[];
  /** Seeds of the tuning runs, disjoint from the evaluation seeds. */
  readonly tuningSeeds: readonly number[];
}

/** The reduced grid of `--quick` (CI): the corners of the paper's grid, few rounds, two learning rates, one tuning seed. */
export const FEDUMM_QUICK: FedUmmSettings = {
  dataset: 'digits',
  alphas: [0.1, 1.0],
  clientCounts: [2, 8],
  rounds: 3,
  totalExamples: 320,
  modalityKinds: 'image+text+audio=0.25,image+text=0.25,image+audio=0.25,text+audio=0.25',
  validationExamples: 200,
  testExamples: 256,
  reference: { alpha: 1.0, numClients: 8 },
  timingReps: 3,
  // One rate, so the quick grid tunes nothing (a one-value grid needs no validation run); the full grid tunes four.
  learningRates: [0.003],
  tuningSeeds: [101],
};

/** The paper's grid. */
export const FEDUMM_FULL: FedUmmSettings = {
  ...FEDUMM_QUICK,
  alphas: [0.1, 0.5, 1.0],
  clientCounts: [2, 4, 8, 16],
  rounds: 5,
  totalExamples: 800,
  validationExamples: 500,
  testExamples: 500,
  reference: { alpha: 0.5, numClients: 8 },
  timingReps: 5,
  learningRates: [0.001, 0.003, 0.01, 0.03],
  tuningSeeds: [101, 102],
};

/** Ids of the three tuning records. */
export const FEDUMM_TUNED = { federated: 'federated-lora', lora: 'centralized-lora', full: 'centralized-full' } as const;

/** One federated run of the grid. */
export interface GridRun {
  readonly alpha: number;
  readonly numClients: number;
  readonly seed: number;
  readonly learningRate: number;
  readonly status: string;
  readonly completedRounds: number;
  /** Training examples the clients held in all. */
  readonly numExamples: number;
  readonly accuracy: number;
  readonly durationMs: number;
}

/** The centralized runs of one seed, on the pooled data of the reference configuration's clients. */
export interface CentralRun {
  readonly seed: number;
  readonly numExamples: number;
  readonly epochs: number;
  /** Clients of the reference configuration, and how many of them hold each modality. */
  readonly numClients: number;
  readonly modalityHolders: Partial<Record<Modality, number>>;
  readonly initialAccuracy: number;
  readonly lora: CentralResult;
  /** Full fine-tuning at its chosen learning rate. */
  readonly full: CentralResult;
}

/** One centralized training run. */
export interface CentralResult {
  readonly learningRate: number;
  readonly accuracy: number;
  readonly durationMs: number;
  readonly numSteps: number;
}

/** Bytes and time of one client's round, per training mode. */
export interface ClientCost {
  readonly mode: TrainingMode;
  /** Examples of the client measured (the median-sized client of the reference configuration). */
  readonly numExamples: number;
  readonly numScalars: number;
  /** Encoded update size by encoding. */
  readonly bytes: Readonly<Record<UpdateEncoding, number>>;
  /** Wall-clock of each repetition of one local epoch. */
  readonly trainMs: readonly number[];
}

/** One configuration of the grid at one seed. */
export interface FedUmmCell {
  readonly alpha: number;
  readonly numClients: number;
  readonly seed: number;
  readonly learningRate: number;
}

function clientArgs(settings: FedUmmSettings, cell: Omit<FedUmmCell, 'learningRate'>): string[] {
  return [
    '--alpha',
    String(cell.alpha),
    '--modality-kinds',
    settings.modalityKinds,
    '--max-examples',
    String(maxPerClient(settings, cell.numClients)),
    '--seed',
    String(cell.seed),
    '--eval-examples',
    '0',
  ];
}

function maxPerClient(settings: FedUmmSettings, numClients: number): number {
  return Math.max(1, Math.floor(settings.totalExamples / numClients));
}

/** The task of one grid cell: FedAvg over adapters, fp32 uploads, every client every round, no evaluation by the coordinator. */
export function fedUmmTask(settings: FedUmmSettings, cell: FedUmmCell): TaskConfig {
  return experimentTask(`fedumm-a${cell.alpha}-k${cell.numClients}-s${cell.seed}`, {
    dataset: { ...BASE_TASK.dataset, name: settings.dataset },
    strategy: { name: 'fedavg' },
    rounds: settings.rounds,
    clientsPerRound: cell.numClients,
    minClients: cell.numClients,
    // Accuracy is measured here on the validation or test subset; the coordinator never reads either.
    evaluation: { probeExamples: 16, testExamples: 0 },
    learningRate: cell.learningRate,
    seed: cell.seed,
  });
}

/** The clients' shards exactly as the headless clients of that run compute them. */
function clientShards(settings: FedUmmSettings, cell: Omit<FedUmmCell, 'learningRate'>, models: ModelFactory): Promise<HeadlessShard[]> {
  return headlessShards(settings.dataset, cell.numClients, clientArgs(settings, cell), models);
}

async function accuracyOf(model: MultimodalModel, data: LocalDataset): Promise<number> {
  return (
    await evaluateLocally(
      model,
      data,
      Array.from({ length: data.numExamples }, (_, i) => i),
    )
  ).accuracy;
}

/** A federated run of `cell`, its final global model scored on `data` (validation when tuning, test otherwise). */
async function gridRun(settings: FedUmmSettings, cell: FedUmmCell, data: LocalDataset, models: ModelFactory): Promise<GridRun> {
  const task = fedUmmTask(settings, cell);
  const shards = await clientShards(settings, cell, models);
  let finalBytes: Uint8Array | null = null;
  const report = await runSimulation({
    task,
    numClients: cell.numClients,
    clientArgs: clientArgs(settings, cell),
    testExamples: 0,
    inspect: (store) => {
      finalBytes = store.latestCheckpoint(task.id)?.bytes ?? null;
    },
  });
  const bytes = finalBytes as Uint8Array | null;
  if (bytes === null) throw new ExperimentsError('EXPERIMENTS_RUN_FAILED', `${task.id}: the run left no checkpoint`);
  const model = await models.create(modelRequestOf(task));
  try {
    model.setAdapterParameters(decodeUpdate(bytes, { maxBytes: bytes.byteLength }).tensors);
    return {
      ...cell,
      status: report.status,
      completedRounds: report.completedRounds,
      numExamples: shards.reduce((n, s) => n + s.indices.length, 0),
      accuracy: await accuracyOf(model, data),
      durationMs: report.durationMs,
    };
  } finally {
    model.dispose();
  }
}

/** The reference configuration's client datasets at `seed`, and how many clients hold each modality. */
async function referenceData(
  settings: FedUmmSettings,
  seed: number,
  models: ModelFactory,
): Promise<{ datasets: LocalDataset[]; holders: Partial<Record<Modality, number>> }> {
  const shards = await clientShards(settings, { ...settings.reference, seed }, models);
  const datasets = await Promise.all(shards.map((s) => loadShard(settings.dataset as BuiltinName, s)));
  const holders: Partial<Record<Modality, number>> = {};
  for (const s of shards) for (const m of s.modalities) holders[m] = (holders[m] ?? 0) + 1;
  return { datasets, holders };
}

/** One centralized model trained in `mode` at `learningRate` on the pooled `datasets` (mixed batches, the federated example budget), scored on `data`. */
async function centralized(
  settings: FedUmmSettings,
  options: { readonly seed: number; readonly mode: TrainingMode | null; readonly learningRate: number; readonly datasets: readonly LocalDataset[] },
  data: LocalDataset,
  models: ModelFactory,
): Promise<CentralResult> {
  const task = fedUmmTask(settings, { ...settings.reference, seed: options.seed, learningRate: options.learningRate });
  // The federated clients see their data once per round (one local epoch, every client every round).
  const epochs = settings.rounds * task.localEpochs;
  const model = await models.create(modelRequestOf(task));
  try {
    const trained =
      options.mode === null
        ? { durationMs: 0, numSteps: 0 }
        : await trainOnUnion({ model, datasets: options.datasets, epochs, batchSize: task.batchSize, mode: options.mode, seed: options.seed });
    return { learningRate: options.learningRate, accuracy: await accuracyOf(model, data), durationMs: trained.durationMs, numSteps: trained.numSteps };
  } finally {
    model.dispose();
  }
}

async function centralRun(
  settings: FedUmmSettings,
  seed: number,
  learningRates: { readonly lora: number; readonly full: number },
  test: LocalDataset,
  models: ModelFactory,
): Promise<CentralRun> {
  const { datasets, holders } = await referenceData(settings, seed, models);
  const initial = await centralized(settings, { seed, mode: null, learningRate: learningRates.lora, datasets }, test, models);
  const lora = await centralized(settings, { seed, mode: 'adapters', learningRate: learningRates.lora, datasets }, test, models);
  const full = await centralized(settings, { seed, mode: 'full', learningRate: learningRates.full, datasets }, test, models);
  return {
    seed,
    numExamples: datasets.reduce((n, d) => n + d.numExamples, 0),
    epochs: settings.rounds * BASE_TASK.localEpochs,
    numClients: datasets.length,
    modalityHolders: holders,
    initialAccuracy: initial.accuracy,
    lora,
    full,
  };
}

/** One client's round, `reps` times per mode: one local epoch, timed, and its update encoded in every encoding. */
async function clientCosts(settings: FedUmmSettings, client: LocalDataset, learningRate: number, models: ModelFactory): Promise<ClientCost[]> {
  const task = fedUmmTask(settings, { ...settings.reference, seed: 1, learningRate });
  const costs: ClientCost[] = [];
  const times: Record<TrainingMode, number[]> = { adapters: [], full: [] };
  const sizes: Partial<Record<TrainingMode, { numScalars: number; bytes: Record<UpdateEncoding, number> }>> = {};
  // Interleaved, so background load falls on both modes alike.
  for (let rep = 0; rep < settings.timingReps; rep++) {
    for (const mode of ['adapters', 'full'] as const) {
      const model = await models.create(modelRequestOf(task));
      try {
        const before = trainedParameters(model, mode);
        const run = await trainOnUnion({ model, datasets: [client], epochs: task.localEpochs, batchSize: task.batchSize, mode, seed: rep });
        times[mode].push(run.durationMs);
        if (!sizes[mode]) {
          const delta = parametersDelta(trainedParameters(model, mode), before);
          const bytes = Object.fromEntries(ENCODINGS.map((e) => [e, encodedBytes(delta, e)])) as Record<UpdateEncoding, number>;
          sizes[mode] = { numScalars: delta.reduce((n, t) => n + t.values.length, 0), bytes };
        }
      } finally {
        model.dispose();
      }
    }
  }
  for (const mode of ['adapters', 'full'] as const)
    costs.push({ mode, numExamples: client.numExamples, numScalars: sizes[mode]!.numScalars, bytes: sizes[mode]!.bytes, trainMs: times[mode] });
  return costs;
}

/**
 * The section's runs that take minutes, one call per run (what the run cache stores). The section
 * builds them over the real data and models; tests pass fakes that count the calls.
 */
export interface FedUmmSteps {
  /** Validation accuracy of federated LoRA at the reference configuration (NaN when the run did not finish all rounds). */
  readonly federatedValidation: (learningRate: number, seed: number) => Promise<number>;
  /** Validation accuracy of one centralized model trained in `mode` on the reference configuration's pooled data. */
  readonly centralizedValidation: (mode: TrainingMode, learningRate: number, seed: number) => Promise<number>;
  /** One federated run of the grid, scored on test. */
  readonly gridRun: (cell: FedUmmCell) => Promise<GridRun>;
  /** The centralized runs of one seed, scored on test. */
  readonly centralRun: (seed: number, learningRates: { readonly lora: number; readonly full: number }) => Promise<CentralRun>;
  /** One client's round, timed (never stored: the time is the result, measured by this invocation). */
  readonly clientCosts: (seed: number, learningRate: number) => Promise<ClientCost[]>;
}

/** What the runs of one invocation came to: the numbers, and how many were read from the run cache or left to other shards. */
export interface FedUmmRuns {
  readonly tuning: TuningRecord[];
  readonly grid: GridRun[];
  readonly central: CentralRun[];
  readonly costs: ClientCost[];
  /** Runs (tuning, grid, centralized) read from the run cache instead of run, of `total`. */
  readonly stored: number;
  readonly total: number;
  /** Grid and centralized runs left to other shards (not in `grid` / `central`). */
  readonly skipped: number;
}

/** Bumped whenever a change to this section's code changes what a stored run would measure, so stored runs are not reused. */
export const FEDUMM_ENGINE = 1;
const CACHE_PREFIX = 'fedumm';

/**
 * The settings a stored run depends on, with the section's and the round engine's versions: every
 * setting but the lists of cells, the learning-rate grid, the tuning seeds and the timing repetitions
 * (each run's own α, client count, learning rate and seed are in its key).
 */
export function fedUmmSettingsKey(settings: FedUmmSettings): Readonly<Record<string, unknown>> {
  return { ...settingsKey(FEDUMM_ENGINE, settings, ['alphas', 'clientCounts', 'learningRates', 'tuningSeeds', 'timingReps']), roundEngine: ROBUSTNESS_ENGINE };
}

/** The run cache's key of one run: its kind (`validation` with what it tunes, `grid` or `central`), the settings and the task it runs. */
export function fedUmmCacheKey(
  settings: FedUmmSettings,
  run:
    | { readonly kind: 'validation'; readonly what: string; readonly cell: FedUmmCell }
    | { readonly kind: 'grid'; readonly cell: FedUmmCell }
    | { readonly kind: 'central'; readonly seed: number; readonly learningRates: { readonly lora: number; readonly full: number } },
): unknown {
  const task = fedUmmTask(settings, run.kind === 'central' ? { ...settings.reference, seed: run.seed, learningRate: run.learningRates.lora } : run.cell);
  return { section: 'fedumm', ...run, settings: fedUmmSettingsKey(settings), task, ...probeKey(task), ...dampingKey(task) };
}

/** The grid runs and centralized runs of the evaluation seeds, in the order they run (each seed's grid, then its centralized run). */
export function fedUmmPlan(
  settings: FedUmmSettings,
  seeds: readonly number[],
): ({ kind: 'grid'; cell: Omit<FedUmmCell, 'learningRate'> } | { kind: 'central'; seed: number })[] {
  return seeds.flatMap((seed) => [
    ...settings.alphas.flatMap((alpha) => settings.clientCounts.map((numClients) => ({ kind: 'grid' as const, cell: { alpha, numClients, seed } }))),
    { kind: 'central' as const, seed },
  ]);
}

/**
 * Tuning on validation (every invocation needs the chosen rates: never sharded), then the grid and
 * centralized runs of `seeds` (under `ctx.shard`, a missing run of another shard is left to it),
 * then one client's costs. Every run but the cost measurement goes through the run cache.
 */
export async function fedUmmRuns(ctx: ExperimentContext, settings: FedUmmSettings, seeds: readonly number[], steps: FedUmmSteps): Promise<FedUmmRuns> {
  let stored = 0;
  let total = 0;
  const count = (r: { stored: boolean }): void => {
    total += 1;
    if (r.stored) stored += 1;
  };
  const candidates = gridCandidates({ learningRates: settings.learningRates, proximalMus: [], modalWeights: [], interpretabilityWeights: [] });
  const score = async (what: string, label: string, learningRate: number, seed: number, compute: () => Promise<number>): Promise<number> => {
    const cell = { ...settings.reference, seed, learningRate };
    // A federated run that did not finish scores NaN: not kept, so it is tried again next time.
    const r = await cachedRun(ctx.cache, CACHE_PREFIX, fedUmmCacheKey(settings, { kind: 'validation', what, cell }), compute, Number.isFinite);
    count(r);
    ctx.log(`fedumm: tuning ${label} lr ${learningRate} seed ${seed}: validation ${r.value.toFixed(3)}${r.stored ? ' (stored run)' : ''}`);
    return r.value;
  };
  const tuning = [
    await tuneOnValidation(FEDUMM_TUNED.federated, candidates, settings.tuningSeeds, (h, seed) =>
      score(FEDUMM_TUNED.federated, 'federated LoRA', h.learningRate, seed, () => steps.federatedValidation(h.learningRate, seed)),
    ),
  ];
  for (const [mode, id] of [
    ['adapters', FEDUMM_TUNED.lora],
    ['full', FEDUMM_TUNED.full],
  ] as const) {
    tuning.push(
      await tuneOnValidation(id, candidates, settings.tuningSeeds, (h, seed) =>
        score(id, id, h.learningRate, seed, () => steps.centralizedValidation(mode, h.learningRate, seed)),
      ),
    );
  }
  const federatedRate = chosenRate(tuning, FEDUMM_TUNED.federated);
  const rates = { lora: chosenRate(tuning, FEDUMM_TUNED.lora), full: chosenRate(tuning, FEDUMM_TUNED.full) };
  ctx.log(`fedumm: chosen on validation: federated LoRA lr ${federatedRate}, centralized LoRA lr ${rates.lora}, full fine-tuning lr ${rates.full}`);
  const grid: GridRun[] = [];
  const central: CentralRun[] = [];
  let costs: ClientCost[] = [];
  let skipped = 0;
  for (const [i, item] of fedUmmPlan(settings, seeds).entries()) {
    if (item.kind === 'grid') {
      const cell = { ...item.cell, learningRate: federatedRate };
      const r = await cachedCell(ctx, i, {
        prefix: CACHE_PREFIX,
        key: fedUmmCacheKey(settings, { kind: 'grid', cell }),
        compute: () => steps.gridRun(cell),
        keep: (run) => run.status === 'finished' && run.completedRounds === settings.rounds,
      });
      if (r === null) {
        skipped += 1;
        continue;
      }
      count(r);
      const run = r.value;
      grid.push(run);
      ctx.log(
        `fedumm: α ${cell.alpha} × ${cell.numClients} clients, seed ${cell.seed}: ${run.completedRounds}/${settings.rounds} rounds, ${run.numExamples} examples, accuracy ${run.accuracy.toFixed(3)} (${r.stored ? 'stored run, ' : ''}${(run.durationMs / 1000).toFixed(1)} s)`,
      );
      continue;
    }
    const seed = item.seed;
    const r = await cachedCell(ctx, i, {
      prefix: CACHE_PREFIX,
      key: fedUmmCacheKey(settings, { kind: 'central', seed, learningRates: rates }),
      compute: () => steps.centralRun(seed, rates),
    });
    if (r === null) skipped += 1;
    else {
      count(r);
      const c = r.value;
      central.push(c);
      ctx.log(
        `fedumm: centralized seed ${seed} (${c.numExamples} examples, ${c.epochs} epochs): LoRA ${c.lora.accuracy.toFixed(3)}, full fine-tuning ${c.full.accuracy.toFixed(3)}, initial ${c.initialAccuracy.toFixed(3)}${r.stored ? ' (stored run)' : ''}`,
      );
    }
    if (costs.length === 0) {
      costs = await steps.clientCosts(seed, federatedRate);
      ctx.log(`fedumm: one client's round: LoRA ${medianOf(costs[0]!.trainMs).toFixed(0)} ms, full ${medianOf(costs[1]!.trainMs).toFixed(0)} ms`);
    }
  }
  return { tuning, grid, central, costs, stored, total, skipped };
}

function chosenRate(tuning: readonly TuningRecord[], id: string): number {
  const record = tuning.find((r) => r.method === id);
  if (record === undefined) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `fedumm: no tuning record of '${id}'`);
  return record.chosen.learningRate;
}

/** Options of a FedUMM section beyond the mode: its id (also the prefix of its figure) and its settings over the mode's grid. */
export interface FedUmmSectionOptions {
  readonly id?: string;
  readonly settings?: Partial<FedUmmSettings>;
}

/** Runs the section: tuning on validation, then the grid and the centralized runs for every evaluation seed, then one client's costs. */
export async function runFedUmm(ctx: ExperimentContext, options: FedUmmSectionOptions = {}): Promise<SectionResult> {
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  const loadBefore = loadavg()[0]!;
  const id = options.id ?? 'fedumm';
  const settings: FedUmmSettings = { ...(ctx.quick ? FEDUMM_QUICK : FEDUMM_FULL), ...options.settings };
  const seeds = [...ctx.seeds];
  if (seeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'runFedUmm: needs at least one seed');
  checkDisjointSeeds(settings.tuningSeeds, seeds);
  const { validation, test, info: splits } = await loadEvaluationSplits(settings.dataset, settings);
  await useNodeBackend('wasm');
  const models = createNodeDigitsFactory({ adapterAlpha: BASE_TASK.model.adapterAlpha });
  const pooled = new Map<number, LocalDataset[]>();
  const pooledAt = async (seed: number): Promise<LocalDataset[]> =>
    pooled.get(seed) ?? pooled.set(seed, (await referenceData(settings, seed, models)).datasets).get(seed)!;
  const steps: FedUmmSteps = {
    federatedValidation: async (learningRate, seed) => {
      const run = await gridRun(settings, { ...settings.reference, seed, learningRate }, validation, models);
      return run.completedRounds === settings.rounds ? run.accuracy : Number.NaN;
    },
    centralizedValidation: async (mode, learningRate, seed) =>
      (await centralized(settings, { seed, mode, learningRate, datasets: await pooledAt(seed) }, validation, models)).accuracy,
    gridRun: (cell) => gridRun(settings, cell, test, models),
    centralRun: (seed, learningRates) => centralRun(settings, seed, learningRates, test, models),
    clientCosts: async (seed, learningRate) => {
      // The median-sized client of the reference configuration.
      const { datasets } = await referenceData(settings, seed, models);
      const bySize = [...datasets].sort((a, b) => a.numExamples - b.numExamples);
      return clientCosts(settings, bySize[Math.floor(bySize.length / 2)]!, learningRate, models);
    },
  };
  let runs: FedUmmRuns;
  try {
    runs = await fedUmmRuns(ctx, settings, seeds, steps);
  } finally {
    models.dispose();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const machine = { cores: cpus().length, loadAverage: [loadBefore, loadavg()[0]!] as const, cpuMs: (cpu.user + cpu.system) / 1000 };
  const { tuning, grid, central, costs } = runs;
  return fedUmmReport({
    id,
    settings,
    seeds,
    splits,
    tuning,
    grid,
    central,
    costs,
    durationMs: Date.now() - started,
    quick: ctx.quick,
    machine,
    ...(runs.stored + runs.skipped > 0 ? { reuse: { stored: runs.stored, total: runs.total, skipped: runs.skipped } } : {}),
  });
}

/** The section entry of a FedUMM run on `dataset` under `id` (e.g. a second dataset beside digits, added by one line in cli.ts). */
export function fedUmmSection(id: string, dataset: ExperimentDataset): SectionEntry {
  return { id, run: (ctx) => runFedUmm(ctx, { id, settings: { dataset } }) };
}

/** What the report is built from. */
export interface FedUmmReportInput {
  /** Section id (default `fedumm`), the prefix of its figure. */
  readonly id?: string;
  readonly settings: FedUmmSettings;
  readonly seeds: readonly number[];
  readonly splits: EvaluationSplitInfo;
  readonly tuning: readonly TuningRecord[];
  readonly grid: readonly GridRun[];
  readonly central: readonly CentralRun[];
  readonly costs: readonly ClientCost[];
  readonly durationMs: number;
  readonly quick: boolean;
  /** Where the section ran: cores, 1-minute load average at start and end, and this process's CPU time. */
  readonly machine?: { readonly cores: number; readonly loadAverage: readonly [number, number]; readonly cpuMs: number };
  /** Runs read from the run cache (of `total`) and runs left to other shards (absent: every run made by this invocation). */
  readonly reuse?: { readonly stored: number; readonly total: number; readonly skipped: number };
}

const pct = (values: readonly number[]): string => formatMeanStd(values, { scale: 100, digits: 1 });
const kb = (bytes: number): string => (bytes / 1024).toFixed(1);

function cell(grid: readonly GridRun[], alpha: number, numClients: number): number[] {
  return grid.filter((r) => r.alpha === alpha && r.numClients === numClients).map((r) => r.accuracy);
}

/** Cells whose clients split the modalities: some modality held by fewer than all clients, so its adapters average over a subset. */
function modalitySubsets(central: readonly CentralRun[]): { exercised: boolean; detail: string } {
  const c = central[0];
  if (c === undefined) return { exercised: false, detail: 'not measured' };
  const partial = MODALITIES.filter((m) => (c.modalityHolders[m] ?? 0) < c.numClients);
  const detail = `of ${c.numClients} clients (seed ${c.seed}): ${MODALITIES.map((m) => `${m} ${c.modalityHolders[m] ?? 0}`).join(', ')}`;
  return { exercised: partial.length > 0 && MODALITIES.every((m) => (c.modalityHolders[m] ?? 0) > 0), detail };
}

/** The sanity checks `--quick` asserts; each fails on a broken pipeline or a broken claim. */
export function fedUmmChecks(input: Pick<FedUmmReportInput, 'settings' | 'grid' | 'central' | 'costs' | 'tuning' | 'seeds' | 'reuse'>): Check[] {
  const { settings, grid, central, costs } = input;
  const unfinished = grid.filter((r) => r.status !== 'finished' || r.completedRounds !== settings.rounds);
  const initial = meanStd(central.map((c) => c.initialAccuracy)).mean;
  const federated = meanStd(grid.map((r) => r.accuracy)).mean;
  const lora = costs.find((c) => c.mode === 'adapters');
  const full = costs.find((c) => c.mode === 'full');
  const int8Ratio = lora ? lora.bytes.int8 / lora.bytes.fp32 : Number.NaN;
  const fullRatio = lora && full ? lora.bytes.fp32 / full.bytes.fp32 : Number.NaN;
  const timeRatio = lora && full ? medianOf(lora.trainMs) / medianOf(full.trainMs) : Number.NaN;
  const subsets = modalitySubsets(central);
  const rateOf = (id: string): number | undefined => input.tuning.find((r) => r.method === id)?.chosen.learningRate;
  const wrongRate = [
    ...grid.filter((r) => r.learningRate !== rateOf(FEDUMM_TUNED.federated)).map((r) => `α ${r.alpha} × ${r.numClients} s${r.seed}`),
    ...central.filter((c) => c.lora.learningRate !== rateOf(FEDUMM_TUNED.lora)).map((c) => `centralized LoRA s${c.seed}`),
    ...central.filter((c) => c.full.learningRate !== rateOf(FEDUMM_TUNED.full)).map((c) => `full fine-tuning s${c.seed}`),
  ];
  const overlap = settings.tuningSeeds.filter((s) => input.seeds.includes(s));
  return [
    {
      name: 'every federated run finished all its rounds',
      ok: grid.length > 0 && unfinished.length === 0,
      detail:
        unfinished.length === 0
          ? `${grid.length} runs × ${settings.rounds} rounds`
          : `unfinished: ${unfinished.map((r) => `α ${r.alpha} × ${r.numClients} s${r.seed} (${r.status}, ${r.completedRounds})`).join(', ')}`,
    },
    {
      name: 'every test run used the learning rate chosen on validation, with tuning seeds apart from the evaluation seeds',
      ok: wrongRate.length === 0 && overlap.length === 0 && input.tuning.length === 3,
      detail:
        wrongRate.length + overlap.length === 0 && input.tuning.length === 3
          ? `federated ${rateOf(FEDUMM_TUNED.federated)}, centralized LoRA ${rateOf(FEDUMM_TUNED.lora)}, full ${rateOf(FEDUMM_TUNED.full)} (tuning seeds ${settings.tuningSeeds.join(', ')})`
          : [`${input.tuning.length} of 3 tuned`, ...wrongRate.map((w) => `${w} ran at another rate`), ...overlap.map((s) => `seed ${s} in both`)].join('; '),
    },
    {
      name: 'clients hold modality subsets (each modality held by some but not every client, so per-modality aggregation is exercised)',
      ok: subsets.exercised,
      detail: subsets.detail,
    },
    {
      name: 'federated LoRA beats the initial model by ≥ 20 points (mean over the grid)',
      ok: federated - initial >= 0.2,
      detail: `initial ${(initial * 100).toFixed(1)}%, federated ${(federated * 100).toFixed(1)}%`,
    },
    {
      name: 'int8 adapter update ≈ ¼ of its fp32 size (0.2–0.3)',
      ok: int8Ratio >= 0.2 && int8Ratio <= 0.3,
      detail: lora ? `${lora.bytes.int8} / ${lora.bytes.fp32} bytes = ${int8Ratio.toFixed(3)}` : 'not measured',
    },
    {
      name: 'an fp32 adapter update is < 5% of a full-model update',
      ok: fullRatio < 0.05,
      detail: lora && full ? `${lora.bytes.fp32} / ${full.bytes.fp32} bytes = ${fullRatio.toFixed(4)}` : 'not measured',
    },
    {
      name: "a client's LoRA round takes less time than its full fine-tuning round",
      ok: timeRatio < 1,
      detail:
        lora && full ? `median ${medianOf(lora.trainMs).toFixed(0)} ms vs ${medianOf(full.trainMs).toFixed(0)} ms = ${timeRatio.toFixed(2)}` : 'not measured',
    },
    ...((input.reuse?.skipped ?? 0) > 0
      ? [
          {
            name: 'the fedumm grid is complete',
            ok: false,
            detail: `${input.reuse!.skipped} grid and centralized runs belong to other shards and have no stored run yet`,
          },
        ]
      : []),
  ];
}

/** Labels of the tuning records. */
const TUNED_LABELS: Readonly<Record<string, string>> = {
  [FEDUMM_TUNED.federated]: 'Federated LoRA (FedAvg, every grid cell)',
  [FEDUMM_TUNED.lora]: 'Centralized LoRA',
  [FEDUMM_TUNED.full]: 'Centralized full fine-tuning',
};

/** The section's Markdown, figure and raw numbers. */
export function fedUmmReport(input: FedUmmReportInput): SectionResult {
  const { settings, seeds, grid, central, costs, durationMs, quick, machine } = input;
  const id = input.id ?? 'fedumm';
  const centralLora = central.map((c) => c.lora.accuracy);
  const centralMean = meanStd(centralLora).mean;
  const cellMeans = settings.alphas.flatMap((a) => settings.clientCounts.map((k) => meanStd(cell(grid, a, k)).mean)).filter(Number.isFinite);
  const bestCell = cellMeans.length > 0 ? Math.max(...cellMeans) : Number.NaN;
  // Centralized LoRA is called the upper bound only when no federated cell beats it on average.
  const centralIsBound = Number.isFinite(centralMean) && Number.isFinite(bestCell) && centralMean >= bestCell;
  const centralLabel = `Centralized LoRA (${centralIsBound ? 'upper bound' : 'reference'})`;
  const diff = (values: readonly number[]): string => {
    const m = meanStd(values).mean;
    return Number.isFinite(m) && Number.isFinite(centralMean) ? `${m >= centralMean ? '+' : '−'}${(Math.abs(m - centralMean) * 100).toFixed(1)}` : '—';
  };
  const byAlpha = (alpha: number): number[] => grid.filter((r) => r.alpha === alpha).map((r) => r.accuracy);
  const table1 = markdownTable(
    ['Clients', ...settings.alphas.map((a) => `α = ${a}`), 'Avg.', 'examples held (mean)'],
    [
      [centralLabel, ...settings.alphas.map(() => '—'), pct(centralLora), String(Math.round(meanStd(central.map((c) => c.numExamples)).mean))],
      ...settings.clientCounts.map((k) => {
        const runs = grid.filter((r) => r.numClients === k);
        return [
          String(k),
          ...settings.alphas.map((a) => pct(cell(grid, a, k))),
          pct(runs.map((r) => r.accuracy)),
          String(Math.round(meanStd(runs.map((r) => r.numExamples)).mean)),
        ];
      }),
      ['vs. centralized (points, difference of means)', ...settings.alphas.map((a) => diff(byAlpha(a))), diff(grid.map((r) => r.accuracy)), ''],
    ],
  );
  // Paired per seed: a seed fixes every configuration's partition and the initial model; centralized pools the reference configuration's clients of that seed.
  const centralSeries = central.map((c) => ({ seed: c.seed, value: c.lora.accuracy }));
  const paired: { alpha: number; numClients: number; d: PairedDifference }[] = settings.alphas.flatMap((alpha) =>
    settings.clientCounts.map((numClients) => ({
      alpha,
      numClients,
      d: pairedDifference(
        grid.filter((r) => r.alpha === alpha && r.numClients === numClients).map((r) => ({ seed: r.seed, value: r.accuracy })),
        centralSeries,
      ),
    })),
  );
  const pairedTable = markdownTable(
    ['Clients', ...settings.alphas.map((a) => `α = ${a}`)],
    settings.clientCounts.map((k) => [
      String(k),
      ...settings.alphas.map((a) => formatPaired(paired.find((p) => p.alpha === a && p.numClients === k)!.d, { scale: 100 })),
    ]),
  );
  const withInterval = paired.filter((p) => p.d.includesZero !== null);
  const separatedBelow = withInterval.filter((p) => p.d.includesZero === false && p.d.mean < 0);
  const separatedAbove = withInterval.filter((p) => p.d.includesZero === false && p.d.mean > 0);
  const cellName = (p: { alpha: number; numClients: number }): string => `α = ${p.alpha} × ${p.numClients}`;
  const pairedSentence =
    withInterval.length === 0
      ? 'With one evaluation seed there are no intervals, so these runs cannot say which federated configurations differ from centralized LoRA.'
      : `Of the ${withInterval.length} configurations, ${separatedBelow.length} are below centralized LoRA with a 95 % interval that excludes 0${separatedBelow.length > 0 ? ` (${separatedBelow.map(cellName).join(', ')})` : ''}, ${separatedAbove.length} above it${separatedAbove.length > 0 ? ` (${separatedAbove.map(cellName).join(', ')})` : ''}, and the interval of the other ${withInterval.length - separatedBelow.length - separatedAbove.length} includes 0 (not separated by these ${seeds.length} seeds).`;
  const lora = costs.find((c) => c.mode === 'adapters');
  const full = costs.find((c) => c.mode === 'full');
  const ref = settings.reference;
  const refRuns = grid.filter((r) => r.alpha === ref.alpha && r.numClients === ref.numClients).map((r) => r.accuracy);
  const rateOf = (tunedId: string): string => String(input.tuning.find((r) => r.method === tunedId)?.chosen.learningRate ?? '—');
  const table3 = markdownTable(
    ['Configuration', 'learning rate (chosen on validation)', 'Acc. (%)', 'Upload per client per round (KB, fp32)', 'Privacy'],
    [
      ['Centralized (full fine-tuning)', rateOf(FEDUMM_TUNED.full), pct(central.map((c) => c.full.accuracy)), '—', '✗'],
      ['Centralized + LoRA', rateOf(FEDUMM_TUNED.lora), pct(centralLora), '—', '✗'],
      [`Federated LoRA (FedAvg, K = ${ref.numClients}, α = ${ref.alpha})`, rateOf(FEDUMM_TUNED.federated), pct(refRuns), lora ? kb(lora.bytes.fp32) : '—', '✓'],
      ['Initial model (frozen base, fresh head)', '—', pct(central.map((c) => c.initialAccuracy)), '—', '—'],
    ],
  );
  const fullVsLora = pairedDifference(
    central.map((c) => ({ seed: c.seed, value: c.full.accuracy })),
    centralSeries,
  );
  const costRow = (c: ClientCost | undefined, label: string): string[] =>
    c
      ? [
          label,
          c.numScalars.toLocaleString('en-US'),
          ...ENCODINGS.map((e) => kb(c.bytes[e])),
          `${medianOf(c.trainMs).toFixed(0)} (${c.trainMs.map((t) => t.toFixed(0)).join(', ')})`,
        ]
      : [label, '—', '—', '—', '—', '—'];
  const table4 = markdownTable(
    ['Update', 'scalars', 'fp32 (KB)', 'fp16 (KB)', 'int8 (KB)', 'client training per round, median ms (each run)'],
    [
      costRow(full, 'Full fine-tuning (every base weight + head)'),
      costRow(lora, 'FedUMM: LoRA adapters + head'),
      lora && full
        ? [
            'Adapters ÷ full',
            (lora.numScalars / full.numScalars).toFixed(4),
            ...ENCODINGS.map((e) => (lora.bytes[e] / full.bytes[e]).toFixed(4)),
            (medianOf(lora.trainMs) / medianOf(full.trainMs)).toFixed(2),
          ]
        : ['Adapters ÷ full', '—', '—', '—', '—', '—'],
    ],
  );
  const checks = fedUmmChecks(input);
  const figure: Figure = {
    file: `${id}-accuracy.svg`,
    svg: barChart({
      title: `FedUMM Table 1 (${settings.dataset}): federated LoRA accuracy by clients and Dirichlet α`,
      yLabel: 'test accuracy (%)',
      groups: [...settings.clientCounts.map((k) => `${k} clients`), 'centralized'],
      series: settings.alphas.map((a) => ({
        name: `α = ${a}`,
        values: [...settings.clientCounts.map((k) => nullIfEmpty(cell(grid, a, k))), a === settings.alphas[0] ? nullIfEmpty(centralLora) : null],
        errors: [...settings.clientCounts.map((k) => stdOrNull(cell(grid, a, k))), a === settings.alphas[0] ? stdOrNull(centralLora) : null],
      })),
      yMin: 0,
      yMax: 100,
    }),
  };
  const minutes = (durationMs / 60_000).toFixed(1);
  const fullEstimate = quick ? estimateFullMinutes(input) : null;
  const subsets = modalitySubsets(central);
  const markdown = `
Frozen pretrained encoders with LoRA adapters (r = ${BASE_TASK.model.adapterRank}, α = ${BASE_TASK.model.adapterAlpha}) and the NAM head; FedAvg over the adapters and head only, on ${settings.dataset}. Clients hold modality subsets (\`--modality-kinds\` ${settings.modalityKinds.replace(/,/g, ', ')}), so each modality's adapters are averaged over the clients that hold it (groupwise aggregation; the paper's per-modality adapters) — holders ${subsets.detail}. Each configuration deals about ${settings.totalExamples} training examples (Dirichlet label split, each client keeping at most ${settings.totalExamples} / K), ${settings.rounds} rounds of one local epoch (batch ${BASE_TASK.batchSize}, Adam), fp32 uploads. Centralized runs train one model on the pooled data of the K = ${ref.numClients}, α = ${ref.alpha} clients with mixed (shuffled across clients) batches for ${settings.rounds} epochs — the federated runs' example budget (rounds × local epochs × examples). Mean ± std over evaluation seeds ${seeds.join(', ')}.

**Protocol.** ${describeSplits(input.splits)} Learning-rate grid {${settings.learningRates.join(', ')}} (fixed before any run), tuned separately for federated LoRA (on the K = ${ref.numClients}, α = ${ref.alpha} configuration, then used in every cell), centralized LoRA and centralized full fine-tuning, each candidate trained with tuning seed${settings.tuningSeeds.length > 1 ? 's' : ''} ${settings.tuningSeeds.join(', ')} (disjoint from the evaluation seeds) and scored by validation accuracy; the best mean is chosen (ties: the first in grid order).

${tuningTable(
  input.tuning.map((r) => ({ ...r, label: TUNED_LABELS[r.method] ?? r.method })),
  { scale: 100 },
)}
**Table 1 — federated LoRA accuracy (%) by number of clients and heterogeneity.**

${table1}
**Federated − centralized LoRA, paired per seed** (points; mean [95 % t interval]):

${pairedTable}
${pairedSentence} ${centralIsBound ? `Centralized LoRA (${(centralMean * 100).toFixed(1)} %) is at or above every federated configuration's mean, so it is shown as the upper bound.` : `Centralized LoRA (${(centralMean * 100).toFixed(1)} %) is not an upper bound here: the best federated configuration averages ${(bestCell * 100).toFixed(1)} %, so it is labelled a reference.`}

![FedUMM Table 1](${id}-accuracy.svg)

**Table 3 — training paradigm.**

${table3}
Full fine-tuning − LoRA, centralized, paired per seed: ${formatPaired(fullVsLora, { scale: 100 })} points${fullVsLora.includesZero === null ? '' : fullVsLora.includesZero ? ' (the interval includes 0: not separated)' : ` (the interval excludes 0: full fine-tuning is ${fullVsLora.mean > 0 ? 'above' : 'below'} LoRA)`}.

**Table 4 — cost per round of one client** (the median-sized client of K = ${ref.numClients}, α = ${ref.alpha}: ${lora?.numExamples ?? '—'} examples). Sizes are the bytes of the update message fl-core's codec encodes from an actual local round's delta (header and names included); the full-model update holds every base encoder weight and the head (the frozen GloVe table excluded). A client downloads the global model of the same tensors each round, so the download is about the fp32 figure of its row. Times are the wall-clock of one local epoch on the TF.js WASM backend in Node, one thread, on a shared 2-core machine.

${table4}
**Reading and differences from the paper.**
- Measured here: ${trendSentence(settings, grid)} For comparison, the paper (VQA v2) loses accuracy both ways: −4.9 points at α = 0.1 and −1.6 at α = 1.0 against centralized, more with more clients. Where a cell's spread overlaps its neighbours, these runs do not separate the settings.
- The paper fine-tunes BLIP3o on VQA v2 and GenEval with up to 16 clients on GPUs for many rounds; here the model is a small model with frozen pretrained encoders, trained for ${settings.rounds} rounds on ${settings.totalExamples} examples, so the absolute accuracies say how far a short run gets, not what the model can reach.
- Federated full fine-tuning (the paper's FedAvg (Full) rows of Table 4) is not run: the runtime exchanges adapters only. Table 4 therefore compares the sizes and times of the two kinds of client round, not federated accuracies.
${shortRuns(settings, grid)}- There is no "single site" row (one client alone), which FedMM-X's LOCAL baseline covers in its own section.
- Runtime of this section: ${minutes} min (${quick ? 'quick grid' : 'full grid'}, tuning included, measured)${reuseSentence(input.reuse)}${machine ? `, of which ${(machine.cpuMs / 60_000).toFixed(1)} min CPU time of its process, on ${machine.cores} cores with a load average of ${machine.loadAverage[0].toFixed(1)} at the start and ${machine.loadAverage[1].toFixed(1)} at the end (other work shared the machine, so the wall-clock time is longer than the work)` : ''}.${fullEstimate === null ? '' : ` The full grid (${FEDUMM_FULL.alphas.length} α × ${FEDUMM_FULL.clientCounts.length} client counts × ${FULL_SEED_COUNT} seeds, ${FEDUMM_FULL.rounds} rounds, ${FEDUMM_FULL.totalExamples} examples, plus ${FEDUMM_FULL.learningRates.length} learning rates × ${FEDUMM_FULL.tuningSeeds.length} tuning seeds) is estimated at about ${fullEstimate.toFixed(0)} min from this run: per run, time ∝ rounds × examples, so each quick run's time is scaled by (${FEDUMM_FULL.rounds}·${FEDUMM_FULL.totalExamples}) / (${settings.rounds}·${settings.totalExamples}) and multiplied out over the full grid, and the centralized runs likewise${machine && durationMs > 0 ? ` (about ${((fullEstimate * machine.cpuMs) / durationMs).toFixed(0)} min on an otherwise idle machine, scaling the CPU time instead)` : ''}.`}
`;
  return {
    id,
    title: `FedUMM${settings.dataset === 'digits' ? '' : ` on ${settings.dataset}`}: frozen base + LoRA adapters (Tables 1, 3, 4)`,
    markdown,
    figures: [figure],
    raw: {
      settings,
      seeds,
      splits: input.splits,
      tuning: input.tuning,
      task: fedUmmTask(settings, {
        ...settings.reference,
        seed: seeds[0] ?? 1,
        learningRate: Number(rateOf(FEDUMM_TUNED.federated)) || BASE_TASK.learningRate,
      }),
      grid,
      central,
      paired,
      costs,
      durationMs,
      machine: machine ?? null,
    },
    checks,
    durationMs,
  };
}

/** What the runtime covers when runs were read from the run cache or left to other shards (empty when every run was made here). */
function reuseSentence(reuse: FedUmmReportInput['reuse']): string {
  if (reuse === undefined) return '';
  const stored =
    reuse.stored === 0
      ? ''
      : `; ${reuse.stored} of its ${reuse.total} tuning, grid and centralized runs were read from raw/runs/, stored by earlier invocations (the full grid resumes where an interrupted one stopped), so this time covers only the runs this invocation made, while one client's round times (Table 4) were measured again by this invocation`;
  const skipped =
    reuse.skipped === 0 ? '' : `; ${reuse.skipped} grid and centralized runs were left to other \`--shard\` invocations and are missing from these tables`;
  return `${stored}${skipped}`;
}

/** A note naming the configurations whose clients held fewer examples than the budget (small Dirichlet shares), or nothing. */
function shortRuns(settings: FedUmmSettings, grid: readonly GridRun[]): string {
  const short = grid.filter((r) => r.numExamples < r.numClients * maxPerClient(settings, r.numClients));
  if (short.length === 0) return '';
  const cells = [...new Set(short.map((r) => `α = ${r.alpha} × ${r.numClients} clients`))];
  return `- Some clients' Dirichlet shares were smaller than ${settings.totalExamples} / K, so ${cells.join(', ')} trained on fewer examples in all (column "examples held").\n`;
}

/** How accuracy moves from the most to the least homogeneous split and from the fewest to the most clients, in points. */
function trendSentence(settings: FedUmmSettings, grid: readonly GridRun[]): string {
  const mean = (runs: readonly GridRun[]): number => meanStd(runs.map((r) => r.accuracy)).mean * 100;
  const hiAlpha = Math.max(...settings.alphas);
  const loAlpha = Math.min(...settings.alphas);
  const fewest = Math.min(...settings.clientCounts);
  const most = Math.max(...settings.clientCounts);
  const byAlpha = mean(grid.filter((r) => r.alpha === hiAlpha)) - mean(grid.filter((r) => r.alpha === loAlpha));
  const byClients = mean(grid.filter((r) => r.numClients === fewest)) - mean(grid.filter((r) => r.numClients === most));
  const moves = (points: number): string =>
    Number.isFinite(points) ? `${points >= 0 ? 'falls' : 'rises'} by ${Math.abs(points).toFixed(1)} points` : 'cannot be compared';
  return `from α = ${hiAlpha} to α = ${loAlpha} accuracy ${moves(byAlpha)} (mean over client counts), and from ${fewest} to ${most} clients it ${moves(byClients)} (mean over α).`;
}

function nullIfEmpty(values: readonly number[]): number | null {
  return values.length === 0 ? null : meanStd(values).mean * 100;
}

function stdOrNull(values: readonly number[]): number | null {
  return values.length < 2 ? null : meanStd(values).std * 100;
}

/** Minutes the full grid would take, scaled from a quick run's measured times (see the Markdown). */
function estimateFullMinutes(input: FedUmmReportInput): number {
  const { settings, grid, central } = input;
  const scale = (FEDUMM_FULL.rounds * FEDUMM_FULL.totalExamples) / (settings.rounds * settings.totalExamples);
  const perRun = meanStd(grid.map((r) => r.durationMs)).mean * scale;
  const perCentral = meanStd(central.map((c) => c.lora.durationMs + c.full.durationMs)).mean * scale;
  const evaluationSeeds = FULL_SEED_COUNT;
  const runs = FEDUMM_FULL.alphas.length * FEDUMM_FULL.clientCounts.length * evaluationSeeds;
  // Tuning: one federated run and one run of each centralized mode per learning rate and tuning seed.
  const tuningRuns = FEDUMM_FULL.learningRates.length * FEDUMM_FULL.tuningSeeds.length;
  return ((runs + tuningRuns) * perRun + (evaluationSeeds + tuningRuns) * perCentral) / 60_000;
}
