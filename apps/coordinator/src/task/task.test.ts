import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { parseTaskYaml, readTaskFile } from './loadTask.js';

const base = `
id: t1
dataset: { name: digits, modalities: [image, text] }
model: { base: tiny, adapterRank: 4, adapterAlpha: 8, namConcepts: 8 }
strategy: { name: fedavg }
rounds: 5
clientsPerRound: 10
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

describe('task files', () => {
  it('loads the demo task', () => {
    const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tasks', 'demo-digits.yaml');
    const task = readTaskFile(file);
    expect(task).toMatchObject({ id: 'demo-digits', dataset: { modalities: ['image', 'text', 'audio'] }, strategy: { name: 'fedmm-x', inner: { name: 'fedavg' } }, uploadEncoding: 'fp16' });
  });

  it('fills defaults, including nested wrapper strategies', () => {
    const task = parseTaskYaml(base.replace('strategy: { name: fedavg }', 'strategy: { name: dp, clipNorm: 1, noiseMultiplier: 0.5, inner: { name: fedmm-x } }'));
    expect(task.overSelection).toBe(0.2);
    expect(task.uploadEncoding).toBe('fp32');
    expect(task.normBound).toBeNull();
    expect(task.strategy).toEqual({
      name: 'dp',
      clipNorm: 1,
      noiseMultiplier: 0.5,
      delta: 1e-5,
      samplingRate: 1,
      noise: 'crypto',
      inner: { name: 'fedmm-x', inner: { name: 'fedavg' }, weights: { agreement: 1, accuracy: 1, loss: 1, calibration: 0.5, explanation: 0.5 }, historyDecay: 0.5, prior: 0.5, minTrust: 0 },
    });
  });

  it('reads the model head and L_modal weight, defaulting to the NAM and 0.1', () => {
    const defaults = parseTaskYaml(base);
    const ablation = parseTaskYaml(base.replace('namConcepts: 8 }', 'namConcepts: 8, modalWeight: 0, head: linear }'));

    expect(defaults.model).toMatchObject({ modalWeight: 0.1, head: 'nam' });
    expect(ablation.model).toMatchObject({ modalWeight: 0, head: 'linear' });
    expect(issuesOf(base.replace('namConcepts: 8 }', 'namConcepts: 8, modalWeight: -1 }'))).toEqual([expect.stringMatching(/^model\.modalWeight: /)]);
    expect(issuesOf(base.replace('namConcepts: 8 }', 'namConcepts: 8, head: tree }'))).toEqual([expect.stringMatching(/^model\.head: /)]);
  });

  it('names the path of every problem', () => {
    expect(issuesOf(base.replace('rounds: 5', 'rounds: 0'))).toEqual([expect.stringMatching(/^rounds: /)]);
    expect(issuesOf(base.replace('modalities: [image, text]', 'modalities: [image, smell]'))).toEqual([expect.stringMatching(/^dataset\.modalities\[1\]: /)]);
    expect(issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: trimmed-mean, trimFraction: 0.5 }'))).toEqual([expect.stringMatching(/^strategy\.trimFraction: /)]);
    expect(issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: dp, clipNorm: 1, noiseMultiplier: 1, inner: { name: krum, numByzantine: 4 } }'))).toEqual([
      expect.stringMatching(/^strategy\.inner\.numByzantine: Krum needs/),
    ]);
    expect(issuesOf(base.replace('minClients: 2', 'minClients: 11'))).toEqual([expect.stringMatching(/^minClients: must be ≤ clientsPerRound/)]);
    expect(issuesOf(`${base}\nlearningrate: 0.1\n`)).toEqual([expect.stringMatching(/^\(root\): .*learningrate/)]);
    expect(issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: fedsgd }'))).toEqual([expect.stringMatching(/^strategy\.name: /)]);
  });

  it('reports YAML syntax errors and duplicate keys as TASK_INVALID', () => {
    expect(issuesOf('id: [unclosed')).toEqual([expect.stringMatching(/^\(yaml\): /)]);
    expect(issuesOf(`${base}\nrounds: 6\n`)).toEqual([expect.stringMatching(/^\(yaml\): .*[Uu]nique|^\(yaml\): .*duplicate/i)]);
  });
});
