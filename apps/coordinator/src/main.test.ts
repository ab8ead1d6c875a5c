import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FedAdam, encodeUpdate } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeGlobal, sha256HexSync } from './engine/roundEngine.js';
import { writeExampleTask } from './task/exampleTask.js';
import { FakeClient, constantDelta, globalOf } from './testing/fakeClient.js';
import type { ParsedRoundStart } from '@chorus/protocol';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const children: ChildProcess[] = [];
const clients: FakeClient[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// FedAdam keeps moments between rounds: a resume that lost them would produce other weights.
const TASK_YAML = `
id: crash
dataset: { name: digits, modalities: [image] }
model: { base: chorus-digits-v1, adapterRank: 2, adapterAlpha: 4, namConcepts: 4 }
strategy: { name: fedadam, serverLearningRate: 0.05 }
evaluation: { probeExamples: 8, testExamples: 16 }
rounds: 3
clientsPerRound: 2
minClients: 2
overSelection: 0
roundDeadlineMs: 30000
localEpochs: 1
batchSize: 8
learningRate: 0.1
maxUpdateBytes: 200000
seed: 3
# The scripted clients' deltas are parallel: similarity damping would take them for copies.
admission: { similarityDamping: false }
`;

// FedAFD's whole family at its smallest: four client kinds, a server with image, text and audio
// encoders (D = 32, a public batch of 16), two rounds.
const FEDAFD_YAML = `
id: afd
dataset: { name: digits, modalities: [image, text, audio] }
strategy: { name: fedafd }
representation:
  dim: 32
  publicBatch: 16
  server: { hiddenUnits: 16, imageFilters: [4, 8], textFilters: 16, audioFilters: [4, 8], learningRate: 0.01 }
  clientKinds:
    - { kind: image-classifier, arch: cnn, share: 0.25 }
    - { kind: text-classifier, arch: bag-mlp, share: 0.25 }
    - { kind: image-text-retrieval, arch: cnn+bag-mlp, share: 0.25 }
    - { kind: audio-text-retrieval, arch: pool-mlp+conv1d, share: 0.25 }
evaluation: { testExamples: 16 }
rounds: 2
clientsPerRound: 4
minClients: 4
overSelection: 0
roundDeadlineMs: 120000
localEpochs: 1
batchSize: 8
learningRate: 0.01
maxUpdateBytes: 200000
seed: 5
admission: { proofOfWorkBits: 0, probationRounds: 0, newIdentitiesPerAddress: null }
`;

/** Starts `src/main.ts` as a separate process and resolves with what its ready line says. */
function launch(dataDir: string, taskFile: string, extraArgs: readonly string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const args = ['--import', 'tsx', 'src/main.ts', '--task', taskFile, '--data-dir', dataDir, '--port', '0', '--log-level', 'warn', ...extraArgs];
  const child = spawn(process.execPath, args, {
    cwd: packageRoot,
    env: { ...process.env, CHORUS_ADMIN_TOKEN: 'admin-secret', CHORUS_JOIN_TOKENS: 'crash=join-secret,afd=join-secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^CHORUS_READY (.+)$/m.exec(out);
      if (m) resolvePromise({ child, url: (JSON.parse(m[1]!) as { url: string }).url });
    });
    child.once('exit', (code) => reject(new Error(`coordinator exited with ${code}: ${err}`)));
  });
}

/** Runs `main.ts` with `args` until it exits (a refusal at start-up): its exit status and standard error. */
async function runToExit(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolvePromise) => child.once('exit', resolvePromise));
  return { code, stderr };
}

async function taskState(url: string, taskId = 'crash'): Promise<{ completedRounds: number; globalHash: string }> {
  const res = await fetch(`${url}/api/tasks/${taskId}`, { headers: { authorization: 'Bearer admin-secret' } });
  const body = (await res.json()) as { task: { engine: { completedRounds: number; globalHash: string } } };
  return body.task.engine;
}

async function taskStatus(url: string, taskId: string): Promise<string> {
  const res = await fetch(`${url}/api/tasks/${taskId}`, { headers: { authorization: 'Bearer admin-secret' } });
  return ((await res.json()) as { task: { status: string } }).task.status;
}

async function roundMetrics(url: string, taskId: string): Promise<{ serverRound: number; metrics: Record<string, number> }[]> {
  const res = await fetch(`${url}/api/tasks/${taskId}/metrics`, { headers: { authorization: 'Bearer admin-secret' } });
  return ((await res.json()) as { metrics: { serverRound: number; metrics: Record<string, number> }[] }).metrics;
}

/** Stops a coordinator process as Ctrl-C would (its demo clients with it) and waits for it to exit. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

describe('coordinator process', () => {
  it('resumes FedAdam after SIGKILL mid-round with byte-identical weights', async () => {
    // Arrange: a coordinator process completes round 1, then is killed while round 2 is half uploaded.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-crash-'));
    dirs.push(dir);
    const taskFile = join(dir, 'task.yaml');
    writeFileSync(taskFile, TASK_YAML);
    const first = await launch(join(dir, 'data'), taskFile);
    const a = await FakeClient.connect(first.url, { taskId: 'crash', token: 'join-secret' });
    const b = await FakeClient.connect(first.url, { taskId: 'crash', token: 'join-secret' });
    clients.push(a, b);
    await a.hello({ backend: 'cpu', modalities: ['image'], numExamples: 5 });
    await b.hello({ backend: 'cpu', modalities: ['image'], numExamples: 5 });
    const [ra, rb] = await Promise.all([a.roundStarts.next(10_000, 'round 1'), b.roundStarts.next(10_000, 'round 1')]);
    await a.submitDelta(ra, constantDelta(globalOf(ra), ['image'], 0.25), 1);
    await b.submitDelta(rb, constantDelta(globalOf(rb), ['image'], -0.5), 1);
    const end1 = await a.roundEnds.next(10_000, 'round 1 end');
    const r2 = await a.roundStarts.next(10_000, 'round 2');
    expect((await a.submitDelta(r2, constantDelta(globalOf(r2), ['image'], 1), 1)).ok).toBe(true);

    // Act
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const second = await launch(join(dir, 'data'), taskFile);
    const state = await taskState(second.url);

    // Assert: round 1's model is back, byte for byte; round 2 runs again and completes.
    expect(end1.status).toBe('completed');
    expect(state).toMatchObject({ completedRounds: 1, globalHash: end1.globalHash });
    const a2 = await FakeClient.connect(second.url, { taskId: 'crash', token: 'join-secret', clientId: a.clientId!, clientSecret: a.clientSecret! });
    const b2 = await FakeClient.connect(second.url, { taskId: 'crash', token: 'join-secret', clientId: b.clientId!, clientSecret: b.clientSecret! });
    clients.push(a2, b2);
    await a2.hello({ backend: 'cpu', modalities: ['image'], numExamples: 5 });
    await b2.hello({ backend: 'cpu', modalities: ['image'], numExamples: 5 });
    const [s2a, s2b] = await Promise.all([a2.roundStarts.next(10_000, 'round 2 again'), b2.roundStarts.next(10_000, 'round 2 again')]);
    expect(s2a).toMatchObject({ serverRound: 2, attempt: 2, globalHash: end1.globalHash });
    await a2.submitDelta(s2a, constantDelta(globalOf(s2a), ['image'], 1), 1);
    await b2.submitDelta(s2b, constantDelta(globalOf(s2b), ['image'], 1), 1);
    const end2 = await a2.roundEnds.next(10_000, 'round 2 end');
    expect(end2).toMatchObject({ status: 'completed', serverRound: 2 });
    // The same two rounds through one uninterrupted FedAdam give the very same bytes.
    const reference = new FedAdam({ serverLearningRate: 0.05, beta1: 0.9, beta2: 0.99, tau: 1e-9 });
    const g0 = globalOf(ra);
    const deltas = (g: Tensor[], a: number, b: number) => [
      { clientId: 'a', numExamples: 1, delta: constantDelta(g, ['image'], a) },
      { clientId: 'b', numExamples: 1, delta: constantDelta(g, ['image'], b) },
    ];
    const g1 = reference.aggregateFit(1, g0, deltas(g0, 0.25, -0.5), [])!.parameters;
    const g2 = reference.aggregateFit(2, g1, deltas(g1, 1, 1), [])!.parameters;
    expect(sha256HexSync(encodeGlobal('crash', 1, g1))).toBe(end1.globalHash);
    expect(sha256HexSync(encodeGlobal('crash', 2, g2))).toBe(end2.globalHash);
    second.child.kill('SIGTERM');
  });

  it('runs a FedAFD task to the end with demo clients of all four kinds (at least one per kind, more than asked)', async () => {
    // Arrange
    const dir = mkdtempSync(join(tmpdir(), 'chorus-afd-demo-'));
    dirs.push(dir);
    const taskFile = join(dir, 'afd.yaml');
    writeFileSync(taskFile, FEDAFD_YAML);
    // Act: two demo clients asked for, with 16 examples each; a lone `--` as `pnpm start -- …` passes it.
    const { child, url } = await launch(join(dir, 'data'), taskFile, ['--', '--demo-clients', '2', '--demo-max-examples', '16']);
    const deadline = Date.now() + 200_000;
    while ((await taskStatus(url, 'afd')) !== 'finished' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    const metrics = await roundMetrics(url, 'afd');
    await stop(child);
    // Assert: both rounds aggregated one upload of each kind (a kind is the modalities its upload carries).
    expect(metrics.map((m) => m.serverRound)).toEqual([1, 2]);
    for (const { metrics: m } of metrics) {
      expect(m['numAccepted']).toBe(4);
      for (const kind of ['image', 'text', 'image+text', 'text+audio']) expect(m[`kind.${kind}.clients`], kind).toBe(1);
      for (const key of ['server.i2tR1', 'server.t2iR1', 'server.a2tR1', 'server.t2aR1']) expect(m[key], key).toBeGreaterThanOrEqual(0);
    }
  }, 240_000);

  it('resumes a FedAFD task after SIGKILL mid-round from its last committed round: server weights, round, metrics', async () => {
    // Arrange: an image client and a speech–caption client; round 1 completes, round 2 is half uploaded.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-afd-crash-'));
    dirs.push(dir);
    const taskFile = join(dir, 'afd.yaml');
    writeFileSync(taskFile, FEDAFD_YAML.replace('clientsPerRound: 4\nminClients: 4', 'clientsPerRound: 2\nminClients: 2'));
    const holds = [['image'], ['text', 'audio']] as const;
    const upload = (c: FakeClient, start: ParsedRoundStart, modalities: readonly string[], scale: number) =>
      c.submitBytes(
        start,
        encodeUpdate({
          kind: 'representations',
          taskId: 'afd',
          round: start.serverRound,
          clientId: c.clientId!,
          encoding: 'fp16',
          tensors: modalities.map((m, j) => ({
            name: `rep/${m}`,
            shape: [16, 32],
            values: Float32Array.from({ length: 16 * 32 }, (_, i) => scale * Math.sin(i * 0.37 + j)),
          })),
        }),
        { numExamples: 10 },
      );
    const first = await launch(join(dir, 'data'), taskFile);
    const fakes = await Promise.all(holds.map(() => FakeClient.connect(first.url, { taskId: 'afd', token: 'join-secret' })));
    clients.push(...fakes);
    for (const [i, c] of fakes.entries()) await c.hello({ backend: 'cpu', modalities: [...holds[i]!], numExamples: 10 });
    const r1 = await Promise.all(fakes.map((c) => c.roundStarts.next(60_000, 'round 1')));
    for (const [i, c] of fakes.entries()) expect((await upload(c, r1[i]!, holds[i]!, 0.2)).ok).toBe(true);
    const end1 = await fakes[0]!.roundEnds.next(60_000, 'round 1 end');
    const r2 = await Promise.all(fakes.map((c) => c.roundStarts.next(60_000, 'round 2')));
    const metrics1 = await roundMetrics(first.url, 'afd');
    expect((await upload(fakes[0]!, r2[0]!, holds[0]!, 0.3)).ok).toBe(true);

    // Act
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const second = await launch(join(dir, 'data'), taskFile);
    const state = await taskState(second.url, 'afd');
    const metricsAfter = await roundMetrics(second.url, 'afd');
    const again = await Promise.all(
      fakes.map((c) => FakeClient.connect(second.url, { taskId: 'afd', token: 'join-secret', clientId: c.clientId!, clientSecret: c.clientSecret! })),
    );
    clients.push(...again);
    for (const [i, c] of again.entries()) await c.hello({ backend: 'cpu', modalities: [...holds[i]!], numExamples: 10 });
    const r2again = await Promise.all(again.map((c) => c.roundStarts.next(60_000, 'round 2 again')));
    for (const [i, c] of again.entries()) expect((await upload(c, r2again[i]!, holds[i]!, 0.3)).ok).toBe(true);
    const end2 = await again[0]!.roundEnds.next(60_000, 'round 2 end');
    const metrics2 = await roundMetrics(second.url, 'afd');
    await stop(second.child);

    // Assert: round 1's global (server weights and round 2's public representations) is back byte for byte,
    // with its metrics; round 2 runs again on it, over the same public batch, and completes. (The server step
    // depends on the global alone — fedAfdServer.test.ts — so round 2 gives what an uninterrupted run gives.)
    expect(end1.status).toBe('completed');
    expect(state).toMatchObject({ completedRounds: 1, globalHash: end1.globalHash });
    expect(metricsAfter).toEqual(metrics1);
    expect(metrics1.map((m) => m.serverRound)).toEqual([1]);
    expect(metrics1[0]!.metrics['server.a2tR1']).toBeGreaterThanOrEqual(0);
    expect(r2again[0]).toMatchObject({ serverRound: 2, attempt: 2, globalHash: end1.globalHash });
    expect(r2again[0]!.config.representation!.publicIndices).toEqual(r2[0]!.config.representation!.publicIndices);
    expect(end2).toMatchObject({ status: 'completed', serverRound: 2 });
    expect(end2.globalHash).not.toBe(end1.globalHash);
    expect(metrics2.map((m) => m.serverRound)).toEqual([1, 2]);
    expect(metrics2[0]).toEqual(metrics1[0]);
    expect(metrics2[1]!.metrics['numAccepted']).toBe(2);
  }, 240_000);

  it('serves a task created from the dashboard again after a restart, under the same join link', async () => {
    // Arrange: a coordinator on a data dir; a researcher creates a custom task through the admin API.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-created-'));
    dirs.push(dir);
    const taskFile = join(dir, 'crash.yaml');
    writeFileSync(taskFile, TASK_YAML);
    const example = await writeExampleTask(join(dir, 'source'), {
      id: 'made',
      modalities: ['text'],
      numClients: 1,
      perClass: { probe: 4, test: 2, client: 1 },
    });
    const task = parse(readFileSync(example.taskFile, 'utf8')) as Record<string, unknown>;
    task['evaluation'] = { probeExamples: 8, testExamples: 0 };
    const files = ['encoders/text/model.json', 'encoders/text/weights.bin', 'vocabulary.txt', 'data/probe/text/text.csv'].map((path) => ({
      path,
      base64: readFileSync(join(example.dir, path)).toString('base64'),
    }));
    const first = await launch(join(dir, 'data'), taskFile);
    const created = await fetch(`${first.url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-secret', 'content-type': 'application/json' },
      body: JSON.stringify({ task, files }),
    });
    expect(created.status).toBe(201);
    const { joinToken } = (await created.json()) as { joinToken: string };
    await stop(first.child);

    // Act: start again on the same data dir, with only the task file on the command line.
    const second = await launch(join(dir, 'data'), taskFile);
    const spec = await fetch(`${second.url}/api/tasks/made/spec`, { headers: { authorization: `Bearer ${joinToken}` } });
    const status = await taskStatus(second.url, 'made');
    await stop(second.child);

    // Assert: the created task is served, with the join token it was created with.
    expect(spec.status).toBe(200);
    expect(((await spec.json()) as { classes: string[] }).classes).toHaveLength(5);
    expect(status).toBe('waiting');
  }, 120_000);

  it('refuses a bad task file with exit status 1 and a message naming the file, line and path', async () => {
    // Arrange: an alias that expands past what a task file may hold, deep in the strategy.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-badtask-'));
    dirs.push(dir);
    const taskFile = join(dir, 'bomb.yaml');
    const laughs = [
      '    l0: &l0 [a, a, a, a, a, a, a, a, a, a]',
      ...Array.from({ length: 6 }, (_, i) => `    l${i + 1}: &l${i + 1} [${Array.from({ length: 10 }, () => `*l${i}`).join(', ')}]`),
    ];
    writeFileSync(
      taskFile,
      TASK_YAML.replace('strategy: { name: fedadam, serverLearningRate: 0.05 }', `strategy:\n  name: fedadam\n  laughs:\n${laughs.join('\n')}`),
    );
    // Act
    const { code, stderr } = await runToExit(['--task', taskFile, '--data-dir', join(dir, 'data'), '--port', '0']);
    // Assert: 15 nodes before l0, then 11 + 111 + 1111; inside l3 the 8th copy of l2 (1111 nodes) passes 10 000.
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `TASK_INVALID: ${taskFile}:11:49: strategy.laughs.l3[7]: alias *l2 expands to 1111 nodes, taking the document past the 10000 a task file may hold`,
    );
  });

  it('refuses a heap cap under 64 MB with exit status 1, naming the flag', async () => {
    const { code, stderr } = await runToExit(['--heap-mb', '12', '--port', '0']);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe("coordinator failed to start: --heap-mb must be an integer ≥ 64 (MB), got '12'");
  });
});
