/**
 * Similarity damping against Sybils — FoolsGold, Fung, Yoon & Beschastnikh 2020, "The Limitations
 * of Federated Learning in Sybil Settings" (RAID 2020), arXiv:1808.04866.
 *
 * Identities that one person controls push the model the same way, round after round; honest
 * volunteers, each with their own data, do not. Every client keeps a history: the sum of the updates
 * it has sent. The similarity cs_ij of two clients is the cosine of their histories, or of their
 * updates this round when both sent one and that is larger. Client i's largest cs_ij is v_i; the
 * similarities are "pardoned" for honest clients that merely resemble a Sybil
 * (cs_ij ← cs_ij · v_i / v_j when v_j > v_i); then
 *
 *   α_i = clip(1 − max_j cs_ij, 0, 1),   α_i ← α_i / max_k α_k (the most distinct client gets 0.99),
 *   w_i = clip(κ·(ln(α_i / (1 − α_i)) + 0.5), 0, 1)
 *
 * and each example count is multiplied by w_i before the inner strategy aggregates (weight 0 leaves
 * the update out). Copies of one update get w = 0; clients no more alike than the most distinct one
 * by a margin keep w = 1 exactly, so a round of honest clients is aggregated as without damping.
 * An identity left out this way is not invited again: copies would otherwise keep taking the round's
 * slots from honest volunteers.
 *
 * Histories are kept as count sketches (each coordinate of each tensor hashed, with a sign, into
 * `sketchSize` buckets; Charikar, Chen & Farach-Colton 2002): the sketch of a sum is the sum of the
 * sketches and inner products are preserved in expectation, so the state is `sketchSize` numbers per
 * client whatever the model's size. Histories are part of the exported state.
 */
import { FlCoreError } from '../errors.js';
import { cosineSimilarity } from '../params.js';
import type { Parameters } from '../params.js';
import { screenFitResults } from './base.js';
import type { AggregateFitResult, ConfigureFitInput, FitFailure, FitPlan, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** Options of {@link SimilarityDamping}. */
export interface SimilarityDampingOptions {
  /** κ of the logit (FoolsGold's confidence parameter; default 1). */
  readonly kappa?: number;
  /** Buckets of each client's history sketch, a power of two (default 1024). */
  readonly sketchSize?: number;
}

function mix32(x: number): number {
  // murmur3's finaliser: a bijection of 32-bit integers with good avalanche.
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function nameHash(name: string): number {
  // FNV-1a over the UTF-16 code units.
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Adds the count sketch of `update` to `into` (length a power of two): coordinate j of tensor `name`
 * goes to bucket h(name, j) mod size with sign ±1 from another bit of the same hash.
 */
export function addSketch(into: Float32Array, update: Parameters): Float32Array {
  const mask = into.length - 1;
  for (const t of update) {
    const base = nameHash(t.name);
    const v = t.values;
    for (let j = 0; j < v.length; j++) {
      const h = mix32(base ^ Math.imul(j + 1, 0x9e3779b1));
      into[h & mask]! += h & 0x80000000 ? -v[j]! : v[j]!;
    }
  }
  return into;
}

/**
 * FoolsGold's weights for clients with the given histories (one vector each, same length): 0 for
 * copies, 1 for clients as distinct as the most distinct one; all 0 when every client copies
 * another. Fewer than two clients: all 1. `pairFloor(i, j)`, when given, is a similarity the pair
 * has at least (the cosine of their updates this round).
 */
export function foolsGoldWeights(histories: readonly Float32Array[], kappa = 1, pairFloor?: (i: number, j: number) => number): number[] {
  const n = histories.length;
  if (n < 2) return histories.map(() => 1);
  // Symmetric: each pair's cosines are computed once.
  const cs = histories.map(() => new Array<number>(n).fill(Number.NEGATIVE_INFINITY));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const c = Math.max(cosineSimilarity(histories[i]!, histories[j]!), pairFloor?.(i, j) ?? Number.NEGATIVE_INFINITY);
      cs[i]![j] = c;
      cs[j]![i] = c;
    }
  }
  const maxCs = cs.map((row) => Math.max(...row));
  // Pardoning: an honest client that resembles a Sybil is not punished as much as the Sybil.
  const pardoned = cs.map((row, i) => row.map((c, j) => (i !== j && maxCs[j]! > maxCs[i]! && maxCs[j]! > 0 ? (c * maxCs[i]!) / maxCs[j]! : c)));
  // 1 − cs of two copies is rounding error, not distinctness: below 1e-6 it counts as 0.
  const alpha = pardoned.map((row) => {
    const a = Math.min(1, Math.max(0, 1 - Math.max(...row)));
    return a < 1e-6 ? 0 : a;
  });
  const top = Math.max(...alpha);
  if (!(top > 0)) return alpha.map(() => 0);
  return alpha.map((a) => {
    const r = a / top === 1 ? 0.99 : a / top;
    const w = r <= 0 ? 0 : kappa * (Math.log(r / (1 - r)) + 0.5);
    return Math.min(1, Math.max(0, w));
  });
}

/**
 * Multiplies each client's example count by its {@link foolsGoldWeights} weight, computed over the
 * histories of every client seen so far (this round's updates included; cost O(clients² · sketchSize)
 * a round); clients with weight 0 are
 * left out with `SIMILAR_UPDATES`. Histories grow only from results the screen accepts. Adds
 * `numDamped` (weight < 1) and `minSimilarityWeight` to the round metrics.
 */
export class SimilarityDamping extends StrategyWrapper {
  readonly name: string;
  readonly kappa: number;
  readonly sketchSize: number;
  private histories = new Map<string, Float32Array>();
  private excluded = new Set<string>();

  /** Throws `AGG_BAD_CONFIG` unless κ > 0 and `sketchSize` is a power of two in [16, 65536]. */
  constructor(inner: Strategy, options: SimilarityDampingOptions = {}) {
    super(inner);
    this.kappa = options.kappa ?? 1;
    this.sketchSize = options.sketchSize ?? 1024;
    if (!(this.kappa > 0 && Number.isFinite(this.kappa)))
      throw new FlCoreError('AGG_BAD_CONFIG', `SimilarityDamping: kappa must be a finite number > 0, got ${this.kappa}`);
    const s = this.sketchSize;
    if (!(Number.isInteger(s) && s >= 16 && s <= 65536 && (s & (s - 1)) === 0)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `SimilarityDamping: sketchSize must be a power of two in [16, 65536], got ${s}`);
    }
    this.name = `similarity-damping(${inner.name})`;
  }

  /** Identities left out as copies, which rounds no longer invite. */
  excludedClients(): ReadonlySet<string> {
    return new Set(this.excluded);
  }

  /** Samples as the inner strategy does, from the available clients less those left out as copies. */
  override configureFit(input: ConfigureFitInput): FitPlan {
    return this.inner.configureFit({ ...input, availableClients: input.availableClients.filter((id) => !this.excluded.has(id)) });
  }

  /** Each client's history sketch (copies). */
  sketches(): ReadonlyMap<string, Float32Array> {
    return new Map([...this.histories].map(([id, h]) => [id, h.slice()]));
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    const { valid } = screenFitResults(global, results);
    const accepted = new Set(valid);
    // Histories with this round's update, committed only once the round produced a model.
    const next = new Map(this.histories);
    for (const r of valid) next.set(r.clientId, addSketch((this.histories.get(r.clientId) ?? new Float32Array(this.sketchSize)).slice(), r.delta));
    // Against every client seen so far, as FoolsGold does: a round that only copies fill still has the
    // honest histories to be measured against.
    // Two identities that send the same update this round are copies whatever their histories
    // (identities sampled into different rounds build different sums): a pair present this round
    // counts as at least as alike as its updates are.
    const ids = [...next.keys()];
    const thisRound = new Map(valid.map((r) => [r.clientId, addSketch(new Float32Array(this.sketchSize), r.delta)]));
    // (The floor is symmetric, so foolsGoldWeights asks for each pair once.)
    const all = foolsGoldWeights(
      ids.map((id) => next.get(id)!),
      this.kappa,
      (i, j) => {
        const a = thisRound.get(ids[i]!);
        const b = thisRound.get(ids[j]!);
        return a && b ? cosineSimilarity(a, b) : Number.NEGATIVE_INFINITY;
      },
    );
    const weightOf = new Map(ids.map((id, k) => [id, all[k]!]));
    const weights = valid.map((r) => weightOf.get(r.clientId)!);
    // Results the screen rejects pass through so the inner strategy reports them as it always does.
    const kept = results.flatMap((r) => {
      if (!accepted.has(r)) return [r];
      const w = weightOf.get(r.clientId)!;
      return w === 0 ? [] : [w === 1 ? r : { ...r, numExamples: r.numExamples * w }];
    });
    const damped = valid.filter((r) => weightOf.get(r.clientId)! === 0);
    if (kept.length === 0) return null;
    const out = this.inner.aggregateFit(serverRound, global, kept, failures);
    if (!out) return null;
    this.histories = next;
    if (damped.length > 0) this.excluded = new Set([...this.excluded, ...damped.map((r) => r.clientId)]);
    this.recordRound(serverRound);
    return {
      ...out,
      rejected: [
        ...out.rejected,
        ...damped.map((r) => ({ clientId: r.clientId, code: 'SIMILAR_UPDATES' as const, message: 'its updates so far are copies of another client’s' })),
      ],
      metrics: {
        ...out.metrics,
        numDamped: weights.filter((w) => w < 1).length,
        minSimilarityWeight: weights.length === 0 ? 1 : Math.min(...weights),
      },
    };
  }

  protected override exportExtra(): Readonly<Record<string, unknown>> {
    return {
      sketchSize: this.sketchSize,
      excluded: [...this.excluded].sort(),
      histories: [...this.histories.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, h]) => [id, Array.from(h)]),
    };
  }

  protected override importExtra(extra: Readonly<Record<string, unknown>> | undefined): () => void {
    const histories = extra?.histories;
    const excluded = extra?.excluded;
    const ok =
      extra?.sketchSize === this.sketchSize &&
      Array.isArray(excluded) &&
      excluded.every((id) => typeof id === 'string') &&
      Array.isArray(histories) &&
      histories.every(
        (e) =>
          Array.isArray(e) &&
          e.length === 2 &&
          typeof e[0] === 'string' &&
          Array.isArray(e[1]) &&
          e[1].length === this.sketchSize &&
          (e[1] as unknown[]).every((x) => typeof x === 'number' && Number.isFinite(x)),
      );
    if (!ok)
      throw new FlCoreError(
        'AGG_BAD_STATE',
        `${this.name}.importState: extra must hold sketchSize ${this.sketchSize}, excluded client ids and [clientId, ${this.sketchSize} finite numbers] pairs`,
      );
    const next = new Map((histories as [string, number[]][]).map(([id, h]) => [id, Float32Array.from(h)]));
    const nextExcluded = new Set(excluded as string[]);
    return () => {
      this.histories = next;
      this.excluded = nextExcluded;
    };
  }
}
