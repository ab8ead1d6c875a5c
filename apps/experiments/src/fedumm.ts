/**
 * FedUMM's Tables 1, 3 and 4 (Su et al. 2026, arXiv:2601.15390) on spoken & written digits: a frozen
 * pretrained base with LoRA adapters, FedAvg over adapters only. Table 1: federated accuracy over
 * Dirichlet α × number of clients, against centralized training on the same data; Table 3:
 * centralized full fine-tuning vs centralized LoRA vs federated LoRA; Table 4: bytes one client
 * sends per round (adapters in fp32, fp16 and int8 against the full model, sizes of real encoded
 * updates) and one client's local training time per round.
 *
 * The data budget is fixed: each configuration deals about `totalExamples` training examples over
 * its clients (each keeps at most totalExamples / K of its Dirichlet share), so more clients means
 * smaller local datasets, as in the paper. Every accuracy is measured here on one fixed test subset.
 */
import { cpus, loadavg } from 'node:os';
import { MODALITIES, createRng, decodeUpdate, parametersDelta, shuffled } from '@chorus/fl-core';
import type { UpdateEncoding } from '@chorus/fl-core';
import { datasetFromSamples, evaluateLocally } from '@chorus/client';
import type { BuiltinSample, LocalDataset, ModelFactory } from '@chorus/client';
import { createNodeDigitsFactory, headlessOptions, loadShard, parseCliArgs, partitionBuiltin, useNodeBackend } from '@chorus/client/node';
import type { HeadlessShard } from '@chorus/client/node';
import type { TaskConfig } from '@chorus/coordinator';
import { runSimulation, modelRequestOf } from '@chorus/coordinator/simulate';
import { openBuiltin, readManifest } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import type { MultimodalModel } from '@chorus/models';
import { ExperimentsError } from './errors.js';
import { encodedBytes, medianOf, trainCentralized, trainedParameters } from './fedummTraining.js';
import type { TrainingMode } from './fedummTraining.js';
import type { Check, ExperimentContext, Figure, SectionResult } from './section.js';
import { formatMeanStd, markdownTable, meanStd } from './stats.js';
import { barChart } from './svg.js';
import { BASE_TASK, experimentTask } from './tasks.js';

const ENCODINGS: readonly UpdateEncoding[] = ['fp32', 'fp16', 'int8'];

/** The grid of the section. */
export interface FedUmmSettings {
  /** Dirichlet concentrations of the label split (lower: more heterogeneous). */
  readonly alphas: readonly number[];
  readonly clientCounts: readonly number[];
  readonly rounds: number;
  /** Training examples dealt over the clients of one configuration (each keeps ≤ totalExamples / K). */
  readonly totalExamples: number;
  /** Size of the fixed test subset. */
  readonly testExamples: number;
  /** The configuration of Table 3 and of the timing and byte measurements. */
  readonly reference: { readonly alpha: number; readonly numClients: number };
  /** Repetitions of one client's local round, per training mode (the median is reported). */
  readonly timingReps: number;
  /**
   * Adam learning rates of centralized full fine-tuning: the task's own, and the models package's
   * default 1e-3, fixed beforehand (both reported, neither chosen on the test split).
   */
  readonly fullLearningRates: readonly number[];
}

/** The reduced grid of `--quick` (CI): the corners of the paper's grid, few rounds. */
export const FEDUMM_QUICK: FedUmmSettings = {
  alphas: [0.1, 1.0],
  clientCounts: [2, 8],
  rounds: 3,
  totalExamples: 320,
  testExamples: 256,
  reference: { alpha: 1.0, numClients: 8 },
  timingReps: 3,
  fullLearningRates: [BASE_TASK.learningRate, 0.001],
};

/** The paper's grid. */
export const FEDUMM_FULL: FedUmmSettings = {
  alphas: [0.1, 0.5, 1.0],
  clientCounts: [2, 4, 8, 16],
  rounds: 5,
  totalExamples: 800,
  testExamples: 500,
  reference: { alpha: 0.5, numClients: 8 },
  timingReps: 5,
  fullLearningRates: [BASE_TASK.learningRate, 0.001],
};

/** One federated run of the grid. */
export interface GridRun {
  readonly alpha: number;
  readonly numClients: number;
  readonly seed: number;
  readonly status: string;
  readonly completedRounds: number;
  /** Training examples the clients held in all. */
  readonly numExamples: number;
  readonly accuracy: number;
  readonly durationMs: number;
}

/** The centralized runs of one seed, on the union of the reference configuration's client data. */
export interface CentralRun {
  readonly seed: number;
  readonly numExamples: number;
  readonly epochs: number;
  readonly initialAccuracy: number;
  readonly lora: CentralResult;
  /** Full fine-tuning, one run per learning rate of `fullLearningRates`. */
  readonly full: readonly CentralResult[];
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

function clientArgs(settings: FedUmmSettings, alpha: number, numClients: number, seed: number): string[] {
  return ['--alpha', String(alpha), '--max-examples', String(maxPerClient(settings, numClients)), '--seed', String(seed), '--eval-examples', '0'];
}

function maxPerClient(settings: FedUmmSettings, numClients: number): number {
  return Math.max(1, Math.floor(settings.totalExamples / numClients));
}

/** The task of one grid cell: FedAvg over adapters, fp32 uploads, every client every round. */
export function fedUmmTask(settings: FedUmmSettings, alpha: number, numClients: number, seed: number): TaskConfig {
  return experimentTask(`fedumm-a${alpha}-k${numClients}-s${seed}`, {
    strategy: { name: 'fedavg' },
    rounds: settings.rounds,
    clientsPerRound: numClients,
    minClients: numClients,
    // Accuracy is measured here on the fixed test subset; the coordinator's own evaluation would only add time.
    evaluation: { probeExamples: 16, testExamples: 0 },
    seed,
  });
}

/** The fixed test subset: one seeded draw of the test split, every modality. */
async function loadTestSubset(numExamples: number): Promise<LocalDataset> {
  const source = fileSource();
  const split = await openBuiltin(source, await readManifest(source), 'digits', 'test');
  const n = Math.min(numExamples, split.numExamples);
  const indices = shuffled(
    createRng(0xfed0),
    Array.from({ length: split.numExamples }, (_, i) => i),
  )
    .slice(0, n)
    .sort((a, b) => a - b);
  return datasetFromSamples((await split.read(indices)) as BuiltinSample[], MODALITIES);
}

/** The clients' shards exactly as the headless clients of that run compute them. */
async function clientShards(settings: FedUmmSettings, alpha: number, numClients: number, seed: number, models: ModelFactory): Promise<HeadlessShard[]> {
  const cli = parseCliArgs([
    '--url',
    'http://127.0.0.1:1',
    '--task',
    'shards',
    '--clients',
    String(numClients),
    '--dataset',
    'digits',
    '--modalities',
    MODALITIES.join(','),
    ...clientArgs(settings, alpha, numClients, seed),
  ]);
  return partitionBuiltin(headlessOptions(cli, 'wasm', models));
}

async function accuracyOf(model: MultimodalModel, test: LocalDataset): Promise<number> {
  return (
    await evaluateLocally(
      model,
      test,
      Array.from({ length: test.numExamples }, (_, i) => i),
    )
  ).accuracy;
}

async function gridRun(settings: FedUmmSettings, alpha: number, numClients: number, seed: number, test: LocalDataset, models: ModelFactory): Promise<GridRun> {
  const task = fedUmmTask(settings, alpha, numClients, seed);
  const shards = await clientShards(settings, alpha, numClients, seed, models);
  let finalBytes: Uint8Array | null = null;
  const report = await runSimulation({
    task,
    numClients,
    clientArgs: clientArgs(settings, alpha, numClients, seed),
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
      alpha,
      numClients,
      seed,
      status: report.status,
      completedRounds: report.completedRounds,
      numExamples: shards.reduce((n, s) => n + s.indices.length, 0),
      accuracy: await accuracyOf(model, test),
      durationMs: report.durationMs,
    };
  } finally {
    model.dispose();
  }
}

async function centralRun(
  settings: FedUmmSettings,
  seed: number,
  datasets: readonly LocalDataset[],
  test: LocalDataset,
  models: ModelFactory,
): Promise<CentralRun> {
  const task = fedUmmTask(settings, settings.reference.alpha, settings.reference.numClients, seed);
  // The federated clients see their data once per round (one local epoch, every client every round).
  const epochs = settings.rounds * task.localEpochs;
  const run = async (mode: TrainingMode | null, learningRate: number): Promise<CentralResult> => {
    const model = await models.create({ ...modelRequestOf(task), learningRate });
    try {
      const trained =
        mode === null ? { durationMs: 0, numSteps: 0 } : await trainCentralized({ model, datasets, epochs, batchSize: task.batchSize, mode, seed });
      return { learningRate, accuracy: await accuracyOf(model, test), durationMs: trained.durationMs, numSteps: trained.numSteps };
    } finally {
      model.dispose();
    }
  };
  const initial = await run(null, task.learningRate);
  const lora = await run('adapters', task.learningRate);
  const full: CentralResult[] = [];
  for (const learningRate of settings.fullLearningRates) full.push(await run('full', learningRate));
  return { seed, numExamples: datasets.reduce((n, d) => n + d.numExamples, 0), epochs, initialAccuracy: initial.accuracy, lora, full };
}

/** One client's round, `reps` times per mode: one local epoch, timed, and its update encoded in every encoding. */
async function clientCosts(settings: FedUmmSettings, client: LocalDataset, models: ModelFactory): Promise<ClientCost[]> {
  const task = fedUmmTask(settings, settings.reference.alpha, settings.reference.numClients, 1);
  const costs: ClientCost[] = [];
  const times: Record<TrainingMode, number[]> = { adapters: [], full: [] };
  const sizes: Partial<Record<TrainingMode, { numScalars: number; bytes: Record<UpdateEncoding, number> }>> = {};
  // Interleaved, so background load falls on both modes alike.
  for (let rep = 0; rep < settings.timingReps; rep++) {
    for (const mode of ['adapters', 'full'] as const) {
      const model = await models.create(modelRequestOf(task));
      try {
        const before = trainedParameters(model, mode);
        const run = await trainCentralized({ model, datasets: [client], epochs: task.localEpochs, batchSize: task.batchSize, mode, seed: rep });
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

/** Runs the section: the grid for every seed, then the centralized runs, then one client's costs. */
export async function runFedUmm(ctx: ExperimentContext): Promise<SectionResult> {
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  const loadBefore = loadavg()[0]!;
  const settings = ctx.quick ? FEDUMM_QUICK : FEDUMM_FULL;
  const seeds = [...ctx.seeds];
  if (seeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'runFedUmm: needs at least one seed');
  await useNodeBackend('wasm');
  const test = await loadTestSubset(settings.testExamples);
  const models = createNodeDigitsFactory({ adapterAlpha: BASE_TASK.model.adapterAlpha });
  const grid: GridRun[] = [];
  const central: CentralRun[] = [];
  let costs: ClientCost[] = [];
  try {
    for (const seed of seeds) {
      for (const alpha of settings.alphas) {
        for (const numClients of settings.clientCounts) {
          const run = await gridRun(settings, alpha, numClients, seed, test, models);
          grid.push(run);
          ctx.log(
            `fedumm: α ${alpha} × ${numClients} clients, seed ${seed}: ${run.completedRounds}/${settings.rounds} rounds, ${run.numExamples} examples, accuracy ${run.accuracy.toFixed(3)} (${(run.durationMs / 1000).toFixed(1)} s)`,
          );
        }
      }
      const { alpha, numClients } = settings.reference;
      const shards = await clientShards(settings, alpha, numClients, seed, models);
      const datasets = await Promise.all(shards.map((s) => loadShard('digits', s)));
      const c = await centralRun(settings, seed, datasets, test, models);
      central.push(c);
      ctx.log(
        `fedumm: centralized seed ${seed} (${c.numExamples} examples, ${c.epochs} epochs): LoRA ${c.lora.accuracy.toFixed(3)}, full fine-tuning ${c.full.map((f) => `${f.accuracy.toFixed(3)} (lr ${f.learningRate})`).join(', ')}, initial ${c.initialAccuracy.toFixed(3)}`,
      );
      if (costs.length === 0) {
        // The median-sized client of the reference configuration.
        const bySize = [...datasets].sort((a, b) => a.numExamples - b.numExamples);
        costs = await clientCosts(settings, bySize[Math.floor(bySize.length / 2)]!, models);
        ctx.log(`fedumm: one client's round: LoRA ${medianOf(costs[0]!.trainMs).toFixed(0)} ms, full ${medianOf(costs[1]!.trainMs).toFixed(0)} ms`);
      }
    }
  } finally {
    models.dispose();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const machine = { cores: cpus().length, loadAverage: [loadBefore, loadavg()[0]!] as const, cpuMs: (cpu.user + cpu.system) / 1000 };
  return fedUmmReport({ settings, seeds, grid, central, costs, durationMs: Date.now() - started, quick: ctx.quick, machine });
}

/** What the report is built from. */
export interface FedUmmReportInput {
  readonly settings: FedUmmSettings;
  readonly seeds: readonly number[];
  readonly grid: readonly GridRun[];
  readonly central: readonly CentralRun[];
  readonly costs: readonly ClientCost[];
  readonly durationMs: number;
  readonly quick: boolean;
  /** Where the section ran: cores, 1-minute load average at start and end, and this process's CPU time. */
  readonly machine?: { readonly cores: number; readonly loadAverage: readonly [number, number]; readonly cpuMs: number };
}

const pct = (values: readonly number[]): string => formatMeanStd(values, { scale: 100, digits: 1 });
const kb = (bytes: number): string => (bytes / 1024).toFixed(1);

function cell(grid: readonly GridRun[], alpha: number, numClients: number): number[] {
  return grid.filter((r) => r.alpha === alpha && r.numClients === numClients).map((r) => r.accuracy);
}

/** The sanity checks `--quick` asserts; each fails on a broken pipeline or a broken claim. */
export function fedUmmChecks(input: Pick<FedUmmReportInput, 'settings' | 'grid' | 'central' | 'costs'>): Check[] {
  const { settings, grid, central, costs } = input;
  const unfinished = grid.filter((r) => r.status !== 'finished' || r.completedRounds !== settings.rounds);
  const initial = meanStd(central.map((c) => c.initialAccuracy)).mean;
  const federated = meanStd(grid.map((r) => r.accuracy)).mean;
  const lora = costs.find((c) => c.mode === 'adapters');
  const full = costs.find((c) => c.mode === 'full');
  const int8Ratio = lora ? lora.bytes.int8 / lora.bytes.fp32 : Number.NaN;
  const fullRatio = lora && full ? lora.bytes.fp32 / full.bytes.fp32 : Number.NaN;
  const timeRatio = lora && full ? medianOf(lora.trainMs) / medianOf(full.trainMs) : Number.NaN;
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
  ];
}

/** The section's Markdown, figure and raw numbers. */
export function fedUmmReport(input: FedUmmReportInput): SectionResult {
  const { settings, seeds, grid, central, costs, durationMs, quick, machine } = input;
  const centralLora = central.map((c) => c.lora.accuracy);
  const centralMean = meanStd(centralLora).mean;
  const diff = (values: readonly number[]): string => {
    const m = meanStd(values).mean;
    return Number.isFinite(m) && Number.isFinite(centralMean) ? `${m >= centralMean ? '+' : '−'}${(Math.abs(m - centralMean) * 100).toFixed(1)}` : '—';
  };
  const byAlpha = (alpha: number): number[] => grid.filter((r) => r.alpha === alpha).map((r) => r.accuracy);
  const table1 = markdownTable(
    ['Clients', ...settings.alphas.map((a) => `α = ${a}`), 'Avg.', 'examples held (mean)'],
    [
      ['Centralized (LoRA)', ...settings.alphas.map(() => '—'), pct(centralLora), String(Math.round(meanStd(central.map((c) => c.numExamples)).mean))],
      ...settings.clientCounts.map((k) => {
        const runs = grid.filter((r) => r.numClients === k);
        return [
          String(k),
          ...settings.alphas.map((a) => pct(cell(grid, a, k))),
          pct(runs.map((r) => r.accuracy)),
          String(Math.round(meanStd(runs.map((r) => r.numExamples)).mean)),
        ];
      }),
      ['vs. centralized (points)', ...settings.alphas.map((a) => diff(byAlpha(a))), diff(grid.map((r) => r.accuracy)), ''],
    ],
  );
  const lora = costs.find((c) => c.mode === 'adapters');
  const full = costs.find((c) => c.mode === 'full');
  const ref = settings.reference;
  const refRuns = grid.filter((r) => r.alpha === ref.alpha && r.numClients === ref.numClients).map((r) => r.accuracy);
  const table3 = markdownTable(
    ['Configuration', 'Acc. (%)', 'Upload per client per round (KB, fp32)', 'Privacy'],
    [
      ...settings.fullLearningRates.map((lr) => [
        `Centralized (full fine-tuning, learning rate ${lr})`,
        pct(central.map((c) => c.full.find((f) => f.learningRate === lr)?.accuracy).filter((v): v is number => v !== undefined)),
        '—',
        '✗',
      ]),
      ['Centralized + LoRA', pct(centralLora), '—', '✗'],
      [`Federated LoRA (FedAvg, K = ${ref.numClients}, α = ${ref.alpha})`, pct(refRuns), lora ? kb(lora.bytes.fp32) : '—', '✓'],
      ['Initial model (frozen base, fresh head)', pct(central.map((c) => c.initialAccuracy)), '—', '—'],
    ],
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
    file: 'fedumm-accuracy.svg',
    svg: barChart({
      title: 'FedUMM Table 1: federated LoRA accuracy by clients and Dirichlet α',
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
  const markdown = `
Frozen pretrained digits encoders with LoRA adapters (r = ${BASE_TASK.model.adapterRank}, α = ${BASE_TASK.model.adapterAlpha}) and the NAM head; FedAvg over the adapters and head only. Every client holds image, caption and speech. Each configuration deals about ${settings.totalExamples} training examples (Dirichlet label split, each client keeping at most ${settings.totalExamples} / K), ${settings.rounds} rounds of one local epoch (batch ${BASE_TASK.batchSize}, Adam, learning rate ${BASE_TASK.learningRate}), fp32 uploads; centralized runs train the same model on the union of the K = ${ref.numClients}, α = ${ref.alpha} clients' data for ${settings.rounds} epochs (the same passes over the data as the federated runs). Accuracy on a fixed subset of ${settings.testExamples} test examples, mean ± std over seeds ${seeds.join(', ')}.

**Table 1 — federated LoRA accuracy (%) by number of clients and heterogeneity.**

${table1}
![FedUMM Table 1](fedumm-accuracy.svg)

**Table 3 — training paradigm.**

${table3}
**Table 4 — cost per round of one client** (the median-sized client of K = ${ref.numClients}, α = ${ref.alpha}: ${lora?.numExamples ?? '—'} examples). Sizes are the bytes of the update message fl-core's codec encodes from an actual local round's delta (header and names included); the full-model update holds every base encoder weight and the head (the frozen GloVe table excluded). A client downloads the global model of the same tensors each round, so the download is about the fp32 figure of its row. Times are the wall-clock of one local epoch on the TF.js WASM backend in Node, one thread, on a shared 2-core machine.

${table4}
**Reading and differences from the paper.**
- Measured here: ${trendSentence(settings, grid)} For comparison, the paper (VQA v2) loses accuracy both ways: −4.9 points at α = 0.1 and −1.6 at α = 1.0 against centralized, more with more clients. Where a cell's spread overlaps its neighbours, these runs do not separate the settings.
- The paper fine-tunes BLIP3o on VQA v2 and GenEval with up to 16 clients on GPUs for many rounds; here the model is a small digits model whose frozen encoders were pretrained on the same classes, trained for ${settings.rounds} rounds on ${settings.totalExamples} examples, so the absolute accuracies say how far a short run gets, not what the model can reach.
- Full fine-tuning uses the same Adam as LoRA. At the task's learning rate (${BASE_TASK.learningRate}) it moves the whole pretrained base at once and can lose what the base knew; the second rate (1e-3, the models package's default, not searched) was added after a first quick run showed that, and both rows are always shown rather than the better one picked, since picking on these test numbers would be tuning on the test split.
- Federated full fine-tuning (the paper's FedAvg (Full) rows of Table 4) is not run: the runtime exchanges adapters only. Table 4 therefore compares the sizes and times of the two kinds of client round, not federated accuracies.
${shortRuns(settings, grid)}- Centralized training here is the single-process upper bound; there is no "single site" row (one client alone), which FedMM-X's LOCAL bound covers in its own section.
- Runtime of this section: ${minutes} min (${quick ? 'quick grid' : 'full grid'}, measured)${machine ? `, of which ${(machine.cpuMs / 60_000).toFixed(1)} min CPU time of its process, on ${machine.cores} cores with a load average of ${machine.loadAverage[0].toFixed(1)} at the start and ${machine.loadAverage[1].toFixed(1)} at the end (other work shared the machine, so the wall-clock time is longer than the work)` : ''}.${fullEstimate === null ? '' : ` The full grid (${FEDUMM_FULL.alphas.length} α × ${FEDUMM_FULL.clientCounts.length} client counts × 3 seeds, ${FEDUMM_FULL.rounds} rounds, ${FEDUMM_FULL.totalExamples} examples) is estimated at about ${fullEstimate.toFixed(0)} min from this run: per run, time ∝ rounds × examples, so each quick run's time is scaled by (${FEDUMM_FULL.rounds}·${FEDUMM_FULL.totalExamples}) / (${settings.rounds}·${settings.totalExamples}) and multiplied out over the full grid, and the centralized runs likewise${machine && durationMs > 0 ? ` (about ${((fullEstimate * machine.cpuMs) / durationMs).toFixed(0)} min on an otherwise idle machine, scaling the CPU time instead)` : ''}.`}
`;
  return {
    id: 'fedumm',
    title: 'FedUMM: frozen base + LoRA adapters (Tables 1, 3, 4)',
    markdown,
    figures: [figure],
    raw: {
      settings,
      seeds,
      task: fedUmmTask(settings, settings.reference.alpha, settings.reference.numClients, seeds[0] ?? 1),
      grid,
      central,
      costs,
      durationMs,
      machine: machine ?? null,
    },
    checks,
    durationMs,
  };
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
  const perCentral = meanStd(central.map((c) => c.lora.durationMs + c.full.reduce((t, f) => t + f.durationMs, 0))).mean * scale;
  const runs = FEDUMM_FULL.alphas.length * FEDUMM_FULL.clientCounts.length * 3;
  return (runs * perRun + 3 * perCentral) / 60_000;
}
