import { describe, expect, it } from 'vitest';
import { isFlCoreError } from '../errors.js';
import { tensor } from '../params.js';
import type { Parameters } from '../params.js';
import { fedAvg } from './fedAvg.js';
import { aggregateByGroup } from './groups.js';
import type { GroupCombiner } from './groups.js';
import { median } from './median.js';

const t = (name: string, ...values: number[]) => tensor(name, [values.length], new Float32Array(values));
const values = (params: Parameters) => Object.fromEntries(params.map((p) => [p.name, Array.from(p.values)]));

// Global model with three groups; the audio group is never trained in these fixtures.
const global = [t('image/w', 0, 0), t('text/w', 10, 10), t('audio/w', 5)];
const imageOnly = { delta: [t('image/w', 1, 1)], weight: 1 };
const textOnly = { delta: [t('text/w', 2, 4)], weight: 3 };
const both = { delta: [t('image/w', 3, 3), t('text/w', 4, 0)], weight: 1 };
const avg: GroupCombiner = (updates, weights) => ({ step: fedAvg(updates, weights) });

describe('aggregateByGroup', () => {
  it('aggregates each group over its senders with renormalised weights and keeps unsent groups', () => {
    const { parameters, groups } = aggregateByGroup(global, [imageOnly, textOnly, both], avg);

    // image: ([1, 1] + [3, 3]) / 2; text: (3·[2, 4] + [4, 0]) / 4; audio: nobody sent it.
    expect(values(parameters)).toEqual({ 'image/w': [2, 2], 'text/w': [12.5, 13], 'audio/w': [5] });
    expect(groups.map((g) => [g.group, g.status, g.contributors])).toEqual([
      ['image', 'updated', [0, 2]],
      ['text', 'updated', [1, 2]],
      ['audio', 'kept', []],
    ]);
  });

  it('works with any combiner and lets a combiner skip a group', () => {
    const skipText: GroupCombiner = (updates, _w, { group }) => (group === 'text' ? { skipped: 'not today' } : { step: median(updates) });
    const { parameters, groups } = aggregateByGroup(global, [imageOnly, both, { delta: [t('image/w', 100, -100)], weight: 1 }], skipText);

    expect(values(parameters)['image/w']).toEqual([3, 1]);
    expect(values(parameters)['text/w']).toEqual([10, 10]);
    expect(groups[1]).toMatchObject({ group: 'text', status: 'skipped', reason: 'not today' });
  });

  it('passes a multi-tensor group flattened in model order', () => {
    const model = [t('image/a', 1), t('text/x', 0), t('image/b', 2, 3)];
    let seen: number[] = [];
    const spy: GroupCombiner = (updates, _w, ctx) => {
      if (ctx.group === 'image') seen = [...Array.from(updates[0]!), ...Array.from(ctx.global)];
      return { step: new Float32Array(ctx.global.length).fill(1) };
    };
    const { parameters } = aggregateByGroup(model, [{ delta: [t('image/a', 7), t('image/b', 8, 9)], weight: 1 }], spy);

    expect(seen).toEqual([7, 8, 9, 1, 2, 3]);
    expect(parameters.map((p) => p.name)).toEqual(['image/a', 'text/x', 'image/b']);
    expect(values(parameters)).toEqual({ 'image/a': [2], 'text/x': [0], 'image/b': [3, 4] });
  });

  it('rejects a group whose layout differs from the global model, changing nothing', () => {
    const before = values(global);
    for (const delta of [[t('image/w', 1, 2, 3)], [t('video/w', 1)], [t('text/other', 1, 2)]]) {
      try {
        aggregateByGroup(global, [imageOnly, { delta, weight: 1 }], avg);
        expect.unreachable();
      } catch (err) {
        expect(isFlCoreError(err, 'PARAMS_MISMATCH'), String(err)).toBe(true);
      }
    }
    expect(values(global)).toEqual(before);
  });

  it('rejects no updates, bad weights and a step of the wrong length', () => {
    const wrong: GroupCombiner = () => ({ step: new Float32Array(1) });
    expect(() => aggregateByGroup(global, [], avg)).toThrowError(/AGG_NO_UPDATES/);
    expect(() => aggregateByGroup(global, [{ ...imageOnly, weight: -1 }], avg)).toThrowError(/AGG_BAD_WEIGHTS/);
    expect(() => aggregateByGroup(global, [imageOnly], wrong)).toThrowError(/PARAMS_MISMATCH/);
  });
});
