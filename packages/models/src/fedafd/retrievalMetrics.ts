/**
 * Cross-modal retrieval metrics as FedAFD ("FedAFD: Multimodal Federated Learning via Adversarial
 * Fusion and Distillation") reports them for its server and retrieval clients: Recall@K in both
 * directions over n paired samples (the true match of query i is candidate i) and rsum, the sum of
 * R@1, R@5 and R@10 of both directions (the usual definition in image–text retrieval). Recalls are
 * percentages. A query's rank counts the candidates scored strictly higher than its true match, so
 * ties go to the true match. Pure functions over a row-major similarity matrix.
 */
import { ModelsError } from '../errors.js';

/** Recall@1, 5, 10 of both directions and their sum, in percent. */
export interface RetrievalMetrics {
  /** Image (or audio) → text: query row i, candidates its row. */
  i2tR1: number;
  i2tR5: number;
  i2tR10: number;
  /** Text → image (or audio): query column j, candidates its column. */
  t2iR1: number;
  t2iR5: number;
  t2iR10: number;
  /** i2tR1 + i2tR5 + i2tR10 + t2iR1 + t2iR5 + t2iR10. */
  rsum: number;
  /** Number of pairs n. */
  numPairs: number;
}

function checkMatrix(fn: string, similarity: ArrayLike<number>, n: number): void {
  if (!Number.isInteger(n) || n < 1 || similarity.length !== n * n) {
    throw new ModelsError('MODELS_BAD_INPUT', `${fn}: expected an n×n similarity matrix with n ≥ 1, got ${similarity.length} values for n = ${n}`);
  }
  for (let i = 0; i < similarity.length; i++)
    if (!Number.isFinite(similarity[i]!)) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: similarity[${i}] is ${similarity[i]}`);
}

/** Rank (0 = first) of each query's true match: rows of `similarity` when `byRow`, else columns. */
function ranks(similarity: ArrayLike<number>, n: number, byRow: boolean): number[] {
  const at = (q: number, c: number): number => (byRow ? similarity[q * n + c]! : similarity[c * n + q]!);
  return Array.from({ length: n }, (_, q) => {
    const own = at(q, q);
    let higher = 0;
    for (let c = 0; c < n; c++) if (c !== q && at(q, c) > own) higher++;
    return higher;
  });
}

/**
 * Recall@k in percent of the queries along rows (`direction` 'row': query i scores row i) or
 * columns ('column') of the n×n `similarity` (row-major), the true match of query i being i.
 */
export function recallAtK(similarity: ArrayLike<number>, n: number, k: number, direction: 'row' | 'column' = 'row'): number {
  checkMatrix('recallAtK', similarity, n);
  if (!Number.isInteger(k) || k < 1) throw new ModelsError('MODELS_BAD_CONFIG', `recallAtK: k must be an integer ≥ 1, got ${k}`);
  return (100 * ranks(similarity, n, direction === 'row').filter((r) => r < k).length) / n;
}

/** Every {@link RetrievalMetrics} of the n×n `similarity` (rows: images or audio clips; columns: captions). */
export function retrievalMetrics(similarity: ArrayLike<number>, n: number): RetrievalMetrics {
  checkMatrix('retrievalMetrics', similarity, n);
  const recall = (rs: number[], k: number): number => (100 * rs.filter((r) => r < k).length) / n;
  const rows = ranks(similarity, n, true);
  const cols = ranks(similarity, n, false);
  const m = {
    i2tR1: recall(rows, 1),
    i2tR5: recall(rows, 5),
    i2tR10: recall(rows, 10),
    t2iR1: recall(cols, 1),
    t2iR5: recall(cols, 5),
    t2iR10: recall(cols, 10),
  };
  return { ...m, rsum: m.i2tR1 + m.i2tR5 + m.i2tR10 + m.t2iR1 + m.t2iR5 + m.t2iR10, numPairs: n };
}
