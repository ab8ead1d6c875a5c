import { DEFAULT_ADMISSION } from '@chorus/coordinator';
import { tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { isExperimentsError } from './errors.js';
import {
  FULL_SYBIL,
  QUICK_SYBIL,
  SYBIL_DEFENCES,
  colludingDelta,
  retainedOf,
  sybilAdmission,
  sybilChecks,
  sybilFigure,
  sybilMarkdown,
  sybilShare,
  sybilTask,
} from './sybil.js';
import type { SybilRun } from './sybil.js';

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
  it('turns exactly one defence on per single-defence run, and leaves the defaults to the "all" run', () => {
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
        if (defence === 'all') expect(task.admission).toEqual(DEFAULT_ADMISSION);
        else if (defence === 'none') expect(changed).toEqual([]);
        else if (defence === 'pow-rate') expect(changed.sort()).toEqual(['newIdentitiesPerAddress', 'newIdentitiesPerTask', 'proofOfWorkBits']);
        else expect(changed).toEqual([{ invitations: 'openLink', 'fair-slots': 'slots', probation: 'probationRounds' }[defence]]);
      }
    }
    expect(FULL_SYBIL.defences).toEqual(SYBIL_DEFENCES);
    expect(sybilTask('clean', QUICK_SYBIL, 1).admission).toEqual(DEFAULT_ADMISSION);
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
      run({ defence: 'all', finalAccuracy: 0.6, attacker: attacker(4, { IDENTITY_LIMIT: 16 }), aggregatedAfterArrival: 10, sybilAggregated: 3 }),
    ];
    // Act
    const checks = sybilChecks(runs, FULL_SYBIL);
    const markdown = sybilMarkdown(runs, FULL_SYBIL, [1], 5000);
    // Assert
    const byName = Object.fromEntries(checks.map((c) => [c.name, c.ok]));
    expect(checks.some((c) => c.name.includes('keeps'))).toBe(false);
    expect(byName['sybil: without defences every identity is admitted (the attack is real)']).toBe(true);
    expect(byName['sybil: the per-address quota admits at most 4']).toBe(false);
    expect(markdown).toContain('| all (the default) | 1 | 4 / 20 | IDENTITY_LIMIT ×16 |');
    expect(markdown).toContain('30.0% (3 / 10)');
    expect(markdown).toContain('keeps 75.0% of clean accuracy — design target (≥ 90%) **not met**');
    expect(markdown).toContain('- none (seed 1): 25.0% retained, attacker share 100.0%.');
    expect(sybilFigure(runs, 1)).toContain('<svg');
  });
});
