import { FedAvg, isFlCoreError, tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { createGroupMeanAggregator } from './aggregator.js';
import type { Aggregator } from './aggregator.js';

const global = [tensor('image/w', [2], new Float32Array([1, 1])), tensor('text/w', [1], new Float32Array([10])), tensor('fusion/b', [1], new Float32Array([0]))];

describe('createGroupMeanAggregator', () => {
  it('averages each group over the clients that sent it, weighted by examples, and keeps unsent groups', () => {
    // Arrange: image from both (weights 1 and 3), fusion from the first only, text from nobody.
    const agg = createGroupMeanAggregator();
    const results = [
      { clientId: 'a', numExamples: 1, delta: [tensor('image/w', [2], new Float32Array([4, 0])), tensor('fusion/b', [1], new Float32Array([2]))] },
      { clientId: 'b', numExamples: 3, delta: [tensor('image/w', [2], new Float32Array([0, 4]))] },
    ];
    // Act
    const out = agg.aggregateFit(1, global, results, []);
    // Assert: image = [1,1] + [4·¼, 4·¾] = [2, 4]; fusion = 0 + 2; text unchanged.
    expect(out!.parameters.map((t) => [t.name, [...t.values]])).toEqual([
      ['image/w', [2, 4]],
      ['text/w', [10]],
      ['fusion/b', [2]],
    ]);
    expect(out!.metrics).toEqual({ numResults: 2, groupsUpdated: 2 });
    expect([...global[0]!.values]).toEqual([1, 1]);
  });

  it('returns no model when nothing usable arrived', () => {
    expect(createGroupMeanAggregator().aggregateFit(1, global, [], [{ clientId: 'a', code: 'TIMEOUT' }])).toBeNull();
  });

  it('round-trips its state and refuses a foreign one', () => {
    // Arrange
    const a = createGroupMeanAggregator();
    a.aggregateFit(5, global, [{ clientId: 'a', numExamples: 1, delta: [tensor('fusion/b', [1], new Float32Array([1]))] }], []);
    const b = createGroupMeanAggregator();
    // Act
    b.importState(a.exportState());
    // Assert
    expect(b.exportState()).toEqual(a.exportState());
    let caught: unknown;
    try {
      b.importState({ json: { strategy: 'fedadam' }, tensors: [] });
    } catch (err) {
      caught = err;
    }
    expect(isFlCoreError(caught, 'AGG_BAD_STATE')).toBe(true);
    expect(b.exportState()).toEqual(a.exportState());
  });
});

describe('the Aggregator seam', () => {
  it('takes an fl-core strategy unchanged and agrees with the built-in mean', async () => {
    // Arrange: the one line that swaps in a strategy.
    const strategy: Aggregator = new FedAvg();
    const results = [
      { clientId: 'a', numExamples: 1, delta: [tensor('image/w', [2], new Float32Array([4, 0]))] },
      { clientId: 'b', numExamples: 3, delta: [tensor('image/w', [2], new Float32Array([0, 4]))] },
    ];
    // Act
    const fromStrategy = await strategy.aggregateFit(1, global, results, []);
    const builtIn = createGroupMeanAggregator().aggregateFit(1, global, results, []);
    // Assert
    expect(fromStrategy!.parameters.map((t) => [t.name, [...t.values]])).toEqual(builtIn!.parameters.map((t) => [t.name, [...t.values]]));
    expect(strategy.exportState().json.strategy).toBe('fedavg');
  });
});
