/**
 * Images in class folders (`<class>/<file>.png|jpg|jpeg`, the layout of torchvision's
 * `ImageFolder`), decoded and brought to the task's input shape. A file that cannot be used is
 * skipped with a coded reason; the rest load.
 */

import type { Skipped } from './errors.js';
import { DEFAULT_MAX_PIXELS, decodeImage } from './image.js';
import { loadClassFolders } from './labels.js';
import { checkImageTarget, resizeImage } from './resize.js';
import type { ImageTarget, Pixels } from './resize.js';
import { DEFAULT_MAX_FILE_BYTES, readSource } from './source.js';
import type { SourceFile } from './source.js';

/** Size limits for image files. */
export interface ImageLimits {
  /** Files larger than this are skipped unread. Default {@link DEFAULT_MAX_FILE_BYTES}. */
  readonly maxFileBytes?: number;
  /** Images declaring more pixels are skipped before decoding. Default {@link DEFAULT_MAX_PIXELS}. */
  readonly maxPixels?: number;
}

/** Options for {@link loadImageFolder}. */
export interface ImageFolderOptions extends ImageLimits {
  /** Shape and number type of every output image. */
  readonly target: ImageTarget;
  /** The task's classes, in id order; folders not listed are skipped as LOADER_BAD_LABEL. */
  readonly classNames?: readonly string[];
}

/** One loaded image. */
export interface ImageSample {
  readonly path: string;
  readonly label: number;
  /** `target.height × target.width × target.channels` values. */
  readonly pixels: Pixels;
}

/** What {@link loadImageFolder} hands back. */
export interface LoadedImages {
  readonly samples: ImageSample[];
  readonly classNames: string[];
  /** `[height, width, channels]` of every sample. */
  readonly shape: readonly [number, number, number];
  readonly skipped: Skipped[];
}

/** Reads, decodes and resizes one image file; throws a DatasetError on any problem. */
export async function loadImageFile(file: SourceFile, target: ImageTarget, limits: ImageLimits = {}): Promise<Pixels> {
  const bytes = await readSource(file, limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES);
  const decoded = await decodeImage(bytes, limits.maxPixels ?? DEFAULT_MAX_PIXELS);
  return resizeImage(decoded, target);
}

/**
 * Loads class-folder images: the label is the name of the folder directly holding the file.
 * Files are visited in path order so the result does not depend on how the adapter listed them;
 * OS clutter (`.DS_Store`, `__MACOSX/`) is ignored.
 */
export async function loadImageFolder(files: readonly SourceFile[], options: ImageFolderOptions): Promise<LoadedImages> {
  checkImageTarget(options.target);
  const loaded = await loadClassFolders(files, options.classNames, async (file) => ({ pixels: await loadImageFile(file, options.target, options) }));
  const { height, width, channels } = options.target;
  return { ...loaded, shape: [height, width, channels] };
}
