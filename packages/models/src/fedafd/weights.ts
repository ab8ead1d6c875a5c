/**
 * Named weight lists of the FedAFD models: export as fl-core `Parameters` (copies, read
 * asynchronously so WebGPU tabs never read synchronously), import with every name, shape and value
 * checked before anything is written, and parameter counts. Layout mismatches raise fl-core's
 * `PARAMS_MISMATCH` and non-finite values `PARAMS_NON_FINITE`, as `MultimodalModel` does.
 */
import * as tf from '@tensorflow/tfjs';
import { FlCoreError, assertFinite, type Parameters, type Tensor as NamedTensor } from '@chorus/fl-core';

/** A layer weight under its exchange name (`image/conv_1/kernel`). */
export interface NamedVariable {
  name: string;
  variable: tf.LayerVariable;
}

/** The trainable weights of `layer` named `<prefix>/<layer name>/<weight>`. */
export function layerWeights(prefix: string, layer: tf.layers.Layer): NamedVariable[] {
  return layer.trainableWeights.map((variable) => ({ name: `${prefix}/${variable.originalName}`, variable }));
}

/** The engine variables behind `list` (what gradients and optimisers key on). */
export function engineVariables(list: readonly NamedVariable[]): tf.Variable[] {
  return list.map((w) => w.variable.read() as tf.Variable);
}

/** Total number of scalars in `list`. */
export function countParameters(list: readonly NamedVariable[]): number {
  return list.reduce((n, w) => n + w.variable.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/** Copies of every weight in `list`, in order. */
export async function exportNamed(list: readonly NamedVariable[]): Promise<NamedTensor[]> {
  return Promise.all(
    list.map(async (w) => ({ name: w.name, shape: w.variable.shape.map((d) => d ?? 0), values: new Float32Array(await w.variable.read().data()) })),
  );
}

/**
 * Writes `params` into `list`: every name of `list` must appear exactly once, with its shape and
 * finite values, and no other name may appear; otherwise nothing is written.
 */
export function importNamed(fn: string, list: readonly NamedVariable[], params: Parameters): void {
  const byName = new Map(list.map((w) => [w.name, w.variable]));
  const seen = new Set<string>();
  for (const t of params) {
    const v = byName.get(t.name);
    if (!v) throw new FlCoreError('PARAMS_MISMATCH', `${fn}: unknown tensor '${t.name}'`);
    if (seen.has(t.name)) throw new FlCoreError('PARAMS_MISMATCH', `${fn}: '${t.name}' given twice`);
    seen.add(t.name);
    const want = v.shape.map((d) => d ?? 0);
    const size = want.reduce((a, b) => a * b, 1);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]) || t.values.length !== size)
      throw new FlCoreError('PARAMS_MISMATCH', `${fn}: '${t.name}' has shape [${t.shape.join(',')}], expected [${want.join(',')}]`);
  }
  const missing = list.filter((w) => !seen.has(w.name)).map((w) => w.name);
  if (missing.length > 0) throw new FlCoreError('PARAMS_MISMATCH', `${fn}: missing ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ' …' : ''}`);
  assertFinite(params, fn);
  for (const t of params) {
    const v = byName.get(t.name)!;
    const value = tf.tensor(
      t.values,
      v.shape.map((d) => d ?? 0),
    );
    v.write(value);
    value.dispose();
  }
}
