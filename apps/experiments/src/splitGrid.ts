/**
 * The grid of the device–edge split section (FedUMM, Su et al. 2026, arXiv:2601.15390 §3.3; see
 * split.ts): its settings and their validation, the cells and tasks it runs, the run cache's keys,
 * the plan, and the pure figures of a run (traffic, per-example ε). No I/O, no training.
 */
import { splitChannelPrivacy, splitReleasesPerExample } from '@chorus/fl-core';
import type { UpdateEncoding } from '@chorus/fl-core';
import type { TaskConfig } from '@chorus/coordinator';
import type { Modality } from '@chorus/models';
import { ExperimentsError } from './errors.js';
import { EXPERIMENT_DATASETS } from './evaluationSplits.js';
import type { ExperimentDataset } from './evaluationSplits.js';
import { settingsKey } from './runCache.js';
import type { ClientRoundFigures } from './splitTraining.js';
import { BASE_TASK, experimentTask } from './tasks.js';
import { gridCandidates } from './tuning.js';

/** The three methods the section compares. */
export const SPLIT_METHODS = ['split', 'adapters', 'centralized'] as const;

/** `split`: FedUMM's device–edge split, federated; `adapters`: adapter-only FedUMM (FedAvg over LoRA adapters + head); `centralized`: one split model on the pooled data. */
export type SplitMethod = (typeof SPLIT_METHODS)[number];

const ENCODINGS: readonly UpdateEncoding[] = ['fp32', 'fp16', 'int8'];

/** The grid and model of the section. */
export interface SplitSettings {
  /** The built-in dataset the clients train on and every model is scored on. */
  readonly dataset: ExperimentDataset;
  /** Dirichlet concentration of the label split. */
  readonly alpha: number;
  readonly numClients: number;
  readonly rounds: number;
  readonly localEpochs: number;
  readonly batchSize: number;
  /** Training examples dealt over the clients (each keeps ≤ totalExamples / numClients). */
  readonly totalExamples: number;
  /** `--modality-kinds` of the clients: which modality subsets they hold, by share. */
  readonly modalityKinds: string;
  readonly validationExamples: number;
  readonly testExamples: number;
  /** The edge's fusion network (d, blocks, heads) and the weight of the device's local NAM head. */
  readonly fusedDim: number;
  readonly numBlocks: number;
  readonly numHeads: number;
  readonly localHeadWeight: number;
  /** L2 clip norms of each example's tokens [M, c] and of its fused-feature gradient [d] (the task file's defaults). */
  readonly clipNorms: { readonly activations: number; readonly gradients: number };
  /** Noise multipliers z of Figure 4 (both directions); must hold 0, the main run. */
  readonly noiseMultipliers: readonly number[];
  /** Encodings of Figure 4 (both directions and the edge's replies, z = 0); must hold fp32, the main run. */
  readonly encodings: readonly UpdateEncoding[];
  /** δ of the reported per-example (ε, δ). */
  readonly delta: number;
  /** Learning-rate grid every method is tuned over on validation. */
  readonly learningRates: readonly number[];
  /** Seeds of the tuning runs, disjoint from the evaluation seeds. */
  readonly tuningSeeds: readonly number[];
  /** Fewest evaluation seeds: the invocation's seeds are extended by the next free integers up to this many. */
  readonly minSeeds: number;
  /** Repetitions of one client's round per method for the device timings (the median is reported). */
  readonly timingReps: number;
}

/**
 * The reduced grid of `--quick` (CI, a smoke test that must take ≤ 3 minutes on 2 cores): four
 * clients of 32 examples (one batch each per round), three rounds, the full grid's three smallest
 * learning rates, one tuning seed, two evaluation seeds, and small held-out subsets (loading them
 * is a fifth of the time).
 */
export const SPLIT_QUICK: SplitSettings = {
  dataset: 'digits',
  alpha: 0.5,
  numClients: 4,
  rounds: 3,
  localEpochs: BASE_TASK.localEpochs,
  batchSize: BASE_TASK.batchSize,
  totalExamples: 128,
  modalityKinds: 'image+text+audio=0.25,image+text=0.25,image+audio=0.25,text+audio=0.25',
  validationExamples: 80,
  testExamples: 120,
  fusedDim: 32,
  numBlocks: 2,
  numHeads: 2,
  localHeadWeight: 0.5,
  clipNorms: { activations: 4, gradients: 1 },
  noiseMultipliers: [0, 0.5, 1, 2],
  encodings: ['fp32', 'fp16', 'int8'],
  delta: 1e-5,
  learningRates: [0.001, 0.003, 0.01],
  tuningSeeds: [101],
  minSeeds: 2,
  timingReps: 3,
};

/** The full grid. */
export const SPLIT_FULL: SplitSettings = {
  ...SPLIT_QUICK,
  numClients: 8,
  rounds: 5,
  totalExamples: 800,
  validationExamples: 500,
  testExamples: 500,
  learningRates: [0.001, 0.003, 0.01, 0.03],
  tuningSeeds: [101, 102],
  minSeeds: 3,
  timingReps: 5,
};

/** Throws `EXPERIMENTS_BAD_INPUT` naming the first setting that cannot run. */
export function checkSplitSettings(s: SplitSettings): void {
  const bad = (why: string): never => {
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `split settings: ${why}`);
  };
  const int = (field: string, v: number, min: number): void => {
    if (!(Number.isInteger(v) && v >= min)) bad(`${field} must be an integer ≥ ${min}, got ${v}`);
  };
  if (!(EXPERIMENT_DATASETS as readonly string[]).includes(s.dataset)) bad(`dataset must be one of ${EXPERIMENT_DATASETS.join(', ')}, got '${s.dataset}'`);
  if (!(Number.isFinite(s.alpha) && s.alpha > 0)) bad(`alpha must be > 0, got ${s.alpha}`);
  int('numClients', s.numClients, 2);
  int('rounds', s.rounds, 1);
  int('localEpochs', s.localEpochs, 1);
  int('batchSize', s.batchSize, 1);
  int('totalExamples', s.totalExamples, s.numClients);
  int('validationExamples', s.validationExamples, 1);
  int('testExamples', s.testExamples, 1);
  int('fusedDim', s.fusedDim, 1);
  int('numBlocks', s.numBlocks, 1);
  int('numHeads', s.numHeads, 1);
  if (s.fusedDim % s.numHeads !== 0) bad(`numHeads ${s.numHeads} must divide fusedDim ${s.fusedDim}`);
  if (!(Number.isFinite(s.localHeadWeight) && s.localHeadWeight >= 0)) bad(`localHeadWeight must be ≥ 0, got ${s.localHeadWeight}`);
  for (const [name, c] of Object.entries(s.clipNorms)) if (!(Number.isFinite(c) && c > 0)) bad(`clipNorms.${name} must be > 0, got ${c}`);
  if (
    !s.noiseMultipliers.includes(0) ||
    s.noiseMultipliers.some((z) => !(Number.isFinite(z) && z >= 0)) ||
    new Set(s.noiseMultipliers).size !== s.noiseMultipliers.length
  )
    bad(`noiseMultipliers must be distinct values ≥ 0 including 0, got [${s.noiseMultipliers.join(', ')}]`);
  if (!s.encodings.includes('fp32') || s.encodings.some((e) => !ENCODINGS.includes(e)) || new Set(s.encodings).size !== s.encodings.length)
    bad(`encodings must be distinct of ${ENCODINGS.join(', ')} including fp32, got [${s.encodings.join(', ')}]`);
  if (!(s.delta > 0 && s.delta < 1)) bad(`delta must be in (0, 1), got ${s.delta}`);
  gridCandidates({ learningRates: s.learningRates, proximalMus: [], modalWeights: [], interpretabilityWeights: [] });
  if (s.tuningSeeds.length === 0) bad('needs at least one tuning seed');
  int('minSeeds', s.minSeeds, 1);
  int('timingReps', s.timingReps, 1);
}

/** How the interface releases and compresses, for a split run: z both ways, one encoding both ways and for the edge's replies. */
export interface InterfaceVariant {
  readonly noiseMultiplier: number;
  readonly encoding: UpdateEncoding;
}

/** The main split run's interface: no noise, fp32 (clipping still applies). */
export const MAIN_INTERFACE: InterfaceVariant = { noiseMultiplier: 0, encoding: 'fp32' };

/** One training run: a method at a seed and learning rate (and, for the split, an interface). */
export interface SplitCell {
  readonly method: SplitMethod;
  readonly seed: number;
  readonly learningRate: number;
  /** The split's interface; null for the other methods (centralized training has none). */
  readonly variant: InterfaceVariant | null;
}

/** The task of `cell`: FedAvg, every client every round, fp32 uploads; a split section for the split and centralized methods. */
export function splitTaskOf(settings: SplitSettings, cell: SplitCell): TaskConfig {
  const variant = cell.variant ?? MAIN_INTERFACE;
  return experimentTask(`split-s${cell.seed}`, {
    dataset: { ...BASE_TASK.dataset, name: settings.dataset },
    strategy: { name: 'fedavg' },
    rounds: settings.rounds,
    clientsPerRound: settings.numClients,
    minClients: settings.numClients,
    localEpochs: settings.localEpochs,
    batchSize: settings.batchSize,
    // Accuracy is measured here on the validation or test subset; no coordinator evaluates.
    evaluation: { probeExamples: 16, testExamples: 0 },
    learningRate: cell.learningRate,
    seed: cell.seed,
    ...(cell.method === 'adapters'
      ? {}
      : {
          split: {
            fusedDim: settings.fusedDim,
            numBlocks: settings.numBlocks,
            numHeads: settings.numHeads,
            // One learning rate per method: the device's and the edge's are the same, tuned together.
            edgeLearningRate: cell.learningRate,
            localHeadWeight: settings.localHeadWeight,
            activations: { clipNorm: settings.clipNorms.activations, noiseMultiplier: variant.noiseMultiplier, encoding: variant.encoding },
            gradients: { clipNorm: settings.clipNorms.gradients, noiseMultiplier: variant.noiseMultiplier, encoding: variant.encoding },
            returnEncoding: variant.encoding,
            delta: settings.delta,
          },
        }),
  });
}

/** Traffic of one federated run, summed over its clients and rounds (every figure from real encoded payloads). */
export interface Traffic {
  /** (client, round) pairs. */
  readonly clientRounds: number;
  /** Examples visited in training (each client's examples × local epochs, every round). */
  readonly examplesSeen: number;
  readonly numSteps: number;
  /** Split steps, device → edge (tokens + mask, fused-feature gradients) and edge → device (fused features, token gradients). */
  readonly stepBytesUp: number;
  readonly stepBytesDown: number;
  /** Round starts' globals as a coordinator sends them (a split task's carries the edge's tensors too). */
  readonly downloadBytes: number;
  /** The device part of those globals, encoded alone. */
  readonly downloadDeviceBytes: number;
  /** Encoded delta uploads. */
  readonly uploadBytes: number;
  /** Example-weighted mean fractions of rows the interface clipped. */
  readonly clippedActivationsFraction: number;
  readonly clippedGradientsFraction: number;
}

/** One finished training run, scored on validation or test. */
export interface SplitRun {
  readonly method: SplitMethod;
  readonly seed: number;
  readonly learningRate: number;
  readonly variant: InterfaceVariant | null;
  /** Rounds the run completed (centralized: the rounds its epoch budget stands for). */
  readonly completedRounds: number;
  /** Training examples the clients held in all. */
  readonly numExamples: number;
  readonly accuracy: number;
  readonly loss: number;
  /** Null for centralized training (nothing crosses a network). */
  readonly traffic: Traffic | null;
  /** Which clients held which modalities (held counts per modality, of `numClients`). */
  readonly modalityHolders: Partial<Record<Modality, number>>;
  readonly durationMs: number;
}

/** Sums the per-round client figures of a run into its {@link Traffic}. */
export function trafficOf(rounds: readonly (readonly ClientRoundFigures[])[]): Traffic {
  const all = rounds.flat();
  const sum = (f: (c: ClientRoundFigures) => number): number => all.reduce((s, c) => s + f(c), 0);
  const examplesSeen = sum((c) => c.examplesSeen);
  const weighted = (f: (c: ClientRoundFigures) => number): number => (examplesSeen > 0 ? sum((c) => f(c) * c.examplesSeen) / examplesSeen : 0);
  return {
    clientRounds: all.length,
    examplesSeen,
    numSteps: sum((c) => c.numSteps),
    stepBytesUp: sum((c) => c.stepBytesUp),
    stepBytesDown: sum((c) => c.stepBytesDown),
    downloadBytes: sum((c) => c.downloadBytes),
    downloadDeviceBytes: sum((c) => c.downloadDeviceBytes),
    uploadBytes: sum((c) => c.uploadBytes),
    clippedActivationsFraction: weighted((c) => c.clippedActivationsFraction),
    clippedGradientsFraction: weighted((c) => c.clippedGradientsFraction),
  };
}

/** One client's round, timed, per method (never stored: the time is the result). */
export interface DeviceTiming {
  /** Examples of the client measured (the median-sized client of the first evaluation seed). */
  readonly numExamples: number;
  readonly examplesSeen: number;
  /** Wall-clock of each repetition of the adapter-only round (model build, training, delta), and of its training steps alone. */
  readonly adaptersRoundMs: readonly number[];
  readonly adaptersTrainMs: readonly number[];
  /** Of each repetition of the split round: the whole round, the device's own compute inside its steps, and the time it waited for the (in-process) edge. */
  readonly splitRoundMs: readonly number[];
  readonly splitStepDeviceMs: readonly number[];
  readonly splitWaitMs: readonly number[];
}

/** Per-example (ε, δ) of a whole run at noise multiplier z: every example's two rows are released once per local epoch of every round. */
export function runEpsilon(settings: SplitSettings, noiseMultiplier: number): { epsilon: number; releasesPerExample: number } {
  const releasesPerExample = splitReleasesPerExample({ epochs: settings.localEpochs, rounds: settings.rounds, directions: 2 });
  return { epsilon: splitChannelPrivacy({ noiseMultiplier, releasesPerExample, delta: settings.delta }).epsilon, releasesPerExample };
}

/** Bumped whenever a change to this section's code changes what a stored run would measure. */
export const SPLIT_ENGINE = 1;
/** Prefix of the section's run cache files. */
export const SPLIT_CACHE_PREFIX = 'split';

/** The settings a stored run depends on (every setting but the lists of cells, the grids, the seeds and the timing repetitions). */
export function splitSettingsKey(settings: SplitSettings): Readonly<Record<string, unknown>> {
  return settingsKey(SPLIT_ENGINE, settings, ['noiseMultipliers', 'encodings', 'learningRates', 'tuningSeeds', 'minSeeds', 'timingReps']);
}

/** Which held-out subset a run is scored on. */
export type Scored = 'validation' | 'test';

/** The run cache's key of one run: the subset it is scored on, the cell, the settings and the task it runs. */
export function splitCacheKey(settings: SplitSettings, scored: Scored, cell: SplitCell): unknown {
  return { section: 'split', scored, cell, settings: splitSettingsKey(settings), task: splitTaskOf(settings, cell) };
}

/** The runs of the evaluation seeds, in the order they run: per seed the three methods, then the interface rows. */
export function splitPlan(settings: SplitSettings, seeds: readonly number[]): { method: SplitMethod; seed: number; variant: InterfaceVariant | null }[] {
  const variants: InterfaceVariant[] = [
    ...settings.noiseMultipliers.filter((z) => z !== 0).map((z) => ({ noiseMultiplier: z, encoding: 'fp32' as const })),
    ...settings.encodings.filter((e) => e !== 'fp32').map((e) => ({ noiseMultiplier: 0, encoding: e })),
  ];
  return seeds.flatMap((seed) => [
    { method: 'split' as const, seed, variant: MAIN_INTERFACE },
    { method: 'adapters' as const, seed, variant: null },
    { method: 'centralized' as const, seed, variant: null },
    ...variants.map((variant) => ({ method: 'split' as const, seed, variant })),
  ]);
}

/** The evaluation seeds: the invocation's, extended by the next integers that are neither given nor tuning seeds up to `minSeeds`. */
export function evaluationSeeds(given: readonly number[], settings: Pick<SplitSettings, 'minSeeds' | 'tuningSeeds'>): number[] {
  const seeds = [...given];
  for (let s = Math.max(0, ...given) + 1; seeds.length < settings.minSeeds; s++) if (!settings.tuningSeeds.includes(s) && !seeds.includes(s)) seeds.push(s);
  return seeds;
}
