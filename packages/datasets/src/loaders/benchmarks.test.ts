import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { loadCaptionedImages, parseCaptionJson } from './captions.js';
import { loadCifar, parseCifarBatch } from './cifar.js';
import { isDatasetError } from './errors.js';
import { concatBytes } from './fixtures.js';
import { decodeIdx, loadMnistIdx, parseIdx } from './idx.js';
import { sourceFromBytes, sourceFromText } from './source.js';

/** A CIFAR record: label byte(s), then R, G, B planes filled with r, g, b (first pixel of R set to `first`). */
function cifarRecord(labels: number[], rgb: [number, number, number], first: number): Uint8Array {
  const record = new Uint8Array(labels.length + 3072);
  record.set(labels, 0);
  rgb.forEach((v, plane) => record.fill(v, labels.length + plane * 1024, labels.length + (plane + 1) * 1024));
  record[labels.length] = first;
  return record;
}

/** An IDX ubyte file with the given dimensions; element i is i mod 256. */
function idxUbyte(dims: number[]): Uint8Array {
  const count = dims.reduce((n, d) => n * d, 1);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  out.set([0, 0, 0x08, dims.length]);
  dims.forEach((d, i) => new DataView(out.buffer).setUint32(4 + 4 * i, d));
  for (let i = 0; i < count; i++) out[4 + 4 * dims.length + i] = i % 256;
  return out;
}

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'none';
  } catch (err) {
    return isDatasetError(err) ? err.code : `untyped: ${String(err)}`;
  }
}

describe('CIFAR', () => {
  it('parses CIFAR-10 records into interleaved RGB with labels', () => {
    // Arrange
    const bytes = concatBytes(cifarRecord([3], [10, 20, 30], 99), cifarRecord([9], [1, 2, 3], 1));
    // Act
    const batch = parseCifarBatch(bytes, 'cifar10');
    // Assert
    expect(batch.count).toBe(2);
    expect([...batch.labels]).toEqual([3, 9]);
    expect([...batch.images.subarray(0, 6)]).toEqual([99, 20, 30, 10, 20, 30]);
    expect([...batch.images.subarray(3072, 3075)]).toEqual([1, 2, 3]);
  });

  it('reads the fine or coarse CIFAR-100 label', () => {
    const bytes = cifarRecord([7, 42], [0, 0, 0], 0);
    expect([...parseCifarBatch(bytes, 'cifar100-fine').labels]).toEqual([42]);
    expect([...parseCifarBatch(bytes, 'cifar100-coarse').labels]).toEqual([7]);
  });

  it('refuses partial records, bad labels and empty files', () => {
    expect(codeOf(() => parseCifarBatch(cifarRecord([1], [0, 0, 0], 0).subarray(0, 3000), 'cifar10'))).toBe('LOADER_CORRUPT');
    expect(codeOf(() => parseCifarBatch(cifarRecord([10], [0, 0, 0], 0), 'cifar10'))).toBe('LOADER_CORRUPT');
    expect(codeOf(() => parseCifarBatch(cifarRecord([20, 0], [0, 0, 0], 0), 'cifar100-coarse'))).toBe('LOADER_CORRUPT');
    expect(codeOf(() => parseCifarBatch(new Uint8Array(0), 'cifar10'))).toBe('LOADER_EMPTY');
  });

  it('loads a split from a folder, skipping a bad batch and reading class names', async () => {
    const files = [
      sourceFromBytes('cifar-10-batches-bin/data_batch_2.bin', cifarRecord([5], [0, 0, 0], 0)),
      sourceFromBytes('cifar-10-batches-bin/data_batch_1.bin', concatBytes(cifarRecord([1], [0, 0, 0], 0), cifarRecord([2], [0, 0, 0], 0))),
      sourceFromBytes('cifar-10-batches-bin/data_batch_3.bin', new Uint8Array(100)),
      sourceFromBytes('cifar-10-batches-bin/test_batch.bin', cifarRecord([0], [0, 0, 0], 0)),
      sourceFromText('cifar-10-batches-bin/batches.meta.txt', 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n'),
    ];
    const result = await loadCifar(files, 'cifar10', 'train');
    expect(result.batch.count).toBe(3);
    expect([...result.batch.labels]).toEqual([1, 2, 5]);
    expect(result.classNames[9]).toBe('j');
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([['cifar-10-batches-bin/data_batch_3.bin', 'LOADER_CORRUPT']]);
  });
});

describe('IDX', () => {
  it('parses ubyte and big-endian multi-byte arrays', () => {
    expect(parseIdx(idxUbyte([2, 3]))).toEqual({ dims: [2, 3], data: Uint8Array.of(0, 1, 2, 3, 4, 5) });
    const shorts = Uint8Array.of(0, 0, 0x0b, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x00);
    expect([...parseIdx(shorts).data]).toEqual([-2, 256]);
  });

  it('refuses bad magic, lying dimensions, huge declared sizes and truncation', () => {
    const good = idxUbyte([2, 2]);
    const lying = good.slice();
    new DataView(lying.buffer).setUint32(4, 0xffffffff); // claims 4 billion rows
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'LOADER_EMPTY'],
      [Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 1, 0), 'LOADER_CORRUPT'],
      [Uint8Array.of(0, 0, 0x42, 1, 0, 0, 0, 1, 0), 'LOADER_CORRUPT'],
      [lying, 'LOADER_CORRUPT'],
      [good.subarray(0, good.length - 1), 'LOADER_CORRUPT'],
      [good.subarray(0, 6), 'LOADER_CORRUPT'],
      [idxUbyte([0, 5]), 'LOADER_EMPTY'],
    ];
    for (const [bytes, code] of cases) expect(codeOf(() => parseIdx(bytes))).toBe(code);
  });

  it('inflates gzip and caps the inflated size', async () => {
    const gz = new Uint8Array(gzipSync(idxUbyte([3, 2, 2])));
    expect((await decodeIdx(gz)).dims).toEqual([3, 2, 2]);
    const bomb = new Uint8Array(gzipSync(new Uint8Array(1 << 20)));
    await expect(decodeIdx(bomb, 1000)).rejects.toMatchObject({ code: 'LOADER_TOO_LARGE' });
    await expect(decodeIdx(gz.subarray(0, gz.length - 8))).rejects.toMatchObject({ code: 'LOADER_CORRUPT' });
  });

  it('loads an MNIST split from a folder and checks images against labels', async () => {
    const images = idxUbyte([2, 2, 2]);
    const labels = Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 2, 7, 3);
    const result = await loadMnistIdx(
      [sourceFromBytes('mnist/t10k-images-idx3-ubyte.gz', new Uint8Array(gzipSync(images))), sourceFromBytes('mnist/t10k-labels.idx1-ubyte', labels)],
      'test',
    );
    expect(result.skipped).toEqual([]);
    expect(result.batch.shape).toEqual([2, 2, 1]);
    expect([...result.batch.labels]).toEqual([7, 3]);
    expect([...result.batch.images]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const mismatched = await loadMnistIdx(
      [sourceFromBytes('train-images-idx3-ubyte', idxUbyte([3, 2, 2])), sourceFromBytes('train-labels-idx1-ubyte', labels)],
      'train',
    );
    expect(mismatched.skipped.map((s) => s.code)).toEqual(['LOADER_CORRUPT']);
    expect(mismatched.batch.count).toBe(0);
    const missing = await loadMnistIdx([sourceFromBytes('train-images-idx3-ubyte', images)], 'train');
    expect(missing.skipped.map((s) => [s.path, s.code])).toEqual([['train-labels-idx1-ubyte', 'LOADER_MISSING']]);
  });
});

describe('caption JSON', () => {
  const png = (v: number): Uint8Array => {
    const image = new PNG({ width: 2, height: 2 });
    image.data.fill(v);
    for (let p = 3; p < 16; p += 4) image.data[p] = 255;
    return new Uint8Array(PNG.sync.write(image));
  };

  it('joins COCO images and annotations on image id', () => {
    const json = JSON.stringify({
      images: [{ id: 1, file_name: 'a.png' }, { id: 2, file_name: 'b.png' }, { file_name: 'c.png' }],
      annotations: [
        { image_id: 1, caption: 'A cat. ' },
        { image_id: 1, caption: 'A pet' },
        { image_id: 9, caption: 'orphan' },
      ],
    });
    const { entries, skipped } = parseCaptionJson(json, 'captions.json');
    expect(entries).toEqual([{ fileName: 'a.png', captions: ['A cat.', 'A pet'] }]);
    expect(skipped.map((s) => [s.path, s.code])).toEqual([
      ['b.png', 'LOADER_EMPTY'],
      ['captions.json:images[2]', 'LOADER_CORRUPT'],
    ]);
  });

  it('loads Karpathy-split Flickr30k entries with their images, by split', async () => {
    const json = JSON.stringify({
      dataset: 'flickr30k',
      images: [
        { filename: '1.png', split: 'train', sentences: [{ raw: 'Two dogs run.' }, { raw: 'Dogs.' }] },
        { filename: '2.png', split: 'test', sentences: [{ raw: 'A tree.' }] },
        { filename: '3.png', split: 'train', sentences: [{ raw: 'Gone.' }] },
        { filename: 'bad.png', split: 'train', sentences: [{ raw: 'Broken.' }] },
      ],
    });
    const images = [
      sourceFromBytes('flickr30k-images/1.png', png(200)),
      sourceFromBytes('flickr30k-images/2.png', png(100)),
      sourceFromText('flickr30k-images/bad.png', 'nope'),
    ];
    const result = await loadCaptionedImages(sourceFromText('dataset_flickr30k.json', json), images, {
      target: { height: 1, width: 1, channels: 1, dtype: 'uint8' },
      splits: ['train'],
    });
    expect(result.samples.map((s) => [s.path, [...s.pixels], s.captions, s.split])).toEqual([
      ['flickr30k-images/1.png', [200], ['Two dogs run.', 'Dogs.'], 'train'],
    ]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['3.png', 'LOADER_MISSING'],
      ['flickr30k-images/bad.png', 'LOADER_UNSUPPORTED'],
    ]);
  });

  it('reports an unreadable caption file and loads nothing', async () => {
    const result = await loadCaptionedImages(sourceFromText('c.json', '{"images": 3}'), [], { target: { height: 1, width: 1, channels: 1, dtype: 'uint8' } });
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([['c.json', 'LOADER_CORRUPT']]);
  });
});
