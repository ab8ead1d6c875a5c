import { describe, expect, it } from 'vitest';
import { FlCoreError } from '../errors.js';
import { createRepresentationStrategy } from './fromConfig.js';
import { LocalOnly, RepresentationEnsemble } from './strategy.js';
import { REPRESENTATION_STRATEGY_NAMES } from './types.js';

function messageOf(config: unknown, path?: string): string {
  try {
    createRepresentationStrategy(config, path);
  } catch (err) {
    if (err instanceof FlCoreError && err.code === 'REP_BAD_CONFIG') return err.message;
    throw err;
  }
  throw new Error('no error');
}

describe('createRepresentationStrategy', () => {
  it('builds every registered name, LOCAL included', () => {
    for (const name of REPRESENTATION_STRATEGY_NAMES) {
      const s = createRepresentationStrategy({ name });

      expect(s.name).toBe(name);
      expect(s).toBeInstanceOf(name === 'local' ? LocalOnly : RepresentationEnsemble);
      expect(s.exchangesRepresentations).toBe(name !== 'local');
    }
  });

  it('applies the defaults and the settings it is given', () => {
    const defaults = createRepresentationStrategy({ name: 'fedafd' }) as RepresentationEnsemble;
    const chosen = createRepresentationStrategy({
      name: 'fedafd',
      temperature: 0.5,
      weightTemperature: 1,
      matchGlobalNorm: false,
      echoThreshold: null,
      copyThreshold: 0.99,
      distillationWeight: 0,
    }) as RepresentationEnsemble;

    expect([defaults.distillationWeight, defaults.matchGlobalNorm, defaults.echoThreshold, defaults.copyThreshold]).toEqual([0.4, true, 0.999, 0.999]);
    expect([chosen.distillationWeight, chosen.matchGlobalNorm, chosen.echoThreshold, chosen.copyThreshold]).toEqual([0, false, null, 0.99]);
  });

  it('tells clients what to train with: FedAFD aligns and fuses, the baselines distil locally, LOCAL does neither', () => {
    const coefficients = (config: object) => createRepresentationStrategy(config).clientCoefficients;

    expect(coefficients({ name: 'fedafd' })).toEqual({ adversarialWeight: 0.5, fusion: true, localDistillationWeight: 0 });
    expect(coefficients({ name: 'fedafd', adversarialWeight: 0, fusion: false })).toEqual({ adversarialWeight: 0, fusion: false, localDistillationWeight: 0 });
    expect(coefficients({ name: 'fedmd' })).toEqual({ adversarialWeight: 0, fusion: false, localDistillationWeight: 0.4 });
    expect(coefficients({ name: 'fedmkd', localDistillationWeight: 1 })).toEqual({ adversarialWeight: 0, fusion: false, localDistillationWeight: 1 });
    expect(coefficients({ name: 'local' })).toEqual({ adversarialWeight: 0, fusion: false, localDistillationWeight: 0 });
  });

  it('replaces SED by simple averaging for the "w/o SED" ablation', () => {
    // A client pointing at the right samples and one pointing at the wrong ones: SED prefers the first, averaging does not.
    const global = { numSamples: 2, dim: 2, representations: { image: new Float32Array([1, 0, 0, 1]) } };
    const uploads = [
      { clientId: 'right', numExamples: 1, representations: { image: new Float32Array([1, 0.2, 0.2, 1]) } },
      { clientId: 'wrong', numExamples: 9, representations: { image: new Float32Array([0.2, 1, 1, 0.2]) } },
    ];

    const sed = createRepresentationStrategy({ name: 'fedafd' }).aggregate(1, global, uploads);
    const mean = createRepresentationStrategy({ name: 'fedafd', sed: false }).aggregate(1, global, uploads);

    expect(sed.clients[0]!.meanWeights.image).toBeGreaterThan(0.99);
    expect(mean.clients.map((c) => c.meanWeights.image)).toEqual([0.5, 0.5]);
  });

  it('names the path of every bad field', () => {
    expect(messageOf({ name: 'fedafd', temperature: -1, echoThreshold: 2 })).toMatch(
      /strategy\.temperature: must be a finite number > 0, got -1; strategy\.echoThreshold: must be a number in \(0, 1\] or null, got 2/,
    );
    expect(messageOf({ name: 'fedet', weightTemperature: 1 })).toContain('strategy.weightTemperature: not a setting of fedet');
    expect(messageOf({ name: 'local', distillationWeight: 0.4 })).toContain('strategy.distillationWeight: not a setting of local');
    expect(messageOf({ name: 'fedmd', lr: 1 })).toContain('strategy.lr: not a setting of fedmd');
    expect(messageOf({ name: 'fedavg' })).toContain('strategy.name: must be one of fedafd, fedmd, fedgems, fedet, fedmkd, local, got "fedavg"');
    expect(messageOf({ name: 'fedmkd', matchGlobalNorm: 'yes' }, 'tasks[0].strategy')).toContain('tasks[0].strategy.matchGlobalNorm: must be a boolean');
    expect(messageOf({ name: 'fedgems', distillationWeight: Number.NaN })).toContain('strategy.distillationWeight: must be a finite number ≥ 0');
    expect(messageOf({ name: 'fedafd', adversarialWeight: -1, fusion: 1, sed: 'no' })).toMatch(
      /strategy\.adversarialWeight: must be a finite number ≥ 0 and ≤ 100, got -1; strategy\.fusion: must be a boolean, got 1; strategy\.sed: must be a boolean, got no/,
    );
    expect(messageOf({ name: 'fedmkd', localDistillationWeight: 101 })).toContain(
      'strategy.localDistillationWeight: must be a finite number ≥ 0 and ≤ 100, got 101',
    );
    expect(messageOf({ name: 'fedmd', adversarialWeight: 0.5 })).toContain('strategy.adversarialWeight: not a setting of fedmd');
    expect(messageOf({ name: 'fedafd', localDistillationWeight: 0.5 })).toContain('strategy.localDistillationWeight: not a setting of fedafd');
    expect(messageOf(null)).toContain('strategy: must be an object with a name');
    expect(messageOf([])).toContain('strategy: must be an object with a name');
  });
});
