/**
 * Krum and Multi-Krum strategies — Blanchard, El Mhamdi, Guerraoui, Stainer 2017, arXiv:1703.02757.
 *
 * Krum runs per parameter group, over the clients that sent the group, so a client holding only some
 * modalities is compared only on what it sent. Krum's guarantee needs n > 2f + 2 updates, and with
 * modality-partial clients a single-modality group often has only two or three senders: holding
 * every group to the configured f skipped those groups every round, and their weights never learned.
 * So f is bounded per group by its senders: f_g = min(f, ⌊(n_g − 3)/2⌋), the most Byzantine senders
 * Krum can tolerate among n_g (see {@link boundedNumByzantine}). A group with enough senders gets the
 * full f; a smaller one gets the protection its size allows, which is what any robust rule can offer
 * there. With n_g <= 2 no update can be told from the others by distance (two points are each other's
 * only neighbour), so the group takes the example-weighted mean of its updates (f_g = 0). Every
 * updated group reports its `effectiveNumByzantine` f_g and `numSelected` in its metrics.
 *
 * Krum over whole updates was the alternative, and is worse here: updates of clients with different
 * modalities share few coordinates, so their distances measure which groups they sent rather than how
 * far they deviate, and Krum would keep only the majority modality's clients, starving the others.
 * The price of the per-group bound is that small groups select nobody out; `MultiKrumSelection`
 * selects whole clients instead, from Krum scores normalised per group.
 */
import { FlCoreError } from '../errors.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { fedAvg } from '../aggregation/fedAvg.js';
import { boundedNumByzantine, krum } from '../aggregation/krum.js';
import { BaseStrategy } from './base.js';
import type { StrategyOptions } from './base.js';

/** Options of {@link Krum}. */
export interface KrumStrategyOptions extends StrategyOptions {
  /** f, the Byzantine clients tolerated per group; a group with n_g senders uses min(f, ⌊(n_g − 3)/2⌋). */
  readonly numByzantine: number;
  /** m, how many best-scored deltas to average (1 = Krum); capped at n_g − f_g per group; default 1. */
  readonly numToKeep?: number;
}

/**
 * Groupwise Krum / Multi-Krum with f bounded by each group's senders (see the module comment).
 * Client scores are the Krum scores; kept deltas are averaged by example count.
 */
export class Krum extends BaseStrategy {
  readonly name: string;
  readonly numByzantine: number;
  readonly numToKeep: number;

  constructor(options: KrumStrategyOptions) {
    super(options);
    const { numByzantine, numToKeep = 1 } = options;
    if (!Number.isInteger(numByzantine) || numByzantine < 0) {
      throw new FlCoreError('AGG_BAD_CONFIG', `Krum: numByzantine must be a non-negative integer, got ${numByzantine}`);
    }
    if (!Number.isInteger(numToKeep) || numToKeep < 1) throw new FlCoreError('AGG_BAD_CONFIG', `Krum: numToKeep must be a positive integer, got ${numToKeep}`);
    this.numByzantine = numByzantine;
    this.numToKeep = numToKeep;
    this.name = numToKeep === 1 ? 'krum' : 'multi-krum';
  }

  protected combiner(): GroupCombiner {
    return (updates, weights) => {
      const n = updates.length;
      if (n <= 2) return { step: fedAvg(updates, weights), metrics: { effectiveNumByzantine: 0, numSelected: n } };
      const f = boundedNumByzantine(n, this.numByzantine);
      const { aggregate, scores, selected } = krum(updates, { numByzantine: f, numToKeep: Math.min(this.numToKeep, n - f), weights });
      return { step: aggregate, clientScores: scores, metrics: { effectiveNumByzantine: f, numSelected: selected.length } };
    };
  }
}
