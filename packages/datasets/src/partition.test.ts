import { describe, expect, it } from 'vitest';

import { partitionDataset, type Partitionable } from './partition.js';

/** 40 examples, 4 classes of 10, labels 0,1,2,3,0,1,2,3,… */
const DATASET: Partitionable = {
  labels: Uint8Array.from({ length: 40 }, (_, i) => i % 4),
  modalities: ['image', 'text', 'audio'],
};

function flat(shards: { indices: readonly number[] }[]): number[] {
  return shards.flatMap((s) => [...s.indices]).sort((a, b) => a - b);
}

describe('partitionDataset', () => {
  it.each(['iid', 'dirichlet', 'shards', 'quantity'] as const)('%s: every example goes to exactly one client', (scheme) => {
    const shards = partitionDataset(DATASET, { numClients: 5, scheme, seed: 7 });

    expect(shards).toHaveLength(5);
    expect(flat(shards)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('is deterministic from the seed and changes with it', () => {
    const options = { numClients: 4, scheme: 'dirichlet' as const, alpha: 0.3, seed: 11 };

    const a = partitionDataset(DATASET, options);
    const b = partitionDataset(DATASET, options);
    const c = partitionDataset(DATASET, { ...options, seed: 12 });

    expect(b).toEqual(a);
    expect(c.map((s) => s.indices)).not.toEqual(a.map((s) => s.indices));
  });

  it('shards: with one shard per client over 4 classes × 10, each client holds exactly one class', () => {
    const shards = partitionDataset(DATASET, { numClients: 4, scheme: 'shards', shardsPerClient: 1, seed: 3 });

    const classesPerClient = shards.map((s) => new Set(s.indices.map((i) => DATASET.labels[i])).size);

    expect(classesPerClient).toEqual([1, 1, 1, 1]);
  });

  it('iid: sizes differ by at most one, and every client holds all modalities by default', () => {
    const shards = partitionDataset(DATASET, { numClients: 6, scheme: 'iid', seed: 1 });

    expect(shards.map((s) => s.indices.length)).toEqual([7, 7, 7, 7, 6, 6]);
    expect(shards.every((s) => s.modalities.join() === 'image,text,audio')).toBe(true);
  });

  it('assigns modality kinds by share without changing the sample partition', () => {
    const base = { numClients: 10, scheme: 'iid' as const, seed: 5 };

    const plain = partitionDataset(DATASET, base);
    const mixed = partitionDataset(DATASET, {
      ...base,
      modalityKinds: [
        { modalities: ['image'], fraction: 0.3 },
        { modalities: ['text'], fraction: 0.3 },
        { modalities: ['image', 'text'], fraction: 0.4 },
      ],
    });
    const kinds = mixed.map((s) => s.modalities.join('+')).sort();

    expect(mixed.map((s) => s.indices)).toEqual(plain.map((s) => s.indices));
    expect(kinds).toEqual(['image', 'image', 'image', 'image+text', 'image+text', 'image+text', 'image+text', 'text', 'text', 'text']);
  });

  it('draws modalities independently when given probabilities (probability 1 → always held)', () => {
    const shards = partitionDataset(DATASET, { numClients: 8, scheme: 'iid', seed: 2, modalityProbabilities: { image: 1, audio: 0.5 } });

    expect(shards.every((s) => s.modalities.includes('image') && !s.modalities.includes('text'))).toBe(true);
  });

  it('refuses modalities the dataset lacks, both modality options at once, and a bad seed', () => {
    const imageOnly: Partitionable = { labels: DATASET.labels, modalities: ['image'] };

    expect(() => partitionDataset(imageOnly, { numClients: 2, scheme: 'iid', seed: 1, modalityProbabilities: { audio: 0.5 } })).toThrow(
      expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }),
    );
    expect(() =>
      partitionDataset(DATASET, {
        numClients: 2,
        scheme: 'iid',
        seed: 1,
        modalityProbabilities: { image: 1 },
        modalityKinds: [{ modalities: ['image'], fraction: 1 }],
      }),
    ).toThrow(expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }));
    expect(() => partitionDataset(DATASET, { numClients: 2, scheme: 'iid', seed: -1 })).toThrow(expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }));
  });

  it("passes fl-core's coded errors through for impossible configurations", () => {
    expect(() => partitionDataset(DATASET, { numClients: 0, scheme: 'iid', seed: 1 })).toThrow(expect.objectContaining({ code: 'PARTITION_BAD_CONFIG' }));
    expect(() => partitionDataset(DATASET, { numClients: 30, scheme: 'shards', shardsPerClient: 2, seed: 1 })).toThrow(
      expect.objectContaining({ code: 'PARTITION_BAD_CONFIG' }),
    );
  });
});
