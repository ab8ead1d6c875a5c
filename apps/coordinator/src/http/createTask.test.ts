/**
 * `POST /api/tasks`: a researcher creates a custom task on a running coordinator from a task object
 * and its files; it is checked like a task folder, written under the tasks folder, stored, started
 * and served to join-token holders. A refused task (bad schema, a class the task does not list, a
 * taken id, a stranger) gets a coded answer and leaves nothing on disk or in the store.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../server.js';
import type { Coordinator } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { JOIN_TOKEN_FILE } from '../task/createTask.js';
import { encodePng, writeExampleTask } from '../task/exampleTask.js';
import { parseTask } from '../task/loadTask.js';

const ADMIN = 'admin-secret';
let root = '';
let tasksDir = '';
let store: MemoryStore;
let coordinator: Coordinator;
/** The example task as the form would send it: the task object and every file but the volunteers'. */
let body: { task: Record<string, unknown>; files: { path: string; base64: string }[] };

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'chorus-create-'));
  tasksDir = join(root, 'tasks');
  const example = await writeExampleTask(join(root, 'source'), {
    id: 'made',
    modalities: ['image', 'text'],
    numClients: 1,
    perClass: { probe: 4, test: 2, client: 1 },
  });
  const task = parse(readFileSync(example.taskFile, 'utf8')) as Record<string, unknown>;
  task['evaluation'] = { probeExamples: 16, testExamples: 20 };
  body = {
    task,
    files: filesUnder(example.dir)
      .map((p) => relative(example.dir, p).split(sep).join('/'))
      .filter((p) => p !== 'task.yaml' && !p.startsWith('clients/'))
      .map((p) => ({ path: p, base64: readFileSync(join(example.dir, p)).toString('base64') })),
  };
  store = new MemoryStore();
  const existing = parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 3,
    clientsPerRound: 2,
    minClients: 2,
    roundDeadlineMs: 10_000,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 8_000_000,
  });
  coordinator = await startCoordinator({
    tasks: [{ config: existing, initialGlobal: () => [tensor('image/w', [2], new Float32Array([1, 2]))] }],
    store,
    adminToken: ADMIN,
    logger: pino({ level: 'silent' }),
    processMetrics: false,
    tasksDir,
  });
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
  rmSync(root, { recursive: true, force: true });
});

async function post(payload: unknown, token = ADMIN): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${coordinator.url}/api/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('POST /api/tasks', () => {
  it('refuses a stranger and a join-token holder', async () => {
    expect((await post(body, 'not-the-admin')).status).toBe(403);
    const res = await fetch(`${coordinator.url}/api/tasks`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(existsSync(join(tasksDir, 'made'))).toBe(false);
  });

  it('refuses a task the schema refuses, naming every problem, and keeps nothing', async () => {
    const bad = { ...body, task: { ...body.task, rounds: 0, classes: ['circle'] } };
    const { status, json } = await post(bad);
    expect(status).toBe(400);
    const error = json['error'] as { code: string; issues: string[] };
    expect(error.code).toBe('TASK_INVALID');
    expect(error.issues).toEqual(expect.arrayContaining([expect.stringMatching(/^rounds: /), expect.stringMatching(/^classes: /)]));
    expect(existsSync(join(tasksDir, 'made'))).toBe(false);
    expect(store.getTask('made')).toBeUndefined();
  });

  it('refuses data in a class the task does not list, once the folder is checked, and keeps nothing', async () => {
    const odd = { path: 'data/probe/image/hexagon/000.png', base64: Buffer.from(encodePng(32, 32, new Uint8Array(32 * 32 * 3))).toString('base64') };
    const { status, json } = await post({ ...body, files: [...body.files, odd] });
    expect(status).toBe(400);
    const error = json['error'] as { code: string; issues: string[] };
    expect(error.code).toBe('TASK_INVALID');
    expect(error.issues.join('\n')).toMatch(/dataset\.probe\.image: .*hexagon\/000\.png: folder "hexagon" is not one of the task's classes/);
    expect(existsSync(join(tasksDir, 'made'))).toBe(false);
    expect(store.getTask('made')).toBeUndefined();
    expect(coordinator.engines.has('made')).toBe(false);
  }, 60_000);

  it('refuses a path that leaves the task folder', async () => {
    const { status, json } = await post({ ...body, files: [{ path: '../escape.txt', base64: '' }] });
    expect(status).toBe(400);
    expect((json['error'] as { code: string }).code).toBe('BAD_REQUEST');
    expect(existsSync(join(root, 'escape.txt'))).toBe(false);
  });

  it('creates, stores, starts and serves a good task; its id is then taken', async () => {
    const { status, json } = await post(body);
    expect(status).toBe(201);
    expect(json['taskId']).toBe('made');
    const joinToken = json['joinToken'] as string;
    expect(json['joinPath']).toBe(`/join?task=made&token=${joinToken}`);
    expect(store.getTask('made')?.status).toBe('waiting');
    expect(coordinator.engines.get('made')?.snapshot().status).toBe('waiting');
    expect(readFileSync(join(tasksDir, 'made', JOIN_TOKEN_FILE), 'utf8').trim()).toBe(joinToken);
    expect(statSync(join(tasksDir, 'made', JOIN_TOKEN_FILE)).mode & 0o077).toBe(0);
    // Volunteers read its spec with the join token; the classes are the task's own.
    const spec = (await (await fetch(`${coordinator.url}/api/tasks/made/spec`, { headers: { authorization: `Bearer ${joinToken}` } })).json()) as {
      classes: string[];
    };
    expect(spec.classes).toEqual(['circle', 'square', 'triangle', 'cross', 'ring']);
    const again = await post(body);
    expect(again.status).toBe(409);
    expect((again.json['error'] as { code: string }).code).toBe('TASK_DUPLICATE');
  }, 60_000);
});
