/**
 * FedGEMS's entropy weighting — Cheng, Wu, Xiao & Liu, 2021, "FedGEMS: Federated Learning of Larger
 * Server Models via Selective Knowledge Fusion" (arXiv:2110.11027): a teacher whose prediction has
 * lower entropy (is more confident) gets a larger weight.
 *
 * Adaptation to representations (FedAFD §4.1 weights "by the entropy of their predictions"): a
 * representation predicts nothing by itself, so its "prediction" here is Eq. 7's distribution of
 * FedAFD, p^k_i(j) = softmax_j(cos(r^k_i, g_j) / τ): which public sample the client's representation
 * of sample i points at. Its entropy is normalised by log B into [0, 1],
 * Ĥ_{k,i} = −Σ_j p^k_i(j) log p^k_i(j) / log B (0 when B = 1), and
 *
 *   w_{k,i} = exp(−Ĥ_{k,i} / τ_w) / Σ_{k'} exp(−Ĥ_{k',i} / τ_w).
 *
 * Unlike SED this rewards a confident distribution wherever it points, even at the wrong sample.
 */
import { checkTemperature, SED_DEFAULT_TEMPERATURE, SED_DEFAULT_WEIGHT_TEMPERATURE, forEachSimilarityRow } from './sed.js';
import type { RepresentationWeighting, WeightingInput } from './types.js';

/** Ĥ_{k,i} for one client: the normalised entropy of each row's similarity distribution, in [0, 1]. */
export function similarityEntropies(representations: Float32Array, global: Float32Array, numSamples: number, dim: number, temperature: number): Float64Array {
  const out = new Float64Array(numSamples);
  if (numSamples === 1) return out;
  const logB = Math.log(numSamples);
  forEachSimilarityRow(representations, global, numSamples, dim, temperature, (i, p) => {
    let h = 0;
    for (const q of p) if (q > 0) h -= q * Math.log(q);
    out[i] = Math.min(1, Math.max(0, h / logB));
  });
  return out;
}

/** Options of {@link fedGemsWeighting}. */
export interface FedGemsOptions {
  /** τ of the similarity distribution (default 0.1, as SED). */
  readonly temperature?: number;
  /** τ_w of the softmax over clients (default 0.1, as SED). */
  readonly weightTemperature?: number;
}

/** FedGEMS's weighting as a {@link RepresentationWeighting}: softmax over clients of −Ĥ_{k,i} / τ_w. */
export function fedGemsWeighting(options: FedGemsOptions = {}): RepresentationWeighting {
  const temperature = checkTemperature('fedGemsWeighting', 'temperature', options.temperature ?? SED_DEFAULT_TEMPERATURE);
  const weightTemperature = checkTemperature('fedGemsWeighting', 'weightTemperature', options.weightTemperature ?? SED_DEFAULT_WEIGHT_TEMPERATURE);
  return {
    form: 'softmax',
    scores: ({ numSamples, dim, global, representations }: WeightingInput) =>
      representations.map((r) => similarityEntropies(r, global, numSamples, dim, temperature).map((h) => -h / weightTemperature)),
  };
}
