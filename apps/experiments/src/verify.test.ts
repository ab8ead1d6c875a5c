import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseExperimentsArgs } from './args.js';
import { runVerify } from './cli.js';
import { cacheFileName, createRunCache, encodeNonFinite } from './runCache.js';
import type { SectionEntry } from './section.js';
import { VERIFY_EXCLUDED_FIELDS, differences, firstDifference, selectRuns, storedRuns } from './verify.js';
import type { StoredRun, VerifySpec } from './verify.js';

/** A tiny section whose run of key { kind, n } is { square: n², halves: [n/2], durationMs: anything }. */
const compute = (key: unknown): unknown => {
  const n = (key as { n: number }).n;
  return { square: n * n, halves: [n / 2], ratio: n === 0 ? Number.NaN : 1 / n, durationMs: Math.random() };
};
const fakeSpec = (recomputed: string[]): VerifySpec => ({
  prefix: 'fake',
  owns: (key) => (key as { section?: string }).section === 'fake',
  kindOf: (key) => (key as { kind: string }).kind,
  label: (key) => `n ${(key as { n: number }).n}`,
  open: () =>
    Promise.resolve({
      recompute: (key: unknown) => {
        recomputed.push(JSON.stringify(key));
        return Promise.resolve(compute(key));
      },
      close: () => undefined,
    }),
});
const run = (): never => {
  throw new Error('not run');
};

describe('selectRuns', () => {
  const runs: StoredRun[] = [
    ...Array.from({ length: 6 }, (_, i) => ({ file: `t${i}`, key: { kind: 'tuning', n: i }, value: null })),
    ...Array.from({ length: 3 }, (_, i) => ({ file: `b${i}`, key: { kind: 'bounds', n: i }, value: null })),
    ...Array.from({ length: 4 }, (_, i) => ({ file: `r${i}`, key: { kind: 'run', n: i }, value: null })),
  ];
  const kindOf = (key: unknown): string => (key as { kind: string }).kind;

  it('picks the same runs for the same seed, whatever the order they are listed in', () => {
    const a = selectRuns(runs, 5, 'fedmmx', kindOf);
    expect(selectRuns([...runs].reverse(), 5, 'fedmmx', kindOf)).toEqual(a);
    expect(a).toHaveLength(5);
    expect(new Set(a.map((r) => r.file)).size).toBe(5);
    // Another seed shuffles otherwise (over 13 runs, some k = 5 pick differs).
    const others = ['robustness', 'fedmmx-fashion', 'x', 'y'].map((s) =>
      selectRuns(runs, 5, s, kindOf)
        .map((r) => r.file)
        .join(),
    );
    expect(others.some((o) => o !== a.map((r) => r.file).join())).toBe(true);
  });

  it('spreads over kinds: k ≥ the number of kinds covers every kind, in turn', () => {
    expect(selectRuns(runs, 3, 's', kindOf).map((r) => kindOf(r.key))).toEqual(['bounds', 'run', 'tuning']);
    const six = selectRuns(runs, 6, 's', kindOf).map((r) => kindOf(r.key));
    expect(six.filter((k) => k === 'bounds')).toHaveLength(2);
    expect(six.filter((k) => k === 'tuning')).toHaveLength(2);
    expect(selectRuns(runs, 2, 's', kindOf).map((r) => kindOf(r.key))).toEqual(['bounds', 'run']);
  });

  it('takes every run when k exceeds them, and refuses k < 1', () => {
    expect(selectRuns(runs, 99, 's', kindOf)).toHaveLength(runs.length);
    expect(() => selectRuns(runs, 0, 's', kindOf)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
  });
});

describe('firstDifference', () => {
  it('compares numbers exactly, NaN equal to NaN, and skips the excluded time fields', () => {
    expect(VERIFY_EXCLUDED_FIELDS).toEqual(['durationMs', 'cpuMs']);
    expect(firstDifference({ a: [1, Number.NaN], durationMs: 5, cpuMs: 1 }, { a: [1, Number.NaN], durationMs: 9 })).toBeNull();
    expect(firstDifference({ a: [1, 0.1 + 0.2] }, { a: [1, 0.3] })).toBe('a[1] (stored 0.30000000000000004, now 0.3)');
    expect(firstDifference({ a: { b: 1 } }, { a: { b: 1, c: 2 } })).toBe('a.c (stored absent, now 2)');
    expect(firstDifference({ s: 'finished' }, { s: 'error' })).toBe('s (stored "finished", now "error")');
    expect(firstDifference(0.5, 0.25)).toBe('(value) (stored 0.5, now 0.25)');
    expect(differences({ b: [1, 2], a: 1, c: 3 }, { b: [1, 3, 4], a: 1, c: 3 })).toEqual(['b[1] (stored 2, now 3)', 'b[2] (stored absent, now 4)']);
  });
});

describe('runVerify', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-verify-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const store = (): void => {
    const cache = createRunCache(dir);
    for (const [kind, n] of [
      ['a', 0],
      ['a', 1],
      ['b', 2],
      ['b', 3],
    ] as const) {
      const key = { section: 'fake', kind, n };
      cache.put('fake', key, encodeNonFinite(compute(key)));
    }
    // Another section's file under the same prefix is not this one's.
    cache.put('fake', { section: 'other', kind: 'a', n: 7 }, { square: -1 });
  };

  it('recomputes k stored runs from their keys, says same for each, and writes nothing', async () => {
    store();
    const recomputed: string[] = [];
    const lines: string[] = [];
    const sections: SectionEntry[] = [
      { id: 'fake', run, verify: fakeSpec(recomputed) },
      { id: 'plain', run },
    ];
    const args = parseExperimentsArgs(['--cache', dir, '--verify', '2'], ['fake', 'plain']);

    expect(await runVerify(args, (l) => lines.push(l), sections)).toBe(true);

    expect(recomputed).toHaveLength(2);
    expect(recomputed.every((k) => JSON.parse(k).section === 'fake')).toBe(true);
    expect(new Set(recomputed.map((k) => JSON.parse(k).kind))).toEqual(new Set(['a', 'b']));
    expect(lines.filter((l) => l.endsWith(' s)') && l.includes(': same ('))).toHaveLength(2);
    expect(lines).toContain('plain: keeps no stored runs; not verified');
    expect(storedRuns(dir, 'fake')).toHaveLength(5);
  });

  it('reports a stored value altered by hand as DIFFERENT, naming the field, and fails', async () => {
    store();
    const key = { section: 'fake', kind: 'b', n: 3 };
    const altered = { ...(compute(key) as object), halves: [1.5000001] };
    writeFileSync(join(dir, cacheFileName('fake', key)), `${JSON.stringify({ version: 1, key, value: altered })}\n`);
    const lines: string[] = [];
    const args = parseExperimentsArgs(['--cache', dir, '--verify', '4'], ['fake']);

    expect(await runVerify(args, (l) => lines.push(l), [{ id: 'fake', run, verify: fakeSpec([]) }])).toBe(false);

    expect(lines.filter((l) => l.includes('DIFFERENT'))).toEqual([expect.stringContaining('n 3') as unknown]);
    expect(lines.find((l) => l.includes('DIFFERENT'))).toContain('DIFFERENT: halves[0] (stored 1.5000001, now 1.5) (');
    expect(lines.filter((l) => l.includes(': same ('))).toHaveLength(3);
    expect(lines.at(-1)).toContain('FAILED');
  });

  it('counts retired runs (keys the code no longer asks for) without verifying them, and fails when only those are stored', async () => {
    store();
    // Runs of kind b are retired: their recomputation differing (here it would not) is no finding.
    const retiring: VerifySpec = { ...fakeSpec([]), retired: (key) => ((key as { kind: string }).kind === 'b' ? 'stored under probe engine 0' : null) };
    const recomputed: string[] = [];
    const lines: string[] = [];
    const args = parseExperimentsArgs(['--cache', dir, '--verify', '4'], ['fake']);

    expect(await runVerify(args, (l) => lines.push(l), [{ id: 'fake', run, verify: { ...retiring, open: fakeSpec(recomputed).open } }])).toBe(true);

    expect(recomputed.map((k) => JSON.parse(k).kind)).toEqual(['a', 'a']);
    expect(lines[0]).toMatch(/^fake: 2 of 4 stored runs are retired .*, not verified; e\.g\. fake-[0-9a-f]{16}\.json: stored under probe engine 0$/);
    expect(lines[1]).toBe('fake: verifying 2 of 2 stored runs (a)');

    lines.length = 0;
    const allRetired: VerifySpec = { ...fakeSpec([]), retired: () => 'stored by engine 0' };
    expect(await runVerify(args, (l) => lines.push(l), [{ id: 'fake', run, verify: allRetired }])).toBe(false);
    expect(lines[1]).toContain('no stored run in');
    expect(lines[1]).toContain('that the code still asks for');
  });

  it('fails when a section that keeps runs has none stored, or a recompute throws', async () => {
    const lines: string[] = [];
    const args = parseExperimentsArgs(['--cache', dir, '--verify', '1'], ['fake']);
    expect(await runVerify(args, (l) => lines.push(l), [{ id: 'fake', run, verify: fakeSpec([]) }])).toBe(false);
    expect(lines[0]).toContain('no stored run');

    store();
    const broken: VerifySpec = { ...fakeSpec([]), open: () => Promise.resolve({ recompute: () => Promise.reject(new Error('boom')), close: () => undefined }) };
    lines.length = 0;
    expect(await runVerify(args, (l) => lines.push(l), [{ id: 'fake', run, verify: broken }])).toBe(false);
    expect(lines.some((l) => l.endsWith('FAILED: boom'))).toBe(true);
  });
});
