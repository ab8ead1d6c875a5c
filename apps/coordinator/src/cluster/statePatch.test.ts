import { createRng } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { applyJsonPatch, diffJson } from './statePatch.js';

/** A random JSON value of nested objects, arrays, numbers, strings, booleans and nulls. */
function randomValue(rng: () => number, depth: number): unknown {
  const pick = Math.floor(rng() * (depth > 0 ? 7 : 5));
  if (pick === 0) return null;
  if (pick === 1) return rng() < 0.5;
  if (pick === 2) return Math.floor(rng() * 100) - 50;
  if (pick === 3) return rng() * 10;
  if (pick === 4) return `s${Math.floor(rng() * 5)}`;
  if (pick === 5) return Array.from({ length: Math.floor(rng() * 4) }, () => randomValue(rng, depth - 1));
  return Object.fromEntries(Array.from({ length: Math.floor(rng() * 5) }, () => [`k${Math.floor(rng() * 6)}`, randomValue(rng, depth - 1)]));
}

/** `value` with some keys changed, added (anywhere), removed or (rarely) reordered at random, at every depth. */
function mutate(rng: () => number, value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return rng() < 0.3 ? randomValue(rng, depth) : value;
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value)) {
    const r = rng();
    if (r < 0.15) continue;
    out.push([k, r < 0.5 ? mutate(rng, v, depth - 1) : v]);
  }
  for (let added = 0; added < 3 && rng() < 0.4; added++)
    out.splice(Math.floor(rng() * (out.length + 1)), 0, [`n${added}${Math.floor(rng() * 6)}`, randomValue(rng, depth - 1)]);
  if (out.length > 1 && rng() < 0.05) out.reverse();
  return Object.fromEntries(out);
}

describe('state patches', () => {
  it('rebuild the JSON text of the later value, key order included, from the earlier one, over random nested values', () => {
    const rng = createRng(3);
    for (let i = 0; i < 500; i++) {
      const before = JSON.parse(JSON.stringify(randomValue(rng, 4))) as unknown;
      const after = mutate(rng, before, 4);
      const patch = diffJson(before, after);
      const beforeText = JSON.stringify(before);
      const rebuilt = patch === null ? before : applyJsonPatch(before, JSON.parse(JSON.stringify(patch)));
      expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(after));
      expect(patch === null).toBe(beforeText === JSON.stringify(after));
      // The earlier value is left as it was.
      expect(JSON.stringify(before)).toBe(beforeText);
    }
  });

  it('carry only what changed in a map that grows with its keys, nulls and an id naming the prototype included', () => {
    const before = {
      strategy: 'probation(fedavg)',
      lastServerRound: null,
      extra: { contributed: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`id${i}`, 3])) },
    };
    const after = {
      strategy: 'probation(fedavg)',
      lastServerRound: 7,
      extra: { contributed: { ...before.extra.contributed, id5: 4, id6: 4, ...Object.fromEntries([['__proto__', 1]]) } },
    };
    const patch = diffJson(before, after)!;
    expect(patch).toEqual({
      keys: {
        lastServerRound: { set: 7 },
        extra: { keys: { contributed: { keys: { id5: { set: 4 }, id6: { set: 4 }, ['__proto__']: { set: 1 } }, at: { ['__proto__']: 1000 } } } },
      },
    });
    expect(JSON.stringify(patch).length).toBeLessThan(JSON.stringify(after).length / 50);
    const rebuilt = applyJsonPatch(before, JSON.parse(JSON.stringify(patch))) as typeof after;
    expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(after));
    expect(Object.getPrototypeOf(rebuilt.extra.contributed)).toBe(Object.prototype);
    expect(Object.keys(rebuilt.extra.contributed)).toContain('__proto__');
    // Removed keys, an array changed as a whole, a key added in the middle, and kept keys reordered (set whole).
    expect(diffJson({ a: 1, b: [1, 2] }, { b: [1, 3] })).toEqual({ keys: { b: { set: [1, 3] } }, drop: ['a'] });
    expect(diffJson({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBeNull();
    expect(diffJson({ a: 1, c: 3 }, { a: 1, b: 2, c: 3 })).toEqual({ keys: { b: { set: 2 } }, at: { b: 1 } });
    expect(diffJson({ a: 1, c: 3 }, { c: 3, a: 1 })).toEqual({ set: { c: 3, a: 1 } });
  });

  it('refuse a malformed patch, or one that does not fit the value, with STORE_SCHEMA', () => {
    for (const [before, patch] of [
      [{ a: 1 }, null],
      [{ a: 1 }, { keys: 3 }],
      [{ a: 1 }, { keys: {}, drop: [1] }],
      [[1, 2], { keys: { a: { set: 1 } } }],
      [{ a: 1 }, { keys: { b: { keys: {} } } }],
      [{ a: 1 }, { keys: { b: { set: 1 } } }],
      [{ a: 1 }, { keys: { b: { set: 1 } }, at: { b: 5 } }],
      [{ a: 1 }, { keys: { a: { set: 1 } }, at: { a: 0 } }],
      [{ a: 1 }, { keys: {}, at: 3 }],
    ] as const)
      expect(() => applyJsonPatch(before, patch)).toThrowError(/STORE_SCHEMA/);
  });
});
