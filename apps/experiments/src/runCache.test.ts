import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  belongsToOtherShard,
  cacheFileName,
  cachedCell,
  cachedRun,
  canonicalJson,
  createRunCache,
  decodeNonFinite,
  encodeNonFinite,
  PROBE_ENGINE,
  probeKey,
  probeRetirement,
  readBackCounter,
  readBackNote,
  readsServerProbe,
  settingsKey,
} from './runCache.js';
import { experimentTask } from './tasks.js';

describe('run cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-run-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names a key by its content, whatever the order of its fields', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
    expect(cacheFileName('robustness', { a: 1, b: 2 })).toBe(cacheFileName('robustness', { b: 2, a: 1 }));
    expect(cacheFileName('robustness', { a: 1, b: 2 })).not.toBe(cacheFileName('robustness', { a: 1, b: 3 }));
    expect(cacheFileName('robustness', { a: 1 })).toMatch(/^robustness-[0-9a-f]{16}\.json$/);
    expect(() => cacheFileName('../x', {})).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
  });

  it('returns what was put under the same key, and nothing for another key', () => {
    const cache = createRunCache(dir);
    const key = { cell: { aggregator: 'median', seed: 2 } };
    expect(cache.get('robustness', key)).toBeNull();

    cache.put('robustness', key, { finalAccuracy: 0.75 });

    expect(cache.get('robustness', { cell: { seed: 2, aggregator: 'median' } })).toEqual({ finalAccuracy: 0.75 });
    expect(cache.get('robustness', { cell: { aggregator: 'median', seed: 3 } })).toBeNull();
    expect(readdirSync(dir)).toEqual([cacheFileName('robustness', key)]);
  });

  it('reports a corrupt file, or one holding another key, and treats it as missing', () => {
    const warnings: string[] = [];
    const cache = createRunCache(dir, { warn: (l) => warnings.push(l) });
    const key = { cell: 1 };
    const file = join(dir, cacheFileName('robustness', key));
    writeFileSync(file, '{"version":1,"key":{"cell":1},"value":');
    expect(cache.get('robustness', key)).toBeNull();
    // A file renamed or copied onto another cell's name must not be taken for that cell.
    writeFileSync(file, JSON.stringify({ version: 1, key: { cell: 2 }, value: { finalAccuracy: 1 } }));
    expect(cache.get('robustness', key)).toBeNull();
    writeFileSync(file, JSON.stringify([1, 2]));
    expect(cache.get('robustness', key)).toBeNull();

    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toContain('not JSON');
    expect(warnings[1]).toContain('another key');
    expect(warnings[2]).toContain('not a run file');
  });

  it('with reading off (--fresh) misses every key but still writes, replacing the stored run', () => {
    const key = { cell: 1 };
    createRunCache(dir).put('robustness', key, { v: 1 });
    const fresh = createRunCache(dir, { read: false });

    expect(fresh.get('robustness', key)).toBeNull();
    fresh.put('robustness', key, { v: 2 });

    expect(createRunCache(dir).get('robustness', key)).toEqual({ v: 2 });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps nothing without a folder', () => {
    const cache = createRunCache(null);
    cache.put('robustness', { a: 1 }, { v: 1 });
    expect(cache.get('robustness', { a: 1 })).toBeNull();
  });

  it('keeps NaN and infinities through a stored run, and stores only what `keep` accepts', async () => {
    const value = { accuracy: 0.5, ec: Number.NaN, rounds: [0.1, Number.POSITIVE_INFINITY, null], nested: { low: Number.NEGATIVE_INFINITY } };
    expect(JSON.stringify(encodeNonFinite(value))).not.toContain('null,null');
    expect(decodeNonFinite(JSON.parse(JSON.stringify(encodeNonFinite(value))))).toEqual(value);

    const cache = createRunCache(dir);
    let calls = 0;
    const compute = async (): Promise<typeof value> => {
      calls += 1;
      return value;
    };
    expect(await cachedRun(cache, 'fedmmx', { seed: 1 }, compute)).toEqual({ value, stored: false });
    const again = await cachedRun(cache, 'fedmmx', { seed: 1 }, compute);
    expect(again.stored).toBe(true);
    expect(Number.isNaN(again.value.ec)).toBe(true);
    expect(again.value).toEqual(value);
    expect(calls).toBe(1);

    // A value `keep` refuses (an unfinished run) is returned but not stored, so it runs again next time.
    await cachedRun(cache, 'fedmmx', { seed: 2 }, compute, () => false);
    await cachedRun(cache, 'fedmmx', { seed: 2 }, compute, () => false);
    expect(calls).toBe(3);
    // Without a cache every call computes.
    await cachedRun(undefined, 'fedmmx', { seed: 1 }, compute);
    expect(calls).toBe(4);
  });

  it('keys settings without the fields that change no run, with the code version', () => {
    const settings = { rounds: 3, grid: [1, 2], seeds: [7] };
    expect(settingsKey(2, settings, ['grid', 'seeds'])).toEqual({ engine: 2, rounds: 3 });
    expect(settingsKey(2, settings, [])).toEqual({ engine: 2, rounds: 3, grid: [1, 2], seeds: [7] });
  });

  it('leaves a missing cell of another shard to it, but reads that cell back when it is stored', async () => {
    const cache = createRunCache(dir);
    let calls = 0;
    const run = (key: unknown) => ({ prefix: 'sybil', key, compute: () => Promise.resolve(++calls) });
    const shard = { index: 0, count: 2 };
    expect([0, 1, 2, 3].map((i) => belongsToOtherShard(shard, i))).toEqual([false, true, false, true]);
    expect(belongsToOtherShard(undefined, 1)).toBe(false);

    expect(await cachedCell({ cache, shard }, 1, run({ cell: 1 }))).toBeNull();
    expect(await cachedCell({ cache, shard }, 2, run({ cell: 2 }))).toEqual({ value: 1, stored: false });
    expect(await cachedCell({ cache, shard: { index: 1, count: 2 } }, 2, run({ cell: 2 }))).toEqual({ value: 1, stored: true });
    expect(calls).toBe(1);
  });
});

describe('probeKey', () => {
  const SIGNALS_OFF = { agreement: 0, accuracy: 0, loss: 0, calibration: 0, explanation: 0 };
  const taskWith = (strategy: Record<string, unknown>) => experimentTask('probe-key', { strategy });

  it('names the server probe only in runs whose trust reads its outputs', () => {
    const trust = taskWith({ name: 'fedmm-x', inner: { name: 'fedavg' } });
    expect(readsServerProbe(trust)).toBe(true);
    expect(probeKey(trust)).toEqual({ probe: PROBE_ENGINE });
    // One probe signal is enough, at any depth (DP must stay outermost, trust sits inside it).
    expect(readsServerProbe(taskWith({ name: 'fedmm-x', inner: { name: 'fedavg' }, weights: { ...SIGNALS_OFF, calibration: 0.5 } }))).toBe(true);
    const wrapped = taskWith({ name: 'dp', clipNorm: 1, noiseMultiplier: 1, inner: { name: 'fedmm-x', inner: { name: 'fedavg' } } });
    expect(probeKey(wrapped)).toEqual({ probe: PROBE_ENGINE });
  });

  it('adds nothing to the key of a run that reads no probe output, agreement-only trust included', () => {
    for (const strategy of [
      { name: 'fedavg' },
      { name: 'median' },
      { name: 'fltrust', rootExamples: 100 },
      { name: 'server-only', rootExamples: 100 },
      { name: 'fedmm-x', inner: { name: 'fedavg' }, weights: { ...SIGNALS_OFF, agreement: 1 } },
    ]) {
      expect(readsServerProbe(taskWith(strategy))).toBe(false);
      expect(probeKey(taskWith(strategy))).toEqual({});
      expect(canonicalJson({ a: 1, ...probeKey(taskWith(strategy)) })).toBe('{"a":1}');
    }
  });

  it('says why a stored key is retired by the probe, and null when it is what the code asks for', () => {
    const trust = taskWith({ name: 'fedmm-x', inner: { name: 'fedavg' } });
    const plain = taskWith({ name: 'fedavg' });
    expect(probeRetirement({ engine: 1 }, trust)).toContain('before PROBE_ENGINE existed');
    expect(probeRetirement({ probe: PROBE_ENGINE - 1 }, trust)).toContain(`under probe engine ${PROBE_ENGINE - 1}`);
    expect(probeRetirement({ probe: PROBE_ENGINE }, trust)).toBeNull();
    expect(probeRetirement({ engine: 1 }, plain)).toBeNull();
    expect(probeRetirement({ probe: PROBE_ENGINE }, plain)).toContain('reads no server probe');
  });
});

describe('readBackCounter', () => {
  it('counts the runs read back among all, and the note names them only when there are some', () => {
    const { tally, count } = readBackCounter();
    count(true);
    count(false);
    count(true);
    expect(tally()).toEqual({ stored: 2, total: 3 });
    expect(readBackNote(tally())).toBe(
      ' 2 of its 3 runs were read from raw/runs/, stored by earlier invocations, so this is not the compute time of the grid.',
    );
    expect(readBackNote({ stored: 0, total: 3 })).toBe('');
    expect(readBackNote(undefined)).toBe('');
  });
});
