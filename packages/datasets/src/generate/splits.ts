/**
 * Seeded, stratified train/test/public splits. Each class is shuffled and cut by the same fractions,
 * so every split keeps the whole set's class proportions (to within one example per class).
 */

import { createRng, shuffled } from '@chorus/fl-core';

import { DatasetError } from '../errors.js';
import type { CoreSplit } from '../manifest.js';

/** Fractions of each class that go to `test` and `public`; the rest is `train`. */
export interface SplitFractions {
  readonly test: number;
  readonly public: number;
}

/** A seed derived from a base seed and a label (FNV-1a), so each use gets an independent stream. */
export function deriveSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Example indices of each split, each list shuffled so that a contiguous read is not one class. */
export function stratifiedSplit(labels: ArrayLike<number>, numClasses: number, fractions: SplitFractions, seed: number): Record<CoreSplit, number[]> {
  if (!(fractions.test >= 0 && fractions.public >= 0 && fractions.test + fractions.public < 1)) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `stratifiedSplit: bad fractions ${JSON.stringify(fractions)}`);
  }
  const rng = createRng(seed);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    const bucket = byClass[label];
    if (bucket === undefined) throw new DatasetError('DATASET_BAD_ARGUMENT', `stratifiedSplit: label ${label} ≥ ${numClasses}`);
    bucket.push(i);
  }
  const out: Record<CoreSplit, number[]> = { train: [], test: [], public: [] };
  for (const members of byClass) {
    const order = shuffled(rng, members);
    const numPublic = Math.round(members.length * fractions.public);
    const numTest = Math.round(members.length * fractions.test);
    out.public.push(...order.slice(0, numPublic));
    out.test.push(...order.slice(numPublic, numPublic + numTest));
    out.train.push(...order.slice(numPublic + numTest));
  }
  return { train: shuffled(rng, out.train), test: shuffled(rng, out.test), public: shuffled(rng, out.public) };
}

/** Examples per class among `indices`. */
export function countLabels(labels: ArrayLike<number>, indices: readonly number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const i of indices) counts[labels[i]!]! += 1;
  return counts;
}
