/** FedAdam, FedYogi and FedAdagrad strategies — Reddi, Charles, Zaheer et al. 2021, arXiv:2003.00295. */
import { fedAvg } from '../aggregation/fedAvg.js';
import { fedOpt } from '../aggregation/fedOpt.js';
import type { FedOptKind, FedOptOptions } from '../aggregation/fedOpt.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { BaseStrategy } from './base.js';
import type { PendingSlots, StrategyOptions } from './base.js';

/** Options of the FedOpt strategies. */
export type FedOptStrategyOptions = StrategyOptions & FedOptOptions;

/**
 * An adaptive server optimizer applied to the groupwise FedAvg of the client deltas (the
 * pseudo-gradient). Moments are exported as tensors `m:<name>` and `v:<name>`.
 */
export class FedOptStrategy extends BaseStrategy {
  readonly name: string;
  private readonly optimizerOptions: FedOptOptions;

  constructor(
    readonly kind: FedOptKind,
    options: FedOptStrategyOptions = {},
  ) {
    super(options, ['m', 'v']);
    const { serverLearningRate, beta1, beta2, tau } = options;
    this.optimizerOptions = {
      ...(serverLearningRate !== undefined ? { serverLearningRate } : {}),
      ...(beta1 !== undefined ? { beta1 } : {}),
      ...(beta2 !== undefined ? { beta2 } : {}),
      ...(tau !== undefined ? { tau } : {}),
    };
    // Validates the hyper-parameters now rather than in the first round.
    fedOpt(kind, new Float32Array(0), null, this.optimizerOptions);
    this.name = `fed${kind}`;
  }

  protected combiner(_serverRound: number, pending: PendingSlots): GroupCombiner {
    return (updates, weights, { tensors }) => {
      const m = this.slots.read('m', tensors);
      const v = this.slots.read('v', tensors);
      const { step, state } = fedOpt(this.kind, fedAvg(updates, weights), m && v ? { m, v } : null, this.optimizerOptions);
      this.slots.stage(pending, 'm', tensors, state.m);
      this.slots.stage(pending, 'v', tensors, state.v);
      return { step };
    };
  }
}

/** FedAdam strategy. */
export class FedAdam extends FedOptStrategy {
  constructor(options: FedOptStrategyOptions = {}) {
    super('adam', options);
  }
}

/** FedYogi strategy. */
export class FedYogi extends FedOptStrategy {
  constructor(options: FedOptStrategyOptions = {}) {
    super('yogi', options);
  }
}

/** FedAdagrad strategy. */
export class FedAdagrad extends FedOptStrategy {
  constructor(options: FedOptStrategyOptions = {}) {
    super('adagrad', options);
  }
}
