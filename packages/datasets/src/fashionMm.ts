/**
 * `fashion-mm`: Fashion-MNIST images with captions of graded informativeness and the caption spoken
 * by a synthetic speaker, with noise mixed at load time. What is stored is fixed (images, a caption
 * catalogue, one clip per speaker × caption); what a client sees is drawn per example from its
 * {@link CaptionProfile} — which kind of caption, which phrasing, which speaker, and the noise — by a
 * seeded stream of its own, so a client's data is a pure function of (dataset seed, profile, index).
 * Browser-safe: no Node APIs.
 */

import { createRng, gaussian, type Rng } from '@chorus/fl-core';

import { DatasetError } from './errors.js';
import { deriveSeed } from './generate/splits.js';

/** The informative kinds a profile mixes; `misleading` is drawn separately at the profile's rate. */
export const INFORMATIVE_KINDS = ['exact', 'superclass', 'attribute', 'uninformative'] as const;
/** One of {@link INFORMATIVE_KINDS}. */
export type InformativeKind = (typeof INFORMATIVE_KINDS)[number];
/** Every caption kind an example can get. */
export const CAPTION_KINDS = [...INFORMATIVE_KINDS, 'misleading'] as const;
/** One of {@link CAPTION_KINDS}. */
export type CaptionKind = (typeof CAPTION_KINDS)[number];

/** One caption of the catalogue. Misleading captions reuse the exact ones (of another class). */
export interface CatalogueCaption {
  readonly text: string;
  readonly kind: InformativeKind;
  /** Classes the caption is true of: one for `exact`, the group for `superclass`, empty otherwise. */
  readonly classes: readonly number[];
  /** `attribute` captions: the attribute code it states (see {@link imageAttributes}). */
  readonly attribute?: number;
}

/** A client's (or an evaluation split's) caption and speech conditions. */
export interface CaptionProfile {
  /** Names the profile's random stream: two profiles with the same key draw the same captions. */
  readonly key: string;
  /** Share of each informative kind among non-misleading captions (sums to 1). */
  readonly mix: Readonly<Record<InformativeKind, number>>;
  /** Probability that an example's caption is an exact caption of a different class. */
  readonly misleadingRate: number;
  /** Speech-to-noise ratio of the mixed white noise, in dB. */
  readonly snrDb: number;
}

/**
 * Population ranges clients' profiles are drawn from (uniformly; the mix is then normalised):
 * informative kinds' raw weights, the misleading rate and the SNR in dB.
 */
export const PROFILE_RANGES = {
  exact: [0.1, 0.6],
  superclass: [0.1, 0.5],
  attribute: [0.05, 0.3],
  uninformative: [0.05, 0.3],
  misleadingRate: [0, 0.3],
  snrDb: [0, 20],
} as const satisfies Record<InformativeKind | 'misleadingRate' | 'snrDb', readonly [number, number]>;

/**
 * The one profile of the validation, test and public splits, so every method is evaluated on the same
 * inputs: about the population's mean (exact 0.3, superclass 0.3, attribute 0.2, uninformative 0.2;
 * 15 % misleading; 10 dB).
 */
export const EVALUATION_PROFILE: CaptionProfile = {
  key: 'evaluation',
  mix: { exact: 0.3, superclass: 0.3, attribute: 0.2, uninformative: 0.2 },
  misleadingRate: 0.15,
  snrDb: 10,
};

/** Client `client`'s profile under `seed`: a pure function of the two, drawn from {@link PROFILE_RANGES}. */
export function clientCaptionProfile(seed: number, client: number): CaptionProfile {
  if (!Number.isSafeInteger(seed) || seed < 0 || !Number.isSafeInteger(client) || client < 0) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `clientCaptionProfile: seed and client must be non-negative integers, got ${seed}, ${client}`);
  }
  const key = `client/${client}@${seed}`;
  const rng = createRng(deriveSeed(seed, `fashion-mm/${key}`));
  const uniform = ([lo, hi]: readonly [number, number]): number => lo + (hi - lo) * rng();
  const raw = INFORMATIVE_KINDS.map((k) => uniform(PROFILE_RANGES[k]));
  const total = raw.reduce((a, b) => a + b, 0);
  const mix = Object.fromEntries(INFORMATIVE_KINDS.map((k, i) => [k, raw[i]! / total])) as Record<InformativeKind, number>;
  return { key, mix, misleadingRate: uniform(PROFILE_RANGES.misleadingRate), snrDb: uniform(PROFILE_RANGES.snrDb) };
}

/** Throws `DATASET_BAD_ARGUMENT` unless `profile` is usable (a mix of non-negative shares summing to 1, rates in range). */
export function checkCaptionProfile(profile: CaptionProfile): void {
  const shares = INFORMATIVE_KINDS.map((k) => profile.mix[k]);
  const total = shares.reduce((a, b) => a + b, 0);
  if (typeof profile.key !== 'string' || profile.key.length === 0) throw new DatasetError('DATASET_BAD_ARGUMENT', 'caption profile: empty key');
  if (!shares.every((s) => Number.isFinite(s) && s >= 0) || Math.abs(total - 1) > 1e-6) {
    throw new DatasetError(
      'DATASET_BAD_ARGUMENT',
      `caption profile ${profile.key}: mix must be non-negative shares summing to 1, got ${JSON.stringify(profile.mix)}`,
    );
  }
  if (!(profile.misleadingRate >= 0 && profile.misleadingRate <= 1)) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `caption profile ${profile.key}: misleadingRate ${profile.misleadingRate} is outside [0, 1]`);
  }
  if (!(Number.isFinite(profile.snrDb) && Math.abs(profile.snrDb) <= 100)) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `caption profile ${profile.key}: snrDb ${profile.snrDb} is outside [-100, 100]`);
  }
}

/** Image statistics the attribute captions state. */
export interface ImageStatistics {
  /** Mean intensity (0–255) of the item's pixels (those ≥ {@link INK_LEVEL}). */
  readonly meanIntensity: number;
  /** Bounding-box height / width of the item's pixels. */
  readonly aspect: number;
  /** Share of the 784 pixels that are the item's. */
  readonly coverage: number;
}

/** A pixel at or above this level is part of the item (the background is 0). */
export const INK_LEVEL = 16;

/** Statistics of one 28×28 uint8 image. */
export function imageStatistics(image: ArrayLike<number>): ImageStatistics {
  let sum = 0;
  let count = 0;
  let top = 28;
  let bottom = -1;
  let left = 28;
  let right = -1;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = image[y * 28 + x]!;
      if (v < INK_LEVEL) continue;
      sum += v;
      count++;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
      if (x < left) left = x;
      if (x > right) right = x;
    }
  }
  if (count === 0) return { meanIntensity: 0, aspect: 1, coverage: 0 };
  return { meanIntensity: sum / count, aspect: (bottom - top + 1) / (right - left + 1), coverage: count / 784 };
}

/** Thresholds of the attribute captions: the train split's medians of each statistic (in the manifest). */
export interface AttributeThresholds {
  readonly meanIntensity: number;
  readonly aspect: number;
  readonly coverage: number;
}

/** Attribute bits: dark (mean intensity below the threshold). */
export const ATTR_DARK = 1;
/** Attribute bits: tall (aspect above the threshold; else wide). */
export const ATTR_TALL = 2;
/** Attribute bits: bulky (coverage above the threshold; else slim). */
export const ATTR_BULKY = 4;

/** The attribute code (0–7, bits {@link ATTR_DARK} | {@link ATTR_TALL} | {@link ATTR_BULKY}) of an image. */
export function imageAttributes(image: ArrayLike<number>, thresholds: AttributeThresholds): number {
  const s = imageStatistics(image);
  return (
    (s.meanIntensity < thresholds.meanIntensity ? ATTR_DARK : 0) |
    (s.aspect > thresholds.aspect ? ATTR_TALL : 0) |
    (s.coverage > thresholds.coverage ? ATTR_BULKY : 0)
  );
}

/** The words of an attribute code, e.g. `dark tall slim`. */
export function attributeWords(code: number): string {
  return `${code & ATTR_DARK ? 'dark' : 'bright'} ${code & ATTR_TALL ? 'tall' : 'wide'} ${code & ATTR_BULKY ? 'bulky' : 'slim'}`;
}

/** What the caption draw needs of one example. */
export interface CaptionSubject {
  readonly label: number;
  readonly attribute: number;
}

/** The caption an example got. */
export interface DrawnCaption {
  /** Index into the catalogue. */
  readonly caption: number;
  readonly kind: CaptionKind;
}

function pickFrom(rng: Rng, items: readonly number[], what: string): number {
  if (items.length === 0) throw new DatasetError('MANIFEST_INVALID', `fashion-mm: the caption catalogue has no ${what}`);
  return items[Math.floor(rng() * items.length)]!;
}

/**
 * Draws one example's caption: misleading at `profile.misleadingRate` (an exact caption of a class
 * drawn uniformly among the other ones), else a kind by `profile.mix` and a phrasing of that kind
 * true of the example, uniformly.
 */
export function drawCaption(
  catalogue: readonly CatalogueCaption[],
  numClasses: number,
  profile: CaptionProfile,
  subject: CaptionSubject,
  rng: Rng,
): DrawnCaption {
  const ids = (keep: (c: CatalogueCaption) => boolean): number[] => catalogue.flatMap((c, i) => (keep(c) ? [i] : []));
  if (rng() < profile.misleadingRate) {
    const other = (subject.label + 1 + Math.floor(rng() * (numClasses - 1))) % numClasses;
    return {
      caption: pickFrom(
        rng,
        ids((c) => c.kind === 'exact' && c.classes[0] === other),
        `exact caption of class ${other}`,
      ),
      kind: 'misleading',
    };
  }
  let u = rng();
  let kind: InformativeKind = INFORMATIVE_KINDS[INFORMATIVE_KINDS.length - 1]!;
  for (const k of INFORMATIVE_KINDS) {
    if (u < profile.mix[k]) {
      kind = k;
      break;
    }
    u -= profile.mix[k];
  }
  const fits = (c: CatalogueCaption): boolean =>
    c.kind === kind &&
    (kind === 'exact' || kind === 'superclass' ? c.classes.includes(subject.label) : kind === 'attribute' ? c.attribute === subject.attribute : true);
  return { caption: pickFrom(rng, ids(fits), `${kind} caption for class ${subject.label}`), kind };
}

/** The seeded stream of one example under one profile (independent of which other examples are read with it). */
export function exampleRng(datasetSeed: number, profile: CaptionProfile, split: string, index: number): Rng {
  return createRng(deriveSeed(datasetSeed, `fashion-mm/${profile.key}/${split}/${index}`));
}

/**
 * `clean` plus white Gaussian noise at `snrDb` below the clip's own mean power (the noise is scaled
 * to that power exactly, so only int16 rounding moves the ratio). If the sum would clip, the whole
 * mixture is scaled down, which keeps the ratio. A silent clip comes back unchanged.
 */
export function mixAtSnr(clean: ArrayLike<number>, snrDb: number, rng: Rng): Int16Array {
  const n = clean.length;
  let power = 0;
  for (let i = 0; i < n; i++) power += clean[i]! * clean[i]!;
  power /= Math.max(1, n);
  const out = new Int16Array(n);
  if (power === 0) {
    for (let i = 0; i < n; i++) out[i] = clean[i]!;
    return out;
  }
  const noise = new Float64Array(n);
  let noisePower = 0;
  for (let i = 0; i < n; i++) {
    noise[i] = gaussian(rng);
    noisePower += noise[i]! * noise[i]!;
  }
  noisePower /= n;
  const scale = Math.sqrt(power / 10 ** (snrDb / 10) / noisePower);
  let peak = 0;
  for (let i = 0; i < n; i++) {
    noise[i] = clean[i]! + scale * noise[i]!;
    peak = Math.max(peak, Math.abs(noise[i]!));
  }
  const gain = peak > 32767 ? 32767 / peak : 1;
  for (let i = 0; i < n; i++) out[i] = Math.round(gain * noise[i]!);
  return out;
}

/** G.711 μ-law code (0–255) of a 16-bit sample: the clips are stored at 8 bits. */
export function muLawEncode(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(Math.abs(Math.round(sample)), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  magnitude = ~(sign | (exponent << 4) | mantissa) & 0xff;
  return magnitude;
}

/** The 16-bit sample of a G.711 μ-law code. */
export function muLawDecode(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

/** Decodes a run of μ-law codes into int16 samples. */
export function muLawDecodeAll(codes: ArrayLike<number>): Int16Array {
  const out = new Int16Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = muLawDecode(codes[i]!);
  return out;
}
