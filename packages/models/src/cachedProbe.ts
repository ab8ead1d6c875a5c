/**
 * Outputs of many candidate models on one fixed set of examples — FedMM-X's probe set for its
 * server-side trust (Balija 2025, arXiv:2503.19564), or the test subset each new global model is
 * evaluated on: every candidate global + Δ_k differs from the others only in its LoRA adapters
 * (Hu et al. 2021, arXiv:2106.09685), concept projections and head.
 *
 * What does not change between candidates is computed once, when the cache is built: each
 * encoder's frozen layers below its first adapted layer (their activations on the probe set — the
 * convolutions, most of the work) and that layer's frozen part x·W + b. A pass then runs C
 * candidates together from there up: the first adapted layer's low-rank branch for all of them is
 * one product x·[A_1; …; A_C]ᵀ followed by a batched product with each B_c; every later layer runs
 * on the C candidates' activations stacked into one batch (adapted layers add batched products with
 * their A_c and B_c); the concept projections and the NAM (or linear) head are batched products over
 * the stacked weights. The model's variables are only read (frozen weights, and any exchanged tensor
 * a candidate leaves out), never written. Candidates that hold the very same arrays for an
 * encoder's adapters (a client without a modality sends no delta for its group, so its candidate
 * keeps the global's) share that encoder's pass: it runs once per distinct set of its adapters
 * (compared bit for bit), and the last few sets' embeddings are kept for later calls.
 *
 * The outputs equal {@link probeOneByOne} — the candidate's parameters set on the model and every
 * batch run through `explain` — up to float32 rounding (the sums are taken in another order). The
 * evaluation ({@link CachedProbe.evaluate}) reads the same per-modality contributions, so one pass
 * gives both `MultimodalModel.evaluate` on the batches and on each modality alone.
 */
import * as tf from '@tensorflow/tfjs';
import type { Parameters } from '@chorus/fl-core';
import { activate, checkActivation, type LoraActivation } from './activations.js';
import { chainLayers } from './adapt.js';
import { maskedMeanPool, type Modality } from './encoders.js';
import { ModelsError, checkInt } from './errors.js';
import { explain } from './explain.js';
import { LinearHead } from './linearHead.js';
import { isLoraLayer, type LoraConv1x1, type LoraDense } from './lora.js';
import type { MultimodalBatch, MultimodalModel } from './model.js';

/** One candidate's outputs on the probe set, rows in probe-set order (the batches' rows one after another). */
export interface CachedProbeOutputs {
  /** Softmax probabilities [n, K]. */
  readonly probabilities: Float32Array;
  /** Per-modality contribution vectors Σ_i f_{m,i} [n, M, K], modalities in `model.modalities` order (0 where one is absent). */
  readonly modalityContributions: Float32Array;
}

/** Mean cross-entropy and accuracy over labelled rows, as `MultimodalModel.evaluate` reports them. */
export interface CachedEvaluation {
  readonly loss: number;
  readonly accuracy: number;
  readonly numExamples: number;
}

/** One candidate's evaluation over the cached set; see {@link CachedProbe.evaluate}. */
export interface CachedEvaluationResult {
  /** Every row with the modalities its batch holds, masked by the batch's `present` where it gives one. */
  readonly all: CachedEvaluation;
  /**
   * For each modality some batch holds, in `model.modalities` order: the rows of those batches with
   * that modality alone (the others absent, no `present` mask), as `MultimodalModel.evaluate` on
   * `{ [m]: batch[m], labels: batch.labels }`.
   */
  readonly alone: Partial<Readonly<Record<Modality, CachedEvaluation>>>;
}

/** Options of {@link CachedProbe.build}. */
export interface CachedProbeOptions {
  /**
   * Most floats one pass may hold in its largest activation, all its candidates together; default
   * 2^20 (4 MB). Sets how many candidates share a pass, which bounds the WASM heap (it never shrinks).
   */
  readonly maxPassFloats?: number;
  /**
   * Most candidates per pass whatever the budget; default 4. On the demo model (WASM backend) 2–8 per
   * pass came out 5–10% faster per candidate than 1, and 16 or more slower: the frozen layers above
   * the first adapter cost the same per candidate however they are batched, while the block-diagonal
   * product of the first adapted layer grows with the square of the pass.
   */
  readonly maxCandidatesPerPass?: number;
}

/** An adapted layer's exchanged tensors. */
interface AdapterNames {
  readonly loraA: string;
  readonly loraB: string;
}

/** The head's exchanged tensors of one modality. */
type HeadNames = { readonly kind: 'nam'; readonly weights: readonly string[] } | { readonly kind: 'linear'; readonly kernel: string };

/** What one modality's encoder keeps between candidates, and the names of the tensors a candidate changes. */
interface ModalityPlan {
  readonly modality: Modality;
  /** Position in `model.modalities`. */
  readonly index: number;
  /** Probe-set rows that hold this modality, ascending. */
  readonly rows: Int32Array;
  /** The batches' `present` column of those rows, or null when none gave one (then all 1). */
  readonly presence: Float32Array | null;
  /** The first adapted layer and every layer after it (empty when the encoder has no adapter). */
  readonly upper: readonly tf.layers.Layer[];
  /** Adapter names of the adapted layers in `upper`, by layer. */
  readonly adapters: ReadonlyMap<tf.layers.Layer, AdapterNames>;
  /** The first adapted layer's input on `rows` [n_m, …], or without adapters the encoder's output [n_m, d]. */
  readonly input: tf.Tensor;
  /** The first adapted layer's frozen part x·W + b, [n_m·positions, out]; null without adapters. */
  readonly frozenPart: tf.Tensor2D | null;
  readonly conceptKernel: string;
  readonly conceptBias: string;
  readonly conceptActivation: LoraActivation;
  readonly head: HeadNames;
  /** Floats per candidate of the largest activation from `upper` on. */
  readonly floatsPerCandidate: number;
}

const product = (dims: readonly (number | null)[]): number => dims.reduce<number>((n, d) => n * (d ?? 1), 1);

/**
 * Adapter sets per encoder whose embeddings a cache keeps between calls: a round's probe comes in
 * several requests (and one by one on arrival), and most of its candidates that leave a modality
 * out share the global's adapters for it. The sets used again, and those most candidates shared,
 * are the ones kept.
 */
const EMBEDDING_MEMO = 8;

/** One adapter set's embeddings kept between calls, with a copy of the set. */
interface MemoEntry {
  readonly arrays: readonly Float32Array[];
  readonly hash: number;
  readonly embeddings: Float32Array;
}

/** FNV-1a over the bits of `arrays` (and their lengths). */
function hashArrays(arrays: readonly Float32Array[]): number {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
    h = Math.imul(h ^ a.length, 0x01000193);
    for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i]!, 0x01000193);
  }
  return h >>> 0;
}

/** Whether `a` and `b` hold arrays of the same bits, in order. */
function sameArrays(a: readonly Float32Array[], b: readonly Float32Array[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    if (x === y) return true;
    if (x.length !== y.length) return false;
    const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let j = 0; j < xb.length; j++) if (xb[j] !== yb[j]) return false;
    return true;
  });
}

/** Probe outputs of many candidates over cached frozen activations; see the module comment. Owns its cached tensors until {@link dispose}. */
export class CachedProbe {
  private disposed = false;
  /** Per plan, the embeddings of at most {@link EMBEDDING_MEMO} adapter sets, with copies of those adapters; the last kept last. */
  private readonly memo = new Map<ModalityPlan, MemoEntry[]>();

  private constructor(
    private readonly model: MultimodalModel,
    private readonly plans: readonly ModalityPlan[],
    private readonly shapes: ReadonlyMap<string, readonly number[]>,
    private readonly betaName: string,
    /** The batches' labels in row order, or null when a batch has none (then {@link evaluate} refuses). */
    private readonly labels: Int32Array | null,
    /** Rows of the probe set. */
    readonly numExamples: number,
    /** Candidates that share one pass. */
    readonly candidatesPerPass: number,
  ) {}

  /**
   * Runs the frozen layers below each encoder's first adapted layer over `batches` (the probe set,
   * each batch any subset of the model's modalities) and keeps their output. Throws
   * `MODELS_BAD_INPUT` for a malformed batch and `MODELS_BAD_CONFIG` for merged adapters.
   */
  static build(model: MultimodalModel, batches: readonly MultimodalBatch[], options: CachedProbeOptions = {}): CachedProbe {
    const fn = 'CachedProbe.build';
    if (model.merged) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: adapters are merged; unmerge first`);
    const maxPassFloats = checkInt(fn, 'maxPassFloats', options.maxPassFloats ?? 2 ** 20, 1);
    const maxCandidates = checkInt(fn, 'maxCandidatesPerPass', options.maxCandidatesPerPass ?? 4, 1);
    const sizes = batches.map((b) => model.checkBatch(b, fn));
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const numExamples = sizes.reduce((a, b) => a + b, 0);
    const labels = batches.every((b) => b.labels !== undefined)
      ? Int32Array.from(batches.flatMap((b) => [...(tf.tidy(() => tf.cast(b.labels!, 'int32').dataSync()) as Int32Array)]))
      : null;
    const plans: ModalityPlan[] = [];
    try {
      model.modalities.forEach((modality, index) => {
        const plan = planModality(model, modality, index, batches, sizes, offsets);
        if (plan) plans.push(plan);
      });
    } catch (err) {
      for (const p of plans) tf.dispose([p.input, ...(p.frozenPart ? [p.frozenPart] : [])]);
      throw err;
    }
    const peak = Math.max(1, ...plans.map((p) => p.floatsPerCandidate));
    const perPass = Math.max(1, Math.min(maxCandidates, Math.floor(maxPassFloats / peak)));
    const shapes = new Map(model.adapterShapes().map((s) => [s.name, s.shape]));
    return new CachedProbe(model, plans, shapes, model.adapterName(model.conceptHead.beta), labels, numExamples, perPass);
  }

  /** Bytes of the tensors the cache keeps: each encoder's first adapted layer's input and frozen part (or its output, without adapters). */
  get cachedBytes(): number {
    return this.plans.reduce((bytes, p) => bytes + 4 * (p.input.size + (p.frozenPart?.size ?? 0)), 0);
  }

  /**
   * Outputs of the model with each of `candidates` (any subset of `model.adapterNames()`; a tensor
   * left out takes the model's current value). Every candidate is checked before anything runs, as
   * `setAdapterParameters` checks (`PARAMS_MISMATCH`, `PARAMS_NON_FINITE`); the model is not changed.
   */
  probe(candidates: readonly Parameters[]): CachedProbeOutputs[] {
    return this.run('CachedProbe.probe', candidates, (candidate, perPlan) => this.probeOutputs(candidate, perPlan));
  }

  /**
   * Mean cross-entropy and accuracy of the model with each of `candidates` on the cached rows, with
   * their modalities and with each modality alone (see {@link CachedEvaluationResult}), from one pass:
   * the head is additive over modalities, so a modality's contribution is the same with or without
   * the others. Checks the candidates as {@link probe} does; throws `MODELS_BAD_INPUT` when a batch
   * given to {@link build} had no labels.
   */
  evaluate(candidates: readonly Parameters[]): CachedEvaluationResult[] {
    const fn = 'CachedProbe.evaluate';
    const labels = this.labels;
    if (!labels) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: every batch the cache was built from needs labels`);
    return this.run(fn, candidates, (candidate, perPlan) => this.evaluation(candidate.get(this.betaName)!, labels, perPlan));
  }

  /**
   * `read` of each of `candidates` (checked, and completed with the model's current values) and its
   * contributions on each plan's rows ({@link contributions}); one result per candidate, in order.
   */
  private run<T>(
    fn: string,
    candidates: readonly Parameters[],
    read: (candidate: ReadonlyMap<string, Float32Array>, perPlan: readonly Float32Array[]) => T,
  ): T[] {
    if (this.disposed) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: the cache was disposed`);
    if (this.model.merged) throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: adapters are merged; unmerge first`);
    for (const c of candidates) this.model.checkAdapterParameters(c, fn);
    let current: Map<string, Float32Array> | null = null;
    const resolved = candidates.map((c) => {
      const values = new Map(c.map((t) => [t.name, t.values]));
      if (values.size < this.shapes.size) {
        current ??= new Map(this.model.adapterParameters().map((t) => [t.name, t.values]));
        for (const [name, v] of current) if (!values.has(name)) values.set(name, v);
      }
      return values;
    });
    if (resolved.length === 0) return [];
    const perPlan = this.plans.map((plan) => this.contributions(plan, resolved));
    return resolved.map((candidate, j) =>
      read(
        candidate,
        perPlan.map((c) => c[j]!),
      ),
    );
  }

  /**
   * Runs `items` through `pass` in passes of exactly {@link candidatesPerPass}; one result per item.
   * A short pass is padded with copies of its last item: the products' shapes, and with them the
   * float rounding, then never depend on how many items were sent together, so an item's result is
   * the same bits in any company.
   */
  private inPasses<I, R>(items: readonly I[], pass: (group: readonly I[]) => R[]): R[] {
    const out: R[] = [];
    for (let start = 0; start < items.length; start += this.candidatesPerPass) {
      const group = items.slice(start, start + this.candidatesPerPass);
      const real = group.length;
      while (group.length < this.candidatesPerPass) group.push(group[real - 1]!);
      out.push(...pass(group).slice(0, real));
    }
    return out;
  }

  /** Releases the cached activations (not the model). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.plans) tf.dispose([p.input, ...(p.frozenPart ? [p.frozenPart] : [])]);
  }

  /**
   * Every candidate's head contributions Σ_i f_{m,i} on `plan`'s rows [n_m, K], before any `present`
   * mask, in two stages. The encoder's layers from its first adapted one up run once per distinct
   * set of that encoder's adapters (bit for bit), unless an earlier call computed it: candidates
   * that leave a modality out (a client without it sends no delta for its group) share the
   * global's. The concept projection and the head then run for every candidate. Each stage runs in
   * passes of exactly {@link candidatesPerPass}, so a candidate's outputs are the same bits whoever
   * shares its passes.
   */
  private contributions(plan: ModalityPlan, candidates: readonly ReadonlyMap<string, Float32Array>[]): Float32Array[] {
    const rows = plan.rows.length;
    let embeddingOf: (j: number) => Float32Array;
    let dim: number;
    if (plan.adapters.size > 0) {
      // Candidates holding the same adapter values share an embedding, as do earlier calls' (the memo).
      const names = [...plan.adapters.values()].flatMap((a) => [a.loraA, a.loraB]);
      const distinct: { arrays: Float32Array[]; hash: number; first: number; uses: number; embeddings: Float32Array | null }[] = [];
      const byHash = new Map<number, number[]>();
      const slot = candidates.map((c, j) => {
        const arrays = names.map((name) => c.get(name)!);
        const hash = hashArrays(arrays);
        const bucket = byHash.get(hash) ?? [];
        const found = bucket.find((at) => sameArrays(distinct[at]!.arrays, arrays));
        if (found !== undefined) {
          distinct[found]!.uses++;
          return found;
        }
        bucket.push(distinct.length);
        byHash.set(hash, bucket);
        distinct.push({ arrays, hash, first: j, uses: 1, embeddings: null });
        return distinct.length - 1;
      });
      const memo = this.memo.get(plan) ?? [];
      const hits: MemoEntry[] = [];
      for (const d of distinct) {
        const hit = memo.find((m) => m.hash === d.hash && sameArrays(m.arrays, d.arrays));
        if (hit && !hits.includes(hit)) hits.push(hit);
        d.embeddings = hit?.embeddings ?? null;
      }
      const missing = distinct.filter((d) => d.embeddings === null);
      const computed = this.inPasses(
        missing.map((d) => candidates[d.first]!),
        (group) => this.embeddings(plan, group),
      );
      missing.forEach((d, i) => (d.embeddings = computed[i]!));
      // Kept: the sets used again this call, then those shared by the most candidates (the global's,
      // which every candidate leaving the modality out holds), in place of the rest.
      const fresh = [...missing]
        .sort((x, y) => x.uses - y.uses)
        .map((d): MemoEntry => ({ arrays: d.arrays.map((a) => a.slice()), hash: d.hash, embeddings: d.embeddings! }));
      const kept = [...memo.filter((m) => !hits.includes(m)), ...fresh, ...hits];
      this.memo.set(plan, kept.slice(Math.max(0, kept.length - EMBEDDING_MEMO)));
      dim = distinct[0]!.embeddings!.length / rows;
      embeddingOf = (j) => distinct[slot[j]!]!.embeddings!;
    } else {
      // An encoder without adapters gives every candidate the same embedding.
      const shared = plan.input.dataSync() as Float32Array;
      dim = shared.length / rows;
      embeddingOf = () => shared;
    }
    const k = this.model.numClasses;
    const indices = candidates.map((_, j) => j);
    return this.inPasses(indices, (group) => {
      const numCandidates = group.length;
      const stacked = new Float32Array(numCandidates * rows * dim);
      group.forEach((j, at) => stacked.set(embeddingOf(j), at * rows * dim));
      const result = tf.tidy(() =>
        this.head(
          plan,
          tf.tensor3d(stacked, [numCandidates, rows, dim]),
          group.map((j) => candidates[j]!),
        ),
      );
      let values: Float32Array;
      try {
        values = result.dataSync() as Float32Array;
      } finally {
        result.dispose();
      }
      const size = rows * k;
      return group.map((_, at) => values.slice(at * size, (at + 1) * size));
    });
  }

  /** The embeddings of `group`'s candidates on `plan`'s rows from the cache: for each, [n_m · d] row-major. */
  private embeddings(plan: ModalityPlan, group: readonly ReadonlyMap<string, Float32Array>[]): Float32Array[] {
    const values = (name: string): Float32Array[] => group.map((g) => g.get(name)!);
    // Each layer in its own tidy, the previous activation released: one pass holds at most two activations at a time.
    let x = plan.input;
    let stacked = false;
    try {
      for (const layer of plan.upper) {
        const names = plan.adapters.get(layer);
        const next = tf.tidy(() =>
          names && isLoraLayer(layer)
            ? loraStacked(layer, x, { stacked, loraA: values(names.loraA), loraB: values(names.loraB), frozenPart: stacked ? null : plan.frozenPart })
            : (layer.apply(x) as tf.Tensor),
        );
        if (x !== plan.input) x.dispose();
        x = next;
        if (names) stacked = true;
      }
      const all = x.dataSync() as Float32Array;
      const size = all.length / group.length;
      return group.map((_, j) => all.slice(j * size, (j + 1) * size));
    } finally {
      if (x !== plan.input) x.dispose();
    }
  }

  /** One candidate's probe outputs from its contributions on each plan's rows ({@link pass}). */
  private probeOutputs(candidate: ReadonlyMap<string, Float32Array>, perPlan: readonly Float32Array[]): CachedProbeOutputs {
    const numModalities = this.model.modalities.length;
    const k = this.model.numClasses;
    const n = this.numExamples;
    const mc = new Float32Array(n * numModalities * k);
    this.plans.forEach((plan, i) => {
      const values = perPlan[i]!;
      for (let r = 0; r < plan.rows.length; r++) {
        const p = plan.presence ? plan.presence[r]! : 1;
        const to = (plan.rows[r]! * numModalities + plan.index) * k;
        for (let c = 0; c < k; c++) mc[to + c] = values[r * k + c]! * p;
      }
    });
    const beta = candidate.get(this.betaName)!;
    const probabilities = new Float32Array(n * k);
    const logits = new Float64Array(k);
    for (let row = 0; row < n; row++) {
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        let sum = beta[c]!;
        for (let m = 0; m < numModalities; m++) sum += mc[(row * numModalities + m) * k + c]!;
        logits[c] = sum;
        if (sum > max) max = sum;
      }
      let z = 0;
      for (let c = 0; c < k; c++) z += logits[c] = Math.exp(logits[c]! - max);
      for (let c = 0; c < k; c++) probabilities[row * k + c] = logits[c]! / z;
    }
    return { probabilities, modalityContributions: mc };
  }

  /** One candidate's evaluation from its contributions on each plan's rows ({@link pass}). */
  private evaluation(beta: Float32Array, labels: Int32Array, perPlan: readonly Float32Array[]): CachedEvaluationResult {
    const k = this.model.numClasses;
    const n = this.numExamples;
    const logits = new Float64Array(n * k);
    for (let row = 0; row < n; row++) logits.set(beta, row * k);
    const alone: Partial<Record<Modality, CachedEvaluation>> = {};
    this.plans.forEach((plan, i) => {
      const values = perPlan[i]!;
      const own = new Float64Array(plan.rows.length * k);
      for (let r = 0; r < plan.rows.length; r++) {
        const p = plan.presence ? plan.presence[r]! : 1;
        const row = plan.rows[r]!;
        for (let c = 0; c < k; c++) {
          const v = values[r * k + c]!;
          logits[row * k + c] = logits[row * k + c]! + v * p;
          own[r * k + c] = beta[c]! + v;
        }
      }
      alone[plan.modality] = scoreLogits(own, k, (r) => labels[plan.rows[r]!]!);
    });
    return { all: scoreLogits(logits, k, (row) => labels[row]!), alone };
  }

  /**
   * The concept projection and the head of `group`'s candidates over their embeddings `e`
   * [C, n_m, d]: their contributions Σ_i f_{m,i}, [C, n_m, K]. Call inside a tidy.
   */
  private head(plan: ModalityPlan, e: tf.Tensor3D, group: readonly ReadonlyMap<string, Float32Array>[]): tf.Tensor {
    const numCandidates = group.length;
    const rows = plan.rows.length;
    const stack = (name: string): tf.Tensor => {
      const shape = this.shapes.get(name)!;
      const size = product(shape);
      const values = new Float32Array(numCandidates * size);
      group.forEach((g, j) => values.set(g.get(name)!, j * size));
      return tf.tensor(values, [numCandidates, ...shape]);
    };
    const z = activate(
      tf.add(tf.matMul(e, stack(plan.conceptKernel) as tf.Tensor3D), tf.expandDims(stack(plan.conceptBias), 1)),
      plan.conceptActivation,
    ) as tf.Tensor3D; // [C, n, c]
    if (plan.head.kind === 'linear') return tf.matMul(z, stack(plan.head.kernel) as tf.Tensor3D);
    const [w1, b1, w2, b2, w3, b3] = plan.head.weights.map(stack) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const c = w1.shape[1]!;
    const h = w1.shape[2]!;
    const k = w3.shape[3]!;
    // The shape functions of every candidate and concept as one batch of C·c: [C·c, n, h] → [C·c, n, K].
    const h1 = tf.relu(tf.add(tf.mul(tf.expandDims(z, 3), tf.expandDims(w1, 1)), tf.expandDims(b1, 1))); // [C, n, c, h]
    const h1t = tf.reshape(tf.transpose(h1, [0, 2, 1, 3]), [numCandidates * c, rows, h]) as tf.Tensor3D;
    const h2 = tf.relu(tf.add(tf.matMul(h1t, tf.reshape(w2, [numCandidates * c, h, h]) as tf.Tensor3D), tf.reshape(b2, [numCandidates * c, 1, h])));
    const out = tf.add(tf.matMul(h2 as tf.Tensor3D, tf.reshape(w3, [numCandidates * c, h, k]) as tf.Tensor3D), tf.reshape(b3, [numCandidates * c, 1, k]));
    return tf.sum(tf.reshape(out, [numCandidates, c, rows, k]), 1);
  }
}

/**
 * Mean cross-entropy −log softmax(z)_y and accuracy (the first largest logit, as `tf.argMax` picks)
 * of `logits` [rows, K], row r's label being `label(r)`.
 */
function scoreLogits(logits: Float64Array, k: number, label: (row: number) => number): CachedEvaluation {
  const rows = logits.length / k;
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[r * k + c]! > logits[r * k + best]!) best = c;
    const max = logits[r * k + best]!;
    let z = 0;
    for (let c = 0; c < k; c++) z += Math.exp(logits[r * k + c]! - max);
    const y = label(r);
    loss += Math.log(z) - (logits[r * k + y]! - max);
    if (best === y) correct++;
  }
  return { loss: rows > 0 ? loss / rows : 0, accuracy: rows > 0 ? correct / rows : 0, numExamples: rows };
}

/** How {@link loraStacked} reads its input. */
interface StackedArgs {
  /** Whether `x` is [C·n, …] (each candidate its own rows) rather than [n, …], shared by every candidate. */
  readonly stacked: boolean;
  /** Every candidate's A [r, in] and B [out, r], in candidate order. */
  readonly loraA: readonly Float32Array[];
  readonly loraB: readonly Float32Array[];
  /** The layer's frozen part x·W + b when `x` is the shared cached input. */
  readonly frozenPart: tf.Tensor2D | null;
}

/**
 * An adapted layer applied for every candidate at once: [C·n, …, out], candidate-major. Call inside
 * a tidy. The adapters are laid out in plain arrays so that every product is an untransposed one:
 * on the WASM backend a batched product with an inner size of r (4) runs several times slower than
 * a 2-D product of the same work, and transposed operands cost a copy each.
 */
function loraStacked(layer: LoraDense | LoraConv1x1, x: tf.Tensor, args: StackedArgs): tf.Tensor {
  const { kernel, bias } = layer.loraVariables;
  const numCandidates = args.loraA.length;
  const inDim = x.shape[x.rank - 1]!;
  const outDim = kernel.shape[kernel.shape.length - 1]!;
  const rank = layer.rank;
  const scaling = layer.scaling;
  const examples = args.stacked ? x.shape[0]! / numCandidates : x.shape[0]!;
  const positions = product(x.shape.slice(1, -1));
  const rows = examples * positions;
  let y: tf.Tensor;
  if (args.stacked) {
    // Aᵀ [C, in, r] and (α/r)·Bᵀ [C, r, out]: batched products over the candidates' own rows.
    const aT = new Float32Array(numCandidates * inDim * rank);
    const bT = new Float32Array(numCandidates * rank * outDim);
    for (let c = 0; c < numCandidates; c++) {
      const a = args.loraA[c]!;
      const b = args.loraB[c]!;
      for (let j = 0; j < rank; j++) {
        for (let i = 0; i < inDim; i++) aT[(c * inDim + i) * rank + j] = a[j * inDim + i]!;
        for (let o = 0; o < outDim; o++) bT[(c * rank + j) * outDim + o] = scaling * b[o * rank + j]!;
      }
    }
    const x3d = tf.reshape(x, [numCandidates, rows, inDim]) as tf.Tensor3D;
    const branch = tf.matMul(tf.matMul(x3d, tf.tensor3d(aT, [numCandidates, inDim, rank])), tf.tensor3d(bT, [numCandidates, rank, outDim]));
    const w = tf.reshape(kernel.read(), [inDim, outDim]) as tf.Tensor2D;
    const frozen = tf.fused.matMul({ a: tf.reshape(x, [numCandidates * rows, inDim]) as tf.Tensor2D, b: w, ...(bias ? { bias: bias.read() } : {}) });
    y = activate(tf.add(tf.reshape(frozen, [numCandidates, rows, outDim]), branch), layer.activationName);
  } else {
    // Every candidate's x·A_cᵀ from one product with [A_1ᵀ … A_Cᵀ] ([in, C·r]), then one product with
    // the block-diagonal (α/r)·diag(B_1ᵀ … B_Cᵀ) ([C·r, C·out]): [rows, C, out].
    const width = numCandidates * rank;
    const aT = new Float32Array(inDim * width);
    const blocks = new Float32Array(width * numCandidates * outDim);
    for (let c = 0; c < numCandidates; c++) {
      const a = args.loraA[c]!;
      const b = args.loraB[c]!;
      for (let j = 0; j < rank; j++) {
        for (let i = 0; i < inDim; i++) aT[i * width + c * rank + j] = a[j * inDim + i]!;
        for (let o = 0; o < outDim; o++) blocks[(c * rank + j) * numCandidates * outDim + c * outDim + o] = scaling * b[o * rank + j]!;
      }
    }
    const x2d = tf.reshape(x, [rows, inDim]) as tf.Tensor2D;
    const xa = tf.matMul(x2d, tf.tensor2d(aT, [inDim, width]));
    const branch = tf.reshape(tf.matMul(xa, tf.tensor2d(blocks, [width, numCandidates * outDim])), [rows, numCandidates, outDim]);
    const frozen =
      args.frozenPart ?? tf.fused.matMul({ a: x2d, b: tf.reshape(kernel.read(), [inDim, outDim]) as tf.Tensor2D, ...(bias ? { bias: bias.read() } : {}) });
    y = tf.transpose(activate(tf.add(tf.expandDims(frozen, 1), branch), layer.activationName), [1, 0, 2]);
  }
  return tf.reshape(y, [numCandidates * examples, ...x.shape.slice(1, -1), outDim]);
}

/** The cached part of one modality's encoder over the probe set; null when no batch holds the modality. */
function planModality(
  model: MultimodalModel,
  modality: Modality,
  index: number,
  batches: readonly MultimodalBatch[],
  sizes: readonly number[],
  offsets: readonly number[],
): ModalityPlan | null {
  const layers = chainLayers(model.encoder(modality));
  const first = layers.findIndex(isLoraLayer);
  const lower = first < 0 ? layers : layers.slice(0, first);
  const upper = first < 0 ? [] : layers.slice(first);
  const parts: tf.Tensor[] = [];
  const rows: number[] = [];
  const presence: number[] = [];
  let anyPresent = false;
  batches.forEach((batch, b) => {
    const x = batch[modality];
    if (x === undefined) return;
    parts.push(
      tf.tidy(() => {
        let features: tf.Tensor = modality === 'text' ? maskedMeanPool(model.textEmbedder!.embed(x), x) : x;
        for (const layer of lower) features = layer.apply(features) as tf.Tensor;
        return features;
      }),
    );
    for (let i = 0; i < sizes[b]!; i++) rows.push(offsets[b]! + i);
    if (batch.present) {
      anyPresent = true;
      presence.push(...(tf.tidy(() => tf.cast(tf.slice(batch.present!, [0, index], [sizes[b]!, 1]), 'float32').dataSync()) as Float32Array));
    } else for (let i = 0; i < sizes[b]!; i++) presence.push(1);
  });
  if (parts.length === 0) return null;
  const input = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  if (parts.length > 1) tf.dispose(parts);
  let frozenPart: tf.Tensor2D | null = null;
  const adapters = new Map<tf.layers.Layer, AdapterNames>();
  try {
    for (const layer of upper) {
      if (!isLoraLayer(layer)) continue;
      const { loraA, loraB } = layer.loraVariables;
      adapters.set(layer, { loraA: model.adapterName(loraA), loraB: model.adapterName(loraB) });
    }
    const head = headNames(model, modality);
    const conceptLayer = model.conceptLayer(modality);
    const [conceptKernel, conceptBias] = conceptLayer.trainableWeights;
    const conceptActivation = checkActivation('CachedProbe.build', conceptLayer.getConfig()['activation']);
    const firstLayer = upper[0];
    if (firstLayer && isLoraLayer(firstLayer)) {
      const { kernel, bias } = firstLayer.loraVariables;
      frozenPart = tf.tidy((): tf.Tensor2D => {
        const inDim = input.shape[input.rank - 1]!;
        const y = tf.matMul(
          tf.reshape(input, [-1, inDim]) as tf.Tensor2D,
          tf.reshape(kernel.read(), [inDim, kernel.shape[kernel.shape.length - 1]!]) as tf.Tensor2D,
        );
        return (bias ? tf.add(y, bias.read()) : y) as tf.Tensor2D;
      });
    }
    const floatsPerCandidate = rows.length * Math.max(0, ...upper.map((l) => product((l.outputShape as (number | null)[]).slice(1))));
    return {
      modality,
      index,
      rows: Int32Array.from(rows),
      presence: anyPresent ? Float32Array.from(presence) : null,
      upper,
      adapters,
      input,
      frozenPart,
      conceptKernel: model.adapterName(conceptKernel!),
      conceptBias: model.adapterName(conceptBias!),
      conceptActivation,
      head,
      floatsPerCandidate,
    };
  } catch (err) {
    tf.dispose([input, ...(frozenPart ? [frozenPart] : [])]);
    throw err;
  }
}

/** The exchanged names of `modality`'s head weights. */
function headNames(model: MultimodalModel, modality: Modality): HeadNames {
  const head = model.conceptHead;
  if (head instanceof LinearHead) return { kind: 'linear', kernel: model.adapterName(head.modalityKernel(modality)) };
  return { kind: 'nam', weights: head.modalityWeights(modality).map((v) => model.adapterName(v)) };
}

/**
 * The reference {@link CachedProbe} is checked against: for each candidate, its parameters set on
 * the model (which keeps the last one's) and every batch run through `explain`, whole model each time.
 */
export function probeOneByOne(model: MultimodalModel, batches: readonly MultimodalBatch[], candidates: readonly Parameters[]): CachedProbeOutputs[] {
  const numModalities = model.modalities.length;
  const k = model.numClasses;
  return candidates.map((parameters) => {
    model.setAdapterParameters(parameters);
    const explanations = batches.map((b) => explain(model, b));
    const n = explanations.reduce((s, e) => s + e.batchSize, 0);
    const probabilities = new Float32Array(n * k);
    const modalityContributions = new Float32Array(n * numModalities * k);
    let offset = 0;
    for (const e of explanations) {
      probabilities.set(e.probabilities, offset * k);
      modalityContributions.set(e.modalityContributions, offset * numModalities * k);
      offset += e.batchSize;
    }
    return { probabilities, modalityContributions };
  });
}

/**
 * The reference {@link CachedProbe.evaluate} is checked against: for each candidate, its parameters
 * set on the model (which keeps the last one's) and `MultimodalModel.evaluate` run on the batches,
 * then, for each modality some batch holds, on those batches with that modality alone.
 */
export function evaluateOneByOne(model: MultimodalModel, batches: readonly MultimodalBatch[], candidates: readonly Parameters[]): CachedEvaluationResult[] {
  return candidates.map((parameters) => {
    model.setAdapterParameters(parameters);
    const all = model.evaluate(batches);
    const alone: Partial<Record<Modality, CachedEvaluation>> = {};
    for (const m of model.modalities) {
      const holding = batches.filter((b) => b[m] !== undefined);
      if (holding.length > 0) alone[m] = model.evaluate(holding.map((b) => ({ [m]: b[m], ...(b.labels ? { labels: b.labels } : {}) })));
    }
    return { all, alone };
  });
}
