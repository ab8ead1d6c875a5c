/**
 * FedMKD's attention weighting — Li, Zhang, Wang, Liu, Wu, Wang, Zhuang, Xiong & Yu, 2024,
 * "Resource-aware Federated Self-supervised Learning with Global Class Representations" (NeurIPS 2024):
 * the teachers' representations are combined by attention, the global representation querying each
 * client's:
 *
 *   w_{k,i} = exp(⟨g_i, r^k_i⟩ / √D) / Σ_{k'} exp(⟨g_i, r^{k'}_i⟩ / √D)
 *
 * (scaled dot-product attention with the global row as the query and the clients' rows as keys).
 * The rows are the ones that enter the teacher, i.e. rescaled to ‖g_i‖ when the strategy matches
 * norms, so ⟨g_i, r^k_i⟩ = ‖g_i‖² cos(g_i, r^k_i) and a client cannot buy attention by sending larger
 * numbers.
 */
import type { RepresentationWeighting, WeightingInput } from './types.js';

/** ⟨g_i, r_i⟩ / √D for every row i of one client. */
export function attentionScores(representations: Float32Array, global: Float32Array, numSamples: number, dim: number): Float64Array {
  const out = new Float64Array(numSamples);
  const scale = 1 / Math.sqrt(dim);
  for (let i = 0; i < numSamples; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += global[i * dim + d]! * representations[i * dim + d]!;
    out[i] = s * scale;
  }
  return out;
}

/** FedMKD's weighting as a {@link RepresentationWeighting}: softmax over clients of ⟨g_i, r^k_i⟩ / √D. */
export function fedMkdWeighting(): RepresentationWeighting {
  return {
    form: 'softmax',
    scores: ({ numSamples, dim, global, representations }: WeightingInput) => representations.map((r) => attentionScores(r, global, numSamples, dim)),
  };
}
