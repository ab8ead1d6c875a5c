/**
 * Cluster tests' and benchmarks' parts: coordinator nodes as real processes (or in this process)
 * on one Redis, serving a task without a server-side model (a synthetic adapter layout), and
 * clients whose every upload is a function of (client id, round) — so a run's global-model hashes
 * depend only on which uploads each round aggregated, never on which node or when they arrived.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { ParsedRoundStart, TaskConfig } from '@chorus/protocol';
import { connectCluster } from '../cluster/cluster.js';
import type { ClusterNode } from '../cluster/cluster.js';
import { defaultInitialGlobal, startCoordinator } from '../server.js';
import type { Coordinator, RateLimitOptions, TaskSetup } from '../server.js';
import { parseTask, readTaskFile } from '../task/loadTask.js';
import { MemoryStore } from '../store/memoryStore.js';
import { hashToken } from '../security/tokens.js';
import { FakeClient, constantDelta, globalOf } from './fakeClient.js';
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

const ENTRY = fileURLToPath(new URL('./clusterNodeProcess.ts', import.meta.url));

/** A node as a child process (tsx); SIGKILL it to crash it. */
export class NodeProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly nodeId: string,
  ) {}

  static async spawn(config: NodeConfig): Promise<NodeProcess> {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = fork(ENTRY, [], {
      execArgv: ['--import', tsx],
      env: { ...process.env, CHORUS_NODE_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`node ${config.nodeId} did not start: ${out.slice(-1000)}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /NODE_READY (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${config.nodeId} exited with ${code}: ${out.slice(-1000)}`));
      });
    });
    return new NodeProcess(child, url, config.nodeId);
  }

  /** Ends the process with `signal` and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}

/** The value every tensor of `clientId`'s update in `serverRound` holds: fixed by the two alone. */
export function uploadValue(clientId: string, serverRound: number): number {
  const digest = createHash('sha256').update(`${clientId}/${serverRound}`).digest();
  return (digest.readUInt32BE(0) / 2 ** 32 - 0.5) * 0.01;
}

/** Examples a client claims: fixed by its id, so FedAvg's weights differ between clients. */
export function examplesOf(clientId: string): number {
  return 5 + (createHash('sha256').update(clientId).digest().readUInt8(0) % 20);
}

/**
 * A client that answers every round start with its (client id, round) upload, until the task ends
 * or it is closed. Resumes the identity it is given (created beforehand), so runs compare.
 */
export class ScriptedClient {
  readonly accepted: number[] = [];
  readonly refused: string[] = [];
  /** Each round start received: its round and the hash of the global model it carried. */
  readonly starts: { serverRound: number; globalHash: string }[] = [];
  /** Waited before each upload (a client that trains for a while). */
  uploadDelayMs = 0;
  private closed = false;

  private constructor(
    readonly client: FakeClient,
    readonly clientId: string,
  ) {}

  /** Connects to `url` as a new identity through the join token (the node assigns the id). */
  static async join(url: string, taskId: string): Promise<ScriptedClient> {
    return ScriptedClient.begin(await FakeClient.connect(url, { taskId, token: JOIN_TOKEN }));
  }

  /** Connects to `url` resuming an identity. */
  static async resume(url: string, taskId: string, clientId: string, clientSecret: string): Promise<ScriptedClient> {
    return ScriptedClient.begin(await FakeClient.connect(url, { taskId, token: JOIN_TOKEN, clientId, clientSecret }));
  }

  private static async begin(client: FakeClient): Promise<ScriptedClient> {
    const res = await client.hello({ backend: 'cpu', modalities: ['image', 'text'], numExamples: 10 });
    if (!res.ok) throw new Error(`hello refused: ${res.error.code}`);
    const scripted = new ScriptedClient(client, res.clientId);
    void scripted.loop();
    return scripted;
  }

  /** The secret of the identity (to resume it elsewhere). */
  get clientSecret(): string {
    return this.client.clientSecret!;
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      let round: ParsedRoundStart;
      try {
        round = await this.client.roundStarts.next(500, 'round start');
      } catch {
        continue;
      }
      if (this.closed) return;
      this.starts.push({ serverRound: round.serverRound, globalHash: round.globalHash });
      if (this.uploadDelayMs > 0) await new Promise((r) => setTimeout(r, this.uploadDelayMs));
      if (this.closed) return;
      const delta = constantDelta(globalOf(round), ['image', 'text'], uploadValue(this.clientId, round.serverRound));
      try {
        const ack = await this.client.submitDelta(round, delta, examplesOf(this.clientId));
        if (ack.ok) this.accepted.push(round.serverRound);
        else this.refused.push(ack.error.code);
      } catch (err) {
        this.refused.push((err as Error).message);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }
}

/** Resolves once `check` holds; rejects naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Runs `config` to its end on one node (an in-memory store), with the same identities as `clients`
 * (each resumed there, answering as it did in the cluster): what a cluster's run must equal.
 */
export async function replayOnSingleNode(
  config: TaskConfig,
  clients: readonly ScriptedClient[],
  setup: Pick<TaskSetup, 'model'> & { readonly probeOnArrival?: boolean } = {},
): Promise<{ store: MemoryStore; close(): Promise<void> }> {
  const store = new MemoryStore();
  const single = await startCoordinator({
    tasks: [{ config, joinToken: JOIN_TOKEN, ...(setup.model ? { model: setup.model } : { initialGlobal: defaultInitialGlobal(config) }) }],
    store,
    adminToken: ADMIN_TOKEN,
    logger: pino({ level: 'silent' }),
    retryDelayMs: 50,
    processMetrics: false,
    ...(setup.probeOnArrival === undefined ? {} : { probeOnArrival: setup.probeOnArrival }),
  });
  for (const c of clients)
    store.createClient({ clientId: c.clientId, taskId: config.id, secretHash: hashToken(c.clientSecret), capabilitiesJson: null, createdAt: 1, lastSeenAt: 1 });
  const again: ScriptedClient[] = [];
  const close = async (): Promise<void> => {
    for (const c of again) c.close();
    await single.close();
  };
  try {
    for (const c of clients) again.push(await ScriptedClient.resume(single.url, config.id, c.clientId, c.clientSecret));
    await until('the single node to finish', () => store.getTask(config.id)?.status === 'finished');
  } catch (err) {
    await close();
    throw err;
  }
  return { store, close };
}
