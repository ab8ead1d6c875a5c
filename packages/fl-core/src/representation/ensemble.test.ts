import { describe, expect, it } from 'vitest';
import { expectFlCoreError } from '../errors.test-util.js';
import { combineWeights, copyGroups, distillationLoss, ensembleTeacher } from './ensemble.js';
import { A, B, G, randomMatrix } from './fixtures.testkit.js';

describe('Eq. 9: the weighted teacher', () => {
  it('is Σ_k w_{k,i} r^k_i row by row', () => {
    const t = ensembleTeacher([A, B], [new Float64Array([0.25, 1]), new Float64Array([0.75, 0])], 2, 2);

    // Row 0: 0.25·(1,1) + 0.75·(1,0) = (1, 0.25); row 1: 1·(0,1) + 0·(1,1) = (0, 1).
    expect([...t]).toEqual([1, 0.25, 0, 1]);
  });

  it('refuses mismatched inputs with REP_BAD_INPUT', () => {
    expectFlCoreError(() => ensembleTeacher([A], [], 2, 2), 'REP_BAD_INPUT');
    expectFlCoreError(() => ensembleTeacher([A], [new Float64Array(3)], 2, 2), 'REP_BAD_INPUT');
    expectFlCoreError(() => ensembleTeacher([new Float32Array(3)], [new Float64Array(2)], 2, 2), 'REP_BAD_INPUT');
  });
});

describe('Eq. 10: L2 distillation loss', () => {
  it('is ½ · mean_i ‖t_i − g_i‖² with gradient (g − t)/B', () => {
    // t − g = (0, 1) on row 0 and (2, 0) on row 1 → ½ · (1 + 4) / 2 = 1.25.
    const teacher = new Float32Array([1, 1, 2, 1]);

    const { loss, gradient } = distillationLoss(teacher, G, 2, 2);

    expect(loss).toBe(1.25);
    expect([...gradient]).toEqual([0, -0.5, -1, 0]);
  });

  it('has the gradient finite differences give', () => {
    const teacher = randomMatrix(1, 3, 4);
    const student = randomMatrix(2, 3, 4);
    const { gradient } = distillationLoss(teacher, student, 3, 4);
    const h = 1e-3;
    for (let x = 0; x < student.length; x++) {
      const up = student.slice();
      const down = student.slice();
      up[x] = up[x]! + h;
      down[x] = down[x]! - h;
      const numeric = (distillationLoss(teacher, up, 3, 4).loss - distillationLoss(teacher, down, 3, 4).loss) / (up[x]! - down[x]!);
      expect(gradient[x]).toBeCloseTo(numeric, 3);
    }
  });

  it('is 0 when the student already is the teacher', () => {
    expect(distillationLoss(G, G, 2, 2).loss).toBe(0);
  });
});

describe('copy groups and group-aware weights', () => {
  it('joins near-identical uploads, transitively, and leaves distinct ones alone', () => {
    const a = randomMatrix(3, 4, 8);
    const nearA = a.map((v, i) => v * (1 + 1e-5 * (i % 3)));
    const c = randomMatrix(4, 4, 8);

    expect(copyGroups([c, a, nearA, a.map((v) => v * 3)], 4, 8, 0.999)).toEqual([0, 1, 1, 1]);
    expect(copyGroups([A, B], 2, 2, 0.999)).toEqual([0, 1]);
  });

  it('weights a group as one client and splits its weight evenly among the copies', () => {
    // Softmax of equal scores over two groups: ½ each; the copy group's ½ is split in two.
    const scores = [new Float64Array([2]), new Float64Array([2]), new Float64Array([2])];

    const w = combineWeights(scores, [0, 0, 2], 'softmax');

    expect(w.map((x) => x[0])).toEqual([0.25, 0.25, 0.5]);
  });

  it('normalises proportional scores, falling back to equal weights when all are 0', () => {
    const w = combineWeights([new Float64Array([1, 0]), new Float64Array([3, 0])], [0, 1], 'proportional');

    expect(w.map((x) => [...x])).toEqual([
      [0.25, 0.5],
      [0.75, 0.5],
    ]);
  });

  it('refuses non-finite or (proportional) negative scores with REP_BAD_INPUT', () => {
    expectFlCoreError(() => combineWeights([new Float64Array([Number.NaN])], [0], 'softmax'), 'REP_BAD_INPUT');
    expectFlCoreError(() => combineWeights([new Float64Array([-1])], [0], 'proportional'), 'REP_BAD_INPUT');
  });
});
