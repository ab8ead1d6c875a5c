import { describe, expect, it } from 'vitest';
import { logErfc } from './logSpace.js';
import { computeRdp, createRdpAccountant, DEFAULT_RDP_ORDERS, epsilonFromRdp, epsilonPerRound, privacySpent, recordRounds } from './rdpAccountant.js';
import { expectFlCoreError } from '../errors.test-util.js';
import type { FlCoreErrorCode } from '../errors.js';

/** {@link expectFlCoreError} with this module's usual code. */
const expectCode = (fn: () => unknown, code: FlCoreErrorCode = 'PRIVACY_BAD_CONFIG'): void => expectFlCoreError(fn, code);

/** Opacus's RDPAccountant.DEFAULT_ALPHAS: 1.1 … 10.9 by 0.1, then 12 … 63. */
const OPACUS_ORDERS = [...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10), ...Array.from({ length: 52 }, (_, x) => 12 + x)];

describe('logErfc', () => {
  it('matches erfc at known points and stays finite deep in the tail', () => {
    // erfc(0.5) = 0.4795001221869535, erfc(2) = 0.004677734981047266 (Abramowitz & Stegun table 7.1).
    expect(Math.exp(logErfc(0.5))).toBeCloseTo(0.4795001221869535, 14);
    expect(Math.exp(logErfc(2)) / 0.004677734981047266).toBeCloseTo(1, 13);
    expect(Math.exp(logErfc(-1))).toBeCloseTo(2 - 0.15729920705028513, 14);
    // Asymptotically log erfc(x) ≈ −x² − log(x√π); at x = 100 the next term is −1/(2x²).
    expect(logErfc(100)).toBeCloseTo(-1e4 - Math.log(100 * Math.sqrt(Math.PI)) - 0.5e-4, 6);
  });
});

describe('computeRdp', () => {
  it('q = 1 is the Gaussian mechanism: RDP = α/(2σ²) exactly', () => {
    // Arrange
    const orders = [1.5, 2, 20, 32.5, 256];
    const sigma = 10;
    // Act
    const rdp = computeRdp({ samplingRate: 1, noiseMultiplier: sigma }, orders);
    // Assert
    expect(rdp).toEqual(orders.map((a) => a / (2 * sigma * sigma)));
    expect(computeRdp({ samplingRate: 1, noiseMultiplier: 10 }, [20])).toEqual([0.1]);
  });

  it('q = 0 spends nothing and σ = 0 spends everything', () => {
    expect(computeRdp({ samplingRate: 0, noiseMultiplier: 1 }, [2, 3.5])).toEqual([0, 0]);
    expect(computeRdp({ samplingRate: 0.5, noiseMultiplier: 0 }, [2])).toEqual([Infinity]);
  });

  it("matches TF Privacy's rdp_accountant_test.py (test_compute_rdp_scalar, test_compute_rdp_sequence)", () => {
    // tensorflow/privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py:
    //   compute_rdp(0.1, 2, 10, 5) ≈ 0.07737 (places=5)
    //   compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, inf]) ≈ [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, inf] (delta=1e-5)
    const [scalar] = computeRdp({ samplingRate: 0.1, noiseMultiplier: 2 }, [5], 10);
    expect(scalar).toBeCloseTo(0.07737, 5);
    const sequence = computeRdp({ samplingRate: 0.01, noiseMultiplier: 2.5 }, [1.5, 2.5, 5, 50, 100, Infinity], 50);
    const expected = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
    expected.forEach((value, k) => expect(Math.abs(sequence[k]! - value)).toBeLessThan(1e-5));
    expect(sequence[5]).toBe(Infinity);
  });

  it('composes additively over rounds', () => {
    const once = computeRdp({ samplingRate: 0.05, noiseMultiplier: 1.2 }, [2, 4.5]);
    const many = computeRdp({ samplingRate: 0.05, noiseMultiplier: 1.2 }, [2, 4.5], 7);
    expect(many[0]).toBeCloseTo(7 * once[0]!, 12);
    expect(many[1]).toBeCloseTo(7 * once[1]!, 12);
  });

  it('refuses bad mechanisms and orders', () => {
    expectCode(() => computeRdp({ samplingRate: 1.5, noiseMultiplier: 1 }));
    expectCode(() => computeRdp({ samplingRate: 0.1, noiseMultiplier: -1 }));
    expectCode(() => computeRdp({ samplingRate: 0.1, noiseMultiplier: 1 }, [1]));
    expectCode(() => computeRdp({ samplingRate: 0.1, noiseMultiplier: 1 }, []));
    expectCode(() => computeRdp({ samplingRate: 0.1, noiseMultiplier: 1 }, [2], 1.5));
  });
});

describe('epsilonFromRdp', () => {
  it("reproduces Opacus's published RDP accountant value ε = 7.32911117143", () => {
    // pytorch/opacus, opacus/tests/accountants_test.py, test_rdp_accountant: noise_multiplier 1.5,
    // sample_rate 0.04, steps int(90 / 0.04) = 2250, delta 1e-5 → assertAlmostEqual(ε, 7.32911117143).
    const rdp = computeRdp({ samplingRate: 0.04, noiseMultiplier: 1.5 }, OPACUS_ORDERS, 2250);
    const spent = epsilonFromRdp(OPACUS_ORDERS, rdp, 1e-5, 'improved');
    expect(spent.epsilon).toBeCloseTo(7.32911117143, 7);
    // Our default orders extend Opacus's upwards; the optimum (α = 3.9) is unchanged.
    const withDefaults = privacySpent(recordRounds(createRdpAccountant(), { samplingRate: 0.04, noiseMultiplier: 1.5 }, 2250), 1e-5);
    expect(withDefaults.epsilon).toBeCloseTo(7.32911117143, 7);
    expect(withDefaults.bestOrder).toBe(3.9);
  });

  it("reproduces TF Privacy's classic-conversion composition value ε = 8.509656 at order 2.5", () => {
    // tensorflow/privacy rdp_accountant_test.py, test_check_composition (value from the old RDP → DP conversion).
    const orders = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
    const a = computeRdp({ samplingRate: 1e-4, noiseMultiplier: 0.4 }, orders, 40000);
    const b = computeRdp({ samplingRate: 0.1, noiseMultiplier: 2 }, orders, 100);
    const rdp = a.map((r, k) => r + b[k]!);
    const classic = epsilonFromRdp(orders, rdp, 1e-5, 'classic');
    expect(classic.epsilon).toBeCloseTo(8.509656, 5);
    expect(classic.bestOrder).toBe(2.5);
    expect(epsilonFromRdp(orders, rdp, 1e-5, 'improved').epsilon).toBeLessThan(classic.epsilon);
  });

  it('matches the hand-computable constant-RDP case (TF Privacy test_get_privacy_spent_check_target_delta)', () => {
    // Constant RDP 1.1 on orders 2 … 32: the largest order wins; 1.1 + log(31/32) − log(32·1e-5)/31 = 1.32783806176.
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const spent = epsilonFromRdp(
      orders,
      orders.map(() => 1.1),
      1e-5,
    );
    expect(spent.epsilon).toBeCloseTo(1.32783806176, 10);
    expect(spent.bestOrder).toBe(32);
  });

  it('skips infinite orders, reports Infinity when all are, and refuses bad δ', () => {
    expect(epsilonFromRdp([2, 3], [Infinity, 0.5], 1e-5).bestOrder).toBe(3);
    expect(epsilonFromRdp([2, 3], [Infinity, Infinity], 1e-5)).toEqual({ epsilon: Infinity, delta: 1e-5, bestOrder: null });
    expectCode(() => epsilonFromRdp([2], [0.1], 0));
    expectCode(() => epsilonFromRdp([2], [0.1], 1));
    expectCode(() => epsilonFromRdp([2, 3], [0.1], 1e-5));
    expectCode(() => epsilonFromRdp([2], [-0.1], 1e-5));
  });
});

describe('accountant and per-round reporting', () => {
  it('records rounds without changing its input and reports ε rising each round', () => {
    // Arrange
    const mechanism = { samplingRate: 0.1, noiseMultiplier: 1.1 };
    const start = createRdpAccountant([2, 4, 8, 16, 32]);
    // Act
    const after3 = recordRounds(start, mechanism, 3);
    const perRound = epsilonPerRound({ ...mechanism, rounds: 3, delta: 1e-5, orders: [2, 4, 8, 16, 32] });
    // Assert
    expect(start.rounds).toBe(0);
    expect(start.rdp).toEqual([0, 0, 0, 0, 0]);
    expect(after3.rounds).toBe(3);
    expect(perRound[0]!).toBeLessThan(perRound[1]!);
    expect(perRound[1]!).toBeLessThan(perRound[2]!);
    expect(perRound[2]).toBeCloseTo(privacySpent(after3, 1e-5).epsilon, 12);
    expect(privacySpent(start, 1e-5).epsilon).toBe(0);
  });

  it('refuses a malformed stored accountant', () => {
    const mechanism = { samplingRate: 0.1, noiseMultiplier: 1 };
    expectCode(() => recordRounds({ orders: [2, 3], rdp: [0], rounds: 0 }, mechanism));
    expectCode(() => recordRounds({ orders: [2], rdp: [Number.NaN], rounds: 0 }, mechanism));
  });

  it('default orders are sorted and all above 1', () => {
    expect(DEFAULT_RDP_ORDERS.every((a, i) => a > 1 && (i === 0 || a > DEFAULT_RDP_ORDERS[i - 1]!))).toBe(true);
  });
});
