import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boundedNumByzantine } from '../aggregation/krum.js';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { Krum } from './krum.js';
import type { FitResult } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const values = (params: Parameters) => Object.fromEntries(params.map((p) => [p.name, Array.from(p.values)]));
const fit = (clientId: string, numExamples: number, ...delta: Parameters[number][]): FitResult => ({ clientId, numExamples, delta });

const global = [t('image/w', 0, 0), t('text/w', 10, 10), t('audio/w', 5)];

describe('boundedNumByzantine', () => {
  it('is min(f, ⌊(n − 3)/2⌋), and 0 for n <= 2', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => boundedNumByzantine(n, 2))).toEqual([0, 0, 0, 0, 1, 1, 2, 2]);
    expect(boundedNumByzantine(100, 3)).toBe(3);
  });

  it('always leaves n > 2f + 2 for n >= 3 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 1000 }), fc.integer({ min: 0, max: 1000 }), (n, f) => {
        const bounded = boundedNumByzantine(n, f);
        expect(bounded).toBeLessThanOrEqual(f);
        expect(n).toBeGreaterThan(2 * bounded + 2);
        // The largest such f: one more would break the bound or exceed f.
        expect(bounded === f || n <= 2 * (bounded + 1) + 2).toBe(true);
      }),
    );
  });
});

describe('Krum with per-modality groups', () => {
  it('Multi-Krum updates every group when each has only two or three senders', () => {
    // image: a, b, c (3 senders); text: d, e (2); audio: c, f, g (3). With f = 1 every group used to
    // need more than 4 senders, so all three were skipped and the model did not move.
    const results = [
      fit('a', 1, t('image/w', 1, 1)),
      fit('b', 1, t('image/w', 2, 2)),
      fit('c', 2, t('image/w', 4, 4), t('audio/w', 3)),
      fit('d', 1, t('text/w', 2, 0)),
      fit('e', 3, t('text/w', 6, 4)),
      fit('f', 1, t('audio/w', 1)),
      fit('g', 1, t('audio/w', 0)),
    ];
    const strategy = new Krum({ numByzantine: 1, numToKeep: 4 });

    const out = strategy.aggregateFit(1, global, results, [])!;

    expect(out.groups.map((g) => [g.group, g.status])).toEqual([
      ['image', 'updated'],
      ['text', 'updated'],
      ['audio', 'updated'],
    ]);
    // f_g = 0 and m = min(4, n_g) keeps every sender; means weighted by examples:
    // image (1 + 2 + 2·4)/4 = 2.75; text (2 + 3·6)/4 = 5 and (0 + 3·4)/4 = 3; audio (2·3 + 1 + 0)/4 = 1.75.
    expect(values(out.parameters)).toEqual({ 'image/w': [2.75, 2.75], 'text/w': [15, 13], 'audio/w': [6.75] });
    expect(out.metrics).toMatchObject({ 'image:effectiveNumByzantine': 0, 'text:effectiveNumByzantine': 0, 'audio:effectiveNumByzantine': 0 });
    expect(out.groups[1]!.metrics).toEqual({ effectiveNumByzantine: 0, numSelected: 2 });
  });

  it('plain Krum on a three-sender group picks the update closest to another', () => {
    const results = [fit('a', 1, t('text/w', 0, 0)), fit('b', 1, t('text/w', 1, 0)), fit('c', 1, t('text/w', 9, 9))];

    const out = new Krum({ numByzantine: 2 }).aggregateFit(1, global, results, [])!;

    // f_g = 0: each score is the squared distance to the nearest other update; a and b tie at 1.
    expect(out.groups[1]!.clientScores).toEqual({ a: 1, b: 1, c: 145 });
    expect(values(out.parameters)['text/w']).toEqual([10, 10]);
  });

  it('still excludes a Byzantine outlier from a group with enough senders', () => {
    const image = (id: string, x: number, y: number) => fit(id, 1, t('image/w', x, y));
    // Six image senders give f_g = min(1, ⌊3/2⌋) = 1; the two text senders give f_g = 0.
    const results = [
      image('p', 0, 0),
      image('q', 1, 0),
      image('r', 0, 1),
      image('s', 1, 1),
      image('u', 0.5, 0.5),
      image('evil', 50, -40),
      fit('d', 1, t('text/w', 1, 1)),
      fit('e', 1, t('text/w', 3, 3)),
    ];

    const out = new Krum({ numByzantine: 1, numToKeep: 5 }).aggregateFit(1, global, results, [])!;

    const scores = out.groups[0]!.clientScores!;
    expect(Math.max(...Object.values(scores))).toBe(scores['evil']);
    expect(out.groups[0]!.metrics).toEqual({ effectiveNumByzantine: 1, numSelected: 5 });
    // The five honest updates are kept: their mean is (0.5, 0.5); evil would have pulled it to (8.75, −6.25).
    expect(values(out.parameters)).toEqual({ 'image/w': [0.5, 0.5], 'text/w': [12, 12], 'audio/w': [5] });
  });

  it('updates every group that has a sender, whatever the senders per group (property)', () => {
    const groups = ['image/w', 'text/w', 'audio/w'] as const;
    const client = fc.record({
      // Which groups the client sent (at least one), and its deltas.
      sends: fc.subarray([0, 1, 2], { minLength: 1 }),
      value: fc.integer({ min: -5, max: 5 }),
      numExamples: fc.integer({ min: 1, max: 5 }),
    });
    fc.assert(
      fc.property(fc.array(client, { minLength: 1, maxLength: 9 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 6 }), (clients, f, m) => {
        const results = clients.map((c, k) =>
          fit(
            `c${k}`,
            c.numExamples,
            ...c.sends.map((g) => (g === 1 ? t(groups[g]!, c.value, -c.value) : g === 0 ? t(groups[g]!, c.value, c.value) : t(groups[g]!, c.value))),
          ),
        );

        const out = new Krum({ numByzantine: f, numToKeep: m }).aggregateFit(1, global, results, [])!;

        for (const g of out.groups) expect(g.status).toBe(g.clientIds.length > 0 ? 'updated' : 'kept');
      }),
      { numRuns: 100 },
    );
  });
});
