/**
 * Label-skewed partition by per-class Dirichlet proportions — Hsu, Qi & Brown 2019, arXiv:1909.06335.
 *
 * For each class c, draw q_c ~ Dir(α·1_K) over the K clients and deal a shuffled list of class c's
 * samples to the clients in proportions q_c. Small α gives each client few classes; α → ∞ tends to
 * IID. With `minSamplesPerClient` > 0 the whole draw is repeated (continuing the same Rng, so it
 * stays reproducible) until every client holds that many samples, at most `maxAttempts` times.
 */
import { dirichlet, shuffled, type Rng } from '../rng.js';
import { badConfig, checkInteger, checkPositive, indicesByLabel, sortClients, splitByProportions, type ClientPartition } from './common.js';

/** Options of {@link dirichletLabelPartition}. */
export interface DirichletLabelPartitionOptions {
  /** Number of clients K (≥ 1). */
  readonly numClients: number;
  /** Dirichlet concentration α > 0: smaller means more label skew. */
  readonly alpha: number;
  /** Redraw until every client has at least this many samples (default 0: no constraint). */
  readonly minSamplesPerClient?: number;
  /** Draws tried before giving up with `PARTITION_BAD_CONFIG` (default 100). */
  readonly maxAttempts?: number;
}

/** Dirichlet(α) label-skew partition of the samples whose labels are given. */
export function dirichletLabelPartition(rng: Rng, labels: ArrayLike<number>, options: DirichletLabelPartitionOptions): ClientPartition {
  const fn = 'dirichletLabelPartition';
  const { numClients, alpha } = options;
  const minSamples = options.minSamplesPerClient ?? 0;
  const maxAttempts = options.maxAttempts ?? 100;
  checkInteger(fn, 'numClients', numClients, 1);
  checkPositive(fn, 'alpha', alpha);
  checkInteger(fn, 'minSamplesPerClient', minSamples, 0);
  checkInteger(fn, 'maxAttempts', maxAttempts, 1);
  if (minSamples * numClients > labels.length) {
    badConfig(fn, `${numClients} clients × ${minSamples} samples exceeds the ${labels.length} samples available`);
  }
  const classes = indicesByLabel(fn, labels);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const clients: number[][] = Array.from({ length: numClients }, () => []);
    for (const members of classes) {
      const parts = splitByProportions(shuffled(rng, members), dirichlet(rng, alpha, numClients));
      parts.forEach((part, j) => {
        // A loop rather than push(...part): spreading a class of a large dataset can exceed the engine's argument limit.
        const client = clients[j]!;
        for (const idx of part) client.push(idx);
      });
    }
    if (clients.every((c) => c.length >= minSamples)) return sortClients(clients);
  }
  return badConfig(fn, `no draw gave every client ${minSamples} samples in ${maxAttempts} attempts; raise alpha or lower the minimum`);
}
