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
 * A copy (α_i = 0: another client as alike as two copies of one update) is not invited again:
 * copies would otherwise keep taking the round's slots from honest volunteers. A client weighed 0
 * by the logit alone (much less distinct than the most distinct one, as honest volunteers with
 * similar data can be) is left out of that round only.
 *
 * Histories are kept as count sketches (each coordinate of each tensor hashed, with a sign, into
 * `sketchSize` buckets; Charikar, Chen & Farach-Colton 2002): the sketch of a sum is the sum of the
 * sketches and inner products are preserved in expectation, so the state is `sketchSize` numbers per
 * client whatever the model's size. Histories are part of the exported state.
 */
import { FlCoreError } from '../errors.js';
import { cosineFromSums, cosineSimilarity, dot } from '../params.js';
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
  /**
   * Most histories kept (default {@link DEFAULT_MAX_HISTORIES}; null: every client ever seen). Past
   * it, each round's commit drops the histories of the clients seen least recently (by the last
   * round that changed them, then by client id), never one of that round's. A client whose history
   * was dropped starts a new one when it next sends an update; identities left out as copies stay
   * left out. Bounds what every close computes (O(kept²) scalar steps) and every checkpoint carries.
   */
  readonly maxHistories?: number | null;
}

/**
 * Histories {@link SimilarityDamping} keeps by default: 1,000 clients' (4 MB of sketches, 4 MB of
 * kept cosines; FoolsGold's passes at the close stay within some tens of milliseconds).
 */
export const DEFAULT_MAX_HISTORIES = 1000;

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

/** Coordinates whose hashes {@link hashesOf} keeps (64 MB); past it the cache starts afresh. */
const HASH_CACHE_LIMIT = 16 * 1024 * 1024;
const hashCache = new Map<string, Int32Array>();
let hashCacheSize = 0;

/**
 * The hashes of coordinates 0 … length − 1 of tensor `name`, h(name, j), computed once: every
 * client's update of a model has the same tensors, so each round's sketches look them up.
 */
function hashesOf(name: string, length: number): Int32Array {
  const cached = hashCache.get(name);
  if (cached && cached.length >= length) return cached;
  if (cached) {
    hashCache.delete(name);
    hashCacheSize -= cached.length;
  }
  if (hashCacheSize + length > HASH_CACHE_LIMIT) {
    hashCache.clear();
    hashCacheSize = 0;
  }
  const base = nameHash(name);
  // As int32 (the sign bit is the hash's top bit), so the sketch's loop stays in small integers.
  const hashes = new Int32Array(length);
  for (let j = 0; j < length; j++) hashes[j] = mix32(base ^ Math.imul(j + 1, 0x9e3779b1));
  hashCacheSize += length;
  hashCache.set(name, hashes);
  return hashes;
}

/**
 * Adds the count sketch of `update` to `into` (length a power of two): coordinate j of tensor `name`
 * goes to bucket h(name, j) mod size with sign ±1 from another bit of the same hash.
 */
export function addSketch(into: Float32Array, update: Parameters): Float32Array {
  const mask = into.length - 1;
  for (const t of update) {
    const v = t.values;
    const hashes = hashesOf(t.name, v.length);
    for (let j = 0; j < v.length; j++) {
      const h = hashes[j]!;
      // ×(±1), not a branch on the sign: the sign is a coin flip per coordinate, and the product is the same number as the negation.
      into[h & mask]! += v[j]! * ((h >> 31) | 1);
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
  const similarities = new Float64Array((n * (n - 1)) / 2);
  for (let j = 1; j < n; j++) {
    for (let i = 0; i < j; i++)
      similarities[pair(i, j)] = Math.max(cosineSimilarity(histories[i]!, histories[j]!), pairFloor?.(i, j) ?? Number.NEGATIVE_INFINITY);
  }
  return foolsGoldOf(n, similarities, kappa).weights;
}

/** Where the pair i < j sits in a lower triangle stored row by row (row j holds pairs (0, j) … (j − 1, j)). */
function pair(i: number, j: number): number {
  return (j * (j - 1)) / 2 + i;
}

/** `Math.max(m, v)`, NaN and −0 included, in any order of its arguments. */
function maxOf(m: number, v: number): number {
  if (m !== m || v !== v) return Number.NaN;
  return v > m || (v === 0 && m === 0 && Object.is(m, -0)) ? v : m;
}

/**
 * FoolsGold's weights of `n` clients from their pairwise similarities, a lower triangle (see
 * {@link pair}). Every step is the formula in the header, with maxima taken in any order, so any
 * source of the same similarities gives the same bits.
 */
function foolsGoldOf(n: number, similarities: Float64Array, kappa: number): { weights: number[]; copies: boolean[] } {
  if (n < 2) return { weights: new Array<number>(n).fill(1), copies: new Array<boolean>(n).fill(false) };
  const maxCs = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  for (let j = 1, k = 0; j < n; j++) {
    for (let i = 0; i < j; i++, k++) {
      const c = similarities[k]!;
      maxCs[i] = maxOf(maxCs[i]!, c);
      maxCs[j] = maxOf(maxCs[j]!, c);
    }
  }
  // Pardoning: an honest client that resembles a Sybil is not punished as much as the Sybil.
  const pardoned = (c: number, mine: number, theirs: number): number => (theirs > mine && theirs > 0 ? (c * mine) / theirs : c);
  const top = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  for (let j = 1, k = 0; j < n; j++) {
    for (let i = 0; i < j; i++, k++) {
      const c = similarities[k]!;
      top[i] = maxOf(top[i]!, pardoned(c, maxCs[i]!, maxCs[j]!));
      top[j] = maxOf(top[j]!, pardoned(c, maxCs[j]!, maxCs[i]!));
    }
  }
  // 1 − cs of two copies is rounding error, not distinctness: below 1e-6 it counts as 0.
  const alpha = Array.from(top, (t) => {
    const a = Math.min(1, Math.max(0, 1 - t));
    return a < 1e-6 ? 0 : a;
  });
  // A copy: some other client is (after pardoning) as alike as two copies of one update.
  const copies = alpha.map((a) => a === 0);
  const best = Math.max(...alpha);
  if (!(best > 0)) return { weights: alpha.map(() => 0), copies };
  const weights = alpha.map((a) => {
    const r = a / best === 1 ? 0.99 : a / best;
    const w = r <= 0 ? 0 : kappa * (Math.log(r / (1 - r)) + 0.5);
    return Math.min(1, Math.max(0, w));
  });
  return { weights, copies };
}

/** Whether this platform stores a float32 little-endian, as the exported histories are. */
const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/** The base64 of `values`' float32 bytes, little-endian. */
function float32ToBase64(values: Float32Array): string {
  let bytes: Uint8Array;
  if (LITTLE_ENDIAN) bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  else {
    const view = new DataView(new ArrayBuffer(values.length * 4));
    values.forEach((v, k) => view.setFloat32(k * 4, v, true));
    bytes = new Uint8Array(view.buffer);
  }
  let text = '';
  for (let k = 0; k < bytes.length; k += 0x2000) text += String.fromCharCode(...bytes.subarray(k, k + 0x2000));
  return btoa(text);
}

/** `size` float32 values from the little-endian bytes of `text` (a binary string of 4·size characters). */
function float32FromBinary(text: string, size: number): Float32Array {
  const bytes = new Uint8Array(size * 4);
  for (let k = 0; k < bytes.length; k++) bytes[k] = text.charCodeAt(k);
  if (LITTLE_ENDIAN) return new Float32Array(bytes.buffer);
  const view = new DataView(bytes.buffer);
  return Float32Array.from({ length: size }, (_, k) => view.getFloat32(k * 4, true));
}

/** A stored history: `size` finite float32 values, as base64 (little-endian) or as numbers; null when it is not one. */
function historyOf(stored: unknown, size: number): Float32Array | null {
  let out: Float32Array;
  if (typeof stored === 'string') {
    if (stored.length !== Math.ceil((size * 4) / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(stored)) return null;
    out = float32FromBinary(atob(stored), size);
  } else if (Array.isArray(stored) && stored.length === size && stored.every((x) => typeof x === 'number')) {
    out = Float32Array.from(stored as number[]);
  } else return null;
  return out.every(Number.isFinite) ? out : null;
}

/**
 * Each history's base64, by the history: a committed history is never changed in place (a round
 * that changes it makes a new one), so a checkpoint encodes only the histories its round changed.
 */
const encodedHistories = new WeakMap<Float32Array, string>();

function encodedHistory(history: Float32Array): string {
  let text = encodedHistories.get(history);
  if (text === undefined) {
    text = float32ToBase64(history);
    encodedHistories.set(history, text);
  }
  return text;
}

/** What {@link SimilarityDamping.observeFit} computed for an arriving result, against one committed state. */
interface Arrival {
  readonly clientId: string;
  /** The committed state it was computed against ({@link SimilarityDamping}'s `version`). */
  readonly version: number;
  /** The sketch of the result's delta alone. */
  readonly sketch: Float32Array;
  /** The client's history with the delta added, and its squared norm. */
  readonly history: Float32Array;
  readonly square: number;
  /** Its cosine with each committed history, in their order. */
  readonly row: Float64Array;
}

/**
 * Multiplies each client's example count by its {@link foolsGoldWeights} weight, computed over the
 * kept histories (every client seen, up to `maxHistories` of the most recent; this round's updates
 * included; cost a round O(round's clients · kept · sketchSize) with the cosines kept between
 * rounds, plus O(kept²) scalar steps); clients with weight 0 are
 * left out with `SIMILAR_UPDATES`. Histories grow only from results the screen accepts. Adds
 * `numDamped` (weight < 1) and `minSimilarityWeight` to the round metrics.
 */
export class SimilarityDamping extends StrategyWrapper {
  readonly name: string;
  readonly kappa: number;
  readonly sketchSize: number;
  readonly maxHistories: number | null;
  private histories = new Map<string, Float32Array>();
  /** The last round that changed each history (0: imported from a state that did not say). */
  private lastRounds = new Map<string, number>();
  private excluded = new Set<string>();
  /** The committed histories' squared norms, in the order of `histories`. */
  private squares: readonly number[] = [];
  /**
   * The committed histories' pairwise cosines (a lower triangle, row by row in the order of
   * `histories`), kept between rounds for the first `known` histories: a history that did not change
   * keeps its cosines with every other one that did not, so a round computes only the rows of the
   * clients it changed, O(round's clients · clients seen · sketchSize) instead of O(clients seen² ·
   * sketchSize). None are kept after an import; arrivals then rebuild them a share at a time
   * ({@link observeFit}), and the close computes the rows still missing. kept²/2 float64: 4 MB at
   * 1,000 histories (the default bound), 36 MB at 3,000.
   */
  private cosines = new Float64Array(0);
  private known = 0;
  /** Bumped whenever the committed histories change (a round aggregated, a state imported): arrivals computed before are stale. */
  private version = 0;
  /** By delta: what was computed as each result arrived, read at the close when still current. */
  private readonly arrivals = new WeakMap<Parameters, Arrival>();

  /** Throws `AGG_BAD_CONFIG` unless κ > 0 and `sketchSize` is a power of two in [16, 65536]. */
  constructor(inner: Strategy, options: SimilarityDampingOptions = {}) {
    super(inner);
    this.kappa = options.kappa ?? 1;
    this.sketchSize = options.sketchSize ?? 1024;
    this.maxHistories = options.maxHistories === undefined ? DEFAULT_MAX_HISTORIES : options.maxHistories;
    if (!(this.kappa > 0 && Number.isFinite(this.kappa)))
      throw new FlCoreError('AGG_BAD_CONFIG', `SimilarityDamping: kappa must be a finite number > 0, got ${this.kappa}`);
    const s = this.sketchSize;
    if (!(Number.isInteger(s) && s >= 16 && s <= 65536 && (s & (s - 1)) === 0)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `SimilarityDamping: sketchSize must be a power of two in [16, 65536], got ${s}`);
    }
    const m = this.maxHistories;
    if (m !== null && !(Number.isInteger(m) && m >= 2 && m <= 1_000_000))
      throw new FlCoreError('AGG_BAD_CONFIG', `SimilarityDamping: maxHistories must be an integer in [2, 1000000] or null, got ${m}`);
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

  /**
   * Sketches an arriving result and measures its client's new history against every committed one,
   * as the close would (the same arithmetic, so the same bits): the close then computes only the
   * cosines between clients of the round. Cost O(clients seen · sketchSize) per result, while the
   * round waits for others.
   */
  override observeFit(serverRound: number, global: Parameters, result: FitResult): void {
    this.extendKept();
    const sketch = addSketch(new Float32Array(this.sketchSize), result.delta);
    const history = addSketch((this.histories.get(result.clientId) ?? new Float32Array(this.sketchSize)).slice(), result.delta);
    const square = dot(history, history);
    const row = new Float64Array(this.squares.length);
    let k = 0;
    for (const h of this.histories.values()) {
      row[k] = cosineFromSums(dot(history, h), square, this.squares[k]!);
      k++;
    }
    this.arrivals.set(result.delta, { clientId: result.clientId, version: this.version, sketch, history, square, row });
    super.observeFit(serverRound, global, result);
  }

  /** Committed histories whose cosines with every earlier one are kept (all of them once a round has aggregated). */
  keptRows(): number {
    return this.known;
  }

  /**
   * After an import, no cosine is kept, and a first close would compute every pair (O(clients seen²
   * · sketchSize): seconds at thousands of clients seen, on the new leader's first round). Each
   * arrival computes the next rows of the triangle, about 1/64 of its pairs (at least one row's worth), so
   * the pairs are kept again after 64 arrivals and the close computes only what is still missing.
   * The same arithmetic as the close's, so the same bits.
   */
  private extendKept(): void {
    const n = this.histories.size;
    if (this.known >= n) return;
    const total = (n * (n - 1)) / 2;
    if (this.cosines.length < total) {
      const grown = new Float64Array(total);
      grown.set(this.cosines.subarray(0, (this.known * (this.known - 1)) / 2));
      this.cosines = grown;
    }
    const histories = [...this.histories.values()];
    const budget = Math.max(n, Math.ceil(total / 64));
    for (let spent = 0; this.known < n && spent < budget; this.known++) {
      const j = this.known;
      const h = histories[j]!;
      for (let i = 0; i < j; i++) this.cosines[pair(i, j)] = cosineFromSums(dot(h, histories[i]!), this.squares[j]!, this.squares[i]!);
      spent += j;
    }
  }

  /** The arrival computed for `r` against the committed state as it is now, if any. */
  private arrivalOf(r: FitResult): Arrival | undefined {
    const a = this.arrivals.get(r.delta);
    return a && a.clientId === r.clientId && a.version === this.version ? a : undefined;
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    const { valid } = screenFitResults(global, results);
    const accepted = new Set(valid);
    // What was computed as results arrived, against the histories committed now.
    const arrived = new Map<string, Arrival>();
    for (const r of valid) {
      const a = this.arrivalOf(r);
      if (a) arrived.set(r.clientId, a);
    }
    // Histories with this round's update, committed only once the round produced a model.
    const next = new Map(this.histories);
    for (const r of valid)
      next.set(
        r.clientId,
        arrived.get(r.clientId)?.history ?? addSketch((this.histories.get(r.clientId) ?? new Float32Array(this.sketchSize)).slice(), r.delta),
      );
    // Against every client seen so far, as FoolsGold does: a round that only copies fill still has the
    // honest histories to be measured against.
    // Two identities that send the same update this round are copies whatever their histories
    // (identities sampled into different rounds build different sums): a pair present this round
    // counts as at least as alike as its updates are.
    const ids = [...next.keys()];
    const thisRound = new Map(valid.map((r) => [r.clientId, arrived.get(r.clientId)?.sketch ?? addSketch(new Float32Array(this.sketchSize), r.delta)]));
    // The first `known` ids are the committed histories, in order, whose cosines are kept; the rows
    // to compute are those of the clients this round changed, and of any not kept.
    const n = ids.length;
    const known = this.known;
    const committed = this.histories.size;
    const fresh = ids.map((id, k) => k >= known || thisRound.has(id));
    // A committed history the round did not change keeps its squared norm.
    const squares = ids.map((id, k) =>
      k >= committed || thisRound.has(id) ? (arrived.get(id)?.square ?? dot(next.get(id)!, next.get(id)!)) : this.squares[k]!,
    );
    const cosines = new Float64Array((n * (n - 1)) / 2);
    cosines.set(this.cosines.subarray(0, (known * (known - 1)) / 2));
    for (let i = 0; i < n; i++) {
      if (!fresh[i]) continue;
      const h = next.get(ids[i]!)!;
      // Measured on arrival against every committed history.
      const row = arrived.get(ids[i]!)?.row;
      for (let j = 0; j < n; j++) {
        // A pair of two fresh rows is computed once, from the later row.
        if (j === i || (fresh[j] && j > i)) continue;
        cosines[j < i ? pair(j, i) : pair(i, j)] = row && !fresh[j] ? row[j]! : cosineFromSums(dot(h, next.get(ids[j]!)!), squares[i]!, squares[j]!);
      }
    }
    // Similarities: the cosines, floored for two clients in this round by the cosine of their updates.
    // The floors are written into the triangle for FoolsGold's passes and the cosines put back after,
    // rather than copying clients seen² / 2 numbers.
    const similarities = cosines;
    const overwritten: number[] = [];
    const inRound = ids.flatMap((id, k) => (thisRound.has(id) ? [k] : []));
    // Each sketch's squared norm once: cosineFromSums(dot(a, b), dot(a, a), dot(b, b)) is cosineSimilarity(a, b), bit for bit.
    const sketches = inRound.map((k) => thisRound.get(ids[k]!)!);
    const sketchSquares = sketches.map((x) => dot(x, x));
    for (let q = 1; q < inRound.length; q++) {
      for (let p = 0; p < q; p++) {
        const at = pair(inRound[p]!, inRound[q]!);
        const cosine = similarities[at]!;
        const floored = Math.max(cosine, cosineFromSums(dot(sketches[p]!, sketches[q]!), sketchSquares[p]!, sketchSquares[q]!));
        if (!Object.is(floored, cosine)) {
          overwritten.push(at, cosine);
          similarities[at] = floored;
        }
      }
    }
    const { weights: all, copies } = foolsGoldOf(n, similarities, this.kappa);
    for (let k = 0; k < overwritten.length; k += 2) cosines[overwritten[k]!] = overwritten[k + 1]!;
    const copyIds = new Set(ids.filter((_, k) => copies[k]));
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
    const lastRounds = new Map(this.lastRounds);
    for (const r of valid) lastRounds.set(r.clientId, serverRound);
    const trimmed = this.trimmed(next, squares, cosines, lastRounds, thisRound);
    this.histories = trimmed.histories;
    this.squares = trimmed.squares;
    this.cosines = trimmed.cosines;
    this.lastRounds = lastRounds;
    this.known = trimmed.histories.size;
    this.version++;
    // Only copies are left out for good; a client weighed 0 for resembling others less closely (honest
    // volunteers with similar data can) is left out of this round only, and invited again.
    const copied = valid.filter((r) => copyIds.has(r.clientId));
    if (copied.length > 0) this.excluded = new Set([...this.excluded, ...copied.map((r) => r.clientId)]);
    this.recordRound(serverRound);
    return {
      ...out,
      rejected: [
        ...out.rejected,
        ...damped.map((r) => ({ clientId: r.clientId, code: 'SIMILAR_UPDATES' as const, message: 'its updates so far are too alike another client’s' })),
      ],
      metrics: {
        ...out.metrics,
        numDamped: weights.filter((w) => w < 1).length,
        minSimilarityWeight: weights.length === 0 ? 1 : Math.min(...weights),
      },
    };
  }

  /**
   * `histories` (with their squared norms and kept cosines, in its order) less the histories of the
   * clients seen least recently past {@link maxHistories}, none of `inRound`; `lastRounds` loses the
   * same clients. The kept cosines move to the smaller triangle unchanged.
   */
  private trimmed(
    histories: Map<string, Float32Array>,
    squares: readonly number[],
    cosines: Float64Array<ArrayBuffer>,
    lastRounds: Map<string, number>,
    inRound: ReadonlyMap<string, unknown>,
  ): { histories: Map<string, Float32Array>; squares: readonly number[]; cosines: Float64Array<ArrayBuffer> } {
    const excess = this.maxHistories === null ? 0 : Math.min(histories.size - this.maxHistories, histories.size - inRound.size);
    if (excess <= 0) return { histories, squares, cosines };
    const dropped = new Set(
      [...histories.keys()]
        .filter((id) => !inRound.has(id))
        .sort((a, b) => lastRounds.get(a)! - lastRounds.get(b)! || (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, excess),
    );
    const ids = [...histories.keys()];
    const keep = ids.flatMap((id, k) => (dropped.has(id) ? [] : [k]));
    const kept = new Float64Array((keep.length * (keep.length - 1)) / 2);
    for (let b = 1, at = 0; b < keep.length; b++) {
      const row = pair(0, keep[b]!);
      for (let a = 0; a < b; a++) kept[at++] = cosines[row + keep[a]!]!;
    }
    for (const id of dropped) lastRounds.delete(id);
    return { histories: new Map(keep.map((k) => [ids[k]!, histories.get(ids[k]!)!])), squares: keep.map((k) => squares[k]!), cosines: kept };
  }

  protected override exportExtra(): Readonly<Record<string, unknown>> {
    return {
      sketchSize: this.sketchSize,
      excluded: [...this.excluded].sort(),
      // Each history as the base64 of its float32 values (little-endian): a quarter of the JSON numbers'
      // size; then the last round that changed it.
      histories: [...this.histories.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([id, h]) => [id, encodedHistory(h), this.lastRounds.get(id) ?? 0]),
    };
  }

  protected override importExtra(extra: Readonly<Record<string, unknown>> | undefined): () => void {
    const histories = extra?.histories;
    const excluded = extra?.excluded;
    // A history is a base64 string of float32 values, or (states exported before) an array of numbers;
    // the last round that changed it follows (states exported before leave it out: 0).
    const isRound = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
    const decoded =
      extra?.sketchSize === this.sketchSize &&
      Array.isArray(excluded) &&
      excluded.every((id) => typeof id === 'string') &&
      Array.isArray(histories) &&
      histories.every((e) => Array.isArray(e) && (e.length === 2 || (e.length === 3 && isRound(e[2]))) && typeof e[0] === 'string')
        ? (histories as [string, unknown, number?][]).map(([id, h, last]) => [id, historyOf(h, this.sketchSize), last ?? 0] as const)
        : null;
    if (decoded === null || decoded.some(([, h]) => h === null))
      throw new FlCoreError(
        'AGG_BAD_STATE',
        `${this.name}.importState: extra must hold sketchSize ${this.sketchSize}, excluded client ids and [clientId, history, last round] entries, each history ${this.sketchSize} finite float32 values (base64, or numbers), each last round an integer ≥ 0 (or left out)`,
      );
    const next = new Map(decoded.map(([id, h]) => [id, h!]));
    const nextLastRounds = new Map(decoded.map(([id, , last]) => [id, last]));
    const nextExcluded = new Set(excluded as string[]);
    return () => {
      this.histories = next;
      this.lastRounds = nextLastRounds;
      this.squares = [...next.values()].map((h) => dot(h, h));
      this.cosines = new Float64Array(0);
      this.known = 0;
      this.version++;
      this.excluded = nextExcluded;
    };
  }
}
