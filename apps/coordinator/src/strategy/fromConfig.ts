/**
 * Builds the fl-core {@link Strategy} a task file names, wrappers included, and keeps handles on the
 * parts the coordinator feeds each round: every {@link TrustWeighting} (probe signals, round
 * context), every part that needs the server's root update ({@link FlTrust}, a {@link NormClipping}
 * bounded by the root's norm) and every {@link DifferentialPrivacy} (ε).
 *
 * Hyper-parameters are checked twice on purpose: the task schema gives path-named errors for what it
 * can see, and the fl-core constructors check everything else; their `FlCoreError`s come back as
 * `TASK_INVALID` naming the strategy's path, so a bad file never starts a half-built task.
 */
import { randomBytes } from 'node:crypto';
import {
  DifferentialPrivacy,
  FedAdagrad,
  FedAdam,
  FedAvg,
  FedAvgMStrategy,
  FedMedian,
  FedProx,
  FedTrimmedAvg,
  FedYogi,
  FlTrust,
  Krum,
  MultiKrumSelection,
  NormClipping,
  Probation,
  ServerOnly,
  SimilarityDamping,
  TrustThreshold,
  TrustWeighting,
  isFlCoreError,
} from '@chorus/fl-core';
import type { Parameters, Rng, Strategy } from '@chorus/fl-core';
import { CoordinatorError } from '../errors.js';
import { roundRng } from '../engine/sampling.js';
import { isRepresentationTask } from '@chorus/protocol';
import type { StrategyConfig, TaskConfig } from '@chorus/protocol';
import { buildRepresentationStrategy } from './representation.js';

/** A task's strategy and the handles the coordinator drives it through. */
export interface BuiltStrategy {
  readonly strategy: Strategy;
  /** Trust wrappers, outermost first: they need probe signals and a round context. */
  readonly trust: readonly TrustWeighting[];
  /** FLTrust strategies (a subset of `rootUpdate`). */
  readonly flTrust: readonly FlTrust[];
  /** Every part that needs the server's root update each round: FLTrust, clipping to the root's norm. */
  readonly rootUpdate: readonly RootUpdateConsumer[];
  /** Whether the server must train its root update each round (for `rootUpdate`, or as a trust wrapper's agreement reference). */
  readonly needsRootUpdate: boolean;
  /** DP wrappers, outermost first: their ε is reported after every round. */
  readonly privacy: readonly DifferentialPrivacy[];
  /** How DP noise is drawn: 'crypto', 'seeded', or null without DP. */
  readonly noise: 'crypto' | 'seeded' | null;
}

/**
 * The task's strategy under its admission section: newcomers on probation
 * (`admission.probationRounds`: weight earned over the rounds they contribute to) and, with
 * `admission.similarityDamping`, identities whose updates copy one another's damped first
 * (outermost, so a damped identity earns no probation credit). Neither under DP, which must stay
 * the outermost strategy and weighs every client alike.
 */
export function withAdmission(task: TaskConfig, built: BuiltStrategy): Strategy {
  if (built.privacy.length > 0) return built.strategy;
  const rounds = task.admission.probationRounds;
  const probation = rounds > 1 ? new Probation(built.strategy, rounds) : built.strategy;
  if (task.admission.similarityDamping !== true) return probation;
  const maxHistories = task.admission.similarityMaxHistories;
  return new SimilarityDamping(probation, maxHistories === undefined ? {} : { maxHistories });
}

/** A strategy part that takes the server's root-data update of a round. */
export interface RootUpdateConsumer {
  setRootUpdate(serverRound: number, rootDelta: Parameters): void;
}

/** Options of {@link buildStrategy}. */
export interface BuildStrategyOptions {
  /** DP noise source for `noise: crypto`; default the OS CSPRNG (tests may inject one). */
  readonly cryptoRng?: () => Rng;
}

/** An Rng over the operating system's CSPRNG: 53 random bits per draw, refilled 512 draws at a time. */
export function cryptoRng(): Rng {
  let buffer = new BigUint64Array(0);
  let next = 0;
  return () => {
    if (next >= buffer.length) {
      const bytes = randomBytes(512 * 8);
      buffer = new BigUint64Array(bytes.buffer, bytes.byteOffset, 512);
      next = 0;
    }
    return Number(buffer[next++]! >> 11n) / 2 ** 53;
  };
}

/** Builds the task's strategy; throws `TASK_INVALID` (naming the strategy path) when fl-core refuses a setting. */
export function buildStrategy(task: TaskConfig, options: BuildStrategyOptions = {}): BuiltStrategy {
  const trust: TrustWeighting[] = [];
  const flTrust: FlTrust[] = [];
  const rootUpdate: RootUpdateConsumer[] = [];
  let trustNeedsRoot = false;
  const privacy: DifferentialPrivacy[] = [];
  // Every base rule plans the task's fixed cohort; a DP wrapper replaces the plan with Poisson sampling.
  const base = { cohort: { clientsPerRound: task.clientsPerRound, overSelection: task.overSelection } };
  let noise: 'crypto' | 'seeded' | null = null;

  const clip = (inner: Strategy, maxNorm: number | 'median' | 'reference', perGroup: boolean): NormClipping => {
    const s = new NormClipping(inner, { maxNorm, perGroup });
    if (maxNorm === 'reference') rootUpdate.push(s);
    return s;
  };

  const build = (config: StrategyConfig, path: string): Strategy => {
    try {
      switch (config.name) {
        case 'fedavg':
          return new FedAvg({ ...base, exactSum: config.exactSum === true });
        case 'fedprox':
          // μ reaches clients through the strategy's own round config.
          return new FedProx({ ...base, proximalMu: config.proximalMu, exactSum: config.exactSum === true });
        case 'fedavgm':
          return new FedAvgMStrategy({ ...base, serverLearningRate: config.serverLearningRate, serverMomentum: config.serverMomentum });
        case 'fedadam':
        case 'fedyogi': {
          const opts = { ...base, serverLearningRate: config.serverLearningRate, beta1: config.beta1, beta2: config.beta2, tau: config.tau };
          return config.name === 'fedadam' ? new FedAdam(opts) : new FedYogi(opts);
        }
        case 'fedadagrad':
          return new FedAdagrad({ ...base, serverLearningRate: config.serverLearningRate, tau: config.tau });
        case 'median':
          return new FedMedian(base);
        case 'trimmed-mean':
          return new FedTrimmedAvg({ ...base, trimFraction: config.trimFraction });
        case 'krum':
          return new Krum({ ...base, numByzantine: config.numByzantine });
        case 'multi-krum':
          return new Krum({
            ...base,
            numByzantine: config.numByzantine,
            numToKeep: config.numSelected ?? Math.max(1, task.clientsPerRound - config.numByzantine),
          });
        case 'multi-krum-select':
          return new MultiKrumSelection({
            ...base,
            numByzantine: config.numByzantine,
            ...(config.numSelected !== null ? { numSelected: config.numSelected } : {}),
          });
        case 'fltrust':
        case 'server-only': {
          const s = config.name === 'fltrust' ? new FlTrust(base) : new ServerOnly(base);
          flTrust.push(s);
          rootUpdate.push(s);
          return s;
        }
        case 'clip':
          return clip(build(config.inner, `${path}.inner`), config.maxNorm, config.perGroup);
        case 'fedmm-x': {
          let wrapper: TrustWeighting | null = null;
          const built = build(config.inner, `${path}.inner`);
          // The bound sits under the weighting: trust is scored on the updates as sent, the weighted mean is taken over bounded ones.
          const innerStrategy = config.maxNorm === null ? built : clip(built, config.maxNorm, true);
          if (config.agreementReference === 'root') trustNeedsRoot = true;
          // The threshold reads T_k that the trust wrapper wrote just before calling its inner strategy.
          const inner = config.minTrust > 0 ? new TrustThreshold(innerStrategy, config.minTrust, (id) => wrapper?.trustScores().get(id)) : innerStrategy;
          const w = config.weights;
          wrapper = new TrustWeighting(inner, {
            weights: { agreement: w.agreement, quality: w.accuracy, lossImprovement: w.loss, calibration: w.calibration, explanation: w.explanation },
            historyDecay: config.historyDecay,
            prior: config.prior,
            agreementGate: config.agreementGate,
            agreementReference: config.agreementReference,
          });
          trust.push(wrapper);
          return wrapper;
        }
        case 'dp': {
          noise = config.noise;
          const seeded = config.noise === 'seeded';
          const crypto = options.cryptoRng ?? cryptoRng;
          // Attempt 0 is never used by sampling, so the noise stream is disjoint from every sampling stream.
          const noiseRng = seeded ? (serverRound: number) => roundRng(task.seed, serverRound, 0) : () => crypto();
          const s = new DifferentialPrivacy(build(config.inner, `${path}.inner`), {
            clipNorm: config.clipNorm,
            noiseMultiplier: config.noiseMultiplier,
            samplingRate: config.samplingRate,
            // The release divides by a fixed qW; the engine aims for clientsPerRound updates a round.
            expectedClientsPerRound: task.clientsPerRound,
            targetDelta: config.delta,
            noiseRng,
          });
          privacy.push(s);
          return s;
        }
      }
    } catch (err) {
      if (isFlCoreError(err)) {
        const issue = `${path}: ${err.message}`;
        throw new CoordinatorError('TASK_INVALID', `task ${task.id}: strategy is invalid:\n  ${issue}`, [issue]);
      }
      throw err;
    }
  };

  if (isRepresentationTask(task)) {
    // Rounds of the FedAFD family exchange representations: the fl-core representation strategy
    // aggregates them (strategy/representation.ts); FedAvg here only plans each round's cohort.
    buildRepresentationStrategy(task);
    return { strategy: new FedAvg(base), trust: [], flTrust: [], rootUpdate: [], needsRootUpdate: false, privacy: [], noise: null };
  }
  const weightStrategy = task.strategy as StrategyConfig;
  checkPrivacyPlacement(task, weightStrategy);
  const strategy = build(weightStrategy, 'strategy');
  // Built inside-out (an inner strategy is constructed before its wrapper), so reverse to list outermost first.
  return { strategy, trust: trust.reverse(), flTrust, rootUpdate, needsRootUpdate: rootUpdate.length > 0 || trustNeedsRoot, privacy: privacy.reverse(), noise };
}

/** Public-split examples the server's root update trains on: the most any part of the strategy asks for, 0 when none uses it. */
export function rootExamplesOf(task: TaskConfig): number {
  let found = 0;
  const visit = (s: StrategyConfig): void => {
    const uses =
      s.name === 'fltrust' ||
      s.name === 'server-only' ||
      (s.name === 'clip' && s.maxNorm === 'reference') ||
      (s.name === 'fedmm-x' && (s.agreementReference === 'root' || s.maxNorm === 'reference'));
    if (uses) found = Math.max(found, s.rootExamples);
    if ('inner' in s) visit(s.inner);
  };
  if (!isRepresentationTask(task)) visit(task.strategy as StrategyConfig);
  return found;
}

/**
 * Refuses the combinations under which the ε a DP task reports would understate what it leaks:
 * - a wrapper outside `dp` sees every client's raw update before clipping and noise, and the trust
 *   wrapper publishes a per-client score computed from it, which the accountant never counts;
 * - over-selection with `samplingRate < 1`: the accountant assumes each client is included
 *   independently with probability q (Poisson sampling, which the DP plan performs), so inviting
 *   extra clients is a setting that cannot take effect — refused rather than silently ignored.
 */
function checkPrivacyPlacement(task: TaskConfig, strategy: StrategyConfig): void {
  const issues: string[] = [];
  const visit = (config: StrategyConfig, path: string, outer: string | null): void => {
    if (config.name === 'dp') {
      if (outer !== null)
        issues.push(
          `${path}: dp must be the outermost strategy: '${outer}' around it sees each client's raw update before clipping and noise, which the privacy accountant does not count`,
        );
      if (config.samplingRate < 1 && task.overSelection > 0) {
        issues.push(
          `overSelection: must be 0 with ${path}.samplingRate < 1 (${config.samplingRate}): clients are Poisson-sampled at that rate, as the accountant assumes, so over-selection cannot apply`,
        );
      }
    }
    if ('inner' in config) visit(config.inner, `${path}.inner`, outer ?? config.name);
  };
  visit(strategy, 'strategy', null);
  if (issues.length > 0) throw new CoordinatorError('TASK_INVALID', `task ${task.id}: strategy is invalid:\n  ${issues.join('\n  ')}`, issues);
}
