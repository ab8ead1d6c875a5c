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
import type { ParsedRoundStart, TaskConfig } from '@chorus/protocol';
import { DEFAULT_HEAP_MB, withHeapCap } from '../heap.js';
import { defaultInitialGlobal, startCoordinator } from '../server.js';
import type { TaskSetup } from '../server.js';
import { MemoryStore } from '../store/memoryStore.js';
import { hashToken } from '../security/tokens.js';
import { FakeClient, constantDelta, globalOf } from './fakeClient.js';
import { ADMIN_TOKEN, JOIN_TOKEN } from './clusterNode.js';
import type { NodeConfig } from './clusterNode.js';

export { ADMIN_TOKEN, JOIN_TOKEN, clusterTask, startNode } from './clusterNode.js';
export type { NodeConfig } from './clusterNode.js';

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
      // As `pnpm start` runs a node (heap.ts).
      execArgv: withHeapCap(['--import', tsx], DEFAULT_HEAP_MB),
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
