import type { DigitsSample } from '@chorus/datasets';
import { describe, expect, it } from 'vitest';
import { assignFedAfdKinds, checkFedAfdKinds, isClassifierKind, loadFedAfdLocalData, partitionFedAfd, publicDataOver } from './clientData.js';
import type { FedAfdAssignment, FedAfdKindShare } from './clientData.js';

const ALL: FedAfdKindShare[] = [
  { kind: 'image-classifier', arch: 'cnn', share: 0.5 },
  { kind: 'text-classifier', arch: 'conv1d', share: 0.3 },
  { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.2 },
];
const DIGITS_MODALITIES = ['image', 'text', 'audio'] as const;

function assignments(kinds: FedAfdAssignment['kind'][]): FedAfdAssignment[] {
  return kinds.map((kind, client) => ({ client, kind, arch: 'cnn', modalities: [] }));
}

/** Labels 0 … numClasses − 1 repeated: sample i has label i mod numClasses. */
function cyclicLabels(n: number, numClasses: number): number[] {
  return Array.from({ length: n }, (_, i) => i % numClasses);
}

function distinct(labels: readonly number[], indices: readonly number[]): number[] {
  return [...new Set(indices.map((i) => labels[i]!))].sort((a, b) => a - b);
}

describe('assignFedAfdKinds', () => {
  it('gives numClients · share clients each entry, with the modalities of its kind, in a seeded order', () => {
    // Act
    const a = assignFedAfdKinds({ numClients: 10, kinds: ALL, datasetModalities: DIGITS_MODALITIES, seed: 3 });
    const again = assignFedAfdKinds({ numClients: 10, kinds: ALL, datasetModalities: DIGITS_MODALITIES, seed: 3 });
    const other = assignFedAfdKinds({ numClients: 10, kinds: ALL, datasetModalities: DIGITS_MODALITIES, seed: 4 });
    // Assert
    const count = (kind: string): number => a.filter((x) => x.kind === kind).length;
    expect([count('image-classifier'), count('text-classifier'), count('image-text-retrieval')]).toEqual([5, 3, 2]);
    expect(a.map((x) => x.client)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(a.find((x) => x.kind === 'image-text-retrieval')).toMatchObject({ arch: 'cnn+bag-mlp', modalities: ['image', 'text'] });
    expect(a.find((x) => x.kind === 'text-classifier')!.modalities).toEqual(['text']);
    expect(again).toEqual(a);
    expect(other.map((x) => x.kind)).not.toEqual(a.map((x) => x.kind));
  });

  it('rounds by largest remainder, ties to the earlier entry', () => {
    // 3 × 0.5 = 1.5 each: one each, and the spare client goes to the first entry.
    const kinds: FedAfdKindShare[] = [
      { kind: 'image-classifier', arch: 'cnn', share: 0.5 },
      { kind: 'image-classifier', arch: 'frozen-base', share: 0.5 },
    ];
    // Act
    const a = assignFedAfdKinds({ numClients: 3, kinds, datasetModalities: ['image'], seed: 1 });
    // Assert
    expect(a.filter((x) => x.arch === 'cnn')).toHaveLength(2);
    expect(a.filter((x) => x.arch === 'frozen-base')).toHaveLength(1);
  });

  it.each([
    [[{ kind: 'image-classifier', arch: 'cnn', share: 0.5 }], 'kinds: shares must sum to 1'],
    [[{ kind: 'video-classifier', arch: 'cnn', share: 1 }], 'kinds[0].kind'],
    [[{ kind: 'image-classifier', arch: 'conv1d', share: 1 }], 'kinds[0].arch'],
    [[{ kind: 'image-classifier', arch: 'cnn', share: -0.5 }], 'kinds[0].share'],
    [
      [
        { kind: 'image-classifier', arch: 'cnn', share: 0.5 },
        { kind: 'audio-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
      ],
      'kinds[1].kind: a audio-text-retrieval needs audio, text',
    ],
    [[], 'kinds: expected a non-empty list'],
    [[null], 'kinds[0]: expected'],
  ])('refuses the kind list %j naming %s', (kinds, message) => {
    expect(() => checkFedAfdKinds(kinds, ['image'])).toThrow(expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining(message) }));
  });

  it('refuses a client count below 1', () => {
    expect(() => assignFedAfdKinds({ numClients: 0, kinds: ALL, datasetModalities: DIGITS_MODALITIES, seed: 1 })).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG' }),
    );
  });
});

describe('partitionFedAfd', () => {
  const kinds = ['image-classifier', 'text-classifier', 'image-classifier', 'image-text-retrieval', 'image-text-retrieval'] as const;

  it('deals every sample to exactly one client, each group a share proportional to its clients', () => {
    // Arrange: 100 samples; 3 classifiers and 2 retrieval clients.
    const labels = cyclicLabels(100, 10);
    // Act
    const parts = partitionFedAfd(labels, assignments([...kinds]), { scheme: 'iid', seed: 2 });
    // Assert
    expect(parts.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(parts.map((p) => p.length)).toEqual([20, 20, 20, 20, 20]);
    for (const p of parts) expect(p).toEqual([...p].sort((a, b) => a - b));
  });

  it('skews the classifiers by Dirichlet(0.1) and gives retrieval clients label-sorted shards when non-IID', () => {
    // Arrange
    const labels = cyclicLabels(400, 10);
    const who = assignments([...kinds]);
    // For each label, the share of its classifier samples held by the classifier holding most of them.
    const concentration = (parts: number[][]): number => {
      const held = (c: number, y: number): number => parts[c]!.filter((i) => labels[i] === y).length;
      const perLabel = distinct(labels, parts.slice(0, 3).flat()).map(
        (y) => Math.max(held(0, y), held(1, y), held(2, y)) / (held(0, y) + held(1, y) + held(2, y)),
      );
      return perLabel.reduce((a, b) => a + b, 0) / perLabel.length;
    };
    // Act
    const iid = partitionFedAfd(labels, who, { scheme: 'iid', seed: 5 });
    const skewed = partitionFedAfd(labels, who, { seed: 5 });
    const oneShard = partitionFedAfd(labels, who, { seed: 5, shardsPerClient: 1 });
    // Assert: IID classifiers share each label about equally (1/3 each); α = 0.1 gives each label mostly to one of them.
    expect(concentration(iid)).toBeLessThan(0.5);
    expect(concentration(skewed)).toBeGreaterThan(0.8);
    expect(skewed.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    // One shard each: the retrieval pool sorted by label and cut in two, so their label ranges meet at most at one label.
    const [r1, r2] = [distinct(labels, oneShard[3]!), distinct(labels, oneShard[4]!)];
    const [low, high] = r1[0]! <= r2[0]! ? [r1, r2] : [r2, r1];
    expect(low.at(-1)!).toBeLessThanOrEqual(high[0]!);
    expect(partitionFedAfd(labels, who, { seed: 5 })).toEqual(skewed);
  });

  it('keeps a seeded subset of at most maxExamplesPerClient', () => {
    // Act
    const parts = partitionFedAfd(cyclicLabels(100, 10), assignments([...kinds]), { scheme: 'iid', maxExamplesPerClient: 7, seed: 2 });
    const full = partitionFedAfd(cyclicLabels(100, 10), assignments([...kinds]), { scheme: 'iid', seed: 2 });
    // Assert
    parts.forEach((p, c) => {
      expect(p).toHaveLength(7);
      expect(p.every((i) => full[c]!.includes(i))).toBe(true);
    });
  });

  it.each([
    [{ scheme: 'pathological', seed: 1 }, 'scheme'],
    [{ alpha: 0, seed: 1 }, 'alpha'],
    [{ maxExamplesPerClient: 0, seed: 1 }, 'maxExamplesPerClient'],
    [{ shardsPerClient: 50, seed: 1 }, 'shards'],
  ])('refuses the options %j naming %s', (options, name) => {
    expect(() => partitionFedAfd(cyclicLabels(100, 10), assignments([...kinds]), options as never)).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining(name) }),
    );
  });

  it('refuses a split that leaves a client without data', () => {
    expect(() => partitionFedAfd([0, 1, 2], assignments([...kinds]), { scheme: 'iid', seed: 1 })).toThrow(
      expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining('no training examples') }),
    );
  });
});

describe('local and public data', () => {
  /** Digits samples whose every pixel is 51·k, caption [k + 1, k + 2] and a silent 0.1 s clip. */
  const samples: DigitsSample[] = [0, 1, 2, 3].map((k) => ({
    index: k,
    label: k % 2,
    image: new Uint8Array(784).fill(51 * k),
    audio: new Int16Array(1600),
    speaker: 0,
    caption: Uint16Array.from([k + 1, k + 2]),
  }));
  const reader = { read: (indices: readonly number[]) => Promise.resolve(indices.map((i) => samples[i]!)) };

  it('gives a classifier the modality of its kind with labels, a retrieval client its pairs', async () => {
    // Act
    const text = await loadFedAfdLocalData(reader, { client: 0, kind: 'text-classifier', arch: 'bag-mlp', modalities: ['text'] }, [1, 3]);
    const pairs = await loadFedAfdLocalData(reader, { client: 1, kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', modalities: ['image', 'text'] }, [2]);
    // Assert
    expect(text.modalities).toEqual(['text']);
    expect(Array.from(text.labels)).toEqual([1, 1]);
    expect(pairs.modalities).toEqual(['image', 'text']);
    const batch = await pairs.read([0]);
    expect(batch.image!.values[0]).toBeCloseTo(102 / 255, 6);
    expect(Array.from(batch.text!.values.slice(0, 3))).toEqual([3, 4, 0]);
    expect(isClassifierKind('text-classifier')).toBe(true);
    expect(isClassifierKind('audio-text-retrieval')).toBe(false);
  });

  it('reads a public batch in the order asked, with the preprocessing of the local data', async () => {
    // Arrange
    const pub = publicDataOver('digits', samples.length, reader);
    // Act
    const batch = await pub.batch([3, 0], ['image', 'text']);
    // Assert
    expect(batch.size).toBe(2);
    expect(batch.image!.shape).toEqual([2, 28, 28, 1]);
    expect(batch.image!.values[0]).toBeCloseTo(153 / 255, 6);
    expect(batch.image!.values[784]).toBe(0);
    expect(Array.from(batch.text!.values.slice(0, 2))).toEqual([4, 5]);
    expect(batch.audio).toBeUndefined();
    expect(pub.modalities).toEqual(['image', 'text', 'audio']);
  });

  it.each([[[]], [[4]], [[-1]], [[0.5]]])('refuses the public indices %j', async (indices) => {
    await expect(publicDataOver('digits', samples.length, reader).batch(indices)).rejects.toMatchObject({ code: 'CLIENT_DATASET' });
  });

  it('refuses a public modality the dataset lacks', async () => {
    await expect(publicDataOver('fashion', samples.length, reader).batch([0], ['text'])).rejects.toMatchObject({ code: 'CLIENT_DATASET' });
  });
});
