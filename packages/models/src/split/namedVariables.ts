/**
 * Plain tf.Variables under exchange names, shared by the two halves of FedUMM's device–edge split
 * (Su et al. 2026, arXiv:2601.15390): creation from a seeded initialiser, export as fl-core named
 * tensors, and checked, all-or-nothing import. A bad list raises `MODELS_BAD_INPUT` before any
 * variable is written.
 */
import * as tf from '@tensorflow/tfjs';
import { allFinite, type Parameters, type Tensor as NamedTensor } from '@chorus/fl-core';
import { ModelsError } from '../errors.js';

/** A variable under its exchange name (`edge/in/kernel`). */
export interface ExchangedVariable {
  readonly name: string;
  readonly variable: tf.Variable;
}

/** A TF.js weight initialiser (`tf.initializers.glorotUniform(…)`, `zeros()` …). */
export type Initializer = ReturnType<typeof tf.initializers.zeros>;

/** A fresh trainable variable holding `initializer` applied to `shape` (the engine picks its unique name). */
export function createVariable(initializer: Initializer, shape: number[]): tf.Variable {
  const initial = tf.tidy(() => initializer.apply(shape, 'float32'));
  const variable = tf.variable(initial, true);
  initial.dispose();
  return variable;
}

/** Copies of every variable in `list`, in order. */
export function readNamed(list: readonly ExchangedVariable[]): NamedTensor[] {
  return list.map((e) => ({ name: e.name, shape: [...e.variable.shape], values: new Float32Array(e.variable.dataSync()) }));
}

/** {@link readNamed} reading values asynchronously (safe on WebGPU, whose synchronous reads are not). */
export async function readNamedAsync(list: readonly ExchangedVariable[]): Promise<NamedTensor[]> {
  return Promise.all(list.map(async (e) => ({ name: e.name, shape: [...e.variable.shape], values: new Float32Array(await e.variable.data()) })));
}

/** Number of scalars in `list`. */
export function countNamed(list: readonly ExchangedVariable[]): number {
  return list.reduce((n, e) => n + e.variable.size, 0);
}

/**
 * Throws `MODELS_BAD_INPUT` (message led by `fn`) unless every tensor of `params` names a variable
 * of `list` once, with its shape and only finite values; changes nothing.
 */
export function checkNamed(fn: string, list: readonly ExchangedVariable[], params: Parameters): void {
  const byName = new Map(list.map((e) => [e.name, e.variable]));
  const seen = new Set<string>();
  for (const t of params) {
    const v = byName.get(t.name);
    if (!v) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: unknown tensor '${t.name}'`);
    if (seen.has(t.name)) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: '${t.name}' given twice`);
    seen.add(t.name);
    if (t.shape.length !== v.rank || t.shape.some((d, i) => d !== v.shape[i]) || t.values.length !== v.size)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: '${t.name}' has shape [${t.shape.join(',')}], expected [${v.shape.join(',')}]`);
    if (!allFinite(t.values)) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: '${t.name}' holds NaN or Infinity`);
  }
}

/** Writes `params` into `list`; call {@link checkNamed} first (this assumes every name and shape is valid). */
export function writeNamed(list: readonly ExchangedVariable[], params: Parameters): void {
  const byName = new Map(list.map((e) => [e.name, e.variable]));
  for (const t of params) {
    const v = byName.get(t.name)!;
    const value = tf.tensor(t.values, v.shape);
    v.assign(value);
    value.dispose();
  }
}
