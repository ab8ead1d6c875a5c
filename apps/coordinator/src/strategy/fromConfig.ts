/**
 * Builds the fl-core {@link Strategy} a task file names, wrappers included, and keeps handles on the
 * parts the coordinator feeds each round: every {@link TrustWeighting} (probe signals, round
 * context), every {@link FlTrust} (root update) and every {@link DifferentialPrivacy} (ε).
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
  NormClipping,
  ServerOnly,
  TrustThreshold,
  TrustWeighting,
  isFlCoreError,
} from '@chorus/fl-core';
import type { Rng, Strategy } from '@chorus/fl-core';
import { CoordinatorError } from '../errors.js';
import { roundRng } from '../engine/sampling.js';
import type { StrategyConfig, TaskConfig } from '../task/taskSchema.js';

/** A task's strategy and the handles the coordinator drives it through. */
export interface BuiltStrategy {
  readonly strategy: Strategy;
  /** Trust wrappers, outermost first: they need probe signals and a round context. */
  readonly trust: readonly TrustWeighting[];
  /** FLTrust strategies: they need the server's root update every round. */
  readonly flTrust: readonly FlTrust[];
  /** DP wrappers, outermost first: their ε is reported after every round. */
  readonly privacy: readonly DifferentialPrivacy[];
  /** How DP noise is drawn: 'crypto', 'seeded', or null without DP. */
  readonly noise: 'crypto' | 'seeded' | null;
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
  const privacy: DifferentialPrivacy[] = [];
  // Every base rule plans the task's fixed cohort; a DP wrapper replaces the plan with Poisson sampling.
  const base = { cohort: { clientsPerRound: task.clientsPerRound, overSelection: task.overSelection } };
  let noise: 'crypto' | 'seeded' | null = null;

  const build = (config: StrategyConfig, path: string): Strategy => {
    try {
      switch (config.name) {
        case 'fedavg':
          return new FedAvg(base);
        case 'fedprox':
          // μ reaches clients through the strategy's own round config.
          return new FedProx({ ...base, proximalMu: config.proximalMu });
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
        case 'fltrust':
        case 'server-only': {
          const s = config.name === 'fltrust' ? new FlTrust(base) : new ServerOnly(base);
          flTrust.push(s);
          return s;
        }
        case 'clip':
          return new NormClipping(build(config.inner, `${path}.inner`), { maxNorm: config.maxNorm, perGroup: config.perGroup });
        case 'fedmm-x': {
          let wrapper: TrustWeighting | null = null;
          const innerStrategy = build(config.inner, `${path}.inner`);
          // The threshold reads T_k that the trust wrapper wrote just before calling its inner strategy.
          const inner = config.minTrust > 0 ? new TrustThreshold(innerStrategy, config.minTrust, (id) => wrapper?.trustScores().get(id)) : innerStrategy;
          const w = config.weights;
          wrapper = new TrustWeighting(inner, {
            weights: { agreement: w.agreement, quality: w.accuracy, lossImprovement: w.loss, calibration: w.calibration, explanation: w.explanation },
            historyDecay: config.historyDecay,
            prior: config.prior,
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

  checkPrivacyPlacement(task);
  const strategy = build(task.strategy, 'strategy');
  // Built inside-out (an inner strategy is constructed before its wrapper), so reverse to list outermost first.
  return { strategy, trust: trust.reverse(), flTrust, privacy: privacy.reverse(), noise };
}

/**
 * Refuses the combinations under which the ε a DP task reports would understate what it leaks:
 * - a wrapper outside `dp` sees every client's raw update before clipping and noise, and the trust
 *   wrapper publishes a per-client score computed from it, which the accountant never counts;
 * - over-selection with `samplingRate < 1`: the accountant assumes each client is included
 *   independently with probability q (Poisson sampling, which the DP plan performs), so inviting
 *   extra clients is a setting that cannot take effect — refused rather than silently ignored.
 */
function checkPrivacyPlacement(task: TaskConfig): void {
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
  visit(task.strategy, 'strategy', null);
  if (issues.length > 0) throw new CoordinatorError('TASK_INVALID', `task ${task.id}: strategy is invalid:\n  ${issues.join('\n  ')}`, issues);
}
