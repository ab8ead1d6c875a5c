/**
 * A headless client's upload is a function of the round start, its identity, its data and its
 * seed: the same round gives the same bytes on the Node wasm backend, whatever the client did
 * before and whichever other clients train beside it in the process. Small shards (40 examples,
 * 10 steps a round) keep each round around a second.
 */
import { createHash } from 'node:crypto';
import { encodeUpdate } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { PROTOCOL_VERSION, roundStartSchema } from '@chorus/protocol';
import type { ParsedRoundStart } from '@chorus/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdversarialBehaviour } from '../adversarial.js';
import type { LocalDataset } from '../dataset.js';
import { encodeLocalUpdate, roundSeed, runLocalRound } from '../localRound.js';
import type { ModelFactory } from '../models.js';
import { loadShard, partitionBuiltin } from './headless.js';
import { createNodeDigitsFactory, useNodeBackend } from './setup.js';

const TASK = 'determinism';
let models: ModelFactory;
let shards: LocalDataset[];
let initial: Tensor[];

beforeAll(async () => {
  await useNodeBackend('wasm');
  models = createNodeDigitsFactory();
  const parts = await partitionBuiltin({ dataset: 'digits', numClients: 2, scheme: 'iid', modalities: ['image', 'text'], maxExamplesPerClient: 40, seed: 5 });
  shards = await Promise.all(parts.map((p) => loadShard('digits', p)));
  const model = await models.create({
    modalities: ['image', 'text'],
    numClasses: 10,
    adapterRank: 4,
    namConcepts: 8,
    namHiddenUnits: 8,
    learningRate: 0.05,
    seed: 3,
  });
  try {
    initial = model.adapterParameters();
  } finally {
    model.dispose();
  }
}, 60_000);
afterAll(() => models.dispose());

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The round start a coordinator would send for `serverRound` with the shared initial model. */
function roundStart(serverRound: number): ParsedRoundStart {
  const global = encodeUpdate({ kind: 'model', taskId: TASK, round: serverRound - 1, clientId: '', encoding: 'fp32', tensors: initial });
  return roundStartSchema.parse({
    type: 'round-start',
    protocolVersion: PROTOCOL_VERSION,
    taskId: TASK,
    roundId: `${TASK}.r${serverRound}.a1`,
    serverRound,
    attempt: 1,
    deadlineAt: 0,
    config: {
      localEpochs: 2,
      batchSize: 8,
      learningRate: 0.05,
      uploadEncoding: 'fp32',
      maxUpdateBytes: 1 << 22,
      normBound: 50,
      modalWeight: 0.1,
      head: 'nam',
      adapterAlpha: 8,
      strategy: {},
    },
    globalHash: sha256(global),
    global,
  });
}

/** SHA-256 of what the client would upload for `serverRound`. */
async function uploadHash(
  serverRound: number,
  options: { client?: number; seed?: number; behaviour?: AdversarialBehaviour; pause?: () => Promise<void> } = {},
): Promise<string> {
  const client = options.client ?? 0;
  const round = roundStart(serverRound);
  const result = await runLocalRound({
    round,
    dataset: shards[client]!,
    models,
    seed: options.seed ?? 1000 + client,
    behaviour: options.behaviour ?? null,
    evalExamples: 8,
    ...(options.pause ? { pause: options.pause } : {}),
  });
  expect(result).not.toBeNull();
  return sha256(encodeLocalUpdate(round, `c-${client}`, result!.tensors));
}

describe('a headless client on the wasm backend', () => {
  it('uploads bit-identical bytes for the same round, seed and data, whatever ran before', async () => {
    // Act: round 3 cold; then round 1 (which used to advance the client's generator) and round 3 again.
    const first = await uploadHash(3);
    await uploadHash(1);
    const again = await uploadHash(3);
    const otherSeed = await uploadHash(3, { seed: 1042 });
    const otherRound = await uploadHash(4);
    // Assert: equal when nothing that should matter changed; the seed and the round do matter.
    expect(again).toBe(first);
    expect(otherSeed).not.toBe(first);
    expect(otherRound).not.toBe(first);
  }, 60_000);

  it('uploads the same bytes when another client trains in between its steps', async () => {
    // Arrange: each client alone.
    const alone = [await uploadHash(2, { client: 0 }), await uploadHash(2, { client: 1 })];
    // Act: both at once, yielding to each other between steps as in-process simulated clients do.
    const yieldTurn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
    const together = await Promise.all([uploadHash(2, { client: 0, pause: yieldTurn }), uploadHash(2, { client: 1, pause: yieldTurn })]);
    // Assert
    expect(together).toEqual(alone);
    expect(alone[0]).not.toBe(alone[1]);
  }, 60_000);

  it('replays the noise of a Gaussian-noise attacker', async () => {
    // Act
    const behaviour: AdversarialBehaviour = { kind: 'gaussian-noise', sigma: 1 };
    const hashes = [await uploadHash(2, { behaviour }), await uploadHash(2, { behaviour })];
    // Assert
    expect(hashes[1]).toBe(hashes[0]);
    expect(hashes[0]).not.toBe(await uploadHash(2));
  }, 60_000);
});

describe('roundSeed', () => {
  it('depends on the whole client seed and on the round, and on nothing else', () => {
    // Act
    const base = roundSeed(1001, 3);
    // Assert
    expect(roundSeed(1001, 3)).toBe(base);
    expect(roundSeed(1002, 3)).not.toBe(base);
    expect(roundSeed(1001, 4)).not.toBe(base);
    // Seeds 2^32 apart agree in their low 32 bits; the high half must still count.
    expect(roundSeed(1001 + 2 ** 32, 3)).not.toBe(base);
    expect(() => roundSeed(-1, 1)).toThrow(/clientSeed/);
  });
});
