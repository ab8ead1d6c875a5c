import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ADMISSION } from '@chorus/coordinator';
import { tensor } from '@chorus/fl-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isExperimentsError } from './errors.js';
import { DAMPING_ENGINE, PROBE_ENGINE, cacheFileName, createRunCache } from './runCache.js';
import {
  FULL_SYBIL,
  QUICK_SYBIL,
  SYBIL_DEFENCES,
  colludingDelta,
  retainedOf,
  sybilAdmission,
  runSybil,
  iidGrid,
  sybilCacheKey,
  sybilChecks,
  sybilClientArgs,
  sybilFigure,
  sybilMarkdown,
  sybilPlan,
  sybilShare,
  sybilTask,
} from './sybil.js';
import type { SybilRun, SybilRunner, SybilSettings } from './sybil.js';

const run = (overrides: Partial<SybilRun>): SybilRun => ({
  defence: 'none',
  seed: 1,
  status: 'finished',
  completedRounds: 4,
  finalAccuracy: 0.5,
  accuracyByRound: [],
  attacker: null,
  aggregatedAfterArrival: 0,
  sybilAggregated: 0,
  durationMs: 1000,
  ...overrides,
});
const attacker = (admitted: number, refusals: Record<string, number> = {}) => ({ attempted: 20, admitted, refusals, sybilIds: [], proofMs: 10, uploads: 0 });

describe('sybil grid', () => {
  it('turns exactly one defence on per single-defence run, leaves the defaults to the "all-similarity" run and takes damping out of the "all" run', () => {
    for (const settings of [QUICK_SYBIL, FULL_SYBIL]) {
      for (const defence of settings.defences) {
        // Arrange / Act
        const task = sybilTask(defence, settings, 2);
        const none = sybilTask('none', settings, 2).admission;
        const changed = Object.keys(task.admission).filter(
          (k) => JSON.stringify(task.admission[k as keyof typeof none]) !== JSON.stringify(none[k as keyof typeof none]),
        );
        // Assert
        expect(task.seed).toBe(2);
        expect(task.dataset.name).toBe(settings.dataset);
        if (defence === 'all') expect(task.admission).toEqual({ ...DEFAULT_ADMISSION, similarityDamping: false });
        else if (defence === 'all-similarity') expect(task.admission).toEqual(DEFAULT_ADMISSION);
        else if (defence === 'none') expect(changed).toEqual([]);
        else if (defence === 'pow-rate') expect(changed.sort()).toEqual(['newIdentitiesPerAddress', 'newIdentitiesPerTask', 'proofOfWorkBits']);
        else
          expect(changed).toEqual([{ invitations: 'openLink', 'fair-slots': 'slots', probation: 'probationRounds', similarity: 'similarityDamping' }[defence]]);
      }
    }
    expect(FULL_SYBIL.defences).toEqual(SYBIL_DEFENCES);
    expect(DEFAULT_ADMISSION.similarityDamping).toBe(true);
    expect(sybilTask('clean', QUICK_SYBIL, 1).admission).toEqual({ ...DEFAULT_ADMISSION, similarityDamping: false });
    expect(sybilTask('clean-similarity', QUICK_SYBIL, 1).admission).toEqual(DEFAULT_ADMISSION);
    expect(() => sybilAdmission('bogus' as never)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
    expect(isExperimentsError(new Error('x'))).toBe(false);
  });

  it('draws one colluding update per round: the same for every identity, another next round, N(0, σ²)-sized', () => {
    // Arrange
    const global = [tensor('image/w', [4000], new Float32Array(4000)), tensor('fusion/b', [2], new Float32Array([1, 2]))];
    // Act
    const a = colludingDelta(global, 7, 3, 0.3);
    const b = colludingDelta(global, 7, 3, 0.3);
    const next = colludingDelta(global, 7, 4, 0.3);
    // Assert
    expect(a.map((t) => [t.name, t.shape])).toEqual(global.map((t) => [t.name, t.shape]));
    expect(Array.from(a[0]!.values)).toEqual(Array.from(b[0]!.values));
    expect(Array.from(next[0]!.values)).not.toEqual(Array.from(a[0]!.values));
    const v = a[0]!.values;
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(std).toBeGreaterThan(0.27);
    expect(std).toBeLessThan(0.33);
    expect(Array.from(global[1]!.values)).toEqual([1, 2]);
  });

  it('computes shares and retained accuracy against the clean run of the same seed', () => {
    const runs = [run({ defence: 'clean', finalAccuracy: 0.8 }), run({ defence: 'none', finalAccuracy: 0.2, aggregatedAfterArrival: 12, sybilAggregated: 9 })];
    expect(sybilShare(runs[1]!)).toBe(0.75);
    expect(sybilShare(runs[0]!)).toBeNull();
    expect(retainedOf(runs, runs[1]!)).toBeCloseTo(0.25, 10);
    expect(retainedOf(runs, run({ seed: 2 }))).toBeNull();
  });

  it('checks admission caps, reports the design target as a finding, and names where a defence fails', () => {
    // Arrange
    const runs = [
      run({ defence: 'clean', finalAccuracy: 0.8 }),
      run({ defence: 'none', finalAccuracy: 0.2, attacker: attacker(20), aggregatedAfterArrival: 10, sybilAggregated: 10 }),
      run({ defence: 'pow-rate', finalAccuracy: 0.7, attacker: attacker(5, { IDENTITY_LIMIT: 15 }) }),
      run({ defence: 'all-similarity', finalAccuracy: 0.6, attacker: attacker(4, { IDENTITY_LIMIT: 16 }), aggregatedAfterArrival: 10, sybilAggregated: 3 }),
    ];
    // Act
    const checks = sybilChecks(runs, FULL_SYBIL);
    const markdown = sybilMarkdown(runs, FULL_SYBIL, [1], 5000);
    // Assert
    const byName = Object.fromEntries(checks.map((c) => [c.name, c.ok]));
    expect(checks.some((c) => c.name.includes('keeps'))).toBe(false);
    expect(byName['sybil: without defences every identity is admitted (the attack is real)']).toBe(true);
    expect(byName['sybil: the per-address quota admits at most 4']).toBe(false);
    expect(byName["sybil: the default admits at most 4 from the attacker's address(es)"]).toBe(true);
    expect(markdown).toContain('| all (the default, similarity damping included) | 1 | 4 / 20 | IDENTITY_LIMIT ×16 |');
    expect(markdown).toContain('30.0% (3 / 10)');
    expect(markdown).toContain(
      'Seed 1: the default configuration (similarity damping included) keeps 75.0% of clean accuracy — design target (≥ 90%) **not met**',
    );
    expect(markdown).toContain('- none (seed 1): 25.0% retained, attacker share 100.0%.');
    expect(sybilFigure(runs, 1)).toContain('<svg');
    expect(markdown).toContain('| all (the default, similarity damping included) | 1 | 75.0 | 30.0 | 7.0 | 0 |');
  });

  it('summarises each defence over seeds and compares the defaults with and without similarity damping, paired by seed', () => {
    // Arrange: two seeds; damping adds 20 and 30 points to the default's final accuracy.
    const runs = [1, 2].flatMap((seed) => [
      run({ seed, defence: 'clean', finalAccuracy: 0.9 }),
      run({ seed, defence: 'all', finalAccuracy: 0.5 + 0.1 * seed, aggregatedAfterArrival: 10, sybilAggregated: 4 }),
      run({ seed, defence: 'all-similarity', finalAccuracy: 0.6 + 0.2 * seed, aggregatedAfterArrival: 10, sybilAggregated: 1 }),
    ]);
    // Act
    const markdown = sybilMarkdown(runs, FULL_SYBIL, [1, 2], 5000);
    // Assert
    expect(markdown).toContain('| all (the default, similarity damping included) | 2 | 100.0 ± 15.7 | 10.0 ± 0.0 | 9.0 ± 0.0 | 0 |');
    expect(markdown).not.toContain('clean, the defaults (no attacker; similarity damping included) |');
    const slots = FULL_SYBIL.clientsPerRound * (FULL_SYBIL.rounds - FULL_SYBIL.attackAfterRound);
    const control = (aggregated: number) => run({ seed: 1, defence: 'clean-similarity', finalAccuracy: 0.81, aggregatedAfterArrival: aggregated });
    const withControl = sybilMarkdown([...runs, control(slots)], FULL_SYBIL, [1, 2], 5000);
    expect(withControl).toContain(`| clean, the defaults (no attacker; similarity damping included) | 1 | 90.0 | — | ${slots}.0 | 0 |`);
    expect(withControl).toContain('similarity damping left no honest volunteer out');
    // One honest update short of the slots: damping left a volunteer out, and the report says so.
    expect(sybilMarkdown([...runs, control(slots - 1)], FULL_SYBIL, [1, 2], 5000)).toContain(
      'similarity damping left an honest volunteer out once over the clean run',
    );
    expect(markdown).toContain(
      'Final accuracy, paired by seed: all (the default, similarity damping included) − all but similarity damping (the former default): +25.0 [',
    );
    // The default's verdict comes first in each seed.
    expect(markdown.indexOf('Seed 1: the default configuration')).toBeLessThan(markdown.indexOf('Seed 1: the defaults without similarity damping'));
  });
});

describe('the IID companion grid', () => {
  it('runs the full grid’s combined defences again with IID volunteers, under keys of their own, leaving the stored runs’ keys as they were', () => {
    const iid = iidGrid(FULL_SYBIL)!;
    expect(iid.iid).toBe(true);
    expect(iid.defences).toEqual(['all', 'all-similarity']);
    expect(iidGrid(QUICK_SYBIL)).toBeNull();
    expect(iidGrid(iid)).toBeNull();
    expect(sybilClientArgs(iid, 3)).toContain('--iid');
    expect(sybilClientArgs(iid, 3)).not.toContain('--alpha');
    expect(sybilClientArgs(FULL_SYBIL, 3)).toEqual(['--max-examples', '120', '--seed', '3', '--alpha', '0.5', '--eval-examples', '0']);
    // The list of IID defences is no part of a run's key: the grid's stored runs keep theirs.
    const { iidDefences: _dropped, ...without } = FULL_SYBIL;
    expect(sybilCacheKey(FULL_SYBIL, 'all', 1)).toEqual(sybilCacheKey(without, 'all', 1));
    expect(sybilCacheKey(iid, 'all', 1)).not.toEqual(sybilCacheKey(FULL_SYBIL, 'all', 1));
  });
});

describe('runSybil with the run cache', () => {
  // Two defences beside the clean run, one seed: three runs, made by a fake that counts them.
  const settings: SybilSettings = { ...QUICK_SYBIL, defences: ['none', 'all'] };
  let dir: string;
  let calls: string[];
  const fake: SybilRunner = (_s, defence, seed) => {
    calls.push(`${defence} s${seed}`);
    return Promise.resolve(run({ defence, seed, finalAccuracy: defence === 'clean' ? 0.8 : 0.4, attacker: defence === 'clean' ? null : attacker(4) }));
  };
  const ctx = (warnings: string[] = []) => ({ quick: false, seeds: [1], log: () => undefined, cache: createRunCache(dir, { warn: (l) => warnings.push(l) }) });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-sybil-cache-'));
    calls = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads stored runs back instead of running them again, and says their times were measured by an earlier invocation', async () => {
    const first = await runSybil(ctx(), settings, fake);
    const second = await runSybil(ctx(), settings, fake);

    expect(calls).toEqual(['clean s1', 'none s1', 'all s1']);
    expect(readdirSync(dir)).toHaveLength(3);
    expect((second.raw as { runs: SybilRun[] }).runs).toEqual((first.raw as { runs: SybilRun[] }).runs);
    expect(first.markdown).not.toContain('read from raw/runs/');
    expect(second.markdown).toContain('3 of the 3 runs (marked †) were read from raw/runs/, stored by earlier invocations');
    expect(second.markdown).toContain('0.01 s †');
  });

  it('runs the IID companion grid after the main one and reports it in a section of its own', async () => {
    const seen: string[] = [];
    const both: SybilRunner = (s, defence, seed) => {
      seen.push(`${s.iid ? 'iid ' : ''}${defence} s${seed}`);
      return fake(s, defence, seed);
    };
    const result = await runSybil(ctx(), { ...settings, iidDefences: ['all'] }, both);
    expect(seen).toEqual(['clean s1', 'none s1', 'all s1', 'iid clean s1', 'iid all s1']);
    expect(result.markdown).toContain('### With IID volunteers');
    expect(result.markdown).toContain('IID partitions');
    expect((result.raw as { iid: { runs: SybilRun[] } }).iid.runs).toHaveLength(2);
    expect(result.checks.some((c) => c.name.endsWith('(IID volunteers)'))).toBe(true);
    // Read back, each grid counts its own stored runs.
    const again = await runSybil(ctx(), { ...settings, iidDefences: ['all'] }, both);
    expect(again.markdown).toContain('3 of the 3 runs (marked †)');
    expect(again.markdown).toContain('2 of the 2 runs (marked †)');
  });

  it('runs again when a setting that defines the run changes, not when only the list of defences does', async () => {
    await runSybil(ctx(), settings, fake);
    await runSybil(ctx(), { ...settings, defences: ['all'] }, fake);
    expect(calls).toHaveLength(3);

    await runSybil(ctx(), { ...settings, attackSigma: 0.5 }, fake);
    expect(calls).toHaveLength(6);
    expect(sybilCacheKey(settings, 'all', 1)).not.toEqual(sybilCacheKey(settings, 'all', 2));
  });

  it('reports a corrupt file and runs its cell again; keeps no unfinished run', async () => {
    await runSybil(ctx(), settings, fake);
    writeFileSync(join(dir, cacheFileName('sybil', sybilCacheKey(settings, 'none', 1))), '{"version":1,');
    const warnings: string[] = [];

    await runSybil(ctx(warnings), settings, fake);

    expect(calls).toEqual(['clean s1', 'none s1', 'all s1', 'none s1']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('not JSON');
    const stalled: SybilRunner = (_s, defence, seed) => Promise.resolve(run({ defence, seed, status: 'failed', completedRounds: 3, finalAccuracy: 0.3 }));
    const stalledRuns = await runSybil(
      { ...ctx(), cache: createRunCache(mkdtempSync(join(tmpdir(), 'chorus-sybil-stalled-'))) },
      { ...settings, rounds: 4 },
      stalled,
    );
    expect(stalledRuns.checks.find((c) => c.name.startsWith('every sybil run ended'))?.ok).toBe(true);
    expect(stalledRuns.markdown).toContain('30.0% (stalled after round 3)');
    const failing: SybilRunner = (_s, defence, seed) => Promise.resolve(run({ defence, seed, status: 'error', finalAccuracy: null }));
    await runSybil(ctx(), { ...settings, rounds: 3 }, failing);
    expect(readdirSync(dir)).toHaveLength(3);
  });

  it('runs again every cell stored before `probe` was in its key: each weighs trust on the server probe, the clean runs too', async () => {
    /** The key as the section wrote it before the probe field existed. */
    const before = (s: SybilSettings, defence: 'clean' | 'none' | 'all', seed: number): Record<string, unknown> => {
      const { probe, ...rest } = sybilCacheKey(s, defence, seed) as Record<string, unknown>;
      expect(probe).toBe(PROBE_ENGINE);
      return rest;
    };
    // The committed run of `none` at seed 1 (docs/results/raw/runs) was stored under exactly that key
    // (re-keyed once similarity damping became a default: its task states `similarityDamping: false`).
    expect(cacheFileName('sybil', before(FULL_SYBIL, 'none', 1))).toBe('sybil-4b367ca961dc011c.json');
    const cache = createRunCache(dir);
    for (const defence of ['clean', 'none', 'all'] as const) cache.put('sybil', before(settings, defence, 1), run({ defence, seed: 1 }));

    await runSybil(ctx(), settings, fake);

    expect(calls).toEqual(['clean s1', 'none s1', 'all s1']);
  });

  it('keys a run with damping by the damping engine, and a run without it as before', () => {
    expect(sybilCacheKey(FULL_SYBIL, 'all-similarity', 1)).toMatchObject({ damping: DAMPING_ENGINE });
    expect(sybilCacheKey(FULL_SYBIL, 'similarity', 1)).toMatchObject({ damping: DAMPING_ENGINE });
    expect(sybilCacheKey(FULL_SYBIL, 'all', 1)).not.toHaveProperty('damping');
    expect(sybilCacheKey(FULL_SYBIL, 'none', 1)).not.toHaveProperty('damping');
  });

  it("under --shard leaves another shard's missing run to it and says the grid is incomplete", async () => {
    const result = await runSybil({ ...ctx(), shard: { index: 0, count: 2 } }, settings, fake);

    expect(sybilPlan(settings, [1]).map((c) => c.defence)).toEqual(['clean', 'none', 'all']);
    expect(sybilPlan({ ...QUICK_SYBIL, defences: ['none', 'all', 'all-similarity'] }, [1]).map((c) => c.defence)).toEqual([
      'clean',
      'clean-similarity',
      'none',
      'all',
      'all-similarity',
    ]);
    expect(sybilPlan(QUICK_SYBIL, [1]).map((c) => c.defence)).toEqual(['clean', 'clean-similarity', 'none', 'all-similarity']);
    expect(calls).toEqual(['clean s1', 'all s1']);
    expect(result.checks.find((c) => c.name === 'the sybil grid is complete')).toMatchObject({ ok: false, detail: expect.stringContaining('1 of 3 runs') });
  });
});
