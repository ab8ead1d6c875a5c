/**
 * CIFAR-10 / CIFAR-100 binary batches (Krizhevsky, "Learning Multiple Layers of Features from Tiny
 * Images", 2009): fixed-size records of label byte(s) then a 32×32 image as three 1024-byte colour
 * planes. Images come back interleaved (H×W×C), the layout every other loader here uses.
 */

import { DatasetError, skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import { DEFAULT_MAX_FILE_BYTES, baseName, decodeUtf8, readSource } from './source.js';
import type { SourceFile } from './source.js';

/** Images of one shape with one label each. */
export interface ImageBatch {
  /** `count × height × width × channels` bytes. */
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  /** `[height, width, channels]`. */
  readonly shape: readonly [number, number, number];
}

/** CIFAR-10 class names in label order (as in `batches.meta.txt`). */
export const CIFAR10_CLASSES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const PIXELS = 32 * 32;

/** Which CIFAR and, for CIFAR-100, which of its two labels. */
export type CifarVariant = 'cifar10' | 'cifar100-fine' | 'cifar100-coarse';

/**
 * Parses one binary batch. Throws LOADER_EMPTY for no bytes, LOADER_CORRUPT when the length is not
 * a whole number of records or a label is out of range.
 */
export function parseCifarBatch(bytes: Uint8Array, variant: CifarVariant): ImageBatch {
  if (bytes.length === 0) throw new DatasetError('LOADER_EMPTY', 'the file is empty');
  const labelBytes = variant === 'cifar10' ? 1 : 2;
  const record = labelBytes + 3 * PIXELS;
  if (bytes.length % record !== 0)
    throw new DatasetError(
      'LOADER_CORRUPT',
      `${bytes.length} bytes is not a whole number of ${record}-byte ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} records`,
    );
  const count = bytes.length / record;
  const labelAt = variant === 'cifar100-fine' ? 1 : 0;
  const numClasses = variant === 'cifar10' ? 10 : variant === 'cifar100-fine' ? 100 : 20;
  const images = new Uint8Array(count * 3 * PIXELS);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const start = n * record;
    const label = bytes[start + labelAt] as number;
    if (label >= numClasses) throw new DatasetError('LOADER_CORRUPT', `record ${n} has label ${label}, outside 0‥${numClasses - 1}`);
    labels[n] = label;
    const planes = start + labelBytes;
    const out = n * 3 * PIXELS;
    for (let p = 0; p < PIXELS; p++) {
      images[out + 3 * p] = bytes[planes + p] as number;
      images[out + 3 * p + 1] = bytes[planes + PIXELS + p] as number;
      images[out + 3 * p + 2] = bytes[planes + 2 * PIXELS + p] as number;
    }
  }
  return { images, labels, count, shape: [32, 32, 3] };
}

/** Stacks batches of one shape into one. */
export function concatBatches(batches: readonly ImageBatch[], shape: readonly [number, number, number]): ImageBatch {
  const count = batches.reduce((n, b) => n + b.count, 0);
  const size = shape[0] * shape[1] * shape[2];
  const images = new Uint8Array(count * size);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const batch of batches) {
    images.set(batch.images, at * size);
    labels.set(batch.labels, at);
    at += batch.count;
  }
  return { images, labels, count, shape };
}

/** What {@link loadCifar} hands back. */
export interface LoadedBatch {
  readonly batch: ImageBatch;
  readonly classNames: string[];
  readonly skipped: Skipped[];
}

const SPLIT_FILES: Record<'cifar10' | 'cifar100', Record<'train' | 'test', RegExp>> = {
  cifar10: { train: /^data_batch_\d+\.bin$/, test: /^test_batch\.bin$/ },
  cifar100: { train: /^train\.bin$/, test: /^test\.bin$/ },
};

/**
 * Loads a CIFAR split from the files of an extracted `cifar-10-batches-bin/` or
 * `cifar-100-binary/` folder; class names come from its meta file when present. A bad batch is
 * skipped, the others load.
 */
export async function loadCifar(
  files: readonly SourceFile[],
  variant: CifarVariant,
  split: 'train' | 'test',
  maxFileBytes: number = DEFAULT_MAX_FILE_BYTES,
): Promise<LoadedBatch> {
  const family = variant === 'cifar10' ? 'cifar10' : 'cifar100';
  const pattern = SPLIT_FILES[family][split];
  const batchFiles = files.filter((f) => pattern.test(baseName(f.path))).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const skipped: Skipped[] = [];
  const batches: ImageBatch[] = [];
  for (const file of batchFiles) {
    try {
      batches.push(parseCifarBatch(await readSource(file, maxFileBytes), variant));
    } catch (err) {
      skipped.push(skippedFrom(file.path, err));
    }
  }
  const metaName = variant === 'cifar10' ? 'batches.meta.txt' : variant === 'cifar100-fine' ? 'fine_label_names.txt' : 'coarse_label_names.txt';
  const fallback = variant === 'cifar10' ? [...CIFAR10_CLASSES] : Array.from({ length: variant === 'cifar100-fine' ? 100 : 20 }, (_, i) => String(i));
  let classNames = fallback;
  const meta = files.find((f) => baseName(f.path) === metaName);
  if (meta !== undefined) {
    try {
      const names = decodeUtf8(await readSource(meta, 1 << 20))
        .split(/\r?\n/)
        .map((s) => s.trim())
        .filter((s) => s !== '');
      if (names.length !== fallback.length) throw new DatasetError('LOADER_CORRUPT', `lists ${names.length} classes, ${fallback.length} expected`);
      classNames = names;
    } catch (err) {
      skipped.push(skippedFrom(meta.path, err));
    }
  }
  return { batch: concatBatches(batches, [32, 32, 3]), classNames, skipped };
}
