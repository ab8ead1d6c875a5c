/**
 * The coordinator process the benchmark measures (bench/coordinator.ts starts it): one task, a
 * SQLite store in a temporary folder, connection limits raised for thousands of clients behind one
 * address. By default: FedAvg and the synthetic adapter layout of `defaultInitialGlobal`
 * (3 modalities, 3,322 scalars) with no server-side model, so RSS and round time are the
 * coordinator's own: sockets, validation, aggregation, checkpoints — not TF.js. With
 * `"withModel": true`: the demo task (tasks/demo-digits.yaml: FedMM-X trust over FedAvg) with its
 * real TaskModel — TF.js on WASM, pretrained encoders, GloVe, a probe of every candidate and an
 * evaluation of every new global model — only the round sizes and timings overridden. The model
 * runs in the coordinator's evaluator process, as `pnpm start` runs it, or with `"inlineModel": true`
 * in this process, on its event loop (the layout before the evaluator process, for comparison).
 *
 *   tsx bench/coordinatorProcess.ts '{"clientsPerRound":100,"rounds":1000,"dataDir":"/tmp/x","withModel":false}'
 *
 * Prints `BENCH_READY {url, joinToken, adminToken}` once listening, then after each round's probe
 * `BENCH_PROBE {p99Ms, maxMs, meanMs, probeMs, candidates}`: this process's event-loop delay
 * (perf_hooks.monitorEventLoopDelay, 10 ms resolution) while that probe was running. Exits on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
// Module by module rather than the package index, which also exports the TF.js-backed TaskModel.
import { EvaluatorProcess, inProcessEvaluator } from '../src/model/taskEvaluator.js';
import type { TaskEvaluator } from '../src/model/taskEvaluator.js';
import { startCoordinator } from '../src/server.js';
import { SqliteStore } from '../src/store/sqliteStore.js';
import { parseTask } from '../src/task/loadTask.js';

interface ChildConfig {
  readonly clientsPerRound: number;
  readonly rounds: number;
  readonly dataDir: string;
  readonly withModel?: boolean;
  readonly inlineModel?: boolean;
}

const ELD_RESOLUTION_MS = 10;
const loopDelay = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
loopDelay.enable();

/** `model` with its probe timed: the event-loop delay histogram covers exactly each probe round. */
function timedProbes(model: TaskEvaluator): TaskEvaluator {
  return {
    modalities: model.modalities,
    probeLabels: model.probeLabels,
    initialParameters: () => model.initialParameters(),
    probeRound: async (global, deltas) => {
      loopDelay.reset();
      const started = performance.now();
      try {
        return await model.probeRound(global, deltas);
      } finally {
        const probeMs = performance.now() - started;
        // One more turn of the loop, so a probe that blocked it has its delay recorded.
        await new Promise((r) => setTimeout(r, ELD_RESOLUTION_MS + 1));
        const ms = (ns: number) => Number((ns / 1e6).toFixed(1));
        process.stdout.write(`BENCH_PROBE ${JSON.stringify({ p99Ms: ms(loopDelay.percentile(99)), maxMs: ms(loopDelay.max), meanMs: ms(loopDelay.mean), probeMs: Number(probeMs.toFixed(0)), candidates: deltas.length })}\n`);
      }
    },
    evaluate: (p) => model.evaluate(p),
    rootUpdate: (g) => model.rootUpdate(g),
    exportMerged: (p) => model.exportMerged(p),
    exportAdapters: (p) => model.exportAdapters(p),
    close: () => model.close(),
  };
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const overrides = {
  id: 'bench',
  rounds: config.rounds,
  clientsPerRound: config.clientsPerRound,
  minClients: config.clientsPerRound,
  overSelection: 0,
  waitingRoomMs: 0,
  roundDeadlineMs: config.withModel ? 300_000 : 60_000,
  maxRoundAttempts: 1000,
  uploadEncoding: 'fp32',
};
const task = config.withModel
  ? parseTask({ ...(parseYaml(readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '..', 'tasks', 'demo-digits.yaml'), 'utf8')) as object), ...overrides }, 'demo-digits.yaml')
  : parseTask({
      ...overrides,
      dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
      model: { base: 'chorus-digits-v1', adapterRank: 4, adapterAlpha: 8, namConcepts: 8 },
      strategy: { name: 'fedavg' },
      localEpochs: 1,
      batchSize: 32,
      learningRate: 0.01,
      maxUpdateBytes: 1_000_000,
      seed: 1,
    });
const store = new SqliteStore({ path: join(config.dataDir, 'bench.db') });
const logger = pino({ level: 'warn' });
const model = !config.withModel
  ? null
  : config.inlineModel
    ? inProcessEvaluator(await (await import('../src/model/taskModel.js')).TaskModel.create(task))
    : // What startCoordinator builds by itself without `model`, as `pnpm start` does.
      await EvaluatorProcess.start(task, { logger });
const coordinator = await startCoordinator({
  tasks: [{ config: task, joinToken: 'bench-join', model: model ? timedProbes(model) : null }],
  store,
  adminToken: 'bench-admin',
  logger,
  retryDelayMs: 10,
  processMetrics: false,
  rateLimits: {
    connections: { capacity: 100_000, refillPerSecond: 100_000 },
    messages: { capacity: 1000, refillPerSecond: 1000 },
    uploads: { capacity: 100, refillPerSecond: 100 },
  },
});
process.stdout.write(`BENCH_READY ${JSON.stringify({ url: coordinator.url, joinToken: 'bench-join', adminToken: 'bench-admin' })}\n`);
process.on('SIGTERM', () => {
  void coordinator.close().then(() => {
    store.close();
    process.exit(0);
  });
});
