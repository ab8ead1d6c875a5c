/**
 * The tensor-naming rule of representation rounds (FedAFD family), in one place: a client's
 * representations of the public batch travel as `rep/<modality>` and the global model's as
 * `public/<modality>`, each of shape [B, D] (B public samples, D the shared dimension).
 */
import { MODALITIES } from '../partition/modality.js';
import type { Modality } from '../partition/modality.js';

/** Prefix of a client's uploaded representation tensors (codec kind `representations`). */
export const REPRESENTATION_TENSOR_PREFIX = 'rep/';
/** Prefix of the global representations a round start carries beside the global encoders' weights. */
export const PUBLIC_TENSOR_PREFIX = 'public/';
/** Dimension of the shared representation space FedAFD projects to (its §4.1: 256-d). */
export const DEFAULT_REPRESENTATION_DIM = 256;
/** Most public samples one representation round may carry. */
export const MAX_PUBLIC_BATCH = 4096;
/** Largest representation dimension a round may ask for. */
export const MAX_REPRESENTATION_DIM = 4096;

/** `rep/<modality>`: the name of a client's representations of one modality. */
export function representationTensorName(modality: Modality): string {
  return `${REPRESENTATION_TENSOR_PREFIX}${modality}`;
}

/** `public/<modality>`: the name of the global representations of one modality. */
export function publicTensorName(modality: Modality): string {
  return `${PUBLIC_TENSOR_PREFIX}${modality}`;
}

function modalityAfter(prefix: string, name: string): Modality | null {
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return (MODALITIES as readonly string[]).includes(rest) ? (rest as Modality) : null;
}

/** The modality a `rep/<modality>` name carries, or null for any other name. */
export function modalityOfRepresentationTensor(name: string): Modality | null {
  return modalityAfter(REPRESENTATION_TENSOR_PREFIX, name);
}

/** The modality a `public/<modality>` name carries, or null for any other name. */
export function modalityOfPublicTensor(name: string): Modality | null {
  return modalityAfter(PUBLIC_TENSOR_PREFIX, name);
}
