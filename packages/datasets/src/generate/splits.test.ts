import { describe, expect, it } from 'vitest';

import { countLabels, deriveSeed, stratifiedSplit } from './splits.js';

/** 3 classes: 20 of class 0, 40 of class 1, 60 of class 2. */
const LABELS = Uint8Array.from([...Array<number>(20).fill(0), ...Array<number>(40).fill(1), ...Array<number>(60).fill(2)]);

describe('stratifiedSplit', () => {
  it('cuts each class by the fractions and covers every index exactly once', () => {
    const parts = stratifiedSplit(LABELS, 3, { test: 0.25, public: 0.05 }, 9);

    expect(countLabels(LABELS, parts.test, 3)).toEqual([5, 10, 15]);
    expect(countLabels(LABELS, parts.public, 3)).toEqual([1, 2, 3]);
    expect(countLabels(LABELS, parts.train, 3)).toEqual([14, 28, 42]);
    expect([...parts.train, ...parts.test, ...parts.public].sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i));
  });

  it('is a function of the seed', () => {
    expect(stratifiedSplit(LABELS, 3, { test: 0.2, public: 0.1 }, 4)).toEqual(stratifiedSplit(LABELS, 3, { test: 0.2, public: 0.1 }, 4));
    expect(stratifiedSplit(LABELS, 3, { test: 0.2, public: 0.1 }, 4).test).not.toEqual(stratifiedSplit(LABELS, 3, { test: 0.2, public: 0.1 }, 5).test);
    expect(deriveSeed(1, 'a')).not.toBe(deriveSeed(1, 'b'));
  });

  it('refuses fractions that leave nothing for training and labels past numClasses', () => {
    expect(() => stratifiedSplit(LABELS, 3, { test: 0.6, public: 0.4 }, 1)).toThrow(expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }));
    expect(() => stratifiedSplit(LABELS, 2, { test: 0.2, public: 0 }, 1)).toThrow(expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }));
  });
});
