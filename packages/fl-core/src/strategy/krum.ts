/** Krum and Multi-Krum strategies — Blanchard, El Mhamdi, Guerraoui, Stainer 2017, arXiv:1703.02757. */
import { FlCoreError } from '../errors.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { krum } from '../aggregation/krum.js';
import { BaseStrategy } from './base.js';
import type { StrategyOptions } from './base.js';

/** Options of {@link Krum}. */
export interface KrumStrategyOptions extends StrategyOptions {
  /** f, the Byzantine clients tolerated per group. */
  readonly numByzantine: number;
  /** m, how many best-scored deltas to average (1 = Krum); capped at n − f per group; default 1. */
  readonly numToKeep?: number;
}

/**
 * Groupwise Krum / Multi-Krum. A group sent by n <= 2f + 2 clients keeps its previous value that
 * round (reported as skipped) instead of being aggregated without the guarantee. Client scores are
 * the Krum scores; kept deltas are averaged by example count.
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
    this.name = numToKeep === 1 ? 'krum' : 'multikrum';
  }

  protected combiner(): GroupCombiner {
    const f = this.numByzantine;
    return (updates, weights) => {
      const n = updates.length;
      if (n <= 2 * f + 2) return { skipped: `Krum needs more than ${2 * f + 2} clients for f = ${f}, got ${n}` };
      const { aggregate, scores, selected } = krum(updates, { numByzantine: f, numToKeep: Math.min(this.numToKeep, n - f), weights });
      return { step: aggregate, clientScores: scores, metrics: { numSelected: selected.length } };
    };
  }
}
