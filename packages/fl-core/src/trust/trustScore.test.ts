import { describe, expect, it } from 'vitest';
import { tensor, type Parameters } from '../params.js';
import { agreementScore, medianReference } from './agreement.js';
import { scoreTrust, type ClientRoundEvidence, type TrustRoundInput } from './trustScore.js';
import { expectFlCoreError } from '../errors.test-util.js';

const vec = (...values: number[]): Parameters => [tensor('fusion/w', [values.length], Float32Array.from(values))];
const client = (clientId: string, update: Parameters, numExamples = 10): ClientRoundEvidence => ({ clientId, numExamples, update });
const noHistory = new Map<string, number>();

describe('agreement', () => {
  it('is the ReLU of the cosine with the reference, over the tensors the client sent', () => {
    const reference = new Map([
      ['image/w', Float32Array.from([1, 0])],
      ['text/w', Float32Array.from([0, 1])],
    ]);
    const imageOnly: Parameters = [tensor('image/w', [2], Float32Array.from([1, 1]))];
    expect(agreementScore(imageOnly, reference)).toBeCloseTo(Math.SQRT1_2, 6);
    expect(agreementScore([tensor('image/w', [2], Float32Array.from([-1, 0]))], reference)).toBe(0);
    expect(agreementScore([tensor('audio/w', [2])], reference)).toBeNull();
  });

  it('the median reference needs enough holders per tensor', () => {
    const updates = [vec(1, 0), vec(2, 0), vec(-9, 0)];
    expect(Array.from(medianReference(updates, 3).get('fusion/w')!)).toEqual([1, 0]);
    expect(medianReference(updates.slice(0, 2), 3).size).toBe(0);
  });
});

describe('scoreTrust', () => {
  it('computes hand-checkable components, scores, trust and weights', () => {
    // Arrange: root update (1, 0). A: (1, 0) → a = 1. B: (1, 1) → a = cos 45° = 0.7071.
    // Probe: 2 samples, labels [0, 1]. A's candidate is right on both with confidence 0.75 → q = 1,
    // ECE = |1 − 0.75| = 0.25 → c = 0.75. B's candidate is right on one (conf 0.75), wrong on one
    // (conf 0.75) → q = 0.5, ECE = |0.5 − 0.75| = 0.25 → c = 0.75.
    const input: TrustRoundInput = {
      clients: [
        { clientId: 'A', numExamples: 30, update: vec(1, 0), probe: { probabilities: Float32Array.from([0.75, 0.25, 0.25, 0.75]) } },
        { clientId: 'B', numExamples: 10, update: vec(1, 1), probe: { probabilities: Float32Array.from([0.75, 0.25, 0.75, 0.25]) } },
      ],
      history: new Map([['B', 0.9]]),
      rootUpdate: vec(1, 0),
      probe: { labels: [0, 1] },
    };
    const config = { weights: { agreement: 2, quality: 1, calibration: 1 }, historyDecay: 0.5, prior: 0.5 };
    // Act
    const result = scoreTrust(input, config);
    // Assert
    const [a, b] = result.clients;
    expect(result.reference).toBe('root');
    expect(a!.components).toEqual({ agreement: 1, quality: 1, lossImprovement: null, calibration: 0.75, explanation: null });
    expect(b!.components.agreement).toBeCloseTo(Math.SQRT1_2, 6);
    expect(b!.components.quality).toBe(0.5);
    // s_A = (2·1 + 1 + 0.75)/4 = 0.9375; T_A = 0.5·0.5 + 0.5·0.9375 = 0.71875 (new client starts at the prior).
    expect(a!.roundScore).toBeCloseTo(0.9375, 6);
    expect(a!.previousTrust).toBe(0.5);
    expect(a!.trust).toBeCloseTo(0.71875, 6);
    // s_B = (2·0.70711 + 0.5 + 0.75)/4 = 0.66605; T_B = 0.5·0.9 + 0.5·0.66605 = 0.78303.
    const sB = (2 * Math.SQRT1_2 + 0.5 + 0.75) / 4;
    expect(b!.roundScore).toBeCloseTo(sB, 6);
    expect(b!.trust).toBeCloseTo(0.45 + 0.5 * sB, 6);
    // p ∝ n·T: 30·0.71875 vs 10·T_B.
    const rawA = 30 * 0.71875;
    const rawB = 10 * (0.45 + 0.5 * sB);
    expect(result.weights![0]).toBeCloseTo(rawA / (rawA + rawB), 6);
    expect(result.weights![1]).toBeCloseTo(rawB / (rawA + rawB), 6);
    expect(result.history.get('A')).toBeCloseTo(0.71875, 6);
    expect(input.history.has('A')).toBe(false);
  });

  it('a sign-flipped update gets lower trust and weight than honest ones (median reference)', () => {
    // Arrange: four honest updates around (1, 1, 1), one attacker sending −5× the honest direction.
    const honest = [vec(1, 1, 1), vec(1.1, 0.9, 1), vec(0.9, 1.2, 1.1), vec(1, 1, 0.8)];
    const clients = [...honest.map((u, k) => client(`h${k}`, u)), client('attacker', vec(-5, -5, -5))];
    // Act
    const result = scoreTrust({ clients, history: noHistory });
    // Assert
    expect(result.reference).toBe('median');
    const attacker = result.clients[4]!;
    expect(attacker.components.agreement).toBe(0);
    expect(attacker.gated).toBe(true);
    for (let k = 0; k < 4; k++) {
      expect(result.clients[k]!.components.agreement!).toBeGreaterThan(0.95);
      expect(result.clients[k]!.trust).toBeGreaterThan(attacker.trust);
      expect(result.weights![k]!).toBeGreaterThan(result.weights![4]!);
    }
    // The attacker keeps only the decayed prior: β·prior = 0.25.
    expect(attacker.trust).toBeCloseTo(0.25, 12);
  });

  it('history smooths a one-round dip', () => {
    // Arrange: a client with T = 0.95 has one bad round (s = 0.2 from quality alone).
    const probe = { labels: [0, 1, 0, 1, 0] };
    // Only the first row predicts its label: q = 1/5.
    const oneRight = Float32Array.from([1, 0, 1, 0, 0, 1, 1, 0, 0, 1]);
    const input: TrustRoundInput = {
      clients: [{ clientId: 'c', numExamples: 1, update: vec(1), probe: { probabilities: oneRight } }],
      history: new Map([['c', 0.95]]),
      probe,
    };
    const config = { weights: { quality: 1, agreement: 0, calibration: 0 }, historyDecay: 0.8, agreementGate: false };
    // Act
    const result = scoreTrust(input, config);
    // Assert: T = 0.8·0.95 + 0.2·0.2 = 0.8, far above the round score 0.2.
    expect(result.clients[0]!.components.quality).toBeCloseTo(0.2, 12);
    expect(result.clients[0]!.trust).toBeCloseTo(0.8, 12);
  });

  it('reduces to FedUMM n_k·q_k weights with quality only and β = 0', () => {
    const probe = { labels: [0, 1] };
    const clients: ClientRoundEvidence[] = [
      { clientId: 'a', numExamples: 100, update: vec(1), probe: { probabilities: Float32Array.from([1, 0, 0, 1]) } }, // q = 1
      { clientId: 'b', numExamples: 300, update: vec(1), probe: { probabilities: Float32Array.from([1, 0, 1, 0]) } }, // q = 0.5
    ];
    const weights = { agreement: 0, quality: 1, lossImprovement: 0, calibration: 0, explanation: 0 };
    const result = scoreTrust({ clients, history: noHistory, probe }, { weights, historyDecay: 0, agreementGate: false });
    // p ∝ (100·1, 300·0.5) = (100, 150).
    expect(result.weights![0]).toBeCloseTo(0.4, 12);
    expect(result.weights![1]).toBeCloseTo(0.6, 12);
  });

  it('loss improvement and explanation consistency come from server probe outputs', () => {
    // Baseline puts 0.5 on the truth; candidate 1 puts 0.8 (better → l = 1); candidate 2 puts 0.25
    // (worse: l = exp(log 0.25 − log 0.5) = 0.5). Explanations: identical rows → EC 1; opposite → 0.
    const probe = { labels: [0], baselineProbabilities: Float32Array.from([0.5, 0.5]) };
    const e = Float32Array.from([1, 2]);
    const clients: ClientRoundEvidence[] = [
      { clientId: 'better', numExamples: 1, update: vec(1), probe: { probabilities: Float32Array.from([0.8, 0.2]), explanations: [e, e] } },
      {
        clientId: 'worse',
        numExamples: 1,
        update: vec(1),
        probe: { probabilities: Float32Array.from([0.25, 0.75]), explanations: [e, Float32Array.from([-1, -2])] },
      },
    ];
    const result = scoreTrust({ clients, history: noHistory, probe });
    expect(result.clients[0]!.components.lossImprovement).toBe(1);
    expect(result.clients[0]!.components.explanation).toBeCloseTo(1, 6);
    expect(result.clients[1]!.components.lossImprovement).toBeCloseTo(0.5, 6);
    expect(result.clients[1]!.components.explanation).toBe(0);
  });

  it('without any weighted signal the trust carries over, and with no trusted client the weights are null', () => {
    // Two clients: too few for a median reference and no probe → no signal at all.
    const result = scoreTrust({ clients: [client('a', vec(1)), client('b', vec(2))], history: new Map([['a', 0.3]]) });
    expect(result.reference).toBeNull();
    expect(result.clients[0]!.roundScore).toBeNull();
    expect(result.clients[0]!.trust).toBe(0.3);
    expect(result.clients[1]!.trust).toBe(0.5);
    const distrusted = scoreTrust({ clients: [client('a', vec(1))], history: new Map([['a', 0]]) });
    expect(distrusted.weights).toBeNull();
  });

  it('takes no self-reported metrics: extra fields are rejected by the types and ignored at run time', () => {
    const base: TrustRoundInput = { clients: [client('a', vec(1, 0)), client('b', vec(1, 0)), client('c', vec(0, 1))], history: noHistory };
    const withClaims: ClientRoundEvidence = {
      ...client('c', vec(0, 1)),
      // @ts-expect-error — client-reported accuracy is not part of the evidence type.
      reportedAccuracy: 1,
    };
    const claimed = scoreTrust({ ...base, clients: [base.clients[0]!, base.clients[1]!, withClaims] });
    expect(claimed.clients[2]!.trust).toBe(scoreTrust(base).clients[2]!.trust);
  });

  it('refuses bad configuration with TRUST_BAD_CONFIG', () => {
    const input: TrustRoundInput = { clients: [client('a', vec(1))], history: noHistory };
    expectFlCoreError(() => scoreTrust(input, { weights: { quality: -1 } }), 'TRUST_BAD_CONFIG');
    expectFlCoreError(() => scoreTrust(input, { weights: { quality: Number.NaN } }), 'TRUST_BAD_CONFIG');
    expectFlCoreError(() => scoreTrust(input, { weights: { selfReported: 1 } as never }), 'TRUST_BAD_CONFIG');
    expectFlCoreError(() => scoreTrust(input, { historyDecay: 1 }), 'TRUST_BAD_CONFIG');
    expectFlCoreError(() => scoreTrust(input, { historyDecay: -0.1 }), 'TRUST_BAD_CONFIG');
    expectFlCoreError(() => scoreTrust(input, { prior: 2 }), 'TRUST_BAD_CONFIG');
    expectFlCoreError(() => scoreTrust(input, { minClientsForMedian: 0 }), 'TRUST_BAD_CONFIG');
  });

  it('refuses bad input with a coded error', () => {
    expectFlCoreError(() => scoreTrust({ clients: [client('a', vec(1)), client('a', vec(1))], history: noHistory }), 'TRUST_BAD_INPUT');
    expectFlCoreError(() => scoreTrust({ clients: [client('a', vec(1), -1)], history: noHistory }), 'TRUST_BAD_INPUT');
    expectFlCoreError(() => scoreTrust({ clients: [client('a', vec(1))], history: new Map([['a', 1.5]]) }), 'TRUST_BAD_INPUT');
    expectFlCoreError(() => scoreTrust({ clients: [client('a', vec(Number.NaN))], history: noHistory }), 'PARAMS_NON_FINITE');
    expectFlCoreError(() => scoreTrust({ clients: [client('a', vec(1, 2))], history: noHistory, rootUpdate: vec(1) }), 'PARAMS_MISMATCH');
    expectFlCoreError(
      () => scoreTrust({ clients: [{ ...client('a', vec(1)), probe: { probabilities: Float32Array.from([1, 0]) } }], history: noHistory }),
      'TRUST_BAD_INPUT',
    );
    expectFlCoreError(
      () =>
        scoreTrust({
          clients: [{ ...client('a', vec(1)), probe: { probabilities: Float32Array.from([1, 0, 0]) } }],
          history: noHistory,
          probe: { labels: [0, 1] },
        }),
      'METRICS_BAD_INPUT',
    );
  });
});

describe('agreement reference under an attacker majority', () => {
  // Arrange: 6 honest clients near the true direction (1, 0, 0, 0) with a little spread, 20 colluding
  // attackers sending one identical update that points away from it; the server's root update
  // (trained on its own data) points the honest way.
  const honest = [0.1, -0.1, 0.05, -0.05, 0.15, -0.15].map((e, k) => client(`h${k}`, vec(1, e, -e, 0.05)));
  const attackers = Array.from({ length: 20 }, (_, k) => client(`s${String(k).padStart(2, '0')}`, vec(-1, 0.3, 0.2, 0)));
  const root = vec(1, 0, 0, 0);
  const agreementOnly = { weights: { agreement: 1, quality: 0, lossImprovement: 0, calibration: 0, explanation: 0 }, historyDecay: 0 };
  const trustOf = (result: ReturnType<typeof scoreTrust>, prefix: string): number[] =>
    result.clients.filter((c) => c.clientId.startsWith(prefix)).map((c) => c.trust);

  it("with the root update as reference the attackers get zero trust and the honest clients nearly full trust ('root')", () => {
    const result = scoreTrust({ clients: [...honest, ...attackers], history: noHistory, rootUpdate: root }, { ...agreementOnly, agreementReference: 'root' });
    expect(result.reference).toBe('root');
    expect(Math.max(...trustOf(result, 's'))).toBe(0);
    expect(Math.min(...trustOf(result, 'h'))).toBeGreaterThan(0.95);
    // Every weight goes to the honest clients.
    expect(result.weights!.slice(6).every((w) => w === 0)).toBe(true);
  });

  it('with the median of the round as reference the majority is its own reference and the honest clients are gated out', () => {
    const result = scoreTrust({ clients: [...honest, ...attackers], history: noHistory, rootUpdate: root }, { ...agreementOnly, agreementReference: 'median' });
    expect(result.reference).toBe('median');
    expect(Math.min(...trustOf(result, 's'))).toBeCloseTo(1, 6);
    expect(Math.max(...trustOf(result, 'h'))).toBe(0);
  });

  it("'root' without a root update forms no median: agreement is absent rather than the attackers' own update", () => {
    const result = scoreTrust({ clients: [...honest, ...attackers], history: noHistory }, { ...agreementOnly, agreementReference: 'root' });
    expect(result.reference).toBeNull();
    expect(result.clients.every((c) => c.components.agreement === null && !c.gated && c.trust === 0.5)).toBe(true);
    // 'auto' (the default) without a root falls back to the median, which the attackers own.
    const auto = scoreTrust({ clients: [...honest, ...attackers], history: noHistory }, agreementOnly);
    expect(auto.reference).toBe('median');
    expect(Math.max(...trustOf(auto, 'h'))).toBe(0);
  });

  it('refuses an unknown reference', () => {
    expectFlCoreError(() => scoreTrust({ clients: [], history: noHistory }, { agreementReference: 'mean' as 'root' }), 'TRUST_BAD_CONFIG');
  });
});
