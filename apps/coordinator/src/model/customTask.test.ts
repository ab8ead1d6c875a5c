/**
 * Custom tasks on the server: a task folder written by `pnpm task create` loads (its own encoders,
 * classes and data), and each way a folder can be wrong is refused with `TASK_INVALID` naming the
 * field and the file, before the coordinator stores anything.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '@chorus/fl-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCoordinatorError } from '../errors.js';
import { startCoordinator } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { encodePng, writeExampleTask } from '../task/exampleTask.js';
import { readTaskFile } from '../task/loadTask.js';
import { describeTaskFiles } from '../task/taskFiles.js';
import { TaskModel, ensureWasmBackend } from './taskModel.js';

let root = '';
let example = '';
beforeAll(async () => {
  await ensureWasmBackend();
  root = mkdtempSync(join(tmpdir(), 'chorus-custom-'));
  example = join(root, 'example');
  await writeExampleTask(example, { modalities: ['image', 'text'], numClients: 2, perClass: { probe: 10, test: 4, client: 2 } });
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

let copies = 0;
/** A copy of the example folder, changed by `edit`. */
function variant(edit: (dir: string) => void): string {
  const dir = join(root, `v${copies++}`);
  cpSync(example, dir, { recursive: true });
  edit(dir);
  return dir;
}
const editYaml = (dir: string, from: string | RegExp, to: string): void => {
  const file = join(dir, 'task.yaml');
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  expect(next).not.toBe(text);
  writeFileSync(file, next);
};

/** The coded refusal of loading `dir`'s task, and its issues. */
async function refusal(dir: string): Promise<{ code: string; issues: readonly string[]; message: string }> {
  try {
    const model = await TaskModel.create(readTaskFile(dir), {});
    model.dispose();
  } catch (err) {
    if (isCoordinatorError(err)) return { code: err.code, issues: err.issues, message: err.message };
    throw err;
  }
  throw new Error(`${dir} loaded`);
}

describe('a custom task folder', () => {
  it('loads its own encoders, classes and data, and the server measures with them', async () => {
    const task = readTaskFile(example);
    const model = await TaskModel.create(task, { rootExamples: 10 });
    try {
      expect(model.modalities).toEqual(['image', 'text']);
      expect(model.probeLabels.length).toBe(40);
      const initial = model.initialParameters();
      // 5 classes: the head's bias is [5]; the image encoder's 1×1 'mix' layer carries an adapter.
      expect(initial.find((t) => t.name === 'fusion/nam/beta')?.shape).toEqual([5]);
      expect(initial.some((t) => t.name === 'image/mix/lora_a')).toBe(true);
      const metrics = model.evaluate(initial);
      expect(metrics['eval.numExamples']).toBe(40);
      expect(metrics['eval.image.accuracy']).toBeGreaterThanOrEqual(0);
      expect(metrics['eval.text.accuracy']).toBeGreaterThanOrEqual(0);
      const probe = model.probe(initial);
      expect(probe.probabilities.length).toBe(40 * 5);
      // Each probe input holds one modality, so there is no cross-modal explanation to compare.
      expect(probe.explanations).toBeUndefined();
      const root = model.rootUpdate(initial)!;
      expect(root.map((t) => t.name)).toEqual(initial.map((t) => t.name));
      expect(root.every((t) => t.values.every(Number.isFinite))).toBe(true);
      expect(root.some((t) => t.values.some((v) => v !== 0))).toBe(true);
    } finally {
      model.dispose();
    }
  }, 60_000);

  it("probes random candidates over its encoders' cached activations exactly as running the whole model for each", async () => {
    // Arrange: adapters on the image encoder's 1×1 'mix' convolution and on Dense layers above it.
    const model = await TaskModel.create(readTaskFile(example), {});
    try {
      const initial = model.initialParameters();
      const rng = createRng(5);
      const candidates = [1, 2, 3].map(() => initial.map((t) => ({ ...t, values: t.values.map((v) => v + 0.2 * (rng() * 2 - 1)) })));
      // Act
      const fast = model.probeCandidates(candidates);
      const reference = model.probeOneByOne(candidates);
      // Assert
      fast.forEach((outcome, i) => {
        if (!outcome.ok) throw outcome.error;
        const want = reference[i]!.probabilities;
        expect(outcome.outputs.probabilities.length).toBe(40 * 5);
        outcome.outputs.probabilities.forEach((v, j) => expect(Math.abs(v - want[j]!)).toBeLessThan(1e-5));
      });
      expect(fast[0]).not.toEqual(fast[1]);
    } finally {
      model.dispose();
    }
  }, 60_000);

  it("evaluates random globals over its encoders' cached activations as running the whole model does, overall and per modality", async () => {
    // Arrange: test chunks each hold one modality, so each modality's figures come from its own examples.
    const model = await TaskModel.create(readTaskFile(example), {});
    try {
      const initial = model.initialParameters();
      const rng = createRng(9);
      const globals = [1, 2].map(() => initial.map((t) => ({ ...t, values: t.values.map((v) => v + 0.5 * (rng() * 2 - 1)) })));
      // Act
      const fast = globals.map((g) => model.evaluate(g));
      const reference = globals.map((g) => model.evaluateUncached(g));
      // Assert
      fast.forEach((metrics, i) => {
        const want = reference[i]!;
        expect(Object.keys(metrics)).toEqual(Object.keys(want));
        for (const [key, value] of Object.entries(want)) {
          if (key.endsWith('.loss')) expect(Math.abs(metrics[key]! - value)).toBeLessThan(1e-5);
          else expect(metrics[key]).toBe(value);
        }
      });
      expect(Object.keys(fast[0]!)).toContain('eval.text.loss');
      expect(fast[0]!['eval.loss']).not.toBeCloseTo(fast[1]!['eval.loss']!, 3);
    } finally {
      model.dispose();
    }
  }, 60_000);

  it('lists every file clients fetch with the SHA-256 of its bytes', () => {
    const { spec, onDisk } = describeTaskFiles(readTaskFile(example));
    expect(spec.classes).toEqual(['circle', 'square', 'triangle', 'cross', 'ring']);
    expect(spec.encoders?.image?.files.map((f) => f.path)).toEqual(['image/model.json', 'image/weights.bin']);
    expect(spec.inputs?.image).toMatchObject({ height: 32, width: 32, channels: 3 });
    for (const file of [...spec.encoders!.image!.files, ...spec.encoders!.text!.files, spec.vocabulary!]) {
      const bytes = readFileSync(onDisk.get(file.path)!);
      expect(file.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(file.bytes).toBe(bytes.byteLength);
    }
  });
});

describe('a bad custom task folder is refused with TASK_INVALID naming what is wrong', () => {
  it('a missing weight file', async () => {
    const dir = variant((d) => unlinkSync(join(d, 'encoders', 'image', 'weights.bin')));
    const r = await refusal(dir);
    expect(r.code).toBe('TASK_INVALID');
    expect(r.issues[0]).toMatch(/^model\.encoders\.image\.path: cannot read .*encoders\/image\/weights\.bin: ENOENT/);
  });

  it('a model.json that is not JSON', async () => {
    const dir = variant((d) => writeFileSync(join(d, 'encoders', 'text', 'model.json'), '{"modelTopology": '));
    const r = await refusal(dir);
    expect(r.issues[0]).toMatch(/^model\.encoders\.text\.path: .*encoders\/text\/model\.json is not JSON/);
  });

  it('an encoder whose input does not match the input spec', async () => {
    const dir = variant((d) => editYaml(d, 'height: 32, width: 32', 'height: 28, width: 28'));
    const r = await refusal(dir);
    expect(r.issues[0]).toMatch(/^model\.encoders\.image\.path: .*takes input \[32, 32, 3\]; the task's input spec gives \[28, 28, 3\]/);
  });

  it('an adapter on a layer that cannot take one, naming the layer', async () => {
    const dir = variant((d) => editYaml(d, 'adapters: [mix, hidden, embedding]', 'adapters: [conv_a, hidden]'));
    const r = await refusal(dir);
    expect(r.issues[0]).toMatch(/^model\.encoders\.image\.adapters: .*Conv2D 'conv_a' must be 1×1/);
  });

  it('an adapter on a layer the encoder does not have', async () => {
    const dir = variant((d) => editYaml(d, 'adapters: [hidden, embedding]', 'adapters: [dense_7]'));
    const r = await refusal(dir);
    expect(r.issues[0]).toMatch(/^model\.encoders\.text\.adapters: .*has no layer 'dense_7'/);
  });

  it('a class in the data that the task does not list', async () => {
    const dir = variant((d) => {
      mkdirSync(join(d, 'data', 'probe', 'image', 'hexagon'));
      writeFileSync(join(d, 'data', 'probe', 'image', 'hexagon', '000.png'), encodePng(32, 32, new Uint8Array(32 * 32 * 3)));
    });
    const r = await refusal(dir);
    expect(r.issues[0]).toMatch(/^dataset\.probe\.image: .*hexagon\/000\.png: folder "hexagon" is not one of the task's classes/);
  });

  it('a label in the text data that the task does not list', async () => {
    const dir = variant((d) => {
      const csv = join(d, 'data', 'test', 'text', 'text.csv');
      writeFileSync(csv, `${readFileSync(csv, 'utf8')}a blue hexagon,hexagon\n`);
    });
    const r = await refusal(dir);
    expect(r.issues.some((i) => /^dataset\.test\.text: .*text\.csv:\d+.*hexagon/.test(i))).toBe(true);
  });

  it('a word-vector table with a ragged row', async () => {
    const dir = variant((d) => writeFileSync(join(d, 'vocabulary.txt'), 'red 1 2\nblue 3\n'));
    const r = await refusal(dir);
    expect(r.issues[0]).toMatch(/^model\.encoders\.text\.vocabulary: .*vocabulary\.txt:2: 'blue' has 1 values, the first row 2/);
  });

  it('a custom base without classes, or an encoder for a modality the task does not list', () => {
    const dir = variant((d) => {
      editYaml(d, /^classes: .*$/m, '');
      editYaml(d, 'modalities: [image, text]', 'modalities: [image]');
    });
    const err = (() => {
      try {
        readTaskFile(dir);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(isCoordinatorError(err, 'TASK_INVALID')).toBe(true);
    const issues = (err as { issues: string[] }).issues;
    expect(issues).toContain("classes: required with model.base 'custom'");
    expect(issues).toContain('model.encoders.text: dataset.modalities does not list text');
  });

  it('and the coordinator stores nothing of it', async () => {
    const dir = variant((d) => unlinkSync(join(d, 'encoders', 'text', 'weights.bin')));
    const store = new MemoryStore();
    const err = await startCoordinator({ tasks: [{ config: readTaskFile(dir) }], store, logger: pino({ level: 'silent' }), processMetrics: false }).catch(
      (e: unknown) => e,
    );
    expect(isCoordinatorError(err, 'TASK_INVALID')).toBe(true);
    expect(store.listTasks()).toEqual([]);
  });
});
