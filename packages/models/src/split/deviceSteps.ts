/**
 * The device's side of the split step exchange (FedUMM's device–edge split, Su et al. 2026,
 * arXiv:2601.15390 §3.3): one training step of a {@link SplitDevice} through any {@link SplitLink}
 * (a socket to the coordinator in a tab or headless client, or an in-process {@link EdgeSteps} in
 * simulations), with the secure interface applied to everything the device sends.
 *
 * One step: encode the batch into cut-layer tokens → clip each example's tokens to the activations'
 * C, add Gaussian noise of std z·C, compress (fl-core `privatizeRows`, codec kind `split`) → the
 * edge answers with fused features → the task head's loss gives per-example gradients w.r.t. them
 * → clipped, noised, compressed the same way with the gradients' release → the edge answers with
 * the token gradients → the device back-propagates them into its adapters (straight through the
 * clipping and noise: the edge's gradient is w.r.t. the tokens it saw) and takes its Adam step.
 *
 * Reproducibility: the noise comes from the `rng` passed in, drawn in a fixed order (tokens, then
 * gradients), so a step is a function of the weights, the batch, the edge's answers and the rng.
 *
 * Failure behaviour: a batch without labels is refused (`MODELS_BAD_INPUT`) before anything is sent;
 * a link's rejection or a malformed answer propagates unchanged, with no device weight moved and no
 * tensor left allocated. A step that fails after the task head's loss also discards the head
 * gradient `headStep` holds (`SplitDevice.discardHeadGradient`), so the next step does not apply
 * this one's gradient; Adam's moments and step count are kept.
 *
 * Reads: the step runs in volunteers' tabs, where a synchronous read on WebGPU can return zeros,
 * so it uses only the device's `…Async` methods and `await data()`.
 */
import * as tf from '@tensorflow/tfjs';
import { SPLIT_TENSORS, decodeSplitPayload, encodeSplitPayload, privatizeRows, splitPayloadBytes, tensor } from '@chorus/fl-core';
import type { Crc32Function, PrivatizedRows, Rng, RowRelease, UpdateEncoding } from '@chorus/fl-core';
import { ModelsError } from '../errors.js';
import type { MultimodalBatch } from '../model.js';
import type { SplitDevice } from './splitDevice.js';

/** How one half of a step reaches the edge and its answer comes back (codec bytes both ways). */
export interface SplitLink {
  forward(step: number, batchSize: number, payload: Uint8Array): Promise<Uint8Array>;
  backward(step: number, batchSize: number, payload: Uint8Array): Promise<Uint8Array>;
}

/** One direction's release: clip and noise (see fl-core `privatizeRows`), then the codec's encoding. */
export interface CutRelease extends RowRelease {
  readonly encoding: UpdateEncoding;
}

/** What every step of a device needs besides the batch. */
export interface DeviceStepOptions {
  readonly taskId: string;
  readonly clientId: string;
  /** Release of the tokens the device sends. */
  readonly activations: CutRelease;
  /** Release of the fused-feature gradients the device sends. */
  readonly gradients: CutRelease;
  /** Source of the interface's noise. */
  readonly rng: Rng;
  /** Clock of the timing figures (ms). */
  readonly now: () => number;
  readonly crc32?: Crc32Function;
}

/** Figures of one step. */
export interface DeviceStepResult {
  readonly numExamples: number;
  /** Mean task-head cross-entropy. */
  readonly loss: number;
  /** Examples the task head got right (on the fused features the edge returned). */
  readonly correct: number;
  /** Mean local-head cross-entropy. */
  readonly localLoss: number;
  /** Bytes sent to the edge (both halves). */
  readonly bytesUp: number;
  /** Bytes received from it. */
  readonly bytesDown: number;
  /** Time spent computing on the device (ms). */
  readonly deviceMs: number;
  /** Time spent waiting for the edge (ms). */
  readonly waitMs: number;
  /** Examples whose tokens / gradients were scaled down by the clip. */
  readonly clippedTokens: number;
  readonly clippedGradients: number;
}

/** One split training step of `device` on `batch` (labels required) through `link`; see the module comment. */
export async function deviceSplitStep(
  device: SplitDevice,
  batch: MultimodalBatch,
  step: number,
  link: SplitLink,
  options: DeviceStepOptions,
): Promise<DeviceStepResult> {
  const { taskId, clientId, now } = options;
  const labels = batch.labels;
  if (!labels) throw new ModelsError('MODELS_BAD_INPUT', 'deviceSplitStep: the batch needs labels');
  const header = { taskId, clientId, step };
  let deviceMs = 0;
  let waitMs = 0;
  let t = now();

  const cut = await device.encodeAsync(batch);
  const [batchSize, numModalities, tokenDim] = cut.tokens.shape;
  let tokens: Float32Array;
  let mask: Float32Array;
  try {
    tokens = (await cut.tokens.data()) as Float32Array;
    mask = (await cut.mask.data()) as Float32Array;
  } finally {
    cut.tokens.dispose();
    cut.mask.dispose();
  }
  const sentTokens = privatizeRows(tokens, batchSize, options.rng, options.activations);
  const up1 = encodeSplitPayload(
    {
      ...header,
      encoding: options.activations.encoding,
      tensors: [
        tensor(SPLIT_TENSORS.tokens, [batchSize, numModalities, tokenDim], sentTokens.values),
        tensor(SPLIT_TENSORS.mask, [batchSize, numModalities], mask),
      ],
    },
    crcOption(options),
  );
  deviceMs += now() - t;
  t = now();
  const down1 = await link.forward(step, batchSize, up1);
  waitMs += now() - t;
  t = now();

  const fusedShape = [batchSize, device.fusedDim];
  const fusedValues = decodeSplitPayload(down1, expectation(options, step, SPLIT_TENSORS.fused, fusedShape)).get(SPLIT_TENSORS.fused)!;
  const fused = tf.tensor2d(fusedValues, fusedShape as [number, number]);
  let head;
  try {
    head = await device.headStepAsync(fused, labels);
  } finally {
    fused.dispose();
  }
  let sentGradients: PrivatizedRows;
  let up2: Uint8Array;
  let down2: Uint8Array;
  let localLoss: number;
  try {
    let dFused: Float32Array;
    try {
      dFused = (await head.dFused.data()) as Float32Array;
    } finally {
      head.dFused.dispose();
    }
    sentGradients = privatizeRows(dFused, batchSize, options.rng, options.gradients);
    up2 = encodeSplitPayload(
      { ...header, encoding: options.gradients.encoding, tensors: [tensor(SPLIT_TENSORS.fusedGrad, fusedShape, sentGradients.values)] },
      crcOption(options),
    );
    deviceMs += now() - t;
    t = now();
    down2 = await link.backward(step, batchSize, up2);
    waitMs += now() - t;
    t = now();

    const tokensShape = [batchSize, numModalities, tokenDim];
    const dTokensValues = decodeSplitPayload(down2, expectation(options, step, SPLIT_TENSORS.tokensGrad, tokensShape)).get(SPLIT_TENSORS.tokensGrad)!;
    const dTokens = tf.tensor3d(dTokensValues, tokensShape as [number, number, number]);
    try {
      localLoss = (await device.backwardAsync(batch, dTokens)).localLoss;
    } finally {
      dTokens.dispose();
    }
  } catch (err) {
    device.discardHeadGradient(); // this step's head gradient must not reach the next one (see the module comment)
    throw err;
  }
  deviceMs += now() - t;
  return {
    numExamples: batchSize,
    loss: head.loss,
    correct: head.correct,
    localLoss,
    bytesUp: up1.byteLength + up2.byteLength,
    bytesDown: down1.byteLength + down2.byteLength,
    deviceMs,
    waitMs,
    clippedTokens: sentTokens.numClipped,
    clippedGradients: sentGradients.numClipped,
  };
}

/** What the edge's answer to `step` must be: one tensor of `shape`, within its fp32 size. */
function expectation(options: DeviceStepOptions, step: number, name: string, shape: number[]) {
  const header = { taskId: options.taskId, clientId: options.clientId, step };
  return {
    ...header,
    // The fp32 size, plus an int8 scale, which outweighs fp32 for a 1-element tensor.
    maxBytes: splitPayloadBytes({ ...header, encoding: 'fp32', tensors: [tensor(name, shape)] }) + 4,
    tensors: [{ name, shape }],
    ...crcOption(options),
  };
}

function crcOption(options: DeviceStepOptions): { crc32?: Crc32Function } {
  return options.crc32 ? { crc32: options.crc32 } : {};
}
