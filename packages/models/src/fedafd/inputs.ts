/**
 * Checks of what the FedAFD models receive — batches of inputs and representation arrays coming
 * from the other side of the wire — done before any tensor is built or any weight moves, so bad
 * input raises `MODELS_BAD_INPUT` and changes nothing. Values are read asynchronously (WebGPU tabs
 * must not read synchronously).
 */
import * as tf from '@tensorflow/tfjs';
import type { Modality } from '../encoders.js';
import { ModelsError } from '../errors.js';
import type { MultimodalBatch } from '../model.js';

/** Representations of one public batch, row-major [batch, D] per modality. */
export type RepresentationArrays = Partial<Record<Modality, Float32Array>>;

/**
 * Checks that `batch` holds every modality in `modalities` (and labels in [0, numClasses) when
 * `numClasses` is given) with one batch size, and that token ids lie in [0, vocabSize); returns
 * the batch size.
 */
export async function checkBatchAsync(
  fn: string,
  batch: MultimodalBatch,
  modalities: readonly Modality[],
  options: { vocabSize?: number; numClasses?: number } = {},
): Promise<number> {
  let size: number | null = null;
  const sameSize = (name: string, t: tf.Tensor): void => {
    const n = t.shape[0] ?? 0;
    if (n === 0) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: '${name}' is empty`);
    if (size !== null && n !== size) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: '${name}' has ${n} rows, expected ${size}`);
    size = n;
  };
  for (const m of modalities) {
    const t = batch[m];
    if (!t) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: the batch has no '${m}' input`);
    sameSize(m, t);
  }
  const ranges: [string, tf.Tensor, number][] = [];
  if (options.numClasses !== undefined) {
    const labels = batch.labels;
    if (!labels || labels.rank !== 1 || labels.dtype !== 'int32') throw new ModelsError('MODELS_BAD_INPUT', `${fn}: expected int32 labels [batch]`);
    sameSize('labels', labels);
    ranges.push(['labels', labels, options.numClasses]);
  }
  const text = batch.text;
  if (modalities.includes('text') && text && options.vocabSize !== undefined) {
    if (text.dtype !== 'int32' || text.rank !== 2)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: expected int32 token ids [batch, length], got ${text.dtype} [${text.shape.join(',')}]`);
    ranges.push(['text', text, options.vocabSize]);
  }
  for (const [name, t, limit] of ranges) {
    const [lo, hi] = tf.tidy(() => [tf.min(t), tf.max(t)]);
    const [min, max] = [(await lo!.data())[0]!, (await hi!.data())[0]!];
    tf.dispose([lo!, hi!]);
    if (min < 0 || max >= limit) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: '${name}' values must lie in [0, ${limit}), got [${min}, ${max}]`);
  }
  return size!;
}

/** Checks that `values` holds `rows` × `dim` finite numbers (a [rows, dim] representation array). */
export function checkRepresentation(fn: string, field: string, values: unknown, rows: number, dim: number): Float32Array {
  if (!(values instanceof Float32Array) || values.length !== rows * dim)
    throw new ModelsError(
      'MODELS_BAD_INPUT',
      `${fn}: ${field} must be a Float32Array of ${rows} × ${dim} values, got ${values instanceof Float32Array ? values.length : typeof values}`,
      field,
    );
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]!)) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: ${field}[${i}] is ${values[i]}`, field);
  return values;
}

/** Reads [batch, D] tensors back as row-major arrays, then disposes them. */
export async function readRepresentations(tensors: Partial<Record<Modality, tf.Tensor>>): Promise<RepresentationArrays> {
  const out: RepresentationArrays = {};
  for (const [m, t] of Object.entries(tensors) as [Modality, tf.Tensor][]) {
    out[m] = new Float32Array(await t.data());
    t.dispose();
  }
  return out;
}
