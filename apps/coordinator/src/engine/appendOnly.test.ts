import { describe, expect, it } from 'vitest';
import { createRng } from '@chorus/fl-core';
import { AppendOnlyMap, AppendOnlySet } from './appendOnly.js';

describe('append-only collections', () => {
  it('leave every earlier state as it was, whether the newest or an older one is extended', () => {
    // Arrange
    const empty = AppendOnlySet.from();
    const a = empty.with('a');
    // Act: b extends the newest state in place; c extends a, which b has grown past.
    const b = a.with('b');
    const c = a.with('c');
    // Assert
    expect([...empty]).toEqual([]);
    expect([...a]).toEqual(['a']);
    expect([...b]).toEqual(['a', 'b']);
    expect([...c]).toEqual(['a', 'c']);
    expect([b.has('c'), c.has('b'), a.has('b'), a.size, b.size, c.size]).toEqual([false, false, false, 1, 2, 2]);
    expect(a.with('a')).toBe(a);
  });

  it('copy on setting a key a map holds, leaving the earlier value in the earlier state', () => {
    const one = AppendOnlyMap.from([['k', 1]]).with('j', 5);
    const two = one.with('k', 2);
    expect([...one]).toEqual([
      ['k', 1],
      ['j', 5],
    ]);
    expect([...two]).toEqual([
      ['k', 2],
      ['j', 5],
    ]);
    expect([one.get('k'), two.get('k'), two.get('absent')]).toEqual([1, 2, undefined]);
  });

  it('read as copied Maps would under seeded random additions to random earlier states', () => {
    const rng = createRng(11);
    const states: AppendOnlyMap<number>[] = [AppendOnlyMap.from()];
    const copies: Map<string, number>[] = [new Map()];
    for (let step = 0; step < 400; step++) {
      const from = Math.floor(rng() * states.length);
      const key = `k${Math.floor(rng() * 60)}`;
      const value = step;
      states.push(states[from]!.with(key, value));
      copies.push(new Map(copies[from]!).set(key, value));
    }
    for (const [i, state] of states.entries()) {
      const copy = copies[i]!;
      expect(state.size).toBe(copy.size);
      expect([...state.entries()]).toEqual([...copy.entries()]);
      for (let k = 0; k < 60; k++) expect([state.has(`k${k}`), state.get(`k${k}`)]).toEqual([copy.has(`k${k}`), copy.get(`k${k}`)]);
    }
    const seen: string[] = [];
    states.at(-1)!.forEach((_v, key) => seen.push(key));
    expect(seen).toEqual([...copies.at(-1)!.keys()]);
  });
});
