/**
 * A custom task end to end without a browser: `pnpm task create`'s folder for an audio + text task,
 * served by a real coordinator, its spec and files read over HTTP with the join token (and refused
 * without it), and a headless simulation whose clients fetch the task's encoders, check them, train
 * on their own files and finish every round while the coordinator evaluates on the task's test data.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourcesFromDirectory } from '@chorus/datasets/node';
import { createTaskModelFactory, fetchTaskSource, isClientError, loadOwnTaskData, splitByModality } from '@chorus/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeExampleTask } from '../task/exampleTask.js';
import type { ExampleTask } from '../task/exampleTask.js';
import { readTaskFile } from '../task/loadTask.js';
import { describeTaskFiles } from '../task/taskFiles.js';
import { checkTask } from './task.js';
import { runSimulation } from './simulate.js';

let root = '';
let example: ExampleTask;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'chorus-custom-sim-'));
  example = await writeExampleTask(join(root, 'talk'), {
    id: 'talk',
    modalities: ['audio', 'text'],
    numClients: 2,
    rounds: 2,
    perClass: { probe: 8, test: 4, client: 6 },
  });
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('a custom audio + text task', () => {
  it('passes `pnpm task check`', async () => {
    const summary = await checkTask(example.dir);
    expect(summary).toMatchObject({ ok: true, taskId: 'talk', base: 'custom', modalities: ['text', 'audio'], probeExamples: 40, files: 5 });
    expect(summary.adapterValues).toBeGreaterThan(0);
  }, 60_000);

  it('runs headless: spec and files over HTTP, clients on their own files, every round evaluated', async () => {
    const task = readTaskFile(example.taskFile);
    const http: { status: number; code?: string }[] = [];
    const report = await runSimulation({
      task,
      numClients: 2,
      ownData: join(example.dir, 'clients'),
      testExamples: 0,
      alongside: async (coordinator) => {
        const url = `${coordinator.url}/api/tasks/talk`;
        const token = coordinator.joinTokens.get('talk')!;
        const stranger = await fetch(`${url}/spec`);
        http.push({ status: stranger.status, code: ((await stranger.json()) as { error: { code: string } }).error.code });
        const source = await fetchTaskSource({ url: coordinator.url, taskId: 'talk', token });
        expect(source.spec.classes).toHaveLength(5);
        for (const file of source.spec.encoders!.audio!.files) expect(sha(await source.fetchFile(file.path))).toBe(file.sha256);
        const missing = await fetch(`${url}/files/audio/other.bin`, { headers: { authorization: `Bearer ${token}` } });
        http.push({ status: missing.status });
        const escape = await fetch(`${url}/files/..%2F..%2Ftask.yaml`, { headers: { authorization: `Bearer ${token}` } });
        http.push({ status: escape.status });
      },
    });
    expect(http).toEqual([{ status: 401, code: 'AUTH_REQUIRED' }, { status: 404 }, { status: 404 }]);
    expect(report.status).toBe('finished');
    expect(report.completedRounds).toBe(2);
    expect(report.clients.map((c) => c.outcome)).toEqual(['finished', 'finished']);
    for (const round of report.rounds) {
      expect(round.metrics['numAccepted']).toBe(2);
      expect(round.testAccuracy).toBeGreaterThanOrEqual(0);
      expect(typeof round.metrics['eval.audio.accuracy']).toBe('number');
      expect(typeof round.metrics['eval.text.accuracy']).toBe('number');
    }
  }, 240_000);
});

describe("a volunteer's own files and the task's encoders on the client", () => {
  it('an altered encoder file is refused, naming it', async () => {
    const task = readTaskFile(example.taskFile);
    const { spec, onDisk } = describeTaskFiles(task);
    const models = createTaskModelFactory({
      spec,
      fetchFile: async (path) => {
        const bytes = new Uint8Array(await readFile(onDisk.get(path)!));
        if (path.endsWith('weights.bin')) bytes[bytes.length - 1]! ^= 0xff;
        return bytes;
      },
    });
    try {
      const err = await models
        .create({ modalities: ['audio'], numClasses: 5, adapterRank: 4, namConcepts: 6, namHiddenUnits: 8, learningRate: 0.01, seed: 1 })
        .catch((e: unknown) => e);
      expect(isClientError(err) && err.code).toBe('CLIENT_MODEL_MISMATCH');
      expect((err as Error).message).toMatch(/audio\/weights\.bin has SHA-256 [0-9a-f]{64}, the task declares/);
    } finally {
      models.dispose();
    }
  });

  it('files of a class the task does not list are left out with a message naming them', async () => {
    const { spec } = describeTaskFiles(readTaskFile(example.taskFile));
    const files = splitByModality(await sourcesFromDirectory(example.clientDirs[0]!)).audio!;
    const renamed = files.map((f, i) => (i === 0 ? { ...f, path: f.path.replace(/^[a-z]+\//, 'hexagon/') } : f));
    const own = await loadOwnTaskData(spec, 'audio', renamed, null);
    expect(own.dataset.numExamples).toBe(files.length - 1);
    expect(own.skipped).toHaveLength(1);
    expect(own.skipped[0]!.message).toMatch(/^hexagon\/000\.wav: folder "hexagon" is not one of the task's classes/);
    const none = await loadOwnTaskData(spec, 'audio', [renamed[0]!], null).catch((e: unknown) => e);
    expect(isClientError(none) && none.code).toBe('CLIENT_DATASET');
    expect((none as Error).message).toMatch(/none of the 1 audio files fits task talk \(first refusal: hexagon\/000\.wav/);
  });
});
