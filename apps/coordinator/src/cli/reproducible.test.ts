/**
 * A simulation replays from its command: `simulate … --seed S` run twice holds the same global
 * model (SHA-256 of each round's checkpoint) after every round, and so does a run killed with
 * SIGKILL mid-round and started again on its SQLite store. Each run is a real `simulate` process
 * (6 in-process clients, 3 of them sampled per round, 2 steps on 16 examples each), about 10 s on
 * two cores. What has to hold for that: ids that do not depend on the run (sampling draws from
 * the sorted ids), every client waiting before a round opens, client randomness drawn per round,
 * and aggregation in an order that does not depend on arrival.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqliteStore.js';
import type { SimulationReport } from './simulate.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Half the clients per round, so sampling and each client's own history matter; every invited
// client must upload (minClients = clientsPerRound), so the deadline never decides a cohort.
// FedAvg and no server-side evaluation keep each round short.
const TASK_YAML = `
id: repro
dataset: { name: digits, modalities: [image, text] }
model: { base: chorus-digits-v1, adapterRank: 2, adapterAlpha: 4, namConcepts: 4 }
strategy: { name: fedavg }
evaluation: { probeExamples: 8, testExamples: 0 }
rounds: 3
clientsPerRound: 3
minClients: 3
overSelection: 0
roundDeadlineMs: 120000
localEpochs: 1
batchSize: 8
learningRate: 0.05
uploadEncoding: fp32
maxUpdateBytes: 1048576
seed: 11
`;

let dir: string;
let taskFile: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'chorus-repro-'));
  taskFile = join(dir, 'task.yaml');
  writeFileSync(taskFile, TASK_YAML);
});
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `simulate` on `name`'s data dir with the one command every run of this file shares. */
function simulate(name: string): {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
} {
  const args = ['--task', taskFile, '--clients', '6', '--seed', '5', '--iid', '--max-examples', '16', '--eval-examples', '0', '--test-examples', '0'];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/simulate.ts', ...args, '--data-dir', join(dir, name), '--out', join(dir, `${name}.json`)],
    {
      cwd: packageRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolvePromise) =>
    child.once('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** Runs `simulate` to the end and returns its report. */
async function completeRun(name: string): Promise<SimulationReport> {
  const { code, stderr } = await simulate(name).done;
  expect(code, stderr).toBe(0);
  return JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as SimulationReport;
}

const hashesOf = (report: SimulationReport): string[] => report.rounds.map((r) => r.globalHash);

describe('simulate replays from its command', () => {
  // The uninterrupted run both tests compare with, run once whichever test asks first.
  let referenceRun: Promise<SimulationReport> | undefined;
  const referenceReport = (): Promise<SimulationReport> => (referenceRun ??= completeRun('first'));

  it('holds the same global model after every round when the same command runs twice', async () => {
    // Act
    const reference = await referenceReport();
    const second = await completeRun('second');
    // Assert
    expect(reference.status).toBe('finished');
    expect(hashesOf(reference)).toHaveLength(3);
    expect(new Set(hashesOf(reference)).size).toBe(3);
    expect(hashesOf(second)).toEqual(hashesOf(reference));
    expect(second.rounds.map((r) => r.metrics['numAccepted'])).toEqual([3, 3, 3]);
    // Cohorts differed from round to round, so the ids and the sampling took part in the result.
    expect(new Set(second.clients.map((c) => c.accepted)).size).toBeGreaterThan(1);
    expect(second.clients.map((c) => c.accepted)).toEqual(reference.clients.map((c) => c.accepted));
  }, 120_000);

  it('holds the same global models when a run killed with SIGKILL mid-round is resumed from its store', async () => {
    // Arrange: kill the process as soon as the first update of round 2 is accepted (round 1 is committed, round 2 open).
    const killed = simulate('killed');
    let stdout = '';
    let sent = false;
    killed.child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && /round 2: update accepted/.test(stdout)) sent = killed.child.kill('SIGKILL');
    });
    const { signal, stderr } = await killed.done;
    expect(signal, stderr).toBe('SIGKILL');
    const store = new SqliteStore({ path: join(dir, 'killed', 'coordinator.db') });
    const completedBeforeKill = store.latestCheckpoint('repro')?.serverRound;
    store.close();
    // Act: the same command again, on the same data dir.
    const resumed = await completeRun('killed');
    // Assert
    expect(completedBeforeKill).toBeGreaterThanOrEqual(1);
    expect(completedBeforeKill).toBeLessThan(3);
    expect(resumed.status).toBe('finished');
    expect(hashesOf(resumed)).toEqual(hashesOf(await referenceReport()));
  }, 120_000);
});
