import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { layoutOf, tensor } from '../params.js';
import type { Layout } from '../params.js';
import { decodeUpdate, decodeUpdateInto, encodeUpdate } from './codec.js';
import type { DecodeLimits, UpdateEncoding, UpdateMessage } from './codec.js';
import { f16Bytes, f32Bytes, rawMessage, reseal } from './codec.testkit.js';

const LIMITS: DecodeLimits = { maxBytes: 4096 };
// Layout a: [2] then b: [2, 1]; out = [a0, a1, b0, b1].
const LAYOUT: Layout = layoutOf([tensor('a', [2]), tensor('b', [2, 1])]);
const SENTINEL = 7;

function delta(tensors: UpdateMessage['tensors'], encoding: UpdateEncoding = 'fp32'): UpdateMessage {
  return { kind: 'delta', taskId: 'task', round: 3, clientId: 'c1', encoding, tensors };
}

function sentinelOut(length = LAYOUT.size): Float32Array {
  return new Float32Array(length).fill(SENTINEL);
}

/** The code `fn` throws, or 'no error'; any non-FlCoreError is rethrown so the test fails. */
function codeOf(fn: () => unknown): FlCoreErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (isFlCoreError(err)) return err.code;
    throw err;
  }
}

describe('decodeUpdateInto: values land at the layout offsets', () => {
  it('writes fp32 tensors in layout order whatever order the message lists them in, and returns the header', () => {
    const bytes = encodeUpdate(delta([tensor('b', [2, 1], new Float32Array([3, 4])), tensor('a', [2], new Float32Array([1, 2]))]));
    const out = sentinelOut();

    const header = decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out });

    expect(Array.from(out)).toEqual([1, 2, 3, 4]);
    expect(header).toEqual({ kind: 'delta', taskId: 'task', round: 3, clientId: 'c1', encoding: 'fp32', tensorIndices: [1, 0], sumOfSquares: 30 });
  });

  it.each(['fp16', 'int8'] as const)('gives the same values as decodeUpdate for %s', (encoding) => {
    const bytes = encodeUpdate(delta([tensor('a', [2], new Float32Array([0.5, -0.25])), tensor('b', [2, 1], new Float32Array([1, -1]))], encoding));
    const out = sentinelOut();

    decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out });

    const reference = decodeUpdate(bytes, LIMITS).tensors.flatMap((t) => Array.from(t.values));
    expect(Array.from(out)).toEqual(reference);
  });

  it('writes into a subarray without touching the values around it', () => {
    const bytes = encodeUpdate(delta([tensor('a', [2], new Float32Array([1, 2])), tensor('b', [2, 1], new Float32Array([3, 4]))]));
    const backing = new Float32Array(6).fill(SENTINEL);

    decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out: backing.subarray(1, 5) });

    expect(Array.from(backing)).toEqual([SENTINEL, 1, 2, 3, 4, SENTINEL]);
  });
});

describe('decodeUpdateInto: partial messages', () => {
  it('writes only the tensors a partial message carries and says which they were', () => {
    const bytes = encodeUpdate(delta([tensor('b', [2, 1], new Float32Array([3, 4]))]));
    const out = sentinelOut();

    const header = decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out, partial: true });

    expect(Array.from(out)).toEqual([SENTINEL, SENTINEL, 3, 4]);
    expect(header.tensorIndices).toEqual([1]);
  });

  it('accepts a message with no tensors when partial, and refuses it otherwise', () => {
    const bytes = encodeUpdate(delta([]));
    const out = sentinelOut();

    expect(decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out, partial: true }).tensorIndices).toEqual([]);
    expect(codeOf(() => decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out }))).toBe('PARAMS_MISMATCH');
    expect(out.every((x) => x === SENTINEL)).toBe(true);
  });

  it('still refuses a tensor the layout lacks or a wrong shape when partial, writing nothing', () => {
    const extra = encodeUpdate(delta([tensor('a', [2], new Float32Array([1, 2])), tensor('c', [1], new Float32Array([5]))]));
    const reshaped = encodeUpdate(delta([tensor('b', [1, 2], new Float32Array([3, 4]))]));
    const out = sentinelOut();

    expect(codeOf(() => decodeUpdateInto(extra, LIMITS, { layout: LAYOUT, out, partial: true }))).toBe('PARAMS_MISMATCH');
    expect(codeOf(() => decodeUpdateInto(reshaped, LIMITS, { layout: LAYOUT, out, partial: true }))).toBe('PARAMS_MISMATCH');
    expect(out.every((x) => x === SENTINEL)).toBe(true);
  });
});

describe('decodeUpdateInto: refusals are coded and leave out unchanged', () => {
  const a = (payload: number[]) => ({ name: 'a', dims: [2], payload });
  const b = (payload: number[]) => ({ name: 'b', dims: [2, 1], payload });
  const cases: [string, Uint8Array, FlCoreErrorCode][] = [
    [
      'a tensor the layout lacks',
      rawMessage({ tensors: [a(f32Bytes([1, 2])), b(f32Bytes([3, 4])), { name: 'c', dims: [1], payload: f32Bytes([5]) }] }),
      'PARAMS_MISMATCH',
    ],
    ['a missing tensor', rawMessage({ tensors: [a(f32Bytes([1, 2]))] }), 'PARAMS_MISMATCH'],
    ['a wrong shape', rawMessage({ tensors: [a(f32Bytes([1, 2])), { name: 'b', dims: [1, 2], payload: f32Bytes([3, 4]) }] }), 'PARAMS_MISMATCH'],
    // The NaN sits in the second tensor: the first must not have been written either.
    ['NaN in the last fp32 payload', rawMessage({ tensors: [a(f32Bytes([1, 2])), b(f32Bytes([3, Number.NaN]))] }), 'CODEC_NON_FINITE'],
    ['fp16 +Infinity (0x7c00)', rawMessage({ encoding: 2, tensors: [a(f16Bytes([0x3c00, 0x3c00])), b(f16Bytes([0x3c00, 0x7c00]))] }), 'CODEC_NON_FINITE'],
    ['int8 byte −128', rawMessage({ encoding: 3, tensors: [a([1, 2]), b([3, 0x80])] }), 'CODEC_BAD_ENCODING'],
    ['a bad checksum', rawMessage({ tensors: [a(f32Bytes([1, 2])), b(f32Bytes([3, 4]))], checksum: 0 }), 'CODEC_CHECKSUM'],
    ['a truncated message', rawMessage({ tensors: [a(f32Bytes([1, 2])), b(f32Bytes([3, 4]))] }).slice(0, 30), 'CODEC_BAD_LENGTH'],
  ];

  it.each(cases)('%s', (_, bytes, code) => {
    const out = sentinelOut();

    const got = codeOf(() => decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out }));

    expect(got).toBe(code);
    expect(out.every((x) => x === SENTINEL)).toBe(true);
  });

  it('refuses an out whose length differs from the layout, and a layout with a gap', () => {
    const bytes = rawMessage({ tensors: [a(f32Bytes([1, 2])), b(f32Bytes([3, 4]))] });
    const gapped: Layout = { ...LAYOUT, offsets: [0, 3], size: 5 };

    expect(codeOf(() => decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out: sentinelOut(5) }))).toBe('CODEC_BAD_CONFIG');
    expect(codeOf(() => decodeUpdateInto(bytes, LIMITS, { layout: gapped, out: sentinelOut(5) }))).toBe('CODEC_BAD_CONFIG');
  });

  it('on random mutations of a valid message either decodes like decodeUpdate or throws a code and writes nothing', () => {
    const valid = encodeUpdate(delta([tensor('a', [2], new Float32Array([1, 2])), tensor('b', [2, 1], new Float32Array([3, 4]))]));
    const mutation = fc.record({
      edits: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      sealed: fc.boolean(),
    });

    fc.assert(
      fc.property(mutation, ({ edits, sealed }) => {
        const bytes = valid.slice();
        for (const [at, value] of edits) bytes[at] = value;
        const input = sealed ? reseal(bytes) : bytes;
        const out = sentinelOut();
        const code = codeOf(() => decodeUpdateInto(input, LIMITS, { layout: LAYOUT, out }));
        if (code !== 'no error') return out.every((x) => x === SENTINEL);
        // Accepted: the same values decodeUpdate reads, placed by name.
        const byName = new Map(decodeUpdate(input, LIMITS).tensors.map((t) => [t.name, t.values]));
        return Array.from(out).every((x, i) => Object.is(x, (i < 2 ? byName.get('a') : byName.get('b'))?.[i % 2]));
      }),
      { numRuns: 3000, seed: 11 },
    );
  });
});

describe('decodeUpdateInto: scratch targets', () => {
  const a = (payload: number[]) => ({ name: 'a', dims: [2], payload });
  const b = (payload: number[]) => ({ name: 'b', dims: [2, 1], payload });

  it.each(['fp32', 'fp16', 'int8'] as const)('gives the same values and sum of squares as a checked target for %s', (encoding) => {
    const bytes = encodeUpdate(delta([tensor('a', [2], new Float32Array([0.5, -0.25])), tensor('b', [2, 1], new Float32Array([1, -1]))], encoding));
    const checked = sentinelOut();
    const scratch = sentinelOut();

    const h1 = decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out: checked });
    const h2 = decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out: scratch, scratch: true });

    expect(Array.from(scratch)).toEqual(Array.from(checked));
    expect(h2).toEqual(h1);
    expect(h2.sumOfSquares).toBeCloseTo(
      Array.from(checked).reduce((s, x) => s + x * x, 0),
      12,
    );
  });

  it.each([
    ['NaN in the last fp32 payload', rawMessage({ tensors: [a(f32Bytes([1, 2])), b(f32Bytes([3, Number.NaN]))] }), 'CODEC_NON_FINITE'],
    [
      '−Infinity in an fp32 payload at an odd offset',
      rawMessage({ clientId: 'c12', tensors: [a(f32Bytes([Number.NEGATIVE_INFINITY, 2])), b(f32Bytes([3, 4]))] }),
      'CODEC_NON_FINITE',
    ],
    ['fp16 NaN (0x7e00)', rawMessage({ encoding: 2, tensors: [a(f16Bytes([0x3c00, 0x7e00])), b(f16Bytes([0x3c00, 0x3c00]))] }), 'CODEC_NON_FINITE'],
    ['int8 byte −128', rawMessage({ encoding: 3, tensors: [a([1, 2]), b([3, 0x80])] }), 'CODEC_BAD_ENCODING'],
  ] as [string, Uint8Array, FlCoreErrorCode][])('refuses %s with the same code as a checked target', (_, bytes, code) => {
    expect(codeOf(() => decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out: sentinelOut(), scratch: true }))).toBe(code);
    expect(codeOf(() => decodeUpdateInto(bytes, LIMITS, { layout: LAYOUT, out: sentinelOut() }))).toBe(code);
  });

  it('on random mutations of a valid message answers exactly as a checked target does', () => {
    const valid = encodeUpdate(delta([tensor('a', [2], new Float32Array([1, 2])), tensor('b', [2, 1], new Float32Array([3, 4]))]));
    const mutation = fc.record({
      edits: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      sealed: fc.boolean(),
    });

    fc.assert(
      fc.property(mutation, ({ edits, sealed }) => {
        const bytes = valid.slice();
        for (const [at, value] of edits) bytes[at] = value;
        const input = sealed ? reseal(bytes) : bytes;
        const checked = sentinelOut();
        const scratch = sentinelOut();
        const c1 = codeOf(() => decodeUpdateInto(input, LIMITS, { layout: LAYOUT, out: checked }));
        const c2 = codeOf(() => decodeUpdateInto(input, LIMITS, { layout: LAYOUT, out: scratch, scratch: true }));
        return c1 === c2 && (c1 !== 'no error' || Array.from(checked).every((x, i) => Object.is(x, scratch[i])));
      }),
      { numRuns: 3000, seed: 12 },
    );
  });
});
