import fc from 'fast-check';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { parseCaptionJson } from './captions.js';
import { parseCifarBatch } from './cifar.js';
import { parseCsv } from './csv.js';
import { isDatasetError } from './errors.js';
import { makeWav, rawPng } from './fixtures.js';
import { parseIdx } from './idx.js';
import { decodeImage } from './image.js';
import { decodeWav } from './wav.js';

/** Runs `parse`; passes when it returns or throws a DatasetError, fails on any other throw. */
async function onlyCodedErrors(parse: () => unknown): Promise<boolean> {
  try {
    await parse();
    return true;
  } catch (err) {
    return isDatasetError(err);
  }
}

/** A valid file with some bytes overwritten and possibly cut short. */
const mutated = (valid: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc
    .record({
      edits: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.integer({ min: 1, max: valid.length }),
    })
    .map(({ edits, cut }) => {
      const copy = valid.slice();
      for (const [at, value] of edits) copy[at] = value;
      return copy.subarray(0, cut);
    });

const PNG_FILE = rawPng({ width: 3, height: 2, bitDepth: 8, colorType: 2, interlace: 1, scanlines: Array.from({ length: 40 }, (_, i) => (i * 7) % 5) });
const JPEG_FILE = new Uint8Array(jpeg.encode({ width: 8, height: 8, data: new Uint8Array(256).fill(128) }, 90).data);
const WAV_FILE = makeWav({
  sampleRate: 8000,
  format: 's24',
  frames: [
    [0.1, -0.2],
    [0.3, 0.4],
  ],
  extensible: true,
});
const IDX_FILE = Uint8Array.of(0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4);

describe('decoders fed damaged or random bytes throw only coded errors', () => {
  it('images (PNG and JPEG)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(PNG_FILE), mutated(JPEG_FILE), fc.uint8Array({ maxLength: 64 })), (bytes) =>
        onlyCodedErrors(() => decodeImage(bytes, 1 << 16)),
      ),
      { numRuns: 300 },
    );
  });

  it('WAV', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(WAV_FILE), fc.uint8Array({ maxLength: 64 })), (bytes) => {
        try {
          decodeWav(bytes);
          return true;
        } catch (err) {
          return isDatasetError(err);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('IDX, CIFAR, CSV and caption JSON', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(IDX_FILE), fc.uint8Array({ maxLength: 40 })), (bytes) => onlyCodedErrors(() => parseIdx(bytes))),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3100 }), (bytes) => onlyCodedErrors(() => parseCifarBatch(bytes, 'cifar100-fine'))),
      { numRuns: 50 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', '\r', ' ') }), (text) => onlyCodedErrors(() => parseCsv(text))),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.json(), (text) => onlyCodedErrors(() => parseCaptionJson(text, 'c.json'))),
      { numRuns: 200 },
    );
  });

  it('CSV written by a standard quoting rule reads back to the same fields', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', '\r\n', ' ') });
    const table = fc.array(fc.array(field, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(table, (rows) => {
        const text = rows.map((r) => r.map((f) => `"${f.replace(/"/g, '""')}"`).join(',')).join('\r\n');
        expect(parseCsv(text).map((r) => r.fields)).toEqual(rows);
      }),
      { numRuns: 200 },
    );
  });
});
