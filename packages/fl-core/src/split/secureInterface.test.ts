import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeUpdate } from '../codec/codec.js';
import { reseal } from '../codec/codec.testkit.js';
import type { UpdateEncoding } from '../codec/codec.js';
import { isFlCoreError } from '../errors.js';
import { expectFlCoreError } from '../errors.test-util.js';
import { norm, tensor } from '../params.js';
import { createRng } from '../rng.js';
import { isSplitTensorName, SPLIT_TENSORS } from './names.js';
import { decodeSplitPayload, encodeSplitPayload, privatizeRows, splitPayloadBytes } from './secureInterface.js';
import type { SplitExpectation, SplitPayload } from './secureInterface.js';

const rowNorms = (values: Float32Array, numRows: number): number[] => {
  const len = values.length / numRows;
  return Array.from({ length: numRows }, (_, r) => norm(values.subarray(r * len, (r + 1) * len)));
};

describe('privatizeRows: per-example clipping and Gaussian noise', () => {
  it('clips every row over C to norm C (z = 0) and counts them', () => {
    // Rows: [3, 4] (norm 5), [0.6, 0.8] (norm 1), [0, -10] (norm 10); C = 2.
    const values = new Float32Array([3, 4, 0.6, 0.8, 0, -10]);

    const { values: out, numClipped } = privatizeRows(values, 3, createRng(1), { clipNorm: 2, noiseMultiplier: 0 });

    expect(numClipped).toBe(2);
    for (const n of rowNorms(out, 3)) expect(n).toBeLessThanOrEqual(2 + 1e-6);
    expect(Array.from(out)).toEqual([1.2, 1.6, 0.6, 0.8, 0, -2].map(Math.fround));
  });

  it('holds the bound on random rows of any length', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.nat(),
        (numRows, rowLength, clipNorm, seed) => {
          const rng = createRng(seed);
          const values = Float32Array.from({ length: numRows * rowLength }, () => (rng() - 0.5) * 1000);

          const { values: out } = privatizeRows(values, numRows, createRng(0), { clipNorm, noiseMultiplier: 0 });

          for (const n of rowNorms(out, numRows)) expect(n).toBeLessThanOrEqual(clipNorm * (1 + 1e-6));
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it('leaves rows under C unchanged with z = 0, and does not touch the rng', () => {
    const values = new Float32Array([0.1, -0.2, 0.3, 0, 0, 0]);
    let draws = 0;
    const rng = (): number => {
      draws++;
      return 0.5;
    };

    const { values: out, numClipped } = privatizeRows(values, 2, rng, { clipNorm: 1, noiseMultiplier: 0 });

    expect(out).toEqual(values);
    expect(out).not.toBe(values);
    expect(numClipped).toBe(0);
    expect(draws).toBe(0);
  });

  it('clips nothing with clipNorm Infinity and z = 0', () => {
    const values = new Float32Array([1e30, -1e30]);

    expect(privatizeRows(values, 1, createRng(1), { clipNorm: Infinity, noiseMultiplier: 0 }).values).toEqual(values);
  });

  it('never mutates its input', () => {
    const values = new Float32Array([3, 4, -5, 12]);
    const before = values.slice();

    privatizeRows(values, 2, createRng(3), { clipNorm: 1, noiseMultiplier: 1.5 });

    expect(values).toEqual(before);
  });

  it('is reproducible from the rng seed, and differs across seeds', () => {
    const values = new Float32Array([1, 2, 3, 4, 5, 6]);
    const release = { clipNorm: 2, noiseMultiplier: 0.7 };

    const a = privatizeRows(values, 2, createRng(42), release).values;
    const b = privatizeRows(values, 2, createRng(42), release).values;
    const c = privatizeRows(values, 2, createRng(43), release).values;

    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('adds noise of mean 0 and std z·C to the clipped rows', () => {
    // 20 000 zero rows of 4: the output is pure noise; with n = 80 000 the sample std's standard error
    // is about σ/√(2n) ≈ 0.25% of σ, so 2% is > 8 standard errors.
    const numRows = 20_000;
    const release = { clipNorm: 0.5, noiseMultiplier: 3 };

    const { values: out } = privatizeRows(new Float32Array(numRows * 4), numRows, createRng(11), release);

    let sum = 0;
    let sumSq = 0;
    for (const x of out) {
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / out.length;
    const std = Math.sqrt(sumSq / out.length - mean * mean);
    expect(Math.abs(std - 1.5) / 1.5).toBeLessThan(0.02);
    expect(Math.abs(mean)).toBeLessThan(0.03);
  });

  it('clips before it noises: a huge row and a row at C get the same noise', () => {
    const release = { clipNorm: 1, noiseMultiplier: 0.5 };

    const big = privatizeRows(new Float32Array([0, 1000]), 1, createRng(5), release).values;
    const atC = privatizeRows(new Float32Array([0, 1]), 1, createRng(5), release).values;

    expect(big).toEqual(atC);
  });

  it('refuses bad configuration with SPLIT_BAD_CONFIG and non-finite rows with SPLIT_NON_FINITE', () => {
    const values = new Float32Array(6);
    const rng = createRng(1);

    expectFlCoreError(() => privatizeRows(values, 4, rng, { clipNorm: 1, noiseMultiplier: 0 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 0, rng, { clipNorm: 1, noiseMultiplier: 0 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 1.5, rng, { clipNorm: 1, noiseMultiplier: 0 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 2, rng, { clipNorm: 0, noiseMultiplier: 0 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 2, rng, { clipNorm: Number.NaN, noiseMultiplier: 0 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 2, rng, { clipNorm: Infinity, noiseMultiplier: 1 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 2, rng, { clipNorm: 1, noiseMultiplier: -1 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(values, 2, rng, { clipNorm: 1, noiseMultiplier: Infinity }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows([0, 0] as never, 1, rng, { clipNorm: 1, noiseMultiplier: 0 }), 'SPLIT_BAD_CONFIG');
    expectFlCoreError(() => privatizeRows(new Float32Array([1, Number.NaN]), 1, rng, { clipNorm: 1, noiseMultiplier: 0 }), 'SPLIT_NON_FINITE');
    expectFlCoreError(() => privatizeRows(new Float32Array([0, 0, Infinity, 1]), 2, rng, { clipNorm: 1, noiseMultiplier: 0 }), 'SPLIT_NON_FINITE');
  });

  it('accepts an empty batch', () => {
    expect(privatizeRows(new Float32Array(0), 0, createRng(1), { clipNorm: 1, noiseMultiplier: 1 })).toEqual({ values: new Float32Array(0), numClipped: 0 });
  });
});

// A step of B = 2 examples, M = 2 modalities, c = 3 features: the forward payload a device sends.
const B = 2;
const M = 2;
const C = 3;
const tokens = Float32Array.from({ length: B * M * C }, (_, i) => (i % 5) * 0.25 - 0.5);
const mask = new Float32Array([1, 1, 1, 0]);
const forward = (overrides: Partial<SplitPayload> = {}): SplitPayload => ({
  taskId: 'task',
  clientId: 'dev-1',
  step: 12,
  encoding: 'fp32',
  tensors: [tensor(SPLIT_TENSORS.tokens, [B, M, C], tokens), tensor(SPLIT_TENSORS.mask, [B, M], mask)],
  ...overrides,
});
const expectation = (overrides: Partial<SplitExpectation> = {}): SplitExpectation => ({
  taskId: 'task',
  clientId: 'dev-1',
  step: 12,
  maxBytes: 1 << 16,
  tensors: [
    { name: SPLIT_TENSORS.mask, shape: [B, M] },
    { name: SPLIT_TENSORS.tokens, shape: [B, M, C] },
  ],
  ...overrides,
});

describe('SPLIT_TENSORS', () => {
  it('are distinct split/<name> names', () => {
    const names = Object.values(SPLIT_TENSORS);

    expect(new Set(names).size).toBe(5);
    for (const name of names) expect(isSplitTensorName(name), name).toBe(true);
    expect(isSplitTensorName('split/')).toBe(false);
    expect(isSplitTensorName('split/Tokens')).toBe(false);
    expect(isSplitTensorName('rep/text')).toBe(false);
  });
});

describe('encodeSplitPayload / decodeSplitPayload', () => {
  // The codec's documented bounds: fp32 exact; fp16 relative ≤ 2^-11 (normal range); int8 ≤ scale/2 plus float32 rounding.
  const cases: [UpdateEncoding, (x: number, maxAbs: number) => number][] = [
    ['fp32', () => 0],
    ['fp16', (x) => Math.abs(x) * 2 ** -11 + 2 ** -25],
    ['int8', (x, maxAbs) => maxAbs / 127 / 2 + Math.abs(x) * 2 ** -24],
  ];

  it.each(cases)('round-trips a forward payload in %s within the codec error bound', (encoding, bound) => {
    const msg = forward({ encoding });

    const bytes = encodeSplitPayload(msg);
    const back = decodeSplitPayload(bytes, expectation());

    expect(bytes.length).toBe(splitPayloadBytes(msg));
    expect([...back.keys()]).toEqual([SPLIT_TENSORS.mask, SPLIT_TENSORS.tokens]);
    for (const t of msg.tensors) {
      const got = back.get(t.name)!;
      const maxAbs = Math.max(...Array.from(t.values, Math.abs));
      expect(got).toHaveLength(t.values.length);
      t.values.forEach((x, i) => expect(Math.abs(got[i]! - x), `${t.name}[${i}]`).toBeLessThanOrEqual(bound(x, maxAbs)));
    }
    expect(Array.from(back.get(SPLIT_TENSORS.mask)!)).toEqual([1, 1, 1, 0]);
  });

  it('round-trips privatized rows, with an injected checksum function', () => {
    const noisy = privatizeRows(tokens, B, createRng(9), { clipNorm: 1, noiseMultiplier: 0.5 }).values;
    const crcCalls: number[] = [];
    const crc = (b: Uint8Array): number => {
      crcCalls.push(b.length);
      return 0x12345678;
    };

    const bytes = encodeSplitPayload(forward({ tensors: [tensor(SPLIT_TENSORS.tokens, [B, M, C], noisy), tensor(SPLIT_TENSORS.mask, [B, M], mask)] }), {
      crc32: crc,
    });
    const back = decodeSplitPayload(bytes, expectation({ crc32: crc }));

    expect(back.get(SPLIT_TENSORS.tokens)).toEqual(noisy);
    expect(crcCalls).toEqual([bytes.length - 4, bytes.length - 4]);
  });

  it('sizes a payload exactly without encoding it', () => {
    const msg = forward({ encoding: 'int8' });

    // Fixed header 18, 'task' 4, 'dev-1' 5, checksum 4; each tensor: length byte + name, rank, 4 per dim,
    // scale 4, count 4, one byte per value: tokens 13 + 1 + 12 + 4 + 4 + 12, mask 11 + 1 + 8 + 4 + 4 + 4.
    expect(splitPayloadBytes(msg)).toBe(18 + 4 + 5 + 4 + (13 + 1 + 12 + 4 + 4 + 12) + (11 + 1 + 8 + 4 + 4 + 4));
    expect(splitPayloadBytes(msg)).toBe(encodeSplitPayload(msg).length);
  });

  const good = encodeSplitPayload(forward());
  const refusals: [string, () => unknown, string][] = [
    ['another client', () => decodeSplitPayload(good, expectation({ clientId: 'dev-2' })), 'SPLIT_WRONG_SENDER'],
    ['another task', () => decodeSplitPayload(good, expectation({ taskId: 'other' })), 'SPLIT_WRONG_SENDER'],
    ['another step', () => decodeSplitPayload(good, expectation({ step: 13 })), 'SPLIT_WRONG_STEP'],
    [
      'a missing tensor',
      () => decodeSplitPayload(encodeSplitPayload(forward({ tensors: [tensor(SPLIT_TENSORS.tokens, [B, M, C], tokens)] })), expectation()),
      'SPLIT_BAD_SHAPE',
    ],
    [
      'an extra tensor',
      () => decodeSplitPayload(encodeSplitPayload(forward({ tensors: [...forward().tensors, tensor(SPLIT_TENSORS.fused, [B, 4])] })), expectation()),
      'SPLIT_BAD_SHAPE',
    ],
    [
      'a wrong shape',
      () =>
        decodeSplitPayload(
          good,
          expectation({
            tensors: [
              { name: SPLIT_TENSORS.mask, shape: [B, M] },
              { name: SPLIT_TENSORS.tokens, shape: [B, M * C] },
            ],
          }),
        ),
      'SPLIT_BAD_SHAPE',
    ],
    [
      'a delta message',
      () =>
        decodeSplitPayload(
          encodeUpdate({ kind: 'delta', taskId: 'task', round: 12, clientId: 'dev-1', encoding: 'fp32', tensors: forward().tensors }),
          expectation(),
        ),
      'SPLIT_BAD_PAYLOAD',
    ],
    [
      'a model message',
      () => decodeSplitPayload(encodeUpdate({ kind: 'model', taskId: 'task', round: 12, clientId: '', encoding: 'fp32', tensors: [] }), expectation()),
      'SPLIT_BAD_PAYLOAD',
    ],
    ['input over maxBytes', () => decodeSplitPayload(good, expectation({ maxBytes: good.length - 1 })), 'CODEC_TOO_LARGE'],
    [
      'a corrupted byte',
      () =>
        decodeSplitPayload(
          Uint8Array.from(good, (b, i) => (i === good.length - 10 ? b ^ 0x04 : b)),
          expectation(),
        ),
      'CODEC_CHECKSUM',
    ],
    ['a truncated payload', () => decodeSplitPayload(good.subarray(0, good.length - 1), expectation()), 'CODEC_BAD_LENGTH'],
    ['a bad expectation (no tensors)', () => decodeSplitPayload(good, expectation({ tensors: [] })), 'SPLIT_BAD_CONFIG'],
    ['a bad expectation (not a split name)', () => decodeSplitPayload(good, expectation({ tensors: [{ name: 'tokens', shape: [1] }] })), 'SPLIT_BAD_CONFIG'],
    [
      'a bad expectation (a name twice)',
      () =>
        decodeSplitPayload(
          good,
          expectation({
            tensors: [
              { name: SPLIT_TENSORS.mask, shape: [B, M] },
              { name: SPLIT_TENSORS.mask, shape: [B, M] },
            ],
          }),
        ),
      'SPLIT_BAD_CONFIG',
    ],
    [
      'a bad expectation (negative dimension)',
      () => decodeSplitPayload(good, expectation({ tensors: [{ name: SPLIT_TENSORS.mask, shape: [-1] }] })),
      'SPLIT_BAD_CONFIG',
    ],
    ['a bad expectation (fractional step)', () => decodeSplitPayload(good, expectation({ step: 1.5 })), 'SPLIT_BAD_CONFIG'],
    ['a bad maxBytes', () => decodeSplitPayload(good, expectation({ maxBytes: -1 })), 'CODEC_BAD_CONFIG'],
  ];

  it('accepts the payload the refusals below start from', () => {
    expect(decodeSplitPayload(good, expectation()).size).toBe(2);
  });

  it.each(refusals)('refuses %s', (_, run, code) => {
    const before = good.slice();

    expectFlCoreError(run, code as never);
    expect(good).toEqual(before);
  });

  it('keeps the codec refusals on encode: non-finite values, names outside split/<name>', () => {
    expectFlCoreError(() => encodeSplitPayload(forward({ tensors: [tensor(SPLIT_TENSORS.mask, [1], new Float32Array([Number.NaN]))] })), 'CODEC_NON_FINITE');
    expectFlCoreError(() => encodeSplitPayload(forward({ tensors: [tensor('tokens', [1])] })), 'CODEC_BAD_HEADER');
    expectFlCoreError(() => encodeSplitPayload(forward({ clientId: '' })), 'CODEC_BAD_HEADER');
    expectFlCoreError(() => splitPayloadBytes(forward({ step: -1 })), 'CODEC_BAD_HEADER');
  });

  it('only ever throws FlCoreError on random or corrupted bytes, and whatever it accepts is as expected', () => {
    const expected = expectation({ maxBytes: 256 });
    const prefix = Array.from(good.subarray(0, 8));
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 128 }),
        fc.constantFrom('raw', 'prefixed', 'mutated'),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        (body, mode, edits, sealed) => {
          let bytes: Uint8Array = mode === 'raw' ? body : mode === 'prefixed' ? Uint8Array.from([...prefix, ...body]) : good.slice();
          if (mode === 'mutated') for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
          // Re-sealing gets corrupted structure past the checksum, so the decoder's later checks run too.
          if (sealed) bytes = reseal(bytes);
          let outcome = 'ok';
          try {
            const back = decodeSplitPayload(bytes, expected);
            expect([...back.keys()]).toEqual([SPLIT_TENSORS.mask, SPLIT_TENSORS.tokens]);
            expect(back.get(SPLIT_TENSORS.tokens)).toHaveLength(B * M * C);
          } catch (err) {
            if (!isFlCoreError(err)) throw err;
            outcome = err.code;
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        },
      ),
      { numRuns: 3000, seed: 4 },
    );
    // The property proves little unless the split checks themselves were reached.
    for (const code of ['CODEC_BAD_MAGIC', 'CODEC_CHECKSUM', 'SPLIT_WRONG_STEP', 'SPLIT_WRONG_SENDER'])
      expect(outcomes.get(code) ?? 0, code).toBeGreaterThan(0);
  });
});
