/**
 * Update agreement for trust scoring: the cosine between a client's update and a robust reference
 * direction, mapped to [0, 1] by ReLU — the FLTrust score of Cao, Fang, Liu & Gong 2021,
 * arXiv:2012.13995, with the coordinate-wise median (Yin et al. 2018, arXiv:1803.01498) standing
 * in for the server's root update when there is none.
 *
 * Updates are named tensors so partial-modality clients compare only on what they sent: the
 * reference for tensor `text/…` comes from the clients that hold it (or from the root update), and
 * a client's agreement is the cosine over the concatenation of its own tensors and the reference's
 * tensors of the same names.
 */
import { median } from '../aggregation/median.js';
import { FlCoreError } from '../errors.js';
import { cosineSimilarityOfParts } from '../params.js';
import type { Parameters } from '../params.js';

/** Where the reference direction came from, per tensor name; tensors without one are absent. */
export type ReferenceUpdate = ReadonlyMap<string, Float32Array>;

function shapeKey(shape: readonly number[]): string {
  return shape.join(',');
}

/**
 * Coordinate-wise median of each tensor over the updates that hold it, for tensors held by at
 * least `minHolders` updates (a median of one or two updates is not robust, so none is formed).
 * Throws `PARAMS_MISMATCH` when updates disagree on a tensor's shape.
 */
export function medianReference(updates: readonly Parameters[], minHolders: number): Map<string, Float32Array> {
  const holders = new Map<string, { shape: string; values: Float32Array[] }>();
  updates.forEach((update, k) => {
    for (const t of update) {
      const entry = holders.get(t.name);
      if (!entry) holders.set(t.name, { shape: shapeKey(t.shape), values: [t.values] });
      else if (entry.shape !== shapeKey(t.shape)) {
        throw new FlCoreError('PARAMS_MISMATCH', `medianReference: update ${k} '${t.name}' has shape [${shapeKey(t.shape)}], others [${entry.shape}]`);
      } else entry.values.push(t.values);
    }
  });
  const reference = new Map<string, Float32Array>();
  for (const [name, entry] of holders) if (entry.values.length >= minHolders) reference.set(name, median(entry.values));
  return reference;
}

/** The root update as a reference; throws `PARAMS_MISMATCH` if a client tensor is missing from it or shaped differently. */
export function rootReference(root: Parameters, updates: readonly Parameters[]): Map<string, Float32Array> {
  const byName = new Map(root.map((t) => [t.name, t]));
  updates.forEach((update, k) => {
    for (const t of update) {
      const r = byName.get(t.name);
      if (!r) throw new FlCoreError('PARAMS_MISMATCH', `rootReference: update ${k} sends '${t.name}', which the root update lacks`);
      if (shapeKey(r.shape) !== shapeKey(t.shape)) {
        throw new FlCoreError('PARAMS_MISMATCH', `rootReference: update ${k} '${t.name}' has shape [${shapeKey(t.shape)}], root [${shapeKey(r.shape)}]`);
      }
    }
  });
  return new Map(root.map((t) => [t.name, t.values]));
}

/**
 * max(0, cos(update, reference)) over the client's tensors that have a reference, or `null` when
 * none has one. An all-zero update (or reference) has cosine 0, so it earns no agreement.
 */
export function agreementScore(update: Parameters, reference: ReferenceUpdate): number | null {
  // Tensor by tensor, so nothing is concatenated.
  const pairs: [Float32Array, Float32Array][] = [];
  for (const t of update) {
    const r = reference.get(t.name);
    if (r === undefined) continue;
    if (r.length !== t.values.length)
      throw new FlCoreError('PARAMS_MISMATCH', `agreementScore: '${t.name}' has ${t.values.length} values, reference ${r.length}`);
    pairs.push([t.values, r]);
  }
  if (pairs.length === 0) return null;
  return Math.max(0, cosineSimilarityOfParts(pairs));
}
