import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { A, B, G, perturbed, randomMatrix, S_BETWEEN, S_EXACT } from './fixtures.testkit.js';
import { createRepresentationStrategy } from './fromConfig.js';
import { sedWeighting } from './sed.js';
import { RepresentationEnsemble } from './strategy.js';
import { REPRESENTATION_STRATEGY_NAMES } from './types.js';
import type { GlobalRepresentations, RepresentationAggregate, RepresentationUpload } from './types.js';

const fixtureGlobal: GlobalRepresentations = { numSamples: 2, dim: 2, representations: { image: G } };
const upload = (clientId: string, image: Float32Array, numExamples = 1): RepresentationUpload => ({ clientId, numExamples, representations: { image } });

// A realistic small round: B = 8 public samples, D = 16; honest clients see the global's rows through noise.
const NB = 8;
const ND = 16;
const g = randomMatrix(100, NB, ND);
const round: GlobalRepresentations = { numSamples: NB, dim: ND, representations: { image: g } };
const honest = (seed: number): Float32Array => perturbed(g, seed, 0.4);
const fedafd = createRepresentationStrategy({ name: 'fedafd' });
const clientOf = (r: RepresentationAggregate, id: string) => r.clients.find((c) => c.clientId === id)!;

describe('RepresentationEnsemble (FedAFD): the two-client fixture by hand', () => {
  it('returns the weights, teacher, loss, trust and metrics written out below (τ = τ_w = 1)', () => {
    // Arrange: weights of sample 0 are A: 1/(1 + e^{s_B − s_A}) ≈ 0.4425, B ≈ 0.5575 (mirrored on sample 1).
    const wA0 = 1 / (1 + Math.exp(S_EXACT - S_BETWEEN));
    const strategy = createRepresentationStrategy({ name: 'fedafd', temperature: 1, weightTemperature: 1 });
    // Act
    const r = strategy.aggregate(1, fixtureGlobal, [upload('a', A), upload('b', B)]);
    // Assert: A_0 = (1,1) is rescaled to ‖g_0‖ = 1, i.e. (1/√2, 1/√2); B_0 = (1, 0) already has norm 1.
    const t0 = [wA0 * Math.SQRT1_2 + (1 - wA0), wA0 * Math.SQRT1_2];
    const t1 = [t0[1]!, t0[0]!];
    const loss = 0.5 * (((t0[0]! - 1) ** 2 + t0[1]! ** 2 + t1[0]! ** 2 + (t1[1]! - 1) ** 2) / 2);
    const image = r.teachers.image!;
    expect(image.clientIds).toEqual(['a', 'b']);
    expect([...image.weights[0]!]).toEqual([expect.closeTo(wA0, 12), expect.closeTo(1 - wA0, 12)]);
    expect([...image.teacher]).toEqual([...t0, ...t1].map((v) => expect.closeTo(v, 6)));
    expect(image.loss).toBeCloseTo(loss, 6); // ≈ 0.0573
    expect(r.clients).toEqual([
      { clientId: 'a', meanWeights: { image: expect.closeTo(0.5, 12) }, trust: expect.closeTo(1, 12) },
      { clientId: 'b', meanWeights: { image: expect.closeTo(0.5, 12) }, trust: expect.closeTo(1, 12) },
    ]);
    expect(r.metrics).toEqual({
      loss: expect.closeTo(loss, 6),
      'loss/image': expect.closeTo(loss, 6),
      'clients/image': 2,
      'meanWeight/image': expect.closeTo(0.5, 12),
      'minWeight/image': expect.closeTo(0.5, 12),
    });
    expect(r.excluded).toEqual([]);
    expect(r.rejected).toEqual([]);
  });

  it('never mutates its input', () => {
    const a = A.slice();
    const b = B.slice();
    const global = G.slice();

    fedafd.aggregate(3, { numSamples: 2, dim: 2, representations: { image: global } }, [upload('a', a), upload('b', b)]);

    expect([a, b, global]).toEqual([A, B, G]);
  });
});

describe('RepresentationEnsemble: the weight as a trust signal', () => {
  it('gives a noise client (as sent, ×10 or ×0.1) a near-zero weight and trust', () => {
    for (const scale of [1, 10, 0.1]) {
      const noise = randomMatrix(7, NB, ND).map((v) => v * scale);

      const r = fedafd.aggregate(1, round, [upload('h1', honest(1)), upload('h2', honest(2)), upload('noise', noise)]);

      expect(clientOf(r, 'noise').trust, `×${scale}`).toBeLessThan(0.05);
      expect(clientOf(r, 'noise').meanWeights.image!).toBeLessThan(0.02);
      expect(clientOf(r, 'h1').trust).toBe(1);
      expect(clientOf(r, 'h2').trust).toBe(1);
    }
  });

  it('gives an honest client sent ×10 or ×0.1 the same weight, and leaves the teacher unchanged (rows match the global’s norms)', () => {
    const base = fedafd.aggregate(1, round, [upload('h1', honest(1)), upload('h2', honest(2))]);
    for (const scale of [10, 0.1]) {
      const r = fedafd.aggregate(1, round, [
        upload(
          'h1',
          honest(1).map((v) => v * scale),
        ),
        upload('h2', honest(2)),
      ]);

      expect(clientOf(r, 'h1').meanWeights.image).toBeCloseTo(clientOf(base, 'h1').meanWeights.image!, 9);
      expect([...r.teachers.image!.teacher]).toEqual([...base.teachers.image!.teacher].map((v) => expect.closeTo(v, 5)));
    }
  });

  it('without norm matching, a ×10 client would pull the teacher ten times as far (what matchGlobalNorm prevents)', () => {
    const raw = createRepresentationStrategy({ name: 'fedafd', matchGlobalNorm: false });
    const one = raw.aggregate(1, round, [upload('h1', honest(1)), upload('h2', honest(2))]).teachers.image!.teacher;
    const ten = raw.aggregate(1, round, [
      upload(
        'h1',
        honest(1).map((v) => v * 10),
      ),
      upload('h2', honest(2)),
    ]).teachers.image!.teacher;

    const norm = (x: Float32Array): number => Math.hypot(...x);
    expect(norm(ten) / norm(one)).toBeGreaterThan(3);
  });

  it('excludes an echo of the global representations (a free rider) with code ECHO and weight 0, leaving the rest as without it', () => {
    const without = fedafd.aggregate(1, round, [upload('h1', honest(1)), upload('h2', honest(2))]);
    // Sent back through int8, the echo is not bit-exact: cosine ≈ 0.99998.
    const echo = g.map((v) => Math.round(v * 20) / 20);

    const r = fedafd.aggregate(1, round, [upload('h1', honest(1)), upload('echo', echo), upload('h2', honest(2))]);

    expect(r.excluded).toEqual([{ clientId: 'echo', modality: 'image', code: 'ECHO', message: expect.stringContaining('mean cosine') }]);
    expect(clientOf(r, 'echo')).toEqual({ clientId: 'echo', meanWeights: { image: 0 }, trust: 0 });
    expect(r.teachers.image!.clientIds).toEqual(['h1', 'h2']);
    expect([...r.teachers.image!.teacher]).toEqual([...without.teachers.image!.teacher]);
    expect(r.metrics['clients/image']).toBe(2);
  });

  it('makes copies of one upload share one client’s weight', () => {
    const copied = honest(1);
    const nearCopy = copied.map((v, i) => v + 1e-4 * ((i % 5) - 2));

    const r = fedafd.aggregate(1, round, [upload('h1', copied), upload('copy', nearCopy), upload('h2', honest(2)), upload('h3', honest(3))]);

    const w = (id: string): number => clientOf(r, id).meanWeights.image!;
    // Three voices (the copied pair, h2, h3) of similar quality: each pair member gets about half an honest share.
    expect(w('h1')).toBeCloseTo(w('copy'), 6);
    expect(w('h1') + w('copy')).toBeGreaterThan(0.5 * w('h2'));
    expect(w('copy')).toBeLessThan(0.7 * Math.min(w('h2'), w('h3')));
    expect(clientOf(r, 'copy').trust).toBeLessThan(clientOf(r, 'h2').trust);
  });

  it('copying a client gains nothing: the pair together weighs what the original alone would', () => {
    const alone = fedafd.aggregate(1, round, [upload('h1', honest(1)), upload('h2', honest(2))]);
    const copied = fedafd.aggregate(1, round, [upload('h1', honest(1)), upload('copy', honest(1)), upload('h2', honest(2))]);

    const pair = clientOf(copied, 'h1').meanWeights.image! + clientOf(copied, 'copy').meanWeights.image!;
    expect(pair).toBeCloseTo(clientOf(alone, 'h1').meanWeights.image!, 12);
    expect([...copied.teachers.image!.teacher]).toEqual([...alone.teachers.image!.teacher].map((v) => expect.closeTo(v, 6)));
  });
});

describe('RepresentationEnsemble: multimodal rounds, rejections and server mistakes', () => {
  it('weights each modality over the clients that hold it and averages trust over a client’s modalities', () => {
    const text = randomMatrix(200, NB, ND);
    const global: GlobalRepresentations = { numSamples: NB, dim: ND, representations: { image: g, text } };
    const uploads: RepresentationUpload[] = [
      { clientId: 'img', numExamples: 5, representations: { image: honest(1) } },
      { clientId: 'txt', numExamples: 5, representations: { text: perturbed(text, 3, 0.4) } },
      { clientId: 'pair', numExamples: 5, representations: { image: honest(2), text: randomMatrix(9, NB, ND) } },
    ];

    const r = fedafd.aggregate(2, global, uploads);

    expect(r.teachers.image!.clientIds).toEqual(['img', 'pair']);
    expect(r.teachers.text!.clientIds).toEqual(['txt', 'pair']);
    // 'pair' is honest on images (share ≈ ½ → 1) and noise on text (≈ 0): trust ≈ ½.
    expect(clientOf(r, 'pair').trust).toBeGreaterThan(0.4);
    expect(clientOf(r, 'pair').trust).toBeLessThan(0.6);
    expect(r.metrics['clients/text']).toBe(2);
    expect(r.metrics['loss']).toBeCloseTo((r.metrics['loss/image']! + r.metrics['loss/text']!) / 2, 12);
  });

  it('sets malformed uploads aside with a code and uses the rest as if they were absent', () => {
    const good = [upload('h1', honest(1)), upload('h2', honest(2))];
    const bad: RepresentationUpload[] = [
      upload('h1', honest(3)),
      upload('short', new Float32Array(3)),
      upload(
        'nan',
        honest(4).map((v, i) => (i === 5 ? Number.NaN : v)),
      ),
      { clientId: 'audio', numExamples: 1, representations: { audio: honest(5) } },
      { clientId: 'empty', numExamples: 1, representations: {} },
      upload('zero-examples', honest(6), 0),
    ];

    const r = fedafd.aggregate(1, round, [...good, ...bad]);

    expect(r.rejected.map((x) => [x.clientId, x.code])).toEqual([
      ['h1', 'DUPLICATE_RESULT'],
      ['short', 'REP_SHAPE'],
      ['nan', 'REP_NON_FINITE'],
      ['audio', 'REP_MODALITIES'],
      ['empty', 'REP_MODALITIES'],
      ['zero-examples', 'AGG_BAD_WEIGHTS'],
    ]);
    expect(r.teachers).toEqual(fedafd.aggregate(1, round, good).teachers);
  });

  it('returns no teacher when nobody contributes', () => {
    const r = fedafd.aggregate(1, round, []);

    expect(r.teachers).toEqual({});
    expect(r.metrics).toEqual({ loss: 0, 'clients/image': 0 });
  });

  it('throws REP_BAD_INPUT for the server’s own mistakes: a bad round or malformed global representations', () => {
    const ok = [upload('h1', honest(1))];
    expectFlCoreError(() => fedafd.aggregate(0, round, ok), 'REP_BAD_INPUT');
    expectFlCoreError(() => fedafd.aggregate(1, { ...round, representations: {} }, ok), 'REP_BAD_INPUT');
    expectFlCoreError(() => fedafd.aggregate(1, { ...round, representations: { image: new Float32Array(5) } }, ok), 'REP_BAD_INPUT');
    expectFlCoreError(() => fedafd.aggregate(1, { ...round, dim: 0 }, ok), 'REP_BAD_INPUT');
    expectFlCoreError(() => fedafd.aggregate(1, { ...round, representations: { image: g.map((v, i) => (i ? v : Number.NaN)) } }, ok), 'REP_BAD_INPUT');
  });

  it('refuses bad options at construction with REP_BAD_CONFIG', () => {
    const weighting = sedWeighting();
    const bad = [
      { echoThreshold: 0 },
      { copyThreshold: 1.5 },
      { distillationWeight: -0.1 },
      { matchGlobalNorm: 'yes' as never },
      { clientCoefficients: { adversarialWeight: Number.NaN, fusion: true, localDistillationWeight: 0 } },
      { clientCoefficients: { adversarialWeight: 0.5, fusion: 1 as never, localDistillationWeight: 0 } },
    ];
    for (const options of bad) expectFlCoreError(() => new RepresentationEnsemble({ name: 'fedafd', weighting, ...options }), 'REP_BAD_CONFIG');
  });

  it('LOCAL exchanges nothing: no teacher, no weight, distillation weight 0', () => {
    const local = createRepresentationStrategy({ name: 'local' });

    const r = local.aggregate(1, round, [upload('h1', honest(1))]);

    expect([local.exchangesRepresentations, local.distillationWeight]).toEqual([false, 0]);
    expect(r.teachers).toEqual({});
    expect(r.clients).toEqual([{ clientId: 'h1', meanWeights: { image: 0 }, trust: 0 }]);
  });
});

describe('RepresentationEnsemble: invariants of every method (properties)', () => {
  const dim = 4;
  const matrix = (numSamples: number) =>
    fc.float32Array({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true, minLength: numSamples * dim, maxLength: numSamples * dim });
  const roundArb = fc.integer({ min: 1, max: 4 }).chain((numSamples) =>
    fc.record({
      numSamples: fc.constant(numSamples),
      global: matrix(numSamples),
      clients: fc.array(fc.record({ rows: matrix(numSamples), numExamples: fc.integer({ min: 1, max: 100 }) }), { minLength: 1, maxLength: 4 }),
    }),
  );
  const build = (x: { numSamples: number; global: Float32Array; clients: { rows: Float32Array; numExamples: number }[] }) => ({
    global: { numSamples: x.numSamples, dim, representations: { image: x.global } },
    uploads: x.clients.map((c, k) => upload(`c${k}`, c.rows, c.numExamples)),
  });
  const weighted = REPRESENTATION_STRATEGY_NAMES.filter((n) => n !== 'local');

  it('weights sum to 1 on every sample, and permuting the clients permutes their weights', () => {
    fc.assert(
      fc.property(roundArb, fc.constantFrom(...weighted), (x, name) => {
        const { global, uploads } = build(x);
        const strategy = createRepresentationStrategy({ name });
        const r = strategy.aggregate(1, global, uploads);
        const reversed = strategy.aggregate(1, global, [...uploads].reverse());
        const t = r.teachers.image;
        if (t === undefined) return;
        for (let i = 0; i < x.numSamples; i++) expect(t.weights.reduce((a, w) => a + w[i]!, 0)).toBeCloseTo(1, 9);
        for (const c of r.clients) expect(clientOf(reversed, c.clientId).meanWeights.image).toBeCloseTo(c.meanWeights.image!, 9);
      }),
      { numRuns: 150 },
    );
  });

  it('a client identical to the global representation of every sample (any positive scale) is excluded', () => {
    fc.assert(
      fc.property(roundArb, fc.double({ min: 0.01, max: 100, noNaN: true }), fc.constantFrom(...weighted), (x, scale, name) => {
        // Rows of a real encoder are not (near) zero; a tiny row times 0.01 would underflow to 0 in float32.
        fc.pre(Array.from({ length: x.numSamples }, (_, i) => Math.hypot(...x.global.subarray(i * dim, (i + 1) * dim))).every((n) => n > 1e-3));
        const { global, uploads } = build(x);
        const echo = upload(
          'echo',
          x.global.map((v) => v * scale),
        );

        const r = createRepresentationStrategy({ name }).aggregate(1, global, [...uploads, echo]);

        expect(r.excluded.map((e) => [e.clientId, e.code])).toContainEqual(['echo', 'ECHO']);
        expect(clientOf(r, 'echo').trust).toBe(0);
        expect(r.teachers.image?.clientIds ?? []).not.toContain('echo');
      }),
      { numRuns: 150 },
    );
  });
});
