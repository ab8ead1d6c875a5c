/**
 * FedUMM's device–edge split (Su et al. 2026, arXiv:2601.15390, §3.3) against adapter-only FedUMM
 * and centralized split training, on a built-in multimodal dataset: accuracy (paired over seeds),
 * bytes each way, device compute, and the secure interface's cost — accuracy and per-example ε as
 * functions of the noise multiplier z, and accuracy as a function of the compression.
 *
 * Runs are in-process and sequential (splitTraining.ts): the clients of a Dirichlet/modality-subset
 * partition (the FedUMM section's, from the headless clients' own partitioner) run their rounds in
 * index order; the split clients run `runSplitRound` against one shared in-process edge, the
 * adapter-only clients `runLocalRound`; the coordinator's FedAvg aggregates the device deltas.
 *
 * Protocol: each method's learning rate (the split's device and edge share one) is chosen on a
 * validation subset from one documented grid with tuning seeds disjoint from the evaluation seeds
 * (tuning.ts) before any test number is read; every method gets the same data, rounds, local
 * epochs, batch size and example budget. The interface rows (z > 0, fp16, int8) reuse the split's
 * rate chosen at z = 0 in fp32. Every training run goes through the run cache under everything that
 * defines it; the device timings are measured again by every invocation.
 */
import { cpus, loadavg } from 'node:os';
import type { LocalDataset, ModelFactory } from '@chorus/client';
import { createNodeDigitsFactory, loadShard, useNodeBackend } from '@chorus/client/node';
import type { HeadlessShard } from '@chorus/client/node';
import type { BuiltinName } from '@chorus/datasets';
import type { Modality } from '@chorus/models';
import { ExperimentsError } from './errors.js';
import { medianOf } from './fedummTraining.js';
import { loadEvaluationSplits } from './evaluationSplits.js';
import type { EvaluationSplitInfo } from './evaluationSplits.js';
import { cachedCell, cachedRun } from './runCache.js';
import type { ExperimentContext, SectionEntry, SectionResult } from './section.js';
import {
  MAIN_INTERFACE,
  SPLIT_CACHE_PREFIX,
  SPLIT_ENGINE,
  SPLIT_FULL,
  SPLIT_METHODS,
  SPLIT_QUICK,
  checkSplitSettings,
  evaluationSeeds,
  splitCacheKey,
  splitPlan,
  splitTaskOf,
  trafficOf,
} from './splitGrid.js';
import type { DeviceTiming, Scored, SplitCell, SplitMethod, SplitRun, SplitSettings } from './splitGrid.js';
import { splitReport } from './splitReport.js';
import { evaluateGlobal, simulateFederated, timeLocalTraining, trainCentralizedSplit } from './splitTraining.js';
import type { SimulatedClient } from './splitTraining.js';
import { BASE_TASK, headlessShards } from './tasks.js';
import { checkDisjointSeeds, gridCandidates, tuneOnValidation } from './tuning.js';
import type { TuningRecord } from './tuning.js';
import type { VerifySpec } from './verify.js';

/** The runs that take minutes, one call per run; the section builds them over real data, tests pass fakes. */
export interface SplitSteps {
  readonly run: (cell: SplitCell, scored: Scored) => Promise<SplitRun>;
  readonly timing: (seed: number, learningRates: Readonly<Record<SplitMethod, number>>) => Promise<DeviceTiming>;
}

/** What the runs of one invocation came to. */
export interface SplitRuns {
  readonly tuning: TuningRecord[];
  readonly runs: SplitRun[];
  readonly timing: DeviceTiming;
  /** Runs read from the run cache, of `total`; runs left to other shards. */
  readonly stored: number;
  readonly total: number;
  readonly skipped: number;
}

/** Tuning on validation (never sharded), then the plan's runs on test (sharded), then the timings; every run but the timings through the run cache. */
export async function splitRuns(ctx: ExperimentContext, settings: SplitSettings, seeds: readonly number[], steps: SplitSteps): Promise<SplitRuns> {
  let stored = 0;
  let total = 0;
  const count = (r: { stored: boolean }): void => {
    total += 1;
    if (r.stored) stored += 1;
  };
  const finished = (run: SplitRun): boolean => run.completedRounds === settings.rounds && Number.isFinite(run.accuracy);
  const candidates = gridCandidates({ learningRates: settings.learningRates, proximalMus: [], modalWeights: [], interpretabilityWeights: [] });
  const tuning: TuningRecord[] = [];
  for (const method of SPLIT_METHODS) {
    tuning.push(
      await tuneOnValidation(method, candidates, settings.tuningSeeds, async (h, seed) => {
        const cell: SplitCell = { method, seed, learningRate: h.learningRate, variant: method === 'split' ? MAIN_INTERFACE : null };
        const r = await cachedRun(ctx.cache, SPLIT_CACHE_PREFIX, splitCacheKey(settings, 'validation', cell), () => steps.run(cell, 'validation'), finished);
        count(r);
        ctx.log(`split: tuning ${method} lr ${h.learningRate} seed ${seed}: validation ${r.value.accuracy.toFixed(3)}${r.stored ? ' (stored run)' : ''}`);
        // A run that did not finish all its rounds is not eligible (NaN).
        return finished(r.value) ? r.value.accuracy : Number.NaN;
      }),
    );
  }
  const rates = Object.fromEntries(SPLIT_METHODS.map((m) => [m, tuning.find((t) => t.method === m)!.chosen.learningRate])) as Record<SplitMethod, number>;
  ctx.log(`split: chosen on validation: split lr ${rates.split}, adapter-only lr ${rates.adapters}, centralized split lr ${rates.centralized}`);
  const runs: SplitRun[] = [];
  let skipped = 0;
  for (const [i, item] of splitPlan(settings, seeds).entries()) {
    const cell: SplitCell = { ...item, learningRate: rates[item.method] };
    const r = await cachedCell(ctx, i, {
      prefix: SPLIT_CACHE_PREFIX,
      key: splitCacheKey(settings, 'test', cell),
      compute: () => steps.run(cell, 'test'),
      keep: finished,
    });
    if (r === null) {
      skipped += 1;
      continue;
    }
    count(r);
    runs.push(r.value);
    const v = cell.variant === null ? '' : ` z ${cell.variant.noiseMultiplier} ${cell.variant.encoding}`;
    ctx.log(
      `split: ${cell.method}${v} seed ${cell.seed}: test accuracy ${r.value.accuracy.toFixed(3)} (${r.stored ? 'stored run, ' : ''}${(r.value.durationMs / 1000).toFixed(1)} s)`,
    );
  }
  const timing = await steps.timing(seeds[0]!, rates);
  ctx.log(
    `split: one client's round (${timing.numExamples} examples): adapter-only ${medianOf(timing.adaptersRoundMs).toFixed(0)} ms, split ${medianOf(timing.splitRoundMs).toFixed(0)} ms of which waiting ${medianOf(timing.splitWaitMs).toFixed(0)} ms`,
  );
  return { tuning, runs, timing, stored, total, skipped };
}

/** The clients' shards at `seed` exactly as headless clients of that partition compute them. */
async function shardsAt(settings: SplitSettings, seed: number, models: ModelFactory): Promise<HeadlessShard[]> {
  const maxExamples = Math.floor(settings.totalExamples / settings.numClients);
  const args = [
    '--alpha',
    String(settings.alpha),
    '--modality-kinds',
    settings.modalityKinds,
    '--max-examples',
    String(maxExamples),
    '--seed',
    String(seed),
    '--eval-examples',
    '0',
  ];
  return headlessShards(settings.dataset, settings.numClients, args, models);
}

/** The clients of `seed`'s partition: ids in index order, seeds as headless clients derive them (seed · 1000 + i). */
export async function clientsAt(settings: SplitSettings, seed: number, models: ModelFactory): Promise<SimulatedClient[]> {
  const shards = await shardsAt(settings, seed, models);
  const datasets = await Promise.all(shards.map((s) => loadShard(settings.dataset as BuiltinName, s)));
  return datasets.map((dataset, i) => ({ clientId: `client-${String(i).padStart(3, '0')}`, seed: seed * 1000 + i, dataset }));
}

function holdersOf(clients: readonly SimulatedClient[]): Partial<Record<Modality, number>> {
  const holders: Partial<Record<Modality, number>> = {};
  for (const c of clients) for (const m of c.dataset.modalities) holders[m] = (holders[m] ?? 0) + 1;
  return holders;
}

/** One training run of `cell` on `clients`, scored on `data`. */
export async function runCell(
  settings: SplitSettings,
  cell: SplitCell,
  clients: readonly SimulatedClient[],
  data: LocalDataset,
  models: ModelFactory,
): Promise<SplitRun> {
  const task = splitTaskOf(settings, cell);
  const base = {
    method: cell.method,
    seed: cell.seed,
    learningRate: cell.learningRate,
    variant: cell.variant,
    numExamples: clients.reduce((n, c) => n + c.dataset.numExamples, 0),
    modalityHolders: holdersOf(clients),
  };
  if (cell.method === 'centralized') {
    const trained = await trainCentralizedSplit({
      task,
      datasets: clients.map((c) => c.dataset),
      models,
      // The federated clients see their data once per local epoch of every round: the same example budget.
      epochs: settings.rounds * settings.localEpochs,
      seed: cell.seed,
    });
    const scored = await evaluateGlobal(task, trained.global, data, models);
    return { ...base, completedRounds: settings.rounds, ...scored, traffic: null, durationMs: trained.durationMs };
  }
  const result = await simulateFederated({ task, clients, models });
  const scored = await evaluateGlobal(task, result.global, data, models);
  return { ...base, completedRounds: result.completedRounds, ...scored, traffic: trafficOf(result.rounds), durationMs: result.durationMs };
}

/** One client's round, `reps` times per federated method, interleaved so background load falls on both alike. */
async function deviceTiming(
  settings: SplitSettings,
  client: SimulatedClient,
  seed: number,
  rates: Readonly<Record<SplitMethod, number>>,
  models: ModelFactory,
): Promise<DeviceTiming> {
  const one = { ...settings, rounds: 1, numClients: 1, totalExamples: Math.max(1, client.dataset.numExamples) };
  const out = {
    adaptersRoundMs: [] as number[],
    adaptersTrainMs: [] as number[],
    splitRoundMs: [] as number[],
    splitStepDeviceMs: [] as number[],
    splitWaitMs: [] as number[],
  };
  const adapterTask = splitTaskOf(one, { method: 'adapters', seed, learningRate: rates.adapters, variant: null });
  for (let rep = 0; rep < settings.timingReps; rep++) {
    const adapters = await simulateFederated({ task: adapterTask, clients: [client], models });
    out.adaptersRoundMs.push(adapters.rounds[0]![0]!.roundMs);
    out.adaptersTrainMs.push(await timeLocalTraining(adapterTask, client, models));
    const split = await simulateFederated({
      task: splitTaskOf(one, { method: 'split', seed, learningRate: rates.split, variant: MAIN_INTERFACE }),
      clients: [client],
      models,
    });
    const f = split.rounds[0]![0]!;
    out.splitRoundMs.push(f.roundMs);
    out.splitStepDeviceMs.push(f.deviceMs);
    out.splitWaitMs.push(f.waitMs);
  }
  return { numExamples: client.dataset.numExamples, examplesSeen: client.dataset.numExamples * settings.localEpochs, ...out };
}

/** Real data and models behind {@link SplitSteps}; `close` frees the models. */
async function realSteps(
  settings: SplitSettings,
  log: (line: string) => void,
): Promise<{ steps: SplitSteps; splits: EvaluationSplitInfo; loadMs: number; close: () => void }> {
  const t0 = performance.now();
  const { validation, test, info } = await loadEvaluationSplits(settings.dataset, settings);
  const loadMs = performance.now() - t0;
  await useNodeBackend('wasm');
  const models = createNodeDigitsFactory({ adapterAlpha: BASE_TASK.model.adapterAlpha });
  const clients = new Map<number, Promise<SimulatedClient[]>>();
  const clientsOf = (seed: number): Promise<SimulatedClient[]> => {
    let c = clients.get(seed);
    if (c === undefined) {
      c = clientsAt(settings, seed, models);
      clients.set(seed, c);
    }
    return c;
  };
  const steps: SplitSteps = {
    run: async (cell, scored) => runCell(settings, cell, await clientsOf(cell.seed), scored === 'validation' ? validation : test, models),
    timing: async (seed, rates) => {
      const bySize = [...(await clientsOf(seed))].sort((a, b) => a.dataset.numExamples - b.dataset.numExamples || a.clientId.localeCompare(b.clientId));
      const client = bySize[Math.floor(bySize.length / 2)]!;
      log(`split: timing ${settings.timingReps} rounds of ${client.clientId} (${client.dataset.numExamples} examples) per method`);
      return deviceTiming(settings, client, seed, rates, models);
    },
  };
  return { steps, splits: info, loadMs, close: () => models.dispose() };
}

/** Runs the section (see the module comment). */
export async function runSplit(ctx: ExperimentContext, options: { readonly settings?: Partial<SplitSettings> } = {}): Promise<SectionResult> {
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  const loadBefore = loadavg()[0]!;
  const settings: SplitSettings = { ...(ctx.quick ? SPLIT_QUICK : SPLIT_FULL), ...options.settings };
  checkSplitSettings(settings);
  if (ctx.seeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'runSplit: needs at least one seed');
  const seeds = evaluationSeeds(ctx.seeds, settings);
  checkDisjointSeeds(settings.tuningSeeds, seeds);
  const real = await realSteps(settings, ctx.log);
  let runs: SplitRuns;
  try {
    runs = await splitRuns(ctx, settings, seeds, real.steps);
  } finally {
    real.close();
  }
  const cpu = process.cpuUsage(cpuBefore);
  return splitReport({
    settings,
    seeds,
    splits: real.splits,
    loadMs: real.loadMs,
    ...runs,
    durationMs: Date.now() - started,
    quick: ctx.quick,
    machine: { cores: cpus().length, loadAverage: [loadBefore, loadavg()[0]!], cpuMs: (cpu.user + cpu.system) / 1000 },
  });
}

/** Recomputes stored runs from their keys alone (`--verify`): the settings in the key over the full grid's, the cell, the subset. */
export const SPLIT_VERIFY: VerifySpec = {
  prefix: SPLIT_CACHE_PREFIX,
  owns: (key) => (key as { section?: unknown } | null)?.section === 'split',
  retired: (key) => {
    const engine = (key as { settings?: { engine?: unknown } } | null)?.settings?.engine;
    return engine === SPLIT_ENGINE ? null : `stored under split engine ${String(engine)}; the code is at ${SPLIT_ENGINE}`;
  },
  kindOf: (key) => {
    const k = key as { scored: Scored; cell: SplitCell };
    return `${k.scored} ${k.cell.method}`;
  },
  label: (key) => {
    const { cell } = key as { cell: SplitCell };
    const v = cell.variant === null ? '' : `z ${cell.variant.noiseMultiplier} ${cell.variant.encoding}, `;
    return `${v}lr ${cell.learningRate}, seed ${cell.seed}`;
  },
  open: () => {
    const opened = new Map<string, Promise<Awaited<ReturnType<typeof realSteps>>>>();
    return Promise.resolve({
      recompute: async (key: unknown) => {
        const { settings: stored, scored, cell } = key as { settings: Record<string, unknown>; scored: Scored; cell: SplitCell };
        const { engine: _engine, ...fields } = stored;
        const settings = { ...SPLIT_FULL, ...fields } as SplitSettings;
        const id = JSON.stringify(fields);
        let real = opened.get(id);
        if (real === undefined) {
          real = realSteps(settings, () => undefined);
          opened.set(id, real);
        }
        return (await real).steps.run(cell, scored);
      },
      close: () => {
        for (const r of opened.values()) void r.then((x) => x.close());
      },
    });
  },
};

/** The section entry of the split experiment. */
export const SPLIT_SECTION: SectionEntry = { id: 'split', run: (ctx) => runSplit(ctx), verify: SPLIT_VERIFY };
