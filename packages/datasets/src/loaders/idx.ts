/**
 * IDX files, the format of MNIST and Fashion-MNIST (LeCun, Bottou, Bengio & Haffner, 1998; Xiao,
 * Rasul & Vollgraf, 2017, arXiv:1708.07747): a magic number giving element type and rank, big-endian
 * dimension sizes, then the elements. `.gz` files are inflated first (capped, see inflate.ts).
 */

import type { ImageBatch, LoadedBatch } from './cifar.js';
import { DatasetError, skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import { inflate, isGzip } from './inflate.js';
import { DEFAULT_MAX_FILE_BYTES, baseName, readSource } from './source.js';
import type { SourceFile } from './source.js';

/** A decoded IDX array. */
export interface IdxArray {
  readonly dims: number[];
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { size: number; name: string }> = {
  0x08: { size: 1, name: 'ubyte' },
  0x09: { size: 1, name: 'byte' },
  0x0b: { size: 2, name: 'short' },
  0x0c: { size: 4, name: 'int' },
  0x0d: { size: 4, name: 'float' },
  0x0e: { size: 8, name: 'double' },
};

/**
 * Parses an uncompressed IDX file. The dimensions must account for exactly the bytes present
 * (checked before anything is allocated); otherwise LOADER_CORRUPT.
 */
export function parseIdx(bytes: Uint8Array): IdxArray {
  if (bytes.length === 0) throw new DatasetError('LOADER_EMPTY', 'the file is empty');
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new DatasetError('LOADER_CORRUPT', 'not an IDX file (bad magic)');
  const type = TYPES[bytes[2] as number];
  const rank = bytes[3] as number;
  if (type === undefined) throw new DatasetError('LOADER_CORRUPT', `unknown IDX element type 0x${(bytes[2] as number).toString(16)}`);
  if (rank === 0) throw new DatasetError('LOADER_CORRUPT', 'IDX rank is 0');
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) throw new DatasetError('LOADER_CORRUPT', `IDX header needs ${headerBytes} bytes, file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((n, d) => n * d, 1);
  const body = bytes.length - headerBytes;
  if (count * type.size !== body) {
    throw new DatasetError('LOADER_CORRUPT', `IDX dimensions ${dims.join('×')} of ${type.name} need ${count * type.size} bytes, file has ${body}`);
  }
  if (count === 0) throw new DatasetError('LOADER_EMPTY', `IDX dimensions ${dims.join('×')} hold no elements`);
  const at = (i: number): number => headerBytes + i * type.size;
  switch (type.name) {
    case 'ubyte':
      return { dims, data: bytes.slice(headerBytes) };
    case 'byte':
      return { dims, data: new Int8Array(bytes.slice(headerBytes).buffer) };
    case 'short':
      return { dims, data: Int16Array.from({ length: count }, (_, i) => view.getInt16(at(i))) };
    case 'int':
      return { dims, data: Int32Array.from({ length: count }, (_, i) => view.getInt32(at(i))) };
    case 'float':
      return { dims, data: Float32Array.from({ length: count }, (_, i) => view.getFloat32(at(i))) };
    default:
      return { dims, data: Float64Array.from({ length: count }, (_, i) => view.getFloat64(at(i))) };
  }
}

/** Parses an IDX file that may be gzip-compressed; the inflated size is capped at `maxBytes`. */
export async function decodeIdx(bytes: Uint8Array, maxBytes: number = DEFAULT_MAX_FILE_BYTES): Promise<IdxArray> {
  return parseIdx(isGzip(bytes) ? await inflate(bytes, 'gzip', maxBytes) : bytes);
}

/** Pairs an images IDX (N×H×W ubyte) with a labels IDX (N ubyte); LOADER_CORRUPT when they disagree. */
export function mnistBatch(images: IdxArray, labels: IdxArray): ImageBatch {
  const [count, height, width] = images.dims;
  if (images.dims.length !== 3 || !(images.data instanceof Uint8Array) || count === undefined || height === undefined || width === undefined) {
    throw new DatasetError('LOADER_CORRUPT', `images IDX must be a 3-d ubyte array, got ${images.dims.length}-d`);
  }
  if (labels.dims.length !== 1 || !(labels.data instanceof Uint8Array)) throw new DatasetError('LOADER_CORRUPT', 'labels IDX must be a 1-d ubyte array');
  if (labels.dims[0] !== count) throw new DatasetError('LOADER_CORRUPT', `${count} images but ${labels.dims[0]} labels`);
  return { images: images.data, labels: labels.data, count, shape: [height, width, 1] };
}

const MNIST_NAMES = (split: 'train' | 'test', kind: 'images' | 'labels'): RegExp =>
  new RegExp(`^${split === 'train' ? 'train' : 't10k'}-${kind}[-.]idx${kind === 'images' ? 3 : 1}-ubyte(\\.gz)?$`);

/**
 * Loads an MNIST-layout split (`train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]`, or
 * `t10k-…`) from a folder's files, as MNIST and Fashion-MNIST ship. Class names are the digits 0‥9
 * unless `classNames` is given.
 */
export async function loadMnistIdx(
  files: readonly SourceFile[],
  split: 'train' | 'test',
  classNames?: readonly string[],
  maxBytes: number = DEFAULT_MAX_FILE_BYTES,
): Promise<LoadedBatch> {
  const names = classNames ? [...classNames] : Array.from({ length: 10 }, (_, i) => String(i));
  const empty: ImageBatch = { images: new Uint8Array(0), labels: new Uint8Array(0), count: 0, shape: [28, 28, 1] };
  const skipped: Skipped[] = [];
  const find = (kind: 'images' | 'labels'): SourceFile | undefined => files.find((f) => MNIST_NAMES(split, kind).test(baseName(f.path)));
  const imagesFile = find('images');
  const labelsFile = find('labels');
  if (imagesFile === undefined || labelsFile === undefined) {
    const missing =
      imagesFile === undefined ? `${split === 'train' ? 'train' : 't10k'}-images-idx3-ubyte` : `${split === 'train' ? 'train' : 't10k'}-labels-idx1-ubyte`;
    return { batch: empty, classNames: names, skipped: [{ path: missing, code: 'LOADER_MISSING', message: `${missing}: not among the files given` }] };
  }
  const read = async (file: SourceFile): Promise<IdxArray | undefined> => {
    try {
      return await decodeIdx(await readSource(file, maxBytes), maxBytes);
    } catch (err) {
      skipped.push(skippedFrom(file.path, err));
      return undefined;
    }
  };
  const images = await read(imagesFile);
  const labels = await read(labelsFile);
  if (images === undefined || labels === undefined) return { batch: empty, classNames: names, skipped };
  try {
    const batch = mnistBatch(images, labels);
    const outOfRange = batch.labels.findIndex((l) => l >= names.length);
    if (outOfRange >= 0) throw new DatasetError('LOADER_CORRUPT', `label ${batch.labels[outOfRange]} at ${outOfRange} is outside 0‥${names.length - 1}`);
    return { batch, classNames: names, skipped };
  } catch (err) {
    return { batch: empty, classNames: names, skipped: [skippedFrom(`${imagesFile.path} + ${labelsFile.path}`, err)] };
  }
}
