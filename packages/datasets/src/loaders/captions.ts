/**
 * Image–caption pairs from the two common caption JSON layouts, with the images from a folder:
 * COCO Captions (Chen et al., 2015, arXiv:1504.00325: `images[]` + `annotations[]` joined on image
 * id) and the Karpathy splits of Flickr30k / COCO (Karpathy & Fei-Fei, 2015, arXiv:1412.2306:
 * `images[].sentences[].raw`, with a `split` per image).
 */

import { DatasetError, skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import { loadImageFile } from './imageFolder.js';
import type { ImageLimits } from './imageFolder.js';
import { checkImageTarget } from './resize.js';
import type { ImageTarget, Pixels } from './resize.js';
import { decodeUtf8, fileMatcher, isClutter, readSource } from './source.js';
import type { SourceFile } from './source.js';

/** One image and its captions, as listed by a caption file. */
export interface CaptionEntry {
  /** Image path relative to the image folder. */
  readonly fileName: string;
  readonly captions: string[];
  /** Karpathy split (`train`, `val`, `test`, `restval`) when the file gives one. */
  readonly split?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses COCO or Karpathy caption JSON (told apart by `annotations` vs `images[].sentences`).
 * Throws LOADER_CORRUPT when the file is not such JSON; malformed entries go to `skipped`.
 */
export function parseCaptionJson(text: string, path: string): { entries: CaptionEntry[]; skipped: Skipped[] } {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    throw new DatasetError('LOADER_CORRUPT', 'is not valid JSON');
  }
  if (!isObject(root) || !Array.isArray(root.images))
    throw new DatasetError('LOADER_CORRUPT', 'has no "images" array (neither COCO nor Karpathy caption JSON)');
  const images: unknown[] = root.images;
  const entries: CaptionEntry[] = [];
  const skipped: Skipped[] = [];
  const bad = (index: number, why: string): void => {
    skipped.push({ path: `${path}:images[${index}]`, code: 'LOADER_CORRUPT', message: `${path}: images[${index}] ${why}` });
  };
  if (Array.isArray(root.annotations)) {
    const byId = new Map<number, string[]>();
    for (const annotation of root.annotations as unknown[]) {
      if (isObject(annotation) && typeof annotation.image_id === 'number' && typeof annotation.caption === 'string' && annotation.caption.trim() !== '') {
        byId.set(annotation.image_id, [...(byId.get(annotation.image_id) ?? []), annotation.caption.trim()]);
      }
    }
    images.forEach((image, index) => {
      if (!isObject(image) || typeof image.id !== 'number' || typeof image.file_name !== 'string') return bad(index, 'lacks a numeric "id" or a "file_name"');
      const captions = byId.get(image.id) ?? [];
      if (captions.length === 0) skipped.push({ path: image.file_name, code: 'LOADER_EMPTY', message: `${image.file_name}: has no captions in ${path}` });
      else entries.push({ fileName: image.file_name, captions });
    });
  } else {
    images.forEach((image, index) => {
      if (!isObject(image) || typeof image.filename !== 'string' || !Array.isArray(image.sentences)) return bad(index, 'lacks "filename" or "sentences"');
      const fileName = typeof image.filepath === 'string' && image.filepath !== '' ? `${image.filepath}/${image.filename}` : image.filename;
      const captions = (image.sentences as unknown[]).flatMap((s) => (isObject(s) && typeof s.raw === 'string' && s.raw.trim() !== '' ? [s.raw.trim()] : []));
      if (captions.length === 0) skipped.push({ path: fileName, code: 'LOADER_EMPTY', message: `${fileName}: has no captions in ${path}` });
      else entries.push({ fileName, captions, ...(typeof image.split === 'string' ? { split: image.split } : {}) });
    });
  }
  return { entries, skipped };
}

/** Options for {@link loadCaptionedImages}. */
export interface CaptionedImagesOptions extends ImageLimits {
  /** Shape and number type of every output image. */
  readonly target: ImageTarget;
  /** Keep only entries of these Karpathy splits (entries without a split are kept). */
  readonly splits?: readonly string[];
  /** Largest caption JSON read, in bytes. Default 512 MiB (COCO train captions are ~90 MB). */
  readonly maxCaptionBytes?: number;
}

/** One image with its captions. */
export interface CaptionSample {
  readonly path: string;
  readonly pixels: Pixels;
  readonly captions: string[];
  readonly split?: string;
}

/** What {@link loadCaptionedImages} hands back. */
export interface LoadedCaptions {
  readonly samples: CaptionSample[];
  readonly shape: readonly [number, number, number];
  readonly skipped: Skipped[];
}

/**
 * Loads the images a caption JSON lists from `imageFiles`, each with its captions. An image that
 * is missing (LOADER_MISSING) or bad is skipped; an unreadable caption file is reported and nothing loads.
 */
export async function loadCaptionedImages(
  captionFile: SourceFile,
  imageFiles: readonly SourceFile[],
  options: CaptionedImagesOptions,
): Promise<LoadedCaptions> {
  checkImageTarget(options.target);
  const shape = [options.target.height, options.target.width, options.target.channels] as const;
  let parsed: { entries: CaptionEntry[]; skipped: Skipped[] };
  try {
    parsed = parseCaptionJson(decodeUtf8(await readSource(captionFile, options.maxCaptionBytes ?? 512 * 1024 * 1024)), captionFile.path);
  } catch (err) {
    return { samples: [], shape, skipped: [skippedFrom(captionFile.path, err)] };
  }
  const find = fileMatcher(imageFiles.filter((f) => !isClutter(f.path)));
  const samples: CaptionSample[] = [];
  const skipped = [...parsed.skipped];
  for (const entry of parsed.entries) {
    if (options.splits && entry.split !== undefined && !options.splits.includes(entry.split)) continue;
    const file = find(entry.fileName);
    if (file === undefined) {
      skipped.push({
        path: entry.fileName,
        code: 'LOADER_MISSING',
        message: `${entry.fileName}: listed in ${captionFile.path} but not among the images given (or ambiguous)`,
      });
      continue;
    }
    try {
      const pixels = await loadImageFile(file, options.target, options);
      samples.push({ path: file.path, pixels, captions: entry.captions, ...(entry.split !== undefined ? { split: entry.split } : {}) });
    } catch (err) {
      skipped.push(skippedFrom(file.path, err));
    }
  }
  return { samples, shape, skipped };
}
