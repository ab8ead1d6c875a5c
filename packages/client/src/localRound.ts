/**
 * One round of a client's local work, from a round start to the bytes it uploads: check and decode
 * the global model, train on the local data, take Δ = local − global of the client's own groups,
 * clip it (honest clients), apply the adversarial behaviour if any ({@link runLocalRound}), then
 * encode it under the client's id ({@link encodeLocalUpdate}; apart, because a round start can
 * reach a client before the acknowledgement of its hello that carries its id).
 *
 * Reproducibility, enforced here: the upload is a function of the round start (global model,
 * config, round number), the client id, the local data, the client's seed and its behaviour —
 * nothing else. Every random draw (the epoch shuffles, an attack's noise, alie's bootstrap
 * resamples) comes from a generator
 * seeded by (client seed, server round) alone, never from a stream shared across rounds, so a round
 * replays identically whichever rounds the client took part in before, and after a restart. No
 * clock, `Math.random` or call order reaches the bytes (time goes into metrics only, in the runtime).
 */
import { clipParametersToNorm, createRng, decodeUpdate, encodeUpdate, parametersDelta } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import type { MultimodalModel } from '@chorus/models';
import type { ParsedRoundStart } from '@chorus/protocol';
import { alieUpdate, attackUpdate, behaviourInRound, bootstrapDataset, labelPermutation } from './adversarial.js';
import type { AdversarialBehaviour } from './adversarial.js';
import type { LocalDataset } from './dataset.js';
import { ClientError } from './errors.js';
import type { ClientEvent } from './events.js';
import { globalFor, inferAdapterLayout } from './models.js';
import type { ModelFactory } from './models.js';
import { evaluateLocally, trainLocally } from './training.js';

/** Honest deltas are clipped a little inside the bound, so fp16/int8 rounding cannot push them over it. */
const NORM_MARGIN = 0.99;

/** Mixed into the seed of the label-flip permutation, so it is a stream of its own, fixed across rounds. */
const LABEL_MAP_SALT = 0x5bd1e995;

/**
 * Seed of a client's randomness in one round: a hash of (client seed, server round) only. Client
 * seeds may exceed 32 bits (headless clients use `seed · 1000 + i`), so both halves are mixed in.
 */
export function roundSeed(clientSeed: number, serverRound: number): number {
  if (!Number.isSafeInteger(clientSeed) || clientSeed < 0)
    throw new ClientError('CLIENT_BAD_CONFIG', `roundSeed: clientSeed must be a non-negative safe integer, got ${clientSeed}`);
  if (!Number.isSafeInteger(serverRound) || serverRound < 0)
    throw new ClientError('CLIENT_BAD_CONFIG', `roundSeed: serverRound must be a non-negative safe integer, got ${serverRound}`);
  let h = 0x811c9dc5;
  for (const part of [clientSeed >>> 0, Math.floor(clientSeed / 0x100000000) >>> 0, serverRound >>> 0]) {
    // murmur3's 32-bit finaliser over a running xor: every input bit reaches every output bit.
    h = Math.imul(h ^ part, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** What one round of local work needs. */
export interface LocalRoundOptions {
  /** The parsed round start: global model, its hash, config and round number. */
  readonly round: ParsedRoundStart;
  readonly dataset: LocalDataset;
  readonly models: ModelFactory;
  /** The client's seed; this round draws from {@link roundSeed}(seed, serverRound). */
  readonly seed: number;
  /** Adversarial behaviour (experiments only); null: honest. */
  readonly behaviour: AdversarialBehaviour | null;
  /** Examples of the local data scored before and after training (0: none). */
  readonly evalExamples: number;
  /** Progress (evaluate and train events). */
  readonly onEvent?: (event: ClientEvent) => void;
  /** Checked before every training step; true abandons the round. */
  readonly shouldStop?: () => boolean;
  /** Awaited between training steps, so sockets and other clients get a turn. */
  readonly pause?: () => Promise<void>;
}

/** The round's update and the figures reported with it. */
export interface LocalRoundResult {
  /** The delta the client uploads: clipped when honest, attacked when not; {@link encodeLocalUpdate} encodes it. */
  readonly tensors: Tensor[];
  /** Local accuracies and losses before and after training, loss terms and step count. */
  readonly metrics: Record<string, number>;
}

/**
 * Runs one round of local work (see the module comment); resolves with null when `shouldStop`
 * abandoned it. Throws `ClientError` (`CLIENT_BAD_ROUND` — also for a split round, which
 * `runSplitRound` runs —, `CLIENT_MODEL_MISMATCH`, `CLIENT_DATASET`, `CLIENT_TRAINING_FAILED`) when
 * the round cannot be done; the round's model is disposed either way.
 */
export async function runLocalRound(options: LocalRoundOptions): Promise<LocalRoundResult | null> {
  const { round, dataset, models } = options;
  const serverRound = round.serverRound;
  const behaviour = behaviourInRound(options.behaviour, serverRound);
  if (behaviour?.kind === 'alie' && behaviour.z === null) throw new ClientError('CLIENT_BAD_CONFIG', 'alie: z is not set (assignBehaviours sets it)');
  const emit = options.onEvent ?? ((): void => undefined);
  const stopped = options.shouldStop ?? ((): boolean => false);
  // A split round's delta must carry the task head this path knows nothing of.
  if (round.config.split) throw new ClientError('CLIENT_BAD_ROUND', `round ${serverRound} is a split round; runSplitRound runs it`);

  const global = await decodeGlobal(round);
  const layout = inferAdapterLayout(global);
  if (layout.head !== round.config.head) {
    throw new ClientError('CLIENT_MODEL_MISMATCH', `the round asks for a ${round.config.head} head but the global model has a ${layout.head} head`);
  }
  const modalities = layout.modalities.filter((m) => dataset.modalities.includes(m) && models.modalities.includes(m));
  if (modalities.length === 0) {
    throw new ClientError(
      'CLIENT_MODEL_MISMATCH',
      `the task's modalities (${layout.modalities.join(', ')}) and this client's (${dataset.modalities.join(', ')}) do not overlap`,
    );
  }
  if (dataset.numExamples === 0) throw new ClientError('CLIENT_DATASET', 'no local examples to train on');
  const config = round.config;
  const mu = typeof config.strategy['proximalMu'] === 'number' ? config.strategy['proximalMu'] : 0;
  const rng = createRng(roundSeed(options.seed, serverRound));
  const evalIndices = evaluationIndices(dataset.numExamples, options.evalExamples);
  const metrics: Record<string, number> = {};
  let delta: Tensor[];
  let own: Parameters;
  const createModel = (): Promise<MultimodalModel> =>
    models.create({
      ...layout,
      modalities,
      adapterAlpha: config.adapterAlpha,
      learningRate: config.learningRate,
      seed: serverRound,
    });
  // alie's first bootstrap replicate is the training below; the others follow on fresh models.
  const trainingData = behaviour?.kind === 'alie' ? bootstrapDataset(dataset, rng) : dataset;
  const train = (model: MultimodalModel, data: LocalDataset, global: Parameters): ReturnType<typeof trainLocally> =>
    trainLocally({
      model,
      dataset: data,
      modalities,
      localEpochs: config.localEpochs,
      batchSize: config.batchSize,
      modalWeight: config.modalWeight,
      modalLoss: config.modalLoss,
      interpretabilityWeight: config.interpretabilityWeight,
      rng,
      ...(mu > 0 ? { proximal: { mu, global } } : {}),
      ...(behaviour?.kind === 'label-flip' ? { labelMap: labelPermutation(layout.numClasses, createRng(options.seed ^ LABEL_MAP_SALT)) } : {}),
      onStep: (p) => emit({ type: 'train', serverRound, ...p }),
      shouldStop: stopped,
      ...(options.pause ? { pause: options.pause } : {}),
    });

  const model = await createModel();
  try {
    own = globalFor(model, global);
    model.setAdapterParameters(own);
    if (evalIndices.length > 0) {
      const g = await evaluateLocally(model, dataset, evalIndices);
      emit({ type: 'evaluate', serverRound, scope: 'global', ...g });
      metrics['globalAccuracy'] = g.accuracy;
      metrics['globalLoss'] = g.loss;
      // The weight of this evaluation in the coordinator's federated evaluation (aggregateEvaluate).
      metrics['globalEvalExamples'] = evalIndices.length;
    }
    if (behaviour?.kind !== 'free-rider') {
      const result = await train(model, trainingData, own);
      if (result.stopped || stopped()) return null;
      metrics['trainLoss'] = result.meanLoss;
      metrics['trainModalLoss'] = result.meanModalLoss;
      metrics['trainInterpretabilityLoss'] = result.meanInterpretabilityLoss;
      metrics['numSteps'] = result.numSteps;
      if (evalIndices.length > 0) {
        const l = await evaluateLocally(model, dataset, evalIndices);
        emit({ type: 'evaluate', serverRound, scope: 'local', ...l });
        metrics['localAccuracy'] = l.accuracy;
        metrics['localLoss'] = l.loss;
      }
    }
    delta = parametersDelta(await model.adapterParametersAsync(), own);
  } finally {
    model.dispose();
  }
  if (stopped()) return null;

  const clip = (d: Tensor[]): Tensor[] => clipHonestDelta(d, config.normBound);
  if (behaviour?.kind === 'alie') {
    const replicates = [clip(delta)];
    while (replicates.length < behaviour.replicates) {
      const data = bootstrapDataset(dataset, rng);
      const replica = await createModel();
      try {
        replica.setAdapterParameters(own);
        const result = await train(replica, data, own);
        if (result.stopped || stopped()) return null;
        replicates.push(clip(parametersDelta(await replica.adapterParametersAsync(), own)));
      } finally {
        replica.dispose();
      }
    }
    return { tensors: alieUpdate(replicates, behaviour.z!), metrics };
  }
  return { tensors: attackUpdate(clip(delta), behaviour, rng), metrics };
}

/**
 * The upload bytes of `tensors` for `round` from `clientId` (fl-core codec, kind: delta, the
 * round's encoding). Throws `CLIENT_TRAINING_FAILED` when they cannot be encoded (e.g. a
 * non-finite value) and `CLIENT_UPDATE_TOO_LARGE` past the round's size limit.
 */
export function encodeLocalUpdate(round: ParsedRoundStart, clientId: string, tensors: Tensor[]): Uint8Array {
  let update: Uint8Array;
  try {
    update = encodeUpdate({ kind: 'delta', taskId: round.taskId, round: round.serverRound, clientId, encoding: round.config.uploadEncoding, tensors });
  } catch (err) {
    throw new ClientError('CLIENT_TRAINING_FAILED', `the update cannot be encoded: ${(err as Error).message}`);
  }
  if (update.byteLength > round.config.maxUpdateBytes) {
    throw new ClientError('CLIENT_UPDATE_TOO_LARGE', `the update is ${update.byteLength} bytes, the round allows ${round.config.maxUpdateBytes}`);
  }
  return update;
}

/** An honest client's delta, clipped a little inside the round's norm bound (null: unbounded, returned as is). */
export function clipHonestDelta(delta: Tensor[], normBound: number | null): Tensor[] {
  return normBound === null ? delta : clipParametersToNorm(delta, normBound * NORM_MARGIN).clipped;
}

/**
 * The round's global model, checked against its announced hash and decoded; throws
 * `CLIENT_BAD_ROUND` when it does not match or cannot be decoded.
 */
export async function decodeGlobal(round: ParsedRoundStart): Promise<Tensor[]> {
  await checkGlobalHash(round.global, round.globalHash);
  try {
    return decodeUpdate(round.global, { maxBytes: round.global.byteLength }).tensors;
  } catch (err) {
    throw new ClientError('CLIENT_BAD_ROUND', `global model: ${(err as Error).message}`);
  }
}

/** The first `count` example positions (evaluation needs no randomness: the same examples every round). */
export function evaluationIndices(numExamples: number, count: number): number[] {
  return Array.from({ length: Math.min(numExamples, count) }, (_, i) => i);
}

/** Checks the global bytes against the announced SHA-256 where Web Crypto is available (secure contexts, Node ≥ 19). */
async function checkGlobalHash(bytes: Uint8Array, expected: string): Promise<void> {
  const subtle = (globalThis as { crypto?: { subtle?: { digest(alg: string, data: Uint8Array): Promise<ArrayBuffer> } } }).crypto?.subtle;
  if (!subtle) return;
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  if (hex !== expected) throw new ClientError('CLIENT_BAD_ROUND', `the global model does not match its hash ${expected.slice(0, 12)}…`);
}
