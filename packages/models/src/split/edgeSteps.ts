/**
 * The edge's side of the split step exchange (FedUMM's device–edge split, Su et al. 2026,
 * arXiv:2601.15390 §3.3): codec bytes in, codec bytes out, around an {@link EdgeFusion}. One home
 * for what the coordinator's evaluator process and the experiments' in-process edge both run.
 *
 * Per attempt (`open` … `close`), per client: a forward half (`split/tokens` [B, M, c] and
 * `split/mask` [B, M] of 0/1) is checked against the client's own session — task, client id, the
 * step number the caller admitted, exact shapes, finite values, size — run through the fusion
 * network, and kept until its backward half (`split/fused_grad` [B, d], the same step) comes; the
 * backward half trains the network (one Adam step over the batch mean) and answers with
 * `split/tokens_grad` [B, M, c]. Replies are compressed in the attempt's `returnEncoding`.
 *
 * Failure behaviour: every refusal is an `FlCoreError` (`SPLIT_*`, `CODEC_*`) and changes nothing —
 * no weight moves, no pending step is lost — except that a malformed backward half leaves its
 * forward pending (the client may send it again). A client holds at most one pending forward; a new
 * forward replaces (and frees) the old one. Forwards older than `stepTimeoutMs` are dropped
 * whenever the edge is asked anything, so a client that vanished mid-step costs the edge that one
 * step's activations until then.
 */
import * as tf from '@tensorflow/tfjs';
import { FlCoreError, SPLIT_TENSORS, decodeSplitPayload, encodeSplitPayload, splitPayloadBytes, tensor } from '@chorus/fl-core';
import type { Crc32Function, Parameters, SplitExpectation, Tensor, UpdateEncoding } from '@chorus/fl-core';
import type { EdgeFusion } from './edgeFusion.js';

/** Bytes of an int8 tensor's scale in the codec. */
const INT8_SCALE_BYTES = 4;

/** One half of a client's step, as the edge receives it. */
export interface EdgeStepRequest {
  readonly roundId: string;
  readonly clientId: string;
  /** The step number (the caller admitted it: see the coordinator's edge service). */
  readonly step: number;
  /** B: the rows every tensor of the payload has. */
  readonly batchSize: number;
  /** The client's codec bytes (kind `split`). */
  readonly payload: Uint8Array;
}

/** Options of {@link EdgeSteps}. */
export interface EdgeStepsOptions {
  readonly taskId: string;
  /** Encoding of the replies. */
  readonly returnEncoding: UpdateEncoding;
  /** Largest B a step may carry. */
  readonly maxBatch: number;
  /** A forward waits this long for its backward before it is dropped. */
  readonly stepTimeoutMs: number;
  /** Clock of the timeouts (ms). */
  readonly now: () => number;
  /** CRC-32 the codec uses (a host's native one); fl-core's portable one by default. */
  readonly crc32?: Crc32Function;
}

/** A forward half waiting for its backward. */
interface PendingForward {
  readonly step: number;
  readonly tokens: tf.Tensor3D;
  readonly mask: tf.Tensor2D;
  readonly at: number;
}

/** Figures of the edge's work since it was built. */
export interface EdgeStepFigures {
  readonly forwardSteps: number;
  readonly backwardSteps: number;
  readonly droppedSteps: number;
  readonly examples: number;
}

/** The edge's step sessions over one fusion network; see the module comment. */
export class EdgeSteps {
  private roundId: string | null = null;
  private readonly pending = new Map<string, PendingForward>();
  /** fp32 byte sizes of the payloads seen so far, by client-id length and tensors (see `expectation`). */
  private readonly payloadSizes = new Map<string, number>();
  private counts = { forwardSteps: 0, backwardSteps: 0, droppedSteps: 0, examples: 0 };

  constructor(
    readonly edge: EdgeFusion,
    private readonly options: EdgeStepsOptions,
  ) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1)
      throw new FlCoreError('SPLIT_BAD_CONFIG', `EdgeSteps: maxBatch must be a positive integer, got ${options.maxBatch}`);
    if (!(options.stepTimeoutMs > 0)) throw new FlCoreError('SPLIT_BAD_CONFIG', `EdgeSteps: stepTimeoutMs must be > 0, got ${options.stepTimeoutMs}`);
  }

  /** The open attempt, or null. */
  get openRound(): string | null {
    return this.roundId;
  }

  /** Forwards waiting for their backward. */
  get pendingSteps(): number {
    return this.pending.size;
  }

  /** Work done since the edge was built. */
  get figures(): EdgeStepFigures {
    return { ...this.counts };
  }

  /** Starts attempt `roundId` from `weights` (the global's `edge/…` tensors): optimiser state reset, pending steps dropped. */
  open(roundId: string, weights: Parameters): void {
    this.edge.setParameters(weights);
    this.edge.resetOptimizer();
    this.dropAll();
    this.roundId = roundId;
  }

  /** Ends attempt `roundId` (another id is ignored): pending steps are dropped, later ones refused. */
  close(roundId: string): void {
    if (this.roundId !== roundId) return;
    this.dropAll();
    this.roundId = null;
  }

  /** The fusion network's current weights. */
  weights(): Tensor[] {
    return this.edge.parameters();
  }

  /** Forgets `clientId`'s pending forward. */
  drop(clientId: string): void {
    const p = this.pending.get(clientId);
    if (!p) return;
    this.free(clientId, p);
    this.counts.droppedSteps++;
  }

  /** The forward half: fused features of the client's tokens, as `split/fused` bytes. */
  forward(request: EdgeStepRequest): Uint8Array {
    this.expire();
    const batch = this.checkRequest('forward', request);
    const { modalities, tokenDim } = this.edge;
    const shapes = { tokens: [batch, modalities.length, tokenDim], mask: [batch, modalities.length] };
    const decoded = decodeSplitPayload(
      request.payload,
      this.expectation(request, [
        { name: SPLIT_TENSORS.tokens, shape: shapes.tokens },
        { name: SPLIT_TENSORS.mask, shape: shapes.mask },
      ]),
    );
    const maskValues = decoded.get(SPLIT_TENSORS.mask)!;
    for (let i = 0; i < maskValues.length; i++) {
      const v = maskValues[i]!;
      if (v !== 0 && v !== 1) throw new FlCoreError('SPLIT_BAD_PAYLOAD', `split/mask holds ${v} at ${i}; presence is 0 or 1`);
    }
    const tokens = tf.tensor3d(decoded.get(SPLIT_TENSORS.tokens)!, shapes.tokens as [number, number, number]);
    const mask = tf.tensor2d(maskValues, shapes.mask as [number, number]);
    let fused: Float32Array;
    try {
      const out = this.edge.forward(tokens, mask);
      try {
        fused = out.dataSync() as Float32Array;
      } finally {
        out.dispose();
      }
    } catch (err) {
      tokens.dispose();
      mask.dispose();
      throw err;
    }
    const previous = this.pending.get(request.clientId);
    if (previous) this.free(request.clientId, previous);
    this.pending.set(request.clientId, { step: request.step, tokens, mask, at: this.options.now() });
    this.counts.forwardSteps++;
    return this.reply(request, [tensor(SPLIT_TENSORS.fused, [batch, this.edge.modelDim], fused)]);
  }

  /** The backward half: trains the fusion network, and answers with the token gradients as `split/tokens_grad` bytes. */
  backward(request: EdgeStepRequest): Uint8Array {
    this.expire();
    const batch = this.checkRequest('backward', request);
    const p = this.pending.get(request.clientId);
    if (!p || p.step !== request.step || p.tokens.shape[0] !== batch)
      throw new FlCoreError('SPLIT_NO_FORWARD', `the edge holds no forward of step ${request.step} with ${batch} rows from this client`);
    const decoded = decodeSplitPayload(request.payload, this.expectation(request, [{ name: SPLIT_TENSORS.fusedGrad, shape: [batch, this.edge.modelDim] }]));
    const dTokens = tf.tidy(() => {
      const dFused = tf.tensor2d(decoded.get(SPLIT_TENSORS.fusedGrad)!, [batch, this.edge.modelDim]);
      return this.edge.backward(p.tokens, p.mask, dFused);
    });
    let values: Float32Array;
    try {
      values = dTokens.dataSync() as Float32Array;
    } finally {
      dTokens.dispose();
    }
    this.free(request.clientId, p);
    this.counts.backwardSteps++;
    this.counts.examples += batch;
    return this.reply(request, [tensor(SPLIT_TENSORS.tokensGrad, [batch, this.edge.modalities.length, this.edge.tokenDim], values)]);
  }

  /** Frees every tensor this object holds (not the fusion network's). */
  dispose(): void {
    this.dropAll();
  }

  private checkRequest(half: string, request: EdgeStepRequest): number {
    if (this.roundId === null || request.roundId !== this.roundId)
      throw new FlCoreError('SPLIT_NOT_OPEN', `${half}: attempt ${request.roundId} is not open at the edge (open: ${this.roundId ?? 'none'})`);
    const batch = request.batchSize;
    if (!Number.isInteger(batch) || batch < 1 || batch > this.options.maxBatch)
      throw new FlCoreError('SPLIT_BAD_SHAPE', `${half}: batchSize must be an integer in [1, ${this.options.maxBatch}], got ${batch}`);
    return batch;
  }

  /** What a payload of `request` must be; its byte limit is the size of the same tensors in fp32 plus int8 scales (no encoding is larger). */
  private expectation(request: EdgeStepRequest, tensors: { name: string; shape: number[] }[]): SplitExpectation {
    // The size depends only on the client id's length and the tensors (the task is fixed, the step a
    // u32), so it is measured once per kind of step, not by allocating a payload's worth of zeros each time.
    const sizeKey = `${request.clientId.length}|${tensors.map((t) => `${t.name}[${t.shape.join(',')}]`).join(';')}`;
    let maxBytes = this.payloadSizes.get(sizeKey);
    if (maxBytes === undefined) {
      maxBytes = splitPayloadBytes({
        taskId: this.options.taskId,
        clientId: request.clientId,
        step: request.step,
        encoding: 'fp32',
        tensors: tensors.map((t) => tensor(t.name, t.shape)),
      });
      this.payloadSizes.set(sizeKey, maxBytes);
    }
    return {
      taskId: this.options.taskId,
      clientId: request.clientId,
      step: request.step,
      // An int8 tensor also carries a 4-byte scale, which outweighs fp32 for a 1-element tensor.
      maxBytes: maxBytes + INT8_SCALE_BYTES * tensors.length,
      tensors,
      ...(this.options.crc32 ? { crc32: this.options.crc32 } : {}),
    };
  }

  private reply(request: EdgeStepRequest, tensors: Tensor[]): Uint8Array {
    return encodeSplitPayload(
      { taskId: this.options.taskId, clientId: request.clientId, step: request.step, encoding: this.options.returnEncoding, tensors },
      this.options.crc32 ? { crc32: this.options.crc32 } : {},
    );
  }

  private expire(): void {
    const now = this.options.now();
    for (const [clientId, p] of this.pending) {
      if (now - p.at <= this.options.stepTimeoutMs) continue;
      this.free(clientId, p);
      this.counts.droppedSteps++;
    }
  }

  private free(clientId: string, p: PendingForward): void {
    p.tokens.dispose();
    p.mask.dispose();
    this.pending.delete(clientId);
  }

  private dropAll(): void {
    for (const [clientId, p] of this.pending) this.free(clientId, p);
  }
}
