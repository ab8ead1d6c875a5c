/**
 * Multi-Krum as a client selection across parameter groups — Blanchard, El Mhamdi, Guerraoui, Stainer
 * 2017, arXiv:1703.02757.
 *
 * Per-group Krum ({@link Krum}) bounds f by each group's senders, so with modality-partial clients
 * small groups get f_g = 0 and average everybody: it selects nothing there. This strategy selects
 * clients instead: each client is scored over the groups it sent ({@link multiKrumSelect}: Krum scores
 * normalised per group, averaged over the client's groups), the m = n − f best clients of the round
 * are kept, and each group is the example-weighted mean over the kept clients that sent it. A group no
 * kept client sent keeps its value (skipped). Client scores in each group summary are the combined
 * scores; the round metrics add `numSelected` and `numExcluded`.
 */
import { FlCoreError } from '../errors.js';
import { fedAvg } from '../aggregation/fedAvg.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { multiKrumSelect } from '../aggregation/krum.js';
import type { KrumGroup } from '../aggregation/krum.js';
import { flatten, splitByGroup } from '../params.js';
import type { Parameters } from '../params.js';
import { BaseStrategy, checkServerRound, screenFitResults } from './base.js';
import type { StrategyOptions } from './base.js';
import type { AggregateFitResult, FitFailure, FitResult } from './types.js';

/** Options of {@link MultiKrumSelection}. */
export interface MultiKrumSelectionOptions extends StrategyOptions {
  /** f, the Byzantine clients assumed among a round's results. */
  readonly numByzantine: number;
  /** m, the clients kept each round; default n − f of the round's n valid results (at least 1), and never more than n. */
  readonly numSelected?: number;
}

/** Multi-Krum selecting whole clients from their per-group Krum scores (see the module comment). */
export class MultiKrumSelection extends BaseStrategy {
  readonly name: string = 'multi-krum-select';
  readonly numByzantine: number;
  readonly numSelected: number | null;
  /** The current round's choice, set only while `aggregateFit` runs (indices into the screened results). */
  private selection: { readonly selected: ReadonlySet<number>; readonly scores: readonly number[] } | null = null;

  constructor(options: MultiKrumSelectionOptions) {
    super(options);
    const { numByzantine, numSelected } = options;
    if (!Number.isInteger(numByzantine) || numByzantine < 0) {
      throw new FlCoreError('AGG_BAD_CONFIG', `MultiKrumSelection: numByzantine must be a non-negative integer, got ${numByzantine}`);
    }
    if (numSelected !== undefined && (!Number.isInteger(numSelected) || numSelected < 1)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `MultiKrumSelection: numSelected must be a positive integer, got ${numSelected}`);
    }
    this.numByzantine = numByzantine;
    this.numSelected = numSelected ?? null;
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    checkServerRound(`${this.name}.aggregateFit`, serverRound);
    // The base strategy screens the same results the same way, so these indices are its contributors'.
    const { valid } = screenFitResults(global, results);
    if (valid.length === 0) return null;
    const n = valid.length;
    const byGroup = new Map<string, { updates: Float32Array[]; clients: number[] }>();
    valid.forEach((r, k) => {
      for (const [group, tensors] of splitByGroup(r.delta)) {
        const entry = byGroup.get(group) ?? { updates: [], clients: [] };
        entry.updates.push(flatten(tensors));
        entry.clients.push(k);
        byGroup.set(group, entry);
      }
    });
    const numToSelect = Math.min(n, this.numSelected ?? Math.max(1, n - this.numByzantine));
    const groups: KrumGroup[] = [...byGroup.values()];
    const { selected, scores } = multiKrumSelect(n, groups, { numByzantine: this.numByzantine, numToSelect });
    this.selection = { selected: new Set(selected), scores };
    try {
      const out = super.aggregateFit(serverRound, global, results, failures);
      return out && { ...out, metrics: { ...out.metrics, numSelected: selected.length, numExcluded: n - selected.length } };
    } finally {
      this.selection = null;
    }
  }

  protected combiner(): GroupCombiner {
    const selection = this.selection;
    if (!selection) throw new FlCoreError('AGG_BAD_STATE', `${this.name}: no client selection for this round`);
    return (updates, weights, { contributors }) => {
      const kept = contributors.flatMap((k, j) => (selection.selected.has(k) ? [j] : []));
      const clientScores = contributors.map((k) => selection.scores[k]!);
      if (kept.length === 0) return { skipped: 'no selected client sent this group' };
      return {
        step: fedAvg(
          kept.map((j) => updates[j]!),
          kept.map((j) => weights[j]!),
        ),
        clientScores,
        metrics: { numSelected: kept.length },
      };
    };
  }
}
