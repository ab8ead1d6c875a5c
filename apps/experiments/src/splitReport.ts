/**
 * The report of the device–edge split section (FedUMM, Su et al. 2026, arXiv:2601.15390 §3.3; see
 * split.ts): tables, figures, checks and the "what the split costs and buys" reading, all built from
 * the measured runs by pure functions, so every sentence follows the numbers it is given.
 */
import type { UpdateEncoding } from '@chorus/fl-core';
import { DEFAULT_SEEDS } from './args.js';
import { describeSplits } from './evaluationSplits.js';
import type { EvaluationSplitInfo } from './evaluationSplits.js';
import { medianOf } from './fedummTraining.js';
import type { Check, Figure, SectionResult } from './section.js';
import { MAIN_INTERFACE, SPLIT_FULL, SPLIT_METHODS, runEpsilon, splitPlan, splitTaskOf } from './splitGrid.js';
import type { DeviceTiming, SplitMethod, SplitRun, SplitSettings, Traffic } from './splitGrid.js';
import { formatMeanStd, formatPaired, markdownTable, meanStd, pairedDifference, pairedReading } from './stats.js';
import type { PairedDifference, SeededValue } from './stats.js';
import { barChart, lineChart } from './svg.js';
import { tuningTable } from './tuning.js';
import type { TuningRecord } from './tuning.js';

/** What the report is built from. */
export interface SplitReportInput {
  readonly settings: SplitSettings;
  readonly seeds: readonly number[];
  readonly splits: EvaluationSplitInfo;
  readonly tuning: readonly TuningRecord[];
  /** Every test run of the plan that this invocation has (run or read back). */
  readonly runs: readonly SplitRun[];
  readonly timing: DeviceTiming;
  /** Runs read from the run cache, of `total`, and runs left to other shards. */
  readonly stored: number;
  readonly total: number;
  readonly skipped: number;
  /** Time spent loading the validation and test subsets. */
  readonly loadMs: number;
  readonly durationMs: number;
  readonly quick: boolean;
  /** Cores, 1-minute load average at start and end, and this process's CPU time. */
  readonly machine?: { readonly cores: number; readonly loadAverage: readonly [number, number]; readonly cpuMs: number };
}

/** Display names of the methods. */
export const SPLIT_METHOD_LABELS: Readonly<Record<SplitMethod, string>> = {
  split: 'Split (device–edge, federated; z = 0, fp32)',
  adapters: 'Adapter-only FedUMM (FedAvg over LoRA adapters + head)',
  centralized: 'Centralized split (pooled data, no interface)',
};

/** Classes of the built-in datasets (both have 10). */
const NUM_CLASSES = 10;

const pct = (values: readonly number[]): string => formatMeanStd(values, { scale: 100, digits: 1 });
const kb = (bytes: number): string => (Number.isFinite(bytes) ? (bytes / 1024).toFixed(1) : '—');
const b = (bytes: number): string => (Number.isFinite(bytes) ? bytes.toFixed(0) : '—');
const eps = (e: number): string => (e === Infinity ? '∞' : Number.isFinite(e) ? (e >= 100 ? e.toFixed(0) : e.toFixed(2)) : '—');

function sameVariant(run: SplitRun, noiseMultiplier: number, encoding: UpdateEncoding): boolean {
  return run.variant !== null && run.variant.noiseMultiplier === noiseMultiplier && run.variant.encoding === encoding;
}

/** The runs of `method` (for the split: at the interface z, encoding; default the main one). */
export function runsOf(runs: readonly SplitRun[], method: SplitMethod, variant = MAIN_INTERFACE): SplitRun[] {
  return runs.filter((r) => r.method === method && (method !== 'split' || sameVariant(r, variant.noiseMultiplier, variant.encoding)));
}

const seeded = (runs: readonly SplitRun[]): SeededValue[] => runs.map((r) => ({ seed: r.seed, value: r.accuracy }));
const accuracies = (runs: readonly SplitRun[]): number[] => runs.map((r) => r.accuracy);
const meanOf = (values: readonly number[]): number => meanStd(values).mean;

/** Traffic of a set of runs, summed (their per-example and per-round figures are ratios of these sums). */
function pooledTraffic(runs: readonly SplitRun[]): Traffic | null {
  const all = runs.flatMap((r) => (r.traffic === null ? [] : [r.traffic]));
  if (all.length === 0) return null;
  const sum = (f: (t: Traffic) => number): number => all.reduce((s, t) => s + f(t), 0);
  const examplesSeen = sum((t) => t.examplesSeen);
  return {
    clientRounds: sum((t) => t.clientRounds),
    examplesSeen,
    numSteps: sum((t) => t.numSteps),
    stepBytesUp: sum((t) => t.stepBytesUp),
    stepBytesDown: sum((t) => t.stepBytesDown),
    downloadBytes: sum((t) => t.downloadBytes),
    downloadDeviceBytes: sum((t) => t.downloadDeviceBytes),
    uploadBytes: sum((t) => t.uploadBytes),
    clippedActivationsFraction: examplesSeen > 0 ? sum((t) => t.clippedActivationsFraction * t.examplesSeen) / examplesSeen : 0,
    clippedGradientsFraction: examplesSeen > 0 ? sum((t) => t.clippedGradientsFraction * t.examplesSeen) / examplesSeen : 0,
  };
}

/** One client's bytes each way, per example visited and per round: what crosses the network, with the model download's device part apart from the edge tensors. */
export interface BytesFigures {
  readonly stepUp: number;
  readonly upload: number;
  readonly up: number;
  readonly stepDown: number;
  readonly downloadDevice: number;
  /** Download of the device part and the split steps (what the device needs). */
  readonly down: number;
  /** The edge tensors a coordinator round start also carries today. */
  readonly downloadEdge: number;
}

/** `traffic` per example visited (`per` = 'example') or per client per round (`per` = 'round'). */
export function bytesFigures(traffic: Traffic, per: 'example' | 'round'): BytesFigures {
  const n = per === 'example' ? traffic.examplesSeen : traffic.clientRounds;
  const f = (v: number): number => (n > 0 ? v / n : Number.NaN);
  return {
    stepUp: f(traffic.stepBytesUp),
    upload: f(traffic.uploadBytes),
    up: f(traffic.stepBytesUp + traffic.uploadBytes),
    stepDown: f(traffic.stepBytesDown),
    downloadDevice: f(traffic.downloadDeviceBytes),
    down: f(traffic.stepBytesDown + traffic.downloadDeviceBytes),
    downloadEdge: f(traffic.downloadBytes - traffic.downloadDeviceBytes),
  };
}

/** The rows of the bytes tables: adapter-only, then the split in each encoding at z = 0. */
function bytesRows(input: Pick<SplitReportInput, 'runs' | 'settings'>): { label: string; traffic: Traffic }[] {
  const rows: { label: string; traffic: Traffic | null }[] = [
    { label: 'Adapter-only FedUMM', traffic: pooledTraffic(runsOf(input.runs, 'adapters')) },
    ...input.settings.encodings.map((e) => ({
      label: `Split, ${e} both ways (z = 0)`,
      traffic: pooledTraffic(runsOf(input.runs, 'split', { noiseMultiplier: 0, encoding: e })),
    })),
  ];
  return rows.flatMap((r) => (r.traffic === null ? [] : [{ label: r.label, traffic: r.traffic }]));
}

/** Per-example device compute of one client's round, by what is counted (ms per example visited, medians over repetitions). */
export function deviceMsPerExample(timing: DeviceTiming): {
  adapters: number;
  adaptersSteps: number;
  splitDevice: number;
  splitSteps: number;
  splitWait: number;
} {
  const n = timing.examplesSeen;
  const per = (values: readonly number[]): number => (n > 0 ? medianOf(values) / n : Number.NaN);
  return {
    adapters: per(timing.adaptersRoundMs),
    adaptersSteps: per(timing.adaptersTrainMs),
    splitDevice: per(timing.splitRoundMs.map((ms, i) => ms - (timing.splitWaitMs[i] ?? 0))),
    splitSteps: per(timing.splitStepDeviceMs),
    splitWait: per(timing.splitWaitMs),
  };
}

/** Each noise multiplier's rows: accuracy over seeds, paired against z = 0, and the run's per-example ε. */
export function noiseRows(input: Pick<SplitReportInput, 'runs' | 'settings'>): {
  z: number;
  runs: SplitRun[];
  vsMain: PairedDifference;
  epsilon: number;
  releasesPerExample: number;
}[] {
  const main = seeded(runsOf(input.runs, 'split'));
  return [...input.settings.noiseMultipliers]
    .sort((a, b) => a - b)
    .map((z) => {
      const runs = runsOf(input.runs, 'split', { noiseMultiplier: z, encoding: 'fp32' });
      return { z, runs, vsMain: pairedDifference(seeded(runs), main), ...runEpsilon(input.settings, z) };
    });
}

/** The sanity checks `--quick` asserts; each fails on a broken pipeline or a broken claim. */
export function splitChecks(input: Pick<SplitReportInput, 'settings' | 'seeds' | 'tuning' | 'runs' | 'skipped'>): Check[] {
  const { settings, runs } = input;
  const expected = splitPlan(settings, input.seeds).length;
  const unfinished = runs.filter((r) => r.completedRounds !== settings.rounds || !Number.isFinite(r.accuracy));
  const rateOf = (m: SplitMethod): number | undefined => input.tuning.find((t) => t.method === m)?.chosen.learningRate;
  const wrongRate = runs.filter((r) => r.learningRate !== rateOf(r.method));
  const overlap = settings.tuningSeeds.filter((s) => input.seeds.includes(s));
  const split = meanOf(accuracies(runsOf(runs, 'split')));
  const holders = runs[0]?.modalityHolders ?? {};
  const holderCounts = Object.values(holders);
  const splitRuns = runs.filter((r) => r.method === 'split');
  const noBytes = splitRuns.filter((r) => r.traffic === null || !(r.traffic.stepBytesUp > 0 && r.traffic.stepBytesDown > 0 && r.traffic.uploadBytes > 0));
  const adapterSteps = runsOf(runs, 'adapters').filter((r) => r.traffic === null || r.traffic.stepBytesUp !== 0 || r.traffic.stepBytesDown !== 0);
  const stepPerExample = settings.encodings.map((e) => {
    const t = pooledTraffic(runsOf(runs, 'split', { noiseMultiplier: 0, encoding: e }));
    return { e, up: t ? t.stepBytesUp / t.examplesSeen : Number.NaN, down: t ? t.stepBytesDown / t.examplesSeen : Number.NaN };
  });
  const order: UpdateEncoding[] = ['fp32', 'fp16', 'int8'];
  const ordered = stepPerExample.filter((s) => Number.isFinite(s.up)).sort((a, b) => order.indexOf(a.e) - order.indexOf(b.e));
  const shrinks = ordered.length >= 2 && ordered.every((s, i) => i === 0 || (s.up < ordered[i - 1]!.up && s.down < ordered[i - 1]!.down));
  const epsilons = [...settings.noiseMultipliers].sort((a, b) => a - b).map((z) => ({ z, epsilon: runEpsilon(settings, z).epsilon }));
  const positive = epsilons.filter((e) => e.z > 0);
  const decreasing =
    epsilons.filter((e) => e.z === 0).every((e) => e.epsilon === Infinity) &&
    positive.every((e, i) => Number.isFinite(e.epsilon) && e.epsilon > 0 && (i === 0 || e.epsilon < positive[i - 1]!.epsilon));
  return [
    {
      name: 'every run of the plan is there and finished all its rounds',
      ok: runs.length === expected && unfinished.length === 0,
      detail:
        runs.length === expected && unfinished.length === 0
          ? `${runs.length} runs × ${settings.rounds} rounds`
          : `${runs.length} of ${expected} runs${unfinished.length > 0 ? `; unfinished: ${unfinished.map((r) => `${r.method} s${r.seed}`).join(', ')}` : ''}${input.skipped > 0 ? `; ${input.skipped} left to other shards` : ''}`,
    },
    {
      name: 'every test run used its method’s learning rate chosen on validation, with tuning seeds apart from the evaluation seeds',
      ok: input.tuning.length === SPLIT_METHODS.length && wrongRate.length === 0 && overlap.length === 0,
      detail:
        wrongRate.length + overlap.length === 0 && input.tuning.length === SPLIT_METHODS.length
          ? `${SPLIT_METHODS.map((m) => `${m} ${rateOf(m)}`).join(', ')} (tuning seeds ${settings.tuningSeeds.join(', ')})`
          : [
              `${input.tuning.length} of ${SPLIT_METHODS.length} tuned`,
              ...wrongRate.map((r) => `${r.method} s${r.seed} ran at ${r.learningRate}`),
              ...overlap.map((s) => `seed ${s} in both`),
            ].join('; '),
    },
    {
      name: 'clients hold modality subsets (each modality held by some but not every client)',
      ok:
        holderCounts.length === 3 &&
        holderCounts.every((n) => n !== undefined && n > 0 && n <= settings.numClients) &&
        holderCounts.some((n) => n! < settings.numClients),
      detail: `of ${settings.numClients} clients (seed ${runs[0]?.seed ?? '—'}): ${Object.entries(holders)
        .map(([m, n]) => `${m} ${n}`)
        .join(', ')}`,
    },
    {
      name: `split training is above chance (mean test accuracy ≥ 2 × 1/${NUM_CLASSES})`,
      ok: split >= 2 / NUM_CLASSES,
      detail: `${(split * 100).toFixed(1)}% over ${runsOf(runs, 'split').length} seeds`,
    },
    {
      name: 'split steps carry bytes both ways and every split client uploads a delta; adapter-only rounds carry no split step',
      ok: splitRuns.length > 0 && noBytes.length === 0 && adapterSteps.length === 0,
      detail: `${splitRuns.length - noBytes.length} of ${splitRuns.length} split runs with step bytes up and down; ${adapterSteps.length} adapter-only runs with step bytes`,
    },
    {
      name: 'compression shrinks the split steps: fewer bytes per example each way from fp32 to fp16 to int8',
      ok: shrinks,
      detail: ordered.map((s) => `${s.e} ${b(s.up)} B up / ${b(s.down)} B down`).join('; ') || 'not measured',
    },
    {
      name: 'per-example ε is ∞ without noise and decreases as z grows',
      ok: decreasing,
      detail: epsilons.map((e) => `z ${e.z}: ε ${eps(e.epsilon)}`).join(', '),
    },
  ];
}

/** Minutes the full grid would take, scaled from this (quick) invocation's measured times; null when nothing was run here. */
export function estimateFullMinutes(input: Pick<SplitReportInput, 'settings' | 'seeds' | 'total' | 'stored' | 'loadMs' | 'durationMs'>): number | null {
  const made = input.total - input.stored;
  if (made <= 0) return null;
  const { settings } = input;
  const perRun = (input.durationMs - input.loadMs) / made;
  const scale = (SPLIT_FULL.rounds * SPLIT_FULL.totalExamples) / (settings.rounds * settings.totalExamples);
  const fullSeeds = DEFAULT_SEEDS.full.split(',').length;
  const fullRuns =
    SPLIT_METHODS.length * SPLIT_FULL.learningRates.length * SPLIT_FULL.tuningSeeds.length +
    splitPlan(
      SPLIT_FULL,
      Array.from({ length: fullSeeds }, (_, i) => i + 1),
    ).length;
  const load = (input.loadMs * (SPLIT_FULL.validationExamples + SPLIT_FULL.testExamples)) / (settings.validationExamples + settings.testExamples);
  return (fullRuns * perRun * scale + load) / 60_000;
}

/** A sentence naming the methods whose chosen learning rate is the smallest or largest of the grid (a better one may lie outside it); empty when none is. */
export function gridEdgeSentence(tuning: readonly TuningRecord[], learningRates: readonly number[]): string {
  const lo = Math.min(...learningRates);
  const hi = Math.max(...learningRates);
  const atEdge = tuning.filter((t) => t.chosen.learningRate === lo || t.chosen.learningRate === hi);
  if (atEdge.length === 0) return 'Every chosen rate lies inside the grid.';
  const names = atEdge.map((t) => `${SPLIT_METHOD_LABELS[t.method as SplitMethod] ?? t.method} (${t.chosen.learningRate})`);
  return atEdge.length === 1
    ? `The rate chosen for ${names[0]} is at the edge of the grid, so a better one may lie outside it.`
    : `The rates chosen for ${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are at the edge of the grid, so better ones may lie outside it.`;
}

/** What a paired interval says, in a few words. */
export function intervalReading(d: PairedDifference): string {
  if (d.n === 0) return 'no seed holds both';
  if (d.includesZero === null) return 'one seed: no interval';
  return d.includesZero
    ? `interval includes 0: not separated by these ${d.n} seeds`
    : `interval excludes 0: ${d.mean > 0 ? 'above' : 'below'} over these ${d.n} seeds`;
}

/** δ as `1e-5`. */
const deltaText = (delta: number): string => delta.toExponential().replace('e-', 'e−').replace(/\.0+e/, 'e');

/** "1.8×" from a ratio. */
function times(ratio: number): string {
  if (!Number.isFinite(ratio)) return 'an unmeasured multiple of';
  return `${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2)}×`;
}

/** The generated "what the split costs and buys" paragraph (no sentence is fixed in advance: each compares measured values). */
export function costsAndBuys(input: Pick<SplitReportInput, 'runs' | 'settings' | 'timing'>): { paragraph: string; losses: string[] } {
  const { runs } = input;
  const split = seeded(runsOf(runs, 'split'));
  const adapters = seeded(runsOf(runs, 'adapters'));
  const central = seeded(runsOf(runs, 'centralized'));
  const vsAdapters = pairedDifference(split, adapters);
  const vsCentral = pairedDifference(split, central);
  const losses: string[] = [];
  const sentences: string[] = [];
  sentences.push(`Accuracy: ${pairedReading('split', 'adapter-only FedUMM', vsAdapters, { scale: 100 })}`);
  sentences.push(pairedReading('Split', 'centralized split', vsCentral, { scale: 100 }));
  if (vsAdapters.n > 0 && vsAdapters.mean < 0)
    losses.push(
      `accuracy against adapter-only FedUMM (${formatPaired(vsAdapters, { scale: 100 })} points${vsAdapters.includesZero === false ? ', interval below 0' : vsAdapters.includesZero === null ? ', one seed' : ', interval includes 0'})`,
    );
  const splitTraffic = pooledTraffic(runsOf(runs, 'split'));
  const adapterTraffic = pooledTraffic(runsOf(runs, 'adapters'));
  if (splitTraffic && adapterTraffic) {
    const s = bytesFigures(splitTraffic, 'example');
    const a = bytesFigures(adapterTraffic, 'example');
    const sr = bytesFigures(splitTraffic, 'round');
    const ar = bytesFigures(adapterTraffic, 'round');
    sentences.push(
      `Bytes: per training example the split's device sends ${b(s.up)} B (${b(s.stepUp)} B of split steps, ${b(s.upload)} B of its delta) and receives ${b(s.down)} B (${b(s.stepDown)} B of steps, ${b(s.downloadDevice)} B of the device's model), against ${b(a.up)} B and ${b(a.down)} B for adapter-only FedUMM: ${times(s.up / a.up)} up and ${times(s.down / a.down)} down. Per round one split client moves ${kb(sr.up)} KB up and ${kb(sr.down)} KB down against ${kb(ar.up)} KB and ${kb(ar.down)} KB; a coordinator round start today also carries the edge's ${kb(sr.downloadEdge)} KB, which the device does not use.`,
    );
    if (s.up > a.up) losses.push(`bytes sent per example (${times(s.up / a.up)} adapter-only's)`);
    if (s.down > a.down) losses.push(`bytes received per example (${times(s.down / a.down)} adapter-only's, the edge tensors of the round start not counted)`);
  }
  const t = deviceMsPerExample(input.timing);
  sentences.push(
    `Device compute: one split client's round costs its device ${t.splitDevice.toFixed(2)} ms per example, against ${t.adapters.toFixed(2)} ms for an adapter-only round (${times(t.splitDevice / t.adapters)}); inside the training steps alone ${t.splitSteps.toFixed(2)} against ${t.adaptersSteps.toFixed(2)} ms (${times(t.splitSteps / t.adaptersSteps)}); the edge spends ${t.splitWait.toFixed(2)} ms per example on the fusion network.`,
  );
  if (t.splitDevice > t.adapters) losses.push(`device compute per example (${times(t.splitDevice / t.adapters)} adapter-only's)`);
  const noise = noiseRows(input).filter((r) => r.z > 0);
  if (noise.length > 0) {
    sentences.push(
      `Privacy: without noise the interface's releases carry no formal guarantee (ε = ∞); ${noise
        .map(
          (r) =>
            `at z = ${r.z} (ε = ${eps(r.epsilon)} per example over the run, δ = ${deltaText(input.settings.delta)}) accuracy moves ${formatPaired(r.vsMain, { scale: 100 })} points against z = 0${r.vsMain.includesZero === false ? ' (interval excludes 0)' : r.vsMain.includesZero === true ? ' (interval includes 0)' : ''}`,
        )
        .join('; ')}.`,
    );
    const costly = noise.filter((r) => r.vsMain.n > 0 && r.vsMain.mean < 0);
    if (costly.length > 0)
      losses.push(
        `accuracy once noise is added (${costly
          .map(
            (r) =>
              `z = ${r.z}: ${formatPaired(r.vsMain, { scale: 100 })}${r.vsMain.includesZero === true ? ', interval includes 0' : r.vsMain.includesZero === null ? ', one seed' : ''}`,
          )
          .join('; ')} points)`,
      );
  }
  const int8 = pooledTraffic(runsOf(runs, 'split', { noiseMultiplier: 0, encoding: 'int8' }));
  if (int8 && splitTraffic) {
    const vsFp32 = pairedDifference(seeded(runsOf(runs, 'split', { noiseMultiplier: 0, encoding: 'int8' })), split);
    const saved = 1 - (int8.stepBytesUp + int8.stepBytesDown) / (splitTraffic.stepBytesUp + splitTraffic.stepBytesDown);
    sentences.push(
      `Compression: int8 both ways cuts the split steps' bytes by ${(saved * 100).toFixed(0)} % with accuracy ${formatPaired(vsFp32, { scale: 100 })} points against fp32.`,
    );
  }
  return { paragraph: sentences.join(' '), losses };
}

/** The section's Markdown, figures and raw numbers. */
export function splitReport(input: SplitReportInput): SectionResult {
  const { settings, seeds, runs, timing, durationMs, quick, machine } = input;
  const rateOf = (m: SplitMethod): string => String(input.tuning.find((t) => t.method === m)?.chosen.learningRate ?? '—');
  const methodRuns = Object.fromEntries(SPLIT_METHODS.map((m) => [m, runsOf(runs, m)])) as Record<SplitMethod, SplitRun[]>;
  const means = Object.fromEntries(SPLIT_METHODS.map((m) => [m, meanOf(accuracies(methodRuns[m]))])) as Record<SplitMethod, number>;
  const centralIsBound = Number.isFinite(means.centralized) && means.centralized >= means.split && means.centralized >= means.adapters;
  const accuracyTable = markdownTable(
    ['Method', 'learning rate (chosen on validation)', 'test accuracy (%)', 'seeds'],
    SPLIT_METHODS.map((m) => [SPLIT_METHOD_LABELS[m], rateOf(m), pct(accuracies(methodRuns[m])), methodRuns[m].map((r) => r.seed).join(', ')]),
  );
  const pairs: [string, SplitMethod, SplitMethod][] = [
    ['Split − adapter-only', 'split', 'adapters'],
    ['Split − centralized split', 'split', 'centralized'],
    ['Adapter-only − centralized split', 'adapters', 'centralized'],
  ];
  const paired = pairs.map(([label, a, c]) => ({ label, d: pairedDifference(seeded(methodRuns[a]), seeded(methodRuns[c])) }));
  const pairedTable = markdownTable(
    ['Difference (points)', 'mean [95 % t interval]', 'reading'],
    paired.map((p) => [p.label, formatPaired(p.d, { scale: 100 }), intervalReading(p.d)]),
  );
  const boundSentence = !Number.isFinite(means.centralized)
    ? 'Centralized split training was not measured.'
    : centralIsBound
      ? `Centralized split training (${(means.centralized * 100).toFixed(1)} %) is at or above both federated methods' means here, so as measured it is an upper bound.`
      : `Centralized split training (${(means.centralized * 100).toFixed(1)} %) is NOT an upper bound as measured: ${means.split > means.centralized ? `the split's mean is ${(means.split * 100).toFixed(1)} %` : ''}${means.split > means.centralized && means.adapters > means.centralized ? ' and ' : ''}${means.adapters > means.centralized ? `adapter-only FedUMM's ${(means.adapters * 100).toFixed(1)} %` : ''}; it is labelled a reference.`;

  // Bytes.
  const rows = bytesRows(input);
  const bytesTable = (per: 'example' | 'round'): string => {
    const f = per === 'example' ? b : kb;
    return markdownTable(
      [
        'Method',
        'up: split steps',
        'up: delta upload',
        'up: total',
        'down: split steps',
        'down: model (device part)',
        'down: total (device needs)',
        'down: edge tensors a round start also carries',
      ],
      rows.map(({ label, traffic }) => {
        const x = bytesFigures(traffic, per);
        return [label, f(x.stepUp), f(x.upload), f(x.up), f(x.stepDown), f(x.downloadDevice), f(x.down), f(x.downloadEdge)];
      }),
    );
  };
  const main = pooledTraffic(methodRuns.split);

  // Device time.
  const t = deviceMsPerExample(timing);
  const list = (values: readonly number[]): string => values.map((v) => v.toFixed(0)).join(', ');
  const timingTable = markdownTable(
    ['What is timed (one client, one round)', 'median ms per round (each repetition)', 'ms per example'],
    [
      [
        'Adapter-only FedUMM: the whole local round (model build, training, delta)',
        `${medianOf(timing.adaptersRoundMs).toFixed(0)} (${list(timing.adaptersRoundMs)})`,
        t.adapters.toFixed(2),
      ],
      [
        'Adapter-only FedUMM: its local training steps only',
        `${medianOf(timing.adaptersTrainMs).toFixed(0)} (${list(timing.adaptersTrainMs)})`,
        t.adaptersSteps.toFixed(2),
      ],
      [
        'Split: the whole round less the time waiting for the edge (device compute)',
        `${medianOf(timing.splitRoundMs.map((ms, i) => ms - (timing.splitWaitMs[i] ?? 0))).toFixed(0)} (${list(timing.splitRoundMs.map((ms, i) => ms - (timing.splitWaitMs[i] ?? 0)))})`,
        t.splitDevice.toFixed(2),
      ],
      [
        'Split: device compute inside its split steps only',
        `${medianOf(timing.splitStepDeviceMs).toFixed(0)} (${list(timing.splitStepDeviceMs)})`,
        t.splitSteps.toFixed(2),
      ],
      [
        'Split: waiting for the edge (the in-process edge computing)',
        `${medianOf(timing.splitWaitMs).toFixed(0)} (${list(timing.splitWaitMs)})`,
        t.splitWait.toFixed(2),
      ],
    ],
  );

  // Interface: noise and compression.
  const noise = noiseRows(input);
  const noiseTable = markdownTable(
    ['noise multiplier z (both ways)', 'test accuracy (%)', 'vs z = 0 (points, paired)', 'per-example ε over the run', 'clipped rows: tokens / gradients (%)'],
    noise.map((r) => {
      const traffic = pooledTraffic(r.runs);
      return [
        String(r.z),
        pct(accuracies(r.runs)),
        r.z === 0 ? '—' : formatPaired(r.vsMain, { scale: 100 }),
        eps(r.epsilon),
        traffic ? `${(traffic.clippedActivationsFraction * 100).toFixed(0)} / ${(traffic.clippedGradientsFraction * 100).toFixed(0)}` : '—',
      ];
    }),
  );
  const releases = noise[0]?.releasesPerExample ?? 0;
  const compression = settings.encodings.map((e) => {
    const cr = runsOf(runs, 'split', { noiseMultiplier: 0, encoding: e });
    return { e, runs: cr, vsFp32: pairedDifference(seeded(cr), seeded(methodRuns.split)), traffic: pooledTraffic(cr) };
  });
  const compressionTable = markdownTable(
    ['encoding (both ways and the edge’s replies, z = 0)', 'test accuracy (%)', 'vs fp32 (points, paired)', 'split steps up / down (B per example)'],
    compression.map((c) => [
      c.e,
      pct(accuracies(c.runs)),
      c.e === 'fp32' ? '—' : formatPaired(c.vsFp32, { scale: 100 }),
      c.traffic ? `${b(c.traffic.stepBytesUp / c.traffic.examplesSeen)} / ${b(c.traffic.stepBytesDown / c.traffic.examplesSeen)}` : '—',
    ]),
  );

  const figures: Figure[] = [
    {
      file: 'split-accuracy.svg',
      svg: barChart({
        title: `Device–edge split vs adapter-only FedUMM vs centralized (${settings.dataset})`,
        yLabel: 'test accuracy (%)',
        groups: ['split', 'adapter-only', 'centralized split'],
        series: [
          {
            name: `mean ± std over ${seeds.length} seeds`,
            values: SPLIT_METHODS.map((m) => (methodRuns[m].length > 0 ? means[m] * 100 : null)),
            errors: SPLIT_METHODS.map((m) => (methodRuns[m].length > 1 ? meanStd(accuracies(methodRuns[m])).std * 100 : null)),
          },
        ],
        yMin: 0,
        yMax: 100,
      }),
    },
    {
      file: 'split-bytes.svg',
      svg: barChart({
        title: 'Bytes per training example, one client, each way',
        yLabel: 'bytes per example',
        groups: rows.map((r) => r.label.replace(' both ways (z = 0)', '')),
        series: [
          { name: 'up (steps + delta)', values: rows.map((r) => bytesFigures(r.traffic, 'example').up) },
          { name: 'down (steps + device model)', values: rows.map((r) => bytesFigures(r.traffic, 'example').down) },
        ],
      }),
    },
    {
      file: 'split-noise.svg',
      svg: lineChart({
        title: 'Split accuracy vs the interface noise multiplier z (both ways)',
        xLabel: 'noise multiplier z',
        yLabel: 'test accuracy (%)',
        series: [
          {
            name: 'split (fp32)',
            points: noise
              .filter((r) => r.runs.length > 0)
              .map((r) => {
                const s = meanStd(accuracies(r.runs));
                return { x: r.z, y: s.mean * 100, ...(s.n > 1 ? { low: (s.mean - s.std) * 100, high: (s.mean + s.std) * 100 } : {}) };
              }),
          },
          ...(Number.isFinite(means.adapters) && noise.length > 1
            ? [
                {
                  name: 'adapter-only FedUMM (no interface)',
                  dashed: true,
                  points: [noise[0]!, noise[noise.length - 1]!].map((r) => ({ x: r.z, y: means.adapters * 100 })),
                },
              ]
            : []),
        ],
        yMin: 0,
        yMax: 100,
      }),
    },
  ];

  const checks = splitChecks(input);
  const reading = costsAndBuys(input);
  const estimate = quick ? estimateFullMinutes(input) : null;
  const minutes = (durationMs / 60_000).toFixed(1);
  const sample = splitTaskOf(settings, { method: 'split', seed: seeds[0] ?? 1, learningRate: Number(rateOf('split')) || 0.01, variant: MAIN_INTERFACE });
  const markdown = `
FedUMM's device–edge split (§3.3) on ${settings.dataset}: each client's device keeps the frozen encoders with their LoRA adapters, the per-modality concept projections (whose outputs are the cut-layer tokens) and its local NAM head, plus a task head over the fused features; the edge runs a fusion transformer (d = ${settings.fusedDim}, ${settings.numBlocks} blocks, ${settings.numHeads} heads) over the per-modality tokens. U-shaped: the edge returns fused features, the device computes the loss (task head + ${settings.localHeadWeight} × its local head's) and sends back per-example gradients. What the device sends is clipped per example (tokens to L2 ${settings.clipNorms.activations}, fused-feature gradients to ${settings.clipNorms.gradients} — the task file's defaults, not tuned), noised with N(0, (zC)²) and compressed. ${settings.numClients} clients (Dirichlet α = ${settings.alpha}, modality subsets \`${settings.modalityKinds.replace(/,/g, ', ')}\`, at most ${Math.floor(settings.totalExamples / settings.numClients)} examples each), ${settings.rounds} rounds of ${settings.localEpochs} local epoch${settings.localEpochs > 1 ? 's' : ''}, batch ${settings.batchSize}, every client every round, in-process and sequential: in each round the clients run in index order (\`runSplitRound\` against one shared in-process edge, so the edge trains on their steps in that order; adapter-only clients \`runLocalRound\`), then the coordinator's FedAvg (\`buildStrategy\`, groupwise, weighted by examples — FedUMM Eq. 1) aggregates the device deltas in client-id order and the edge's weights are taken as they are after the round. Adapter-only FedUMM is the same clients, rounds and batches with the whole model on the device and no edge. Centralized split trains one device + edge on the pooled data with mixed batches for ${settings.rounds * settings.localEpochs} epochs (the federated runs' example budget), without clip, noise or codec. Every run is bit-reproducible from its command: no clock, thread or arrival order reaches a weight. Evaluation seeds ${seeds.join(', ')} (the invocation's seeds, extended by the next free integers to at least ${settings.minSeeds}, so paired intervals exist).

**Protocol.** ${describeSplits(input.splits)} Learning-rate grid {${settings.learningRates.join(', ')}} (fixed before any run), tuned separately for each method (the split's device and edge share one rate) with tuning seed${settings.tuningSeeds.length > 1 ? 's' : ''} ${settings.tuningSeeds.join(', ')}, disjoint from the evaluation seeds; the best mean validation accuracy is chosen (ties: the first in grid order). The split is tuned at z = 0 in fp32; the noise and compression rows reuse that rate (not retuned per row, which can only favour z = 0). ${gridEdgeSentence(input.tuning, settings.learningRates)}

${tuningTable(
  input.tuning.map((r) => ({ ...r, label: SPLIT_METHOD_LABELS[r.method as SplitMethod] ?? r.method })),
  { scale: 100 },
)}
**Figure 1 — accuracy.**

${accuracyTable}
Paired per seed (a seed fixes the partition and the initial model of every method):

${pairedTable}
${boundSentence}

![split accuracy](split-accuracy.svg)

**Figure 2 — bytes of one client, each way** (sums over every client and round of the runs at z = 0, from the real encoded payloads: split steps as fl-core's codec kind \`split\` encodes them, the round start's global and the delta upload as kinds \`model\` and \`delta\`; uploads in fp32). "Down: model (device part)" is the device's tensors of the global encoded alone; a coordinator's round start also carries the edge's tensors, shown apart in the last column and left out of the totals, since the device does not need them.

Per example visited in training (bytes):

${bytesTable('example')}
Per client per round (KB):

${bytesTable('round')}
${main ? `The main split runs' ${main.numSteps} steps (all seeds) exchanged ${b(main.stepBytesUp / main.numSteps)} B up (tokens and presence mask, then fused-feature gradients) and ${b(main.stepBytesDown / main.numSteps)} B down (fused features, then token gradients) per step on average, batches of up to ${settings.batchSize}. Each client took ${(main.numSteps / main.clientRounds).toFixed(1)} local steps per round on average, so an adapter-only client took as many optimiser steps per round, while the edge took one step per client batch, ${((main.numSteps / main.clientRounds) * settings.numClients).toFixed(1)} per round, in client order.` : ''}

![split bytes](split-bytes.svg)

**Figure 3 — device compute** (one client's round, the median-sized client of seed ${seeds[0] ?? '—'}: ${timing.numExamples} examples; ${settings.timingReps} repetitions per method, interleaved; measured again by every invocation, never read from the run cache; TF.js WASM backend in Node, one thread, on a shared machine).

${timingTable}
**Figure 4 — the secure interface.** Accuracy as a function of the noise multiplier z on both directions (fp32), with the per-example ε over the whole run at δ = ${deltaText(settings.delta)}: every example's token row and fused-gradient row are each released once per local epoch of every round, ${releases} releases (\`splitReleasesPerExample\` with 2 directions, composed by fl-core's \`splitChannelPrivacy\`: RDP of the Gaussian mechanism, sensitivity 2C under replace-one adjacency, no subsampling). The presence mask is released without noise. The edge's replies are post-processing and cost nothing.

${noiseTable}
![split noise](split-noise.svg)

Accuracy as a function of the compression (z = 0):

${compressionTable}
**What the split costs and buys.** ${reading.paragraph}

${reading.losses.length > 0 ? `Where the split loses in these runs: ${reading.losses.join('; ')}.` : 'In these runs the split loses on none of accuracy, bytes per example or device compute against adapter-only FedUMM.'}

**Reading and differences from the paper.**
- The paper describes the split (§3.3) but reports no numbers for it; these runs measure this implementation on a small model and dataset, not the paper's BLIP3o on VQA v2.
- The edge is in-process, so "waiting for the edge" is the edge's compute and no network time; real links add latency per step, two round trips per batch, which the adapter-only round does not pay.
- Clip norms are the task file's defaults and are not tuned; the clipped-row percentages show how often they bind (clipping applies at z = 0 too, which centralized training does not have).
- ε covers what the device sends (tokens, fused-feature gradients) to whoever reads the link; the model delta each client uploads, and the presence mask, are not covered.
- Runtime of this section: ${minutes} min (${quick ? 'quick grid' : 'full grid'}, tuning included, measured; ${(input.loadMs / 1000).toFixed(0)} s of it loading the validation and test subsets)${input.stored > 0 ? `; ${input.stored} of its ${input.total} runs were read from raw/runs/, stored by earlier invocations, so this time covers only the runs made here, while the device timings were measured again` : ''}${input.skipped > 0 ? `; ${input.skipped} runs were left to other \`--shard\` invocations and are missing from these tables` : ''}${machine ? `, of which ${(machine.cpuMs / 60_000).toFixed(1)} min CPU time of its process, on ${machine.cores} cores with a load average of ${machine.loadAverage[0].toFixed(1)} at the start and ${machine.loadAverage[1].toFixed(1)} at the end` : ''}.${estimate === null ? '' : ` The full grid (\`pnpm experiments --only split\`: ${SPLIT_FULL.numClients} clients, ${SPLIT_FULL.rounds} rounds, ${SPLIT_FULL.totalExamples} examples, ${DEFAULT_SEEDS.full.split(',').length} seeds, ${SPLIT_FULL.learningRates.length} learning rates × ${SPLIT_FULL.tuningSeeds.length} tuning seeds × 3 methods, ${SPLIT_FULL.validationExamples} validation and ${SPLIT_FULL.testExamples} test examples) is estimated at about ${estimate.toFixed(0)} min from this run (time per run scaled by rounds × examples, loading by the held-out examples)${machine && durationMs > 0 ? `, about ${((estimate * machine.cpuMs) / durationMs).toFixed(0)} min on an otherwise idle core (scaling the CPU time instead)` : ''}.`}
`;
  return {
    id: 'split',
    title: "FedUMM's device–edge split: accuracy, bytes, device compute and the secure interface",
    markdown,
    figures,
    raw: {
      settings,
      seeds,
      splits: input.splits,
      tuning: input.tuning,
      task: sample,
      runs,
      timing,
      paired: paired.map((p) => ({ label: p.label, ...p.d })),
      noise: noise.map((r) => ({
        z: r.z,
        epsilon: r.epsilon === Infinity ? 'Infinity' : r.epsilon,
        releasesPerExample: r.releasesPerExample,
        vsMain: r.vsMain,
      })),
      losses: reading.losses,
      loadMs: input.loadMs,
      durationMs,
      machine: machine ?? null,
    },
    checks,
    seeds,
    durationMs,
  };
}
