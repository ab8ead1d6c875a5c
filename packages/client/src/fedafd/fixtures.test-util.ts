/**
 * A tiny separable FedAFD problem for this folder's tests: 8×8 images bright on the left half
 * (class 0) or the right half (class 1), captions of class words, D = 8; small enough that a
 * round takes well under a second on the CPU backend.
 */
import { TextEmbedder } from '@chorus/models';
import type { FedAfdClientOptions, FedAfdClientSpec, FedAfdServerConfig } from '@chorus/models';
import { ArrayDataset } from '../dataset.js';
import type { HostBatch } from '../dataset.js';

export const TINY = { dim: 8, image: [8, 8, 1] as [number, number, number], vocab: 6, wordDim: 4, length: 4 };

const GLOBAL = { hiddenUnits: 8, imageFilters: [2, 2] as [number, number], textFilters: 4, seed: 3 };

/** A 6-word table of 4-d vectors (word 0 is padding). */
export function tinyEmbedder(): TextEmbedder {
  const values = new Float32Array(TINY.vocab * TINY.wordDim);
  for (let i = TINY.wordDim; i < values.length; i++) values[i] = Math.sin(i * 1.7);
  return new TextEmbedder(values, TINY.wordDim);
}

export function tinySpec(kind: FedAfdClientSpec['kind'], arch: string, overrides: Partial<FedAfdClientSpec> = {}): FedAfdClientSpec {
  return {
    kind,
    arch,
    dim: TINY.dim,
    numClasses: 2,
    hiddenUnits: 6,
    filters: [2, 3],
    fusionGroups: 2,
    discriminatorHiddenUnits: 5,
    learningRate: 0.02,
    seed: 1,
    ...overrides,
  };
}

export function tinyOptions(embedder: TextEmbedder): FedAfdClientOptions {
  return { imageShape: TINY.image, textEmbedder: embedder, global: GLOBAL };
}

export function tinyServerConfig(embedder: TextEmbedder): FedAfdServerConfig {
  return { dim: TINY.dim, imageShape: TINY.image, textEmbedder: embedder, modalities: ['image', 'text'], ...GLOBAL, learningRate: 0.01 };
}

/**
 * `n` examples, labels alternating 0, 1: image k is bright (1) on the left or right half with a
 * faint per-example ramp, caption k is [class word, second word, 0, 0]: words 1, 2 for class 0,
 * 3, 4 for class 1, and every third example's second word the shared word 5.
 */
export function tinyData(n: number, offset = 0): ArrayDataset {
  const labels = Int32Array.from({ length: n }, (_, k) => (k + offset) % 2);
  const [h, w] = TINY.image;
  const image = new Float32Array(n * h * w);
  const text = new Int32Array(n * TINY.length);
  for (let k = 0; k < n; k++) {
    const y = labels[k]!;
    for (let r = 0; r < h; r++)
      for (let c = 0; c < w; c++) image[k * h * w + r * w + c] = c < w / 2 === (y === 0) ? 1 - 0.02 * ((k + offset) % 5) : 0.05 * (r % 2);
    text[k * TINY.length] = y === 0 ? 1 : 3;
    text[k * TINY.length + 1] = (k + offset) % 3 === 0 ? 5 : y === 0 ? 2 : 4;
  }
  return new ArrayDataset(labels, { image: { values: image, shape: [n, h, w, 1] }, text: { values: text, shape: [n, TINY.length] } });
}

/** The same examples with only `modalities`. */
export async function only(data: ArrayDataset, modalities: readonly ('image' | 'text')[]): Promise<ArrayDataset> {
  const all = await data.read(Array.from({ length: data.numExamples }, (_, i) => i));
  return new ArrayDataset(all.labels, Object.fromEntries(modalities.map((m) => [m, all[m]!])));
}

/** A public batch: `rows` paired examples. */
export function tinyPublic(rows: number): Promise<HostBatch> {
  const data = tinyData(rows, 7);
  return data.read(Array.from({ length: rows }, (_, i) => i));
}

/** Unit rows [rows, D] from a fixed pattern (row r, column j: sin of r and j). */
export function unitRows(rows: number, seed: number): Float32Array {
  const out = new Float32Array(rows * TINY.dim);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let j = 0; j < TINY.dim; j++) norm += (out[r * TINY.dim + j] = Math.sin(seed + 1.3 * r + 0.7 * j * (j + 1))) ** 2;
    for (let j = 0; j < TINY.dim; j++) out[r * TINY.dim + j]! /= Math.sqrt(norm);
  }
  return out;
}
