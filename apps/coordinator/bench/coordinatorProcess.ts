/**
 * The coordinator process the benchmark measures (bench/coordinator.ts starts it): one task, a
 * SQLite store in a temporary folder, connection limits raised for thousands of clients behind one
 * address, FedAvg, and the synthetic adapter layout of `defaultInitialGlobal` (3 modalities, 3,322
 * scalars) with no server-side model, so RSS and round time are the coordinator's own: sockets,
 * validation, aggregation, checkpoints — not TF.js.
 *
 *   tsx bench/coordinatorProcess.ts '{"clientsPerRound":100,"rounds":1000,"dataDir":"/tmp/x"}'
 *
 * Prints `BENCH_READY {url, joinToken, adminToken}` once listening; exits on SIGTERM.
 */
import { join } from 'node:path';
import { pino } from 'pino';
// Module by module rather than the package index, which also exports the TF.js-backed TaskModel.
import { startCoordinator } from '../src/server.js';
import { SqliteStore } from '../src/store/sqliteStore.js';
import { parseTask } from '../src/task/loadTask.js';

interface ChildConfig {
  readonly clientsPerRound: number;
  readonly rounds: number;
  readonly dataDir: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const task = parseTask({
  id: 'bench',
  dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
  model: { base: 'chorus-digits-v1', adapterRank: 4, adapterAlpha: 8, namConcepts: 8 },
  strategy: { name: 'fedavg' },
  rounds: config.rounds,
  clientsPerRound: config.clientsPerRound,
  minClients: config.clientsPerRound,
  overSelection: 0,
  waitingRoomMs: 0,
  roundDeadlineMs: 60_000,
  maxRoundAttempts: 1000,
  localEpochs: 1,
  batchSize: 32,
  learningRate: 0.01,
  uploadEncoding: 'fp32',
  maxUpdateBytes: 1_000_000,
  seed: 1,
});
const store = new SqliteStore({ path: join(config.dataDir, 'bench.db') });
const coordinator = await startCoordinator({
  tasks: [{ config: task, joinToken: 'bench-join', model: null }],
  store,
  adminToken: 'bench-admin',
  logger: pino({ level: 'warn' }),
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
