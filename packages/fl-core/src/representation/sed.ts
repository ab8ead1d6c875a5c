/**
 * FedAFD's similarity-guided ensemble distillation (SED), weighting part — "FedAFD: Multimodal
 * Federated Learning via Adversarial Fusion and Distillation", §3.2.3, Eq. 7–8 (the teacher and the
 * loss, Eq. 9–10, are in ensemble.ts since every method of the family shares them).
 *
 * Reconstruction (the equations were lost from our copy; this follows the paper's words: "a
 * representation is more reliable if it is closer to the global representation of the same public
 * data in feature space, while being distinguishable from unrelated data"; "cosine similarity";
 * "normalized aggregation weights across all clients with [that] modality"):
 *
 *   Eq. 7   s_{k,i} = exp(cos(r^k_i, g_i) / τ) / Σ_{j=1..B} exp(cos(r^k_i, g_j) / τ)
 *   Eq. 8   w_{k,i} = exp(s_{k,i} / τ_w) / Σ_{k' ∈ K_m} exp(s_{k',i} / τ_w)
 *
 * r^k_i: client k's representation of public sample i; g_j: the global model's representation of
 * sample j; B: the public batch; K_m: the clients holding modality m.
 *
 * Temperatures. τ (default 0.1, the usual contrastive temperature) sharpens Eq. 7 so that a
 * representation that points at its own sample's global representation gets s near 1 and one that
 * points nowhere gets s ≈ 1/B. s is a probability, so a literal softmax over clients of s itself
 * (τ_w = 1) can favour one client over another by at most a factor e — too flat to separate a useful
 * client from a noisy one. We therefore divide s by τ_w (default 0.1: a gap of 0.1 in s is a factor
 * e in weight). τ_w = 1 gives the unscaled reading.
 */
import { FlCoreError } from '../errors.js';
import { forEachCosineRow, softmax, softmaxInto } from './rows.js';
import type { RepresentationWeighting, WeightingInput } from './types.js';

/** τ of Eq. 7 when a task gives none. */
export const SED_DEFAULT_TEMPERATURE = 0.1;
/** τ_w of Eq. 8 when a task gives none (see the file header). */
export const SED_DEFAULT_WEIGHT_TEMPERATURE = 0.1;

/** Throws `REP_BAD_CONFIG` unless `value` is a finite number > 0. */
export function checkTemperature(fn: string, name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new FlCoreError('REP_BAD_CONFIG', `${fn}: ${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

/**
 * Calls `visit(i, p)` for each row i with Eq. 7's distribution p[j] = softmax_j(cos(r_i, g_j) / τ):
 * how strongly representation i points at each sample's global representation. `p` is one buffer
 * reused for every row, so memory stays O(B·D); time is O(B²·D) per client.
 */
export function forEachSimilarityRow(
  representations: Float32Array,
  global: Float32Array,
  numSamples: number,
  dim: number,
  temperature: number,
  visit: (i: number, distribution: Float64Array) => void,
): void {
  checkTemperature('forEachSimilarityRow', 'temperature', temperature);
  forEachCosineRow(representations, global, numSamples, dim, (i, cosines) => {
    for (let j = 0; j < numSamples; j++) cosines[j] = cosines[j]! / temperature;
    visit(i, softmaxInto(cosines, cosines));
  });
}

/** Eq. 7's distributions as one B × B matrix P, P[i·B + j] = softmax_j(cos(r_i, g_j) / τ) (for inspection; O(B²) memory). */
export function similarityDistributions(
  representations: Float32Array,
  global: Float32Array,
  numSamples: number,
  dim: number,
  temperature: number,
): Float64Array {
  const out = new Float64Array(numSamples * numSamples);
  forEachSimilarityRow(representations, global, numSamples, dim, temperature, (i, p) => out.set(p, i * numSamples));
  return out;
}

/** Eq. 7: s_{k,i} for one client, a `Float64Array(B)` in (0, 1]. */
export function sedSimilarities(representations: Float32Array, global: Float32Array, numSamples: number, dim: number, temperature: number): Float64Array {
  const out = new Float64Array(numSamples);
  forEachSimilarityRow(representations, global, numSamples, dim, temperature, (i, p) => (out[i] = p[i]!));
  return out;
}

/** Eq. 8: w_{k,i} = softmax over clients k of s_{k,i} / τ_w, one `Float64Array(B)` per client. */
export function sedWeights(similarities: readonly Float64Array[], weightTemperature: number): Float64Array[] {
  checkTemperature('sedWeights', 'weightTemperature', weightTemperature);
  const numSamples = similarities[0]?.length ?? 0;
  const out = similarities.map(() => new Float64Array(numSamples));
  const logits = new Float64Array(similarities.length);
  for (let i = 0; i < numSamples; i++) {
    similarities.forEach((s, k) => (logits[k] = s[i]! / weightTemperature));
    softmax(logits).forEach((w, k) => (out[k]![i] = w));
  }
  return out;
}

/** Options of {@link sedWeighting}. */
export interface SedOptions {
  /** τ of Eq. 7 (default {@link SED_DEFAULT_TEMPERATURE}). */
  readonly temperature?: number;
  /** τ_w of Eq. 8 (default {@link SED_DEFAULT_WEIGHT_TEMPERATURE}). */
  readonly weightTemperature?: number;
}

/** FedAFD's weighting as a {@link RepresentationWeighting}: softmax over clients of s_{k,i} / τ_w. */
export function sedWeighting(options: SedOptions = {}): RepresentationWeighting {
  const temperature = checkTemperature('sedWeighting', 'temperature', options.temperature ?? SED_DEFAULT_TEMPERATURE);
  const weightTemperature = checkTemperature('sedWeighting', 'weightTemperature', options.weightTemperature ?? SED_DEFAULT_WEIGHT_TEMPERATURE);
  return {
    form: 'softmax',
    scores: ({ numSamples, dim, global, representations }: WeightingInput) =>
      representations.map((r) => sedSimilarities(r, global, numSamples, dim, temperature).map((s) => s / weightTemperature)),
  };
}
