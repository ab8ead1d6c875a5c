import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeUpdate } from '../codec/codec.js';
import type { UpdateEncoding, UpdateMessage } from '../codec/codec.js';
import { f32Bytes, rawMessage } from '../codec/codec.testkit.js';
import { isFlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { tensor } from '../params.js';
import type { Tensor } from '../params.js';
import { checkRepresentationTensors, validateRepresentations } from './validate.js';
import type { RepresentationExpectations } from './validate.js';

// A multimodal client holding image and text; the round asked for B = 2 public samples in D = 3.
const expectations: RepresentationExpectations = {
  taskId: 't',
  serverRound: 4,
  clientId: 'c',
  modalities: ['image', 'text'],
  numSamples: 2,
  dim: 3,
  maxBytes: 1024,
};
const image = tensor('rep/image', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
const text = tensor('rep/text', [2, 3], new Float32Array([-1, 0, 1, 0.5, 0.25, 0]));
const message = (tensors: Tensor[], overrides: Partial<UpdateMessage> = {}): UpdateMessage => ({
  kind: 'representations',
  taskId: 't',
  round: 4,
  clientId: 'c',
  encoding: 'fp32',
  tensors,
  ...overrides,
});

function codeOf(fn: () => unknown): FlCoreErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (isFlCoreError(err)) return err.code;
    throw err;
  }
}

describe('validateRepresentations', () => {
  it('accepts the sender’s own modalities at B × D in every encoding, in any order', () => {
    for (const encoding of ['fp32', 'fp16', 'int8'] as UpdateEncoding[]) {
      const bytes = encodeUpdate(message([text, image], { encoding }));

      const valid = validateRepresentations(bytes, expectations);

      expect(valid.encoding).toBe(encoding);
      expect(Object.keys(valid.representations).sort()).toEqual(['image', 'text']);
      const tolerance = encoding === 'fp32' ? 0 : 0.03;
      valid.representations.image!.forEach((v, i) => expect(Math.abs(v - image.values[i]!)).toBeLessThanOrEqual(tolerance));
    }
  });

  it('is exact for fp32', () => {
    const valid = validateRepresentations(encodeUpdate(message([image, text])), expectations);

    expect(valid.representations).toEqual({ image: image.values, text: text.values });
  });

  const cases: [string, Uint8Array, FlCoreErrorCode][] = [
    ['a foreign modality', encodeUpdate(message([image, text, tensor('rep/audio', [2, 3])])), 'REP_MODALITIES'],
    ['a missing modality', encodeUpdate(message([image])), 'REP_MODALITIES'],
    ['a tensor of the wrong shape', encodeUpdate(message([image, tensor('rep/text', [3, 2])])), 'REP_SHAPE'],
    ['too few samples', encodeUpdate(message([image, tensor('rep/text', [1, 3])])), 'REP_SHAPE'],
    ['a larger dimension', encodeUpdate(message([image, tensor('rep/text', [2, 4])])), 'REP_SHAPE'],
    ['a delta instead', encodeUpdate(message([tensor('rep/image', [2, 3]), tensor('rep/text', [2, 3])], { kind: 'delta' })), 'REP_MALFORMED'],
    ['another task', encodeUpdate(message([image, text], { taskId: 'u' })), 'REP_MALFORMED'],
    ['another round', encodeUpdate(message([image, text], { round: 3 })), 'REP_MALFORMED'],
    ['another client', encodeUpdate(message([image, text], { clientId: 'd' })), 'REP_MALFORMED'],
    [
      'a duplicate tensor (refused by the codec)',
      rawMessage({ kind: 3, taskId: 't', round: 4, tensors: [0, 1].map(() => ({ name: 'rep/image', dims: [1, 1], payload: f32Bytes([1]) })) }),
      'REP_MALFORMED',
    ],
    [
      'NaN',
      rawMessage({ kind: 3, taskId: 't', round: 4, tensors: [{ name: 'rep/image', dims: [2, 3], payload: f32Bytes([1, 2, 3, 4, 5, Number.NaN]) }] }),
      'REP_NON_FINITE',
    ],
    ['more bytes than the limit', encodeUpdate(message([image, tensor('rep/text', [2, 300])])), 'REP_TOO_LARGE'],
    ['garbage', new Uint8Array([1, 2, 3]), 'REP_MALFORMED'],
    ['a bad checksum', rawMessage({ kind: 3, taskId: 't', round: 4, checksum: 1 }), 'REP_MALFORMED'],
  ];

  it.each(cases)('refuses %s with a code and leaves the bytes as they were', (_, bytes, code) => {
    const before = bytes.slice();

    expect(codeOf(() => validateRepresentations(bytes, expectations))).toBe(code);
    expect(bytes).toEqual(before);
  });

  it('refuses more values than every modality at B × D could need, before allocating them', () => {
    const big = encodeUpdate(message([tensor('rep/image', [2, 3]), tensor('rep/text', [2, 3]), tensor('rep/audio', [2, 3])]));

    expect(codeOf(() => validateRepresentations(big, { ...expectations, dim: 1, maxBytes: 1 << 20 }))).toBe('REP_TOO_LARGE');
  });

  it('refuses malformed expectations as a caller error', () => {
    const bytes = encodeUpdate(message([image, text]));
    for (const bad of [
      { modalities: [] },
      { modalities: ['image', 'image'] },
      { modalities: ['smell'] },
      { numSamples: 0 },
      { numSamples: 5000 },
      { dim: 1.5 },
      { maxBytes: -1 },
    ]) {
      expect(codeOf(() => validateRepresentations(bytes, { ...expectations, ...bad } as RepresentationExpectations))).toBe('REP_BAD_CONFIG');
    }
  });

  it('throws only REP_* codes on random bytes and on mutated valid uploads (property)', () => {
    const valid = encodeUpdate(message([image, text], { encoding: 'fp16' }));
    const mutated = fc.tuple(fc.nat(), fc.nat({ max: 255 })).map(([at, byte]) => {
      const out = valid.slice();
      out[at % out.length] = byte;
      return out;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 128 }), mutated), (bytes) => {
        const code = codeOf(() => validateRepresentations(bytes, expectations));
        expect(code === 'no error' || code.startsWith('REP_')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('checkRepresentationTensors', () => {
  it('returns the decoded arrays by modality, unmodified', () => {
    const out = checkRepresentationTensors([image, text], expectations);

    expect(out.image).toBe(image.values);
    expect(out.text).toBe(text.values);
  });

  it('refuses duplicates, foreign names, wrong shapes and non-finite values with codes', () => {
    expect(codeOf(() => checkRepresentationTensors([image, image, text], expectations))).toBe('REP_MODALITIES');
    expect(codeOf(() => checkRepresentationTensors([image, tensor('text', [2, 3])], expectations))).toBe('REP_MODALITIES');
    expect(codeOf(() => checkRepresentationTensors([image, { name: 'rep/text', shape: [2, 3], values: new Float32Array(5) }], expectations))).toBe('REP_SHAPE');
    expect(
      codeOf(() =>
        checkRepresentationTensors(
          [
            image,
            tensor(
              'rep/text',
              [2, 3],
              text.values.map((v, i) => (i === 2 ? Infinity : v)),
            ),
          ],
          expectations,
        ),
      ),
    ).toBe('REP_NON_FINITE');
  });
});
