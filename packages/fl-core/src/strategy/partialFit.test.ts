import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { FedAvg, FedProx } from './fedAvg.js';
import { NormClipping } from './normClipping.js';
import { Probation } from './probation.js';
import { PartialFitBuilder, decodePartialFit, encodePartialFit, partialFitOf } from './partialFit.js';
import type { PartialFit } from './partialFit.js';
import type { FitResult, Strategy } from './types.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const fit = (clientId: string, numExamples: number, delta: Parameters, metrics?: Record<string, number>): FitResult => ({
  clientId,
  numExamples,
  delta,
  ...(metrics ? { metrics } : {}),
});

const global = [t('image/w', 0.1, 0.2, 0.3), t('text/w', 10, -10), t('fusion/b', 5)];

/** A round of clients holding random groups (image, text, both) with random deltas and counts. */
const rounds = fc
  .array(
    fc.record({
      numExamples: fc.integer({ min: 1, max: 5000 }),
      groups: fc.subarray(['image', 'text'], { minLength: 1 }),
      image: fc.float32Array({ minLength: 3, maxLength: 3, min: -1, max: 1, noNaN: true }),
      text: fc.float32Array({ minLength: 2, maxLength: 2, min: -100, max: 100, noNaN: true }),
      loss: fc.double({ min: 0, max: 3, noNaN: true }),
    }),
    { minLength: 1, maxLength: 12 },
  )
  .map((clients) =>
    clients.map((c, k) =>
      fit(
        `client-${String(k).padStart(2, '0')}`,
        c.numExamples,
        c.groups.map((g) => tensor(`${g}/w`, [g === 'image' ? 3 : 2], g === 'image' ? c.image : c.text)),
        { loss: c.loss },
      ),
    ),
  );

const bits = (params: Parameters) => params.map((p) => [p.name, Array.from(new Uint32Array(p.values.buffer, p.values.byteOffset, p.values.length))]);

describe('partial sums of an exact-sum FedAvg round', () => {
  it('give the model of the whole round bit for bit, however clients are spread over nodes and ordered', () => {
    fc.assert(
      fc.property(rounds, fc.array(fc.nat(2), { minLength: 12, maxLength: 12 }), (results, nodeOf) => {
        const single = new FedAvg({ exactSum: true }).aggregateFit(1, global, results, [])!;
        const leader = new FedAvg({ exactSum: true });
        const hooks = leader.partials!;
        // Each node sums its own clients in its own order; the parts travel as bytes.
        const parts = [0, 1, 2].map((node) => {
          const mine = results.filter((_, k) => nodeOf[k] === node).reverse();
          return decodePartialFit(encodePartialFit(hooks.partial(1, global, mine)), 1, global);
        });
        const combined = hooks.aggregatePartials(1, global, parts.reverse(), [])!;
        expect(bits(combined.parameters)).toEqual(bits(single.parameters));
        expect(combined.metrics).toEqual(single.metrics);
        expect(combined.groups).toEqual(single.groups);
        const shuffled = new FedAvg({ exactSum: true }).aggregateFit(1, global, [...results].reverse(), [])!;
        expect(bits(shuffled.parameters)).toEqual(bits(single.parameters));
      }),
      { numRuns: 150 },
    );
  });

  it('differ from the float64 FedAvg by at most a float32 step of the step and of the result', () => {
    fc.assert(
      fc.property(rounds, (results) => {
        const exact = new FedAvg({ exactSum: true }).aggregateFit(1, global, results, [])!;
        const float = new FedAvg().aggregateFit(1, global, results, [])!;
        expect(exact.groups).toEqual(float.groups);
        // The step may round one float32 step apart, then global + step once more: at most
        // 2^-23·|step| + 2^-23·|result|, and |step| ≤ |global| + |result|.
        exact.parameters.forEach((p, j) => {
          const q = float.parameters[j]!;
          const g = global[j]!;
          for (let i = 0; i < p.values.length; i++) {
            expect(Math.abs(p.values[i]! - q.values[i]!)).toBeLessThanOrEqual(2 ** -22 * (Math.abs(g.values[i]!) + Math.abs(q.values[i]!)));
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it('are built one result at a time to the same bytes in any order', () => {
    fc.assert(
      fc.property(rounds, (results) => {
        const builder = new PartialFitBuilder(1, global);
        for (const r of [...results].reverse()) builder.add(r);
        expect(builder.size).toBe(results.length);
        expect(encodePartialFit(builder.build())).toEqual(encodePartialFit(partialFitOf(1, global, results)));
      }),
      { numRuns: 100 },
    );
  });

  it('pass through probation: whole-number weights (no newcomer set aside), the float model within rounding, the same bits and state in parts', () => {
    const results = [fit('a', 3, [t('image/w', 1, 1, 1)]), fit('b', 5, [t('image/w', -1, 0, 2)]), fit('c', 2, [t('text/w', 4, 4)])];
    const exactWhole = new Probation(new FedAvg({ exactSum: true }), 4);
    const exactParts = new Probation(new FedAvg({ exactSum: true }), 4);
    const float = new Probation(new FedAvg(), 4);
    // 'a' settles in round 1, so round 2 weighs it more than the newcomers.
    for (const s of [exactWhole, exactParts, float]) s.aggregateFit(1, global, [results[0]!], []);
    const whole = exactWhole.aggregateFit(2, global, results, [])!;
    const hooks = exactParts.partials!;
    const parts = hooks.aggregatePartials(2, global, [hooks.partial(2, global, [results[2]!, results[0]!]), hooks.partial(2, global, [results[1]!])], [])!;
    const floatOut = float.aggregateFit(2, global, results, [])!;
    expect(whole.rejected).toEqual([]);
    expect(bits(parts.parameters)).toEqual(bits(whole.parameters));
    expect(parts.metrics).toEqual(whole.metrics);
    expect(whole.metrics).toMatchObject({ numOnProbation: 3, meanProbationFactor: (2 / 4 + 1 / 4 + 1 / 4) / 3 });
    expect(exactParts.exportState()).toEqual(exactWhole.exportState());
    whole.parameters.forEach((p, j) =>
      p.values.forEach((v, i) => expect(Math.abs(v - floatOut.parameters[j]!.values[i]!)).toBeLessThanOrEqual(2 ** -20 * (1 + Math.abs(v)))),
    );
    // Built one result at a time, the same partial.
    const running = hooks.start(3, global);
    for (const r of results) running.add(r);
    expect(encodePartialFit(running.build())).toEqual(encodePartialFit(hooks.partial(3, global, results)));
  });

  it('report groups nobody sent as kept, and the round figures FedAvg reports', () => {
    const results = [fit('b', 3, [t('text/w', 2, 4)], { loss: 1 }), fit('a', 1, [t('image/w', 1, 1, 1)], { loss: 2 })];
    const out = new FedAvg({ exactSum: true }).aggregateFit(1, global, results, [{ clientId: 'c', code: 'TIMEOUT' }])!;
    expect(out.groups.map((g) => [g.group, g.status, g.clientIds])).toEqual([
      ['image', 'updated', ['a']],
      ['text', 'updated', ['b']],
      ['fusion', 'kept', []],
    ]);
    expect(Array.from(out.parameters[1]!.values)).toEqual([12, -6]);
    expect(out.metrics).toMatchObject({ loss: 1.25, numResults: 2, numFailures: 1, numRejected: 0, numExamples: 4, 'clients:image': 1, 'clients:text': 1 });
  });

  it('set aside what aggregateFit sets aside, and fractional example counts', () => {
    const results = [fit('a', 2, [t('image/w', 1, 1, 1)]), fit('b', 1.5, [t('image/w', 1, 1, 1)]), fit('c', 1, [t('image/w', 1, Number.NaN, 1)])];
    const out = new FedAvg({ exactSum: true }).aggregateFit(1, global, results, [])!;
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual([
      ['b', 'AGG_BAD_WEIGHTS'],
      ['c', 'PARAMS_NON_FINITE'],
    ]);
    expect(out.groups[0]!.clientIds).toEqual(['a']);
  });

  it('are offered only by FedAvg and FedProx with exactSum, forwarded by probation, by no wrapper that reads every update', () => {
    expect(new FedAvg().partials).toBeUndefined();
    expect(new FedProx({ proximalMu: 0.1, exactSum: true }).partials).toBeDefined();
    const wrapped: Strategy = new NormClipping(new FedAvg({ exactSum: true }), { maxNorm: 1 });
    expect(wrapped.partials).toBeUndefined();
    expect(new Probation(new FedAvg({ exactSum: true }), 5).partials).toBeDefined();
    expect(new Probation(new FedAvg(), 5).partials).toBeUndefined();
  });

  it('refuse parts of another round, a client in two parts, and tampered bytes, changing nothing', () => {
    const strategy = new FedAvg({ exactSum: true });
    const hooks = strategy.partials!;
    const a = hooks.partial(2, global, [fit('a', 2, [t('image/w', 1, 1, 1)])]);
    const before = JSON.stringify(strategy.exportState());
    expectFlCoreError(() => hooks.aggregatePartials(3, global, [a], []), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => hooks.aggregatePartials(2, global, [a, hooks.partial(2, global, [fit('a', 1, [t('text/w', 1, 1)])])], []), 'AGG_BAD_PARTIAL');
    expect(JSON.stringify(strategy.exportState())).toBe(before);

    const bytes = encodePartialFit(a);
    const headerLength = new DataView(bytes.buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as Record<string, unknown>;
    const withHeader = (h: unknown): Uint8Array => {
      const json = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(4 + json.byteLength + bytes.byteLength - 4 - headerLength);
      new DataView(out.buffer).setUint32(0, json.byteLength, true);
      out.set(json, 4);
      out.set(bytes.subarray(4 + headerLength), 4 + json.byteLength);
      return out;
    };
    const groups = header.groups as Record<string, unknown>[];
    expect(decodePartialFit(withHeader(header), 2, global).entries).toEqual(a.entries);
    expectFlCoreError(() => decodePartialFit(bytes, 3, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => decodePartialFit(withHeader({ ...header, groups: [{ ...groups[0], weight: 3 }] }), 2, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => decodePartialFit(withHeader({ ...header, groups: [{ ...groups[0], group: 'audio' }] }), 2, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => decodePartialFit(withHeader({ ...header, groups: [{ ...groups[0], clientIds: ['z'] }] }), 2, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(
      () => decodePartialFit(withHeader({ ...header, entries: [...(header.entries as unknown[]), { clientId: 'a', numExamples: 1 }] }), 2, global),
      'AGG_BAD_PARTIAL',
    );
    // The sum's bytes say the text group's length, not the image group's.
    expectFlCoreError(() => decodePartialFit(withHeader({ ...header, groups: [{ ...groups[0], group: 'text' }] }), 2, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => decodePartialFit(Uint8Array.of(...bytes, 0), 2, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => decodePartialFit(bytes.subarray(0, bytes.byteLength - 1), 2, global), 'AGG_BAD_PARTIAL');
    expectFlCoreError(() => decodePartialFit(Uint8Array.of(255, 255, 255, 255), 2, global), 'AGG_BAD_PARTIAL');
  });

  it('answer any bytes with a partial or AGG_BAD_PARTIAL', () => {
    const good: PartialFit = partialFitOf(1, global, [fit('a', 2, [t('image/w', 1, 1, 1)])]);
    const bytes = encodePartialFit(good);
    fc.assert(
      fc.property(fc.nat(bytes.byteLength - 1), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 }), (at, value, junk) => {
        for (const b of [Uint8Array.from(bytes, (x, i) => (i === at ? value : x)), junk]) {
          try {
            decodePartialFit(b, 1, global);
          } catch (err) {
            expect((err as { code?: string }).code).toBe('AGG_BAD_PARTIAL');
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
