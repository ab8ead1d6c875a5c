/**
 * The tensors of a representation round (FedAFD family — "FedAFD: Multimodal Federated Learning via
 * Adversarial Fusion and Distillation", Algorithm 1: the server sends its representations of the
 * public data, clients send theirs back), and the draw of the round's public batch.
 *
 *  - {@link samplePublicBatch}: B distinct indices into the public split, from an injected Rng.
 *  - {@link publicRepresentationTensors} / {@link readPublicRepresentations}: the global
 *    representations as `public/<modality>` [B, D] tensors beside the encoders' weights in a round
 *    start's `model` message, and back.
 *  - {@link representationUploadTensors}: a client's representations as `rep/<modality>` [B, D]
 *    tensors for a `representations` message (checked on arrival by `validateRepresentations`).
 */
import { FlCoreError } from '../errors.js';
import type { Tensor } from '../params.js';
import { MODALITIES } from '../partition/modality.js';
import type { Modality } from '../partition/modality.js';
import type { Rng } from '../rng.js';
import { MAX_PUBLIC_BATCH, modalityOfPublicTensor, publicTensorName, representationTensorName, PUBLIC_TENSOR_PREFIX } from './names.js';
import { checkMatrix, firstNonFinite } from './rows.js';
import type { GlobalRepresentations, RepresentationsByModality } from './types.js';

/**
 * `batchSize` distinct indices in [0, publicSize), drawn uniformly without replacement (a partial
 * Fisher–Yates shuffle: one Rng draw per index, O(batchSize) memory beyond the swaps). Throws
 * `REP_BAD_CONFIG` unless 1 ≤ batchSize ≤ min(publicSize, 4096).
 */
export function samplePublicBatch(rng: Rng, publicSize: number, batchSize: number): number[] {
  if (!Number.isSafeInteger(publicSize) || publicSize < 1)
    throw new FlCoreError('REP_BAD_CONFIG', `samplePublicBatch: publicSize must be a positive integer, got ${publicSize}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > Math.min(publicSize, MAX_PUBLIC_BATCH)) {
    throw new FlCoreError(
      'REP_BAD_CONFIG',
      `samplePublicBatch: batchSize must be an integer in [1, ${Math.min(publicSize, MAX_PUBLIC_BATCH)}], got ${batchSize}`,
    );
  }
  // Sparse swaps: position → value, for the positions a swap has touched.
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < batchSize; i++) {
    const j = i + Math.floor(rng() * (publicSize - i));
    const vi = swapped.get(i) ?? i;
    const vj = swapped.get(j) ?? j;
    swapped.set(j, vi);
    out.push(vj);
  }
  return out;
}

function tensorsOf(fn: string, prefixOf: (m: Modality) => string, representations: RepresentationsByModality, numSamples: number, dim: number): Tensor[] {
  const out: Tensor[] = [];
  for (const key of Object.keys(representations)) {
    if (!(MODALITIES as readonly string[]).includes(key)) throw new FlCoreError('REP_BAD_INPUT', `${fn}: unknown modality '${key}'`);
  }
  for (const m of MODALITIES) {
    const values = representations[m];
    if (values === undefined) continue;
    checkMatrix(fn, values, numSamples, dim, `'${m}'`);
    out.push({ name: prefixOf(m), shape: [numSamples, dim], values });
  }
  if (out.length === 0) throw new FlCoreError('REP_BAD_INPUT', `${fn}: no representations`);
  return out;
}

/** The global representations as `public/<modality>` [B, D] tensors (views of the same arrays), in MODALITIES order. */
export function publicRepresentationTensors(global: GlobalRepresentations): Tensor[] {
  return tensorsOf('publicRepresentationTensors', publicTensorName, global.representations, global.numSamples, global.dim);
}

/** A client's representations as `rep/<modality>` [B, D] tensors (views of the same arrays), in MODALITIES order. */
export function representationUploadTensors(representations: RepresentationsByModality, numSamples: number, dim: number): Tensor[] {
  return tensorsOf('representationUploadTensors', representationTensorName, representations, numSamples, dim);
}

/** A round start's model message split into the global representations and everything else (the encoders' weights). */
export interface PublicRepresentationSplit {
  readonly global: GlobalRepresentations;
  /** The tensors that are not `public/…`, in message order. */
  readonly weights: Tensor[];
}

/**
 * Splits a decoded round-start model into its `public/<modality>` tensors and the encoders' weights,
 * checking the former against the round's B and D. Throws `REP_MODALITIES` for a `public/…` name that
 * is no modality, a repeated one, or none at all; `REP_SHAPE` for a shape other than [B, D];
 * `REP_NON_FINITE` for NaN or ±Infinity. The tensors are not copied or modified.
 */
export function readPublicRepresentations(tensors: readonly Tensor[], numSamples: number, dim: number): PublicRepresentationSplit {
  const fn = 'readPublicRepresentations';
  const representations: Partial<Record<Modality, Float32Array>> = {};
  const weights: Tensor[] = [];
  for (const t of tensors) {
    if (!t.name.startsWith(PUBLIC_TENSOR_PREFIX)) {
      weights.push(t);
      continue;
    }
    const m = modalityOfPublicTensor(t.name);
    if (m === null) throw new FlCoreError('REP_MODALITIES', `${fn}: '${t.name}' names no modality`);
    if (representations[m] !== undefined) throw new FlCoreError('REP_MODALITIES', `${fn}: '${t.name}' appears twice`);
    if (t.shape.length !== 2 || t.shape[0] !== numSamples || t.shape[1] !== dim || t.values.length !== numSamples * dim)
      throw new FlCoreError('REP_SHAPE', `${fn}: '${t.name}' has shape [${t.shape.join(', ')}], the round asked for [${numSamples}, ${dim}]`);
    const bad = firstNonFinite(t.values);
    if (bad >= 0) throw new FlCoreError('REP_NON_FINITE', `${fn}: '${t.name}'[${bad}] is ${t.values[bad]}`);
    representations[m] = t.values;
  }
  if (Object.keys(representations).length === 0)
    throw new FlCoreError('REP_MODALITIES', `${fn}: the message carries no ${PUBLIC_TENSOR_PREFIX}<modality> tensor`);
  return { global: { numSamples, dim, representations }, weights };
}
