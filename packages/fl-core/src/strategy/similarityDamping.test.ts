import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { cosineSimilarity, tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { createRng, gaussian } from '../rng.js';
import { FedAvg } from './fedAvg.js';
import { Probation } from './probation.js';
import { DEFAULT_MAX_HISTORIES, SimilarityDamping, addSketch, foolsGoldWeights } from './similarityDamping.js';
import type { FitResult, Strategy } from './types.js';

const t = (name: string, values: Float32Array) => tensor(name, [values.length], values);
const randomVector = (seed: number, n = 400): Float32Array => {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => gaussian(rng));
};
const fit = (clientId: string, values: Float32Array): FitResult => ({ clientId, numExamples: 10, delta: [t('image/w', values)] });
const global: Parameters = [t('image/w', new Float32Array(400))];

describe('addSketch', () => {
  it('is linear and keeps the cosine of two updates to within a few hundredths', () => {
    // Arrange: b shares half of a's direction.
    const a = randomVector(1, 5000);
    const noise = randomVector(2, 5000);
    const b = a.map((x, j) => x + noise[j]!);
    // Act
    const sa = addSketch(new Float32Array(1024), [t('image/w', a)]);
    const sb = addSketch(new Float32Array(1024), [t('image/w', b)]);
    const sum = addSketch(addSketch(new Float32Array(1024), [t('image/w', a)]), [t('image/w', noise)]);
    // Assert
    expect(Math.abs(cosineSimilarity(sa, sb) - cosineSimilarity(a, b))).toBeLessThan(0.05);
    sum.forEach((v, i) => expect(v).toBeCloseTo(sb[i]!, 3));
  });

  it('puts coordinate j of a tensor in bucket murmur3-mix(FNV-1a(name) ^ (j + 1)·φ) with the sign of its top bit, shorter or longer tensors of one name alike', () => {
    // Arrange: the hash as specified, computed here without the module's cache.
    const mix = (x: number) => {
      x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
      x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
      return (x ^ (x >>> 16)) >>> 0;
    };
    const fnv = (name: string) => [...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 0x01000193), 0x811c9dc5) >>> 0;
    const reference = (size: number, name: string, v: Float32Array) => {
      const out = new Float32Array(size);
      for (let j = 0; j < v.length; j++) {
        const h = mix(fnv(name) ^ Math.imul(j + 1, 0x9e3779b1));
        out[h & (size - 1)]! += h & 0x80000000 ? -v[j]! : v[j]!;
      }
      return out;
    };
    // Act / Assert: a short tensor, then a longer one of the same name (the kept hashes grow), then the short one again.
    for (const n of [300, 5000, 300]) {
      const v = randomVector(n, n);
      expect(Buffer.from(addSketch(new Float32Array(128), [t('fusion/w', v)]).buffer)).toEqual(Buffer.from(reference(128, 'fusion/w', v).buffer));
    }
  });

  it('hashes tensors by name, so equal values under different names land apart', () => {
    const v = randomVector(3, 2000);
    const x = addSketch(new Float32Array(256), [t('image/w', v)]);
    const y = addSketch(new Float32Array(256), [t('text/w', v)]);
    expect(Math.abs(cosineSimilarity(x, y))).toBeLessThan(0.2);
  });
});

describe('foolsGoldWeights', () => {
  it('gives copies weight 0 and distinct clients weight 1', () => {
    const sybil = randomVector(10);
    const w = foolsGoldWeights([randomVector(11), randomVector(12), sybil, sybil.slice(), sybil.slice(), randomVector(13)]);
    expect(w).toEqual([1, 1, 0, 0, 0, 1]);
  });

  it('leaves one client alone and gives nobody weight when everyone is a copy', () => {
    const v = randomVector(20);
    expect(foolsGoldWeights([v])).toEqual([1]);
    expect(foolsGoldWeights([v, v.slice()])).toEqual([0, 0]);
    expect(foolsGoldWeights([v, v.slice(), v.map((x) => x * 2)])).toEqual([0, 0, 0]);
  });

  it('damps near-copies (an attacker adding a little noise per identity) as well', () => {
    const sybil = randomVector(30);
    const copy = (seed: number) => {
      const n = randomVector(seed);
      return sybil.map((x, j) => x + 0.3 * n[j]!);
    };
    const w = foolsGoldWeights([randomVector(31), randomVector(32), copy(33), copy(34), copy(35)]);
    expect(w.slice(0, 2)).toEqual([1, 1]);
    for (const x of w.slice(2)) expect(x).toBeLessThan(0.05);
  });
});

describe('SimilarityDamping', () => {
  it('leaves a round of distinct clients exactly as the inner strategy aggregates it', () => {
    const results = [fit('a', randomVector(40)), fit('b', randomVector(41)), fit('c', randomVector(42))];
    const damped = new SimilarityDamping(new FedAvg()).aggregateFit(1, global, results, [])!;
    const plain = new FedAvg().aggregateFit(1, global, results, [])!;
    expect(damped.parameters[0]!.values).toEqual(plain.parameters[0]!.values);
    expect(damped.metrics).toMatchObject({ numDamped: 0, minSimilarityWeight: 1 });
  });

  it('leaves copies out with SIMILAR_UPDATES, so three identities count as none', () => {
    // Arrange
    const honest = [fit('a', randomVector(50)), fit('b', randomVector(51))];
    const attack = randomVector(52);
    const sybils = ['s1', 's2', 's3'].map((id) => fit(id, attack.slice()));
    const strategy = new SimilarityDamping(new FedAvg());
    // Act
    const out = strategy.aggregateFit(1, global, [...honest, ...sybils], [])!;
    // Assert: the honest mean alone.
    const honestOnly = new FedAvg().aggregateFit(1, global, honest, [])!;
    expect(out.parameters[0]!.values).toEqual(honestOnly.parameters[0]!.values);
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual([
      ['s1', 'SIMILAR_UPDATES'],
      ['s2', 'SIMILAR_UPDATES'],
      ['s3', 'SIMILAR_UPDATES'],
    ]);
    expect(strategy.name).toBe('similarity-damping(fedavg)');
    expect(strategy.sketches().size).toBe(5);
    // Copies are not invited again.
    const plan = strategy.configureFit({ serverRound: 2, availableClients: ['a', 'b', 's1', 's2', 's3', 'c'], rng: createRng(1) });
    expect([...plan.clientIds].sort()).toEqual(['a', 'b', 'c']);
    expect([...strategy.excludedClients()].sort()).toEqual(['s1', 's2', 's3']);
  });

  it('leaves a client weighed 0 only for being much alike another out of that round, and invites it again; a copy, never again', () => {
    // Arrange: b is a with 1 % noise (a cosine near 0.99, not a copy); c is distinct; s1 and s2 are copies.
    const a = randomVector(120);
    const noise = randomVector(121);
    const b = a.map((x, j) => x + 0.01 * noise[j]!);
    const attack = randomVector(122);
    const strategy = new SimilarityDamping(new FedAvg());
    // Act
    const out = strategy.aggregateFit(1, global, [fit('a', a), fit('b', b), fit('c', randomVector(123)), fit('s1', attack), fit('s2', attack.slice())], [])!;
    const plan = strategy.configureFit({ serverRound: 2, availableClients: ['a', 'b', 'c', 's1', 's2'], rng: createRng(2) });
    // Assert
    expect(out.rejected.map((r) => [r.clientId, r.code])).toEqual([
      ['a', 'SIMILAR_UPDATES'],
      ['b', 'SIMILAR_UPDATES'],
      ['s1', 'SIMILAR_UPDATES'],
      ['s2', 'SIMILAR_UPDATES'],
    ]);
    expect([...plan.clientIds].sort()).toEqual(['a', 'b', 'c']);
    expect([...strategy.excludedClients()].sort()).toEqual(['s1', 's2']);
  });

  it('measures a round of copies alone against the clients seen before, and leaves every copy out', () => {
    // Arrange: honest clients in round 1; round 2 holds only the attacker's identities.
    const strategy = new SimilarityDamping(new FedAvg());
    strategy.aggregateFit(1, global, [fit('a', randomVector(100)), fit('b', randomVector(101))], []);
    const attack = randomVector(102);
    // Act
    const out = strategy.aggregateFit(2, global, [fit('s1', attack), fit('s2', attack.slice()), fit('s3', attack.slice())], []);
    // Assert: nothing left to aggregate, and nothing committed.
    expect(out).toBeNull();
    expect([...strategy.sketches().keys()].sort()).toEqual(['a', 'b']);
  });

  it('leaves out identities that send the same update this round even when their histories differ', () => {
    // Arrange: s1 and s2 were sampled into different earlier rounds with different updates.
    const strategy = new SimilarityDamping(new FedAvg());
    strategy.aggregateFit(1, global, [fit('a', randomVector(110)), fit('b', randomVector(111)), fit('s1', randomVector(112))], []);
    strategy.aggregateFit(2, global, [fit('a', randomVector(113)), fit('b', randomVector(114)), fit('s2', randomVector(115))], []);
    const attack = randomVector(116);
    // Act
    const out = strategy.aggregateFit(3, global, [fit('a', randomVector(117)), fit('b', randomVector(118)), fit('s1', attack), fit('s2', attack.slice())], [])!;
    // Assert
    expect(out.rejected.map((r) => r.clientId)).toEqual(['s1', 's2']);
  });

  it('remembers history: identities that copied each other stay damped when one later sends something else', () => {
    const strategy = new SimilarityDamping(new FedAvg());
    const attack = randomVector(60);
    for (let r = 1; r <= 3; r++) strategy.aggregateFit(r, global, [fit('a', randomVector(60 + r)), fit('s1', attack), fit('s2', attack)], []);
    const out = strategy.aggregateFit(4, global, [fit('a', randomVector(70)), fit('s1', attack), fit('s2', randomVector(71))], [])!;
    expect(out.metrics['numDamped']).toBeGreaterThanOrEqual(2);
  });

  it('gives the bits of a recomputation from the histories alone, round after round, though it keeps cosines between rounds', () => {
    // Arrange: 12 rounds over a pool of 14 identities (4 of one attacker, who copies from round 5),
    // each round a seeded draw of 5–9 of them; round 7 builds no model (every copy of one client), so nothing is committed.
    const rng = createRng(91);
    const ids = Array.from({ length: 14 }, (_, k) => (k < 4 ? `s${k}` : `h${k}`));
    const cached = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    for (let round = 1; round <= 12; round++) {
      const picked = ids.filter(() => rng() < 0.55);
      const attack = randomVector(1000 + round);
      const results =
        round === 7
          ? ['s0', 's1'].map((id) => fit(id, attack.slice()))
          : picked.map((id, k) => fit(id, id.startsWith('s') && round >= 5 ? attack.slice() : randomVector(round * 100 + k)));
      // The reference starts from the cached strategy's committed state with nothing kept between rounds.
      const fresh = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
      fresh.importState(cached.exportState());
      const histories = new Map(fresh.sketches());
      // Act
      const a = cached.aggregateFit(round, global, results, []);
      const b = fresh.aggregateFit(round, global, results, []);
      // Assert
      expect(a === null).toBe(b === null);
      if (a === null || b === null) continue;
      expect(Buffer.from(a.parameters[0]!.values.buffer)).toEqual(Buffer.from(b.parameters[0]!.values.buffer));
      expect(a.metrics).toEqual(b.metrics);
      expect(a.rejected).toEqual(b.rejected);
      expect(cached.exportState()).toEqual(fresh.exportState());
      // And the weights are foolsGoldWeights' over every history, this round's updates included.
      for (const r of results) histories.set(r.clientId, addSketch((histories.get(r.clientId) ?? new Float32Array(64)).slice(), r.delta));
      const order = [...histories.keys()];
      const sketch = (k: number) => addSketch(new Float32Array(64), results.find((r) => r.clientId === order[k])!.delta);
      const inRound = new Set(results.map((r) => r.clientId));
      const weights = foolsGoldWeights(
        order.map((id) => histories.get(id)!),
        1,
        (i, j) => (inRound.has(order[i]!) && inRound.has(order[j]!) ? cosineSimilarity(sketch(i), sketch(j)) : Number.NEGATIVE_INFINITY),
      );
      expect(a.metrics['minSimilarityWeight']).toBe(Math.min(...results.map((r) => weights[order.indexOf(r.clientId)]!)));
    }
    expect(cached.excludedClients().size).toBeGreaterThan(0);
  });

  it('gives the same bits whether or not results were observed as they arrived: stale, refused, re-labelled and never-closed arrivals included', () => {
    // Arrange: two strategies given the same rounds; one is shown a seeded part of each round's results
    // (and results that never reach a close) as they arrive. 10 rounds over 12 identities, an attacker copying from round 4.
    const rng = createRng(77);
    const ids = Array.from({ length: 12 }, (_, k) => (k < 3 ? `s${k}` : `h${k}`));
    const observed = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    const plain = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    let leftOver: FitResult[] = [];
    for (let round = 1; round <= 10; round++) {
      const attack = randomVector(2000 + round);
      const results = ids.filter(() => rng() < 0.6).map((id, k) => fit(id, id.startsWith('s') && round >= 4 ? attack.slice() : randomVector(round * 50 + k)));
      for (const r of results) if (rng() < 0.7) observed.observeFit(round, global, r);
      // Arrivals that never reach this close: a refused upload, and one shown under another client's id.
      observed.observeFit(round, global, fit('h99', randomVector(round + 5000)));
      if (results.length > 1) observed.observeFit(round, global, { ...results[0]!, clientId: 'h98' });
      // Arrivals computed against a state since replaced: results observed before the last close come back.
      const stale = leftOver.filter((r) => !results.some((x) => x.clientId === r.clientId));
      leftOver = results.slice();
      if (round === 6) {
        // An imported state drops the kept cosines: arrivals then carry no row.
        const state = plain.exportState();
        observed.importState(state);
        plain.importState(state);
        for (const r of results) observed.observeFit(round, global, r);
      }
      // Act
      const a = observed.aggregateFit(round, global, [...results, ...stale], []);
      const b = plain.aggregateFit(round, global, [...results, ...stale], []);
      // Assert
      expect(a === null).toBe(b === null);
      if (a === null || b === null) continue;
      expect(Buffer.from(a.parameters[0]!.values.buffer)).toEqual(Buffer.from(b.parameters[0]!.values.buffer));
      expect(a.metrics).toEqual(b.metrics);
      expect(a.rejected).toEqual(b.rejected);
      expect(observed.exportState()).toEqual(plain.exportState());
    }
    expect(plain.excludedClients().size).toBeGreaterThan(0);
  });

  it('reads at the close what was computed as a result arrived, while the committed state it was computed against still holds', () => {
    // Arrange: a result observed, then its values changed in place, which no upload's are: only an
    // arrival that is used shows through. The sketch of `v` differs from the sketch of `w`.
    const v = randomVector(300);
    const w = randomVector(301);
    const strategy = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    strategy.aggregateFit(1, global, [fit('b', randomVector(302)), fit('c', randomVector(303))], []);
    const current = fit('a', v.slice());
    strategy.observeFit(2, global, current);
    current.delta[0]!.values.set(w);
    // Act: the arrival is current at round 2's close.
    strategy.aggregateFit(2, global, [current, fit('b', randomVector(304))], []);
    // Assert: a's history is the sketch of what arrived, not of what the close was handed.
    expect(Array.from(strategy.sketches().get('a')!)).toEqual(Array.from(addSketch(new Float32Array(64), [t('image/w', v)])));
    // Arrange: an arrival observed before round 3's close and handed to round 4 is stale.
    const late = fit('d', v.slice());
    strategy.observeFit(3, global, late);
    strategy.aggregateFit(3, global, [fit('b', randomVector(305)), fit('c', randomVector(306))], []);
    late.delta[0]!.values.set(w);
    // Act
    strategy.aggregateFit(4, global, [late, fit('c', randomVector(307))], []);
    // Assert: computed afresh from what round 4 was handed.
    expect(Array.from(strategy.sketches().get('d')!)).toEqual(Array.from(addSketch(new Float32Array(64), [t('image/w', w)])));
  });

  it('hears of arrivals through a wrapper that aggregates the same deltas', () => {
    // Arrange: as above, a result's values changed in place after it was observed.
    const v = randomVector(310);
    const r = fit('a', v.slice());
    const inner = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    const outer: Strategy = new Probation(inner, 3);
    outer.observeFit?.(1, global, r);
    r.delta[0]!.values.set(randomVector(311));
    // Act
    outer.aggregateFit(1, global, [r, fit('b', randomVector(312))], []);
    // Assert: probation passed the arrival on.
    expect(Array.from(inner.sketches().get('a')!)).toEqual(Array.from(addSketch(new Float32Array(64), [t('image/w', v)])));
  });

  it('keeps the cosines of histories, not the floors of a round in which two clients sent the same update', () => {
    // Arrange: a and b send one update together in round 2 (a floor of 1 that round); in round 3
    // neither sends, so their pair's kept cosine is read, and c, whose update resembles a's, is pardoned by it.
    const cached = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    const shared = randomVector(400);
    const a1 = randomVector(401);
    const rounds = [
      [fit('a', a1), fit('b', randomVector(402)), fit('c', randomVector(403)), fit('d', randomVector(408))],
      [fit('a', shared), fit('b', shared.slice()), fit('c', randomVector(404)), fit('d', randomVector(409))],
      [
        fit(
          'c',
          a1.map((x, i) => x + shared[i]!),
        ),
        fit('d', randomVector(407)),
      ],
    ];
    for (const [k, results] of rounds.entries()) {
      const fresh = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
      fresh.importState(cached.exportState());
      // Act
      const a = cached.aggregateFit(k + 1, global, results, [])!;
      const b = fresh.aggregateFit(k + 1, global, results, [])!;
      // Assert: the same as a recomputation from the histories alone.
      expect(a.rejected).toEqual(b.rejected);
      expect(a.metrics).toEqual(b.metrics);
    }
  });

  it('after an import, rebuilds the kept cosines a share at a time as results arrive, and closes with the same bits', () => {
    // Arrange: 200 clients seen, then the state imported into a new strategy (a restart, a new leader).
    const seenRound = Array.from({ length: 200 }, (_, k) => fit(`h${k}`, randomVector(600 + k, 40)));
    const small: Parameters = [t('image/w', new Float32Array(40))];
    const before = new SimilarityDamping(new FedAvg(), { sketchSize: 16 });
    before.aggregateFit(1, small, seenRound, []);
    expect(before.keptRows()).toBe(200);
    const restarted = new SimilarityDamping(new FedAvg(), { sketchSize: 16 });
    const plain = new SimilarityDamping(new FedAvg(), { sketchSize: 16 });
    restarted.importState(before.exportState());
    plain.importState(before.exportState());
    const round = Array.from({ length: 80 }, (_, k) => fit(`h${k * 2}`, randomVector(900 + k, 40)));
    // Act
    const kept = [restarted.keptRows()];
    for (const r of round) {
      restarted.observeFit(2, small, r);
      kept.push(restarted.keptRows());
    }
    const a = restarted.aggregateFit(2, small, round, [])!;
    const b = plain.aggregateFit(2, small, round, [])!;
    // Assert: none kept after the import, a share more with each arrival, all of them within 64 arrivals.
    expect(kept[0]).toBe(0);
    expect(kept[1]).toBeGreaterThan(0);
    expect(kept[1]).toBeLessThan(200);
    expect(kept[64]).toBe(200);
    expect(Buffer.from(a.parameters[0]!.values.buffer)).toEqual(Buffer.from(b.parameters[0]!.values.buffer));
    expect(a.metrics).toEqual(b.metrics);
    expect(a.rejected).toEqual(b.rejected);
    expect(restarted.exportState()).toEqual(plain.exportState());
  });

  it('passes a malformed result through to be rejected as usual and does not keep its history', () => {
    const bad: FitResult = { clientId: 'nan', numExamples: 10, delta: [t('image/w', new Float32Array(400).fill(Number.NaN))] };
    const strategy = new SimilarityDamping(new FedAvg());
    const out = strategy.aggregateFit(1, global, [fit('a', randomVector(80)), bad], [])!;
    expect(out.rejected.map((r) => r.code)).toEqual(['PARAMS_NON_FINITE']);
    expect([...strategy.sketches().keys()]).toEqual(['a']);
  });

  it('round-trips its histories through exportState (same next round) and refuses a malformed state, changing nothing', () => {
    // Arrange
    const a = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    const attack = randomVector(90);
    a.aggregateFit(1, global, [fit('x', randomVector(91)), fit('y', attack), fit('z', randomVector(92))], []);
    const state = JSON.parse(JSON.stringify(a.exportState())) as ReturnType<typeof a.exportState>;
    const b = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    b.importState(state);
    // Act
    const next = [fit('x', randomVector(93)), fit('y', attack), fit('w', attack)];
    const fromA = a.aggregateFit(2, global, next, [])!;
    const fromB = b.aggregateFit(2, global, next, [])!;
    // Assert
    expect(fromB.parameters[0]!.values).toEqual(fromA.parameters[0]!.values);
    expect(fromB.metrics).toEqual(fromA.metrics);
    const c2 = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    c2.importState(JSON.parse(JSON.stringify(a.exportState())) as ReturnType<typeof a.exportState>);
    expect([...c2.excludedClients()].sort()).toEqual(['w', 'y']);
    const c = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    const wrongSize = { ...state, json: { ...state.json, extra: { ...(state.json.extra as object), sketchSize: 128 } } };
    expectFlCoreError(() => c.importState(wrongSize), 'AGG_BAD_STATE');
    expect(c.sketches().size).toBe(0);
  });

  it('exports each history as base64 float32 and still reads the numbers of states exported before; refuses a bad history', () => {
    // Arrange
    const a = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    a.aggregateFit(1, global, [fit('x', randomVector(94)), fit('y', randomVector(95))], []);
    const state = a.exportState();
    const extra = state.json.extra as { histories: [string, string, number][] };
    const withHistories = (histories: unknown) => ({ ...state, json: { ...state.json, extra: { ...extra, histories } } });
    // Act: the same state written the former way, with numbers.
    const asNumbers = withHistories([...a.sketches()].sort(([p], [q]) => (p < q ? -1 : 1)).map(([id, h]) => [id, Array.from(h)]));
    const b = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    b.importState(asNumbers);
    // Assert
    expect(extra.histories.map(([id, h, last]) => [id, typeof h, h.length, last])).toEqual([
      ['x', 'string', 344, 1],
      ['y', 'string', 344, 1],
    ]);
    // The former way said nothing of the round that last changed a history: 0.
    expect(b.exportState()).toEqual(withHistories(extra.histories.map(([id, h]) => [id, h, 0])));
    const c = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
    c.importState(withHistories(extra.histories.map(([id, h]) => [id, h])));
    expect(c.exportState()).toEqual(b.exportState());
    for (const bad of [
      [['x', 'A'.repeat(343)]],
      [['x', `${'A'.repeat(342)}!=`]],
      [['x', btoa(String.fromCharCode(...new Uint8Array(new Float32Array(64).fill(Number.POSITIVE_INFINITY).buffer)))]],
      [['x', Array.from({ length: 63 }, () => 0)]],
      [['x', 7]],
      [['x', extra.histories[0]![1], -1]],
      [['x', extra.histories[0]![1], 1.5]],
      [['x', extra.histories[0]![1], 1, 2]],
    ]) {
      const c = new SimilarityDamping(new FedAvg(), { sketchSize: 64 });
      expectFlCoreError(() => c.importState(withHistories(bad)), 'AGG_BAD_STATE');
      expect(c.sketches().size).toBe(0);
    }
  });

  it('refuses a bad configuration with AGG_BAD_CONFIG', () => {
    expectFlCoreError(() => new SimilarityDamping(new FedAvg(), { kappa: 0 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => new SimilarityDamping(new FedAvg(), { sketchSize: 1000 }), 'AGG_BAD_CONFIG');
    expectFlCoreError(() => new SimilarityDamping(new FedAvg(), { sketchSize: 8 }), 'AGG_BAD_CONFIG');
    for (const maxHistories of [1, 2.5, 0, Number.POSITIVE_INFINITY, 2_000_000])
      expectFlCoreError(() => new SimilarityDamping(new FedAvg(), { maxHistories }), 'AGG_BAD_CONFIG');
    expect(new SimilarityDamping(new FedAvg()).maxHistories).toBe(DEFAULT_MAX_HISTORIES);
    expect(new SimilarityDamping(new FedAvg(), { maxHistories: null }).maxHistories).toBeNull();
  });

  describe('with a bound on the histories kept', () => {
    // 30 rounds over 12 identities (3 of one attacker, who copies from round 10), each round a seeded
    // draw of 2–5 of them; round 20 builds no model (every copy of one client).
    const rounds = (() => {
      const rng = createRng(57);
      const ids = Array.from({ length: 12 }, (_, k) => (k < 3 ? `s${k}` : `h${k}`));
      return Array.from({ length: 30 }, (_, i) => {
        const round = i + 1;
        const attack = randomVector(3000 + round);
        if (round === 20) return ['s0', 's1'].map((id) => fit(id, attack.slice()));
        const picked = ids.filter(() => rng() < 0.25);
        const some = picked.length >= 2 ? picked : ids.slice(3 + (round % 8), 5 + (round % 8));
        return some.map((id, k) => fit(id, id.startsWith('s') && round >= 10 ? attack.slice() : randomVector(round * 100 + k)));
      });
    })();

    it('drops the histories of the clients seen least recently (then by id) once past it, never one of the round', () => {
      // Arrange
      const strategy = new SimilarityDamping(new FedAvg(), { sketchSize: 64, maxHistories: 5 });
      const last = new Map<string, number>();
      for (const [i, results] of rounds.entries()) {
        // Act
        const out = strategy.aggregateFit(i + 1, global, results, []);
        if (out === null) continue;
        for (const r of results) last.set(r.clientId, i + 1);
        // Assert: the round's clients, then the most recently seen up to 5, ties to the larger id (the smaller ones go first).
        const inRound = new Set(results.map((r) => r.clientId));
        const others = [...last.keys()]
          .filter((id) => !inRound.has(id))
          .sort((a, b) => last.get(b)! - last.get(a)! || (a < b ? 1 : -1))
          .slice(0, Math.max(0, 5 - inRound.size));
        const expected = [...inRound, ...others].sort();
        expect([...strategy.sketches().keys()].sort()).toEqual(expected);
        for (const id of [...last.keys()]) if (!expected.includes(id)) last.delete(id);
        const exported = (strategy.exportState().json.extra as { histories: [string, string, number][] }).histories;
        expect(exported.map(([id, , r]) => [id, r])).toEqual(expected.map((id) => [id, last.get(id)]));
      }
      expect(strategy.excludedClients().size).toBeGreaterThan(0);
    });

    it('gives the bits of a strategy that imports only the kept histories, round after round', () => {
      // Arrange: the reference starts each round from the bounded strategy's exported state, nothing kept between rounds.
      const bounded = new SimilarityDamping(new FedAvg(), { sketchSize: 64, maxHistories: 6 });
      let trims = 0;
      for (const [i, results] of rounds.entries()) {
        const fresh = new SimilarityDamping(new FedAvg(), { sketchSize: 64, maxHistories: 6 });
        fresh.importState(bounded.exportState());
        const before = bounded.sketches().size;
        // Act
        const a = bounded.aggregateFit(i + 1, global, results, []);
        const b = fresh.aggregateFit(i + 1, global, results, []);
        // Assert
        expect(a === null).toBe(b === null);
        if (a === null || b === null) continue;
        if (bounded.sketches().size < before + new Set(results.map((r) => r.clientId)).size) trims++;
        expect(Buffer.from(a.parameters[0]!.values.buffer)).toEqual(Buffer.from(b.parameters[0]!.values.buffer));
        expect(a.metrics).toEqual(b.metrics);
        expect(a.rejected).toEqual(b.rejected);
        expect(bounded.exportState()).toEqual(fresh.exportState());
        expect(bounded.keptRows()).toBe(bounded.sketches().size);
      }
      expect(trims).toBeGreaterThan(5);
    });

    it('changes nothing while the clients seen stay within it', () => {
      const bounded = new SimilarityDamping(new FedAvg(), { sketchSize: 64, maxHistories: 12 });
      const unbounded = new SimilarityDamping(new FedAvg(), { sketchSize: 64, maxHistories: null });
      for (const [i, results] of rounds.entries()) {
        const a = bounded.aggregateFit(i + 1, global, results, []);
        const b = unbounded.aggregateFit(i + 1, global, results, []);
        expect(a).toEqual(b);
      }
      expect(bounded.exportState()).toEqual(unbounded.exportState());
    });
  });
});
