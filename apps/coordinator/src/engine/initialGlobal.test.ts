import { createRng, groupOf } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { initialAdapters } from './initialGlobal.js';

const layout = { modalities: ['image', 'text'], adapterRank: 2, namConcepts: 3, embeddingDim: 4, numClasses: 5 };

describe('initialAdapters', () => {
  it('puts the linear head’s kernel blocks in their modality groups and its bias in fusion, all zero', () => {
    // Act
    const linear = initialAdapters(createRng(1), { ...layout, head: 'linear' });
    // Assert
    const head = linear.filter((t) => t.name.includes('/linear/'));
    expect(head.map((t) => [t.name, groupOf(t.name), t.shape])).toEqual([
      ['image/linear/kernel', 'image', [3, 5]],
      ['text/linear/kernel', 'text', [3, 5]],
      ['fusion/linear/bias', 'fusion', [5]],
    ]);
    expect(head.every((t) => t.values.every((v) => v === 0))).toBe(true);
  });

  it('keeps the fused NAM-sized output layer by default, with the same adapters for the same seed', () => {
    // Act
    const nam = initialAdapters(createRng(1), layout);
    const linear = initialAdapters(createRng(1), { ...layout, head: 'linear' });
    // Assert
    expect(nam.filter((t) => t.name.startsWith('fusion/')).map((t) => [t.name, t.shape])).toEqual([
      ['fusion/head/kernel', [6, 5]],
      ['fusion/head/bias', [5]],
    ]);
    const adapters = (ts: typeof nam): number[][] => ts.filter((t) => t.name.includes('lora_a')).map((t) => Array.from(t.values));
    expect(adapters(linear)).toEqual(adapters(nam));
  });
});
