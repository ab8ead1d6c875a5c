import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { TaskFileError, parseTaskYaml, readTaskFile } from './loadTask.js';

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
    expect(task).toMatchObject({
      id: 'demo-digits',
      dataset: { modalities: ['image', 'text', 'audio'] },
      strategy: { name: 'fedmm-x', inner: { name: 'fedavg' } },
      uploadEncoding: 'fp16',
      admission: { slots: 'sampling-order', probationRounds: 5, similarityDamping: true },
    });
  });

  it('loads the split demo task, and refuses a split section with a trust strategy at its line', () => {
    const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tasks', 'demo-split.yaml');
    const task = readTaskFile(file);
    expect(task).toMatchObject({
      id: 'demo-split',
      strategy: { name: 'fedavg' },
      split: { fusedDim: 32, activations: { encoding: 'int8' }, gradients: { encoding: 'int8' }, returnEncoding: 'int8' },
    });
    const issues = issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: fedmm-x }\nsplit: { fusedDim: 16 }'));
    expect(issues.some((i) => i.includes('split') && i.includes('fedavg'))).toBe(true);
  });

  it('fills defaults, including nested wrapper strategies', () => {
    const task = parseTaskYaml(
      base.replace('strategy: { name: fedavg }', 'strategy: { name: dp, clipNorm: 1, noiseMultiplier: 0.5, inner: { name: fedmm-x } }'),
    );
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
      inner: {
        name: 'fedmm-x',
        inner: { name: 'fedavg' },
        weights: { agreement: 1, accuracy: 1, loss: 1, calibration: 0.5, explanation: 0.5 },
        historyDecay: 0.5,
        prior: 0.5,
        minTrust: 0,
        agreementGate: true,
        agreementReference: 'median',
        maxNorm: null,
        rootExamples: 100,
      },
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

  it('reads the L_modal variant and the L_intp weight, defaulting to the Jensen–Shannon term and 0 (off)', () => {
    const defaults = parseTaskYaml(base);
    const chosen = parseTaskYaml(base.replace('namConcepts: 8 }', 'namConcepts: 8, modalLoss: distill, interpretabilityWeight: 0.05 }'));

    expect(defaults.model).toMatchObject({ modalLoss: 'js', interpretabilityWeight: 0 });
    expect(chosen.model).toMatchObject({ modalLoss: 'distill', interpretabilityWeight: 0.05 });
    expect(issuesOf(base.replace('namConcepts: 8 }', 'namConcepts: 8, modalLoss: kl }'))).toEqual([expect.stringMatching(/^model\.modalLoss: /)]);
    expect(issuesOf(base.replace('namConcepts: 8 }', 'namConcepts: 8, interpretabilityWeight: -1 }'))).toEqual([
      expect.stringMatching(/^model\.interpretabilityWeight: /),
    ]);
  });

  it('names the path of every problem', () => {
    expect(issuesOf(base.replace('rounds: 5', 'rounds: 0'))).toEqual([expect.stringMatching(/^rounds: /)]);
    expect(issuesOf(base.replace('modalities: [image, text]', 'modalities: [image, smell]'))).toEqual([expect.stringMatching(/^dataset\.modalities\[1\]: /)]);
    expect(issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: trimmed-mean, trimFraction: 0.5 }'))).toEqual([
      expect.stringMatching(/^strategy\.trimFraction: /),
    ]);
    expect(
      issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: dp, clipNorm: 1, noiseMultiplier: 1, inner: { name: krum, numByzantine: 4 } }')),
    ).toEqual([expect.stringMatching(/^strategy\.inner\.numByzantine: Krum needs/)]);
    expect(issuesOf(base.replace('minClients: 2', 'minClients: 11'))).toEqual([expect.stringMatching(/^minClients: must be ≤ clientsPerRound/)]);
    expect(issuesOf(`${base}\nlearningrate: 0.1\n`)).toEqual([expect.stringMatching(/^\(root\): .*learningrate/)]);
    expect(issuesOf(base.replace('strategy: { name: fedavg }', 'strategy: { name: fedsgd }'))).toEqual([expect.stringMatching(/^strategy\.name: /)]);
  });

  it('reports YAML syntax errors and duplicate keys as TASK_INVALID at their path', () => {
    expect(issuesOf('id: [unclosed')).toEqual([expect.stringMatching(/^id\[0\]: Flow sequence/)]);
    expect(issuesOf(`${base}\nrounds: 6\n`)).toEqual([expect.stringMatching(/^rounds: .*unique/i)]);
  });
});

/** The error parseTaskYaml throws for `yaml`, read as from `tasks/demo.yaml`. */
function refusalOf(yaml: string): TaskFileError {
  try {
    parseTaskYaml(yaml, 'tasks/demo.yaml');
  } catch (err) {
    if (err instanceof TaskFileError) return err;
    throw err;
  }
  throw new Error('the task was accepted');
}

/** A "billion laughs" map: `lol0` holds 9 strings, each further level 9 aliases to the one before. */
function aliasBomb(levels: number, indent: string): string {
  const lines = [`${indent}lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]`];
  for (let i = 1; i <= levels; i++) lines.push(`${indent}lol${i}: &lol${i} [${Array.from({ length: 9 }, () => `*lol${i - 1}`).join(', ')}]`);
  return lines.join('\n');
}

describe('task file errors name the file, the line and the path', () => {
  it('refuses an alias bomb without expanding it, naming the alias that takes the document past the limit', () => {
    // Arrange: 9^40 strings once expanded; a loader that expanded first would never return.
    const yaml = base.replace('strategy: { name: fedavg }', `strategy:\n  name: fedavg\n  laughs:\n${aliasBomb(40, '    ')}`);
    // Act
    const error = refusalOf(yaml);
    // Assert: lol0…lol3 hold 10 + 91 + 820 + 7381 nodes, 8318 with the rest of the file; lol4's first copy of lol3 passes 10 000.
    expect(error.code).toBe('TASK_INVALID');
    expect(error.problems).toEqual([
      { path: 'strategy.laughs.lol4[0]', line: 12, column: 18, message: expect.stringContaining('alias *lol3 expands to 7381 nodes') },
    ]);
    expect(error.message).toMatch(/^TASK_INVALID: tasks\/demo\.yaml:12:18: strategy\.laughs\.lol4\[0\]: alias \*lol3/);
  });

  it('accepts a few aliases, and refuses one that refers to its own container or to no anchor', () => {
    // Arrange
    const reused = base
      .replace('adapterAlpha: 8', 'adapterAlpha: &alpha 8')
      .replace('strategy: { name: fedavg }', 'strategy: { name: fedprox, proximalMu: *alpha }');
    // Act
    const task = parseTaskYaml(reused, 'tasks/demo.yaml');
    const cycle = refusalOf(`${base}extra: &loop [1, *loop]\n`);
    const dangling = refusalOf(`${base}extra: *nowhere\n`);
    // Assert
    expect(task.strategy).toEqual({ name: 'fedprox', proximalMu: 8 });
    expect(cycle.message).toBe('TASK_INVALID: tasks/demo.yaml:14:18: extra[1]: alias *loop refers to a node that contains it');
    expect(dangling.message).toBe('TASK_INVALID: tasks/demo.yaml:14:8: extra: alias *nowhere has no anchor &nowhere before it');
  });

  it('names the file, line and path of a YAML syntax error', () => {
    // Act: `[5` never closes; the parser notices on the next line.
    const error = refusalOf(base.replace('rounds: 5', 'rounds: [5'));
    // Assert
    expect(error.problems).toEqual([{ path: 'rounds', line: 7, column: 1, message: expect.stringMatching(/^Flow sequence/) }]);
    expect(error.message).toMatch(/^TASK_INVALID: tasks\/demo\.yaml:7:1: rounds: Flow sequence/);
  });

  it('names the file, line and path of a schema error, at the key of an unknown one', () => {
    // Act
    const single = refusalOf(base.replace('strategy: { name: fedavg }', 'strategy:\n  name: dp\n  noiseMultiplier: 1\n  clipNorm: 0'));
    const several = refusalOf(base.replace('rounds: 5', 'rounds: 0').replace('batchSize: 16', 'batchSize: 16\nbatchsize: 32'));
    // Assert
    expect(single.message).toBe('TASK_INVALID: tasks/demo.yaml:8:3: strategy.clipNorm: Too small: expected number to be >0');
    expect(several.problems.map((p) => [p.line, p.path])).toEqual([
      [6, 'rounds'],
      [12, '(root)'],
    ]);
    expect(several.message.split('\n')).toEqual([
      'TASK_INVALID: tasks/demo.yaml has 2 problems:',
      '  tasks/demo.yaml:6:1: rounds: Too small: expected number to be >0',
      '  tasks/demo.yaml:12:1: (root): Unrecognized key: "batchsize"',
    ]);
  });

  it('bounds what a pathological file can make it report', () => {
    // Act
    const deep = refusalOf(`id: ${'['.repeat(50_000)}${']'.repeat(50_000)}`);
    const huge = refusalOf(`# ${'x'.repeat(2 * 1024 * 1024)}\n${base}`);
    // Assert
    expect(deep.problems.length).toBeLessThanOrEqual(10);
    expect(deep.message.length).toBeLessThan(4000);
    expect(huge.problems).toEqual([{ path: '(root)', message: expect.stringContaining('at most 1048576') }]);
  });

  it('names the file when it cannot be read', () => {
    // Act
    const error = ((): unknown => {
      try {
        return readTaskFile('/nonexistent/tasks/missing.yaml');
      } catch (err) {
        return err;
      }
    })();
    // Assert
    expect(error).toBeInstanceOf(TaskFileError);
    expect((error as TaskFileError).message).toMatch(/^TASK_INVALID: \/nonexistent\/tasks\/missing\.yaml: \(root\): cannot read the file/);
  });
});
