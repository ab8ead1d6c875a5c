/**
 * Putting LoRA adapters (Hu et al. 2021, arXiv:2106.09685) on a frozen TF.js LayersModel and taking
 * them off again.
 *
 * Any chain-shaped LayersModel (one input, one output, each layer feeding the next: every
 * `tf.sequential` model and functional models of the same shape) can be a base. `applyLora` rebuilds
 * the chain from the layers' own configs, copies every weight, freezes everything, and swaps the
 * targeted Dense and 1×1 Conv2D layers for {@link LoraDense} / {@link LoraConv1x1} carrying the
 * same kernel and bias; other `Conv2D` layers become {@link PortableConv2D} (same weights and
 * values) so that full fine-tuning also runs on the wasm backend. `toStandardModel` goes back to
 * plain Dense / Conv2D layers, with the adapters either dropped (the base) or folded into the
 * kernels (the merged model), so the result loads with a bare `tf.loadLayersModel`. The input model
 * is never modified.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt, checkPositive } from './errors.js';
import { PortableConv2D, portableConfigOf } from './conv.js';
import { LoraConv1x1, LoraDense, checkActivation, isLoraLayer } from './lora.js';

/** Options of {@link applyLora}. */
export interface ApplyLoraOptions {
  /** Names of the Dense / 1×1 Conv2D layers to adapt; each must exist in the base. */
  targets: readonly string[];
  /** Adapter rank r. */
  rank: number;
  /** Scaling α (branch factor α / r). */
  alpha: number;
  /** Seed for A's initialiser; layer i gets seed + 2i so adapters differ across layers. */
  seed?: number;
}

type ConfigDict = tf.serialization.ConfigDict;

/** The layers of a chain-shaped model in order (input layer excluded); throws `MODELS_BAD_BASE` otherwise. */
export function chainLayers(model: tf.LayersModel): tf.layers.Layer[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new ModelsError(
      'MODELS_BAD_BASE',
      `chainLayers: '${model.name}' must have one input and one output, got ${model.inputs.length} and ${model.outputs.length}`,
    );
  }
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  let previous: tf.layers.Layer | null = null;
  for (const layer of layers) {
    if (layer.inboundNodes.length !== 1) {
      throw new ModelsError(
        'MODELS_BAD_BASE',
        `chainLayers: layer '${layer.name}' of '${model.name}' is used ${layer.inboundNodes.length} times; only chain-shaped models are supported`,
      );
    }
    const inbound = layer.inboundNodes[0]!.inboundLayers;
    const source = inbound.length === 1 ? inbound[0]! : null;
    const ok = source !== null && (previous === null ? source.getClassName() === 'InputLayer' : source === previous);
    if (!ok) throw new ModelsError('MODELS_BAD_BASE', `chainLayers: layer '${layer.name}' of '${model.name}' does not take the previous layer's output`);
    previous = layer;
  }
  return layers;
}

/** A fresh, unbuilt copy of `layer` made from its own config through the class registry. */
export function cloneLayer(layer: tf.layers.Layer, trainable: boolean): tf.layers.Layer {
  return cloneFromConfig(layer.getClassName(), { ...layer.getConfig(), trainable });
}

function cloneFromConfig(className: string, config: ConfigDict): tf.layers.Layer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) throw new ModelsError('MODELS_BAD_BASE', `cloneLayer: layer class '${className}' is not registered`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config) as unknown as tf.layers.Layer;
}

function loraKind(layer: tf.layers.Layer): 'dense' | 'conv' {
  const config = layer.getConfig();
  checkActivation(`applyLora('${layer.name}')`, config['activation'] ?? 'linear');
  const className = layer.getClassName();
  if (className === 'Dense') return 'dense';
  if (className === 'Conv2D' || className === PortableConv2D.className) {
    const kernelSize = config['kernelSize'] as number[];
    const strides = config['strides'] as number[];
    const dilation = (config['dilationRate'] ?? 1) as number[] | number;
    const pointwise =
      kernelSize.every((k) => k === 1) &&
      strides.every((s) => s === 1) &&
      (Array.isArray(dilation) ? dilation.every((d) => d === 1) : dilation === 1) &&
      (config['dataFormat'] ?? 'channelsLast') === 'channelsLast';
    if (!pointwise) throw new ModelsError('MODELS_BAD_BASE', `applyLora: Conv2D '${layer.name}' must be 1×1, stride 1, channels last to take an adapter`);
    return 'conv';
  }
  throw new ModelsError('MODELS_BAD_BASE', `applyLora: layer '${layer.name}' is a ${className}; adapters go on Dense and 1×1 Conv2D layers`);
}

function loraFor(layer: tf.layers.Layer, options: ApplyLoraOptions, index: number): tf.layers.Layer {
  const kind = loraKind(layer);
  const config = layer.getConfig();
  const common = {
    name: layer.name,
    rank: options.rank,
    alpha: options.alpha,
    useBias: config['useBias'] !== false,
    activation: checkActivation(`applyLora('${layer.name}')`, config['activation'] ?? 'linear'),
    seed: (options.seed ?? 0) + 2 * index,
  };
  return kind === 'dense'
    ? new LoraDense({ ...common, units: config['units'] as number })
    : new LoraConv1x1({ ...common, filters: config['filters'] as number });
}

/** A frozen copy of a non-adapted layer; Conv2D layers become the equivalent PortableConv2D. */
function frozenCopy(layer: tf.layers.Layer): tf.layers.Layer {
  const portable = portableConfigOf(layer);
  return portable ? new PortableConv2D({ ...portable, trainable: false }) : cloneLayer(layer, false);
}

/** Shape (without batch) and dtype of a single-input model's input. */
export function inputSpec(model: tf.LayersModel): { shape: number[]; dtype: tf.DataType } {
  const input = model.inputs[0]!;
  return { shape: input.shape.slice(1) as number[], dtype: input.dtype };
}

/** Rebuilds `base` frozen, with LoRA adapters on `options.targets` (B = 0, so outputs equal the base's). */
export function applyLora(base: tf.LayersModel, options: ApplyLoraOptions): tf.LayersModel {
  checkInt('applyLora', 'rank', options.rank, 1);
  checkPositive('applyLora', 'alpha', options.alpha);
  const layers = chainLayers(base);
  const names = new Set(layers.map((l) => l.name));
  for (const target of options.targets) {
    if (!names.has(target)) throw new ModelsError('MODELS_BAD_BASE', `applyLora: '${base.name}' has no layer '${target}' (layers: ${[...names].join(', ')})`);
  }
  const targets = new Set(options.targets);
  // Validate every target before creating any layer, so a bad target leaves no half-built model.
  for (const layer of layers) if (targets.has(layer.name)) loraKind(layer);
  const { shape, dtype } = inputSpec(base);
  const input = tf.input({ shape, dtype, name: `${base.name}_input` });
  let x: tf.SymbolicTensor = input;
  const copies: [tf.layers.Layer, tf.layers.Layer][] = [];
  let adapterIndex = 0;
  for (const layer of layers) {
    const next = targets.has(layer.name) ? loraFor(layer, options, adapterIndex++) : frozenCopy(layer);
    x = next.apply(x) as tf.SymbolicTensor;
    copies.push([layer, next]);
  }
  const model = tf.model({ inputs: input, outputs: x, name: base.name });
  for (const [from, to] of copies) {
    const weights = from.getWeights();
    if (isLoraLayer(to)) {
      const { kernel, bias } = to.loraVariables;
      kernel.write(weights[0]!);
      if (bias) bias.write(weights[1]!);
    } else {
      to.setWeights(weights);
    }
  }
  return model;
}

/** A plain layer (Dense / Conv2D or a copy of the original) and the weights to give it once built. */
export interface StandardCopy {
  layer: tf.layers.Layer;
  /** Weights for `layer.setWeights`; tensors that are not `tf.Variable`s belong to the caller, who disposes them. */
  weights: tf.Tensor[];
}

/**
 * Unbuilt plain-layer copies of an adapted chain's layers (adapters dropped or folded in, see
 * {@link toStandardModel}; PortableConv2D becomes Conv2D); layer names get `prefix` so several
 * encoders can share one model.
 */
export function standardCopies(adapted: tf.LayersModel, options: { merge: boolean; prefix?: string }): StandardCopy[] {
  const prefix = options.prefix ?? '';
  return chainLayers(adapted).map((layer) => {
    if (layer instanceof PortableConv2D) {
      const plain = tf.layers.conv2d({
        name: `${prefix}${layer.name}`,
        filters: layer.filters,
        kernelSize: [...layer.kernelSize],
        strides: [...layer.strides],
        padding: layer.padding,
        activation: layer.activationName,
        useBias: layer.useBias,
        trainable: false,
      });
      return { layer: plain, weights: layer.getWeights() };
    }
    if (!isLoraLayer(layer)) {
      const copy = cloneLayer(layer, false);
      if (prefix) {
        const config: ConfigDict = { ...copy.getConfig(), name: `${prefix}${layer.name}` };
        return { layer: cloneFromConfig(layer.getClassName(), config), weights: layer.getWeights() };
      }
      return { layer: copy, weights: layer.getWeights() };
    }
    const { kernel, bias } = layer.loraVariables;
    // A merged layer's kernel already holds W + ΔW; subtract ΔW for the base, add it to merge an unmerged layer.
    const kernelValue = tf.tidy(() => {
      if (layer.merged === options.merge) return kernel.read().clone();
      const delta = tf.reshape(layer.deltaKernel(), kernel.shape as number[]);
      return options.merge ? tf.add(kernel.read(), delta) : tf.sub(kernel.read(), delta);
    });
    const weights = bias ? [kernelValue, bias.read().clone()] : [kernelValue];
    const common = { name: `${prefix}${layer.name}`, useBias: layer.useBias, activation: layer.activationName, trainable: false };
    const plain =
      layer instanceof LoraDense
        ? tf.layers.dense({ ...common, units: layer.units })
        : tf.layers.conv2d({ ...common, filters: layer.filters, kernelSize: 1, strides: 1, padding: 'valid' });
    return { layer: plain, weights };
  });
}

/** Applies `copies` in order to `x` (weights are set afterwards, once the layers are built). */
export function applyCopies(copies: StandardCopy[], x: tf.SymbolicTensor): tf.SymbolicTensor {
  let y = x;
  for (const { layer } of copies) y = layer.apply(y) as tf.SymbolicTensor;
  return y;
}

/** Frees the computed (non-variable) weight tensors of `copies`. */
export function disposeCopies(copies: StandardCopy[]): void {
  for (const { weights } of copies) for (const w of weights) if (!(w instanceof tf.Variable) && !w.isDisposed) w.dispose();
}

/** A model of plain layers equal to `adapted`: adapters dropped (`merge: false`, the base) or folded into the kernels (`merge: true`). */
export function toStandardModel(adapted: tf.LayersModel, options: { merge: boolean; name?: string }): tf.LayersModel {
  const copies = standardCopies(adapted, { merge: options.merge });
  try {
    const { shape, dtype } = inputSpec(adapted);
    const input = tf.input({ shape, dtype, name: `${options.name ?? adapted.name}_input` });
    const model = tf.model({ inputs: input, outputs: applyCopies(copies, input), name: options.name ?? adapted.name });
    for (const { layer, weights } of copies) layer.setWeights(weights);
    return model;
  } finally {
    disposeCopies(copies);
  }
}
