/** Coordinate-wise trimmed mean strategy — Yin, Chen, Ramchandran, Bartlett 2018, arXiv:1803.01498. */
import { FlCoreError } from '../errors.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { trimmedMean } from '../aggregation/trimmedMean.js';
import { BaseStrategy } from './base.js';
import type { StrategyOptions } from './base.js';

/** Options of {@link FedTrimmedAvg}. */
export interface FedTrimmedAvgOptions extends StrategyOptions {
  /** β in [0, 0.5): the fraction cut from each end of every coordinate; default 0.2. */
  readonly trimFraction?: number;
}

/** Groupwise coordinate-wise trimmed mean of the client deltas (example counts are not used). */
export class FedTrimmedAvg extends BaseStrategy {
  readonly name = 'trimmed-mean';
  readonly trimFraction: number;

  constructor(options: FedTrimmedAvgOptions = {}) {
    super(options);
    const { trimFraction = 0.2 } = options;
    if (!(trimFraction >= 0 && trimFraction < 0.5)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `FedTrimmedAvg: trimFraction must be in [0, 0.5), got ${trimFraction}`);
    }
    this.trimFraction = trimFraction;
  }

  protected combiner(): GroupCombiner {
    return (updates) => ({ step: trimmedMean(updates, this.trimFraction) });
  }
}
