import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { splitChannelPrivacy, splitReleasesPerExample } from './channelPrivacy.js';

const DELTA = 1e-5;

// The 'improved' conversion (Balle et al. 2020, Thm 21) at a single order α.
const improvedEpsilon = (rdp: number, alpha: number, delta: number): number => rdp + Math.log1p(-1 / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1);

describe('splitChannelPrivacy', () => {
  it('matches a hand computation for one release at a large order: RDP = α / (2 (z/2)²)', () => {
    // z = 4, so the effective multiplier under replace-one adjacency is 2 and RDP_256 = 256 / (2 · 4) = 32.
    const spent = splitChannelPrivacy({ noiseMultiplier: 4, releasesPerExample: 1, delta: DELTA, orders: [256] });

    expect(spent.bestOrder).toBe(256);
    expect(spent.delta).toBe(DELTA);
    expect(spent.epsilon).toBeCloseTo(improvedEpsilon(32, 256, DELTA), 12);
  });

  it('adds the RDP of composed releases: k releases at one order spend k times the RDP', () => {
    // z = 10 → z/2 = 5; RDP_64 of one release = 64 / 50 = 1.28; of 7 releases 8.96.
    const spent = splitChannelPrivacy({ noiseMultiplier: 10, releasesPerExample: 7, delta: DELTA, orders: [64] });

    expect(spent.epsilon).toBeCloseTo(improvedEpsilon(7 * 1.28, 64, DELTA), 12);
  });

  it('charges twice the sensitivity of the add/remove view: ε at z equals the plain Gaussian ε at z/2', () => {
    const orders = [2, 8, 32];
    const atZ = splitChannelPrivacy({ noiseMultiplier: 3, releasesPerExample: 1, delta: DELTA, orders });
    const best = Math.min(...orders.map((a) => improvedEpsilon(a / (2 * 1.5 * 1.5), a, DELTA)));

    expect(atZ.epsilon).toBeCloseTo(best, 12);
  });

  it('decreases as the noise multiplier grows', () => {
    const eps = [0.5, 1, 2, 4, 8, 16].map((z) => splitChannelPrivacy({ noiseMultiplier: z, releasesPerExample: 10, delta: DELTA }).epsilon);

    for (let i = 1; i < eps.length; i++) expect(eps[i]!).toBeLessThan(eps[i - 1]!);
    expect(eps.every(Number.isFinite)).toBe(true);
  });

  it('grows with the number of releases', () => {
    const eps = [1, 2, 10, 100, 1000].map((k) => splitChannelPrivacy({ noiseMultiplier: 4, releasesPerExample: k, delta: DELTA }).epsilon);

    for (let i = 1; i < eps.length; i++) expect(eps[i]!).toBeGreaterThan(eps[i - 1]!);
  });

  it('is infinite without noise, and zero when nothing is released', () => {
    expect(splitChannelPrivacy({ noiseMultiplier: 0, releasesPerExample: 1, delta: DELTA })).toEqual({ epsilon: Infinity, delta: DELTA, bestOrder: null });
    expect(splitChannelPrivacy({ noiseMultiplier: 2, releasesPerExample: 0, delta: DELTA }).epsilon).toBe(0);
  });

  it('refuses bad options with PRIVACY_BAD_CONFIG', () => {
    const ok = { noiseMultiplier: 1, releasesPerExample: 1, delta: DELTA };

    expectFlCoreError(() => splitChannelPrivacy({ ...ok, noiseMultiplier: -1 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitChannelPrivacy({ ...ok, noiseMultiplier: Number.NaN }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitChannelPrivacy({ ...ok, releasesPerExample: 1.5 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitChannelPrivacy({ ...ok, releasesPerExample: -1 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitChannelPrivacy({ ...ok, delta: 0 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitChannelPrivacy({ ...ok, delta: 1 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitChannelPrivacy({ ...ok, orders: [1] }), 'PRIVACY_BAD_CONFIG');
  });
});

describe('splitReleasesPerExample', () => {
  it('multiplies epochs, rounds and noised directions', () => {
    expect(splitReleasesPerExample({ epochs: 2, rounds: 3, directions: 2 })).toBe(12);
    expect(splitReleasesPerExample({ epochs: 5, rounds: 1, directions: 1 })).toBe(5);
    expect(splitReleasesPerExample({ epochs: 0, rounds: 9, directions: 2 })).toBe(0);
  });

  it('refuses counts that are not integers ≥ 0, and directions other than 1 or 2', () => {
    expectFlCoreError(() => splitReleasesPerExample({ epochs: 1.5, rounds: 1, directions: 2 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitReleasesPerExample({ epochs: 1, rounds: -1, directions: 2 }), 'PRIVACY_BAD_CONFIG');
    expectFlCoreError(() => splitReleasesPerExample({ epochs: 1, rounds: 1, directions: 3 }), 'PRIVACY_BAD_CONFIG');
  });
});
