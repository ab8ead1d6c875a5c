/** Coordinate-wise median strategy — Yin, Chen, Ramchandran, Bartlett 2018, arXiv:1803.01498. */
import type { GroupCombiner } from '../aggregation/groups.js';
import { median } from '../aggregation/median.js';
import { BaseStrategy } from './base.js';

/** Groupwise coordinate-wise median of the client deltas (example counts are not used). */
export class FedMedian extends BaseStrategy {
  readonly name = 'median';

  protected combiner(): GroupCombiner {
    return (updates) => ({ step: median(updates) });
  }
}
