import { createRepresentationStrategy, encodeUpdate, publicRepresentationTensors } from '@chorus/fl-core';
import type { FitResult, Parameters, Tensor } from '@chorus/fl-core';
import { ProtocolError } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { parseTask } from '../task/loadTask.js';
import { isRepresentationTask } from '@chorus/protocol';
import type { RepresentationTask } from '@chorus/protocol';
import { createRepresentationRounds, perKindMetrics, publicBatchIndices } from './representationRounds.js';
import type { DistillFn } from './representationRounds.js';

const B = 2;
const D = 2;

const parsed = parseTask({
  id: 'r',
  dataset: { name: 'digits', modalities: ['image', 'text'] },
  strategy: { name: 'fedafd' },
  representation: { dim: D, publicBatch: B, clientKinds: [{ kind: 'image-classifier', arch: 'cnn', share: 1 }] },
  rounds: 3,
  clientsPerRound: 2,
  minClients: 1,
  roundDeadlineMs: 1000,
  localEpochs: 1,
  batchSize: 4,
  learningRate: 0.01,
  maxUpdateBytes: 10_000,
  seed: 9,
});
if (!isRepresentationTask(parsed)) throw new Error('not a representation task');
const task: RepresentationTask = parsed;

const rep = (modality: string, values: number[]): Tensor => ({ name: `rep/${modality}`, shape: [B, D], values: Float32Array.from(values) });
const result = (clientId: string, numExamples: number, delta: Tensor[], metrics: Record<string, number>): FitResult => ({
  clientId,
  numExamples,
  delta,
  metrics,
});

// The global: one server weight and the public representations of the round's two samples (unit rows).
const global: Parameters = [
  { name: 'image/w', shape: [1], values: Float32Array.of(0.5) },
  ...publicRepresentationTensors({
    numSamples: B,
    dim: D,
    representations: { image: Float32Array.of(1, 0, 0, 1), text: Float32Array.of(1, 0, 0, 1) },
  }),
];

describe('representation rounds', () => {
  it('draw each round its own public batch, the same for the same seed and round', () => {
    // Act
    const first = publicBatchIndices(9, 1, 100, 8);
    // Assert
    expect(publicBatchIndices(9, 1, 100, 8)).toEqual(first);
    expect(new Set(first).size).toBe(8);
    expect(first.every((i) => i >= 0 && i < 100)).toBe(true);
    expect(publicBatchIndices(9, 2, 100, 8)).not.toEqual(first);
    expect(publicBatchIndices(10, 1, 100, 8)).not.toEqual(first);
  });

  it('average the reported metrics per client kind, weighted by examples', () => {
    // Arrange: two image-only clients (30 and 10 examples) and one image+text client.
    const results = [
      result('a', 30, [rep('image', [1, 0, 0, 1])], { accuracy: 0.5 }),
      result('b', 10, [rep('image', [1, 0, 0, 1])], { accuracy: 0.9 }),
      result('c', 5, [rep('image', [1, 0, 0, 1]), rep('text', [1, 0, 0, 1])], { rsum: 120 }),
    ];
    // Act
    const metrics = perKindMetrics(results);
    // Assert: (0.5·30 + 0.9·10) / 40 = 0.6.
    expect(metrics).toEqual({ 'kind.image.clients': 2, 'kind.image.accuracy': 0.6, 'kind.image+text.clients': 1, 'kind.image+text.rsum': 120 });
  });

  it("send the strategy's client coefficients and refuse a foreign modality with UPDATE_SHAPE", () => {
    // Arrange
    const hooks = createRepresentationRounds({
      task,
      strategy: createRepresentationStrategy({ name: 'fedafd' }),
      publicSize: 10,
      distill: async () => ({ parameters: [], metrics: {} }),
    });
    const bytes = encodeUpdate({ kind: 'representations', taskId: 'r', round: 1, clientId: 'a', encoding: 'fp32', tensors: [rep('text', [1, 0, 0, 1])] });
    // Act
    const section = hooks.section(1);
    const refusal = ((): unknown => {
      try {
        return hooks.validate(bytes, { serverRound: 1, clientId: 'a', modalities: ['image'] });
      } catch (err) {
        return err;
      }
    })();
    // Assert
    expect(section).toEqual({
      publicIndices: publicBatchIndices(9, 1, 10, B),
      dim: D,
      encoding: 'fp16',
      adversarialWeight: 0.5,
      fusion: true,
      localDistillationWeight: 0,
    });
    expect(refusal).toBeInstanceOf(ProtocolError);
    expect((refusal as ProtocolError).code).toBe('UPDATE_SHAPE');
    expect(hooks.validate(bytes, { serverRound: 1, clientId: 'a', modalities: ['text'] }).map((t) => t.name)).toEqual(['rep/text']);
  });

  it("distil the strategy's teachers into the next global and report each client's trust", async () => {
    // Arrange: two clients send the global's own image rows (echoes are excluded, so they are rotated a little).
    const calls: { serverRound: number; teachers: Record<string, Float32Array | undefined> }[] = [];
    const next: Parameters = [{ name: 'image/w', shape: [1], values: Float32Array.of(0.75) }];
    const distill: DistillFn = async (serverRound, _global, teachers) => {
      calls.push({ serverRound, teachers: { ...teachers } });
      return { parameters: next, metrics: { 'server.rsum': 42 } };
    };
    const hooks = createRepresentationRounds({ task, strategy: createRepresentationStrategy({ name: 'fedafd' }), publicSize: 10, distill });
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const results = [result('a', 10, [rep('image', [c, s, -s, c])], {}), result('b', 10, [rep('image', [c, -s, s, c])], {})];
    // Act
    const update = await hooks.serverUpdate(1, global, results, []);
    // Assert
    expect(calls).toHaveLength(1);
    expect(calls[0]!.serverRound).toBe(1);
    expect(Object.keys(calls[0]!.teachers)).toEqual(['image']);
    // The teacher is a convex combination of the two uploads per sample: where they agree (c) it is c; elsewhere between ±s.
    const teacher = calls[0]!.teachers['image']!;
    expect(teacher[0]).toBeCloseTo(c, 5);
    expect(teacher[3]).toBeCloseTo(c, 5);
    expect(Math.abs(teacher[1]!)).toBeLessThan(s);
    expect(update!.outcome.parameters).toEqual(next);
    expect(update!.outcome.trust!.map((t) => t.clientId)).toEqual(['a', 'b']);
    for (const t of update!.outcome.trust!) expect(t.trust).toBeGreaterThan(0.5);
    expect(update!.serverMetrics).toMatchObject({ 'server.rsum': 42, 'kind.image.clients': 2 });
    expect(update!.outcome.metrics['clients/image']).toBe(2);
  });

  it('gives a client whose representations contradict the global the lowest SED weight, hence the lowest trust', async () => {
    // Arrange: two clients near the global's rows; a third that swaps the samples (row 0 looks like sample 1 and back).
    const hooks = createRepresentationRounds({
      task,
      strategy: createRepresentationStrategy({ name: 'fedafd' }),
      publicSize: 10,
      distill: async () => ({ parameters: [], metrics: {} }),
    });
    const c = Math.cos(0.2);
    const s = Math.sin(0.2);
    const results = [
      result('a', 10, [rep('image', [c, s, -s, c])], {}),
      result('b', 10, [rep('image', [c, -s, s, c])], {}),
      result('swapped', 10, [rep('image', [0, 1, 1, 0])], {}),
    ];
    // Act
    const update = await hooks.serverUpdate(1, global, results, []);
    // Assert
    const trust = new Map(update!.outcome.trust!.map((t) => [t.clientId, t.trust]));
    expect(trust.get('swapped')!).toBeLessThan(Math.min(trust.get('a')!, trust.get('b')!));
    expect(update!.outcome.metrics['minWeight/image']).toBeLessThan(1 / 3);
  });
});
