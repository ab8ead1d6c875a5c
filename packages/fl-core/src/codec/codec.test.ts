import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { tensor } from '../params.js';
import type { Tensor } from '../params.js';
import { decodeUpdate, encodeUpdate, encodedByteLength, int8ScaleFor, readFp32 } from './codec.js';
import { crc32 } from './crc32.js';
import type { DecodeLimits, UpdateMessage } from './codec.js';
import { f16Bytes, f32Bytes, messageArb, rawMessage, reseal } from './codec.testkit.js';

const LIMITS: DecodeLimits = { maxBytes: 1 << 20 };
const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/), (b) => parseInt(b, 16));

function codeOf(fn: () => unknown): FlCoreErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (isFlCoreError(err)) return err.code;
    throw err;
  }
}

const decodeCode = (bytes: Uint8Array, limits: DecodeLimits = LIMITS): FlCoreErrorCode | 'no error' => codeOf(() => decodeUpdate(bytes, limits));
const bitsOf = (values: Float32Array): number[] => [...new Uint32Array(values.buffer, values.byteOffset, values.length)];

const delta = (tensors: Tensor[], overrides: Partial<UpdateMessage> = {}): UpdateMessage => ({
  kind: 'delta',
  taskId: 't',
  round: 7,
  clientId: 'c',
  encoding: 'fp32',
  tensors,
  ...overrides,
});

describe('codec: hand-checked byte layouts', () => {
  // Expected bytes and checksums were produced independently with Python's struct and zlib.crc32.
  it('writes an fp32 delta byte for byte', () => {
    const msg = delta([tensor('w', [2], new Float32Array([1, -2]))]);

    const bytes = encodeUpdate(msg);

    expect(bytes).toEqual(
      hex(`
        43 48 52 53  01 00  01  01  07 00 00 00
        01 74  01 63  01 00 00 00
        01 77  01  02 00 00 00  02 00 00 00  00 00 80 3f  00 00 00 c0
        5f ac 75 42`),
    );
    expect(encodedByteLength(msg)).toBe(43);
  });

  it('writes an fp16 model byte for byte, with an empty client id', () => {
    const msg: UpdateMessage = {
      kind: 'model',
      taskId: 't',
      round: 0,
      clientId: '',
      encoding: 'fp16',
      tensors: [tensor('h', [3], new Float32Array([1, -2, 65504]))],
    };

    const bytes = encodeUpdate(msg);

    expect(bytes).toEqual(
      hex(`
        43 48 52 53  01 00  02  02  00 00 00 00
        01 74  00  01 00 00 00
        01 68  01  03 00 00 00  03 00 00 00  00 3c  00 c0  ff 7b
        99 38 2a af`),
    );
  });

  it('writes an int8 delta with scale maxAbs/127 and symmetric rounding', () => {
    // scale = fround(1/127) = 0x3c010204; 1/s = 127, −0.5/s = −63.5 → −64, 0.25/s = 31.75 → 32.
    const msg = delta([tensor('q', [3], new Float32Array([1, -0.5, 0.25]))], { round: 2, encoding: 'int8' });

    const bytes = encodeUpdate(msg);
    const back = decodeUpdate(bytes, LIMITS);

    expect(bytes).toEqual(
      hex(`
        43 48 52 53  01 00  01  03  02 00 00 00
        01 74  01 63  01 00 00 00
        01 71  01  03 00 00 00  04 02 01 3c  03 00 00 00  7f c0 20
        b9 43 9b a8`),
    );
    const s = Math.fround(1 / 127);
    expect(Array.from(back.tensors[0]!.values)).toEqual([127 * s, -64 * s, 32 * s].map(Math.fround));
  });

  it('writes an fp32 representations message (kind 3) byte for byte and reads it back', () => {
    const msg = delta([tensor('rep/text', [1, 2], new Float32Array([0.5, -1]))], { kind: 'representations', round: 2 });

    const bytes = encodeUpdate(msg);

    expect(bytes).toEqual(
      hex(`
        43 48 52 53  01 00  03  01  02 00 00 00
        01 74  01 63  01 00 00 00
        08 72 65 70 2f 74 65 78 74  02  01 00 00 00  02 00 00 00  02 00 00 00  00 00 00 3f  00 00 80 bf
        af 89 ff f4`),
    );
    expect(decodeUpdate(bytes, LIMITS)).toEqual({ ...msg, tensors: [{ name: 'rep/text', shape: [1, 2], values: new Float32Array([0.5, -1]) }] });
  });

  it('writes an fp32 split message (kind 4, step in the round field) byte for byte and reads it back', () => {
    // Expected bytes from Python's struct and zlib.crc32, like the fixtures above.
    const msg = delta([tensor('split/m', [2], new Float32Array([1, 0]))], { kind: 'split', round: 9 });

    const bytes = encodeUpdate(msg);

    expect(bytes).toEqual(
      hex(`
        43 48 52 53  01 00  04  01  09 00 00 00
        01 74  01 63  01 00 00 00
        07 73 70 6c 69 74 2f 6d  01  02 00 00 00  02 00 00 00  00 00 80 3f  00 00 00 00
        6a 0c 2f ed`),
    );
    expect(encodedByteLength(msg)).toBe(49);
    expect(decodeUpdate(bytes, LIMITS)).toEqual({ ...msg, tensors: [{ name: 'split/m', shape: [2], values: new Float32Array([1, 0]) }] });
  });

  it.each(['fp32', 'fp16', 'int8'] as const)('round-trips a split message in %s within the documented error', (encoding) => {
    const tokens = new Float32Array([0.5, -1.25, 3, 0.001, -0.75, 2]);
    const msg = delta([tensor('split/tokens', [1, 2, 3], tokens), tensor('split/mask', [1, 2], new Float32Array([1, 0]))], {
      kind: 'split',
      round: 41,
      encoding,
    });

    const back = decodeUpdate(encodeUpdate(msg), LIMITS);

    expect({ ...back, tensors: back.tensors.map((t) => [t.name, t.shape]) }).toEqual({
      ...msg,
      tensors: [
        ['split/tokens', [1, 2, 3]],
        ['split/mask', [1, 2]],
      ],
    });
    const scale = int8ScaleFor(3);
    const bound = (x: number): number => (encoding === 'fp32' ? 0 : encoding === 'fp16' ? Math.abs(x) * 2 ** -11 : scale / 2 + Math.abs(x) * 2 ** -24);
    tokens.forEach((x, i) => expect(Math.abs(back.tensors[0]!.values[i]! - x)).toBeLessThanOrEqual(bound(x)));
    expect(Array.from(back.tensors[1]!.values)).toEqual([1, 0]);
  });

  it('decodes the fp32 fixture back to the same header and tensors', () => {
    const bytes = hex('43 48 52 53 01 00 01 01 07 00 00 00 01 74 01 63 01 00 00 00 01 77 01 02 00 00 00 02 00 00 00 00 00 80 3f 00 00 00 c0 5f ac 75 42');

    const decoded = decodeUpdate(bytes, LIMITS);

    expect(decoded).toEqual({
      kind: 'delta',
      taskId: 't',
      round: 7,
      clientId: 'c',
      encoding: 'fp32',
      tensors: [{ name: 'w', shape: [2], values: new Float32Array([1, -2]) }],
    });
  });

  it('decodes a payload that starts at an odd offset (fp32 is copied, not viewed)', () => {
    // 'ab' makes the payload start at an odd byte offset; a Float32Array view there would throw.
    const bytes = encodeUpdate(delta([tensor('ab', [2], new Float32Array([0.5, 3]))]));

    expect(Array.from(decodeUpdate(bytes, LIMITS).tensors[0]!.values)).toEqual([0.5, 3]);
  });

  it('reads fp32 payloads the same way with and without the memcpy fast path', () => {
    const bytes = Uint8Array.from([0xaa, ...f32Bytes([1.5, -0, 3e-42, 7])]);
    const viaCopy = new Float32Array(4);
    const viaView = new Float32Array(4);

    readFp32(bytes, 1, viaCopy, true);
    readFp32(bytes, 1, viaView, false);

    expect(bitsOf(viaView)).toEqual(bitsOf(viaCopy));
    expect(bitsOf(viaCopy)).toEqual(bitsOf(new Float32Array([1.5, -0, 3e-42, 7])));
  });
});

describe('codec: round trips', () => {
  it('fp32 is bit-exact, header fields included, and encodedByteLength is exact', () => {
    fc.assert(
      fc.property(messageArb('fp32', 3.4e38), (msg) => {
        const bytes = encodeUpdate(msg);
        const back = decodeUpdate(bytes, { maxBytes: bytes.length });

        expect(bytes.length).toBe(encodedByteLength(msg));
        expect({ ...back, tensors: [] }).toEqual({ ...msg, tensors: [] });
        expect(back.tensors.map((t) => [t.name, t.shape])).toEqual(msg.tensors.map((t) => [t.name, t.shape]));
        back.tensors.forEach((t, i) => expect(bitsOf(t.values)).toEqual(bitsOf(msg.tensors[i]!.values)));
      }),
      { numRuns: 300 },
    );
  });

  it('fp16 stays within 2^-11 relative error (normal range) and 2^-25 absolute (subnormal)', () => {
    fc.assert(
      fc.property(messageArb('fp16', 65504), (msg) => {
        const back = decodeUpdate(encodeUpdate(msg), LIMITS);

        back.tensors.forEach((t, i) => {
          const x = msg.tensors[i]!.values;
          for (let j = 0; j < x.length; j++) {
            const bound = Math.abs(x[j]!) >= 2 ** -14 ? 2 ** -11 * Math.abs(x[j]!) : 2 ** -25;
            expect(Math.abs(t.values[j]! - x[j]!)).toBeLessThanOrEqual(bound);
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it('int8 stays within scale/2 per element (plus float32 rounding of the result)', () => {
    fc.assert(
      fc.property(messageArb('int8', 1e38), (msg) => {
        const back = decodeUpdate(encodeUpdate(msg), LIMITS);

        back.tensors.forEach((t, i) => {
          const x = msg.tensors[i]!.values;
          const s = int8ScaleFor(x.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
          for (let j = 0; j < x.length; j++) {
            const y = t.values[j]!;
            // s·2^-40 covers the double rounding of x/s; 2^-24·|y| the float32 rounding of q·s.
            expect(Math.abs(y - x[j]!)).toBeLessThanOrEqual(s / 2 + s * 2 ** -40 + 2 ** -24 * Math.abs(y));
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it('int8 keeps the scale/2 bound when the scale is a float32 subnormal', () => {
    // 190·2^-149 / 127 rounds down to 2^-149, which would quantise 190 steps into ±127; the scale is nudged up.
    const x = new Float32Array([190 * 2 ** -149, -3 * 2 ** -149]);

    const s = int8ScaleFor(x[0]!);
    const back = decodeUpdate(encodeUpdate(delta([tensor('tiny', [2], x)], { encoding: 'int8' })), LIMITS).tensors[0]!.values;

    expect(s).toBe(2 * 2 ** -149);
    expect(Math.abs(back[0]! - x[0]!)).toBeLessThanOrEqual(s / 2);
    expect(Math.abs(back[1]! - x[1]!)).toBeLessThanOrEqual(s / 2);
  });

  it('carries empty tensors, scalars and all-zero int8 tensors', () => {
    const msg = delta([tensor('e', [0, 3]), tensor('s', [], new Float32Array([2.5])), tensor('z', [2])], { encoding: 'int8' });

    const back = decodeUpdate(encodeUpdate(msg), LIMITS);

    expect(back.tensors.map((t) => [t.name, t.shape, Array.from(t.values)])).toEqual([
      ['e', [0, 3], []],
      ['s', [], [2.5]],
      ['z', [2], [0, 0]],
    ]);
  });
});

describe('codec: the encoder refuses bad input with a code', () => {
  const ok = [tensor('w', [2], new Float32Array([1, 2]))];
  const cases: [string, UpdateMessage, FlCoreErrorCode][] = [
    ['NaN value', delta([tensor('w', [2], new Float32Array([1, Number.NaN]))]), 'CODEC_NON_FINITE'],
    ['Infinity value', delta([tensor('w', [1], new Float32Array([Number.NEGATIVE_INFINITY]))], { encoding: 'fp16' }), 'CODEC_NON_FINITE'],
    ['fp16 overflow', delta([tensor('w', [2], new Float32Array([1, 70000]))], { encoding: 'fp16' }), 'CODEC_OUT_OF_RANGE'],
    ['int8 scale overflow', delta([tensor('w', [1], new Float32Array([3.4028234663852886e38]))], { encoding: 'int8' }), 'CODEC_OUT_OF_RANGE'],
    ['unknown encoding', delta(ok, { encoding: 'bf16' as never }), 'CODEC_BAD_ENCODING'],
    ['unknown kind', delta(ok, { kind: 'toString' as never }), 'CODEC_BAD_HEADER'],
    ['negative round', delta(ok, { round: -1 }), 'CODEC_BAD_HEADER'],
    ['fractional round', delta(ok, { round: 1.5 }), 'CODEC_BAD_HEADER'],
    ['round past u32', delta(ok, { round: 2 ** 32 }), 'CODEC_BAD_HEADER'],
    ['empty task id', delta(ok, { taskId: '' }), 'CODEC_BAD_HEADER'],
    ['non-ASCII task id', delta(ok, { taskId: 'tâche' }), 'CODEC_BAD_HEADER'],
    ['256-character task id', delta(ok, { taskId: 'x'.repeat(256) }), 'CODEC_BAD_HEADER'],
    ['delta without client id', delta(ok, { clientId: '' }), 'CODEC_BAD_HEADER'],
    ['model with client id', delta(ok, { kind: 'model' }), 'CODEC_BAD_HEADER'],
    ['representations without client id', delta([tensor('rep/image', [1, 2])], { kind: 'representations', clientId: '' }), 'CODEC_BAD_HEADER'],
    ['representations tensor not named rep/<modality>', delta([tensor('image', [1, 2])], { kind: 'representations' }), 'CODEC_BAD_HEADER'],
    ['representations tensor of rank 3', delta([tensor('rep/text', [1, 2, 1])], { kind: 'representations' }), 'CODEC_BAD_SHAPE'],
    ['split without client id', delta([tensor('split/tokens', [1, 2])], { kind: 'split', clientId: '' }), 'CODEC_BAD_HEADER'],
    ['split tensor not named split/<name>', delta([tensor('rep/text', [1, 2])], { kind: 'split' }), 'CODEC_BAD_HEADER'],
    ['split tensor with an upper-case name', delta([tensor('split/Tokens', [1, 2])], { kind: 'split' }), 'CODEC_BAD_HEADER'],
    ['control character in a name', delta([tensor('a\nb', [1])]), 'CODEC_BAD_HEADER'],
    ['empty name', delta([tensor('', [1])]), 'CODEC_BAD_HEADER'],
    ['duplicate names', delta([tensor('w', [1]), tensor('w', [2])]), 'CODEC_BAD_HEADER'],
    ['rank 9', delta([tensor('w', [1, 1, 1, 1, 1, 1, 1, 1, 1])]), 'CODEC_BAD_SHAPE'],
    ['shape and values disagree', delta([{ name: 'w', shape: [3], values: new Float32Array(2) }]), 'CODEC_BAD_SHAPE'],
    ['negative dimension', delta([{ name: 'w', shape: [-1], values: new Float32Array(0) }]), 'CODEC_BAD_SHAPE'],
    ['values not a Float32Array', delta([{ name: 'w', shape: [1], values: [1] as never }]), 'CODEC_BAD_SHAPE'],
  ];

  it.each(cases)('%s', (_, msg, code) => {
    expect(codeOf(() => encodeUpdate(msg))).toBe(code);
  });

  it('keeps 65519.99 in fp16 (it rounds down to 65504) and leaves its input untouched', () => {
    const values = new Float32Array([65519.99, -1]);
    const before = values.slice();

    const back = decodeUpdate(encodeUpdate(delta([tensor('w', [2], values)], { encoding: 'fp16' })), LIMITS);

    expect(Array.from(back.tensors[0]!.values)).toEqual([65504, -1]);
    expect(values).toEqual(before);
  });
});

describe('codec: the decoder refuses bad input with a code', () => {
  const w = (payload: number[], dims = [2]): { dims: number[]; payload: number[] } => ({ dims, payload });
  const good = rawMessage({ tensors: [w(f32Bytes([1, 2]))] });

  it('accepts the well-formed raw message the cases below corrupt', () => {
    expect(decodeCode(good)).toBe('no error');
  });

  const cases: [string, Uint8Array, FlCoreErrorCode][] = [
    ['empty input', new Uint8Array(0), 'CODEC_TRUNCATED'],
    ['three bytes', hex('43 48 52'), 'CODEC_TRUNCATED'],
    ['cut inside the header', good.slice(0, 10), 'CODEC_TRUNCATED'],
    // Shape [1, 2]: the second dimension sits at bytes 27–30; 33 bytes leave a body of 29.
    ['cut inside a dimension', reseal(rawMessage({ tensors: [w(f32Bytes([1, 2]), [1, 2])] }).slice(0, 33)), 'CODEC_TRUNCATED'],
    // One byte short: the body shrinks by one, so the last payload now overruns it.
    ['last byte missing', good.slice(0, good.length - 1), 'CODEC_BAD_LENGTH'],
    ['wrong magic', rawMessage({ magic: [0x43, 0x48, 0x52, 0x54] }), 'CODEC_BAD_MAGIC'],
    ['version 2', rawMessage({ version: 2 }), 'CODEC_BAD_VERSION'],
    ['version 0', rawMessage({ version: 0 }), 'CODEC_BAD_VERSION'],
    ['kind 5', rawMessage({ kind: 5 }), 'CODEC_BAD_HEADER'],
    ['kind 0', rawMessage({ kind: 0 }), 'CODEC_BAD_HEADER'],
    ['split without client id', rawMessage({ kind: 4, clientId: '' }), 'CODEC_BAD_HEADER'],
    ['split tensor not named split/<name>', rawMessage({ kind: 4, tensors: [{ name: 'tokens', ...w(f32Bytes([1, 2])) }] }), 'CODEC_BAD_HEADER'],
    ['split tensor with an empty split/ suffix', rawMessage({ kind: 4, tensors: [{ name: 'split/', ...w(f32Bytes([1, 2])) }] }), 'CODEC_BAD_HEADER'],
    ['representations without client id', rawMessage({ kind: 3, clientId: '' }), 'CODEC_BAD_HEADER'],
    ['representations tensor not named rep/<modality>', rawMessage({ kind: 3, tensors: [{ name: 'w', ...w(f32Bytes([1, 2]), [1, 2]) }] }), 'CODEC_BAD_HEADER'],
    [
      'representations tensor of an unknown modality',
      rawMessage({ kind: 3, tensors: [{ name: 'rep/smell', ...w(f32Bytes([1, 2]), [1, 2]) }] }),
      'CODEC_BAD_HEADER',
    ],
    ['representations tensor of rank 1', rawMessage({ kind: 3, tensors: [{ name: 'rep/image', ...w(f32Bytes([1, 2])) }] }), 'CODEC_BAD_SHAPE'],
    ['encoding 4', rawMessage({ encoding: 4 }), 'CODEC_BAD_ENCODING'],
    ['encoding 0', rawMessage({ encoding: 0 }), 'CODEC_BAD_ENCODING'],
    ['empty task id', rawMessage({ taskId: '' }), 'CODEC_BAD_HEADER'],
    ['DEL in the task id', rawMessage({ taskId: [0x74, 0x7f] }), 'CODEC_BAD_HEADER'],
    ['high byte in the client id', rawMessage({ clientId: [0xc3, 0xa9] }), 'CODEC_BAD_HEADER'],
    ['delta without client id', rawMessage({ clientId: '' }), 'CODEC_BAD_HEADER'],
    ['model with client id', rawMessage({ kind: 2 }), 'CODEC_BAD_HEADER'],
    ['NUL in a tensor name', rawMessage({ tensors: [{ name: [0x61, 0x00], ...w(f32Bytes([1, 2])) }] }), 'CODEC_BAD_HEADER'],
    ['empty tensor name', rawMessage({ tensors: [{ name: '', ...w(f32Bytes([1, 2])) }] }), 'CODEC_BAD_HEADER'],
    ['duplicate tensor names', rawMessage({ tensors: [w(f32Bytes([1, 2])), w(f32Bytes([3, 4]))] }), 'CODEC_BAD_HEADER'],
    ['string longer than what remains', reseal(Uint8Array.from([...good.slice(0, 12), 200, 0x74, 0, 0, 0, 0])), 'CODEC_BAD_LENGTH'],
    ['tensor count of 10^9', rawMessage({ tensorCount: 1e9, tensors: [w(f32Bytes([1, 2]))] }), 'CODEC_BAD_LENGTH'],
    ['tensor count one too many', rawMessage({ tensorCount: 2, tensors: [w(f32Bytes([1, 2]))] }), 'CODEC_TRUNCATED'],
    ['payload longer than what remains', rawMessage({ tensors: [w(f32Bytes([1, 2]), [1000])] }), 'CODEC_BAD_LENGTH'],
    ['rank 9', rawMessage({ tensors: [{ rank: 9, dims: [1, 1, 1, 1, 1, 1, 1, 1, 1], payload: f32Bytes([1]) }] }), 'CODEC_BAD_SHAPE'],
    ['dims whose product overflows u32', rawMessage({ tensors: [{ dims: [65536, 65536], count: 0 }] }), 'CODEC_BAD_SHAPE'],
    ['element count unlike the shape', rawMessage({ tensors: [{ dims: [2], count: 1, payload: f32Bytes([1]) }] }), 'CODEC_BAD_SHAPE'],
    ['NaN in an fp32 payload', rawMessage({ tensors: [w(f32Bytes([1, Number.NaN]))] }), 'CODEC_NON_FINITE'],
    ['Infinity in an fp32 payload', rawMessage({ tensors: [w(f32Bytes([Number.POSITIVE_INFINITY, 1]))] }), 'CODEC_NON_FINITE'],
    ['Infinity in an fp16 payload', rawMessage({ encoding: 2, tensors: [w(f16Bytes([0x3c00, 0x7c00]))] }), 'CODEC_NON_FINITE'],
    ['NaN in an fp16 payload', rawMessage({ encoding: 2, tensors: [w(f16Bytes([0xfe01, 0]))] }), 'CODEC_NON_FINITE'],
    ['NaN int8 scale', rawMessage({ encoding: 3, tensors: [{ dims: [1], scale: Number.NaN, payload: [1] }] }), 'CODEC_NON_FINITE'],
    ['Infinity int8 scale', rawMessage({ encoding: 3, tensors: [{ dims: [1], scale: Number.POSITIVE_INFINITY, payload: [1] }] }), 'CODEC_NON_FINITE'],
    ['negative int8 scale', rawMessage({ encoding: 3, tensors: [{ dims: [1], scale: -1, payload: [1] }] }), 'CODEC_BAD_HEADER'],
    ['int8 scale that overflows when dequantised', rawMessage({ encoding: 3, tensors: [{ dims: [1], scale: 3e36, payload: [1] }] }), 'CODEC_OUT_OF_RANGE'],
    ['int8 byte −128', rawMessage({ encoding: 3, tensors: [{ dims: [2], scale: 1, payload: [1, 0x80] }] }), 'CODEC_BAD_ENCODING'],
    ['wrong checksum', rawMessage({ tensors: [w(f32Bytes([1, 2]))], checksum: 0xdeadbeef }), 'CODEC_CHECKSUM'],
    ['a flipped payload bit', Uint8Array.from(good, (b, i) => (i === good.length - 6 ? b ^ 0x01 : b)), 'CODEC_CHECKSUM'],
    ['a byte after the last tensor', rawMessage({ tensors: [w(f32Bytes([1, 2]))], trailing: [0] }), 'CODEC_TRAILING_BYTES'],
  ];

  it.each(cases)('%s', (_, bytes, code) => {
    const before = bytes.slice();

    expect(decodeCode(bytes)).toBe(code);
    expect(bytes).toEqual(before);
  });

  it('names the field it could not read: a header field, or a tensor by index before its name and by name after', () => {
    const messageOf = (bytes: Uint8Array): string => {
      try {
        decodeUpdate(bytes, LIMITS);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(messageOf(reseal(rawMessage({ tensors: [w(f32Bytes([1, 2]), [1, 2])] }).slice(0, 33)))).toMatch(
      /^CODEC_TRUNCATED: decodeUpdate: 'w' dimension 1 needs 4 bytes/,
    );
    expect(messageOf(rawMessage({ taskId: '' }))).toMatch(/decodeUpdate: taskId is empty$/);
    expect(messageOf(rawMessage({ tensors: [{ name: 'w\u0001', ...w(f32Bytes([1, 2])) }] }))).toMatch(/decodeUpdate: tensor 0 name has byte 0x1 at offset/);
  });

  it('refuses input over maxBytes before reading it, even when it is garbage', () => {
    expect(decodeCode(good, { maxBytes: good.length - 1 })).toBe('CODEC_TOO_LARGE');
    expect(decodeCode(new Uint8Array(100), { maxBytes: 99 })).toBe('CODEC_TOO_LARGE');
    expect(decodeCode(good, { maxBytes: good.length })).toBe('no error');
  });

  it('enforces maxTensors and maxElements', () => {
    const two = rawMessage({
      tensors: [
        { name: 'a', dims: [2], payload: f32Bytes([1, 2]) },
        { name: 'b', dims: [1], payload: f32Bytes([3]) },
      ],
    });

    expect(decodeCode(two, { maxBytes: 1000, maxTensors: 1 })).toBe('CODEC_TOO_LARGE');
    expect(decodeCode(two, { maxBytes: 1000, maxTensors: 2 })).toBe('no error');
    expect(decodeCode(two, { maxBytes: 1000, maxElements: 2 })).toBe('CODEC_TOO_LARGE');
    expect(decodeCode(two, { maxBytes: 1000, maxElements: 3 })).toBe('no error');
  });

  it('refuses invalid limits as a caller error', () => {
    for (const limits of [{ maxBytes: -1 }, { maxBytes: Number.NaN }, { maxBytes: 1.5 }, {}, { maxBytes: 10, maxTensors: -2 }, null]) {
      expect(decodeCode(good, limits as DecodeLimits)).toBe('CODEC_BAD_CONFIG');
    }
    expect(decodeCode([1, 2] as never)).toBe('CODEC_BAD_CONFIG');
  });

  it('decodes a subarray view of a larger buffer', () => {
    const framed = Uint8Array.from([9, 9, 9, ...good, 9]);

    const decoded = decodeUpdate(framed.subarray(3, 3 + good.length), LIMITS);

    expect(Array.from(decoded.tensors[0]!.values)).toEqual([1, 2]);
  });
});

describe('codec: an injected checksum function', () => {
  const msg = delta([tensor('w', [3], new Float32Array([1, -2, 0.5]))]);

  /** The portable crc32 behind a counter, standing in for a host's native one. */
  function countingCrc32(): { fn: (bytes: Uint8Array) => number; calls: number[] } {
    const calls: number[] = [];
    return {
      calls,
      fn: (bytes) => {
        calls.push(bytes.length);
        return crc32(bytes);
      },
    };
  }

  it('is what encodeUpdate and decodeUpdate call, over every byte but the checksum', () => {
    const crc = countingCrc32();

    const bytes = encodeUpdate(msg, { crc32: crc.fn });
    const decoded = decodeUpdate(bytes, { ...LIMITS, crc32: crc.fn });

    expect(bytes).toEqual(encodeUpdate(msg));
    expect(crc.calls).toEqual([bytes.length - 4, bytes.length - 4]);
    expect(Array.from(decoded.tensors[0]!.values)).toEqual([1, -2, 0.5]);
  });

  it('still refuses a wrong checksum, and a flipped payload bit, with CODEC_CHECKSUM', () => {
    const crc = countingCrc32();
    const bytes = encodeUpdate(msg);
    const wrongSum = bytes.slice();
    wrongSum[wrongSum.length - 1]! ^= 0x01;
    const flipped = bytes.slice();
    flipped[flipped.length - 6]! ^= 0x10;

    expect(decodeCode(wrongSum, { ...LIMITS, crc32: crc.fn })).toBe('CODEC_CHECKSUM');
    expect(decodeCode(flipped, { ...LIMITS, crc32: crc.fn })).toBe('CODEC_CHECKSUM');
    expect(crc.calls).toHaveLength(2);
  });

  it('refuses everything when the injected function disagrees with CRC-32', () => {
    const bytes = encodeUpdate(msg);

    expect(decodeCode(bytes, { ...LIMITS, crc32: (b) => crc32(b) ^ 1 })).toBe('CODEC_CHECKSUM');
  });

  it('accepts a function that answers a signed 32-bit integer', () => {
    // A checksum with the top bit set reads as negative through `| 0`.
    const signed = (b: Uint8Array): number => crc32(b) | 0;
    const bytes = encodeUpdate(msg, { crc32: signed });

    expect(bytes).toEqual(encodeUpdate(msg));
    expect(decodeCode(bytes, { ...LIMITS, crc32: signed })).toBe('no error');
  });

  it('refuses a checksum that is not a function as a caller error', () => {
    const bytes = encodeUpdate(msg);

    expect(decodeCode(bytes, { ...LIMITS, crc32: 42 as never })).toBe('CODEC_BAD_CONFIG');
    expect(codeOf(() => encodeUpdate(msg, { crc32: 'crc' as never }))).toBe('CODEC_BAD_CONFIG');
  });
});
