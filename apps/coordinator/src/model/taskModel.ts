/**
 * The coordinator's own copy of a task's model (packages/models' MultimodalModel on the demo
 * architecture, TF.js WASM backend), used for what FedMM-X (Balija 2025, arXiv:2503.19564) asks the
 * server to measure itself rather than trust clients for:
 *
 * - the initial global adapters and the expected tensor names and shapes per modality group;
 * - each candidate model (global + Δ_k) on a small probe set from the dataset's *public* split (its
 *   probe part where the dataset divides it, as fashion-mm does) —
 *   class probabilities for accuracy, loss and calibration, and per-modality contribution vectors
 *   of the NAM head for explanation consistency;
 * - the new global model on a subset of the test split after every round (overall and per modality);
 * - FLTrust's root update (Cao et al. 2021, arXiv:2012.13995): a few local steps on public data (its
 *   root part where the dataset divides it);
 * - exports: the merged TF.js LayersModel and the adapters artifact.
 *
 * Every method sets the adapters it evaluates before reading anything (the probe and the evaluation
 * hand them to their caches of the probe and test sets' frozen activations instead, which read them
 * without writing the model), and all of them are synchronous up to the first `await`, so calls
 * cannot see each other's weights. Inputs are preprocessed once at creation (pixels scaled, captions
 * cut, audio turned into log-mel) and kept as tensors; every per-call tensor is released inside
 * `tf.tidy`. The GloVe table is cut to the rows the held examples use (plus padding and unknown),
 * with their token ids renumbered to match: the outputs are the same and the table shrinks from the
 * whole vocabulary to a few hundred rows.
 *
 * The coordinator runs this class in its evaluator process (model/evaluatorProcess.ts), never on
 * its own event loop; see model/taskEvaluator.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SPLIT_EDGE_GROUP, createRng, groupOf, parametersDelta, shuffled } from '@chorus/fl-core';
import type { CandidateProbeOutputs, Parameters, Tensor } from '@chorus/fl-core';
import { BUILTIN_MODALITIES, BUILTIN_NAMES, openBuiltin, publicPartIndices, readManifest } from '@chorus/datasets';
import type { BuiltinName, DigitsSample, FashionMmSample, FashionSample, SpamSample } from '@chorus/datasets';
import { fileSource, loadBuiltinEmbeddings } from '@chorus/datasets/node';
import {
  CachedProbe,
  EdgeFusion,
  EdgeSteps,
  LogMelFrontend,
  MultimodalModel,
  SplitDevice,
  TextEmbedder,
  evaluateOneByOne,
  evaluateSplit,
  exportMergedModel,
  probeOneByOne,
  saveAdapters,
  splitInitSeeds,
} from '@chorus/models';
import type { CachedEvaluationResult, CachedProbeOutputs, Modality, MultimodalBatch } from '@chorus/models';
import { DIGITS_WEIGHTS_DIR, fileSystemHandler } from '@chorus/models/node';
import { CoordinatorError } from '../errors.js';
import { MAX_SPLIT_BATCH, isCustomTask } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';
import { customBatches, loadCustomData, loadCustomParts } from './customTask.js';
import { DIGITS_AUDIO_SAMPLES, DIGITS_BASE, DIGITS_BASE_SEED, DIGITS_CAPTION_TOKENS, DIGITS_LOG_MEL, buildDigitsEncoder } from './digitsArchitecture.js';

/** The pretrained digits encoders' folder (`<modality>-base/model.json`; one home: `@chorus/models/paths`). */
export { DIGITS_WEIGHTS_DIR };

/**
 * Samples per forward pass on the probe and test sets: bounds the WASM heap, which grows to the
 * largest pass's activations and never shrinks (64 took it from 33 to 77 MB on the demo model).
 */
const EVAL_BATCH = 16;
/** Samples per stored chunk of FLTrust's root data, which training slices into batches (unchanged so root updates are). */
const ROOT_CHUNK = 64;
/** Clips per log-mel computation at creation; see {@link toEvalSet}. */
const FRONTEND_BATCH = 8;

/**
 * Floats one probe pass may hold in its largest activation: 2^20 (4 MB), so the WASM heap (which
 * never shrinks) stays near its size with one candidate per pass.
 */
const PROBE_PASS_FLOATS = 2 ** 20;

/** One candidate's probe: its outputs, or the error that refused its parameters. */
export type ProbeCandidateOutcome = { readonly ok: true; readonly outputs: CandidateProbeOutputs } | { readonly ok: false; readonly error: unknown };

/** Options of {@link TaskModel.create}. */
export interface TaskModelOptions {
  /** Folder of pretrained encoders; default {@link DIGITS_WEIGHTS_DIR}. Missing encoders are built fresh. */
  readonly weightsDir?: string;
  /** The datasets package's data folder; default its own. */
  readonly dataDir?: string;
  /** Examples of the public split used as FLTrust root data (0: none). */
  readonly rootExamples?: number;
  /** Most candidates scored per forward pass of the probe (`CachedProbe`'s default when absent). */
  readonly candidatesPerProbePass?: number;
}

/** Preprocessed examples: model inputs in chunks, plus labels. */
interface EvalSet {
  readonly chunks: readonly MultimodalBatch[];
  readonly labels: Int32Array;
}

/** A merged or adapters-only model as TF.js artifacts (model.json fields + one weights buffer). */
export interface ExportedArtifacts {
  readonly modelJson: tf.io.ModelJSON;
  readonly weights: Uint8Array;
}

let backendReady: Promise<void> | null = null;

/** Activates TF.js's WASM backend once per process; throws `CONFIG_INVALID` when it cannot start. */
export function ensureWasmBackend(): Promise<void> {
  backendReady ??= (async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new CoordinatorError('CONFIG_INVALID', 'the TF.js wasm backend failed to initialise');
    await tf.ready();
  })();
  return backendReady;
}

type AnySample = DigitsSample | FashionSample | SpamSample | FashionMmSample;

/** A GloVe table cut to the rows some token lists use; see {@link trimVocabulary}. */
export interface TrimmedVocabulary {
  /** The kept rows, row-major, `dim` wide: `keep` first (in order, repeats dropped), then every other used id, ascending. */
  readonly vectors: Float32Array;
  /** New row of each kept original id. */
  readonly remap: ReadonlyMap<number, number>;
}

/**
 * The rows of `vectors` (a `dim`-wide table) that `tokenLists` use, plus the ids in `keep` (padding
 * first: the text encoder treats row 0 as padding, so padding must stay row 0). Throws
 * `CONFIG_INVALID` for an id outside the table or a `keep` that does not start with 0.
 */
export function trimVocabulary(vectors: Float32Array, dim: number, keep: readonly number[], tokenLists: Iterable<ArrayLike<number>>): TrimmedVocabulary {
  const vocabSize = Math.floor(vectors.length / dim);
  if (!Number.isInteger(dim) || dim < 1 || vectors.length !== vocabSize * dim) {
    throw new CoordinatorError('CONFIG_INVALID', `trimVocabulary: ${vectors.length} values are not whole rows of width ${dim}`);
  }
  if (keep[0] !== 0) throw new CoordinatorError('CONFIG_INVALID', `trimVocabulary: keep must start with the padding id 0, got [${keep.join(', ')}]`);
  const used = new Set<number>();
  for (const tokens of tokenLists) {
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new CoordinatorError('CONFIG_INVALID', `trimVocabulary: token id ${id} is outside the table of ${vocabSize} rows`);
      used.add(id);
    }
  }
  const order: number[] = [];
  const remap = new Map<number, number>();
  const add = (id: number): void => {
    if (remap.has(id)) return;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new CoordinatorError('CONFIG_INVALID', `trimVocabulary: kept id ${id} is outside the table of ${vocabSize} rows`);
    remap.set(id, order.length);
    order.push(id);
  };
  keep.forEach(add);
  [...used].sort((a, b) => a - b).forEach(add);
  const out = new Float32Array(order.length * dim);
  order.forEach((id, row) => out.set(vectors.subarray(id * dim, (id + 1) * dim), row * dim));
  return { vectors: out, remap };
}

/** Token ids of a sample's text, cut to the length the text encoder reads. */
function textTokens(s: AnySample): Uint16Array {
  const tokens = 'caption' in s ? s.caption : (s as SpamSample).tokens;
  return tokens.subarray(0, DIGITS_CAPTION_TOKENS);
}

/** Reads `count` examples of a split, chosen by a seeded shuffle (sorted, so reads are sequential). */
async function readSubset(
  dataDir: string | undefined,
  name: BuiltinName,
  split: 'public' | 'test',
  indices: (numExamples: number) => number[],
): Promise<{ samples: AnySample[]; numClasses: number }> {
  const source = fileSource(dataDir);
  const manifest = await readManifest(source);
  const dataset = await openBuiltin(source, manifest, name, split);
  const wanted = indices(dataset.numExamples);
  const samples = (await dataset.read(wanted)) as AnySample[];
  return { samples, numClasses: dataset.classes.length };
}

/** The server's model of one task; see the module comment. */
export class TaskModel {
  private readonly initial: Tensor[];
  /** A split task's device half (task head) and edge (FedUMM §3.3); null for a weight task. */
  private readonly split: SplitParts | null;
  /** The probe set's frozen activations, built on the first probe. */
  private probeCache: CachedProbe | null = null;
  /** The test set's frozen activations, built on the first evaluation. */
  private testCache: CachedProbe | null = null;
  private constructor(
    private readonly task: TaskConfig,
    private readonly model: MultimodalModel,
    private readonly bases: Partial<Record<Modality, tf.LayersModel>>,
    private readonly embedder: TextEmbedder | null,
    private readonly probeSet: EvalSet,
    private readonly testSet: EvalSet | null,
    private readonly rootSet: EvalSet | null,
    /** Modalities whose encoder came from pretrained weights. */
    readonly pretrained: readonly Modality[],
    /** LoRA targets by modality (a custom task's; the demo encoders' defaults when absent). */
    private readonly targets: Partial<Record<Modality, readonly string[]>>,
    private readonly candidatesPerPass: number | undefined,
  ) {
    this.split = task.split ? createSplitParts(task, model) : null;
    this.initial = this.split ? [...this.split.device.parameters(), ...this.split.evaluationEdge.parameters()] : model.adapterParameters();
  }

  /** A split task's edge step sessions (the evaluator process serves them); null for a weight task. */
  get edgeSteps(): EdgeSteps | null {
    return this.split?.steps ?? null;
  }

  /** Loads data and weights and builds the model; throws `TASK_INVALID` for a base or dataset it cannot serve. */
  static async create(task: TaskConfig, options: TaskModelOptions = {}): Promise<TaskModel> {
    if (isCustomTask(task)) return TaskModel.createCustom(task, options);
    if (task.model.base !== DIGITS_BASE) {
      throw new CoordinatorError('TASK_INVALID', `task ${task.id}: model.base '${task.model.base}' is unknown (known: ${DIGITS_BASE})`, [
        `model.base: unknown base '${task.model.base}'`,
      ]);
    }
    const name = task.dataset.name;
    if (!(BUILTIN_NAMES as readonly string[]).includes(name)) {
      throw new CoordinatorError('TASK_INVALID', `task ${task.id}: dataset '${name}' is not built in (known: ${BUILTIN_NAMES.join(', ')})`, [
        `dataset.name: unknown dataset '${name}'`,
      ]);
    }
    const builtin = name as BuiltinName;
    const modalities = task.dataset.modalities as Modality[];
    const missing = modalities.filter((m) => !BUILTIN_MODALITIES[builtin].includes(m));
    if (missing.length > 0) {
      throw new CoordinatorError('TASK_INVALID', `task ${task.id}: dataset '${name}' has no ${missing.join(', ')}`, [
        `dataset.modalities: '${name}' has no ${missing.join(', ')}`,
      ]);
    }
    await ensureWasmBackend();

    const { probeExamples, testExamples } = task.evaluation;
    const rootExamples = options.rootExamples ?? 0;
    // One seeded order of the public split: the probe set first, then FLTrust's root data, disjoint.
    // A dataset that divides its public split (fashion-mm) gives each its own part.
    const manifest = await readManifest(fileSource(options.dataDir));
    const probePart = publicPartIndices(manifest, builtin, 'probe');
    const rootPart = publicPartIndices(manifest, builtin, 'root');
    let publicOrder: number[] = [];
    const publicSubset = await readSubset(options.dataDir, builtin, 'public', (n) => {
      if (probePart && rootPart) {
        if (probeExamples > probePart.length || rootExamples > rootPart.length) {
          throw new CoordinatorError(
            'TASK_INVALID',
            `task ${task.id}: ${name}/public has ${probePart.length} probe and ${rootPart.length} root examples; asked for ${probeExamples} and ${rootExamples}`,
            [`evaluation.probeExamples: ${name}/public has only ${probePart.length} probe examples`],
          );
        }
        publicOrder = [
          ...shuffled(createRng(task.seed), probePart).slice(0, probeExamples),
          ...shuffled(createRng(task.seed + 2), rootPart).slice(0, rootExamples),
        ];
        return publicOrder;
      }
      if (probeExamples + rootExamples > n) {
        throw new CoordinatorError(
          'TASK_INVALID',
          `task ${task.id}: ${name}/public has ${n} examples, fewer than probeExamples + rootExamples = ${probeExamples + rootExamples}`,
          [`evaluation.probeExamples: ${name}/public has only ${n} examples`],
        );
      }
      publicOrder = shuffled(
        createRng(task.seed),
        Array.from({ length: n }, (_, i) => i),
      ).slice(0, probeExamples + rootExamples);
      return publicOrder;
    });
    const testSubset =
      testExamples > 0
        ? await readSubset(options.dataDir, builtin, 'test', (n) =>
            shuffled(
              createRng(task.seed + 1),
              Array.from({ length: n }, (_, i) => i),
            )
              .slice(0, Math.min(n, testExamples))
              .sort((a, b) => a - b),
          )
        : null;

    let remap: ReadonlyMap<number, number> | null = null;
    const embedder = modalities.includes('text')
      ? await (async () => {
          const e = await loadBuiltinEmbeddings(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
          // Every text the model will ever see is held here, so rows no held text uses are dead weight.
          const held = [...publicSubset.samples, ...(testSubset?.samples ?? [])].map(textTokens);
          const trimmed = trimVocabulary(e.vectors, e.dim, [0, e.padId, e.unkId], held);
          remap = trimmed.remap;
          return new TextEmbedder(trimmed.vectors, e.dim);
        })()
      : null;
    const weightsDir = options.weightsDir ?? DIGITS_WEIGHTS_DIR;
    const bases: Partial<Record<Modality, tf.LayersModel>> = {};
    const pretrained: Modality[] = [];
    for (const m of modalities) {
      const dir = join(weightsDir, `${m}-base`);
      if (existsSync(join(dir, 'model.json'))) {
        bases[m] = await tf.loadLayersModel(fileSystemHandler(dir));
        pretrained.push(m);
      } else {
        // Only the missing encoder: building all three and dropping the rest grew the WASM heap, which never shrinks.
        bases[m] = buildDigitsEncoder(m, DIGITS_BASE_SEED);
      }
    }

    const model = new MultimodalModel({
      numClasses: publicSubset.numClasses,
      encoders: Object.fromEntries(modalities.map((m) => [m, { base: bases[m]! }])),
      ...(embedder ? { textEmbedder: embedder } : {}),
      conceptDim: task.model.namConcepts,
      head: task.model.head,
      loraRank: task.model.adapterRank,
      loraAlpha: task.model.adapterAlpha,
      learningRate: task.learningRate,
      seed: task.seed,
    });
    const frontend = modalities.includes('audio') ? new LogMelFrontend(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL) : null;
    try {
      const byIndex = new Map(publicSubset.samples.map((s) => [s.index, s]));
      const ordered = publicOrder.map((i) => byIndex.get(i)!);
      const probeSet = toEvalSet(ordered.slice(0, probeExamples), modalities, frontend, remap, EVAL_BATCH);
      const rootSet = rootExamples > 0 ? toEvalSet(ordered.slice(probeExamples), modalities, frontend, remap, ROOT_CHUNK) : null;
      const testSet = testSubset ? toEvalSet(testSubset.samples, modalities, frontend, remap, EVAL_BATCH) : null;
      return new TaskModel(task, model, bases, embedder, probeSet, testSet, rootSet, pretrained, {}, options.candidatesPerProbePass);
    } finally {
      frontend?.dispose();
    }
  }

  /**
   * A custom task's model: its own encoders and vocabulary from the task folder, its probe, root and
   * test examples from its server data (each chunk one modality), preprocessed as clients do.
   */
  private static async createCustom(task: TaskConfig, options: TaskModelOptions): Promise<TaskModel> {
    await ensureWasmBackend();
    const parts = await loadCustomParts(task);
    const owned: tf.Tensor[] = [];
    try {
      const { probeExamples, testExamples } = task.evaluation;
      const rootExamples = options.rootExamples ?? 0;
      const publicExamples = await loadCustomData(task, 'probe', parts.spec);
      if (probeExamples + rootExamples > publicExamples.length) {
        throw new CoordinatorError(
          'TASK_INVALID',
          `task ${task.id}: dataset.probe holds ${publicExamples.length} examples, fewer than probeExamples + rootExamples = ${probeExamples + rootExamples}`,
          [`evaluation.probeExamples: dataset.probe holds only ${publicExamples.length} examples`],
        );
      }
      // One seeded order of the public data: the probe set first, then FLTrust's root data, disjoint.
      const order = shuffled(
        createRng(task.seed),
        publicExamples.map((_, i) => i),
      );
      const pick = (indices: number[]) => indices.sort((a, b) => a - b).map((i) => publicExamples[i]!);
      const probe = await customBatches(pick(order.slice(0, probeExamples)), parts, EVAL_BATCH);
      const root = rootExamples > 0 ? await customBatches(pick(order.slice(probeExamples, probeExamples + rootExamples)), parts, ROOT_CHUNK) : null;
      let test: EvalSet | null = null;
      if (testExamples > 0 && task.dataset.test) {
        const all = await loadCustomData(task, 'test', parts.spec);
        const kept = shuffled(
          createRng(task.seed + 1),
          all.map((_, i) => i),
        ).slice(0, Math.min(all.length, testExamples));
        test = await customBatches(
          kept.sort((a, b) => a - b).map((i) => all[i]!),
          parts,
          EVAL_BATCH,
        );
      }
      for (const set of [probe, root, test]) if (set) for (const c of set.chunks) owned.push(...(Object.values(c) as tf.Tensor[]));
      const modalities = task.dataset.modalities as Modality[];
      const model = new MultimodalModel({
        numClasses: parts.spec.classes.length,
        encoders: Object.fromEntries(modalities.map((m) => [m, { base: parts.bases[m]!, targets: parts.targets[m]! }])),
        ...(parts.embedder ? { textEmbedder: parts.embedder } : {}),
        conceptDim: task.model.namConcepts,
        head: task.model.head,
        loraRank: task.model.adapterRank,
        loraAlpha: task.model.adapterAlpha,
        learningRate: task.learningRate,
        seed: task.seed,
      });
      return new TaskModel(task, model, parts.bases, parts.embedder, probe, test, root, modalities, parts.targets, options.candidatesPerProbePass);
    } catch (err) {
      tf.dispose(owned);
      for (const base of Object.values(parts.bases)) base.dispose();
      parts.embedder?.dispose();
      throw err;
    }
  }

  /** The initial global adapters (a copy): LoRA A random and B zero, concept projections, NAM head. */
  initialParameters(): Tensor[] {
    return this.initial.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.slice() }));
  }

  /** Labels of the probe set. */
  get probeLabels(): Int32Array {
    return this.probeSet.labels;
  }

  /** Modalities the model holds. */
  get modalities(): readonly Modality[] {
    return this.model.modalities;
  }

  /** Probabilities and per-modality explanations of the model with `parameters` on the probe set; throws what {@link probeCandidates} reports. */
  probe(parameters: Parameters): CandidateProbeOutputs {
    const [outcome] = this.probeCandidates([parameters]);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.outputs;
  }

  /**
   * {@link probe} of every candidate, scored together over the probe set's cached frozen activations
   * (`CachedProbe`, built on the first call and kept: the probe set and the frozen encoders never
   * change). A candidate whose parameters are refused (`PARAMS_MISMATCH`, `PARAMS_NON_FINITE`) gets
   * its error while the others are still probed.
   */
  probeCandidates(candidates: readonly Parameters[]): ProbeCandidateOutcome[] {
    const outcomes: ProbeCandidateOutcome[] = new Array<ProbeCandidateOutcome>(candidates.length);
    const valid: number[] = [];
    candidates.forEach((c, i) => {
      try {
        this.model.checkAdapterParameters(c, 'TaskModel.probe');
        valid.push(i);
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    });
    if (valid.length === 0) return outcomes;
    this.probeCache ??= CachedProbe.build(this.model, this.probeSet.chunks, {
      maxPassFloats: PROBE_PASS_FLOATS,
      ...(this.candidatesPerPass === undefined ? {} : { maxCandidatesPerPass: this.candidatesPerPass }),
    });
    const outputs = this.probeCache.probe(valid.map((i) => candidates[i]!));
    valid.forEach((i, j) => (outcomes[i] = { ok: true, outputs: this.probeOutputs(outputs[j]!) }));
    return outcomes;
  }

  /**
   * {@link probeCandidates} without the cache: each candidate set on the model and the whole model
   * run over the probe set (`probeOneByOne`), the reference the tests and `bench:probe` compare with.
   */
  probeOneByOne(candidates: readonly Parameters[]): CandidateProbeOutputs[] {
    return probeOneByOne(this.model, this.probeSet.chunks, candidates).map((out) => this.probeOutputs(out));
  }

  /** The probe's outputs as FedMM-X's trust reads them: explanations per modality, [n, K] each. */
  private probeOutputs(out: CachedProbeOutputs): CandidateProbeOutputs {
    const numModalities = this.model.modalities.length;
    // Explanation consistency compares modalities on the same input, so it needs inputs holding several.
    const paired = numModalities >= 2 && this.probeSet.chunks.every((c) => this.model.modalities.filter((m) => c[m] !== undefined).length >= 2);
    if (!paired) return { probabilities: out.probabilities };
    const n = this.probeSet.labels.length;
    const k = this.model.numClasses;
    const mc = out.modalityContributions;
    // modalityContributions is [n, M, K]; EC compares modality m's K-vector with the others' per input.
    const explanations = Array.from({ length: numModalities }, () => new Float32Array(n * k));
    for (let b = 0; b < n; b++) {
      for (let m = 0; m < numModalities; m++) explanations[m]!.set(mc.subarray((b * numModalities + m) * k, (b * numModalities + m + 1) * k), b * k);
    }
    return { probabilities: out.probabilities, explanations };
  }

  /**
   * Accuracy and mean cross-entropy of the model with `parameters` on the test subset, with every
   * modality present (`eval.accuracy`, `eval.loss`) and with each modality alone, the others' inputs
   * absent (`eval.<modality>.accuracy`, `eval.<modality>.loss`). Empty when the task evaluates
   * nothing. All of it comes from one pass over the test set's cached frozen activations
   * (`CachedProbe`, built on the first call and kept: the test set and the frozen encoders never
   * change), which holds each encoder's first adapted layer's input and frozen part over the test set
   * (15.8 MiB for the demo task's 256 test examples; {@link evaluationCacheBytes}).
   */
  evaluate(parameters: Parameters): Record<string, number> {
    if (!this.testSet) return {};
    if (this.split) return this.evaluateSplit(this.split, parameters, this.testSet);
    // One candidate per pass: an evaluation never has company, and padding would only repeat it.
    this.testCache ??= CachedProbe.build(this.model, this.testSet.chunks, { maxPassFloats: PROBE_PASS_FLOATS, maxCandidatesPerPass: 1 });
    return this.evaluationRecord(this.testCache.evaluate([parameters])[0]!);
  }

  /**
   * {@link evaluate} without the cache: `parameters` set on the model and the whole model run over the
   * test subset once with every modality and once per modality alone (`evaluateOneByOne`), the
   * reference the tests and `bench:probe` compare with.
   */
  evaluateUncached(parameters: Parameters): Record<string, number> {
    if (!this.testSet) return {};
    return this.evaluationRecord(evaluateOneByOne(this.model, this.testSet.chunks, [parameters])[0]!);
  }

  /**
   * A split task's evaluation: the whole split model (device encoders and adapters → the edge's
   * fusion network → the task head; `eval.accuracy`, `eval.loss`) and the device alone through its
   * local NAM head (`eval.local.accuracy`, `eval.local.loss`: what a volunteer's tab predicts
   * offline). Uses an edge of its own, never the one training in the open attempt.
   */
  private evaluateSplit(split: SplitParts, parameters: Parameters, testSet: EvalSet): Record<string, number> {
    const { device, edge } = splitParameters(parameters);
    split.device.setParameters(device);
    split.evaluationEdge.setParameters(edge);
    const whole = evaluateSplit(split.device, split.evaluationEdge, testSet.chunks);
    const local = this.model.evaluate(testSet.chunks);
    return {
      'eval.accuracy': whole.accuracy,
      'eval.loss': whole.loss,
      'eval.local.accuracy': local.accuracy,
      'eval.local.loss': local.loss,
      'eval.numExamples': whole.numExamples,
    };
  }

  /** The parameters the device's MultimodalModel holds (a split task's global also carries the task head and the edge). */
  private modelPart(parameters: Parameters): Parameters {
    if (!this.split) return parameters;
    const names = new Set(this.model.adapterNames());
    return parameters.filter((t) => names.has(t.name));
  }

  /** Bytes the test set's cache keeps (0 before the first evaluation, or when the task evaluates nothing). */
  get evaluationCacheBytes(): number {
    return this.testCache?.cachedBytes ?? 0;
  }

  /** An evaluation as the round's metrics store it; per-modality figures only when the model holds several. */
  private evaluationRecord(result: CachedEvaluationResult): Record<string, number> {
    const out: Record<string, number> = {};
    out['eval.accuracy'] = result.all.accuracy;
    out['eval.loss'] = result.all.loss;
    if (this.model.modalities.length > 1) {
      for (const m of this.model.modalities) {
        // A custom task's test chunks each hold one modality; only those holding m say anything of m alone.
        const only = result.alone[m];
        if (!only) continue;
        out[`eval.${m}.accuracy`] = only.accuracy;
        out[`eval.${m}.loss`] = only.loss;
      }
    }
    out['eval.numExamples'] = result.all.numExamples;
    return out;
  }

  /**
   * FLTrust's root update for a round: `global`, trained for the task's local epochs on the root data
   * by a model built afresh (so no optimiser state carries between rounds and a resumed coordinator
   * computes the same update), minus `global`. Null when the task has no root data.
   */
  rootUpdate(global: Parameters): Tensor[] | null {
    if (!this.rootSet) return null;
    const trainer = new MultimodalModel({
      numClasses: this.model.numClasses,
      encoders: Object.fromEntries(this.model.modalities.map((m) => [m, { base: this.bases[m]!, ...(this.targets[m] ? { targets: this.targets[m] } : {}) }])),
      ...(this.embedder ? { textEmbedder: this.embedder } : {}),
      conceptDim: this.task.model.namConcepts,
      head: this.task.model.head,
      loraRank: this.task.model.adapterRank,
      loraAlpha: this.task.model.adapterAlpha,
      learningRate: this.task.learningRate,
      seed: this.task.seed,
    });
    try {
      trainer.setAdapterParameters(global);
      const batchSize = this.task.batchSize;
      for (let epoch = 0; epoch < this.task.localEpochs; epoch++) {
        for (const chunk of this.rootSet.chunks) {
          const size = chunk.labels!.shape[0]!;
          for (let start = 0; start < size; start += batchSize) {
            const end = Math.min(size, start + batchSize);
            const batch: MultimodalBatch = {};
            for (const key of ['image', 'text', 'audio', 'labels'] as const) {
              const t = chunk[key];
              if (t) batch[key] = t.slice(start, end - start);
            }
            try {
              trainer.trainStep(batch, {
                modalWeight: this.task.model.modalWeight,
                modalLoss: this.task.model.modalLoss,
                interpretabilityWeight: this.task.model.interpretabilityWeight,
              });
            } finally {
              tf.dispose(Object.values(batch) as tf.Tensor[]);
            }
          }
        }
      }
      return parametersDelta(trainer.adapterParameters(), global);
    } finally {
      trainer.dispose();
    }
  }

  /** The merged model (adapters folded in, NAM head as plain Dense layers) with `parameters`, as TF.js artifacts. */
  async exportMerged(parameters: Parameters): Promise<ExportedArtifacts> {
    // A split task exports its device half: encoders, adapters and the local head, a model that runs alone.
    this.model.setAdapterParameters(this.modelPart(parameters));
    const merged = exportMergedModel(this.model, { name: `${this.task.id}_global` });
    try {
      return await capture((handler) => merged.save(handler));
    } finally {
      merged.dispose();
    }
  }

  /** The adapters artifact (weights by fl-core name, model configuration in the metadata) of `parameters`. */
  exportAdapters(parameters: Parameters): Promise<ExportedArtifacts> {
    this.model.setAdapterParameters(this.modelPart(parameters));
    // saveAdapters reads the weights before its first await, so later calls cannot change what it saves.
    return capture((handler) => saveAdapters(this.model, handler));
  }

  /** Releases every tensor the model and its data hold. */
  dispose(): void {
    if (this.split) disposeSplitParts(this.split);
    this.probeCache?.dispose();
    this.probeCache = null;
    this.testCache?.dispose();
    this.testCache = null;
    this.model.dispose();
    for (const base of Object.values(this.bases)) base.dispose();
    this.embedder?.dispose();
    for (const set of [this.probeSet, this.testSet, this.rootSet]) if (set) for (const c of set.chunks) tf.dispose(Object.values(c) as tf.Tensor[]);
  }
}

/** A split task's pieces beside the device model; see {@link TaskModel.evaluate} and model/edgeService.ts. */
interface SplitParts {
  /** The device half over the task's MultimodalModel, with the task head. */
  readonly device: SplitDevice;
  /** The edge the clients' steps train (served by {@link EdgeSteps}). */
  readonly edge: EdgeFusion;
  readonly steps: EdgeSteps;
  /** A second edge for evaluating checkpoints, so an evaluation never touches the training one. */
  readonly evaluationEdge: EdgeFusion;
}

function createSplitParts(task: TaskConfig, model: MultimodalModel): SplitParts {
  const split = task.split!;
  const seeds = splitInitSeeds(task.seed);
  const device = new SplitDevice({ model, fusedDim: split.fusedDim, localHeadWeight: split.localHeadWeight, seed: seeds.head });
  const edgeConfig = {
    modalities: model.modalities,
    tokenDim: model.conceptDim,
    modelDim: split.fusedDim,
    numBlocks: split.numBlocks,
    numHeads: split.numHeads,
    learningRate: split.edgeLearningRate,
    seed: seeds.edge,
  };
  const edge = new EdgeFusion(edgeConfig);
  const evaluationEdge = new EdgeFusion(edgeConfig);
  const steps = new EdgeSteps(edge, {
    taskId: task.id,
    returnEncoding: split.returnEncoding,
    maxBatch: Math.min(task.batchSize, MAX_SPLIT_BATCH),
    stepTimeoutMs: split.stepTimeoutMs,
    now: Date.now,
  });
  return { device, edge, steps, evaluationEdge };
}

function disposeSplitParts(parts: SplitParts): void {
  parts.steps.dispose();
  parts.edge.dispose();
  parts.evaluationEdge.dispose();
  parts.device.dispose();
}

/** A split global's device tensors and its edge's (`edge/…`). */
function splitParameters(parameters: Parameters): { device: Tensor[]; edge: Tensor[] } {
  const device: Tensor[] = [];
  const edge: Tensor[] = [];
  for (const t of parameters) (groupOf(t.name) === SPLIT_EDGE_GROUP ? edge : device).push(t);
  return { device, edge };
}

async function capture(save: (handler: tf.io.IOHandler) => Promise<unknown>): Promise<ExportedArtifacts> {
  let captured: tf.io.ModelArtifacts | null = null;
  await save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  const artifacts = captured as tf.io.ModelArtifacts | null;
  if (!artifacts) throw new CoordinatorError('CONFIG_INVALID', 'model export produced no artifacts');
  const weights = artifacts.weightData ? new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData)) : new Uint8Array(0);
  const modelJson: tf.io.ModelJSON = {
    modelTopology: (artifacts.modelTopology ?? null) as tf.io.ModelJSON['modelTopology'],
    weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.format !== undefined ? { format: artifacts.format } : {}),
    ...(artifacts.generatedBy !== undefined ? { generatedBy: artifacts.generatedBy } : {}),
    ...(artifacts.userDefinedMetadata !== undefined ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
  return { modelJson, weights };
}

/** Model inputs for `samples`, in chunks of `chunkSize`, token ids renumbered by `remap`; tensors are kept until {@link TaskModel.dispose}. */
function toEvalSet(
  samples: readonly AnySample[],
  modalities: readonly Modality[],
  frontend: LogMelFrontend | null,
  remap: ReadonlyMap<number, number> | null,
  chunkSize: number,
): EvalSet {
  const labels = Int32Array.from(samples, (s) => s.label);
  const chunks: MultimodalBatch[] = [];
  for (let start = 0; start < samples.length; start += chunkSize) {
    const part = samples.slice(start, start + chunkSize);
    const n = part.length;
    const batch: MultimodalBatch = { labels: tf.tensor1d(labels.subarray(start, start + n), 'int32') };
    if (modalities.includes('image')) {
      const pixels = new Float32Array(n * 784);
      part.forEach((s, i) => (s as DigitsSample | FashionSample).image.forEach((v, j) => (pixels[i * 784 + j] = v / 255)));
      batch.image = tf.tensor4d(pixels, [n, 28, 28, 1]);
    }
    if (modalities.includes('text')) {
      const ids = new Int32Array(n * DIGITS_CAPTION_TOKENS);
      part.forEach((s, i) => textTokens(s).forEach((v, j) => (ids[i * DIGITS_CAPTION_TOKENS + j] = remap ? remap.get(v)! : v)));
      batch.text = tf.tensor2d(ids, [n, DIGITS_CAPTION_TOKENS], 'int32');
    }
    if (modalities.includes('audio') && frontend) {
      // Clips are cropped or zero-padded to 1 s, the rule clients and the pretraining script apply.
      const pcm = new Float32Array(n * DIGITS_AUDIO_SAMPLES);
      part.forEach((s, i) => {
        const audio = (s as DigitsSample).audio;
        const len = Math.min(audio.length, DIGITS_AUDIO_SAMPLES);
        for (let j = 0; j < len; j++) pcm[i * DIGITS_AUDIO_SAMPLES + j] = audio[j]! / 32768;
      });
      // Log-mel a few clips at a time: the STFT's intermediates for a whole chunk (tens of MB at 64 clips)
      // set the WASM heap's high-water mark, which the process keeps for its lifetime. Each clip's
      // spectrogram depends on that clip alone, so the result is the same.
      const parts: tf.Tensor3D[] = [];
      for (let s = 0; s < n; s += FRONTEND_BATCH) {
        const m = Math.min(FRONTEND_BATCH, n - s);
        parts.push(
          tf.tidy(() => frontend.compute(tf.tensor2d(pcm.subarray(s * DIGITS_AUDIO_SAMPLES, (s + m) * DIGITS_AUDIO_SAMPLES), [m, DIGITS_AUDIO_SAMPLES]))),
        );
      }
      batch.audio = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
      if (parts.length > 1) tf.dispose(parts);
    }
    chunks.push(batch);
  }
  return { chunks, labels };
}
