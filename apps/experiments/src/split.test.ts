import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SECTIONS } from './cli.js';
import { createRunCache } from './runCache.js';
import { SPLIT_VERIFY, splitRuns } from './split.js';
import { SPLIT_QUICK, splitCacheKey, splitPlan } from './splitGrid.js';
import type { DeviceTiming, Scored, SplitCell, SplitRun } from './splitGrid.js';
import type { SplitSteps } from './split.js';

const settings = SPLIT_QUICK;
const timing: DeviceTiming = {
  numExamples: 32,
  examplesSeen: 32,
  adaptersRoundMs: [1],
  adaptersTrainMs: [1],
  splitRoundMs: [2],
  splitStepDeviceMs: [1],
  splitWaitMs: [1],
};

/** Fake runs: validation accuracy peaks at lr 0.01 for adapter-only and at 0.003 otherwise; every call is logged. */
function fakeSteps(calls: string[]): SplitSteps {
  return {
    run: (cell: SplitCell, scored: Scored): Promise<SplitRun> => {
      calls.push(`${scored} ${cell.method} ${cell.learningRate} ${cell.seed} ${cell.variant?.noiseMultiplier ?? '-'} ${cell.variant?.encoding ?? '-'}`);
      const best = cell.method === 'adapters' ? 0.01 : 0.003;
      return Promise.resolve({
        ...cell,
        completedRounds: settings.rounds,
        numExamples: 128,
        accuracy: cell.learningRate === best ? 0.8 : 0.5,
        loss: 1,
        traffic: null,
        modalityHolders: {},
        durationMs: 10,
      });
    },
    timing: () => {
      calls.push('timing');
      return Promise.resolve(timing);
    },
  };
}

describe('splitRuns', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'split-runs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('tunes every method on validation first, runs the plan on test at the chosen rates, and reads every run back the second time', async () => {
    const calls: string[] = [];
    const ctx = { quick: true, seeds: [1, 2], log: (): void => undefined, cache: createRunCache(dir) };

    const first = await splitRuns(ctx, settings, [1, 2], fakeSteps(calls));

    const tuningRuns = 3 * settings.learningRates.length * settings.tuningSeeds.length;
    expect(calls.slice(0, tuningRuns).every((c) => c.startsWith('validation'))).toBe(true);
    expect(first.tuning.map((t) => [t.method, t.chosen.learningRate])).toEqual([
      ['split', 0.003],
      ['adapters', 0.01],
      ['centralized', 0.003],
    ]);
    expect(first.runs).toHaveLength(splitPlan(settings, [1, 2]).length);
    expect(first.runs.every((r) => r.learningRate === (r.method === 'adapters' ? 0.01 : 0.003))).toBe(true);
    expect([first.stored, first.total]).toEqual([0, tuningRuns + first.runs.length]);
    expect(readdirSync(dir)).toHaveLength(first.total);

    const again: string[] = [];
    const second = await splitRuns(ctx, settings, [1, 2], fakeSteps(again));

    // Only the timing is measured again: it is the result, not a stored run.
    expect(again).toEqual(['timing']);
    expect([second.stored, second.total]).toEqual([first.total, first.total]);
    expect(second.runs).toEqual(first.runs);
  });

  it('leaves the missing test runs of other shards to them and counts them', async () => {
    const calls: string[] = [];
    const ctx = { quick: false, seeds: [1], log: (): void => undefined, cache: createRunCache(dir), shard: { index: 1, count: 2 } };

    const r = await splitRuns(ctx, settings, [1], fakeSteps(calls));

    const planned = splitPlan(settings, [1]).length;
    expect(r.runs).toHaveLength(Math.floor(planned / 2));
    expect(r.skipped).toBe(planned - Math.floor(planned / 2));
  });
});

describe('split section entry', () => {
  it('is registered, so `--only split` and the default quick run (CI) run it', () => {
    const entry = SECTIONS.find((s) => s.id === 'split');

    expect(entry?.quickMinutes).toBeGreaterThan(0);
    expect(entry?.verify).toBe(SPLIT_VERIFY);
  });

  it('verifies only its own stored runs and retires those of another engine', () => {
    const key = splitCacheKey(settings, 'test', { method: 'split', seed: 1, learningRate: 0.003, variant: { noiseMultiplier: 0, encoding: 'fp32' } }) as {
      settings: Record<string, unknown>;
    };

    expect(SPLIT_VERIFY.owns(key)).toBe(true);
    expect(SPLIT_VERIFY.owns({ section: 'fedumm' })).toBe(false);
    expect(SPLIT_VERIFY.retired?.(key)).toBeNull();
    expect(SPLIT_VERIFY.retired?.({ ...key, settings: { ...key.settings, engine: 0 } })).toMatch(/engine 0/);
    expect(SPLIT_VERIFY.kindOf(key)).toBe('test split');
    expect(SPLIT_VERIFY.label(key)).toBe('z 0 fp32, lr 0.003, seed 1');
  });
});
