/**
 * Retrieval metrics for cross-modal search (image→text, text→image): each query has exactly one
 * matching item, and a score matrix ranks every item for every query.
 *
 * Ties are broken against the match: an item scoring the same as the match counts as ranked above
 * it. A model that scores everything equally therefore gets recall@K = 0 rather than a perfect score.
 */
import { badInput, columnsOf } from './validate.js';

/**
 * Zero-based rank of each query's matching item in a row-major `numQueries × numItems` score
 * matrix (higher score = better); `matchingItems[q]` is the index of query q's match.
 */
export function retrievalRanks(scores: ArrayLike<number>, matchingItems: ArrayLike<number>): Int32Array {
  const fn = 'retrievalRanks';
  const numQueries = matchingItems.length;
  const numItems = columnsOf(fn, scores, numQueries, 'scores');
  const ranks = new Int32Array(numQueries);
  for (let q = 0; q < numQueries; q++) {
    const match = matchingItems[q]!;
    if (!Number.isInteger(match) || match < 0 || match >= numItems) {
      badInput(fn, `matching item of query ${q} is ${match}, expected an integer in [0, ${numItems})`);
    }
    const base = q * numItems;
    const target = scores[base + match]!;
    let rank = 0;
    for (let j = 0; j < numItems; j++) {
      const s = scores[base + j]!;
      if (Number.isNaN(s)) badInput(fn, `score [${q}, ${j}] is NaN`);
      if (j !== match && s >= target) rank++;
    }
    ranks[q] = rank;
  }
  return ranks;
}

/** Fraction of queries whose matching item ranks among the top `k` (recall@K). */
export function recallAtK(scores: ArrayLike<number>, matchingItems: ArrayLike<number>, k: number): number {
  if (!Number.isInteger(k) || k < 1) badInput('recallAtK', `k must be a positive integer, got ${k}`);
  const ranks = retrievalRanks(scores, matchingItems);
  let hits = 0;
  for (let q = 0; q < ranks.length; q++) if (ranks[q]! < k) hits++;
  return hits / ranks.length;
}
