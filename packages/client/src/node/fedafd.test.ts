/**
 * FedAFD clients over the built-in digits on disk: kinds and shares, partitions recomputed alike
 * from the seed, local data by kind, and the public split's batches in the models' input format.
 */
import { fileSource } from '@chorus/datasets/node';
import { openBuiltin, readManifest } from '@chorus/datasets';
import { beforeAll, describe, expect, it } from 'vitest';
import { datasetFromSamples } from '../builtinData.js';
import type { BuiltinSample } from '../builtinData.js';
import { FEDAFD_BUILTIN_INPUTS } from '../fedafd/clientData.js';
import type { FedAfdKindShare } from '../fedafd/clientData.js';
import { createFedAfdClient } from '@chorus/models';
import { toModelBatch } from '../training.js';
import { loadFedAfdEvaluationData, loadFedAfdInputs, loadFedAfdShard, openFedAfdPublicDataFromFiles, partitionFedAfdBuiltin } from './fedafd.js';
import { useNodeBackend } from './setup.js';

const KINDS: FedAfdKindShare[] = [
  { kind: 'image-classifier', arch: 'cnn', share: 0.25 },
  { kind: 'text-classifier', arch: 'bag-mlp', share: 0.25 },
  { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.25 },
  { kind: 'audio-text-retrieval', arch: 'pool-mlp+conv1d', share: 0.25 },
];

beforeAll(async () => {
  await useNodeBackend('wasm');
});

describe('FedAFD clients over the built-in digits', () => {
  it('assigns kinds, deals the training split and loads each client the modalities of its kind', async () => {
    // Act
    const shards = await partitionFedAfdBuiltin({ dataset: 'digits', numClients: 4, kinds: KINDS, maxExamplesPerClient: 5, seed: 3 });
    const again = await partitionFedAfdBuiltin({ dataset: 'digits', numClients: 4, kinds: KINDS, maxExamplesPerClient: 5, seed: 3 });
    const data = await Promise.all(shards.map((s) => loadFedAfdShard('digits', s)));
    // Assert
    expect(again).toEqual(shards);
    expect(shards.map((s) => s.kind).sort()).toEqual(KINDS.map((k) => k.kind).sort());
    const all = shards.flatMap((s) => s.indices);
    expect(new Set(all).size).toBe(20);
    shards.forEach((s, i) => {
      expect([...data[i]!.modalities].sort()).toEqual([...s.modalities].sort());
      expect(data[i]!.numExamples).toBe(5);
    });
    const audio = data[shards.findIndex((s) => s.kind === 'audio-text-retrieval')]!;
    const batch = await audio.read([0]);
    expect(batch.audio!.shape.slice(1)).toEqual(FEDAFD_BUILTIN_INPUTS.audioShape);
  }, 60_000);

  it('gives fashion-mm clients their own caption profile and disjoint shares of the non-IID split', async () => {
    // Act
    const kinds: FedAfdKindShare[] = [
      { kind: 'image-classifier', arch: 'frozen-base', share: 0.5 },
      { kind: 'image-text-retrieval', arch: 'frozen-base+conv1d', share: 0.5 },
    ];
    const shards = await partitionFedAfdBuiltin({ dataset: 'fashion-mm', numClients: 4, kinds, seed: 6 });
    const data = await loadFedAfdShard('fashion-mm', { ...shards[0]!, indices: shards[0]!.indices.slice(0, 3) });
    // Assert
    expect(shards.every((s) => s.profile !== undefined)).toBe(true);
    expect(shards[0]!.profile).not.toEqual(shards[1]!.profile);
    expect(data.numExamples).toBe(3);
    expect(new Set(shards.flatMap((s) => s.indices)).size).toBe(shards.reduce((n, s) => n + s.indices.length, 0));
  }, 60_000);

  it('reads public batches as datasetFromSamples preprocesses the same samples', async () => {
    // Arrange
    const pub = await openFedAfdPublicDataFromFiles('digits');
    const source = fileSource();
    const split = await openBuiltin(source, await readManifest(source), 'digits', 'public');
    const expected = await (await datasetFromSamples((await split.read([9, 2])) as BuiltinSample[], ['image', 'text'])).read([0, 1]);
    // Act
    const batch = await pub.batch([9, 2], ['image', 'text']);
    // Assert
    expect(pub.numExamples).toBe(split.numExamples);
    expect(batch).toEqual(expected);
    expect(batch.image!.shape).toEqual([2, ...FEDAFD_BUILTIN_INPUTS.imageShape]);
    await expect(pub.batch([split.numExamples])).rejects.toMatchObject({ code: 'CLIENT_DATASET' });
  }, 60_000);

  it('loads a held-out range of a split once per modality set, and refuses a range outside it', async () => {
    // Arrange
    const source = fileSource();
    const split = await openBuiltin(source, await readManifest(source), 'digits', 'test');
    const expected = await (await datasetFromSamples((await split.read([10, 11, 12])) as BuiltinSample[], ['image', 'text'])).read([0, 1, 2]);
    // Act
    const data = await loadFedAfdEvaluationData('digits', { split: 'test', start: 10, count: 3 }, [['image'], ['image', 'text'], ['image']]);
    // Assert: test examples 10–12 with each set's modalities and true labels.
    expect([...data.keys()]).toEqual(['image', 'image+text']);
    expect(await data.get('image+text')!.read([0, 1, 2])).toEqual(expected);
    expect(data.get('image')!.modalities).toEqual(['image']);
    for (const range of [
      { split: 'test' as const, start: split.numExamples - 1, count: 2 },
      { split: 'validation' as const, start: 0, count: 1 },
    ])
      await expect(loadFedAfdEvaluationData('digits', range, [['image']])).rejects.toMatchObject({ code: 'CLIENT_BAD_CONFIG' });
  }, 60_000);

  it('refuses an unknown dataset and a kind the dataset cannot hold', async () => {
    await expect(partitionFedAfdBuiltin({ dataset: 'cifar' as never, numClients: 2, kinds: KINDS, seed: 1 })).rejects.toMatchObject({
      code: 'CLIENT_BAD_CONFIG',
    });
    await expect(
      partitionFedAfdBuiltin({ dataset: 'fashion', numClients: 2, kinds: [{ kind: 'text-classifier', arch: 'bag-mlp', share: 1 }], seed: 1 }),
    ).rejects.toMatchObject({ code: 'CLIENT_BAD_CONFIG', message: expect.stringContaining('kinds[0].kind') });
  });

  it('builds client models of every input kind that map a real public batch to [B, D] representations', async () => {
    // Arrange: small clients (D = 8) on the real inputs, the pretrained image base under frozen-base.
    const inputs = await loadFedAfdInputs({ global: { hiddenUnits: 8, imageFilters: [2, 2], textFilters: 4, audioFilters: [2, 2] } });
    const small = { dim: 8, hiddenUnits: 6, filters: [2, 3] as [number, number], fusionGroups: 2, discriminatorHiddenUnits: 5 };
    const clients = [
      createFedAfdClient({ kind: 'image-text-retrieval', arch: 'frozen-base+conv1d', ...small }, inputs.options),
      createFedAfdClient({ kind: 'audio-text-retrieval', arch: 'pool-mlp+conv1d', ...small }, inputs.options),
    ];
    const pub = await openFedAfdPublicDataFromFiles('digits');
    const batch = toModelBatch(await pub.batch([0, 1, 2]), ['image', 'text', 'audio']);
    // Act
    const reps = await Promise.all(clients.map((c) => c.publicRepresentations(batch)));
    // Assert
    expect(Object.keys(reps[0]!).sort()).toEqual(['image', 'text']);
    expect(Object.keys(reps[1]!).sort()).toEqual(['audio', 'text']);
    for (const r of reps.flatMap((x) => Object.values(x))) expect(r).toHaveLength(3 * 8);
    expect(clients[0]!.parameterCounts().frozen).toBeGreaterThan(0);
    Object.values(batch).forEach((t) => t.dispose());
    clients.forEach((c) => c.dispose());
    inputs.dispose();
  }, 60_000);
});
