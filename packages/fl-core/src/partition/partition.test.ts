import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import type { ClientPartition } from './common.js';
import { dirichletLabelPartition } from './dirichletLabel.js';
import { iidPartition } from './iid.js';
import { assignModalitiesByFractions, assignModalitiesIndependently, MODALITIES } from './modality.js';
import { quantitySkewPartition } from './quantitySkew.js';
import { shardPartition } from './shards.js';
import { expectFlCoreError } from '../errors.test-util.js';
import type { FlCoreErrorCode } from '../errors.js';

/** {@link expectFlCoreError} with this module's usual code. */
const expectCode = (fn: () => unknown, code: FlCoreErrorCode = 'PARTITION_BAD_CONFIG'): void => expectFlCoreError(fn, code);

/** True when the client arrays are ascending, disjoint and together hold exactly 0 … n − 1. */
function isExactPartition(partition: ClientPartition, n: number): boolean {
  const seen = new Uint8Array(n);
  for (const client of partition) {
    for (let i = 0; i < client.length; i++) {
      const idx = client[i]!;
      if (!Number.isInteger(idx) || idx < 0 || idx >= n || seen[idx]) return false;
      if (i > 0 && client[i - 1]! >= idx) return false;
      seen[idx] = 1;
    }
  }
  return seen.every((s) => s === 1);
}

/** Mean over clients of the total-variation distance between the client's label histogram and the global one. */
function labelSkew(partition: ClientPartition, labels: readonly number[], numClasses: number): number {
  const global = new Float64Array(numClasses);
  for (const y of labels) global[y]! += 1 / labels.length;
  let total = 0;
  let counted = 0;
  for (const client of partition) {
    if (client.length === 0) continue;
    const local = new Float64Array(numClasses);
    for (const i of client) local[labels[i]!]! += 1 / client.length;
    let tv = 0;
    for (let c = 0; c < numClasses; c++) tv += Math.abs(local[c]! - global[c]!) / 2;
    total += tv;
    counted++;
  }
  return total / counted;
}

const labelsArb = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 200 });

describe('every partitioner assigns each sample exactly once and is reproducible', () => {
  it('iid', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 20 }), fc.integer(), (numSamples, numClients, seed) => {
        const a = iidPartition(createRng(seed), { numSamples, numClients });
        const b = iidPartition(createRng(seed), { numSamples, numClients });
        const sizes = a.map((c) => c.length);
        return isExactPartition(a, numSamples) && JSON.stringify(a) === JSON.stringify(b) && Math.max(...sizes) - Math.min(...sizes) <= 1;
      }),
      { numRuns: 100 },
    );
  });

  it('dirichlet label skew', () => {
    fc.assert(
      fc.property(
        labelsArb,
        fc.integer({ min: 1, max: 10 }),
        fc.double({ min: 0.05, max: 100, noNaN: true }),
        fc.integer(),
        (labels, numClients, alpha, seed) => {
          const a = dirichletLabelPartition(createRng(seed), labels, { numClients, alpha });
          const b = dirichletLabelPartition(createRng(seed), labels, { numClients, alpha });
          return a.length === numClients && isExactPartition(a, labels.length) && JSON.stringify(a) === JSON.stringify(b);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('shards', () => {
    fc.assert(
      fc.property(labelsArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (labels, numClients, shardsPerClient, seed) => {
        fc.pre(numClients * shardsPerClient <= labels.length);
        const a = shardPartition(createRng(seed), labels, { numClients, shardsPerClient });
        const b = shardPartition(createRng(seed), labels, { numClients, shardsPerClient });
        return a.length === numClients && isExactPartition(a, labels.length) && JSON.stringify(a) === JSON.stringify(b);
      }),
      { numRuns: 100 },
    );
  });

  it('quantity skew, dirichlet and power law', () => {
    const distributionArb = fc.oneof(
      fc.record({ kind: fc.constant('dirichlet' as const), alpha: fc.double({ min: 0.05, max: 50, noNaN: true }) }),
      fc.record({ kind: fc.constant('powerLaw' as const), exponent: fc.double({ min: 0.01, max: 5, noNaN: true }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 20, max: 300 }),
        fc.integer({ min: 1, max: 20 }),
        distributionArb,
        fc.integer(),
        (numSamples, numClients, distribution, seed) => {
          const options = { numSamples, numClients, distribution };
          const a = quantitySkewPartition(createRng(seed), options);
          const b = quantitySkewPartition(createRng(seed), options);
          return isExactPartition(a, numSamples) && a.every((c) => c.length >= 1) && JSON.stringify(a) === JSON.stringify(b);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('different seeds give different partitions', () => {
    const labels = Array.from({ length: 100 }, (_, i) => i % 5);
    const a = dirichletLabelPartition(createRng(1), labels, { numClients: 4, alpha: 0.5 });
    const b = dirichletLabelPartition(createRng(2), labels, { numClients: 4, alpha: 0.5 });
    expect(a).not.toEqual(b);
  });
});

describe('dirichletLabelPartition', () => {
  const labels = Array.from({ length: 600 }, (_, i) => i % 10);

  it('smaller alpha gives more label skew on average', () => {
    // Arrange: the same seeds for each alpha.
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const meanSkew = (alpha: number): number =>
      seeds.reduce((s, seed) => s + labelSkew(dirichletLabelPartition(createRng(seed), labels, { numClients: 10, alpha }), labels, 10), 0) / seeds.length;
    // Act
    const skewed = meanSkew(0.1);
    const moderate = meanSkew(1);
    const nearIid = meanSkew(100);
    // Assert
    expect(skewed).toBeGreaterThan(moderate);
    expect(moderate).toBeGreaterThan(nearIid);
    expect(skewed).toBeGreaterThan(0.5);
    expect(nearIid).toBeLessThan(0.15);
  });

  it('smaller alpha gives more skew on average, for any base seed (property)', () => {
    const smallLabels = Array.from({ length: 200 }, (_, i) => i % 5);
    const meanSkew = (alpha: number, baseSeed: number): number => {
      let total = 0;
      for (let s = 0; s < 6; s++) total += labelSkew(dirichletLabelPartition(createRng(baseSeed + s), smallLabels, { numClients: 5, alpha }), smallLabels, 5);
      return total / 6;
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), (baseSeed) => meanSkew(0.1, baseSeed) > meanSkew(10, baseSeed)),
      { numRuns: 30 },
    );
  });

  it('holds the minimum per client by redrawing, and gives up with a coded error', () => {
    const partition = dirichletLabelPartition(createRng(3), labels, { numClients: 10, alpha: 0.3, minSamplesPerClient: 20 });
    expect(Math.min(...partition.map((c) => c.length))).toBeGreaterThanOrEqual(20);
    expectCode(() => dirichletLabelPartition(createRng(3), labels, { numClients: 10, alpha: 0.01, minSamplesPerClient: 59, maxAttempts: 3 }));
  });

  it('refuses bad configuration', () => {
    expectCode(() => dirichletLabelPartition(createRng(1), labels, { numClients: 0, alpha: 1 }));
    expectCode(() => dirichletLabelPartition(createRng(1), labels, { numClients: 2, alpha: 0 }));
    expectCode(() => dirichletLabelPartition(createRng(1), labels, { numClients: 2, alpha: Number.NaN }));
    expectCode(() => dirichletLabelPartition(createRng(1), [0, 1.5], { numClients: 2, alpha: 1 }));
    expectCode(() => dirichletLabelPartition(createRng(1), [0, 1], { numClients: 2, alpha: 1, minSamplesPerClient: 2 }));
  });
});

describe('shardPartition', () => {
  it('gives each client shardsPerClient contiguous runs of the label-sorted samples', () => {
    // Arrange: 8 samples, labels 0,0,1,1,2,2,3,3 (scrambled order) → 4 shards of one class each.
    const labels = [3, 0, 2, 1, 0, 3, 1, 2];
    // Act
    const partition = shardPartition(createRng(9), labels, { numClients: 2, shardsPerClient: 2 });
    // Assert: each client holds exactly two classes, two samples each.
    for (const client of partition) {
      const classes = new Set(client.map((i) => labels[i]));
      expect(client).toHaveLength(4);
      expect(classes.size).toBe(2);
    }
  });

  it('refuses more shards than samples', () => {
    expectCode(() => shardPartition(createRng(1), [0, 1, 2], { numClients: 2, shardsPerClient: 2 }));
  });
});

describe('quantitySkewPartition', () => {
  it('small alpha concentrates samples on few clients', () => {
    const sizes = (alpha: number): number[] =>
      quantitySkewPartition(createRng(5), { numSamples: 1000, numClients: 10, distribution: { kind: 'dirichlet', alpha } }).map((c) => c.length);
    expect(Math.max(...sizes(0.1))).toBeGreaterThan(Math.max(...sizes(100)));
    expect(Math.max(...sizes(100))).toBeLessThan(200);
  });

  it('respects the minimum per client and refuses an impossible one', () => {
    const partition = quantitySkewPartition(createRng(5), {
      numSamples: 100,
      numClients: 10,
      distribution: { kind: 'powerLaw', exponent: 0.5 },
      minSamplesPerClient: 5,
    });
    expect(Math.min(...partition.map((c) => c.length))).toBeGreaterThanOrEqual(5);
    expectCode(() =>
      quantitySkewPartition(createRng(5), { numSamples: 10, numClients: 3, distribution: { kind: 'dirichlet', alpha: 1 }, minSamplesPerClient: 4 }),
    );
    expectCode(() => quantitySkewPartition(createRng(5), { numSamples: 10, numClients: 3, distribution: { kind: 'powerLaw', exponent: -1 } }));
  });
});

describe('modality assignment', () => {
  it('independent draws are non-empty, canonical and follow the probabilities', () => {
    // Arrange
    const probabilities = { image: 0.8, text: 0.5 };
    // Act
    const sets = assignModalitiesIndependently(createRng(11), 4000, probabilities);
    // Assert: P(image | non-empty) = 0.8 / (1 − 0.2·0.5) = 0.888…, P(text | non-empty) = 0.5 / 0.9 = 0.555…
    expect(sets.every((s) => s.length > 0 && !s.includes('audio'))).toBe(true);
    expect(sets.every((s) => s.join() === MODALITIES.filter((m) => s.includes(m)).join())).toBe(true);
    const share = (m: 'image' | 'text'): number => sets.filter((s) => s.includes(m)).length / sets.length;
    expect(share('image')).toBeCloseTo(0.8 / 0.9, 1);
    expect(share('text')).toBeCloseTo(0.5 / 0.9, 1);
    expect(assignModalitiesIndependently(createRng(11), 50, probabilities)).toEqual(assignModalitiesIndependently(createRng(11), 50, probabilities));
  });

  it('explicit fractions give exact counts per kind', () => {
    const kinds = [
      { modalities: ['image'] as const, fraction: 0.3 },
      { modalities: ['text'] as const, fraction: 0.3 },
      { modalities: ['text', 'image'] as const, fraction: 0.4 },
    ];
    const sets = assignModalitiesByFractions(createRng(4), 10, kinds);
    const count = (key: string): number => sets.filter((s) => s.join() === key).length;
    expect([count('image'), count('text'), count('image,text')]).toEqual([3, 3, 4]);
  });

  it('refuses bad probabilities, fractions and kinds', () => {
    expectCode(() => assignModalitiesIndependently(createRng(1), 3, {}));
    expectCode(() => assignModalitiesIndependently(createRng(1), 3, { image: 1.5 }));
    expectCode(() => assignModalitiesIndependently(createRng(1), 3, { video: 0.5 } as never));
    expectCode(() => assignModalitiesByFractions(createRng(1), 3, [{ modalities: ['image'], fraction: 0.5 }]));
    expectCode(() => assignModalitiesByFractions(createRng(1), 3, [{ modalities: [], fraction: 1 }]));
    expectCode(() => assignModalitiesByFractions(createRng(1), 3, [{ modalities: ['image', 'image'], fraction: 1 }]));
  });
});
