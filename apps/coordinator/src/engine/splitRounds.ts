/**
 * Split rounds (FedUMM's device–edge split, Su et al. 2026, arXiv:2601.15390 §3.3) as the round
 * engine's hooks, over the SAME engine, store and protocol as weight rounds:
 *
 *  - the global the engine holds and checkpoints is the device's weights (adapters, concept
 *    projections, local NAM head, and the task head `fusion/split_head/*`) plus the edge's fusion
 *    network under the group `edge` ({@link SPLIT_EDGE_GROUP}); so a task restarted on its store
 *    resumes both halves, and an export holds the whole model;
 *  - the round start carries the task's `split` section ({@link splitRoundSection}); clients upload
 *    deltas of their own device groups, aggregated by the task's strategy as in a weight round
 *    (FedUMM Eq. 1: per modality, weighted by example counts); an upload that touches `edge` is
 *    refused (`UPDATE_SHAPE`): only the edge trains it;
 *  - {@link SplitRoundHooks.attemptOpened}: the edge starts every attempt from the global's `edge`
 *    weights, with fresh optimiser state, so a retried attempt forgets the steps of the failed one;
 *  - between the round start and the upload, the edge trains its fusion network from every
 *    selected client's split steps (`splitForward` / `splitBackward`), in arrival order;
 *  - {@link SplitRoundHooks.finalize}: after the strategy aggregated the device groups, the edge's
 *    current weights replace the `edge` group of the next global.
 *
 * What is not reproducible bit for bit: the edge's updates follow the order in which steps arrive
 * from concurrently training clients, so two runs of the same seeded split task agree only up to
 * that order (unlike weight rounds, whose aggregation is canonical).
 */
import { SPLIT_EDGE_GROUP, groupOf, splitChannelPrivacy, splitReleasesPerExample } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import type { SplitRoundConfig, SplitTaskConfig } from '@chorus/protocol';
import { CoordinatorError } from '../errors.js';

// The edge's parameter group: fl-core names it, for the edge, the clients and the coordinator alike.
export { SPLIT_EDGE_GROUP };

/** The round config's `split` section of a task's `split` settings: what a client needs for its half. */
export function splitRoundSection(split: SplitTaskConfig): SplitRoundConfig {
  return {
    fusedDim: split.fusedDim,
    localHeadWeight: split.localHeadWeight,
    activations: { ...split.activations },
    gradients: { ...split.gradients },
    returnEncoding: split.returnEncoding,
    stepTimeoutMs: split.stepTimeoutMs,
  };
}

/** The edge as the engine drives it (model/edgeService.ts over the evaluator process). */
export interface SplitEdge {
  /** Starts the attempt `roundId`: loads `edge` from the global, resets the optimiser, forgets every pending step. */
  open(roundId: string, edge: Parameters): void;
  /** Ends the attempt: later steps are refused and pending ones dropped. */
  close(roundId: string): void;
  /** The edge's current weights (named `edge/…`). */
  weights(): Promise<Parameters>;
}

/** The round engine's hooks for a split task; see the module comment. */
export interface SplitRoundHooks {
  /** The round config's `split` section. */
  readonly section: SplitRoundConfig;
  /** Groups clients may not send (the edge's). */
  readonly serverGroups: readonly string[];
  /** Called when an attempt opens, before its round start is sent. */
  attemptOpened(roundId: string, global: Parameters): void;
  /** Called when an attempt closes, whatever its outcome. */
  attemptClosed(roundId: string): void;
  /** The next global: `aggregated` (device groups from the strategy) with the edge's current weights as its `edge` group. */
  finalize(serverRound: number, aggregated: Parameters): Promise<Tensor[]>;
  /** Figures stored with round `serverRound`'s metrics: the interface's privacy accountant ({@link splitChannelMetrics}). */
  roundMetrics(serverRound: number): Readonly<Record<string, number>>;
}

/**
 * The secure interface's (ε, δ) after `serverRound` rounds, per example of a client that took part
 * in every one of them (the worst case: each round releases each of its examples' tokens and
 * gradients `localEpochs` times), for each direction and for both composed
 * (`split.epsilonActivations`, `split.epsilonGradients`, `split.epsilon`, `split.delta`); a
 * direction without noise has no finite ε and is left out, and so is the composition then.
 */
export function splitChannelMetrics(split: SplitTaskConfig, localEpochs: number, serverRound: number): Record<string, number> {
  const out: Record<string, number> = { 'split.delta': split.delta };
  const epsilon = (noiseMultiplier: number, directions: number): number =>
    splitChannelPrivacy({
      noiseMultiplier,
      releasesPerExample: splitReleasesPerExample({ epochs: localEpochs, rounds: serverRound, directions }),
      delta: split.delta,
    }).epsilon;
  const activations = epsilon(split.activations.noiseMultiplier, 1);
  const gradients = epsilon(split.gradients.noiseMultiplier, 1);
  if (Number.isFinite(activations)) out['split.epsilonActivations'] = activations;
  if (Number.isFinite(gradients)) out['split.epsilonGradients'] = gradients;
  // Both directions compose; with equal noise that is one mechanism released twice as often.
  if (split.activations.noiseMultiplier === split.gradients.noiseMultiplier) {
    const both = epsilon(split.activations.noiseMultiplier, 2);
    if (Number.isFinite(both)) out['split.epsilon'] = both;
  }
  return out;
}

/** The `edge` tensors of `parameters`, in order. */
export function edgeTensors(parameters: Parameters): Tensor[] {
  return parameters.filter((t) => groupOf(t.name) === SPLIT_EDGE_GROUP);
}

/**
 * `parameters` with its `edge` tensors replaced by `edge`'s, which must match them name for name
 * and shape for shape (`EVALUATOR_ERROR` otherwise: the evaluator's edge is not the global's).
 */
export function withEdge(parameters: Parameters, edge: Parameters): Tensor[] {
  const byName = new Map(edge.map((t) => [t.name, t]));
  const out = parameters.map((t) => {
    if (groupOf(t.name) !== SPLIT_EDGE_GROUP) return t;
    const next = byName.get(t.name);
    if (!next || next.shape.length !== t.shape.length || next.shape.some((d, i) => d !== t.shape[i]))
      throw new CoordinatorError('EVALUATOR_ERROR', `split: the edge's weights lack '${t.name}' [${t.shape.join(',')}] or give it another shape`);
    byName.delete(t.name);
    return next;
  });
  if (byName.size > 0)
    throw new CoordinatorError('EVALUATOR_ERROR', `split: the edge's weights hold tensors the global lacks (${[...byName.keys()].slice(0, 3).join(', ')})`);
  return out;
}

/** The engine hooks of a split task whose edge is `edge`. */
export function createSplitRoundHooks(split: SplitTaskConfig, edge: SplitEdge, localEpochs: number): SplitRoundHooks {
  return {
    section: splitRoundSection(split),
    serverGroups: [SPLIT_EDGE_GROUP],
    attemptOpened(roundId, global) {
      edge.open(roundId, edgeTensors(global));
    },
    attemptClosed(roundId) {
      edge.close(roundId);
    },
    async finalize(_serverRound, aggregated) {
      return withEdge(aggregated, await edge.weights());
    },
    roundMetrics: (serverRound) => splitChannelMetrics(split, localEpochs, serverRound),
  };
}
