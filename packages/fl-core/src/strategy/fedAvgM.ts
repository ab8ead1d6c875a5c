/** FedAvgM strategy (server momentum) — Hsu, Qi, Brown 2019, arXiv:1909.06335. */
import { fedAvg } from '../aggregation/fedAvg.js';
import { fedAvgM } from '../aggregation/fedAvgM.js';
import type { FedAvgMOptions } from '../aggregation/fedAvgM.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { BaseStrategy } from './base.js';
import type { PendingSlots, StrategyOptions } from './base.js';

/** Options of {@link FedAvgMStrategy}. */
export type FedAvgMStrategyOptions = StrategyOptions & FedAvgMOptions;

/**
 * FedAvg with server momentum, groupwise: each group's momentum advances only in rounds where some
 * client trained that group. Momentum is exported as tensors `momentum:<name>`.
 */
export class FedAvgMStrategy extends BaseStrategy {
  readonly name = 'fedavgm';
  private readonly momentumOptions: FedAvgMOptions;

  constructor(options: FedAvgMStrategyOptions) {
    super(options, ['momentum']);
    // Validates the hyper-parameters now rather than in the first round.
    fedAvgM(new Float32Array(0), null, options);
    this.momentumOptions = {
      serverMomentum: options.serverMomentum,
      ...(options.serverLearningRate !== undefined ? { serverLearningRate: options.serverLearningRate } : {}),
    };
  }

  protected combiner(_serverRound: number, pending: PendingSlots): GroupCombiner {
    return (updates, weights, { tensors }) => {
      const { step, momentum } = fedAvgM(fedAvg(updates, weights), this.slots.read('momentum', tensors), this.momentumOptions);
      this.slots.stage(pending, 'momentum', tensors, momentum);
      return { step };
    };
  }
}
