/**
 * FedMD's consensus weighting — Li & Wang, 2019, "FedMD: Heterogenous Federated Learning via Model
 * Distillation" (arXiv:1910.03581), as FedAFD's §4.1 extends it to representations: client k's
 * representations of the public batch count in proportion to its private example count,
 * w_{k,i} = n_k / Σ_{k'} n_{k'}, the same for every public sample.
 */
import type { RepresentationWeighting, WeightingInput } from './types.js';

/** FedMD's weighting as a {@link RepresentationWeighting}: proportional to numExamples. */
export function fedMdWeighting(): RepresentationWeighting {
  return {
    form: 'proportional',
    scores: ({ numSamples, numExamples }: WeightingInput) => numExamples.map((n) => new Float64Array(numSamples).fill(n)),
  };
}
