import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeUpdate } from '../codec/codec.js';
import { isFlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import { layoutOf, tensor } from '../params.js';
import type { Layout } from '../params.js';
import { createRng } from '../rng.js';
import { FEDAVG_BLOCK } from '../simd/kernelBytes.js';
import { wasmSimdAvailable } from '../simd/kernels.js';
import { createUpdateArena } from '../simd/updateArena.js';
import { FEDAVG_SIMD_RELATIVE_TOLERANCE, fedAvgScalar } from './fedAvg.js';
import { fedAvgArena } from './fedAvgArena.js';

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);
const flatLayout = (size: number): Layout => ({ names: ['w'], shapes: [[size]], offsets: [0], size });
const KERNELS = ['auto', 'scalar'] as const;

function codeOf(fn: () => unknown): FlCoreErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (isFlCoreError(err)) return err.code;
    throw err;
  }
}

function randomUpdates(seed: number, count: number, length: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => {
    const offset = rng() - 0.5;
    return Float32Array.from({ length }, () => offset + (rng() - 0.5) * 0.2);
  });
}

/** Within the SIMD kernel's stated bound of the scalar float64 mean: tol · Σ w_k·|u_k[i]| per coordinate. */
function expectWithinSimdBound(actual: Float32Array, updates: readonly Float32Array[], weights: readonly number[]): void {
  const expected = fedAvgScalar(updates, weights);
  const total = weights.reduce((s, w) => s + w, 0);
  for (let i = 0; i < expected.length; i++) {
    let magnitude = 0;
    for (let k = 0; k < updates.length; k++) magnitude += (weights[k]! / total) * Math.abs(updates[k]![i]!);
    const bound = FEDAVG_SIMD_RELATIVE_TOLERANCE * magnitude + 2 ** -24 * Math.abs(expected[i]!) + 1e-30;
    if (!(Math.abs(actual[i]! - expected[i]!) <= bound)) expect.unreachable(`index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

describe.each(KERNELS)('fedAvgArena, %s kernel', (kernel) => {
  it('is the example-weighted mean of the rows (hand-checked)', () => {
    const arena = createUpdateArena({ layout: flatLayout(4), capacity: 3, kernel });
    arena.append(f32(1, 2, 3, 4));
    arena.append(f32(3, 0, -3, 8));
    arena.append(f32(5, 4, 0, -6));

    const mean = fedAvgArena(arena, [1, 1, 2]);

    // (1 + 3 + 2·5)/4, (2 + 0 + 2·4)/4, (3 − 3 + 0)/4, (4 + 8 − 12)/4
    expect(Array.from(mean)).toEqual([3.5, 2.5, 0, 0]);
    expect(arena.simd).toBe(kernel === 'auto' && wasmSimdAvailable());
  });

  it('matches the scalar mean within the SIMD bound over passes of eight, a remainder and a partial block', () => {
    // 19 rows = two passes of eight plus three; FEDAVG_BLOCK + 7 values = a full block and a ragged one.
    const updates = randomUpdates(5, 19, FEDAVG_BLOCK + 7);
    const weights = updates.map((_, k) => 1 + ((k * 37) % 11));
    const arena = createUpdateArena({ layout: flatLayout(FEDAVG_BLOCK + 7), capacity: 19, kernel });
    for (const u of updates) arena.append(u);

    const mean = fedAvgArena(arena, weights);

    expectWithinSimdBound(mean, updates, weights);
  });

  it('leaves zero-weight rows out and writes into a given out', () => {
    const arena = createUpdateArena({ layout: flatLayout(2), capacity: 3, kernel });
    arena.append(f32(1, 1));
    arena.append(f32(1e30, -1e30));
    arena.append(f32(3, 5));
    const out = new Float32Array(2);

    const mean = fedAvgArena(arena, [1, 0, 1], out);

    expect(mean).toBe(out);
    expect(Array.from(out)).toEqual([2, 3]);
  });

  it('keeps rows and results right when the arena grows past its capacity', () => {
    const updates = randomUpdates(9, 12, 1000);
    const weights = updates.map((_, k) => k + 1);
    const arena = createUpdateArena({ layout: flatLayout(1000), capacity: 1, kernel });
    arena.append(updates[0]!);
    const before = arena.row(0);

    for (const u of updates.slice(1)) arena.append(u);

    expect(arena.capacity).toBeGreaterThanOrEqual(12);
    // WebAssembly memory growth detaches old views; the scalar rows are never moved.
    expect(before.length).toBe(arena.simd ? 0 : 1000);
    expect(Array.from(arena.row(0))).toEqual(Array.from(updates[0]!));
    expect(Array.from(arena.row(11))).toEqual(Array.from(updates[11]!));
    expectWithinSimdBound(fedAvgArena(arena, weights), updates, weights);
  });

  it('decodes messages into rows; a refused message changes no row and no count', () => {
    const layout = layoutOf([tensor('a', [2]), tensor('b', [1])]);
    const message = (a: number[], b: number[]) =>
      encodeUpdate({
        kind: 'delta',
        taskId: 't',
        round: 1,
        clientId: 'c',
        encoding: 'fp32',
        tensors: [tensor('b', [1], new Float32Array(b)), tensor('a', [2], new Float32Array(a))],
      });
    const arena = createUpdateArena({ layout, capacity: 2, kernel });
    const bad = message([1, 2], [3]);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1; // checksum

    const first = arena.decode(message([1, 2], [3]), { maxBytes: 1024 });
    const refused = codeOf(() => arena.decode(bad, { maxBytes: 1024 }));
    const second = arena.decode(message([3, 4], [5]), { maxBytes: 1024 });

    expect(refused).toBe('CODEC_CHECKSUM');
    expect([first.row, second.row, arena.count]).toEqual([0, 1, 2]);
    expect(first.clientId).toBe('c');
    expect(Array.from(arena.row(0))).toEqual([1, 2, 3]);
    expect(Array.from(fedAvgArena(arena, [1, 1]))).toEqual([2, 3, 4]);
  });

  it('reuses its rows after clear', () => {
    const arena = createUpdateArena({ layout: flatLayout(2), capacity: 1, kernel });
    arena.append(f32(8, 8));
    arena.clear();

    arena.append(f32(1, 3));

    expect(arena.count).toBe(1);
    expect(Array.from(fedAvgArena(arena, [5]))).toEqual([1, 3]);
  });

  it('refuses bad input with a code and changes nothing', () => {
    const arena = createUpdateArena({ layout: flatLayout(2), capacity: 2, kernel });
    const empty = codeOf(() => fedAvgArena(arena, []));
    arena.append(f32(1, 2));
    const out = f32(9, 9);

    expect(empty).toBe('AGG_NO_UPDATES');
    expect(codeOf(() => fedAvgArena(arena, [1, 1]))).toBe('AGG_BAD_WEIGHTS');
    expect(codeOf(() => fedAvgArena(arena, [-1]))).toBe('AGG_BAD_WEIGHTS');
    expect(codeOf(() => fedAvgArena(arena, [1], new Float32Array(3)))).toBe('PARAMS_MISMATCH');
    expect(codeOf(() => fedAvgArena(arena, [0], out))).toBe('AGG_BAD_WEIGHTS');
    expect(codeOf(() => arena.append(f32(1)))).toBe('PARAMS_MISMATCH');
    expect(codeOf(() => arena.append(f32(1, Number.NaN)))).toBe('PARAMS_NON_FINITE');
    expect(codeOf(() => arena.row(1))).toBe('AGG_BAD_CONFIG');
    expect(arena.count).toBe(1);
    expect(Array.from(out)).toEqual([9, 9]);
  });
});

describe('update arena set-up', () => {
  it('refuses a bad capacity, kernel or layout', () => {
    const gapped: Layout = { names: ['a', 'b'], shapes: [[2], [2]], offsets: [0, 3], size: 5 };

    expect(codeOf(() => createUpdateArena({ layout: flatLayout(2), capacity: 0 }))).toBe('AGG_BAD_CONFIG');
    expect(codeOf(() => createUpdateArena({ layout: flatLayout(2), capacity: 1.5 }))).toBe('AGG_BAD_CONFIG');
    expect(codeOf(() => createUpdateArena({ layout: flatLayout(2), capacity: 1, kernel: 'gpu' as 'auto' }))).toBe('AGG_BAD_CONFIG');
    expect(codeOf(() => createUpdateArena({ layout: flatLayout(0), capacity: 1 }))).toBe('AGG_BAD_CONFIG');
    expect(codeOf(() => createUpdateArena({ layout: gapped, capacity: 1 }))).toBe('AGG_BAD_CONFIG');
  });

  it('the SIMD and scalar arenas agree on random inputs (property)', () => {
    const input = fc.integer({ min: 1, max: 20 }).chain((n) =>
      fc.record({
        length: fc.integer({ min: 1, max: 40 }),
        seed: fc.nat(),
        weights: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: n, maxLength: n }).filter((w) => w.some((x) => x > 0)),
      }),
    );

    fc.assert(
      fc.property(input, ({ length, seed, weights }) => {
        const updates = randomUpdates(seed, weights.length, length);
        const arenas = KERNELS.map((kernel) => createUpdateArena({ layout: flatLayout(length), capacity: 1, kernel }));
        for (const arena of arenas) for (const u of updates) arena.append(u);

        const [simd, scalar] = arenas.map((arena) => fedAvgArena(arena, weights));

        expect(Array.from(scalar!)).toEqual(Array.from(fedAvgScalar(updates, weights)));
        expectWithinSimdBound(simd!, updates, weights);
      }),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe('update arena without WebAssembly', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.resetModules();
  });

  it('falls back to the scalar path with the same result', async () => {
    vi.stubGlobal('WebAssembly', undefined);
    vi.resetModules();
    const arenaModule = await import('../simd/updateArena.js');
    const fedAvgModule = await import('./fedAvgArena.js');
    const arena = arenaModule.createUpdateArena({ layout: flatLayout(3), capacity: 2 });
    arena.append(f32(1, 2, 3));
    arena.append(f32(3, 2, 1));

    const mean = fedAvgModule.fedAvgArena(arena, [1, 3]);

    expect(arena.simd).toBe(false);
    expect(Array.from(mean)).toEqual([2.5, 2, 1.5]);
  });
});
