/**
 * The strategy contract, after Flower's `Strategy`: every strategy (and every wrapper around one)
 * has the same hooks — configure a round, aggregate a round's fit results, aggregate evaluations —
 * and exports/imports its server state so the coordinator can checkpoint and resume.
 *
 * Client failures are data, not exceptions: `aggregateFit` receives them and returns `null` ("no
 * new model") when nothing valid remains. It throws only for the server's own mistakes (a bad round
 * number, a malformed root update, a global model with duplicate names).
 */
import type { Parameters, Tensor } from '../params.js';
import type { Rng } from '../rng.js';
import type { PartialFit, RunningPartialFit } from './partialFit.js';

/** A value in a round config sent to clients. */
export type ConfigValue = number | string | boolean;

/** Settings sent to every selected client for a round (e.g. `proximalMu`, `localEpochs`). */
export type RoundConfig = Readonly<Record<string, ConfigValue>>;

/** Named figures (losses, accuracies, counts). */
export type Metrics = Readonly<Record<string, number>>;

/** Input of {@link Strategy.configureFit}. */
export interface ConfigureFitInput {
  readonly serverRound: number;
  /** Ids of the clients connected and idle now. */
  readonly availableClients: readonly string[];
  /** Source of randomness for client sampling. */
  readonly rng: Rng;
}

/** Who trains this round and with what settings; `clientIds` is empty when too few are available. */
export interface FitPlan {
  readonly serverRound: number;
  /** The clients invited, in the order the sampler drew them. */
  readonly clientIds: readonly string[];
  /**
   * Valid results that close the round before its deadline (≤ `clientIds.length`). Over-selection
   * invites more clients than it waits for; Poisson sampling (DP) waits for every sampled client.
   */
  readonly target: number;
  readonly config: RoundConfig;
}

/** One client's successful local training. */
export interface FitResult {
  readonly clientId: string;
  /** Examples the client trained on (> 0): the weight of example-weighted rules. */
  readonly numExamples: number;
  /** Local parameters − the round's global parameters, for the groups the client trained. */
  readonly delta: Parameters;
  /** Figures the client reported (e.g. train loss). */
  readonly metrics?: Metrics;
  /** Server-computed facts about this result, opaque to most strategies (the trust wrapper reads them). */
  readonly signals?: Readonly<Record<string, unknown>>;
}

/**
 * Why a selected client delivered nothing usable: it left, missed the deadline, its upload failed
 * one of the server's checks (the wire protocol's `UPDATE_*` codes), or the server could not
 * measure it (`PROBE_FAILED`).
 */
export const FIT_FAILURE_CODES = [
  'DISCONNECTED',
  'TIMEOUT',
  'UPDATE_TOO_LARGE',
  'UPDATE_MALFORMED',
  'UPDATE_NON_FINITE',
  'UPDATE_SHAPE',
  'UPDATE_NORM',
  'PROBE_FAILED',
] as const;

/** One of {@link FIT_FAILURE_CODES}. */
export type FitFailureCode = (typeof FIT_FAILURE_CODES)[number];

/** A client that was asked to train and did not deliver a usable result. */
export interface FitFailure {
  readonly clientId: string;
  readonly code: FitFailureCode;
  readonly message?: string;
}

/**
 * Why a strategy set a result aside: a second result from one client, a bad example count, an
 * empty delta, a layout that is not the global model’s, NaN/Infinity, trust too low to count, or
 * updates that copy another client’s (similarity damping).
 */
export const REJECTION_CODES = [
  'DUPLICATE_RESULT',
  'AGG_BAD_WEIGHTS',
  'AGG_NO_UPDATES',
  'PARAMS_MISMATCH',
  'PARAMS_NON_FINITE',
  'UNTRUSTED',
  'SIMILAR_UPDATES',
] as const;

/** One of {@link REJECTION_CODES}. */
export type RejectionCode = (typeof REJECTION_CODES)[number];

/** A fit result the strategy set aside, and why. */
export interface RejectedResult {
  readonly clientId: string;
  readonly code: RejectionCode;
  readonly message: string;
}

/** A client's trust score T_k in [0, 1] for one round (FedMM-X's trust-aware weighting). */
export interface ClientTrustScore {
  readonly clientId: string;
  readonly trust: number;
}

/** What a DP wrapper has spent so far: (ε, δ) after this round's release. */
export interface PrivacyReport {
  readonly epsilon: number;
  readonly delta: number;
  /** q the accountant recorded for each release (the sampling the plan performed). */
  readonly samplingRate: number;
  /** Releases recorded so far. */
  readonly releases: number;
}

/** How one parameter group fared in a round. */
export interface GroupSummary {
  readonly group: string;
  /** 'updated', 'kept' (nobody sent it) or 'skipped' (the rule declined, see `reason`). */
  readonly status: 'updated' | 'kept' | 'skipped';
  readonly clientIds: readonly string[];
  readonly reason?: string;
  /** Per-client figure of the rule (FLTrust trust, Krum score, …) keyed by client id. */
  readonly clientScores?: Readonly<Record<string, number>>;
  readonly metrics?: Metrics;
}

/** The new global model of a round and what happened on the way. */
export interface AggregateFitResult {
  readonly parameters: Tensor[];
  readonly metrics: Metrics;
  readonly groups: readonly GroupSummary[];
  readonly rejected: readonly RejectedResult[];
  /** T_k of every client scored this round, when a trust wrapper ran. */
  readonly trust?: readonly ClientTrustScore[];
  /** The privacy spent so far, when a DP wrapper ran. */
  readonly privacy?: PrivacyReport;
}

/** One client's evaluation of the global model. */
export interface EvaluateResult {
  readonly clientId: string;
  readonly numExamples: number;
  readonly loss: number;
  readonly metrics?: Metrics;
}

/** Example-weighted evaluation over the clients that reported. */
export interface AggregateEvaluateResult {
  readonly loss: number;
  readonly metrics: Metrics;
}

/** The JSON half of a strategy's state; everything in it survives `JSON.stringify`. */
export interface StrategyStateJson {
  /** {@link Strategy.name} of the strategy that exported it. */
  readonly strategy: string;
  readonly version: 1;
  /** Rounds that produced a new model. */
  readonly roundsAggregated: number;
  /** The last round that produced a new model, or null. */
  readonly lastServerRound: number | null;
  /** Strategy-specific settings or counters. */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** The wrapped strategy's state, for wrappers. */
  readonly inner?: StrategyStateJson;
}

/** A strategy's server state: JSON plus tensors (momentum, moments) named `<slot>:<parameter name>`. */
export interface StrategyState {
  readonly json: StrategyStateJson;
  readonly tensors: Parameters;
}

/** A federated strategy; see the module comment for the contract. */
export interface Strategy {
  /** Stable identifier, also written into exported state (e.g. 'fedavg', 'clip(krum)'). */
  readonly name: string;
  /** Samples the clients to train this round and builds the round config. */
  configureFit(input: ConfigureFitInput): FitPlan;
  /**
   * Optional: `result` has arrived for `serverRound` and passed the server's checks, before the round
   * closes (it may yet be refused, and the round may never close). Work that depends only on this
   * result and the state committed so far may be done now, off the round's close; `aggregateFit`
   * returns exactly the same, bit for bit, whether or not this was called, for any result or
   * none. A result, and its delta, is not changed after it arrives: what was computed may be kept
   * by the delta's identity.
   */
  observeFit?(serverRound: number, global: Parameters, result: FitResult): void;
  /** New global parameters from the round's results, or null when no valid result remains. */
  aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null;
  /** Example-weighted loss and metrics, or null when no valid evaluation arrived. */
  aggregateEvaluate(serverRound: number, results: readonly EvaluateResult[], failures: readonly FitFailure[]): AggregateEvaluateResult | null;
  /** A copy of the server state, enough to resume with identical weights. */
  exportState(): StrategyState;
  /** Replaces the server state with an exported one; throws `AGG_BAD_STATE` and changes nothing if it does not fit. */
  importState(state: StrategyState): void;
  /**
   * Present only when the round's aggregate is an exact, order-free sum of per-result terms (FedAvg
   * with `exactSum`): then nodes may each sum their own results and the leader combine the parts.
   * A wrapper that reads every update does not forward it, so it is absent wherever it would be wrong.
   */
  readonly partials?: PartialAggregation;
}

/** A round aggregated from partial sums; see {@link Strategy.partials}. */
export interface PartialAggregation {
  /** The partial sum of some of a round's results, screened as `aggregateFit` screens them. */
  partial(serverRound: number, global: Parameters, results: readonly FitResult[]): PartialFit;
  /** The same partial built one result at a time, as results arrive (any order: the same partial). */
  start(serverRound: number, global: Parameters): RunningPartialFit;
  /**
   * Exactly what `aggregateFit` returns for the union of the partials' results, whatever the
   * partition; throws `AGG_BAD_PARTIAL` for partials of another round or sharing a client.
   */
  aggregatePartials(serverRound: number, global: Parameters, partials: readonly PartialFit[], failures: readonly FitFailure[]): AggregateFitResult | null;
}
