import { describe, expect, it } from 'vitest';
import { FEDAFD_QUICK } from './fedafd.js';
import { clientScore, clientsPerKindOf, fedAfdClientArgs, fedAfdTask, fedAvgBytesPerRound, roundsToTarget } from './fedafdRuns.js';
import type { FedAfdCell } from './fedafdRuns.js';

const cell: FedAfdCell = { method: 'fedafd', partition: 'non-iid', seed: 3, learningRate: 0.01, evaluate: true };

describe('clientScore', () => {
  it('averages classifier accuracy and retrieval mean R@1 / 100 over the kinds present', () => {
    // image 0.5, text 0.3, retrieval (10 + 30) / 200 = 0.2 → mean 1.0 / 3.
    const score = clientScore({
      'kind.image.accuracy': 0.5,
      'kind.text.accuracy': 0.3,
      'kind.image+text.i2tR1': 10,
      'kind.image+text.t2iR1': 30,
      'server.rsum': 99,
    });
    expect(score).toBeCloseTo(1 / 3, 12);
  });

  it('is NaN when no kind reported a score', () => {
    expect(clientScore({ 'server.rsum': 40, 'kind.image.clients': 1 })).toBeNaN();
  });
});

describe('roundsToTarget', () => {
  it('is the first 1-based round at or above the target', () => {
    expect(roundsToTarget([10, 20, 30, 25], 20)).toBe(2);
    expect(roundsToTarget([10, undefined, 30], 25)).toBe(3);
  });

  it('is null when never reached or the target is not finite', () => {
    expect(roundsToTarget([10, 20], 21)).toBeNull();
    expect(roundsToTarget([10, 20], Number.NaN)).toBeNull();
  });
});

describe('fedAvgBytesPerRound', () => {
  it('counts every client downloading and uploading its kind’s model', () => {
    // 2 × 100 + 1 × 50 parameters, both ways, 2 bytes each: (200 + 50) × 2 × 2 = 1000.
    expect(fedAvgBytesPerRound({ image: 2, text: 1 }, { image: 100, text: 50, 'image+text': 7 }, 2)).toBe(1000);
  });

  it('refuses a kind without a parameter count and a bad byte width', () => {
    expect(() => fedAvgBytesPerRound({ image: 1 }, {}, 2)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }) as Error);
    expect(() => fedAvgBytesPerRound({ image: 1 }, { image: 1 }, 0)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }) as Error);
  });

  it('reads the client count of each kind off a round’s metrics', () => {
    expect(clientsPerKindOf({ 'kind.image.clients': 2, 'kind.image+text.clients': 1, 'kind.image.accuracy': 0.4, bytesIn: 9 })).toEqual({
      image: 2,
      'image+text': 1,
    });
  });
});

describe('fedAfdTask and fedAfdClientArgs', () => {
  it('builds each method’s task through the coordinator schema with the same budget', () => {
    // Act
    const tasks = ['local', 'fedmd', 'fedafd', 'no-baa', 'no-gff', 'no-sed'].map((method) => fedAfdTask(FEDAFD_QUICK, { ...cell, method }));
    // Assert: the strategy and the one field each ablation changes; everything else equal.
    expect(tasks.map((t) => t.strategy.name)).toEqual(['local', 'fedmd', 'fedafd', 'fedafd', 'fedafd', 'fedafd']);
    expect(tasks[3]!.representation?.adversarialWeight).toBe(0);
    expect(tasks[4]!.strategy).toMatchObject({ fusion: false });
    expect(tasks[5]!.strategy).toMatchObject({ sed: false });
    for (const t of tasks) {
      expect([t.rounds, t.localEpochs, t.batchSize, t.learningRate, t.representation?.publicBatch]).toEqual([3, 1, 32, 0.01, 32]);
      expect(t.evaluation.testExamples).toBe(128);
    }
  });

  it('scores evaluation runs on the test examples and tuning runs on validation, and measures no server in tuning runs', () => {
    expect(fedAfdClientArgs(FEDAFD_QUICK, cell)).toEqual(expect.arrayContaining(['--fedafd-eval', 'test:0:128', '--eval-examples', '128', '--seed', '3']));
    expect(fedAfdClientArgs(FEDAFD_QUICK, { ...cell, partition: 'iid' })).toContain('--iid');
    const tuning = { ...cell, evaluate: false };
    expect(fedAfdClientArgs(FEDAFD_QUICK, tuning)).toEqual(expect.arrayContaining(['--fedafd-eval', 'test:1000:128']));
    expect(fedAfdClientArgs(FEDAFD_QUICK, tuning)).not.toContain('--iid');
    expect(fedAfdTask(FEDAFD_QUICK, tuning).evaluation.testExamples).toBe(0);
  });

  it('refuses an unknown method with a coded error', () => {
    expect(() => fedAfdTask(FEDAFD_QUICK, { ...cell, method: 'fedavg' })).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }) as Error);
  });
});
