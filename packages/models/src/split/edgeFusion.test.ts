import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModelsError } from '../errors.js';
import { EdgeFusion } from './edgeFusion.js';
import { SPLIT, maxAbsDiff, randomCut, splitEdge } from './fixtures.test-util.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

const B = SPLIT.batch;
const M = SPLIT.modalities.length;
const C = SPLIT.conceptDim;
const D = SPLIT.modelDim;

/** Σ_b' fused_b' · dFused_b' over example `b` only, at tokens with entry [b, m, j] moved by `delta`. */
function perturbedObjective(
  edge: EdgeFusion,
  tokens: tf.Tensor3D,
  mask: tf.Tensor2D,
  dFused: tf.Tensor2D,
  at: [number, number, number],
  delta: number,
): number {
  return tf.tidy(() => {
    const values = tokens.arraySync();
    values[at[0]]![at[1]]![at[2]]! += delta;
    const fused = edge.forward(tf.tensor3d(values), mask);
    return tf.sum(tf.mul(fused, dFused)).dataSync()[0]!;
  });
}

describe('EdgeFusion', () => {
  it('fuses tokens [B, M, c] into finite features [B, d]', () => {
    const edge = splitEdge();
    const { tokens, mask } = randomCut();

    const fused = edge.forward(tokens, mask);

    expect(fused.shape).toEqual([B, D]);
    expect(edge.outputDim).toBe(D);
    expect(Array.from(fused.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([fused, tokens, mask]);
    edge.dispose();
  });

  it("ignores an absent modality's token values and gives it a zero gradient", () => {
    const edge = splitEdge();
    const { tokens, mask } = randomCut();
    // Example 1 lacks image (m = 0), examples 2 and 4 lack audio (m = 1): write large values there.
    const values = tokens.arraySync();
    values[1]![0] = [5, -3, 2, 7];
    values[2]![1] = [-4, 4, 9, 1];
    values[4]![1] = [1, 1, 1, 1];
    const changed = tf.tensor3d(values);
    const dFused = tf.randomNormal([B, D], 0, 1, 'float32', 4) as tf.Tensor2D;

    const a = edge.forward(tokens, mask);
    const b = edge.forward(changed, mask);
    const dTokens = edge.backward(changed, mask, dFused, { update: false }).arraySync();

    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-6);
    for (const [row, m] of [
      [1, 0],
      [2, 1],
      [4, 1],
    ] as const)
      expect(dTokens[row]![m]!.every((v) => v === 0)).toBe(true);
    expect(dTokens[0]![0]!.some((v) => v !== 0)).toBe(true);
    // A present token does move the output.
    values[0]![0] = [0.9, -0.9, 0.9, -0.9];
    const moved = tf.tensor3d(values);
    const c = edge.forward(moved, mask);
    expect(maxAbsDiff(a.dataSync().slice(0, D), c.dataSync().slice(0, D))).toBeGreaterThan(1e-3);
    tf.dispose([a, b, c, changed, moved, dFused, tokens, mask]);
    edge.dispose();
  });

  it('is deterministic from its seed', () => {
    const [a, b, other] = [splitEdge({ seed: 7 }), splitEdge({ seed: 7 }), splitEdge({ seed: 8 })];

    const [pa, pb, po] = [a.parameters(), b.parameters(), other.parameters()];

    pa.forEach((t, i) => expect(Array.from(t.values), t.name).toEqual(Array.from(pb[i]!.values)));
    expect(pa.some((t, i) => maxAbsDiff(t.values, po[i]!.values) > 0)).toBe(true);
    [a, b, other].forEach((e) => e.dispose());
  });

  it('names its parameters edge/… and round-trips them through setParameters', () => {
    const source = splitEdge({ seed: 1 });
    const target = splitEdge({ seed: 2 });
    const { tokens, mask } = randomCut(3);

    const params = source.parameters();
    target.setParameters(params);
    const [a, b] = [source.forward(tokens, mask), target.forward(tokens, mask)];

    const names = params.map((t) => t.name);
    for (const name of [
      'edge/in/kernel',
      'edge/image/adapter_a',
      'edge/audio/adapter_b',
      'edge/audio/embedding',
      'edge/align_token',
      'edge/block0/attn/wq',
      'edge/block1/mlp/w2',
      'edge/final_ln/gamma',
    ])
      expect(names).toContain(name);
    expect(new Set(names).size).toBe(names.length);
    expect(params.find((t) => t.name === 'edge/image/adapter_b')!.values.every((v) => v === 0)).toBe(true);
    expect(params.find((t) => t.name === 'edge/in/kernel')!.shape).toEqual([C, D]);
    expect(source.parameterCount()).toBe(params.reduce((n, t) => n + t.values.length, 0));
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    tf.dispose([a, b, tokens, mask]);
    source.dispose();
    target.dispose();
  });

  it('counts 17 760 parameters with the default config at c = 8, d = 32, M = 3', () => {
    const edge = new EdgeFusion({ modalities: ['image', 'text', 'audio'], tokenDim: 8 });

    // in 8·32 + 3·(8·4 + 4·32 + 32) + align 32 + 2 blocks·(4·32² + 2·32·64 + 64 + 32 + 4·32) + final LN 64
    expect(edge.parameterCount()).toBe(256 + 3 * 192 + 32 + 2 * (4096 + 4096 + 64 + 32 + 128) + 64);
    expect(edge.parameterCount()).toBe(17760);
    edge.dispose();
  });

  it('setParameters refuses an unknown name, a wrong shape, NaN or a repeat, and changes nothing', () => {
    const edge = splitEdge();
    const before = edge.parameters();
    const good = before.map((t) => ({ ...t, values: t.values.map((v) => v + 1) }));
    const kernel = good.find((t) => t.name === 'edge/in/kernel')!;
    const bad = [
      [...good, { name: 'edge/nope', shape: [1], values: new Float32Array(1) }],
      [...good.filter((t) => t !== kernel), { ...kernel, shape: [D, C] }],
      [...good.filter((t) => t !== kernel), { ...kernel, values: kernel.values.map((v, i) => (i === 3 ? NaN : v)) }],
      [...good, kernel],
    ];

    for (const params of bad) {
      let caught: unknown;
      try {
        edge.setParameters(params);
      } catch (err) {
        caught = err;
      }
      expect(isModelsError(caught, 'MODELS_BAD_INPUT'), String(caught)).toBe(true);
    }

    edge.parameters().forEach((t, i) => expect(Array.from(t.values), t.name).toEqual(Array.from(before[i]!.values)));
    edge.dispose();
  });

  it("backward's dTokens match finite differences of Σ fused · dFused", () => {
    const edge = splitEdge();
    const { tokens, mask } = randomCut(5);
    const dFused = tf.randomNormal([B, D], 0, 1, 'float32', 6) as tf.Tensor2D;

    const dTokens = edge.backward(tokens, mask, dFused, { update: false }).arraySync();

    const eps = 1e-2;
    const entries: [number, number, number][] = [
      [0, 0, 0],
      [0, 1, 3],
      [3, 0, 2],
      [5, 1, 1],
      [1, 1, 0],
    ];
    for (const at of entries) {
      const estimate = (perturbedObjective(edge, tokens, mask, dFused, at, eps) - perturbedObjective(edge, tokens, mask, dFused, at, -eps)) / (2 * eps);
      const exact = dTokens[at[0]]![at[1]]![at[2]]!;
      expect(Math.abs(exact - estimate), `at ${at.join(',')}: ${exact} vs ${estimate}`).toBeLessThan(1e-3 + 5e-3 * Math.abs(estimate));
    }
    tf.dispose([tokens, mask, dFused]);
    edge.dispose();
  });

  it('gives each example the gradient of its own loss: row b does not depend on the other rows of dFused', () => {
    const edge = splitEdge();
    const { tokens, mask } = randomCut(7);
    const dFused = tf.randomNormal([B, D], 0, 1, 'float32', 8) as tf.Tensor2D;
    const onlyFirst = tf.tidy(() => tf.mul(dFused, tf.oneHot(tf.tensor1d([0], 'int32'), B).reshape([B, 1])));

    const all = edge.backward(tokens, mask, dFused, { update: false });
    const first = edge.backward(tokens, mask, onlyFirst, { update: false });

    expect(maxAbsDiff(all.arraySync()[0]!.flat(), first.arraySync()[0]!.flat())).toBeLessThan(1e-6);
    expect(
      first
        .arraySync()[1]!
        .flat()
        .every((v) => v === 0),
    ).toBe(true);
    tf.dispose([tokens, mask, dFused, onlyFirst, all, first]);
    edge.dispose();
  });

  it('backward updates the weights by default and not with update: false, returning the same dTokens', () => {
    const edge = splitEdge({ learningRate: 0.01 });
    const { tokens, mask } = randomCut(9);
    const dFused = tf.randomNormal([B, D], 0, 1, 'float32', 10) as tf.Tensor2D;
    const before = edge.parameters();

    const frozen = edge.backward(tokens, mask, dFused, { update: false });
    const unchanged = edge.parameters();
    const updated = edge.backward(tokens, mask, dFused);
    const after = edge.parameters();

    unchanged.forEach((t, i) => expect(Array.from(t.values), t.name).toEqual(Array.from(before[i]!.values)));
    const moved = after.filter((t, i) => maxAbsDiff(t.values, before[i]!.values) > 0).map((t) => t.name);
    for (const name of ['edge/in/kernel', 'edge/image/adapter_b', 'edge/align_token', 'edge/block1/attn/wv', 'edge/final_ln/beta'])
      expect(moved).toContain(name);
    // Adam's first step moves every weight with a nonzero gradient by about the learning rate.
    const kernelIndex = after.findIndex((t) => t.name === 'edge/in/kernel');
    expect(maxAbsDiff(after[kernelIndex]!.values, before[kernelIndex]!.values)).toBeCloseTo(0.01, 3);
    expect(maxAbsDiff(frozen.dataSync(), updated.dataSync())).toBe(0);
    tf.dispose([tokens, mask, dFused, frozen, updated]);
    edge.dispose();
  });

  it('resetOptimizer makes the next step repeat a fresh first step', () => {
    const [edge, fresh] = [splitEdge({ learningRate: 0.01 }), splitEdge({ learningRate: 0.01 })];
    const { tokens, mask } = randomCut(14);
    const dFused = tf.randomNormal([B, D], 0, 1, 'float32', 15) as tf.Tensor2D;
    const initial = edge.parameters();
    tf.dispose([edge.backward(tokens, mask, dFused), edge.backward(tokens, mask, dFused)]);

    edge.setParameters(initial);
    edge.resetOptimizer();
    tf.dispose([edge.backward(tokens, mask, dFused), fresh.backward(tokens, mask, dFused)]);

    const expected = fresh.parameters();
    edge.parameters().forEach((t, i) => expect(maxAbsDiff(t.values, expected[i]!.values), t.name).toBe(0));
    tf.dispose([tokens, mask, dFused]);
    edge.dispose();
    fresh.dispose();
  });

  it('leaks no tensors in forward and backward', () => {
    const edge = splitEdge();
    const { tokens, mask } = randomCut(11);
    const dFused = tf.randomNormal([B, D], 0, 1, 'float32', 12) as tf.Tensor2D;
    tf.dispose(edge.backward(tokens, mask, dFused)); // creates Adam's moments
    const before = tf.memory().numTensors;

    for (let i = 0; i < 3; i++) {
      tf.dispose(edge.forward(tokens, mask));
      tf.dispose(edge.backward(tokens, mask, dFused));
      tf.dispose(edge.backward(tokens, mask, dFused, { update: false }));
    }
    const after = tf.memory().numTensors;

    expect(after).toBe(before);
    tf.dispose([tokens, mask, dFused]);
    const held = tf.memory().numTensors;
    edge.dispose();
    expect(tf.memory().numTensors).toBeLessThan(held);
  });

  it('refuses mis-shaped tokens, mask and dFused, and a bad config, with MODELS_BAD_INPUT / MODELS_BAD_CONFIG', () => {
    const edge = splitEdge();
    const { tokens, mask } = randomCut();
    const wrongTokens = tf.zeros([B, M, C + 1]);
    const wrongMask = tf.ones([B, M + 1]);
    const wrongGrad = tf.zeros([B, D + 1]);
    const attempt = (act: () => unknown): unknown => {
      try {
        tf.dispose(act() as tf.Tensor);
      } catch (err) {
        return err;
      }
      return null;
    };

    expect(
      isModelsError(
        attempt(() => edge.forward(wrongTokens, mask)),
        'MODELS_BAD_INPUT',
      ),
    ).toBe(true);
    expect(
      isModelsError(
        attempt(() => edge.forward(tokens, wrongMask)),
        'MODELS_BAD_INPUT',
      ),
    ).toBe(true);
    expect(
      isModelsError(
        attempt(() => edge.backward(tokens, mask, wrongGrad)),
        'MODELS_BAD_INPUT',
      ),
    ).toBe(true);
    expect(String(attempt(() => edge.forward(wrongTokens, mask)))).toMatch(
      /EdgeFusion\.forward: tokens must be float32 \[batch ≥ 1, 2, 4\], got float32 \[6,2,5\]/,
    );
    expect(
      isModelsError(
        attempt(() => splitEdge({ numHeads: 3 })),
        'MODELS_BAD_CONFIG',
      ),
    ).toBe(true);
    expect(
      isModelsError(
        attempt(() => splitEdge({ modalities: ['image', 'image'] })),
        'MODELS_BAD_CONFIG',
      ),
    ).toBe(true);
    expect(
      isModelsError(
        attempt(() => splitEdge({ tokenDim: 0 })),
        'MODELS_BAD_CONFIG',
      ),
    ).toBe(true);
    tf.dispose([tokens, mask, wrongTokens, wrongMask, wrongGrad]);
    edge.dispose();
  });

  it('runs forward and backward on wasm with the same results as cpu', async () => {
    const run = async (backend: string): Promise<{ fused: Float32Array; dTokens: Float32Array; params: Float32Array }> => {
      expect(await tf.setBackend(backend)).toBe(true);
      const edge = splitEdge();
      const { tokens, mask } = randomCut(13);
      const dFused = tf.tensor2d(
        Array.from({ length: B * D }, (_, i) => Math.sin(i)),
        [B, D],
      );
      const fused = edge.forward(tokens, mask);
      const dTokens = edge.backward(tokens, mask, dFused);
      const result = {
        fused: fused.dataSync() as Float32Array,
        dTokens: dTokens.dataSync() as Float32Array,
        params: edge.parameters().find((t) => t.name === 'edge/block0/attn/wk')!.values,
      };
      tf.dispose([tokens, mask, dFused, fused, dTokens]);
      edge.dispose();
      return result;
    };

    const cpu = await run('cpu');
    const wasm = await run('wasm');
    await tf.setBackend('cpu');

    expect(maxAbsDiff(cpu.fused, wasm.fused)).toBeLessThan(1e-4);
    expect(maxAbsDiff(cpu.dTokens, wasm.dTokens)).toBeLessThan(1e-4);
    expect(maxAbsDiff(cpu.params, wasm.params)).toBeLessThan(1e-4);
  });
});
