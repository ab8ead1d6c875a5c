/**
 * What every groupwise strategy shares: client sampling, screening of fit results, groupwise
 * aggregation through a per-round combiner, example-weighted evaluation, and server state
 * (round counter plus named tensor slots such as momentum) with export/import.
 *
 * Invariant: `aggregateFit` stages state changes while combining and commits them only after every
 * group succeeded, so a throw (or a `null` round) leaves the strategy exactly as it was.
 */
import { FlCoreError, isFlCoreError } from '../errors.js';
import { aggregateByGroup, assertGroupsMatch } from '../aggregation/groups.js';
import { PartialFitBuilder, mergePartialFits, partialFitOf } from './partialFit.js';
import type { PartialFit } from './partialFit.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { allFinite, flatten, layoutOf, splitByGroup } from '../params.js';
import type { Parameters, Tensor } from '../params.js';
import { shuffled } from '../rng.js';
import { REJECTION_CODES } from './types.js';
import type {
  AggregateEvaluateResult,
  AggregateFitResult,
  ConfigureFitInput,
  EvaluateResult,
  FitFailure,
  FitPlan,
  FitResult,
  GroupSummary,
  Metrics,
  PartialAggregation,
  RejectedResult,
  RejectionCode,
  RoundConfig,
  Strategy,
  StrategyState,
  StrategyStateJson,
} from './types.js';

/** Options every strategy accepts. */
export interface StrategyOptions {
  /** Fraction of available clients to sample each round, in (0, 1]; default 1. */
  readonly fractionFit?: number;
  /** Fewest clients to sample when enough are available; default 1. */
  readonly minFitClients?: number;
  /** Fewest available clients needed to start a round at all; default 1. */
  readonly minAvailableClients?: number;
  /** Entries added to every round config. */
  readonly roundConfig?: RoundConfig;
  /** When false, any failure in a round makes the round produce no model; default true. */
  readonly acceptFailures?: boolean;
  /**
   * A fixed-size cohort instead of `fractionFit`: invite `ceil(clientsPerRound · (1 + overSelection))`
   * of the available clients and close the round once `clientsPerRound` valid results arrived.
   */
  readonly cohort?: CohortOptions;
}

/** A fixed-size cohort with over-selection (Bonawitz et al. 2019, arXiv:1902.01046, §4). */
export interface CohortOptions {
  /** Valid results a round waits for. */
  readonly clientsPerRound: number;
  /** Extra fraction of clients invited, so stragglers do not hold the round (≥ 0). */
  readonly overSelection: number;
}

/** Clients to invite and results to wait for, given how many are available. */
export function cohortSize(available: number, cohort: CohortOptions): { readonly invite: number; readonly target: number } {
  const invite = Math.min(available, Math.ceil(cohort.clientsPerRound * (1 + cohort.overSelection)));
  return { invite, target: Math.min(cohort.clientsPerRound, invite) };
}

function badConfig(fn: string, message: string): FlCoreError {
  return new FlCoreError('AGG_BAD_CONFIG', `${fn}: ${message}`);
}

function badState(fn: string, message: string): FlCoreError {
  return new FlCoreError('AGG_BAD_STATE', `${fn}: ${message}`);
}

/** Throws `AGG_BAD_CONFIG` unless the round number is a positive integer. */
export function checkServerRound(fn: string, serverRound: number): void {
  if (!Number.isInteger(serverRound) || serverRound < 1) throw badConfig(fn, `serverRound must be a positive integer, got ${serverRound}`);
}

/**
 * Splits fit results into those a combiner may use and those set aside: duplicates of a client
 * already seen, a non-positive or non-finite example count, an empty delta, a group whose layout
 * differs from the global model, or NaN/Infinity anywhere.
 */
export function screenFitResults(global: Parameters, results: readonly FitResult[]): { valid: FitResult[]; rejected: RejectedResult[] } {
  const valid: FitResult[] = [];
  const rejected: RejectedResult[] = [];
  const seen = new Set<string>();
  const globalGroups = splitByGroup(global);
  for (const r of results) {
    const rejection = screenFitResult(global, globalGroups, seen, r);
    if (rejection) rejected.push(rejection);
    else valid.push(r);
  }
  return { valid, rejected };
}

/**
 * {@link screenFitResults} for one result: why it is set aside, or null. `seen` holds the clients
 * screened before it (this one is added); `globalGroups` is `splitByGroup(global)`.
 */
export function screenFitResult(global: Parameters, globalGroups: ReadonlyMap<string, Tensor[]>, seen: Set<string>, r: FitResult): RejectedResult | null {
  const reject = (code: RejectionCode, message: string): RejectedResult => ({ clientId: r.clientId, code, message });
  if (seen.has(r.clientId)) return reject('DUPLICATE_RESULT', 'a result from this client was already received this round');
  seen.add(r.clientId);
  if (!Number.isFinite(r.numExamples) || r.numExamples <= 0) return reject('AGG_BAD_WEIGHTS', `numExamples must be finite and > 0, got ${r.numExamples}`);
  if (r.delta.length === 0) return reject('AGG_NO_UPDATES', 'the delta holds no tensors');
  try {
    assertGroupsMatch(global, r.delta, `result of '${r.clientId}'`, globalGroups);
  } catch (err) {
    if (!isFlCoreError(err)) throw err;
    return reject((REJECTION_CODES as readonly string[]).includes(err.code) ? (err.code as RejectionCode) : 'PARAMS_MISMATCH', err.message);
  }
  const bad = r.delta.find((t) => !allFinite(t.values));
  if (bad) return reject('PARAMS_NON_FINITE', `'${bad.name}' holds NaN or Infinity`);
  return null;
}

/** Example-weighted mean of each metric over the clients that reported it (non-finite values ignored). */
export function weightedMetrics(entries: readonly { readonly numExamples: number; readonly metrics?: Metrics }[]): Record<string, number> {
  const sums = new Map<string, { total: number; weight: number }>();
  for (const e of entries) {
    if (!e.metrics || !(e.numExamples > 0) || !Number.isFinite(e.numExamples)) continue;
    for (const [key, value] of Object.entries(e.metrics)) {
      if (!Number.isFinite(value)) continue;
      const s = sums.get(key) ?? { total: 0, weight: 0 };
      s.total += e.numExamples * value;
      s.weight += e.numExamples;
      sums.set(key, s);
    }
  }
  const out: Record<string, number> = {};
  for (const [key, s] of sums) out[key] = s.total / s.weight;
  return out;
}

/** A fit round's figures: the clients' weighted metrics, the counts, and each group's contributors and figures. */
function fitMetrics(
  summed: readonly { readonly numExamples: number; readonly metrics?: Metrics }[],
  failures: readonly FitFailure[],
  rejected: readonly RejectedResult[],
  summaries: readonly GroupSummary[],
): Record<string, number> {
  const metrics: Record<string, number> = {
    ...weightedMetrics(summed),
    numResults: summed.length,
    numFailures: failures.length,
    numRejected: rejected.length,
    numExamples: summed.reduce((n, r) => n + r.numExamples, 0),
  };
  for (const g of summaries) {
    metrics[`clients:${g.group}`] = g.clientIds.length;
    for (const [key, value] of Object.entries(g.metrics ?? {})) metrics[`${g.group}:${key}`] = value;
  }
  return metrics;
}

/** Validates the JSON half of a state against the strategy that imports it. */
export function checkStateJson(fn: string, json: StrategyStateJson, expectedName: string): void {
  if (typeof json !== 'object' || json === null) throw badState(fn, 'state JSON must be an object');
  if (json.strategy !== expectedName) throw badState(fn, `state is for '${String(json.strategy)}', this strategy is '${expectedName}'`);
  if (json.version !== 1) throw badState(fn, `unsupported state version ${String(json.version)}`);
  if (!Number.isInteger(json.roundsAggregated) || json.roundsAggregated < 0) {
    throw badState(fn, `roundsAggregated must be a non-negative integer, got ${String(json.roundsAggregated)}`);
  }
  if (json.lastServerRound !== null && (!Number.isInteger(json.lastServerRound) || json.lastServerRound < 1)) {
    throw badState(fn, `lastServerRound must be null or a positive integer, got ${String(json.lastServerRound)}`);
  }
}

/** Staged writes to tensor slots, applied only when the whole round succeeds. */
export type PendingSlots = Map<string, Tensor>;

/**
 * Named per-parameter server state (e.g. 'momentum', 'm', 'v'), stored per tensor so that a group
 * nobody trained keeps its state untouched. Exported names are `<slot>:<parameter name>`.
 */
export class TensorSlots {
  private readonly stored = new Map<string, Tensor>();

  constructor(private readonly slotNames: readonly string[]) {}

  /** The slot's values for `tensors`, flattened in their order, or null when none are stored yet. */
  read(slot: string, tensors: readonly Tensor[]): Float32Array | null {
    const found = tensors.map((t) => this.stored.get(`${slot}:${t.name}`));
    if (found.every((t) => t === undefined)) return null;
    const size = tensors.reduce((n, t) => n + t.values.length, 0);
    const flat = new Float32Array(size);
    let offset = 0;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const s = found[i];
      if (!s) throw badState('TensorSlots.read', `slot '${slot}' holds part of a group but not '${t.name}'`);
      if (s.values.length !== t.values.length) {
        throw new FlCoreError(
          'PARAMS_MISMATCH',
          `TensorSlots.read: slot '${slot}' has ${s.values.length} values for '${t.name}', the model ${t.values.length}`,
        );
      }
      flat.set(s.values, offset);
      offset += t.values.length;
    }
    return flat;
  }

  /** Stages `flat` (in `tensors`' order) as the slot's new values. */
  stage(pending: PendingSlots, slot: string, tensors: readonly Tensor[], flat: Float32Array): void {
    let offset = 0;
    for (const t of tensors) {
      const name = `${slot}:${t.name}`;
      pending.set(name, { name, shape: [...t.shape], values: flat.slice(offset, offset + t.values.length) });
      offset += t.values.length;
    }
  }

  /** Applies staged writes. */
  commit(pending: PendingSlots): void {
    for (const [name, t] of pending) this.stored.set(name, t);
  }

  /** Copies of every stored tensor, sorted by name. */
  export(): Tensor[] {
    return [...this.stored.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.slice() }));
  }

  /** Replaces the stored tensors; throws `AGG_BAD_STATE` (unknown slot, duplicate, non-finite) and changes nothing. */
  import(tensors: Parameters): void {
    const next = new Map<string, Tensor>();
    for (const t of tensors) {
      const colon = t.name.indexOf(':');
      const slot = colon > 0 ? t.name.slice(0, colon) : '';
      if (!this.slotNames.includes(slot) || colon === t.name.length - 1) {
        throw badState('TensorSlots.import', `'${t.name}' is not <slot>:<name> with slot in [${this.slotNames.join(', ')}]`);
      }
      if (next.has(t.name)) throw badState('TensorSlots.import', `duplicate state tensor '${t.name}'`);
      if (!(t.values instanceof Float32Array) || !allFinite(t.values)) throw badState('TensorSlots.import', `'${t.name}' must hold finite float32 values`);
      if (t.shape.reduce((n, d) => n * d, 1) !== t.values.length) throw badState('TensorSlots.import', `'${t.name}' values do not fill its shape`);
      next.set(t.name, { name: t.name, shape: [...t.shape], values: t.values.slice() });
    }
    this.stored.clear();
    for (const [name, t] of next) this.stored.set(name, t);
  }
}

/**
 * A groupwise strategy: subclasses supply the per-round combiner (and, when stateful, slot names
 * and extra JSON); everything else is shared.
 */
export abstract class BaseStrategy implements Strategy {
  abstract readonly name: string;
  protected readonly slots: TensorSlots;
  private readonly fractionFit: number;
  private readonly minFitClients: number;
  private readonly minAvailableClients: number;
  private readonly roundConfig: RoundConfig;
  private readonly acceptFailures: boolean;
  private readonly cohort: CohortOptions | null;
  private roundsAggregated = 0;
  private lastServerRound: number | null = null;

  constructor(options: StrategyOptions = {}, slotNames: readonly string[] = []) {
    const { fractionFit = 1, minFitClients = 1, minAvailableClients = 1, roundConfig = {}, acceptFailures = true, cohort = null } = options;
    if (
      cohort &&
      (!Number.isInteger(cohort.clientsPerRound) || cohort.clientsPerRound < 1 || !(cohort.overSelection >= 0) || !Number.isFinite(cohort.overSelection))
    ) {
      throw badConfig('Strategy', `cohort needs an integer clientsPerRound ≥ 1 and a finite overSelection ≥ 0, got ${JSON.stringify(cohort)}`);
    }
    this.cohort = cohort && { ...cohort };
    if (!(fractionFit > 0 && fractionFit <= 1)) throw badConfig('Strategy', `fractionFit must be in (0, 1], got ${fractionFit}`);
    if (!Number.isInteger(minFitClients) || minFitClients < 1) throw badConfig('Strategy', `minFitClients must be a positive integer, got ${minFitClients}`);
    if (!Number.isInteger(minAvailableClients) || minAvailableClients < 1) {
      throw badConfig('Strategy', `minAvailableClients must be a positive integer, got ${minAvailableClients}`);
    }
    this.fractionFit = fractionFit;
    this.minFitClients = minFitClients;
    this.minAvailableClients = minAvailableClients;
    this.roundConfig = { ...roundConfig };
    this.acceptFailures = acceptFailures;
    this.slots = new TensorSlots(slotNames);
  }

  /** Extra entries of this strategy's round config (e.g. FedProx's `proximalMu`). */
  protected extraRoundConfig(): RoundConfig {
    return {};
  }

  /** The combiner for one round; stateful strategies read `slots` and stage into `pending`. */
  protected abstract combiner(serverRound: number, pending: PendingSlots): GroupCombiner;

  /** Strategy-specific JSON state. */
  protected exportExtra(): Readonly<Record<string, unknown>> | undefined {
    return undefined;
  }

  /** Validates and returns a setter for strategy-specific JSON state; throw `AGG_BAD_STATE` to refuse. */
  protected importExtra(_extra: Readonly<Record<string, unknown>> | undefined): () => void {
    return () => {};
  }

  configureFit(input: ConfigureFitInput): FitPlan {
    checkServerRound(`${this.name}.configureFit`, input.serverRound);
    const config: RoundConfig = { ...this.roundConfig, ...this.extraRoundConfig(), serverRound: input.serverRound };
    const available = [...new Set(input.availableClients)];
    if (available.length < this.minAvailableClients) return { serverRound: input.serverRound, clientIds: [], target: 0, config };
    const { invite, target } = this.cohort
      ? cohortSize(available.length, this.cohort)
      : (() => {
          const size = Math.min(available.length, Math.max(Math.floor(available.length * this.fractionFit), this.minFitClients));
          return { invite: size, target: size };
        })();
    // Sorting first makes the sample depend on the rng and the set of clients, not on connection order.
    const clientIds = shuffled(input.rng, available.sort()).slice(0, invite);
    return { serverRound: input.serverRound, clientIds, target, config };
  }

  /** True when this strategy's step is the exact example-weighted mean (see {@link Strategy.partials}). */
  protected sumsExactly(): boolean {
    return false;
  }

  get partials(): PartialAggregation | undefined {
    if (!this.sumsExactly()) return undefined;
    return {
      partial: (serverRound, global, results) => {
        checkServerRound(`${this.name}.partials.partial`, serverRound);
        return partialFitOf(serverRound, global, results);
      },
      start: (serverRound, global) => {
        checkServerRound(`${this.name}.partials.start`, serverRound);
        return new PartialFitBuilder(serverRound, global);
      },
      aggregatePartials: (serverRound, global, partials, failures) => this.aggregatePartialFits(serverRound, global, partials, failures),
    };
  }

  aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    checkServerRound(`${this.name}.aggregateFit`, serverRound);
    if (results.length === 0) return null;
    // One path for one node and many: the round is one partial, aggregated as the leader aggregates parts.
    if (this.sumsExactly()) return this.aggregatePartialFits(serverRound, global, [partialFitOf(serverRound, global, results)], failures);
    if (failures.length > 0 && !this.acceptFailures) return null;
    const { valid, rejected } = screenFitResults(global, results);
    if (valid.length === 0) return null;

    const pending: PendingSlots = new Map();
    const { parameters, groups } = aggregateByGroup(
      global,
      valid.map((r) => ({ delta: r.delta, weight: r.numExamples })),
      this.combiner(serverRound, pending),
    );
    if (!groups.some((g) => g.status === 'updated')) return null;
    this.slots.commit(pending);
    this.roundsAggregated++;
    this.lastServerRound = serverRound;

    const summaries: GroupSummary[] = groups.map((g) => {
      const clientIds = g.contributors.map((k) => valid[k]!.clientId);
      const scores = g.clientScores;
      return {
        group: g.group,
        status: g.status,
        clientIds,
        ...(g.reason !== undefined ? { reason: g.reason } : {}),
        ...(scores ? { clientScores: Object.fromEntries(clientIds.map((id, j) => [id, scores[j]!])) } : {}),
        ...(g.metrics ? { metrics: g.metrics } : {}),
      };
    });
    return { parameters, metrics: fitMetrics(valid, failures, rejected, summaries), groups: summaries, rejected };
  }

  /**
   * The exact-sum round: each group's step is its exact Σ n_k·Δ_k over Σ n_k, rounded once to
   * float32, so the result depends only on which results the partials hold.
   */
  private aggregatePartialFits(
    serverRound: number,
    global: Parameters,
    partials: readonly PartialFit[],
    failures: readonly FitFailure[],
  ): AggregateFitResult | null {
    checkServerRound(`${this.name}.aggregatePartials`, serverRound);
    const merged = mergePartialFits(serverRound, partials);
    if (merged.entries.length + merged.rejected.length === 0) return null;
    if (failures.length > 0 && !this.acceptFailures) return null;
    if (merged.entries.length === 0) return null;
    if (new Set(global.map((t) => t.name)).size !== global.length) {
      throw new FlCoreError('PARAMS_MISMATCH', `${this.name}.aggregatePartials: the global model has duplicate tensor names`);
    }
    const parameters = new Map<string, Tensor>();
    const summaries: GroupSummary[] = [];
    for (const [group, tensors] of splitByGroup(global)) {
      const part = merged.groups.get(group);
      const layout = layoutOf(tensors);
      const values = flatten(tensors);
      if (part) {
        if (part.sum.length !== layout.size) {
          throw new FlCoreError(
            'AGG_BAD_PARTIAL',
            `${this.name}.aggregatePartials: group '${group}' sums ${part.sum.length} values, the model has ${layout.size}`,
          );
        }
        const step = part.sum.quotient(part.weight);
        for (let i = 0; i < values.length; i++) values[i] = values[i]! + step[i]!;
      }
      tensors.forEach((t, j) => {
        const start = layout.offsets[j]!;
        parameters.set(t.name, { name: t.name, shape: [...t.shape], values: values.slice(start, start + t.values.length) });
      });
      summaries.push({ group, status: part ? 'updated' : 'kept', clientIds: part ? [...part.clientIds] : [] });
    }
    for (const group of merged.groups.keys()) {
      if (!summaries.some((g) => g.group === group))
        throw new FlCoreError('AGG_BAD_PARTIAL', `${this.name}.aggregatePartials: group '${group}' is not in the global model`);
    }
    this.roundsAggregated++;
    this.lastServerRound = serverRound;
    const metrics = fitMetrics(merged.entries, failures, merged.rejected, summaries);
    return { parameters: global.map((t) => parameters.get(t.name)!), metrics, groups: summaries, rejected: merged.rejected };
  }

  aggregateEvaluate(serverRound: number, results: readonly EvaluateResult[], _failures: readonly FitFailure[]): AggregateEvaluateResult | null {
    checkServerRound(`${this.name}.aggregateEvaluate`, serverRound);
    const seen = new Set<string>();
    const usable = results.filter((r) => {
      const ok = !seen.has(r.clientId) && Number.isFinite(r.loss) && Number.isFinite(r.numExamples) && r.numExamples > 0;
      seen.add(r.clientId);
      return ok;
    });
    if (usable.length === 0) return null;
    let total = 0;
    let weight = 0;
    for (const r of usable) {
      total += r.numExamples * r.loss;
      weight += r.numExamples;
    }
    return { loss: total / weight, metrics: { ...weightedMetrics(usable), numEvaluations: usable.length, numExamples: weight } };
  }

  exportState(): StrategyState {
    const extra = this.exportExtra();
    return {
      json: {
        strategy: this.name,
        version: 1,
        roundsAggregated: this.roundsAggregated,
        lastServerRound: this.lastServerRound,
        ...(extra ? { extra: structuredCloneJson(extra) } : {}),
      },
      tensors: this.slots.export(),
    };
  }

  importState(state: StrategyState): void {
    const fn = `${this.name}.importState`;
    checkStateJson(fn, state.json, this.name);
    const applyExtra = this.importExtra(state.json.extra);
    this.slots.import(state.tensors);
    applyExtra();
    this.roundsAggregated = state.json.roundsAggregated;
    this.lastServerRound = state.json.lastServerRound;
  }
}

function structuredCloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
