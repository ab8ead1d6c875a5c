/**
 * A cluster node as its own process, for tests and benchmarks (clusterFixture.ts's NodeProcess):
 * reads its {@link NodeConfig} from `CHORUS_NODE_CONFIG`, starts, and prints `NODE_READY <url>`.
 * SIGTERM closes it (releasing its leases); SIGKILL is a crash.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defaultInitialGlobal, startCoordinator } from '../server.js';
import { SqliteStore } from '../store/sqliteStore.js';
import type { NodeConfig } from './clusterNode.js';
import { ADMIN_TOKEN, JOIN_TOKEN, clusterTask, startNode } from './clusterNode.js';

const config = JSON.parse(process.env['CHORUS_NODE_CONFIG'] ?? '{}') as NodeConfig;

/** The single-node baseline: the same task on SQLite, no Redis. */
async function startSingle(): Promise<{ coordinator: { url: string }; close(): Promise<void> }> {
  const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'chorus-node-')), 'coordinator.db') });
  const task = clusterTask(config.task);
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: JOIN_TOKEN, initialGlobal: defaultInitialGlobal(task) }],
    store,
    adminToken: ADMIN_TOKEN,
    logger: pino({ level: config.logLevel ?? 'silent' }),
    retryDelayMs: 50,
    processMetrics: false,
    ...(config.rateLimits ? { rateLimits: config.rateLimits } : {}),
  });
  return {
    coordinator,
    async close() {
      await coordinator.close();
      store.close();
    },
  };
}

const node = config.single ? await startSingle() : await startNode(config);
process.stdout.write(`NODE_READY ${node.coordinator.url}\n`);
process.on('SIGTERM', () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
