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
  /** Round config entries clients need (FedProx's `proximalMu`). */
  readonly clientConfig: Readonly<Record<string, number>>;
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
  const clientConfig: Record<string, number> = {};
  let noise: 'crypto' | 'seeded' | null = null;

  const build = (config: StrategyConfig, path: string): Strategy => {
    try {
      switch (config.name) {
        case 'fedavg':
          return new FedAvg();
        case 'fedprox':
          clientConfig['proximalMu'] = config.proximalMu;
          return new FedProx({ proximalMu: config.proximalMu });
        case 'fedavgm':
          return new FedAvgMStrategy({ serverLearningRate: config.serverLearningRate, serverMomentum: config.serverMomentum });
        case 'fedadam':
        case 'fedyogi': {
          const opts = { serverLearningRate: config.serverLearningRate, beta1: config.beta1, beta2: config.beta2, tau: config.tau };
          return config.name === 'fedadam' ? new FedAdam(opts) : new FedYogi(opts);
        }
        case 'fedadagrad':
          return new FedAdagrad({ serverLearningRate: config.serverLearningRate, tau: config.tau });
        case 'median':
          return new FedMedian();
        case 'trimmed-mean':
          return new FedTrimmedAvg({ trimFraction: config.trimFraction });
        case 'krum':
          return new Krum({ numByzantine: config.numByzantine });
        case 'multi-krum':
          return new Krum({ numByzantine: config.numByzantine, numToKeep: config.numSelected ?? Math.max(1, task.clientsPerRound - config.numByzantine) });
        case 'fltrust': {
          const s = new FlTrust();
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

  const strategy = build(task.strategy, 'strategy');
  // Built inside-out (an inner strategy is constructed before its wrapper), so reverse to list outermost first.
  return { strategy, trust: trust.reverse(), flTrust, privacy: privacy.reverse(), clientConfig, noise };
}
