/**
 * Groupwise aggregation for clients that hold only some modalities. An update may carry any subset
 * of the model's parameter groups (`groupOf(name)`: 'image', 'text', 'audio', 'fusion', …); each
 * group is aggregated over the clients that sent it, with weights renormalised among them, and a
 * group nobody sent keeps its previous global value. Any per-group combiner plugs in, so every
 * aggregation rule works groupwise.
 *
 * Invariant: every input is validated before any combiner runs, and the result is built from new
 * arrays, so a rejected call (a coded {@link FlCoreError}) changes nothing.
 */
import { FlCoreError } from '../errors.js';
import { assertSameLayout, contiguousView, flatten, layoutOf, splitByGroup } from '../params.js';
import type { Parameters, Tensor } from '../params.js';

/** One client's contribution: a delta over some groups and its weight (e.g. its example count). */
export interface GroupUpdate {
  readonly delta: Parameters;
  readonly weight: number;
}

/** What a combiner knows about the group it is aggregating. */
export interface GroupContext {
  /** The group's name. */
  readonly group: string;
  /** The group's tensors in the current global model, in model order. */
  readonly tensors: readonly Tensor[];
  /** The group's current global values, flattened in model order (do not mutate). */
  readonly global: Float32Array;
  /** Indices into the update list of the clients that sent this group, in list order. */
  readonly contributors: readonly number[];
}

/** A combiner's answer for one group. */
export type GroupOutcome =
  | {
      /** Added to the group's global values. */
      readonly step: Float32Array;
      /** Optional per-contributor figure (trust, Krum score, …), aligned with `contributors`. */
      readonly clientScores?: readonly number[];
      /** Optional figures about the group's aggregation. */
      readonly metrics?: Readonly<Record<string, number>>;
    }
  | {
      /** Why the group keeps its previous value this round (e.g. too few clients for the rule). */
      readonly skipped: string;
    };

/**
 * Aggregates one group: `updates[j]` is contributor j's flat delta for the group (group order),
 * `weights[j]` its raw weight. Must not mutate its inputs.
 */
export type GroupCombiner = (updates: readonly Float32Array[], weights: readonly number[], context: GroupContext) => GroupOutcome;

/** How one group fared. */
export interface GroupReport {
  readonly group: string;
  readonly contributors: readonly number[];
  /** 'updated': a step was applied; 'kept': nobody sent it; 'skipped': the combiner declined. */
  readonly status: 'updated' | 'kept' | 'skipped';
  readonly reason?: string;
  readonly clientScores?: readonly number[];
  readonly metrics?: Readonly<Record<string, number>>;
}

/** The new global model and one report per group of the global model, in model order. */
export interface GroupwiseResult {
  readonly parameters: Tensor[];
  readonly groups: readonly GroupReport[];
}

/**
 * Throws `PARAMS_MISMATCH` unless every group `delta` carries matches `global`'s tensors of that
 * group exactly (names, shapes, order), naming the offending group.
 */
export function assertGroupsMatch(
  global: Parameters,
  delta: Parameters,
  context = 'update',
  globalGroups: ReadonlyMap<string, Tensor[]> = splitByGroup(global),
): void {
  for (const [group, tensors] of splitByGroup(delta)) {
    const expected = globalGroups.get(group);
    if (!expected) throw new FlCoreError('PARAMS_MISMATCH', `${context}: group '${group}' is not in the global model`);
    assertSameLayout(expected, tensors, `${context} group '${group}'`);
  }
}

/**
 * New global parameters: for each group of `global`, global + combine(deltas of the clients that
 * sent it). Throws `AGG_NO_UPDATES` (empty list), `AGG_BAD_WEIGHTS` (negative or non-finite
 * weight), `PARAMS_MISMATCH` (an update's group differs from the global layout, or a combiner's
 * step has the wrong length) or whatever the combiner throws; never mutates its input.
 */
export function aggregateByGroup(global: Parameters, updates: readonly GroupUpdate[], combine: GroupCombiner): GroupwiseResult {
  if (updates.length === 0) throw new FlCoreError('AGG_NO_UPDATES', 'aggregateByGroup: no updates to aggregate');
  if (new Set(global.map((t) => t.name)).size !== global.length) {
    throw new FlCoreError('PARAMS_MISMATCH', 'aggregateByGroup: the global model has duplicate tensor names');
  }
  // Split once: every update is checked against the same groups.
  const globalGroups = splitByGroup(global);
  const splits = updates.map((u, k) => {
    if (!Number.isFinite(u.weight) || u.weight < 0) {
      throw new FlCoreError('AGG_BAD_WEIGHTS', `aggregateByGroup: weight of update ${k} must be finite and >= 0, got ${u.weight}`);
    }
    assertGroupsMatch(global, u.delta, `aggregateByGroup: update ${k}`, globalGroups);
    return splitByGroup(u.delta);
  });

  const parameters: Tensor[] = [];
  const groups: GroupReport[] = [];
  for (const [group, tensors] of globalGroups) {
    const contributors: number[] = [];
    const flats: Float32Array[] = [];
    const weights: number[] = [];
    for (let k = 0; k < splits.length; k++) {
      const sent = splits[k]!.get(group);
      if (!sent) continue;
      contributors.push(k);
      // A group whose tensors lie back to back (one tensor, or an update decoded into one arena row)
      // is passed as a view (combiners never mutate), sparing a copy.
      flats.push(sent.length === 1 ? sent[0]!.values : (contiguousView(sent) ?? flatten(sent)));
      weights.push(updates[k]!.weight);
    }
    const layout = layoutOf(tensors);
    const globalFlat = flatten(tensors);
    if (contributors.length === 0) {
      groups.push({ group, contributors, status: 'kept' });
      parameters.push(...tensors.map(copyTensor));
      continue;
    }
    const outcome = combine(flats, weights, { group, tensors, global: globalFlat, contributors });
    if ('skipped' in outcome) {
      groups.push({ group, contributors, status: 'skipped', reason: outcome.skipped });
      parameters.push(...tensors.map(copyTensor));
      continue;
    }
    const { step } = outcome;
    if (step.length !== layout.size) {
      throw new FlCoreError('PARAMS_MISMATCH', `aggregateByGroup: combiner returned ${step.length} values for group '${group}' of ${layout.size}`);
    }
    for (let i = 0; i < globalFlat.length; i++) globalFlat[i] = globalFlat[i]! + step[i]!;
    // Slice per tensor in model order; unflatten would copy again.
    for (let t = 0; t < tensors.length; t++) {
      const start = layout.offsets[t]!;
      const src = tensors[t]!;
      parameters.push({ name: src.name, shape: [...src.shape], values: globalFlat.slice(start, start + src.values.length) });
    }
    groups.push({
      group,
      contributors,
      status: 'updated',
      ...(outcome.clientScores ? { clientScores: outcome.clientScores } : {}),
      ...(outcome.metrics ? { metrics: outcome.metrics } : {}),
    });
  }
  return { parameters: reorder(global, parameters), groups };
}

function copyTensor(t: Tensor): Tensor {
  return { name: t.name, shape: [...t.shape], values: t.values.slice() };
}

/** Puts tensors back in the global model's order (groups may interleave in the global list). */
function reorder(global: Parameters, tensors: Tensor[]): Tensor[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return global.map((t) => byName.get(t.name)!);
}
