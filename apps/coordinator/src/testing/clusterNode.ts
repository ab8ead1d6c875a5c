/**
 * A cluster node for tests and benchmarks, started in this process: the synthetic test task (no
 * server-side model) or a task file, on one Redis. Kept apart from the clients' fixtures
 * (clusterFixture.ts), so that a node process (clusterNodeProcess.ts) loads what a coordinator node
 * loads and nothing more.
 */
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { TaskConfig } from '@chorus/protocol';
import { connectCluster } from '../cluster/cluster.js';
import type { ClusterNode } from '../cluster/cluster.js';
import { defaultInitialGlobal, startCoordinator } from '../server.js';
import type { Coordinator, RateLimitOptions } from '../server.js';
import { parseTask, readTaskFile } from '../task/loadTask.js';
import type { TaskEvaluator } from '../model/taskEvaluator.js';

export const JOIN_TOKEN = 'cluster-join-secret';
export const ADMIN_TOKEN = 'cluster-admin-secret';

/** The test task: FedAvg over image+text adapters of the demo's sizes, no server-side model. */
export function clusterTask(overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'cluster',
    dataset: { name: 'digits', modalities: ['image', 'text'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 4,
    clientsPerRound: 6,
    minClients: 6,
    overSelection: 0,
    roundDeadlineMs: 20_000,
    waitingRoomMs: 0,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 1 << 20,
    normBound: 1000,
    seed: 7,
    ...overrides,
    // Every client comes from one address without proof of work, and the scripted clients upload
    // constant deltas (parallel to one another), which similarity damping would take for copies.
    admission: {
      newIdentitiesPerAddress: null,
      newIdentitiesPerTask: null,
      proofOfWorkBits: 0,
      similarityDamping: false,
      ...(overrides['admission'] as object | undefined),
    },
  });
}

/** What a node process is started with (as JSON in `CHORUS_NODE_CONFIG`). */
export interface NodeConfig {
  readonly redisUrl: string;
  readonly nodeId: string;
  /** Overrides of the test task, or of the task file's fields with `taskFile`. */
  readonly task: Record<string, unknown>;
  /** Serve this task file (its real model in an evaluator process) instead of the synthetic test task. */
  readonly taskFile?: string;
  readonly leaseTtlMs?: number;
  readonly reconcileMs?: number;
  readonly relayTimeoutMs?: number;
  readonly logLevel?: string;
  /** Socket rate limits (benchmarks open thousands of connections from one address). */
  readonly rateLimits?: Partial<RateLimitOptions>;
  /** Run as a single node on SQLite instead (`redisUrl` unused): the baseline of cluster benchmarks. */
  readonly single?: boolean;
  /** startCoordinator's `probeOnArrival` (its default when absent). */
  readonly probeOnArrival?: boolean;
}

/** Starts one node in this process (`model`: the task's server-side model, in place of none). */
export async function startNode(
  config: NodeConfig,
  logger: Logger = pino({ level: config.logLevel ?? 'silent' }),
  model?: TaskEvaluator,
): Promise<{ coordinator: Coordinator; cluster: ClusterNode; close(): Promise<void> }> {
  const cluster = await connectCluster({
    url: config.redisUrl,
    nodeId: config.nodeId,
    logger,
    ...(config.leaseTtlMs !== undefined ? { leaseTtlMs: config.leaseTtlMs } : {}),
    ...(config.reconcileMs !== undefined ? { reconcileMs: config.reconcileMs } : {}),
    ...(config.relayTimeoutMs !== undefined ? { relayTimeoutMs: config.relayTimeoutMs } : {}),
  });
  const task = config.taskFile ? parseTask({ ...readTaskFile(config.taskFile), ...config.task }) : clusterTask(config.task);
  const coordinator = await startCoordinator({
    tasks: [{ config: task, joinToken: JOIN_TOKEN, ...(model ? { model } : config.taskFile ? {} : { initialGlobal: defaultInitialGlobal(task) }) }],
    store: cluster.store,
    cluster,
    adminToken: ADMIN_TOKEN,
    logger,
    retryDelayMs: 50,
    processMetrics: false,
    ...(config.rateLimits ? { rateLimits: config.rateLimits } : {}),
    ...(config.probeOnArrival === undefined ? {} : { probeOnArrival: config.probeOnArrival }),
  });
  return {
    coordinator,
    cluster,
    async close() {
      await coordinator.close();
      await cluster.close();
    },
  };
}
