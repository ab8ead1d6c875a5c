/**
 * Probing candidates as their uploads arrive: one request at a time, the candidates that queued
 * meanwhile sent together (one global per request), and every failure or dropped candidate resolved
 * to `undefined` so that the round probes it at its close.
 */
import { tensor } from '@chorus/fl-core';
import type { Parameters } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import type { ProbeOutcome } from '../model/evaluatorMessages.js';
import { ArrivalProbe } from './arrivalProbe.js';

const delta = (v: number): Parameters => [tensor('w', [1], new Float32Array([v]))];
const global: Parameters = [tensor('w', [1], new Float32Array([0]))];
const other: Parameters = [tensor('w', [1], new Float32Array([1]))];

/** A probe the test answers by hand: each request waits until `answer` or `fail` is called. */
function scriptedProbe() {
  const requests: { global: Parameters; values: number[]; answer: () => void; fail: () => void }[] = [];
  const probe = (g: Parameters, deltas: readonly Parameters[]): Promise<ProbeOutcome[]> =>
    new Promise((resolve, reject) => {
      requests.push({
        global: g,
        values: deltas.map((d) => d[0]!.values[0]!),
        answer: () => resolve(deltas.map((d) => ({ ok: true, probabilities: new Float32Array([g[0]!.values[0]! + d[0]!.values[0]!]) }))),
        fail: () => reject(new Error('evaluator exited')),
      });
    });
  return { requests, probe };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));
const value = (m: { outcome: ProbeOutcome } | undefined): number | null => (m?.outcome.ok ? m.outcome.probabilities[0]! : null);

describe('ArrivalProbe', () => {
  it('probes the first candidate at once and the ones that arrive meanwhile together, each with its own outcome', async () => {
    // Arrange
    const { requests, probe } = scriptedProbe();
    const arrival = new ArrivalProbe(probe, 2);
    // Act: three arrive while the first is probed; at most two per request.
    const a = arrival.measure('g', global, delta(1));
    const b = arrival.measure('g', global, delta(2));
    const c = arrival.measure('g', global, delta(3));
    const d = arrival.measure('g', global, delta(4));
    expect(requests.map((r) => r.values)).toEqual([[1]]);
    expect(arrival.queued).toBe(3);
    requests[0]!.answer();
    await flush();
    requests[1]!.answer();
    await flush();
    requests[2]!.answer();
    // Assert
    expect(requests.map((r) => r.values)).toEqual([[1], [2, 3], [4]]);
    expect((await Promise.all([a, b, c, d])).map(value)).toEqual([1, 2, 3, 4]);
    expect((await a)!.ms).toBeGreaterThanOrEqual(0);
  });

  it('never mixes candidates of two globals in one request', async () => {
    const { requests, probe } = scriptedProbe();
    const arrival = new ArrivalProbe(probe);
    const a = arrival.measure('g', global, delta(1));
    const b = arrival.measure('g', global, delta(2));
    const c = arrival.measure('h', other, delta(2));
    requests[0]!.answer();
    await flush();
    requests[1]!.answer();
    await flush();
    requests[2]!.answer();
    expect(requests.map((r) => [r.global[0]!.values[0], r.values])).toEqual([
      [0, [1]],
      [0, [2]],
      [1, [2]],
    ]);
    expect((await Promise.all([a, b, c])).map(value)).toEqual([1, 2, 3]);
  });

  it('resolves to undefined what a failed request carried and what a new attempt dropped, and goes on', async () => {
    // Arrange
    const { requests, probe } = scriptedProbe();
    const arrival = new ArrivalProbe(probe);
    const failed = arrival.measure('g', global, delta(1));
    const dropped = arrival.measure('g', global, delta(2));
    // Act
    arrival.clear();
    requests[0]!.fail();
    const later = arrival.measure('g', global, delta(5));
    await flush();
    requests[1]!.answer();
    // Assert
    expect(await failed).toBeUndefined();
    expect(await dropped).toBeUndefined();
    expect(value(await later)).toBe(5);
    expect(requests).toHaveLength(2);
  });
});
