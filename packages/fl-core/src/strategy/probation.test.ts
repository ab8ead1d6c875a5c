import { describe, expect, it } from 'vitest';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { FedAvg } from './fedAvg.js';
import { Probation, probationFactor } from './probation.js';
import type { FitResult } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const values = (params: Parameters) => Array.from(params[0]!.values);
const fit = (clientId: string, ...delta: number[]): FitResult => ({ clientId, numExamples: 1, delta: [t('image/w', ...delta)] });
const global = [t('image/w', 0)];

describe('probationFactor', () => {
  it('grows by 1/P per contributed round up to 1, and is 1 with probation off', () => {
    expect([0, 1, 2, 3, 9].map((n) => probationFactor(n, 4))).toEqual([0.25, 0.5, 0.75, 1, 1]);
    expect(probationFactor(0, 0)).toBe(1);
    expect(probationFactor(0, 1)).toBe(1);
  });
});

describe('Probation', () => {
  it('weights a newcomer by 1/P against a settled client, and lets it earn weight over rounds', () => {
    // Arrange: 'old' contributes alone for 3 rounds (P = 4), then 'new' joins with the opposite update.
    const strategy = new Probation(new FedAvg(), 4);
    for (let r = 1; r <= 3; r++) strategy.aggregateFit(r, global, [fit('old', 1)], []);
    // Act
    const first = strategy.aggregateFit(4, global, [fit('old', 1), fit('new', -1)], [])!;
    const second = strategy.aggregateFit(5, global, [fit('old', 1), fit('new', -1)], [])!;
    // Assert: (1·1 + 0.25·(−1)) / 1.25 = 0.6, then (1 − 0.5) / 1.5 = 1/3.
    expect(strategy.name).toBe('probation(fedavg)');
    expect(values(first.parameters)[0]).toBeCloseTo(0.6, 6);
    expect(values(second.parameters)[0]).toBeCloseTo(1 / 3, 6);
    expect(first.metrics).toMatchObject({ numOnProbation: 1, meanProbationFactor: 0.625 });
    expect(strategy.contributions()).toEqual(
      new Map([
        ['old', 5],
        ['new', 2],
      ]),
    );
  });

  it('counts nothing for a round without a model or a rejected result, and never mutates its input', () => {
    const strategy = new Probation(new FedAvg(), 3);
    const bad: FitResult = { clientId: 'nan', numExamples: 1, delta: [t('image/w', Number.NaN)] };
    const good = fit('a', 2);
    expect(strategy.aggregateFit(1, global, [bad], [])).toBeNull();
    strategy.aggregateFit(2, global, [good, bad], []);
    expect(strategy.contributions()).toEqual(new Map([['a', 1]]));
    expect(good.numExamples).toBe(1);
  });

  it('round-trips its counts through exportState and refuses a malformed state, changing nothing', () => {
    // Arrange
    const a = new Probation(new FedAvg(), 5);
    a.aggregateFit(1, global, [fit('x', 1), fit('y', 1)], []);
    const state = a.exportState();
    const b = new Probation(new FedAvg(), 5);
    // Act
    b.importState(JSON.parse(JSON.stringify({ json: state.json, tensors: [] })) as typeof state);
    // Assert
    expect(b.contributions()).toEqual(a.contributions());
    expect(state.json.extra).toEqual({ contributed: { x: 1, y: 1 } });
    // A state exported before the counts were an object ([clientId, rounds] pairs) is read too.
    const pairs = new Probation(new FedAvg(), 5);
    pairs.importState({ ...state, json: { ...state.json, extra: { contributed: [['x', 3]] } } });
    expect(pairs.contributions()).toEqual(new Map([['x', 3]]));
    for (const contributed of [[['x', -1]], { x: -1 }, { x: 1.5 }, 'x', null]) {
      const broken = { ...state, json: { ...state.json, extra: { contributed } } };
      expect(() => b.importState(broken)).toThrowError(/AGG_BAD_STATE/);
    }
    expect(b.contributions()).toEqual(a.contributions());
    // An id that names an object's prototype is an ordinary key.
    const proto = new Probation(new FedAvg(), 5);
    proto.aggregateFit(1, global, [fit('__proto__', 1)], []);
    const reread = new Probation(new FedAvg(), 5);
    reread.importState(JSON.parse(JSON.stringify({ json: proto.exportState().json, tensors: [] })) as typeof state);
    expect(reread.contributions()).toEqual(new Map([['__proto__', 1]]));
    expect(() => new Probation(new FedAvg(), 1.5)).toThrowError(/AGG_BAD_CONFIG/);
  });
});
