/**
 * FedET's variance weighting — Cho, Manoel, Joshi, Sim & Dimitriadis, 2022, "Heterogeneous Ensemble
 * Knowledge Transfer for Training Large Models in Federated Learning" (arXiv:2204.12703): each
 * teacher's output counts in proportion to its variance, a confidence measure (a peaked softmax
 * output has a large variance across classes, a flat one none).
 *
 * Adaptation to representations (FedAFD §4.1 aggregates "according to their variance"): the output
 * whose variance is taken is, as for FedGEMS, Eq. 7's distribution p^k_i(j) = softmax_j(cos(r^k_i,
 * g_j) / τ) over the B public samples, so the measure does not depend on the scale of the
 * representation (the variance of the raw entries would reward a client for sending larger numbers):
 *
 *   v_{k,i} = (1/B) Σ_j (p^k_i(j) − 1/B)²,   w_{k,i} = v_{k,i} / Σ_{k'} v_{k',i}
 *
 * (equal weights when every v is 0, e.g. B = 1).
 */
import { checkTemperature, SED_DEFAULT_TEMPERATURE, forEachSimilarityRow } from './sed.js';
import type { RepresentationWeighting, WeightingInput } from './types.js';

/** v_{k,i} for one client: the variance over the batch of each row's similarity distribution. */
export function similarityVariances(representations: Float32Array, global: Float32Array, numSamples: number, dim: number, temperature: number): Float64Array {
  const out = new Float64Array(numSamples);
  const mean = 1 / numSamples;
  forEachSimilarityRow(representations, global, numSamples, dim, temperature, (i, p) => {
    let v = 0;
    for (const q of p) v += (q - mean) ** 2;
    out[i] = v / numSamples;
  });
  return out;
}

/** Options of {@link fedEtWeighting}. */
export interface FedEtOptions {
  /** τ of the similarity distribution (default 0.1, as SED). */
  readonly temperature?: number;
}

/** FedET's weighting as a {@link RepresentationWeighting}: proportional to v_{k,i}. */
export function fedEtWeighting(options: FedEtOptions = {}): RepresentationWeighting {
  const temperature = checkTemperature('fedEtWeighting', 'temperature', options.temperature ?? SED_DEFAULT_TEMPERATURE);
  return {
    form: 'proportional',
    scores: ({ numSamples, dim, global, representations }: WeightingInput) =>
      representations.map((r) => similarityVariances(r, global, numSamples, dim, temperature)),
  };
}
