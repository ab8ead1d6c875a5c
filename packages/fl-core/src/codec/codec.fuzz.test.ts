import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isFlCoreError } from '../errors.js';
import { CODEC_MAX_RANK, CODEC_MAX_STRING_LENGTH, decodeUpdate, encodeUpdate } from './codec.js';
import type { DecodeLimits, DecodedUpdate, UpdateEncoding } from './codec.js';
import { fieldsOf, messageArb, reseal } from './codec.testkit.js';

// The decoder's contract on hostile input: it returns a valid message or throws an FlCoreError with a
// CODEC_* code. Anything else (a TypeError, a RangeError from a typed-array constructor, a hang) fails.

const LIMITS: DecodeLimits = { maxBytes: 4096, maxTensors: 64, maxElements: 4096 };
const RANDOM_RUNS = 20_000;
const PREFIXED_RUNS = 20_000;
const MUTATED_RUNS = 65_000;

const outcomes = new Map<string, number>();
const kindsDecoded = new Map<string, number>();
let decoded = 0;

function isPrintable(s: string, minLength: number): boolean {
  return s.length >= minLength && s.length <= CODEC_MAX_STRING_LENGTH && /^[\x20-\x7e]*$/.test(s);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Everything a successful decode promises; plain checks (one expect per input) keep 100k runs fast.
function violation(bytes: Uint8Array, d: DecodedUpdate): string | undefined {
  if (d.kind !== 'delta' && d.kind !== 'model' && d.kind !== 'representations' && d.kind !== 'split') return `kind ${d.kind}`;
  if (d.encoding !== 'fp32' && d.encoding !== 'fp16' && d.encoding !== 'int8') return `encoding ${d.encoding}`;
  if (!Number.isInteger(d.round) || d.round < 0 || d.round > 0xffffffff) return `round ${d.round}`;
  if (!isPrintable(d.taskId, 1)) return `taskId ${d.taskId}`;
  if (d.kind !== 'model' ? !isPrintable(d.clientId, 1) : d.clientId !== '') return `clientId ${d.clientId}`;
  if (new Set(d.tensors.map((t) => t.name)).size !== d.tensors.length) return 'duplicate names';
  if (d.tensors.length > LIMITS.maxTensors!) return 'too many tensors';
  let elements = 0;
  for (const t of d.tensors) {
    if (!isPrintable(t.name, 1)) return `name ${t.name}`;
    if (t.shape.length > CODEC_MAX_RANK) return `rank of ${t.name}`;
    if (d.kind === 'representations' && (!/^rep\/(image|text|audio)$/.test(t.name) || t.shape.length !== 2)) return `representations tensor ${t.name}`;
    if (d.kind === 'split' && !/^split\/[a-z0-9_]+$/.test(t.name)) return `split tensor ${t.name}`;
    if (!(t.values instanceof Float32Array) || t.values.length !== t.shape.reduce((a, b) => a * b, 1)) return `values of ${t.name}`;
    for (const v of t.values) if (!Number.isFinite(v)) return `non-finite in ${t.name}`;
    elements += t.values.length;
  }
  if (elements > LIMITS.maxElements!) return 'too many elements';
  // fp32 and fp16 have exactly one encoding per value, so anything accepted must re-encode to itself.
  if (d.encoding !== 'int8' && !sameBytes(encodeUpdate(d), bytes)) return 'not canonical';
  return undefined;
}

function check(bytes: Uint8Array): void {
  decoded++;
  let outcome: string;
  try {
    const d = decodeUpdate(bytes, LIMITS);
    expect(violation(bytes, d)).toBeUndefined();
    kindsDecoded.set(d.kind, (kindsDecoded.get(d.kind) ?? 0) + 1);
    outcome = 'ok';
  } catch (err) {
    if (!isFlCoreError(err) || !err.code.startsWith('CODEC_')) throw err;
    outcome = err.code;
  }
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
}

// A fixed corpus of small valid encodings in all three encodings, from a fixed seed.
const corpus: Uint8Array[] = (['fp32', 'fp16', 'int8'] as UpdateEncoding[]).flatMap((encoding) =>
  fc.sample(messageArb(encoding, encoding === 'fp16' ? 65504 : 1e6, 3), { numRuns: 40, seed: 20240601 }).map((msg) => encodeUpdate(msg)),
);

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number; n: number }
  | { op: 'field'; which: number; value: number }
  | { op: 'splice'; other: number; at: number; from: number };

const position = fc.nat({ max: 1 << 16 });
const fieldValue = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 7, 8, 9, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff),
  fc.nat({ max: 0xffffffff }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('insert' as const), at: position, byte: fc.nat({ max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: position, n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('field' as const), which: position, value: fieldValue }),
  fc.record({ op: fc.constant('splice' as const), other: position, at: position, from: position }),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const n = bytes.length;
  switch (m.op) {
    case 'flip': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      out[m.at % n] = out[m.at % n]! ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return bytes.slice(0, m.at % (n + 1));
    case 'insert': {
      const at = m.at % (n + 1);
      return Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)]);
    }
    case 'delete': {
      const at = m.at % (n + 1);
      return Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + m.n)]);
    }
    case 'field': {
      // Only meaningful on an intact encoding; after another mutation the walker may not apply.
      let fields;
      try {
        fields = fieldsOf(bytes);
      } catch {
        return bytes;
      }
      const f = fields[m.which % fields.length]!;
      if (f.offset + f.width > n) return bytes;
      const out = bytes.slice();
      const view = new DataView(out.buffer);
      if (f.width === 1) view.setUint8(f.offset, m.value & 0xff);
      else if (f.width === 2) view.setUint16(f.offset, m.value & 0xffff, true);
      else view.setUint32(f.offset, m.value >>> 0, true);
      return out;
    }
    case 'splice': {
      const other = corpus[m.other % corpus.length]!;
      return Uint8Array.from([...bytes.subarray(0, m.at % (n + 1)), ...other.subarray(m.from % (other.length + 1))]);
    }
  }
}

describe('codec fuzz: the decoder returns a valid message or a CODEC_* error, nothing else', () => {
  it(`survives ${RANDOM_RUNS} random byte strings`, () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 96 }), check), { numRuns: RANDOM_RUNS, seed: 1 });
  });

  it(`survives ${PREFIXED_RUNS} random bodies behind a valid magic and version, half of them re-sealed`, () => {
    const prefix = [0x43, 0x48, 0x52, 0x53, 0x01, 0x00];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.boolean(), (body, sealed) => {
        const bytes = Uint8Array.from([...prefix, ...body]);
        check(sealed ? reseal(bytes) : bytes);
      }),
      { numRuns: PREFIXED_RUNS, seed: 2 },
    );
  });

  it(`survives ${MUTATED_RUNS} mutated valid encodings (flips, truncations, length fields, splices), half re-sealed`, () => {
    fc.assert(
      fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), (pick, mutations, sealed) => {
        const bytes = mutations.reduce(mutate, corpus[pick % corpus.length]!);
        // Re-sealing gets corrupted structure past the checksum, so the parser's own checks are exercised.
        check(sealed ? reseal(bytes) : bytes);
      }),
      { numRuns: MUTATED_RUNS, seed: 3 },
    );
  });

  afterAll(() => {
    // Counted here, not assumed from numRuns, so a shortened run cannot pass silently.
    expect(decoded).toBeGreaterThanOrEqual(100_000);
    // A fuzz that only ever reached the magic check would prove little: every stage must be hit.
    for (const code of [
      'ok',
      'CODEC_BAD_MAGIC',
      'CODEC_BAD_VERSION',
      'CODEC_TRUNCATED',
      'CODEC_BAD_LENGTH',
      'CODEC_BAD_HEADER',
      'CODEC_BAD_ENCODING',
      'CODEC_BAD_SHAPE',
      'CODEC_TOO_LARGE',
      'CODEC_CHECKSUM',
      'CODEC_TRAILING_BYTES',
    ]) {
      expect(outcomes.get(code) ?? 0, code).toBeGreaterThan(0);
    }
    // Every kind, representations and split included, must come out of the fuzz decoded at least once.
    for (const kind of ['delta', 'model', 'representations', 'split']) expect(kindsDecoded.get(kind) ?? 0, kind).toBeGreaterThan(0);
  });
});
