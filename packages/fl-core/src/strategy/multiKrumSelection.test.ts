import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { krum, multiKrumSelect } from '../aggregation/krum.js';
import { expectFlCoreError } from '../errors.test-util.js';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { Krum } from './krum.js';
import { MultiKrumSelection } from './multiKrumSelection.js';
import type { FitResult } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const values = (params: Parameters) => Object.fromEntries(params.map((p) => [p.name, Array.from(p.values)]));
const fit = (clientId: string, numExamples: number, ...delta: Parameters[number][]): FitResult => ({ clientId, numExamples, delta });
const global = [t('image/w', 0, 0), t('text/w', 0, 0), t('audio/w', 7)];

// Four honest clients holding image, text or both; `s` scales an honest image update ×10, `x` flips a text update.
const round = [
  fit('a', 1, t('image/w', 1, 0), t('text/w', 1, 0)),
  fit('b', 1, t('image/w', 1, 0.2)),
  fit('c', 1, t('image/w', 0.8, 0), t('text/w', 0.9, 0.1)),
  fit('d', 1, t('text/w', 1, -0.1)),
  fit('s', 1, t('image/w', 10, 0)),
  fit('x', 1, t('text/w', -1, 0)),
];

describe('MultiKrumSelection', () => {
  it('excludes a scaled and a sign-flipped client although each modality has only four senders, and keeps every honest one', () => {
    // Arrange: n = 6, f = 2, so m = 4 clients are kept; each group of 4 senders scores by the nearest neighbour.
    const strategy = new MultiKrumSelection({ numByzantine: 2 });
    // Act
    const out = strategy.aggregateFit(1, global, round, [])!;
    // Assert. Image squared distances to the nearest neighbour: a, b, c 0.04, s 81 → ÷ median 0.04 → 1, 1, 1, 2025.
    // Text: a 0.01, c 0.02, d 0.01, x 3.62 → ÷ median 0.015 → 2/3, 4/3, 2/3, 241.3. Mean over each client's groups:
    // a (1 + 2/3)/2 = 0.833, b 1, c (1 + 4/3)/2 = 1.167, d 0.667, s 2025, x 241.3 → d, a, b, c are kept.
    const scores = out.groups[0]!.clientScores!;
    expect(scores['a']).toBeCloseTo(5 / 6, 4);
    expect(scores['b']).toBeCloseTo(1, 4);
    expect(scores['c']).toBeCloseTo(7 / 6, 4);
    expect(scores['s']).toBeCloseTo(2025, 0);
    expect(out.groups[1]!.clientScores!['d']).toBeCloseTo(2 / 3, 4);
    expect(out.groups[1]!.clientScores!['x']).toBeCloseTo(3.62 / 0.015, 1);
    expect(out.metrics).toMatchObject({ numSelected: 4, numExcluded: 2, 'image:numSelected': 3, 'text:numSelected': 3 });
    // image: mean of a, b, c; text: mean of a, c, d; nobody sent audio.
    const v = values(out.parameters);
    expect(v['image/w']![0]).toBeCloseTo(2.8 / 3, 6);
    expect(v['image/w']![1]).toBeCloseTo(0.2 / 3, 6);
    expect(v['text/w']![0]).toBeCloseTo(2.9 / 3, 6);
    expect(v['text/w']![1]).toBeCloseTo(0, 6);
    expect(v['audio/w']).toEqual([7]);
    expect(out.groups.map((g) => g.status)).toEqual(['updated', 'updated', 'kept']);
  });

  it('per-group Multi-Krum on the same round keeps the scaled client (f_g = 0 in a four-sender group), which is what selection fixes', () => {
    const out = new Krum({ numByzantine: 2, numToKeep: 4 }).aggregateFit(1, global, round, [])!;
    expect(out.groups[0]!.metrics).toEqual({ effectiveNumByzantine: 0, numSelected: 4 });
    expect(values(out.parameters)['image/w']![0]).toBeCloseTo((1 + 1 + 0.8 + 10) / 4, 6);
  });

  it('skips a group that only excluded clients sent', () => {
    const out = new MultiKrumSelection({ numByzantine: 1 }).aggregateFit(
      1,
      global,
      [
        fit('a', 1, t('image/w', 1, 0)),
        fit('b', 1, t('image/w', 1.1, 0)),
        fit('c', 1, t('image/w', 0.9, 0)),
        fit('z', 1, t('image/w', 50, 0), t('audio/w', 9)),
      ],
      [],
    )!;
    expect(out.groups.map((g) => [g.group, g.status])).toEqual([
      ['image', 'updated'],
      ['text', 'kept'],
      ['audio', 'skipped'],
    ]);
    expect(values(out.parameters)['audio/w']).toEqual([7]);
  });

  it('refuses bad settings with coded errors', () => {
    expectFlCoreError(() => new MultiKrumSelection({ numByzantine: -1 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => new MultiKrumSelection({ numByzantine: 1, numSelected: 0 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => multiKrumSelect(2, [{ updates: [new Float32Array(1)], clients: [2] }], { numByzantine: 0, numToSelect: 1 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => multiKrumSelect(2, [], { numByzantine: 0, numToSelect: 3 }), 'AGG_BAD_CONFIG');
  });
});

describe('multiKrumSelect', () => {
  it('selects what Krum selects when every client sends the one group (property)', () => {
    const update = fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 3, maxLength: 3 });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }).chain((f) =>
          fc.record({
            f: fc.constant(f),
            updates: fc.array(update, { minLength: 2 * f + 3, maxLength: 2 * f + 6 }),
            m: fc.integer({ min: 1, max: f + 3 }),
          }),
        ),
        ({ f, updates, m }) => {
          const flats = updates.map((u) => Float32Array.from(u));
          const n = flats.length;
          const selection = multiKrumSelect(n, [{ updates: flats, clients: flats.map((_, k) => k) }], { numByzantine: f, numToSelect: m });
          expect([...selection.selected].sort((a, b) => a - b)).toEqual([...krum(flats, { numByzantine: f, numToKeep: m }).selected].sort((a, b) => a - b));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('gives a client no group scored a typical score of 1', () => {
    const result = multiKrumSelect(
      3,
      [
        { updates: [Float32Array.of(1), Float32Array.of(2)], clients: [0, 1] },
        { updates: [Float32Array.of(5)], clients: [2] },
      ],
      {
        numByzantine: 0,
        numToSelect: 2,
      },
    );
    expect(result.scores).toEqual([1, 1, 1]);
    expect(result.selected).toEqual([0, 1]);
  });
});
