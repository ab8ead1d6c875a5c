/**
 * The machinery every representation method shares — "FedAFD: Multimodal Federated Learning via
 * Adversarial Fusion and Distillation", §3.2.3, Eq. 9–10 — plus the screening that makes the
 * weights usable as a trust signal.
 *
 * Reconstruction (following the paper's words "the aggregated teacher representation" and "minimizing
 * the L2-distance between the aggregated teacher and the global student representation"):
 *
 *   Eq. 9   t_i = Σ_{k ∈ K_m} w_{k,i} r^k_i
 *   Eq. 10  L_SED = ½ · (1/B) Σ_i ‖t_i − g_i‖²,   ∂L_SED/∂g_i = (g_i − t_i) / B
 *
 * The teacher is a fixed target (no gradient flows through the weights into g).
 *
 * Screening, before weighting (per modality):
 *  - magnitude: cosine ignores scale, so a client sending ×10 or ×0.1 of its representations gets the
 *    same weight, but Eq. 9 would let the ×10 client dominate t_i. Each client row is rescaled to
 *    ‖g_i‖ before it enters the teacher (`matchRowNorms` in rows.ts), so scale buys nothing.
 *  - echo: a client that sends back the global representations it was given (a free rider) has
 *    cos(r^k_i, g_i) ≈ 1 for every i and would get the largest SED weight while adding nothing; a
 *    client whose mean_i cos(r^k_i, g_i) ≥ the echo threshold is left out (code `ECHO`, weight 0).
 *  - copies: clients whose uploads are near-identical (mean_i cos(r^k_i, r^l_i) ≥ the copy threshold,
 *    joined transitively) are one voice: the group is weighted as one client (its score the mean of
 *    its members') and its weight is split evenly among them, so copying an upload gains nothing.
 */
import { FlCoreError } from '../errors.js';
import { meanRowCosine } from '../metrics/similarity.js';
import { badRepresentationInput, softmax } from './rows.js';
import type { RepresentationWeighting, WeightingForm } from './types.js';

/** Equal weights for every client and sample: FedAFD's "w/o SED" ablation (§4.4, "replacing SED with simple averaging"). */
export function meanWeighting(): RepresentationWeighting {
  return { form: 'proportional', scores: ({ numSamples, representations }) => representations.map(() => new Float64Array(numSamples).fill(1)) };
}

/** Eq. 9: t_i = Σ_k w_{k,i} r^k_i (B × D), from each client's B × D rows and `Float64Array(B)` weights. */
export function ensembleTeacher(representations: readonly Float32Array[], weights: readonly Float64Array[], numSamples: number, dim: number): Float32Array {
  const fn = 'ensembleTeacher';
  if (representations.length !== weights.length)
    badRepresentationInput(fn, `${representations.length} representation matrices but ${weights.length} weight vectors`);
  const out = new Float64Array(numSamples * dim);
  representations.forEach((r, k) => {
    const w = weights[k]!;
    if (r.length !== numSamples * dim) badRepresentationInput(fn, `client ${k} has ${r.length} values, expected ${numSamples} × ${dim}`);
    if (w.length !== numSamples) badRepresentationInput(fn, `client ${k} has ${w.length} weights, expected ${numSamples}`);
    for (let i = 0; i < numSamples; i++) {
      const wi = w[i]!;
      if (wi === 0) continue;
      for (let d = 0; d < dim; d++) out[i * dim + d] = out[i * dim + d]! + wi * r[i * dim + d]!;
    }
  });
  return Float32Array.from(out);
}

/** The value of Eq. 10 and its gradient with respect to the student's representations. */
export interface DistillationLoss {
  /** ½ · mean_i ‖t_i − g_i‖². */
  readonly loss: number;
  /** ∂loss/∂g: (g − t) / B, B × D. */
  readonly gradient: Float32Array;
}

/** Eq. 10: L2 distillation of the teacher into the student (both B × D); the teacher is held fixed. */
export function distillationLoss(teacher: Float32Array, student: Float32Array, numSamples: number, dim: number): DistillationLoss {
  const fn = 'distillationLoss';
  if (!Number.isSafeInteger(numSamples) || numSamples < 1 || !Number.isSafeInteger(dim) || dim < 1)
    badRepresentationInput(fn, `numSamples and dim must be positive integers, got ${numSamples} and ${dim}`);
  if (teacher.length !== numSamples * dim || student.length !== numSamples * dim)
    badRepresentationInput(fn, `teacher has ${teacher.length} values and student ${student.length}, expected ${numSamples} × ${dim}`);
  const gradient = new Float32Array(teacher.length);
  let total = 0;
  for (let x = 0; x < teacher.length; x++) {
    const diff = student[x]! - teacher[x]!;
    total += diff * diff;
    gradient[x] = diff / numSamples;
  }
  return { loss: total / (2 * numSamples), gradient };
}

/**
 * Groups of near-identical uploads: `groups[k]` is the lowest index of the client k is joined to
 * (through any chain of pairs whose mean row cosine is ≥ `threshold`); a client alone is its own group.
 */
export function copyGroups(representations: readonly Float32Array[], numSamples: number, dim: number, threshold: number): number[] {
  const parent = representations.map((_, k) => k);
  const find = (k: number): number => {
    while (parent[k] !== k) k = parent[k]!;
    return k;
  };
  for (let a = 0; a < representations.length; a++) {
    for (let b = a + 1; b < representations.length; b++) {
      if (meanRowCosine(representations[a]!, representations[b]!, numSamples) < threshold) continue;
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
    }
  }
  return parent.map((_, k) => find(k));
}

/**
 * Per-sample weights from per-client scores: each group of `groups` (see {@link copyGroups}) takes
 * the mean of its members' scores, groups are weighted by `form` (softmax of the scores, or in
 * proportion to non-negative scores; equally when they are all 0), and a group's weight is split
 * evenly among its members. Each sample's weights sum to 1.
 */
export function combineWeights(scores: readonly Float64Array[], groups: readonly number[], form: WeightingForm): Float64Array[] {
  const fn = 'combineWeights';
  if (scores.length !== groups.length) badRepresentationInput(fn, `${scores.length} score vectors but ${groups.length} group labels`);
  if (scores.length === 0) return [];
  const numSamples = scores[0]!.length;
  const labels = [...new Set(groups)];
  const members = labels.map((g) => groups.flatMap((h, k) => (h === g ? [k] : [])));
  const out = scores.map((s, k) => {
    if (s.length !== numSamples) badRepresentationInput(fn, `client ${k} has ${s.length} scores, expected ${numSamples}`);
    for (const v of s) {
      if (!Number.isFinite(v) || (form === 'proportional' && v < 0))
        throw new FlCoreError('REP_BAD_INPUT', `${fn}: client ${k} has score ${v}; scores must be finite${form === 'proportional' ? ' and ≥ 0' : ''}`);
    }
    return new Float64Array(numSamples);
  });
  const groupScores = new Float64Array(labels.length);
  for (let i = 0; i < numSamples; i++) {
    members.forEach((m, g) => {
      let total = 0;
      for (const k of m) total += scores[k]![i]!;
      groupScores[g] = total / m.length;
    });
    let groupWeights: Float64Array;
    if (form === 'softmax') groupWeights = softmax(groupScores);
    else {
      let total = 0;
      for (const v of groupScores) total += v;
      groupWeights = total > 0 ? groupScores.map((v) => v / total) : new Float64Array(labels.length).fill(1 / labels.length);
    }
    members.forEach((m, g) => {
      for (const k of m) out[k]![i] = groupWeights[g]! / m.length;
    });
  }
  return out;
}
