/**
 * Modality assignment for multimodal clients: which of {image, text, audio} each client holds, as in
 * the image-only / text-only / multimodal client mix of FedMM-X (Balija 2025, arXiv:2503.19564, §5)
 * and FedAFD. Two ways to draw it: each modality independently with its own probability (conditioned
 * on the set being non-empty), or explicit fractions of client kinds.
 */
import { shuffled, type Rng } from '../rng.js';
import { badConfig, checkInteger, sizesFromWeights } from './common.js';

/**
 * The modalities a client may hold. They double as parameter group names (`image/…`), and this
 * order is the order a multimodal model stacks them in. The one definition: `@chorus/protocol` and
 * `@chorus/models` re-export it.
 */
export const MODALITIES = ['image', 'text', 'audio'] as const;

/** One of {@link MODALITIES}. */
export type Modality = (typeof MODALITIES)[number];

/** A client kind and the share of clients of that kind, for {@link assignModalitiesByFractions}. */
export interface ModalityKindShare {
  /** The modalities a client of this kind holds (non-empty, no repeats). */
  readonly modalities: readonly Modality[];
  /** Share of clients of this kind; the shares sum to 1. */
  readonly fraction: number;
}

/** Non-empty subsets of {@link MODALITIES}, indexed by bit mask 1 … 7 (bit i = MODALITIES[i]). */
function subsetOf(mask: number): Modality[] {
  return MODALITIES.filter((_, i) => (mask >> i) & 1);
}

/**
 * Each client holds each modality independently with the given probability, conditioned on holding
 * at least one: the set is drawn exactly from the conditional distribution over the seven non-empty
 * subsets (one Rng draw per client), not by rejection. Missing probabilities count as 0.
 */
export function assignModalitiesIndependently(rng: Rng, numClients: number, probabilities: Readonly<Partial<Record<Modality, number>>>): Modality[][] {
  const fn = 'assignModalitiesIndependently';
  checkInteger(fn, 'numClients', numClients, 0);
  for (const key of Object.keys(probabilities)) {
    if (!(MODALITIES as readonly string[]).includes(key)) badConfig(fn, `unknown modality '${key}'`);
  }
  const p = MODALITIES.map((m) => probabilities[m] ?? 0);
  p.forEach((x, i) => {
    if (!(x >= 0 && x <= 1)) badConfig(fn, `probability of ${MODALITIES[i]} must be in [0, 1], got ${x}`);
  });
  if (p.every((x) => x === 0)) badConfig(fn, 'at least one modality needs a probability > 0');
  const weights: number[] = [];
  for (let mask = 1; mask < 8; mask++) {
    weights.push(p.reduce((w, x, i) => w * ((mask >> i) & 1 ? x : 1 - x), 1));
  }
  const total = weights.reduce((a, b) => a + b, 0);
  // Rounding can leave u just past the last edge; then the last subset with positive weight is the draw.
  const lastPossible = weights.findLastIndex((w) => w > 0) + 1;
  const out: Modality[][] = [];
  for (let c = 0; c < numClients; c++) {
    let u = rng() * total;
    let chosen = lastPossible;
    for (let mask = 1; mask < 8; mask++) {
      const w = weights[mask - 1]!;
      if (w > 0 && u < w) {
        chosen = mask;
        break;
      }
      u -= w;
    }
    out.push(subsetOf(chosen));
  }
  return out;
}

/**
 * Explicit client kinds: `numClients · fraction` clients of each kind (rounded by largest
 * remainder so the counts sum to numClients), in a seeded random order.
 */
export function assignModalitiesByFractions(rng: Rng, numClients: number, kinds: readonly ModalityKindShare[]): Modality[][] {
  const fn = 'assignModalitiesByFractions';
  checkInteger(fn, 'numClients', numClients, 0);
  if (kinds.length === 0) badConfig(fn, 'needs at least one client kind');
  let fractionSum = 0;
  const canonical = kinds.map((kind, k) => {
    if (!(kind.fraction >= 0 && kind.fraction <= 1)) badConfig(fn, `fraction of kind ${k} must be in [0, 1], got ${kind.fraction}`);
    fractionSum += kind.fraction;
    const set = new Set(kind.modalities);
    if (set.size === 0 || set.size !== kind.modalities.length) badConfig(fn, `kind ${k} must list at least one modality, without repeats`);
    for (const m of set) if (!(MODALITIES as readonly string[]).includes(m)) badConfig(fn, `kind ${k} names unknown modality '${m}'`);
    return MODALITIES.filter((m) => set.has(m));
  });
  if (Math.abs(fractionSum - 1) > 1e-6) badConfig(fn, `fractions must sum to 1, got ${fractionSum}`);
  const counts = sizesFromWeights(
    numClients,
    kinds.map((k) => k.fraction),
    0,
  );
  const assigned = counts.flatMap((count, k) => Array.from({ length: count }, () => k));
  return shuffled(rng, assigned).map((k) => [...canonical[k]!]);
}
