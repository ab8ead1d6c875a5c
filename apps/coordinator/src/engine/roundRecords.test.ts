import { tensor } from '@chorus/fl-core';
import { roundStartSchema } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { parseTask } from '../task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import type { AttemptState } from './engineState.js';
import { roundIdOf, roundStartPayload, type GlobalModel } from './roundRecords.js';

function makeTask(model: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image', 'text'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4, ...model },
    strategy: { name: 'fedavg' },
    rounds: 2,
    clientsPerRound: 2,
    minClients: 2,
    roundDeadlineMs: 10_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    seed: 5,
  });
}

// Only the fields roundStartPayload reads.
const attempt = { serverRound: 1, attempt: 1, roundId: 'demo.r1.a1', deadlineAt: 1000 } as AttemptState;
const global: GlobalModel = { tensors: [tensor('image/w', [1], new Float32Array([1]))], bytes: new Uint8Array([1, 2, 3]), sha256: '0'.repeat(64) };

describe('roundStartPayload', () => {
  it("carries the task's L_modal variant and L_intp weight to every client, in a payload the protocol accepts", () => {
    // Arrange
    const chosen = makeTask({ modalLoss: 'distill', interpretabilityWeight: 0.05, modalWeight: 0.2 });
    const defaults = makeTask();
    // Act
    const sent = roundStartSchema.parse(roundStartPayload(chosen, attempt, { proximalMu: 0.01 }, global));
    const plain = roundStartSchema.parse(roundStartPayload(defaults, attempt, {}, global));
    // Assert
    expect(sent.config).toMatchObject({ modalLoss: 'distill', interpretabilityWeight: 0.05, modalWeight: 0.2, strategy: { proximalMu: 0.01 } });
    expect(plain.config).toMatchObject({ modalLoss: 'js', interpretabilityWeight: 0, modalWeight: 0.1 });
  });
});

describe('roundIdOf', () => {
  it('keeps run 1 ids as they were, and makes later runs’ ids distinct from every run of every task', () => {
    const ids = [roundIdOf('x', 1, 1, 1), roundIdOf('x', 2, 1, 1), roundIdOf('x.run2', 1, 1, 1), roundIdOf('x', 12, 1, 1), roundIdOf('x', 1, 21, 1)];

    expect(ids.slice(0, 2)).toEqual(['x.r1.a1', 'x:run2.r1.a1']);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(roundStartSchema.shape.roundId.safeParse(id).success, id).toBe(true);
  });
});
