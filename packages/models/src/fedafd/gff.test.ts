import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GranularityFusion } from './gff.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** A built fusion of D = 4 as 2 groups of 2 channels with a 2-wide bottleneck, every weight zero except those in `set`. */
function handSet(set: Record<string, number[]> = {}): GranularityFusion {
  const fusion = new GranularityFusion({ dim: 4, groups: 2, reduction: 1 });
  tf.tidy(() => {
    fusion.apply([tf.zeros([1, 4]), tf.zeros([1, 4])]);
  });
  for (const { name, variable } of fusion.namedWeights()) {
    const shape = variable.shape as number[];
    const value = set[name] ? tf.tensor(set[name]!, shape) : tf.zeros(shape);
    variable.write(value);
    value.dispose();
  }
  return fusion;
}

const X = [1, 2, 3, 4];
const Y = [-1, 0, 5, 2];
const IDENTITY = [1, 0, 0, 1];

function fuse(fusion: GranularityFusion): number[] {
  return tf.tidy(() => Array.from((fusion.apply([tf.tensor2d([X]), tf.tensor2d([Y])]) as tf.Tensor).dataSync()));
}

describe('GranularityFusion (GFF, Eq. 3–5)', () => {
  it('selects X with gates of 1 and Y with gates of 0', () => {
    const toX = handSet({ 'stage1/local/b2': [-20, -20], 'stage2/local/b2': [20, 20] });
    const toY = handSet({ 'stage1/local/b2': [20, 20], 'stage2/global/b2': [-20, -20] });

    fuse(toX).forEach((v, i) => expect(v).toBeCloseTo(X[i]!, 5));
    fuse(toY).forEach((v, i) => expect(v).toBeCloseTo(Y[i]!, 5));
    toX.dispose();
    toY.dispose();
  });

  it('averages X and Y when every weight is zero (σ(0) = ½ at both stages)', () => {
    const fusion = handSet();

    fuse(fusion).forEach((v, i) => expect(v).toBeCloseTo((X[i]! + Y[i]!) / 2, 6));
    fusion.dispose();
  });

  it('computes the local branch per group and the global branch on the mean over groups', () => {
    // Stage 1 attention of X + Y = [0, 2, 8, 6]: local = relu(v) per feature; global = relu(mean over groups) = [4, 4] on both groups.
    const fusion = handSet({ 'stage1/local/w1': IDENTITY, 'stage1/local/w2': IDENTITY, 'stage1/global/w1': IDENTITY, 'stage1/global/w2': IDENTITY });

    const [x, y] = [tf.tensor2d([X]), tf.tensor2d([Y])];
    const gates = fusion.gates(x, y);
    const first = Array.from(gates.first.dataSync());
    const second = Array.from(gates.second.dataSync());

    const expected = [0 + 4, 2 + 4, 8 + 4, 6 + 4].map(sigmoid);
    first.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    second.forEach((v) => expect(v).toBeCloseTo(0.5, 6));
    const fused = fuse(fusion);
    fused.forEach((v, i) => expect(v).toBeCloseTo((X[i]! + Y[i]!) / 2, 5));
    tf.dispose([x, y, gates.first, gates.second]);
    fusion.dispose();
  });

  it('keeps the shape, refuses mismatched inputs and leaks no tensors', () => {
    const fusion = new GranularityFusion({ dim: 8, seed: 3 });
    const x = tf.randomNormal([3, 8], 0, 1, 'float32', 1);
    const y = tf.randomNormal([3, 8], 0, 1, 'float32', 2);
    tf.tidy(() => {
      fusion.apply([x, y]);
    });
    const before = tf.memory().numTensors;

    const out = fusion.apply([x, y]) as tf.Tensor;
    expect(out.shape).toEqual([3, 8]);
    out.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => fusion.apply([x, tf.zeros([3, 4])])).toThrow(expect.objectContaining({ code: 'MODELS_BAD_INPUT' }));
    expect(() => new GranularityFusion({ dim: 6, groups: 4 })).toThrow(expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'groups' }));
    tf.dispose([x, y]);
    fusion.dispose();
  });
});
