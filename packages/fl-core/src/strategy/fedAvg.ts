/** FedAvg and FedProx strategies — McMahan et al. 2017, arXiv:1602.05629; Li et al. 2020, arXiv:1812.06127. */
import { FlCoreError } from '../errors.js';
import { fedAvg } from '../aggregation/fedAvg.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { BaseStrategy } from './base.js';
import type { StrategyOptions } from './base.js';
import type { RoundConfig } from './types.js';

/** Options of {@link FedAvg}. */
export interface FedAvgOptions extends StrategyOptions {
  /**
   * Sum the deltas exactly (`ExactSum`) instead of in float64: the model then depends only on which
   * results a round holds, never on their order or on how they were spread over coordinator nodes,
   * so nodes can aggregate their own clients and send partial sums (`Strategy.partials`).
   * Example counts must be whole numbers. Default false (a round's bits differ in the last place).
   */
  readonly exactSum?: boolean;
}

/** Groupwise example-weighted mean of the client deltas, added to the global model. */
export class FedAvg extends BaseStrategy {
  readonly name: string = 'fedavg';
  private readonly exactSum: boolean;

  constructor(options: FedAvgOptions = {}) {
    super(options);
    this.exactSum = options.exactSum === true;
  }

  protected override sumsExactly(): boolean {
    return this.exactSum;
  }

  protected combiner(): GroupCombiner {
    return (updates, weights) => ({ step: fedAvg(updates, weights) });
  }
}

/** Options of {@link FedProx}. */
export interface FedProxOptions extends FedAvgOptions {
  /** μ of the clients' proximal term (μ/2)‖w − w_global‖², sent in the round config as `proximalMu`. */
  readonly proximalMu: number;
}

/** FedProx: FedAvg on the server; the clients add a proximal term whose μ travels in the round config. */
export class FedProx extends FedAvg {
  override readonly name: string = 'fedprox';
  readonly proximalMu: number;

  constructor(options: FedProxOptions) {
    super(options);
    if (!Number.isFinite(options.proximalMu) || options.proximalMu < 0) {
      throw new FlCoreError('AGG_BAD_CONFIG', `FedProx: proximalMu must be finite and >= 0, got ${options.proximalMu}`);
    }
    this.proximalMu = options.proximalMu;
  }

  protected override extraRoundConfig(): RoundConfig {
    return { proximalMu: this.proximalMu };
  }
}
