import { splitChannelPrivacy, tensor } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import { splitRoundSchema, splitTaskSchema } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import { SPLIT_EDGE_GROUP, createSplitRoundHooks, edgeTensors, splitChannelMetrics, splitRoundSection, withEdge } from './splitRounds.js';
import type { SplitEdge } from './splitRounds.js';

/** Device groups around two edge tensors, in an order that interleaves them. */
const global = (): Tensor[] => [
  tensor('image/w', [2], new Float32Array([1, 2])),
  tensor('edge/a', [2, 1], new Float32Array([3, 4])),
  tensor('fusion/split_head/b', [1], new Float32Array([5])),
  tensor('edge/b', [1], new Float32Array([6])),
];

/** What the edge would send back: the global's edge tensors, name for name, with new values. */
const trainedEdge = (): Tensor[] => [tensor('edge/b', [1], new Float32Array([60])), tensor('edge/a', [2, 1], new Float32Array([30, 40]))];

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return null;
}

describe('edgeTensors', () => {
  it('picks the edge group only, in the global’s order', () => {
    // Act
    const edge = edgeTensors(global());
    // Assert
    expect(edge.map((t) => t.name)).toEqual(['edge/a', 'edge/b']);
    expect(SPLIT_EDGE_GROUP).toBe('edge');
  });
});

describe('withEdge', () => {
  it('replaces exactly the edge tensors, keeps the global’s order, and leaves the device tensors untouched', () => {
    // Arrange
    const parameters = global();
    const edge = trainedEdge();
    // Act
    const out = withEdge(parameters, edge);
    // Assert
    expect(out.map((t) => t.name)).toEqual(['image/w', 'edge/a', 'fusion/split_head/b', 'edge/b']);
    expect(out[0]).toBe(parameters[0]);
    expect(out[2]).toBe(parameters[2]);
    expect(out[1]).toBe(edge[1]);
    expect(out[3]).toBe(edge[0]);
    // The input is not mutated.
    expect(parameters.map((t) => Array.from(t.values))).toEqual([[1, 2], [3, 4], [5], [6]]);
  });

  it.each([
    ['an edge tensor missing', [tensor('edge/a', [2, 1], new Float32Array(2))]],
    ['an extra edge tensor', [...trainedEdge(), tensor('edge/c', [1], new Float32Array(1))]],
    ['an edge tensor of another shape', [tensor('edge/a', [1, 2], new Float32Array(2)), tensor('edge/b', [1], new Float32Array(1))]],
    ['an edge tensor of another rank', [tensor('edge/a', [2], new Float32Array(2)), tensor('edge/b', [1], new Float32Array(1))]],
  ])('refuses %s as an evaluator error', (_, edge) => {
    // Act
    const err = thrown(() => withEdge(global(), edge));
    // Assert
    expect(err).toBeInstanceOf(CoordinatorError);
    expect(isCoordinatorError(err, 'EVALUATOR_ERROR')).toBe(true);
  });

  it('names the tensor it lacks', () => {
    // Act
    const err = thrown(() => withEdge(global(), [tensor('edge/a', [2, 1], new Float32Array(2))]));
    // Assert
    expect((err as Error).message).toContain("'edge/b'");
  });
});

describe('splitRoundSection', () => {
  it('copies exactly the client-side fields of the task’s split section', () => {
    // Arrange
    const split = splitTaskSchema.parse({
      fusedDim: 16,
      numHeads: 4,
      localHeadWeight: 0.25,
      activations: { clipNorm: 2, noiseMultiplier: 0.5, encoding: 'fp16' },
      gradients: { clipNorm: 0.5, noiseMultiplier: 1, encoding: 'fp32' },
      returnEncoding: 'fp16',
      stepTimeoutMs: 1234,
      maxPendingSteps: 7,
    });
    // Act
    const section = splitRoundSection(split);
    // Assert: the edge's own settings (blocks, heads, learning rate, queue, δ) stay on the server.
    expect(section).toEqual({
      fusedDim: 16,
      localHeadWeight: 0.25,
      activations: { clipNorm: 2, noiseMultiplier: 0.5, encoding: 'fp16' },
      gradients: { clipNorm: 0.5, noiseMultiplier: 1, encoding: 'fp32' },
      returnEncoding: 'fp16',
      stepTimeoutMs: 1234,
    });
    expect(splitRoundSchema.safeParse(section).success).toBe(true);
    expect(section.activations).not.toBe(split.activations);
    expect(section.gradients).not.toBe(split.gradients);
  });
});

/** A SplitEdge that records its calls and answers `weights()` with what the test set. */
class FakeEdge implements SplitEdge {
  readonly calls: (['open', string, string[]] | ['close', string] | ['weights'])[] = [];
  edge: Parameters = [];
  next: Parameters = trainedEdge();
  open(roundId: string, edge: Parameters): void {
    this.edge = edge;
    this.calls.push(['open', roundId, edge.map((t) => t.name)]);
  }
  close(roundId: string): void {
    this.calls.push(['close', roundId]);
  }
  weights(): Promise<Parameters> {
    this.calls.push(['weights']);
    return Promise.resolve(this.next);
  }
}

describe('createSplitRoundHooks', () => {
  it('opens the edge with the global’s edge tensors, closes it, and finalizes with its weights', async () => {
    // Arrange
    const edge = new FakeEdge();
    const hooks = createSplitRoundHooks(splitTaskSchema.parse({ fusedDim: 8, numHeads: 2 }), edge, 1);
    const start = global();
    const aggregated = global().map((t) =>
      t.name.startsWith('edge/')
        ? t
        : tensor(
            t.name,
            t.shape,
            t.values.map((v) => v + 1),
          ),
    );
    // Act
    hooks.attemptOpened('t.r1.a1', start);
    hooks.attemptClosed('t.r1.a1');
    const next = await hooks.finalize(1, aggregated);
    // Assert
    expect(hooks.serverGroups).toEqual(['edge']);
    expect(hooks.section.fusedDim).toBe(8);
    expect(edge.calls).toEqual([['open', 't.r1.a1', ['edge/a', 'edge/b']], ['close', 't.r1.a1'], ['weights']]);
    expect(edge.edge[0]).toBe(start[1]);
    expect(edge.edge[1]).toBe(start[3]);
    expect(next.map((t) => [t.name, Array.from(t.values)])).toEqual([
      ['image/w', [2, 3]],
      ['edge/a', [30, 40]],
      ['fusion/split_head/b', [6]],
      ['edge/b', [60]],
    ]);
  });

  it('fails finalize when the edge’s weights do not fit the global', async () => {
    // Arrange
    const edge = new FakeEdge();
    edge.next = [tensor('edge/a', [2, 1], new Float32Array(2))];
    const hooks = createSplitRoundHooks(splitTaskSchema.parse({}), edge, 1);
    // Act / Assert
    await expect(hooks.finalize(1, global())).rejects.toSatisfy((err: unknown) => isCoordinatorError(err, 'EVALUATOR_ERROR'));
  });
});

describe('the split interface accountant', () => {
  it('reports each direction’s ε per example after each round, composing the rounds and epochs, and none without noise', () => {
    // Arrange
    const noisy = splitTaskSchema.parse({
      activations: { clipNorm: 4, noiseMultiplier: 1, encoding: 'int8' },
      gradients: { clipNorm: 1, noiseMultiplier: 1, encoding: 'int8' },
    });
    const mixed = splitTaskSchema.parse({ activations: { clipNorm: 4, noiseMultiplier: 2, encoding: 'int8' } });
    // Act
    const afterOne = splitChannelMetrics(noisy, 2, 1);
    const afterFive = splitChannelMetrics(noisy, 2, 5);
    const onlyActivations = splitChannelMetrics(mixed, 2, 5);
    // Assert: 2 epochs × 5 rounds releases of each direction; both directions compose.
    expect(afterFive['split.epsilonActivations']).toBeCloseTo(splitChannelPrivacy({ noiseMultiplier: 1, releasesPerExample: 10, delta: 1e-5 }).epsilon, 10);
    expect(afterFive['split.epsilon']).toBeCloseTo(splitChannelPrivacy({ noiseMultiplier: 1, releasesPerExample: 20, delta: 1e-5 }).epsilon, 10);
    expect(afterFive['split.epsilonActivations']!).toBeGreaterThan(afterOne['split.epsilonActivations']!);
    expect(afterFive['split.epsilon']!).toBeGreaterThan(afterFive['split.epsilonGradients']!);
    expect(afterFive['split.delta']).toBe(1e-5);
    expect(Object.keys(onlyActivations).sort()).toEqual(['split.delta', 'split.epsilonActivations']);
    expect(splitChannelMetrics(splitTaskSchema.parse({}), 1, 3)).toEqual({ 'split.delta': 1e-5 });
  });

  it('stores the accountant’s figures with the round through the hooks', () => {
    const hooks = createSplitRoundHooks(
      splitTaskSchema.parse({ activations: { clipNorm: 4, noiseMultiplier: 1, encoding: 'int8' } }),
      {
        open: () => undefined,
        close: () => undefined,
        weights: async () => [],
      },
      3,
    );
    expect(hooks.roundMetrics(2)).toEqual(
      splitChannelMetrics(splitTaskSchema.parse({ activations: { clipNorm: 4, noiseMultiplier: 1, encoding: 'int8' } }), 3, 2),
    );
  });
});
