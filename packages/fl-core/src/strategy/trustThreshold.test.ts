import { describe, expect, it } from 'vitest';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { FedAvg } from './fedAvg.js';
import { TrustThreshold } from './trustThreshold.js';
import type { FitResult } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const values = (params: Parameters) => Object.fromEntries(params.map((p) => [p.name, Array.from(p.values)]));
const fit = (clientId: string, ...delta: number[]): FitResult => ({ clientId, numExamples: 1, delta: [t('image/w', ...delta)] });

const global = [t('image/w', 0, 0)];

describe('TrustThreshold', () => {
  it('aggregates only results at or above minTrust and reports the rest as UNTRUSTED', () => {
    const trust = new Map([
      ['a', 0.9],
      ['b', 0.5],
      ['c', 0.1],
    ]);
    const strategy = new TrustThreshold(new FedAvg(), 0.5, (id) => trust.get(id));

    const out = strategy.aggregateFit(1, global, [fit('a', 1, 1), fit('b', 3, 3), fit('c', 100, 100), fit('d', -50, -50)], [])!;

    expect(strategy.name).toBe('mintrust(fedavg)');
    expect(values(out.parameters)).toEqual({ 'image/w': [2, 2] });
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual([
      ['c', 'UNTRUSTED'],
      ['d', 'UNTRUSTED'],
    ]);
    expect(out.metrics).toMatchObject({ numBelowMinTrust: 2 });
  });

  it('produces no model when every result is below minTrust', () => {
    const strategy = new TrustThreshold(new FedAvg(), 0.8, () => 0.2);
    expect(strategy.aggregateFit(1, global, [fit('a', 1, 1)], [])).toBeNull();
  });

  it('keeps everyone with minTrust 0 and leaves results untouched', () => {
    const result = fit('a', 4, 2);
    const strategy = new TrustThreshold(new FedAvg(), 0, () => undefined);

    const out = strategy.aggregateFit(1, global, [result], [])!;

    expect(values(out.parameters)).toEqual({ 'image/w': [4, 2] });
    expect(out.metrics).toMatchObject({ numBelowMinTrust: 0 });
    expect(Array.from(result.delta[0]!.values)).toEqual([4, 2]);
  });

  it('refuses a minTrust outside [0, 1]', () => {
    expect(() => new TrustThreshold(new FedAvg(), 1.5, () => 1)).toThrowError(/AGG_BAD_CONFIG/);
    expect(() => new TrustThreshold(new FedAvg(), Number.NaN, () => 1)).toThrowError(/AGG_BAD_CONFIG/);
  });
});
