/**
 * One split round of a client's local work (FedUMM's device–edge split, Su et al. 2026,
 * arXiv:2601.15390 §3.3), the counterpart of `runLocalRound` for a round start whose config carries
 * a `split` section: the client trains its half — encoders' adapters, concept projections, local
 * NAM head and the task head `fusion/split_head/*` — one `deviceSplitStep` per batch through a
 * `SplitLink` to the edge, which trains the fusion network in between; then it returns the delta of
 * its own groups, as a weight round does.
 *
 * The global model holds the device's tensors (as a weight round's, plus the task head) and the
 * edge's `edge/*`, which the client ignores: never trained here, never uploaded.
 *
 * The model is built with every modality the task's device groups hold, since the edge takes one
 * token per task modality (an absent one's token is zero and masked out); the client feeds the
 * modalities its data holds and uploads only those groups plus `fusion`. The weights of the others
 * get no gradient and do not move.
 *
 * Reproducibility: the delta is a function of the round start, the client id, the data, the seed
 * and the edge's answers. One generator, seeded by `roundSeed(seed, serverRound)` as in a weight
 * round, draws first the shuffles of every epoch (`forEachLocalBatch`, the weight round's batching)
 * and then, step by step in order, the interface noise (each step: the tokens, then the
 * fused-feature gradients; `deviceSplitStep`). Time only reaches the metrics.
 */
import { SPLIT_EDGE_GROUP, createRng, groupOf, parametersDelta, splitChannelPrivacy, splitReleasesPerExample } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { SPLIT_HEAD_NAMES, SplitDevice, deviceSplitStep } from '@chorus/models';
import type { SplitLink } from '@chorus/models';
import type { SplitRoundConfig } from '@chorus/protocol';
import { ClientError } from '../errors.js';
import { clipHonestDelta, decodeGlobal, evaluationIndices, roundSeed } from '../localRound.js';
import type { LocalRoundOptions, LocalRoundResult } from '../localRound.js';
import { globalFor, inferAdapterLayout } from '../models.js';
import { disposeBatch, evaluateLocally, forEachLocalBatch, toModelBatch } from '../training.js';

/** Group of the edge's tensors in a split task's global model (`edge/…`): never trained or uploaded by a client. */

/** The group every client trains and uploads beside its modalities': the heads, the task head included. */
const SHARED_GROUP = 'fusion';

/** δ of the per-example (ε, δ) the round's metrics report for the interface's releases. */
export const SPLIT_EPSILON_DELTA = 1e-5;

/** What one split round of local work needs: a weight round's inputs, and the edge. */
export interface SplitRoundOptions extends LocalRoundOptions {
  /** The id the coordinator issued; every split payload's header names it. */
  readonly clientId: string;
  /** Carries each step's halves to the edge (the socket in the runtime, an in-process edge in simulations). */
  readonly link: SplitLink;
  /** Clock of the timing metrics (ms); default `Date.now`. */
  readonly now?: () => number;
}

/**
 * Runs one split round (see the module comment) and resolves with the clipped delta of the
 * client's device groups and the round's figures, or with null when `shouldStop` abandoned it
 * (checked between steps; a step that fails because the round was abandoned also gives null).
 * Throws `ClientError`: `CLIENT_BAD_ROUND` (not a split round, an adversarial client, a global that
 * does not match its hash), `CLIENT_MODEL_MISMATCH` (the global's layout or task head does not fit
 * the config or this client), `CLIENT_DATASET`, `CLIENT_SPLIT_FAILED` (the link gave up a step),
 * or what the model raises; the round's model and device are disposed either way.
 */
export async function runSplitRound(options: SplitRoundOptions): Promise<LocalRoundResult | null> {
  const { round, dataset, models, link, clientId } = options;
  const { config, serverRound } = round;
  const split = config.split;
  if (!split) throw new ClientError('CLIENT_BAD_ROUND', `round ${serverRound} is not a split round`);
  // An attack on a split round would need its own threat model (the edge sees every step); none is implemented.
  if (options.behaviour)
    throw new ClientError(
      'CLIENT_BAD_ROUND',
      `round ${serverRound} is a split round, which an adversarial client (${options.behaviour.kind}) does not take part in`,
    );
  const emit = options.onEvent ?? ((): void => undefined);
  const stopped = options.shouldStop ?? ((): boolean => false);
  const now = options.now ?? ((): number => Date.now());

  const global = await decodeGlobal(round);
  const headNames = new Set<string>(SPLIT_HEAD_NAMES);
  const deviceTensors = global.filter((t) => groupOf(t.name) !== SPLIT_EDGE_GROUP);
  const adapters = deviceTensors.filter((t) => !headNames.has(t.name));
  const layout = inferAdapterLayout(adapters);
  if (layout.head !== config.head)
    throw new ClientError('CLIENT_MODEL_MISMATCH', `the round asks for a ${config.head} head but the global model has a ${layout.head} head`);
  const head = splitHead(deviceTensors, split, layout.numClasses);
  const held = layout.modalities.filter((m) => dataset.modalities.includes(m));
  if (held.length === 0)
    throw new ClientError(
      'CLIENT_MODEL_MISMATCH',
      `the task's modalities (${layout.modalities.join(', ')}) and this client's (${dataset.modalities.join(', ')}) do not overlap`,
    );
  const unbuildable = layout.modalities.filter((m) => !models.modalities.includes(m));
  if (unbuildable.length > 0)
    throw new ClientError(
      'CLIENT_MODEL_MISMATCH',
      `the edge takes a token of every task modality, and this client cannot build the ${unbuildable.join(', ')} encoder`,
    );
  if (dataset.numExamples === 0) throw new ClientError('CLIENT_DATASET', 'no local examples to train on');

  const rng = createRng(roundSeed(options.seed, serverRound));
  const evalIndices = evaluationIndices(dataset.numExamples, options.evalExamples);
  const uploaded = new Set<string>([...held, SHARED_GROUP]);
  const metrics: Record<string, number> = {};
  let delta: Tensor[];
  const model = await models.create({ ...layout, adapterAlpha: config.adapterAlpha, learningRate: config.learningRate, seed: serverRound });
  let device: SplitDevice | null = null;
  try {
    device = new SplitDevice({ model, fusedDim: split.fusedDim, localHeadWeight: split.localHeadWeight, learningRate: config.learningRate, seed: serverRound });
    const start = [...globalFor(model, adapters), ...head];
    device.setParameters(start);
    if (evalIndices.length > 0) {
      const g = await evaluateLocally(model, dataset, evalIndices);
      emit({ type: 'evaluate', serverRound, scope: 'global', ...g });
      metrics['globalAccuracy'] = g.accuracy;
      metrics['globalLoss'] = g.loss;
      // The weight of this evaluation in the coordinator's federated evaluation (aggregateEvaluate).
      metrics['globalEvalExamples'] = evalIndices.length;
    }

    const steps = {
      count: 0,
      examples: 0,
      loss: 0,
      localLoss: 0,
      correct: 0,
      bytesUp: 0,
      bytesDown: 0,
      deviceMs: 0,
      waitMs: 0,
      clippedTokens: 0,
      clippedGradients: 0,
    };
    const stepOptions = { taskId: round.taskId, clientId, activations: split.activations, gradients: split.gradients, rng, now };
    const trained = device;
    const walk = await forEachLocalBatch(
      {
        dataset,
        localEpochs: config.localEpochs,
        batchSize: config.batchSize,
        rng,
        shouldStop: stopped,
        ...(options.pause ? { pause: options.pause } : {}),
      },
      async (host, at) => {
        const batch = toModelBatch(host, held);
        let r;
        try {
          r = await deviceSplitStep(trained, batch, steps.count, link, stepOptions);
        } finally {
          disposeBatch(batch);
        }
        steps.count++;
        steps.examples += r.numExamples;
        steps.loss += r.loss * r.numExamples;
        steps.localLoss += r.localLoss * r.numExamples;
        steps.correct += r.correct;
        steps.bytesUp += r.bytesUp;
        steps.bytesDown += r.bytesDown;
        steps.deviceMs += r.deviceMs;
        steps.waitMs += r.waitMs;
        steps.clippedTokens += r.clippedTokens;
        steps.clippedGradients += r.clippedGradients;
        emit({ type: 'train', serverRound, ...at, loss: r.loss });
      },
    );
    if (walk.stopped || stopped()) return null;
    const mean = (sum: number): number => (steps.examples > 0 ? sum / steps.examples : 0);
    metrics['trainLoss'] = mean(steps.loss);
    metrics['trainLocalLoss'] = mean(steps.localLoss);
    metrics['splitTrainAccuracy'] = mean(steps.correct);
    metrics['numSteps'] = steps.count;
    metrics['splitBytesUp'] = steps.bytesUp;
    metrics['splitBytesDown'] = steps.bytesDown;
    metrics['splitDeviceMs'] = steps.deviceMs;
    metrics['splitWaitMs'] = steps.waitMs;
    metrics['splitClippedActivationsFraction'] = mean(steps.clippedTokens);
    metrics['splitClippedGradientsFraction'] = mean(steps.clippedGradients);
    Object.assign(metrics, splitEpsilonMetrics(split, config.localEpochs));
    if (evalIndices.length > 0) {
      const l = await evaluateLocally(model, dataset, evalIndices);
      emit({ type: 'evaluate', serverRound, scope: 'local', ...l });
      metrics['localAccuracy'] = l.accuracy;
      metrics['localLoss'] = l.loss;
    }
    delta = parametersDelta(
      await device.parametersAsync(),
      start.filter((t) => uploaded.has(groupOf(t.name))),
    );
  } catch (err) {
    // A step the runtime cut short (stop, disconnect) fails as a consequence: the round is simply abandoned.
    if (stopped()) return null;
    throw err;
  } finally {
    device?.dispose();
    model.dispose();
  }
  if (stopped()) return null;
  return { tensors: clipHonestDelta(delta, config.normBound), metrics };
}

/**
 * Per-example ε (at δ = {@link SPLIT_EPSILON_DELTA}) of this round's interface, for each direction
 * apart — `splitEpsilonActivations`, `splitEpsilonGradients` — each example's row being released
 * once per epoch in each (fl-core's `splitChannelPrivacy`). A direction without noise has ε =
 * Infinity and is left out, since metrics are finite.
 */
export function splitEpsilonMetrics(split: SplitRoundConfig, localEpochs: number): Record<string, number> {
  const releasesPerExample = splitReleasesPerExample({ epochs: localEpochs, rounds: 1, directions: 1 });
  const out: Record<string, number> = {};
  for (const [name, r] of [
    ['splitEpsilonActivations', split.activations],
    ['splitEpsilonGradients', split.gradients],
  ] as const) {
    const { epsilon } = splitChannelPrivacy({ noiseMultiplier: r.noiseMultiplier, releasesPerExample, delta: SPLIT_EPSILON_DELTA });
    if (Number.isFinite(epsilon)) out[name] = epsilon;
  }
  return out;
}

/** The global's task head, in `SPLIT_HEAD_NAMES` order; throws `CLIENT_MODEL_MISMATCH` unless it is kernel [fusedDim, K] and bias [K]. */
function splitHead(deviceTensors: readonly Tensor[], split: SplitRoundConfig, numClasses: number): Tensor[] {
  const byName = new Map(deviceTensors.map((t) => [t.name, t]));
  const expected = [[split.fusedDim, numClasses], [numClasses]];
  return SPLIT_HEAD_NAMES.map((name, i) => {
    const t = byName.get(name);
    const shape = expected[i]!;
    if (!t) throw new ClientError('CLIENT_MODEL_MISMATCH', `the global model of a split round lacks '${name}'`);
    if (t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j]))
      throw new ClientError(
        'CLIENT_MODEL_MISMATCH',
        `'${name}' is [${t.shape.join(',')}] in the global model; the round (fusedDim ${split.fusedDim}) needs [${shape.join(',')}]`,
      );
    return t;
  });
}
