/** A node's held uploads: what it keeps, what it passes on whole, and the partial sums it gives the leader. */
import { FedAvg, Probation, decodePartialFit, encodeUpdate, tensor } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { ParsedUpdate } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { encodeGlobal, encodeStrategyState, sha256HexSync } from '../engine/checkpoint.js';
import { isCoordinatorError } from '../errors.js';
import type { CheckpointRecord } from '../store/types.js';
import { clusterTask } from '../testing/clusterFixture.js';
import { HeldUpdates } from './heldUpdates.js';

const task = clusterTask({ strategy: { name: 'fedavg', exactSum: true } });
const global: Parameters = [tensor('image/w', [2], new Float32Array([1, 2])), tensor('text/w', [1], new Float32Array([0]))];
const bytes = encodeGlobal(task.id, 0, global);
const checkpoint: CheckpointRecord = { taskId: task.id, serverRound: 0, bytes, sha256: sha256HexSync(bytes), strategyState: null, createdAt: 1 };

/** A replica holding the initial model only (round 1's global), counting its syncs. */
function replica(stored: CheckpointRecord = checkpoint) {
  let syncs = 0;
  return {
    store: {
      getCheckpoint: (taskId: string, serverRound: number) => (taskId === task.id && serverRound === 0 ? stored : undefined),
      sync: async () => {
        syncs++;
      },
    },
    syncs: () => syncs,
  };
}

function upload(clientId: string, value: number, roundId = 'cluster.r1.a1', serverRound = 1): ParsedUpdate {
  const delta = [tensor('image/w', [2], new Float32Array([value, value]))];
  return {
    type: 'update',
    protocolVersion: PROTOCOL_VERSION,
    taskId: task.id,
    roundId,
    serverRound,
    numExamples: 2,
    metrics: {},
    update: encodeUpdate({ kind: 'delta', taskId: task.id, round: serverRound, clientId, encoding: 'fp32', tensors: delta }),
  };
}

const exact = () => new FedAvg({ exactSum: true });
const request = (clientIds: string[], roundId = 'cluster.r1.a1') => ({ taskId: task.id, roundId, serverRound: 1, globalHash: checkpoint.sha256, clientIds });

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (err) {
    return isCoordinatorError(err) ? err.code : String(err);
  }
}

describe('HeldUpdates', () => {
  it('keeps a valid upload and reports its size and norm, and gives the exact partial sum of the uploads asked for', async () => {
    const held = new HeldUpdates(task, exact(), replica().store);
    const facts = await held.take('a', upload('a', 3), ['image', 'text']);
    expect(facts?.byteLength).toBe(upload('a', 3).update.byteLength);
    expect(facts?.norm).toBeCloseTo(Math.hypot(3, 3), 12);
    await held.take('b', upload('b', 1), ['image', 'text']);
    const partial = decodePartialFit(await held.partial(request(['b', 'a'])), 1, global);
    expect(partial.entries.map((e) => e.clientId)).toEqual(['a', 'b']);
    expect(Array.from(partial.groups.get('image')!.sum.quotient(4))).toEqual([2, 2]);
    // Only what was asked for.
    expect(decodePartialFit(await held.partial(request(['b'])), 1, global).entries.map((e) => e.clientId)).toEqual(['b']);
  });

  it('passes on whole what it cannot judge: an invalid upload, a round whose global it lacks, a second upload of one client', async () => {
    const { store, syncs } = replica();
    const held = new HeldUpdates(task, exact(), store);
    const broken = { ...upload('a', 1), update: new Uint8Array([1, 2, 3]) };
    expect(await held.take('a', broken, ['image', 'text'])).toBeNull();
    // Round 2's global is not in this replica even after a sync.
    expect(await held.take('a', upload('a', 1, 'cluster.r2.a1', 2), ['image', 'text'])).toBeNull();
    expect(syncs()).toBe(1);
    expect(held.size).toBe(0);
    expect(await held.take('a', upload('a', 1), ['image', 'text'])).not.toBeNull();
    // A second upload would replace the first: it goes to the leader whole, which refuses it.
    expect(await held.take('a', upload('a', 5), ['image', 'text'])).toBeNull();
    const partial = decodePartialFit(await held.partial(request(['a'])), 1, global);
    expect(Array.from(partial.groups.get('image')!.sum.quotient(2))).toEqual([1, 1]);
  });

  it('refuses a partial sum it cannot give (CLUSTER_UNAVAILABLE), forgets refused uploads, and moves to another attempt only on the leader’s word', async () => {
    const held = new HeldUpdates(task, exact(), replica().store);
    await held.take('a', upload('a', 1), ['image', 'text']);
    held.settle('a', 'cluster.r1.a1', true);
    await held.take('b', upload('b', 1), ['image', 'text']);
    held.settle('b', 'cluster.r1.a1', false);
    expect(await refusal(held.partial(request(['a', 'b'])))).toBe('CLUSTER_UNAVAILABLE');
    expect(await refusal(held.partial({ ...request(['a']), globalHash: 'another' }))).toBe('CLUSTER_UNAVAILABLE');
    expect(await refusal(held.partial(request(['a'], 'cluster.r1.a2')))).toBe('CLUSTER_UNAVAILABLE');
    // An upload naming another attempt of the round (stale, or forged) is kept apart: refused, it displaces nothing.
    await held.take('x', upload('x', 9, 'cluster.r1.a7'), ['image', 'text']);
    expect(held.size).toBe(2);
    held.settle('x', 'cluster.r1.a7', false);
    expect(held.size).toBe(1);
    expect(decodePartialFit(await held.partial(request(['a'])), 1, global).entries.map((e) => e.clientId)).toEqual(['a']);
    // The next attempt's first accepted upload retires the last attempt's.
    await held.take('c', upload('c', 1, 'cluster.r1.a2'), ['image', 'text']);
    expect(held.size).toBe(2);
    held.settle('c', 'cluster.r1.a2', true);
    expect(held.size).toBe(1);
    expect(await refusal(held.partial(request(['a'])))).toBe('CLUSTER_UNAVAILABLE');
  });

  it('sums in the strategy state stored with the round’s global: probation weighs a settled client by its rounds', async () => {
    // 'a' contributed to 3 rounds before; with P = 4 it weighs 4 times a newcomer.
    const probation = new Probation(exact(), 4);
    for (let r = 1; r <= 3; r++)
      probation.aggregateFit(r, global, [{ clientId: 'a', numExamples: 1, delta: [tensor('image/w', [2], new Float32Array([0, 0]))] }], []);
    const stored = { ...checkpoint, strategyState: encodeStrategyState(task.id, 0, probation.exportState()) };
    const held = new HeldUpdates(task, new Probation(exact(), 4), replica(stored).store);
    await held.take('a', upload('a', 1), ['image', 'text']);
    await held.take('b', upload('b', 6), ['image', 'text']);
    const group = decodePartialFit(await held.partial(request(['a', 'b'])), 1, global).groups.get('image')!;
    // Counts of 2: 'a' weighs 2 · 4, 'b' 2 · 1; the mean is (8 · 1 + 2 · 6) / 10.
    expect(group.weight).toBe(10);
    expect(Array.from(group.sum.quotient(group.weight))).toEqual([2, 2]);
  });
});
