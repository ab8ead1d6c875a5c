/**
 * One FedAFD round of a client's local work ("FedAFD: Multimodal Federated Learning via Adversarial
 * Fusion and Distillation", Algorithm 1, client part), over plain data: load the global encoders
 * the client fuses with (GFF, Eq. 3–6), run the local epochs — each step a local mini-batch paired
 * with the round's public batch or a window of it, on which BAA (Eq. 1–2) tells the client's
 * representations from the global ones — then return the client's representations of the whole
 * public batch for the modalities it holds, and its local metrics. Nothing else leaves the client.
 *
 * Everything the round receives from the other side (public batch, global representations, global
 * weights) is checked before any weight moves: a refusal raises a `ClientError` and trains
 * nothing. The result is a function of the inputs and `rng` (the epoch shuffles, an attack's
 * noise); time goes into `milliseconds` only. Every tensor made here is disposed before the round
 * returns or throws. Experiments can give the client an adversarial behaviour (fedafd/adversarial.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { shuffled } from '@chorus/fl-core';
import type { Parameters, Rng } from '@chorus/fl-core';
import type { FedAfdClient, FedAfdStepResult, Modality, MultimodalBatch, RepresentationArrays, RetrievalMetrics } from '@chorus/models';
import { checkBehaviour } from '../adversarial.js';
import type { AdversarialBehaviour } from '../adversarial.js';
import type { HostBatch, LocalDataset } from '../dataset.js';
import { ClientError } from '../errors.js';
import { disposeBatch, toModelBatch } from '../training.js';
import { attackRepresentations } from './adversarial.js';

/** Local examples scored after training when the options name no count. */
export const FEDAFD_EVAL_EXAMPLES = 64;

/** Progress of one local step (1-based). */
export interface FedAfdStepProgress {
  readonly epoch: number;
  readonly numEpochs: number;
  readonly batch: number;
  readonly numBatches: number;
  /** L_task + λ_adv · L_adv^enc of the step. */
  readonly loss: number;
}

/** What one FedAFD round of local work needs. */
export interface FedAfdLocalRoundOptions {
  readonly client: FedAfdClient;
  /** The client's local data: every modality of its kind, with labels. */
  readonly dataset: LocalDataset;
  /** The round's public batch (at least the client's modalities), B rows. */
  readonly publicBatch: HostBatch;
  /** Global representations of the public batch, [B, D] row-major per modality: the client's and their partners' (BAA's inputs). */
  readonly globalPublic: RepresentationArrays;
  /** The global encoders' weights (the server model's export), loaded before training when the client fuses with them. */
  readonly globalWeights?: Parameters;
  readonly localEpochs: number;
  readonly batchSize: number;
  /** Public rows paired with each local step: consecutive windows of this many rows, in turn; default all B. */
  readonly publicBatchSize?: number;
  /** Shuffles each epoch, then draws an attack's noise. */
  readonly rng: Rng;
  /**
   * Adversarial behaviour in this round (experiments only; resolved for the round with
   * `behaviourInRound`); null or absent: honest. A free-rider skips training and sends back the
   * global representations of its modalities; the others train, then attack what they upload
   * (fedafd/adversarial.ts).
   */
  readonly behaviour?: AdversarialBehaviour | null;
  /** Label-flip: every local label y is trained as labelMap[y] (evaluation keeps the true labels). */
  readonly labelMap?: Int32Array;
  /** Local examples (the first ones) scored after training; default {@link FEDAFD_EVAL_EXAMPLES}, 0: none. */
  readonly evalExamples?: number;
  /** Held-out examples of the client's modalities scored after training instead of the local ones (the first `evalExamples` of them). */
  readonly evalData?: LocalDataset;
  /** Milliseconds clock for the `milliseconds` metric; default `performance.now`. */
  readonly now?: () => number;
  readonly onStep?: (progress: FedAfdStepProgress) => void;
  /** Checked before every step; true abandons the round. */
  readonly shouldStop?: () => boolean;
  /** Awaited between steps, so sockets and other clients get a turn. */
  readonly pause?: () => Promise<void>;
}

/** Local figures of a round, all plain numbers (example-weighted means over the steps). */
export interface FedAfdLocalMetrics {
  /** L_task + λ_adv · L_adv^enc + λ_dis · L_dis^local. */
  readonly loss: number;
  /** Cross-entropy (classifiers) or symmetric InfoNCE (retrieval) on the fused features. */
  readonly taskLoss: number;
  /** The encoder's BAA term (0 without BAA). */
  readonly adversarialLoss: number;
  /** The discriminators' loss (0 without BAA). */
  readonly discriminatorLoss: number;
  /** The local distillation toward the global representations, unweighted (0 unless the strategy's clients distil: FedMD and kin). */
  readonly distillationLoss: number;
  readonly numSteps: number;
  /** Local training examples. */
  readonly numExamples: number;
  /** Examples scored after training (0: none, and no accuracy or recall). */
  readonly evalExamples: number;
  /** Classifiers: fraction of the scored examples classified right. */
  readonly accuracy?: number;
  /** Retrieval clients: R@1 (percent) over the scored pairs, both ways, and rsum. */
  readonly i2tR1?: number;
  readonly t2iR1?: number;
  readonly rsum?: number;
  /** Wall time of the round. */
  readonly milliseconds: number;
}

/** The client's upload material: its public representations and metrics. */
export interface FedAfdLocalRoundResult {
  /** [B, D] row-major per modality the client holds. */
  readonly representations: RepresentationArrays;
  readonly metrics: FedAfdLocalMetrics;
}

function refuse(message: string): never {
  throw new ClientError('CLIENT_BAD_ROUND', `FedAFD round: ${message}`);
}

function checkCount(name: string, value: number, min: number, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ClientError('CLIENT_BAD_CONFIG', `FedAFD round: ${name} must be an integer in [${min}, ${max}], got ${value}`);
}

/** Modalities whose global representations `client`'s steps read: its own and their partners with BAA, its own with local distillation, none for LOCAL. */
export function roundGlobalModalities(client: FedAfdClient): Modality[] {
  return client.needsPublicData ? client.globalModalitiesNeeded() : [];
}

/**
 * Checks a round's inputs against `client` and returns the public batch's row count B; throws
 * `CLIENT_BAD_CONFIG` (counts, a bad behaviour or label map), `CLIENT_DATASET` (local data lacking a modality of the client, or
 * a classifier's label outside its classes) or
 * `CLIENT_BAD_ROUND` (a public batch without the client's modalities or of ragged rows, global
 * representations missing a needed modality, not [B, D] or not finite). Reads and changes nothing.
 */
export function checkFedAfdRound(options: FedAfdLocalRoundOptions): number {
  const { client, dataset, publicBatch, globalPublic } = options;
  checkCount('localEpochs', options.localEpochs, 1);
  checkCount('batchSize', options.batchSize, 1);
  if (options.evalExamples !== undefined) checkCount('evalExamples', options.evalExamples, 0);
  if (options.behaviour) {
    checkBehaviour(options.behaviour);
    if (options.behaviour.kind === 'alie')
      throw new ClientError('CLIENT_BAD_CONFIG', 'FedAFD round: alie attacks weight deltas and has no form in a representation round');
  }
  const labelMap = options.labelMap;
  if (labelMap && client.isClassifier && (labelMap.length < client.spec.numClasses || labelMap.some((y) => y < 0 || y >= client.spec.numClasses)))
    throw new ClientError('CLIENT_BAD_CONFIG', `FedAFD round: labelMap must map each of the ${client.spec.numClasses} classes to one of them`);
  const lacking = client.modalities.filter((m) => !dataset.modalities.includes(m));
  if (lacking.length > 0)
    throw new ClientError('CLIENT_DATASET', `a ${client.kind} needs ${lacking.join(', ')}, the local data holds ${dataset.modalities.join(', ')}`);
  if (dataset.numExamples === 0) throw new ClientError('CLIENT_DATASET', 'no local examples to train on');
  const evalLacking = client.modalities.filter((m) => options.evalData !== undefined && !options.evalData.modalities.includes(m));
  if (evalLacking.length > 0) throw new ClientError('CLIENT_DATASET', `a ${client.kind} is scored on ${evalLacking.join(', ')}, the evaluation data lacks it`);
  if (client.isClassifier) {
    const numClasses = client.spec.numClasses;
    const bad = dataset.labels.findIndex((y) => y >= numClasses);
    if (bad >= 0)
      throw new ClientError('CLIENT_DATASET', `local label ${dataset.labels[bad]} at ${bad} is outside the ${numClasses} classes of the ${client.kind}`);
  }
  const rows = publicBatch.size;
  if (!Number.isInteger(rows) || rows < 1) refuse(`the public batch has ${rows} rows`);
  for (const m of client.modalities) {
    const a = publicBatch[m];
    if (!a) refuse(`the public batch has no '${m}' input`);
    const rowSize = a.shape.slice(1).reduce((p, d) => p * d, 1);
    if (a.shape[0] !== rows || a.values.length !== rows * rowSize) refuse(`public '${m}' has shape [${a.shape.join(',')}], expected ${rows} rows`);
  }
  if (options.publicBatchSize !== undefined) checkCount('publicBatchSize', options.publicBatchSize, 1, rows);
  for (const m of roundGlobalModalities(client))
    if (globalPublic[m] === undefined) refuse(`the global representations miss '${m}', which a ${client.kind} needs`);
  for (const [m, values] of Object.entries(globalPublic) as [Modality, unknown][]) {
    if (!(values instanceof Float32Array) || values.length !== rows * client.dim)
      refuse(`global '${m}' must be ${rows} × ${client.dim} float32 values, got ${values instanceof Float32Array ? values.length : typeof values}`);
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) refuse(`global '${m}'[${i}] is ${values[i]}`);
  }
  return rows;
}

/** A FedAFD client's task figures on some examples. */
export interface FedAfdEvaluationResult {
  readonly numExamples: number;
  /** Mean cross-entropy (classifiers) or the symmetric InfoNCE over the pairs (retrieval). */
  readonly loss: number;
  /** Classifiers: fraction classified right. */
  readonly accuracy?: number;
  /** Retrieval clients: recalls (percent) over the examples' pairs, both ways, and rsum. */
  readonly retrieval?: RetrievalMetrics;
}

/**
 * Scores `client` on the examples of `dataset` at `indices` with their true labels: a classifier
 * in chunks of `chunk` (example-weighted means), a retrieval client in one batch, since a recall
 * ranks each query against every candidate of the set. Throws `CLIENT_DATASET` for data without the
 * client's modalities or no indices, `CLIENT_TRAINING_FAILED` when the model fails.
 */
export async function evaluateFedAfdClient(
  client: FedAfdClient,
  dataset: LocalDataset,
  indices: readonly number[],
  chunk = 64,
): Promise<FedAfdEvaluationResult> {
  checkCount('chunk', chunk, 1);
  const lacking = client.modalities.filter((m) => !dataset.modalities.includes(m));
  if (lacking.length > 0)
    throw new ClientError('CLIENT_DATASET', `a ${client.kind} needs ${lacking.join(', ')}, the data holds ${dataset.modalities.join(', ')}`);
  if (indices.length === 0) throw new ClientError('CLIENT_DATASET', 'no examples to evaluate on');
  const size = client.isClassifier ? chunk : indices.length;
  let lossSum = 0;
  let correct = 0;
  let retrieval: RetrievalMetrics | undefined;
  for (let start = 0; start < indices.length; start += size) {
    const batch = toModelBatch(await dataset.read(indices.slice(start, start + size)), client.modalities);
    try {
      const e = await modelCall(() => client.evaluate(batch));
      lossSum += e.loss * e.numExamples;
      correct += (e.accuracy ?? 0) * e.numExamples;
      retrieval = e.retrieval;
    } finally {
      disposeBatch(batch);
    }
  }
  const n = indices.length;
  return retrieval ? { numExamples: n, loss: lossSum / n, retrieval } : { numExamples: n, loss: lossSum / n, accuracy: correct / n };
}

function scoresOf(e: FedAfdEvaluationResult): Pick<FedAfdLocalMetrics, 'accuracy' | 'i2tR1' | 't2iR1' | 'rsum'> {
  return e.retrieval ? { i2tR1: e.retrieval.i2tR1, t2iR1: e.retrieval.t2iR1, rsum: e.retrieval.rsum } : { accuracy: e.accuracy ?? 0 };
}

/** Runs a call into the client model, reporting its failures as `CLIENT_TRAINING_FAILED`. */
async function modelCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('CLIENT_TRAINING_FAILED', `FedAFD round: ${(err as Error).message}`);
  }
}

/** Rows [start, start + count) of a model batch (the caller disposes the slices). */
function sliceBatch(batch: MultimodalBatch, modalities: readonly Modality[], start: number, count: number): MultimodalBatch {
  const out: MultimodalBatch = {};
  for (const m of modalities) out[m] = tf.slice(batch[m]!, start, count);
  return out;
}

/**
 * Runs one FedAFD round of local work (see the module comment); resolves with null when
 * `shouldStop` abandoned it. Refusals (see {@link checkFedAfdRound}; global weights the client
 * cannot load: `CLIENT_MODEL_MISMATCH`) happen before any weight moves; a failure of the model
 * itself later on (e.g. a token id outside its vocabulary) raises `CLIENT_TRAINING_FAILED`.
 */
export async function runFedAfdLocalRound(options: FedAfdLocalRoundOptions): Promise<FedAfdLocalRoundResult | null> {
  const { client, dataset, localEpochs, batchSize, rng } = options;
  const now = options.now ?? ((): number => performance.now());
  const started = now();
  const rows = checkFedAfdRound(options);
  if (options.globalWeights && client.spec.useGff) {
    try {
      client.setGlobalWeights(options.globalWeights);
    } catch (err) {
      throw new ClientError('CLIENT_MODEL_MISMATCH', `FedAFD round: the global encoders do not fit this ${client.kind}: ${(err as Error).message}`);
    }
  }
  const modalities = client.modalities;
  const usePublic = client.needsPublicData;
  const windowRows = options.publicBatchSize ?? rows;
  const numWindows = Math.floor(rows / windowRows);
  const needed = roundGlobalModalities(client);
  const behaviour = options.behaviour ?? null;
  if (behaviour?.kind === 'free-rider') {
    const representations = attackRepresentations(Object.fromEntries(modalities.map((m) => [m, new Float32Array(0)])), behaviour, rng, options.globalPublic);
    const metrics = {
      loss: 0,
      taskLoss: 0,
      adversarialLoss: 0,
      discriminatorLoss: 0,
      distillationLoss: 0,
      numSteps: 0,
      numExamples: dataset.numExamples,
      evalExamples: 0,
    };
    return { representations, metrics: { ...metrics, milliseconds: now() - started } };
  }
  const publicTensors = toModelBatch(options.publicBatch, modalities);
  try {
    const n = dataset.numExamples;
    const numBatches = Math.ceil(n / batchSize);
    const all = Array.from({ length: n }, (_, i) => i);
    const sums = { loss: 0, task: 0, adversarial: 0, discriminator: 0, distillation: 0, examples: 0 };
    let numSteps = 0;
    for (let epoch = 1; epoch <= localEpochs; epoch++) {
      const order = shuffled(rng, all);
      for (let b = 0; b < numBatches; b++) {
        if (options.shouldStop?.()) return null;
        const window = numSteps % numWindows;
        const local = toModelBatch(await dataset.read(order.slice(b * batchSize, (b + 1) * batchSize)), modalities, options.labelMap);
        const pub = usePublic && windowRows < rows ? sliceBatch(publicTensors, modalities, window * windowRows, windowRows) : publicTensors;
        let step: FedAfdStepResult;
        try {
          const offset = window * windowRows * client.dim;
          const globalPublic: RepresentationArrays = Object.fromEntries(
            needed.map((m) => [m, options.globalPublic[m]!.subarray(offset, offset + windowRows * client.dim)]),
          );
          step = await modelCall(() => client.trainStep(usePublic ? { local, public: pub, globalPublic } : { local }));
        } finally {
          disposeBatch(local);
          if (pub !== publicTensors) disposeBatch(pub);
        }
        numSteps++;
        sums.loss += step.loss * step.numExamples;
        sums.task += step.task * step.numExamples;
        sums.adversarial += step.adversarial * step.numExamples;
        sums.discriminator += step.discriminator * step.numExamples;
        sums.distillation += step.distillation * step.numExamples;
        sums.examples += step.numExamples;
        options.onStep?.({ epoch, numEpochs: localEpochs, batch: b + 1, numBatches, loss: step.loss });
        if (options.pause) await options.pause();
      }
    }
    if (options.shouldStop?.()) return null;
    const mean = (sum: number): number => (sums.examples > 0 ? sum / sums.examples : 0);
    const scored = options.evalData ?? dataset;
    const evalCount = Math.min(scored.numExamples, options.evalExamples ?? FEDAFD_EVAL_EXAMPLES);
    const evalIndices = Array.from({ length: evalCount }, (_, i) => i);
    const scores = evalCount > 0 ? scoresOf(await evaluateFedAfdClient(client, scored, evalIndices)) : {};
    const honest = await modelCall(() => client.publicRepresentations(publicTensors));
    const representations = behaviour === null ? honest : attackRepresentations(honest, behaviour, rng, options.globalPublic);
    return {
      representations,
      metrics: {
        loss: mean(sums.loss),
        taskLoss: mean(sums.task),
        adversarialLoss: mean(sums.adversarial),
        discriminatorLoss: mean(sums.discriminator),
        distillationLoss: mean(sums.distillation),
        numSteps,
        numExamples: n,
        evalExamples: evalCount,
        ...scores,
        milliseconds: now() - started,
      },
    };
  } finally {
    disposeBatch(publicTensors);
  }
}
