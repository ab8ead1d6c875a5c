import { createRng } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';

import {
  ATTR_BULKY,
  ATTR_DARK,
  ATTR_TALL,
  EVALUATION_PROFILE,
  PROFILE_RANGES,
  checkCaptionProfile,
  clientCaptionProfile,
  drawCaption,
  imageAttributes,
  mixAtSnr,
  muLawDecode,
  muLawEncode,
  type CaptionProfile,
} from './fashionMm.js';
import { fashionMmCatalogue } from './generate/fashionMm.js';

const catalogue = fashionMmCatalogue();

/** A 0.5 s tone with a 0.1 s pause, at `amplitude`. */
function tone(amplitude: number): Int16Array {
  return Int16Array.from({ length: 8000 }, (_, i) => (i > 3000 && i < 4600 ? 0 : Math.round(amplitude * Math.sin(i / 7))));
}

function snrOf(clean: Int16Array, mixed: Int16Array): number {
  // The mixture may have been scaled down to avoid clipping; undo that gain first.
  let cross = 0;
  let power = 0;
  for (let i = 0; i < clean.length; i++) {
    cross += mixed[i]! * clean[i]!;
    power += clean[i]! * clean[i]!;
  }
  const gain = cross / power;
  let noise = 0;
  for (let i = 0; i < clean.length; i++) noise += (mixed[i]! / gain - clean[i]!) ** 2;
  return 10 * Math.log10(power / noise);
}

describe('mixAtSnr', () => {
  it.each([0, 5, 10, 20])('mixes white noise at %d dB within 0.5 dB', (snrDb) => {
    const clean = tone(6000);

    const mixed = mixAtSnr(clean, snrDb, createRng(3));

    expect(Math.abs(snrOf(clean, mixed) - snrDb)).toBeLessThan(0.5);
  });

  it('scales a loud mixture down instead of wrapping, keeping the ratio; is a pure function of the stream', () => {
    const clean = tone(30_000);

    const mixed = mixAtSnr(clean, 0, createRng(4));

    expect(Math.max(...Array.from(mixed, Math.abs))).toBeLessThanOrEqual(32_767);
    expect(Math.abs(snrOf(clean, mixed) - 0)).toBeLessThan(0.5);
    expect(mixAtSnr(clean, 0, createRng(4))).toEqual(mixed);
    expect(mixAtSnr(clean, 0, createRng(5))).not.toEqual(mixed);
  });

  it('returns a silent clip unchanged', () => {
    expect(Array.from(mixAtSnr(new Int16Array(5), 10, createRng(1)))).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('μ-law', () => {
  it('round-trips within the codec step (≤ 1/16 of the magnitude + 8) and is monotonic', () => {
    let last = -Infinity;
    for (let x = -32_768; x <= 32_767; x += 97) {
      const y = muLawDecode(muLawEncode(x));
      expect(Math.abs(y - x), String(x)).toBeLessThanOrEqual(Math.abs(x) / 16 + 8 + (Math.abs(x) > 32_635 ? 140 : 0));
      expect(y).toBeGreaterThanOrEqual(last);
      last = y;
    }
  });
});

describe('caption profiles', () => {
  it('are reproducible from (seed, client index), differ between clients, and stay in the documented ranges', () => {
    const a = clientCaptionProfile(11, 3);

    expect(clientCaptionProfile(11, 3)).toEqual(a);
    expect(clientCaptionProfile(11, 4)).not.toEqual(a);
    expect(clientCaptionProfile(12, 3)).not.toEqual(a);
    for (let client = 0; client < 50; client++) {
      const p = clientCaptionProfile(11, client);
      checkCaptionProfile(p);
      expect(p.snrDb).toBeGreaterThanOrEqual(PROFILE_RANGES.snrDb[0]);
      expect(p.snrDb).toBeLessThanOrEqual(PROFILE_RANGES.snrDb[1]);
      expect(p.misleadingRate).toBeLessThanOrEqual(PROFILE_RANGES.misleadingRate[1]);
    }
  });

  it('refuses a mix that does not sum to 1, a rate outside [0, 1] or a non-finite SNR', () => {
    const bad: CaptionProfile[] = [
      { ...EVALUATION_PROFILE, mix: { exact: 0.5, superclass: 0.5, attribute: 0.5, uninformative: 0 } },
      { ...EVALUATION_PROFILE, misleadingRate: 1.5 },
      { ...EVALUATION_PROFILE, snrDb: Number.NaN },
    ];
    for (const p of bad) expect(() => checkCaptionProfile(p)).toThrow(expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }));
  });
});

describe('drawCaption', () => {
  it('never gives a misleading caption that names the true class', () => {
    const profile: CaptionProfile = { ...EVALUATION_PROFILE, misleadingRate: 1 };
    const rng = createRng(9);
    const named = new Set<number>();

    for (let i = 0; i < 2000; i++) {
      const label = i % 10;
      const drawn = drawCaption(catalogue, 10, profile, { label, attribute: i % 8 }, rng);
      const caption = catalogue[drawn.caption]!;
      expect(drawn.kind).toBe('misleading');
      expect(caption.kind).toBe('exact');
      expect(caption.classes).not.toContain(label);
      named.add(caption.classes[0]!);
    }
    expect(named.size).toBe(10);
  });

  it('gives each kind about its share, and only captions true of the example', () => {
    const rng = createRng(10);
    const counts: Record<string, number> = {};
    const n = 4000;

    for (let i = 0; i < n; i++) {
      const subject = { label: i % 10, attribute: i % 8 };
      const drawn = drawCaption(catalogue, 10, EVALUATION_PROFILE, subject, rng);
      const caption = catalogue[drawn.caption]!;
      counts[drawn.kind] = (counts[drawn.kind] ?? 0) + 1;
      if (drawn.kind === 'exact' || drawn.kind === 'superclass') expect(caption.classes).toContain(subject.label);
      if (drawn.kind === 'attribute') expect(caption.attribute).toBe(subject.attribute);
      if (drawn.kind !== 'misleading') expect(caption.kind).toBe(drawn.kind);
    }
    expect(counts['misleading']! / n).toBeCloseTo(0.15, 1);
    expect(counts['exact']! / n).toBeCloseTo(0.85 * 0.3, 1);
    expect(counts['uninformative']! / n).toBeCloseTo(0.85 * 0.2, 1);
  });
});

describe('catalogue', () => {
  it('has exact captions for every class, superclasses that group the hardest confusions, 8 attribute codes', () => {
    const exact = catalogue.filter((c) => c.kind === 'exact');
    const groups = catalogue.filter((c) => c.kind === 'superclass').map((c) => c.classes.join(','));

    for (let c = 0; c < 10; c++) expect(exact.some((e) => e.classes[0] === c)).toBe(true);
    expect(groups).toContain('0,2,4,6');
    expect(groups).toContain('5,7,9');
    expect(new Set(catalogue.filter((c) => c.kind === 'attribute').map((c) => c.attribute)).size).toBe(8);
  });
});

describe('imageAttributes', () => {
  it('reads dark, tall and bulky from the pixels against the thresholds', () => {
    // A 20-high, 4-wide dim bar: tall, slim, dark.
    const bar = new Uint8Array(784);
    for (let y = 4; y < 24; y++) for (let x = 12; x < 16; x++) bar[y * 28 + x] = 60;
    // A 10-high, 24-wide bright block: wide, bulky, bright.
    const block = new Uint8Array(784);
    for (let y = 9; y < 19; y++) for (let x = 2; x < 26; x++) block[y * 28 + x] = 220;
    const thresholds = { meanIntensity: 100, aspect: 1, coverage: 0.2 };

    expect(imageAttributes(bar, thresholds)).toBe(ATTR_DARK | ATTR_TALL);
    expect(imageAttributes(block, thresholds)).toBe(ATTR_BULKY);
  });
});
