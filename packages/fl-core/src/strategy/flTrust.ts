/** FLTrust strategy — Cao, Fang, Liu, Gong 2021, arXiv:2012.13995. */
import { FlCoreError } from '../errors.js';
import { flTrust } from '../aggregation/flTrust.js';
import { assertGroupsMatch } from '../aggregation/groups.js';
import type { GroupCombiner } from '../aggregation/groups.js';
import { assertFinite, flatten, splitByGroup } from '../params.js';
import type { Parameters, Tensor } from '../params.js';
import { BaseStrategy, checkServerRound } from './base.js';
import type { FitFailure, FitResult, AggregateFitResult } from './types.js';

/**
 * Groupwise FLTrust. Before each `aggregateFit` the server trains on its small root dataset and
 * passes that delta with {@link FlTrust.setRootUpdate}; each group's deltas are then trust-scored
 * against the root's delta for the group. A group the root update lacks keeps its value (skipped).
 * Client scores are the trust scores.
 */
export class FlTrust extends BaseStrategy {
  readonly name: string = 'fltrust';
  private root: { serverRound: number; groups: Map<string, Tensor[]> } | null = null;

  /** Sets the server's root-data delta for `serverRound`; throws `PARAMS_NON_FINITE` on NaN/Infinity. */
  setRootUpdate(serverRound: number, rootDelta: Parameters): void {
    checkServerRound('FlTrust.setRootUpdate', serverRound);
    assertFinite(rootDelta, 'FlTrust.setRootUpdate');
    this.root = { serverRound, groups: splitByGroup(rootDelta) };
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    checkServerRound('FlTrust.aggregateFit', serverRound);
    if (results.length === 0) return null;
    if (!this.root || this.root.serverRound !== serverRound) {
      throw new FlCoreError('AGG_BAD_CONFIG', `FlTrust.aggregateFit: no root update was set for round ${serverRound}`);
    }
    assertGroupsMatch(global, [...this.root.groups.values()].flat(), 'FlTrust root update');
    return super.aggregateFit(serverRound, global, results, failures);
  }

  /** The root update's tensors of `group` this round (undefined when it has none). */
  protected rootGroup(group: string): Tensor[] | undefined {
    return this.root?.groups.get(group);
  }

  protected combiner(): GroupCombiner {
    const root = this.root!;
    return (updates, _weights, { group }) => {
      const rootTensors = root.groups.get(group);
      if (!rootTensors) return { skipped: `the root update has no '${group}' group` };
      const { aggregate, trustScores } = flTrust(updates, flatten(rootTensors));
      const trusted = trustScores.filter((t) => t > 0).length;
      return { step: aggregate, clientScores: trustScores, metrics: { numTrusted: trusted } };
    };
  }
}

/**
 * The server alone: each round applies the server's root-data update (the one FLTrust scores
 * clients against) and ignores what clients sent, for the groups they sent. A baseline, not a
 * method: it measures how much of FLTrust's robustness is the server's own data.
 */
export class ServerOnly extends FlTrust {
  override readonly name: string = 'server-only';

  protected override combiner(): GroupCombiner {
    const inner = super.combiner();
    return (updates, weights, context) => {
      const scored = inner(updates, weights, context);
      if ('skipped' in scored) return scored;
      return { step: flatten(this.rootGroup(context.group)!), metrics: { numIgnored: updates.length } };
    };
  }
}
