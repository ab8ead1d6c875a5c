/**
 * A tiny real run of the simulator (2 clients × 1 round of 12 examples on the wasm backend): the
 * split and adapter-only runs, their reproducibility, the bytes they count and the centralized
 * split model. A few seconds.
 */
import * as tf from '@tensorflow/tfjs';
import { SPLIT_EDGE_GROUP, groupOf } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import type { ModelFactory } from '@chorus/client';
import { createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import { encodeGlobal } from '@chorus/coordinator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsAt } from './split.js';
import { MAIN_INTERFACE, SPLIT_QUICK, splitTaskOf } from './splitGrid.js';
import type { SplitCell, SplitSettings } from './splitGrid.js';
import { evaluateGlobal, initialGlobal, simulateFederated, splitGlobal, timeLocalTraining, trainCentralizedSplit } from './splitTraining.js';
import type { SimulatedClient } from './splitTraining.js';

const settings: SplitSettings = { ...SPLIT_QUICK, numClients: 2, rounds: 1, totalExamples: 24, batchSize: 8, modalityKinds: 'image+text=0.5,image+audio=0.5' };
const splitCell: SplitCell = { method: 'split', seed: 3, learningRate: 0.01, variant: MAIN_INTERFACE };
const adapterCell: SplitCell = { method: 'adapters', seed: 3, learningRate: 0.01, variant: null };

let models: ModelFactory;
let clients: SimulatedClient[];

beforeAll(async () => {
  await useNodeBackend('wasm');
  models = createNodeDigitsFactory();
  clients = await clientsAt(settings, 3, models);
}, 120_000);
afterAll(() => models.dispose());

const valuesOf = (tensors: readonly Tensor[]): number[][] => tensors.map((t) => Array.from(t.values));

describe('the in-process split simulator', () => {
  it('trains device and edge in a split run, counts every payload, leaks no tensor and replays bit for bit', async () => {
    const task = splitTaskOf(settings, splitCell);
    const initial = splitGlobal(await initialGlobal(task, models));
    const before = tf.memory().numTensors;

    const first = await simulateFederated({ task, clients, models });
    const second = await simulateFederated({ task, clients, models });

    expect(tf.memory().numTensors).toBe(before);
    expect(first.completedRounds).toBe(1);
    expect(valuesOf(second.global)).toEqual(valuesOf(first.global));
    const after = splitGlobal(first.global);
    expect(after.device.map((t) => t.name)).toEqual(initial.device.map((t) => t.name));
    expect(after.edge.map((t) => t.name)).toEqual(initial.edge.map((t) => t.name));
    expect(after.edge.every((t) => groupOf(t.name) === SPLIT_EDGE_GROUP)).toBe(true);
    expect(valuesOf(after.edge)).not.toEqual(valuesOf(initial.edge));
    const head = (ts: Tensor[]): number[][] => valuesOf(ts.filter((t) => t.name.startsWith('fusion/split_head/')));
    expect(head(after.device)).not.toEqual(head(initial.device));
    const figures = first.rounds[0]!;
    expect(figures.map((f) => f.clientId)).toEqual(clients.map((c) => c.clientId));
    for (const f of figures) {
      expect(f.numSteps).toBe(Math.ceil(f.numExamples / settings.batchSize));
      expect(f.stepBytesUp).toBeGreaterThan(0);
      expect(f.stepBytesDown).toBeGreaterThan(0);
      expect(f.downloadBytes).toBe(encodeGlobal(task.id, 0, [...initial.device, ...initial.edge]).byteLength);
      expect(f.downloadDeviceBytes).toBe(encodeGlobal(task.id, 0, initial.device).byteLength);
      expect(f.deviceMs).toBeGreaterThan(0);
    }
    expect(second.rounds[0]!.map((f) => [f.stepBytesUp, f.stepBytesDown, f.uploadBytes])).toEqual(
      figures.map((f) => [f.stepBytesUp, f.stepBytesDown, f.uploadBytes]),
    );
  });

  it('compresses the split steps with the interface’s encoding', async () => {
    const fp32 = await simulateFederated({ task: splitTaskOf(settings, splitCell), clients, models });
    const int8 = await simulateFederated({ task: splitTaskOf(settings, { ...splitCell, variant: { noiseMultiplier: 0, encoding: 'int8' } }), clients, models });

    const up = (r: typeof fp32): number => r.rounds[0]!.reduce((s, f) => s + f.stepBytesUp, 0);
    expect(up(int8) / up(fp32)).toBeGreaterThan(0.2);
    expect(up(int8) / up(fp32)).toBeLessThan(0.4);
  });

  it('runs adapter-only FedUMM through the runtime’s weight round, with no split step, times its training alone, and scores both kinds of model', async () => {
    const task = splitTaskOf(settings, adapterCell);
    const initial = await initialGlobal(task, models);

    const run = await simulateFederated({ task, clients, models });
    const adapters = await evaluateGlobal(task, run.global, clients[0]!.dataset, models);
    const split = await simulateFederated({ task: splitTaskOf(settings, splitCell), clients, models });
    const splitScore = await evaluateGlobal(splitTaskOf(settings, splitCell), split.global, clients[0]!.dataset, models);

    const before = tf.memory().numTensors;
    expect(await timeLocalTraining(task, clients[0]!, models)).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    await expect(timeLocalTraining(splitTaskOf(settings, splitCell), clients[0]!, models)).rejects.toThrow(/is a split task/);
    expect(run.global.map((t) => t.name)).toEqual(initial.map((t) => t.name));
    expect(run.global.some((t) => groupOf(t.name) === SPLIT_EDGE_GROUP)).toBe(false);
    expect(run.rounds[0]!.every((f) => f.stepBytesUp === 0 && f.stepBytesDown === 0 && f.downloadDeviceBytes === f.downloadBytes)).toBe(true);
    for (const s of [adapters, splitScore]) {
      expect(s.accuracy).toBeGreaterThanOrEqual(0);
      expect(s.accuracy).toBeLessThanOrEqual(1);
      expect(Number.isFinite(s.loss)).toBe(true);
    }
  });

  it('trains one centralized split model on the pooled data for the epoch budget, reproducibly', async () => {
    const task = splitTaskOf(settings, { ...splitCell, method: 'centralized', variant: null });
    const initial = await initialGlobal(task, models);
    const datasets = clients.map((c) => c.dataset);

    const first = await trainCentralizedSplit({ task, datasets, models, epochs: 2, seed: 3 });
    const second = await trainCentralizedSplit({ task, datasets, models, epochs: 2, seed: 3 });

    const total = datasets.reduce((n, d) => n + d.numExamples, 0);
    expect(first.numSteps).toBe(2 * Math.ceil(total / settings.batchSize));
    expect(first.global.map((t) => t.name)).toEqual(initial.map((t) => t.name));
    expect(valuesOf(second.global)).toEqual(valuesOf(first.global));
    expect(valuesOf(first.global)).not.toEqual(valuesOf(initial));
  });
});
