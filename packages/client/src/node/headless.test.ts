/**
 * Headless clients on fashion-mm: each shard carries its client's caption/SNR profile, a pure
 * function of (seed, client index), and loading a shard draws the captions and noise from it.
 */
import { clientCaptionProfile } from '@chorus/datasets';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadShard, partitionBuiltin } from './headless.js';
import { useNodeBackend } from './setup.js';

beforeAll(async () => {
  await useNodeBackend('wasm');
});

describe('partitionBuiltin on fashion-mm', () => {
  it('gives each client its own profile from (seed, client index), and the digits shards none', async () => {
    // Act
    const shards = await partitionBuiltin({ dataset: 'fashion-mm', numClients: 3, scheme: 'iid', maxExamplesPerClient: 6, seed: 2 });
    const digits = await partitionBuiltin({ dataset: 'digits', numClients: 2, scheme: 'iid', maxExamplesPerClient: 2, seed: 2 });
    // Assert
    shards.forEach((s, i) => expect(s.profile).toEqual(clientCaptionProfile(2, i)));
    expect(new Set(shards.map((s) => s.profile!.snrDb)).size).toBe(3);
    expect(digits.every((s) => s.profile === undefined)).toBe(true);
  });

  it('loads a shard with image, caption tokens and log-mel audio, the same twice, different under another profile', async () => {
    // Arrange
    const [shard] = await partitionBuiltin({ dataset: 'fashion-mm', numClients: 2, scheme: 'iid', maxExamplesPerClient: 6, seed: 2 });
    // Act
    const first = await loadShard('fashion-mm', shard!);
    const again = await loadShard('fashion-mm', shard!);
    const other = await loadShard('fashion-mm', { ...shard!, profile: clientCaptionProfile(2, 9) });
    const a = await first.read([0, 1, 2, 3, 4, 5]);
    const b = await again.read([0, 1, 2, 3, 4, 5]);
    const c = await other.read([0, 1, 2, 3, 4, 5]);
    // Assert
    expect(first.modalities).toEqual(['image', 'text', 'audio']);
    expect(a.audio!.values).toEqual(b.audio!.values);
    expect(a.text!.values).toEqual(b.text!.values);
    expect(c.audio!.values).not.toEqual(a.audio!.values);
    expect(c.image!.values).toEqual(a.image!.values);
  });
});
