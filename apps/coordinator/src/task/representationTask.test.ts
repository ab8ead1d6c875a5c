import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { buildStrategy } from '../strategy/fromConfig.js';
import { buildRepresentationStrategy } from '../strategy/representation.js';
import { parseTaskYaml, readTaskFile } from './loadTask.js';
import { REPRESENTATION_TASK_MODEL, isRepresentationTask } from '@chorus/protocol';

const base = `
id: r1
dataset: { name: digits, modalities: [image, text] }
strategy: { name: fedafd }
representation:
  dim: 32
  publicBatch: 16
  clientKinds: [{ kind: image-classifier, arch: cnn, share: 1 }]
rounds: 2
clientsPerRound: 3
minClients: 2
roundDeadlineMs: 1000
localEpochs: 1
batchSize: 16
learningRate: 0.01
maxUpdateBytes: 100000
`;

function issuesOf(yaml: string): string[] {
  try {
    parseTaskYaml(yaml);
  } catch (err) {
    if (err instanceof CoordinatorError && err.code === 'TASK_INVALID') return [...err.issues];
    throw err;
  }
  return [];
}

describe('representation task files (FedAFD family)', () => {
  it('loads the FedAFD demo task with its representation section', () => {
    // Act
    const task = readTaskFile(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tasks', 'fedafd-digits.yaml'));
    // Assert
    expect(isRepresentationTask(task)).toBe(true);
    expect(task).toMatchObject({
      id: 'fedafd-digits',
      strategy: { name: 'fedafd' },
      representation: { dim: 256, publicBatch: 64, encoding: 'fp16', adversarialWeight: 0.5, distillationWeight: 0.4 },
    });
    expect(task.dataset.modalities).toEqual(['image', 'text', 'audio']);
    expect(task.representation!.clientKinds.map((k) => k.kind)).toEqual([
      'image-classifier',
      'text-classifier',
      'image-text-retrieval',
      'audio-text-retrieval',
    ]);
  });

  it('needs no model section, fills the defaults, and merges the coefficients into the fl-core strategy', () => {
    // Act
    const task = parseTaskYaml(base.replace('dim: 32', 'dim: 32\n  adversarialWeight: 0.25\n  distillationWeight: 0.3'));
    // Assert
    expect(task.model).toEqual(REPRESENTATION_TASK_MODEL);
    expect(task.representation).toMatchObject({
      encoding: 'fp16',
      server: { hiddenUnits: 512, imageFilters: [32, 64], textFilters: 256, learningRate: 1e-3, stepsPerRound: 1 },
    });
    if (!isRepresentationTask(task)) throw new Error('not a representation task');
    const strategy = buildRepresentationStrategy(task);
    expect(strategy.distillationWeight).toBe(0.3);
    expect(strategy.clientCoefficients).toEqual({ adversarialWeight: 0.25, fusion: true, localDistillationWeight: 0 });
    // The engine's fl-core strategy only plans the cohort.
    expect(buildStrategy(task)).toMatchObject({ trust: [], needsRootUpdate: false, privacy: [] });
  });

  it('names the path of every mistake', () => {
    expect(issuesOf(base.replace(/representation:[\s\S]*?share: 1 }]\n/, ''))).toEqual(["representation: required with the representation strategy 'fedafd'"]);
    expect(issuesOf(base.replace('share: 1', 'share: 0.5'))).toEqual(['representation.clientKinds: shares must sum to 1, got 0.5']);
    expect(issuesOf(base.replace('dim: 32', 'dim: 0'))).toEqual(['representation.dim: Too small: expected number to be >0']);
    expect(issuesOf(base.replace('{ name: fedafd }', '{ name: fedafd, temperature: -1 }'))).toEqual([
      'strategy.temperature: must be a finite number > 0, got -1',
    ]);
    expect(issuesOf(base.replace('{ name: fedafd }', '{ name: fedmd, fusion: false }'))).toEqual(['strategy.fusion: not a setting of fedmd']);
    // Every baseline loads, its clients distilling locally by default or with the weight given.
    for (const name of ['fedmd', 'fedgems', 'fedet', 'fedmkd']) expect(issuesOf(base.replace('{ name: fedafd }', `{ name: ${name} }`))).toEqual([]);
    expect(issuesOf(base.replace('{ name: fedafd }', '{ name: fedgems, localDistillationWeight: 0 }'))).toEqual([]);
    expect(issuesOf(base.replace('{ name: fedafd }', '{ name: fedgems, localDistillationWeight: -1 }'))).not.toEqual([]);
    expect(issuesOf(base.replace('{ name: fedafd }', '{ name: local }'))).toEqual([]);
    expect(
      issuesOf(base.replace('dim: 32', 'dim: 32\n  adversarialWeight: 0.5').replace('{ name: fedafd }', '{ name: fedafd, adversarialWeight: 0.2 }')),
    ).toEqual(['representation.adversarialWeight: also set as strategy.adversarialWeight; set it in one place']);
    // A weight strategy still needs its model and takes no representation section.
    expect(issuesOf(base.replace('{ name: fedafd }', '{ name: fedavg }'))).toEqual([
      "model: required with the weight strategy 'fedavg'",
      'representation: only a representation strategy (fedafd, fedmd, fedgems, fedet, fedmkd, local) takes this section',
    ]);
  });
});
