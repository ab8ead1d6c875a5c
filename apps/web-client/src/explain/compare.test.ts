import { describe, expect, it } from 'vitest';
import { comparisonRows, restrictSample } from './compare.js';
import type { ExplanationView, ViewerSample } from './explainSample.js';

/** A hand-written view: only the fields the comparison reads matter. */
function view(overrides: Partial<ExplanationView>): ExplanationView {
  return {
    source: 's',
    provenance: { base: 'pretrained', adapters: { kind: 'fresh', reason: 'test' } },
    classNames: ['zero', 'one', 'two'],
    label: 1,
    predicted: 1,
    confidence: 0.5,
    probabilities: [0.25, 0.5, 0.25],
    modalities: ['image', 'text', 'audio'],
    present: [true, true, false],
    modalityAttribution: [0.75, 0.25, 0],
    bias: 0,
    terms: [],
    shapeCurves: [],
    image: null,
    text: null,
    audio: null,
    consistency: [{ a: 'image', b: 'text', value: 0.5 }],
    faithfulness: 0.125,
    faithfulnessK: 10,
    ...overrides,
  };
}

describe('restrictSample', () => {
  const sample: ViewerSample = { source: 'digits #1', image: new Float32Array(784), audio: new Float32Array(10), label: 3 };

  it('keeps a sample whole when the model has all its modalities', () => {
    expect(restrictSample(sample, ['image', 'text', 'audio'])).toEqual({ sample, dropped: [] });
  });

  it('drops the modalities the model lacks, keeping source and label, without touching the input', () => {
    // Act
    const { sample: kept, dropped } = restrictSample(sample, ['image', 'text']);

    // Assert
    expect(dropped).toEqual(['audio']);
    expect(Object.keys(kept!).sort()).toEqual(['image', 'label', 'source']);
    expect(sample.audio).toBeDefined();
  });

  it('leaves no sample when none of its modalities is in the model', () => {
    expect(restrictSample(sample, ['text'])).toEqual({ sample: null, dropped: ['image', 'audio'] });
  });
});

describe('comparisonRows', () => {
  it('lines up prediction, confidence, p(true class), attribution, EC and FS, and flags the rows that differ', () => {
    // Arrange: the local model predicts "two" with 0.625, has no audio encoder and a different EC.
    const global = view({});
    const local = view({
      predicted: 2,
      confidence: 0.625,
      probabilities: [0.125, 0.25, 0.625],
      modalities: ['image', 'text'],
      present: [true, true],
      modalityAttribution: [0.5, 0.5],
      consistency: [{ a: 'image', b: 'text', value: -0.25 }],
    });

    // Act
    const rows = comparisonRows(global, local);

    // Assert
    expect(rows.map((r) => [r.label, r.global, r.local, r.differs])).toEqual([
      ['Prediction', 'one', 'two', true],
      ['Confidence', '50.0%', '62.5%', true],
      ['p(true class one)', '50.0%', '25.0%', true],
      ['Attribution: image', '75.0%', '50.0%', true],
      ['Attribution: text', '25.0%', '50.0%', true],
      ['Attribution: audio', 'absent', 'not in this model', true],
      ['EC image–text', '0.500', '-0.250', true],
      ['FS', '0.1250 (k = 10 %)', '0.1250 (k = 10 %)', false],
    ]);
  });

  it('shows an EC pair only one side has with a dash on the other, and no true-class row without a label', () => {
    // Arrange
    const global = view({
      label: null,
      present: [true, true, true],
      consistency: [
        { a: 'image', b: 'text', value: 0.5 },
        { a: 'image', b: 'audio', value: 0.25 },
      ],
    });
    const local = view({ label: null });

    // Act
    const rows = comparisonRows(global, local);

    // Assert
    expect(rows.some((r) => r.label.startsWith('p(true'))).toBe(false);
    expect(rows.find((r) => r.label === 'EC image–audio')).toEqual({ label: 'EC image–audio', global: '0.250', local: '—', differs: true });
  });
});
