/**
 * The coordinator process the benchmark measures (bench/coordinator.ts starts it): one task, a
 * SQLite store in a temporary folder, connection limits raised for thousands of clients behind one
 * address, the log written to a file at `logLevel` (default `info`, as `pnpm start` runs). Three kinds
 * of task:
 *
 *   default         the demo task (tasks/demo-digits.yaml, its upload encoding and norm bound) with
 *                   FedAvg and no server-side model: the demo model's real adapter layout, read from
 *                   `initialGlobalFile` (codec bytes the benchmark wrote; bench/demoAdapters.ts), else
 *                   the synthetic layout of `defaultInitialGlobal`. RSS and CPU are the coordinator's
 *                   own: sockets, validation, aggregation, checkpoints — not TF.js.
 *   withModel       the demo task as shipped (FedMM-X trust over FedAvg) with its real TaskModel — TF.js
 *                   on WASM, pretrained encoders, GloVe, a probe of every candidate and an evaluation of
 *                   every new global model — in the evaluator process as `pnpm start` runs it, or with
 *                   `inlineModel` in this process (the layout before the evaluator process).
 *   taskFile        a task file read as `pnpm start` reads it, with neither a model nor an initial
 *                   global given, so startCoordinator decides what to start (the evaluator or not).
 *
 * In the first two only the round sizes and timings are overridden.
 *
 *   tsx bench/coordinatorProcess.ts '{"clientsPerRound":100,"rounds":1000,"dataDir":"/tmp/x"}'
 *
 * Prints `BENCH_READY {url, joinToken, adminToken, taskId}` once listening, then:
 *   BENCH_ROUND {serverRound, clients, cpuUs, criticalPathMs, criticalPathUs}  when round r's start
 *       has gone to its last client: cpuUs is process.cpuUsage() (user + system, µs) at that moment;
 *       criticalPathMs is the time from the receipt of round r − 1's last accepted upload to that
 *       moment (null for the first round), and criticalPathUs the same interval as [from, to] on the
 *       monotonic clock in µs (process.hrtime, the clock of V8 CPU profiles). Receipt is when
 *       socket.io hands the parsed upload to its handlers (a per-socket middleware); "sent" is when
 *       the round start is handed to the last socket's transport (an outgoing-packet listener) —
 *       both observed from outside the engine.
 *   BENCH_PROBE {p99Ms, maxMs, meanMs, probeMs, candidates}  after each probe (withModel): this
 *       process's event-loop delay (perf_hooks.monitorEventLoopDelay, 10 ms resolution) during it.
 *   BENCH_PROFILE {path, fromRound, toRound}  with `profileRounds`: a V8 CPU profile (the profiler
 *       `node --cpu-prof` uses, through node:inspector) of exactly those rounds, written to `path`.
 * Exits on SIGTERM.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { decodeUpdate } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
// Module by module rather than the package index, which also exports the TF.js-backed TaskModel.
import { EvaluatorPool } from '../src/model/evaluatorPool.js';
import { EvaluatorProcess, inProcessEvaluator } from '../src/model/taskEvaluator.js';
import type { TaskEvaluator } from '../src/model/taskEvaluator.js';
import { startCoordinator } from '../src/server.js';
import type { TaskSetup } from '../src/server.js';
import { SqliteStore } from '../src/store/sqliteStore.js';
import { parseTask, readTaskFile } from '../src/task/loadTask.js';

/** What bench/coordinator.ts passes as the one argument (JSON). */
export interface CoordinatorProcessConfig {
  readonly clientsPerRound: number;
  readonly rounds: number;
  readonly dataDir: string;
  readonly withModel?: boolean;
  readonly inlineModel?: boolean;
  /** Codec bytes (a model message) of the initial global: the demo model's adapters. */
  readonly initialGlobalFile?: string;
  /** Start from this task file as `pnpm start` does (no model or initial global given). */
  readonly taskFile?: string;
  /** pino level of the log file (default `info`). */
  readonly logLevel?: string;
  /** Evaluator processes sharing the probe (model/evaluatorPool.ts), with `withModel` (default 1). */
  readonly probeProcesses?: number;
  /** startCoordinator's `probeOnArrival` (its default when absent). */
  readonly probeOnArrival?: boolean;
  /** The task's `admission.similarityDamping` (the demo task's, on, when absent). */
  readonly similarityDamping?: boolean;
  /** startCoordinator's `evaluatorIdleMs` (its default when absent). */
  readonly evaluatorIdleMs?: number;
  /** Profile the rounds from the start of `fromRound` to the start of `toRound`, written to `path`. */
  readonly profileRounds?: { readonly fromRound: number; readonly toRound: number; readonly path: string };
}

const ELD_RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
loopDelay.enable();

/** `model` with its probe timed: the event-loop delay histogram covers exactly each probe round. */
function timedProbes(model: TaskEvaluator): TaskEvaluator {
  const probeRound: TaskEvaluator['probeRound'] = async (global, deltas) => {
    loopDelay.reset();
    const started = performance.now();
    try {
      return await model.probeRound(global, deltas);
    } finally {
      const probeMs = performance.now() - started;
      // One more turn of the loop, so a probe that blocked it has its delay recorded.
      await new Promise((r) => setTimeout(r, ELD_RESOLUTION_MS + 1));
      const ms = (ns: number) => Number((ns / 1e6).toFixed(1));
      process.stdout.write(
        `BENCH_PROBE ${JSON.stringify({ p99Ms: ms(loopDelay.percentile(99)), maxMs: ms(loopDelay.max), meanMs: ms(loopDelay.mean), probeMs: Number(probeMs.toFixed(0)), candidates: deltas.length })}\n`,
      );
    }
  };
  // Every other member is the model's own, bound to it, whatever the interface holds.
  return new Proxy(model, {
    get(target, property) {
      if (property === 'probeRound') return probeRound;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const config = JSON.parse(process.argv[2] ?? '{}') as CoordinatorProcessConfig;
const demoTaskFile = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'tasks', 'demo-digits.yaml');
const overrides = {
  id: 'bench',
  rounds: config.rounds,
  clientsPerRound: config.clientsPerRound,
  minClients: config.clientsPerRound,
  overSelection: 0,
  waitingRoomMs: 0,
  roundDeadlineMs: config.withModel ? 300_000 : 60_000,
  maxRoundAttempts: 1000,
  // The demo's runs go on forever; a benchmark measures one.
  runs: 'once',
};
const demo = parseYaml(readFileSync(demoTaskFile, 'utf8')) as Record<string, unknown>;
// The benchmark's clients all share one address and solve no proof of work: new identities cost nothing here.
const freeIdentities = {
  admission: {
    ...(demo['admission'] as Record<string, unknown>),
    proofOfWorkBits: 0,
    newIdentitiesPerAddress: null,
    newIdentitiesPerTask: null,
    ...(config.similarityDamping === undefined ? {} : { similarityDamping: config.similarityDamping }),
  },
};
const task = config.taskFile
  ? readTaskFile(config.taskFile)
  : parseTask({ ...demo, ...overrides, ...freeIdentities, ...(config.withModel ? {} : { strategy: { name: 'fedavg' } }) }, 'demo-digits.yaml');
const store = new SqliteStore({ path: join(config.dataDir, 'bench.db') });
const logger = pino({ level: config.logLevel ?? 'info' }, pino.destination({ dest: join(config.dataDir, 'coordinator.log'), sync: false }));

function readInitialGlobal(path: string): Tensor[] {
  const bytes = new Uint8Array(readFileSync(path));
  return decodeUpdate(bytes, { maxBytes: bytes.byteLength }).tensors;
}

let setup: TaskSetup;
if (config.taskFile) {
  setup = { config: task, joinToken: 'bench-join' };
} else if (config.withModel) {
  const model = config.inlineModel
    ? inProcessEvaluator(await (await import('../src/model/taskModel.js')).TaskModel.create(task))
    : // What startCoordinator builds by itself without `model`, as `pnpm start` does.
      (config.probeProcesses ?? 1) > 1
      ? await EvaluatorPool.start(task, config.probeProcesses!, { logger })
      : await EvaluatorProcess.start(task, { logger });
  setup = { config: task, joinToken: 'bench-join', model: timedProbes(model) };
} else {
  const initial = config.initialGlobalFile ? readInitialGlobal(config.initialGlobalFile) : null;
  setup = {
    config: task,
    joinToken: 'bench-join',
    model: null,
    ...(initial ? { initialGlobal: () => initial.map((t) => ({ ...t, values: t.values.slice() })) } : {}),
  };
}

const coordinator = await startCoordinator({
  tasks: [setup],
  store,
  adminToken: 'bench-admin',
  logger,
  retryDelayMs: 10,
  ...(config.evaluatorIdleMs === undefined ? {} : { evaluatorIdleMs: config.evaluatorIdleMs }),
  ...(config.probeOnArrival === undefined ? {} : { probeOnArrival: config.probeOnArrival }),
  rateLimits: {
    connections: { capacity: 100_000, refillPerSecond: 100_000 },
    messages: { capacity: 1000, refillPerSecond: 1000 },
    uploads: { capacity: 100, refillPerSecond: 100 },
  },
});

// Round timing, observed at the socket layer: receipt of each accepted upload, hand-off of each round
// start. Times are µs on the monotonic clock, as V8's profiler stamps its samples.
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const lastAcceptedAt = new Map<number, number>();
let sending: { serverRound: number; clients: number; lastAt: number } | null = null;
let profiler: Session | null = null;

function noteAccepted(serverRound: number, receivedAt: number): void {
  lastAcceptedAt.set(serverRound, Math.max(lastAcceptedAt.get(serverRound) ?? 0, receivedAt));
}

function noteRoundStartSent(serverRound: number): void {
  const now = nowUs();
  if (sending === null || sending.serverRound !== serverRound) {
    sending = { serverRound, clients: 0, lastAt: now };
    // One broadcast hands the start to every socket in one synchronous loop: report once it is over.
    queueMicrotask(roundStartSent);
  }
  sending.clients++;
  sending.lastAt = now;
}

function roundStartSent(): void {
  if (sending === null) return;
  const { serverRound, clients, lastAt } = sending;
  sending = null;
  const cpu = process.cpuUsage();
  const previous = lastAcceptedAt.get(serverRound - 1);
  lastAcceptedAt.delete(serverRound - 1);
  const criticalPathMs = previous === undefined ? null : (lastAt - previous) / 1000;
  const criticalPathUs = previous === undefined ? null : [previous, lastAt];
  process.stdout.write(`BENCH_ROUND ${JSON.stringify({ serverRound, clients, cpuUs: cpu.user + cpu.system, criticalPathMs, criticalPathUs })}\n`);
  void profileAt(serverRound);
}

async function profileAt(serverRound: number): Promise<void> {
  const plan = config.profileRounds;
  if (!plan) return;
  if (serverRound === plan.fromRound && profiler === null) {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
    await profiler.post('Profiler.start');
  } else if (serverRound === plan.toRound && profiler !== null) {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = null;
    writeFileSync(plan.path, JSON.stringify(profile));
    process.stdout.write(`BENCH_PROFILE ${JSON.stringify({ path: plan.path, fromRound: plan.fromRound, toRound: plan.toRound })}\n`);
  }
}

coordinator.io.on('connection', (socket) => {
  socket.use((packet, next) => {
    const ack = packet[packet.length - 1];
    if (packet[0] === 'submitUpdate' && typeof ack === 'function') {
      const receivedAt = nowUs();
      packet[packet.length - 1] = (res: { ok: boolean; serverRound?: number }) => {
        if (res.ok && res.serverRound !== undefined) noteAccepted(res.serverRound, receivedAt);
        (ack as (res: unknown) => void)(res);
      };
    }
    next();
  });
  socket.onAnyOutgoing((event: string, payload: { serverRound?: number }) => {
    if (event === 'roundStart' && payload.serverRound !== undefined) noteRoundStartSent(payload.serverRound);
  });
});

process.stdout.write(`BENCH_READY ${JSON.stringify({ url: coordinator.url, joinToken: 'bench-join', adminToken: 'bench-admin', taskId: task.id })}\n`);
process.on('SIGTERM', () => {
  void coordinator.close().then(() => {
    store.close();
    logger.flush();
    process.exit(0);
  });
});
