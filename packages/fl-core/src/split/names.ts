/**
 * The tensor-naming rule of a device–edge split step (FedUMM, Su et al. 2026, arXiv:2601.15390 §3.3), in one place.
 *
 * Every tensor of a codec message of kind `split` is named `split/<name>`, where `<name>` is 1 or
 * more characters of `[a-z0-9_]`; the codec enforces the rule on encode and decode. The names one step
 * carries are {@link SPLIT_TENSORS}.
 */

/** Prefix of every tensor of a `split` message. */
export const SPLIT_TENSOR_PREFIX = 'split/';

/**
 * The tensors of a split step. Device → edge: `tokens` [B, M, c] (per-example cut-layer activations,
 * clipped and noised) with `mask` [B, M] (1 where the example holds modality m, else 0), then
 * `fusedGrad` [B, d] (the loss's per-example gradients w.r.t. the fused features, clipped and noised).
 * Edge → device: `fused` [B, d] and `tokensGrad` [B, M, c] (compressed only).
 */
export const SPLIT_TENSORS = Object.freeze({
  tokens: 'split/tokens',
  mask: 'split/mask',
  fused: 'split/fused',
  fusedGrad: 'split/fused_grad',
  tokensGrad: 'split/tokens_grad',
} as const);

const SPLIT_SUFFIX = /^[a-z0-9_]+$/;

/** True when `name` is `split/<name>` with `<name>` of 1 or more characters of `[a-z0-9_]`. */
export function isSplitTensorName(name: string): boolean {
  return name.startsWith(SPLIT_TENSOR_PREFIX) && SPLIT_SUFFIX.test(name.slice(SPLIT_TENSOR_PREFIX.length));
}

/**
 * The parameter group of the edge's fusion network in a split task's global model (tensors
 * `edge/…`): trained by the edge only, never by clients, and refused in their uploads.
 */
export const SPLIT_EDGE_GROUP = 'edge';
