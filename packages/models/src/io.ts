/**
 * Saving, loading and exporting models in TF.js formats, through any `tf.io.IOHandler` (in-memory,
 * IndexedDB and downloads in browsers; `fileSystemHandler` from `@chorus/models/node` in Node).
 *
 * A saved model is several artifacts, named by part: `<modality>-base` is each frozen encoder as a
 * plain LayersModel (adapters dropped), and `adapters` is a weights-only artifact holding every
 * exchanged tensor (LoRA, concept projections, NAM head) by its fl-core name, with the model's
 * configuration in `userDefinedMetadata`. The text embedding table is not saved: it ships with
 * @chorus/datasets and is passed back in on load.
 *
 * `exportMergedModel` writes one standard LayersModel — adapters folded into the kernels, and the
 * NAM head rewritten as block-diagonal Dense layers (each per-concept shape function occupies its
 * own block, so the function is unchanged) — that loads with a bare `tf.loadLayersModel` and no
 * custom classes. Its inputs are the features the encoders see: image pixels, the masked-mean word
 * embedding, and the log-mel spectrogram; every exported modality is taken as present.
 *
 * Saving and loading read tensors only with `await data()`, and `exportMergedModelAsync` is
 * `exportMergedModel` with its one read of the head's weights made that way: on WebGPU a synchronous
 * `dataSync()` can return zeros and lose the device (see backend.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { applyCopies, disposeCopies, inputSpec, standardCopies, toStandardModel, type StandardCopy } from './adapt.js';
import { MODALITIES, type Modality, type TextEmbedder } from './encoders.js';
import { ModelsError } from './errors.js';
import { MultimodalModel } from './model.js';

/** `format` of the adapters artifact. */
export const ADAPTERS_FORMAT = 'chorus-adapters';
/** Version of the adapters artifact's metadata. */
export const ADAPTERS_VERSION = 1;

/** Configuration stored with the adapters. */
export interface SavedModelConfig {
  version: number;
  modalities: Modality[];
  numClasses: number;
  conceptDim: number;
  namHiddenUnits: number;
  loraRank: number;
  loraAlpha: number;
  loraTargets: Partial<Record<Modality, string[]>>;
}

/** Where each part of a saved model goes (or comes from). */
export type PartHandler = (part: string) => tf.io.IOHandler;

function configOf(model: MultimodalModel): SavedModelConfig {
  const loraTargets: Partial<Record<Modality, string[]>> = {};
  for (const m of model.modalities)
    loraTargets[m] = model
      .loraLayers()
      .filter((l) => l.modality === m)
      .map((l) => l.layer.name);
  return {
    version: ADAPTERS_VERSION,
    modalities: [...model.modalities],
    numClasses: model.numClasses,
    conceptDim: model.conceptDim,
    namHiddenUnits: model.head.hiddenUnits,
    loraRank: model.loraRank,
    loraAlpha: model.loraAlpha,
    loraTargets,
  };
}

/**
 * Saves the adapters artifact (weights + configuration) alone — what a client keeps between rounds.
 * Every weight read is issued before the first await, so updates to the model after the call do not
 * reach the artifact (the coordinator relies on this).
 */
export async function saveAdapters(model: MultimodalModel, handler: tf.io.IOHandler): Promise<tf.io.SaveResult> {
  if (!handler.save) throw new ModelsError('MODELS_BAD_ARTIFACTS', 'saveAdapters: handler cannot save');
  const config = configOf(model);
  const named = (await model.adapterParametersAsync()).map((t) => ({ name: t.name, tensor: tf.tensor(t.values, [...t.shape]) }));
  try {
    const { data, specs } = await tf.io.encodeWeights(named);
    return await handler.save({
      weightSpecs: specs,
      weightData: data,
      format: ADAPTERS_FORMAT,
      generatedBy: '@chorus/models',
      userDefinedMetadata: { config: config as unknown as Record<string, unknown> },
    });
  } finally {
    for (const n of named) n.tensor.dispose();
  }
}

/** Saves every encoder base and the adapters through `sink(part)`. */
export async function saveMultimodalModel(model: MultimodalModel, sink: PartHandler): Promise<void> {
  for (const m of model.modalities) {
    const base = toStandardModel(model.encoder(m), { merge: false, name: `${m}_encoder` });
    try {
      await base.save(sink(`${m}-base`));
    } finally {
      base.dispose();
    }
  }
  await saveAdapters(model, sink('adapters'));
}

function parseConfig(artifacts: tf.io.ModelArtifacts): SavedModelConfig {
  const config = (artifacts.userDefinedMetadata as { config?: SavedModelConfig } | undefined)?.config;
  if (artifacts.format !== ADAPTERS_FORMAT || !config || config.version !== ADAPTERS_VERSION || !Array.isArray(config.modalities)) {
    throw new ModelsError(
      'MODELS_BAD_ARTIFACTS',
      `loadMultimodalModel: not a ${ADAPTERS_FORMAT} v${ADAPTERS_VERSION} artifact (format ${String(artifacts.format)})`,
    );
  }
  for (const m of config.modalities)
    if (!(MODALITIES as readonly string[]).includes(m)) throw new ModelsError('MODELS_BAD_ARTIFACTS', `loadMultimodalModel: unknown modality '${m}'`);
  return config;
}

/** Reads adapter weights from an artifact into `model` (names and shapes must match; nothing changes otherwise). */
export async function loadAdapters(model: MultimodalModel, handler: tf.io.IOHandler): Promise<void> {
  if (!handler.load) throw new ModelsError('MODELS_BAD_ARTIFACTS', 'loadAdapters: handler cannot load');
  const artifacts = await handler.load();
  parseConfig(artifacts);
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new ModelsError('MODELS_BAD_ARTIFACTS', 'loadAdapters: artifact has no weights');
  const decoded = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    const entries = Object.entries(decoded);
    const values = await Promise.all(entries.map(([, t]) => t.data()));
    model.setAdapterParameters(entries.map(([name, t], i) => ({ name, shape: [...t.shape], values: new Float32Array(values[i]!) })));
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/** Rebuilds a model saved by {@link saveMultimodalModel}; `textEmbedder` is required when it has a text encoder. */
export async function loadMultimodalModel(source: PartHandler, options: { textEmbedder?: TextEmbedder; learningRate?: number } = {}): Promise<MultimodalModel> {
  const adapters = source('adapters');
  if (!adapters.load) throw new ModelsError('MODELS_BAD_ARTIFACTS', 'loadMultimodalModel: handler cannot load');
  const artifacts = await adapters.load();
  const config = parseConfig(artifacts);
  const bases = new Map<Modality, tf.LayersModel>();
  try {
    for (const m of config.modalities) bases.set(m, await tf.loadLayersModel(source(`${m}-base`)));
    const model = new MultimodalModel({
      numClasses: config.numClasses,
      conceptDim: config.conceptDim,
      namHiddenUnits: config.namHiddenUnits,
      loraRank: config.loraRank,
      loraAlpha: config.loraAlpha,
      ...(options.learningRate !== undefined ? { learningRate: options.learningRate } : {}),
      ...(options.textEmbedder ? { textEmbedder: options.textEmbedder } : {}),
      encoders: Object.fromEntries(config.modalities.map((m) => [m, { base: bases.get(m)!, targets: config.loraTargets[m] ?? [] }])),
    });
    try {
      await loadAdapters(model, tf.io.fromMemory(artifacts));
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  } finally {
    for (const base of bases.values()) base.dispose();
  }
}

function blockDiagonal(values: Float32Array, blocks: number, rows: number, cols: number): Float32Array {
  // values: [blocks, rows, cols] → [blocks·rows, blocks·cols] with block i on the diagonal.
  const out = new Float32Array(blocks * rows * blocks * cols);
  for (let b = 0; b < blocks; b++)
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[(b * rows + r) * blocks * cols + b * cols + c] = values[(b * rows + r) * cols + c]!;
  return out;
}

/** The NAM head's weights of one modality, [w1, b1, w2, b2, w3, b3] as {@link NamHead.modalityWeights} orders them. */
type HeadWeights = [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];

/** Options of {@link exportMergedModel}. */
export interface ExportMergedOptions {
  /** Modalities taken as present (default all of the model's). */
  modalities?: readonly Modality[];
  /** Name of the exported LayersModel (default 'chorus_merged'). */
  name?: string;
}

function chosenModalities(model: MultimodalModel, options: ExportMergedOptions, fn: string): Modality[] {
  const chosen = options.modalities ? [...options.modalities] : [...model.modalities];
  if (chosen.length === 0 || chosen.some((m) => !model.modalities.includes(m))) {
    throw new ModelsError('MODELS_BAD_INPUT', `${fn}: modalities must be a non-empty subset of ${model.modalities.join(', ')}, got ${chosen.join(', ')}`);
  }
  return chosen;
}

/** One standard LayersModel equal to `model` with the chosen modalities present (default all); see the file header. */
export function exportMergedModel(model: MultimodalModel, options: ExportMergedOptions = {}): tf.LayersModel {
  const chosen = chosenModalities(model, options, 'exportMergedModel');
  const head = new Map(chosen.map((m) => [m, model.head.modalityWeights(m).map((v) => v.read().dataSync() as Float32Array) as HeadWeights]));
  return buildMergedModel(model, head, options.name);
}

/**
 * {@link exportMergedModel} reading the head's weights by `await data()`; the same model on every
 * backend where both work. The rest of the model is read when the reads resolve, so the model must
 * not be trained or updated while the promise is pending.
 */
export async function exportMergedModelAsync(model: MultimodalModel, options: ExportMergedOptions = {}): Promise<tf.LayersModel> {
  const chosen = chosenModalities(model, options, 'exportMergedModelAsync');
  const read = await Promise.all(chosen.map((m) => Promise.all(model.head.modalityWeights(m).map((v) => v.read().data() as Promise<Float32Array>))));
  const head = new Map(chosen.map((m, i) => [m, read[i] as HeadWeights]));
  return buildMergedModel(model, head, options.name);
}

/** Builds the merged LayersModel of the modalities keyed in `headWeights` (read beforehand, in order); reads no tensor. */
function buildMergedModel(model: MultimodalModel, headWeights: ReadonlyMap<Modality, HeadWeights>, name: string | undefined): tf.LayersModel {
  const chosen = [...headWeights.keys()];
  const c = model.conceptDim;
  const h = model.head.hiddenUnits;
  const k = model.numClasses;
  const inputs: tf.SymbolicTensor[] = [];
  const termOutputs: tf.SymbolicTensor[] = [];
  const copies: StandardCopy[] = [];
  const owned: tf.Tensor[] = [];
  try {
    for (const m of chosen) {
      const encoder = model.encoder(m);
      const spec = inputSpec(encoder);
      const input = tf.input({ shape: spec.shape, dtype: spec.dtype, name: `${m}_input` });
      inputs.push(input);
      const encoderCopies = standardCopies(encoder, { merge: true, prefix: `${m}_` });
      copies.push(...encoderCopies);
      let x = applyCopies(encoderCopies, input);
      const concept = model.conceptLayer(m);
      const conceptCopy = tf.layers.dense({ name: `${m}_concept`, units: c, activation: 'tanh' });
      copies.push({ layer: conceptCopy, weights: concept.getWeights() });
      x = conceptCopy.apply(x) as tf.SymbolicTensor;
      const [w1, b1, w2, b2, w3, b3] = headWeights.get(m)!;
      const layer1 = tf.layers.dense({ name: `${m}_nam_1`, units: c * h, activation: 'relu' });
      const layer2 = tf.layers.dense({ name: `${m}_nam_2`, units: c * h, activation: 'relu' });
      const layer3 = tf.layers.dense({ name: `${m}_nam_3`, units: c * k });
      const weights = [
        [tf.tensor2d(blockDiagonal(w1, c, 1, h), [c, c * h]), tf.tensor1d(b1)],
        [tf.tensor2d(blockDiagonal(w2, c, h, h), [c * h, c * h]), tf.tensor1d(b2)],
        [tf.tensor2d(blockDiagonal(w3, c, h, k), [c * h, c * k]), tf.tensor1d(b3)],
      ];
      owned.push(...weights.flat());
      [layer1, layer2, layer3].forEach((layer, i) => {
        copies.push({ layer, weights: weights[i]! });
        x = layer.apply(x) as tf.SymbolicTensor;
      });
      termOutputs.push(x);
    }
    const terms = termOutputs.length === 1 ? termOutputs[0]! : (tf.layers.concatenate({ name: 'terms' }).apply(termOutputs) as tf.SymbolicTensor);
    // logits = β + Σ_terms: a fixed [F·K, K] matrix of stacked identities.
    const numTerms = chosen.length * c;
    const sum = new Float32Array(numTerms * k * k);
    for (let t = 0; t < numTerms; t++) for (let j = 0; j < k; j++) sum[(t * k + j) * k + j] = 1;
    const logitsLayer = tf.layers.dense({ name: 'logits', units: k });
    const sumWeights = [tf.tensor2d(sum, [numTerms * k, k]), model.head.beta.read().clone()];
    owned.push(...sumWeights);
    copies.push({ layer: logitsLayer, weights: sumWeights });
    const logits = logitsLayer.apply(terms) as tf.SymbolicTensor;
    const exported = tf.model({ inputs, outputs: logits, name: name ?? 'chorus_merged' });
    for (const { layer, weights: w } of copies) layer.setWeights(w);
    return exported;
  } finally {
    disposeCopies(copies);
    tf.dispose(owned.filter((t) => !t.isDisposed));
  }
}
