/**
 * A 2-D convolution that trains on every TF.js backend. The wasm backend registers no
 * `Conv2DBackpropFilter` kernel, so differentiating `tf.conv2d` with respect to its filter throws
 * there (and on cpu that kernel is a plain-JS loop). {@link portableConv2d} keeps the native
 * forward convolution and supplies its own gradient built only from kernels every backend has:
 *
 * - filter gradient: im2col then one matrix product, dW = patches(x)ᵀ · dy, where the patches are
 *   k_h·k_w (strided) slices of the padded input concatenated on the channel axis. Slices cost k²·C
 *   copies per output pixel; a one-hot (identity) filter bank would cost k²·C multiply-adds per
 *   patch element, i.e. k²·C times more (288× for a 3×3, 32-channel input). The transpose is
 *   explicit because wasm's matMul with a transpose flag is about ten times slower than without;
 * - input gradient: for stride 1, a forward convolution of dy with the spatially flipped,
 *   in/out-swapped kernel (a "full" correlation, with padding k−1−p on each side); for larger
 *   strides, `Conv2DBackpropInput` (what `tf.conv2d`'s own gradient uses; wasm has it).
 *
 * Values and gradients equal `tf.conv2d`'s up to float32 rounding. {@link PortableConv2D} is the
 * layer over this op, with `Conv2D`'s weights (`kernel` [k_h, k_w, in, filters], `bias`), so
 * weights move between the two unchanged; saved and exported models use plain `Conv2D`.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt } from './errors.js';
import { LORA_ACTIVATIONS, activate, checkActivation, type LoraActivation } from './activations.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Shape = (number | null)[];

/** Padding modes of {@link portableConv2d}, with `tf.conv2d`'s meaning. */
export type ConvPadding = 'same' | 'valid';

/** Geometry of {@link portableConv2d}. */
export interface PortableConv2dOptions {
  /** Stride [rows, cols] or one for both; default 1. */
  strides?: number | [number, number];
  /** 'same' (TensorFlow's rule: the extra row/column goes at the bottom/right) or 'valid'; default 'valid'. */
  padding?: ConvPadding;
}

function pair(fn: string, field: string, value: number | readonly number[]): [number, number] {
  const [a, b] = typeof value === 'number' ? [value, value] : [value[0], value[1]];
  if (typeof value !== 'number' && value.length !== 2)
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: ${field} must be a number or a pair, got [${value.join(',')}]`);
  return [checkInt(fn, field, a, 1), checkInt(fn, field, b, 1)];
}

function checkPadding(fn: string, padding: unknown): ConvPadding {
  if (padding === 'same' || padding === 'valid') return padding;
  throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: padding must be 'same' or 'valid', got ${String(padding)}`);
}

/** Output length and [before, after] padding along one axis, by TensorFlow's rule. */
function axisGeometry(size: number, kernel: number, stride: number, padding: ConvPadding): { out: number; before: number; after: number } {
  if (padding === 'valid') return { out: Math.ceil((size - kernel + 1) / stride), before: 0, after: 0 };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return { out, before, after: total - before };
}

/** dW = patches(x)ᵀ · dy, reshaped to the kernel's [k_h, k_w, in, filters]. */
function filterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kernelShape: [number, number, number, number],
  strides: [number, number],
  padding: ConvPadding,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [kh, kw, , f] = kernelShape;
  const rows = axisGeometry(h, kh, strides[0], padding);
  const cols = axisGeometry(w, kw, strides[1], padding);
  const padded =
    rows.before + rows.after + cols.before + cols.after > 0
      ? tf.pad(x, [
          [0, 0],
          [rows.before, rows.after],
          [cols.before, cols.after],
          [0, 0],
        ])
      : x;
  const slices: tf.Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      slices.push(
        strides[0] === 1 && strides[1] === 1
          ? tf.slice(padded, [0, i, j, 0], [n, rows.out, cols.out, c])
          : tf.stridedSlice(
              padded,
              [0, i, j, 0],
              [n, i + (rows.out - 1) * strides[0] + 1, j + (cols.out - 1) * strides[1] + 1, c],
              [1, strides[0], strides[1], 1],
            ),
      );
    }
  }
  // Channel-axis concatenation orders each patch as (i, j, channel), the kernel's own flattening.
  const patches = tf.reshape(slices.length === 1 ? slices[0]! : tf.concat(slices, 3), [n * rows.out * cols.out, kh * kw * c]);
  const dy2d = tf.reshape(dy, [n * rows.out * cols.out, f]);
  return tf.reshape(tf.matMul(tf.transpose(patches), dy2d), kernelShape) as tf.Tensor4D;
}

/** dL/dx for the convolution of an input of `inputShape`. */
function inputGradient(
  dy: tf.Tensor4D,
  kernel: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: [number, number],
  padding: ConvPadding,
): tf.Tensor4D {
  if (strides[0] !== 1 || strides[1] !== 1) return tf.conv2dTranspose(dy, kernel, inputShape, strides, padding);
  const [kh, kw] = kernel.shape;
  const rows = axisGeometry(inputShape[1], kh, 1, padding);
  const cols = axisGeometry(inputShape[2], kw, 1, padding);
  const flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  return tf.conv2d(dy, flipped, 1, [
    [0, 0],
    [kh - 1 - rows.before, kh - 1 - rows.after],
    [kw - 1 - cols.before, kw - 1 - cols.after],
    [0, 0],
  ]);
}

/**
 * `tf.conv2d(x, kernel, strides, padding)` (channels last, no dilation) whose gradients need no
 * `Conv2DBackpropFilter` kernel; see the file header. x: [batch, h, w, in], kernel: [k_h, k_w, in, out].
 */
export function portableConv2d(x: tf.Tensor4D, kernel: tf.Tensor4D, options: PortableConv2dOptions = {}): tf.Tensor4D {
  const strides = pair('portableConv2d', 'strides', options.strides ?? 1);
  const padding = checkPadding('portableConv2d', options.padding ?? 'valid');
  if (x.rank !== 4 || kernel.rank !== 4 || x.shape[3] !== kernel.shape[2]) {
    throw new ModelsError(
      'MODELS_BAD_INPUT',
      `portableConv2d: expected x [batch, h, w, in] and kernel [kh, kw, in, out] with matching in, got [${x.shape.join(',')}] and [${kernel.shape.join(',')}]`,
    );
  }
  const op = tf.customGrad((input, filter, save) => {
    const xs = input as tf.Tensor4D;
    const ws = filter as tf.Tensor4D;
    (save as tf.GradSaveFunc)([xs, ws]);
    return {
      value: tf.conv2d(xs, ws, strides, padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedW] = saved as [tf.Tensor4D, tf.Tensor4D];
        return [
          inputGradient(dy as tf.Tensor4D, savedW, savedX.shape, strides, padding),
          filterGradient(savedX, dy as tf.Tensor4D, savedW.shape, strides, padding),
        ];
      },
    };
  });
  return op(x, kernel) as tf.Tensor4D;
}

/** Arguments of {@link PortableConv2D}. */
export interface PortableConv2DArgs extends LayerArgs {
  /** Output channels. */
  filters: number;
  /** Kernel [rows, cols] or one size for both. */
  kernelSize: number | [number, number];
  /** Stride [rows, cols] or one for both; default 1. */
  strides?: number | [number, number];
  /** 'same' or 'valid'; default 'valid' (as `tf.layers.conv2d`). */
  padding?: ConvPadding;
  /** Activation after the bias; default 'linear'. */
  activation?: LoraActivation;
  /** Whether to add a bias; default true. */
  useBias?: boolean;
  /** Seed of the kernel's Glorot-uniform initialiser (the bias starts at zero); default 0. */
  seed?: number;
}

/**
 * A channels-last Conv2D layer over {@link portableConv2d}: same weights, values and gradients as
 * `tf.layers.conv2d` with a Glorot-uniform kernel, but trainable on the wasm backend.
 */
export class PortableConv2D extends tf.layers.Layer {
  static readonly className = 'PortableConv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: ConvPadding;
  readonly activationName: LoraActivation;
  readonly useBias: boolean;
  readonly seed: number;
  private kernel: tf.LayerVariable | null = null;
  private bias: tf.LayerVariable | null = null;

  constructor(args: PortableConv2DArgs) {
    super(args);
    this.filters = checkInt('PortableConv2D', 'filters', args.filters, 1);
    this.kernelSize = pair('PortableConv2D', 'kernelSize', args.kernelSize);
    this.strides = pair('PortableConv2D', 'strides', args.strides ?? 1);
    this.padding = checkPadding('PortableConv2D', args.padding ?? 'valid');
    this.activationName = checkActivation('PortableConv2D', args.activation ?? 'linear');
    this.useBias = args.useBias ?? true;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = inputShape as Shape;
    const channels = shape[3];
    if (shape.length !== 4 || channels == null) {
      throw new ModelsError('MODELS_BAD_CONFIG', `PortableConv2D.build: input must be [batch, h, w, channels] with known channels, got [${shape.join(',')}]`);
    }
    this.kernel = this.addWeight(
      'kernel',
      [...this.kernelSize, channels, this.filters],
      'float32',
      tf.initializers.glorotUniform({ seed: this.seed }),
      undefined,
      true,
    );
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.zeros(), undefined, true);
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [batch, h, w] = inputShape as Shape;
    const side = (size: number | null | undefined, axis: 0 | 1): number | null =>
      size == null ? null : axisGeometry(size, this.kernelSize[axis], this.strides[axis], this.padding).out;
    return [batch ?? null, side(h, 0), side(w, 1), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      const y = portableConv2d(x, this.kernel!.read() as tf.Tensor4D, { strides: this.strides, padding: this.padding });
      return activate(this.bias ? tf.add(y, this.bias.read()) : y, this.activationName);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      filters: this.filters,
      kernelSize: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
      activation: this.activationName,
      useBias: this.useBias,
      seed: this.seed,
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(PortableConv2D);

/**
 * A {@link PortableConv2D} config equal to a `Conv2D` layer's, or null when the layer has settings
 * it does not cover (channels first, dilation, an activation outside {@link LORA_ACTIVATIONS},
 * regularisers or constraints); weights then carry over unchanged.
 */
export function portableConfigOf(layer: tf.layers.Layer): PortableConv2DArgs | null {
  if (layer.getClassName() !== 'Conv2D') return null;
  const config = layer.getConfig();
  const dilation = config['dilationRate'];
  const unitDilation = Array.isArray(dilation) ? dilation.every((d) => d === 1) : dilation == null || dilation === 1;
  const padding = config['padding'];
  const activation = config['activation'] ?? 'linear';
  const extras = ['kernelRegularizer', 'biasRegularizer', 'activityRegularizer', 'kernelConstraint', 'biasConstraint'].some((k) => config[k] != null);
  if (!unitDilation || (config['dataFormat'] ?? 'channelsLast') !== 'channelsLast' || (padding !== 'same' && padding !== 'valid') || extras) return null;
  if (typeof activation !== 'string' || !(LORA_ACTIVATIONS as readonly string[]).includes(activation)) return null;
  return {
    name: layer.name,
    filters: config['filters'] as number,
    kernelSize: config['kernelSize'] as [number, number],
    strides: config['strides'] as [number, number],
    padding,
    activation: activation as LoraActivation,
    useBias: config['useBias'] !== false,
    trainable: layer.trainable,
  };
}
