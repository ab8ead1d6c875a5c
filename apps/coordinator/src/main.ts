/**
 * `pnpm start`: runs the coordinator on a data dir with one or more task files.
 *
 *   tsx src/main.ts [--task tasks/demo-digits.yaml]… [--data-dir .chorus-data] [--port 8787]
 *                   [--host 127.0.0.1] [--cors https://a.example,https://b.example] [--log-level info]
 *                   [--web-dir ../web-client/dist] [--datasets-dir <@chorus/datasets data>]
 *                   [--demo-clients 0] [--demo-max-examples 300] [--trust-proxy] [--probe-processes 1]
 *
 * `--probe-processes P` (default 1, at most 16) gives each task whose trust probes candidates
 * (FedMM-X) P evaluator processes that share each round's probe (model/evaluatorPool.ts): on a
 * machine with spare cores the probe, the longest part of such a round's critical path, takes about
 * 1/P of the time. Each process holds the task's whole model (about 200 MB).
 *
 * `--task` also takes a task folder (its `task.yaml`): a researcher's own task (`pnpm task create`).
 * Tasks created from the dashboard (`POST /api/tasks`) are written under `<data-dir>/tasks/` and
 * served again at every start, with the join token kept beside each.
 *
 * Several nodes (cluster/cluster.ts): `--redis redis://127.0.0.1:6379 [--node-id n1]` runs this
 * process as one node of a cluster on that Redis instead of on SQLite; run one per node, each with
 * its own `--port` and the same CHORUS_ADMIN_TOKEN and CHORUS_JOIN_TOKENS; `--lease-ms` (default
 * 10,000) is how long a task's lease lives without renewal; `--compact-entries` (default 10,000; 0:
 * never) is the log length past which the nodes compact the cluster's log. `--nodes N` is the demo
 * of that: it starts `redis-server` (AOF persistence in `<data-dir>/redis/`, port `--redis-port`,
 * default 6390) and N nodes on ports `--port` … `--port`+N−1, with the demo clients spread across
 * them, and prints every node's URL. Cluster nodes take no new tasks from the dashboard.
 *
 * The package's `start` script runs this process with a V8 heap cap of 256 MB (heap.ts: without
 * one, V8 sizes the heap by the machine's memory and a busy node's RSS grows far past its live
 * data); `--nodes N` gives each node it forks the cap `--heap-mb` (default the same 256).
 *
 * `--trust-proxy` keys the per-address quota of new identities on `X-Forwarded-For`: use it only
 * behind a reverse proxy that sets that header.
 *
 * `--demo-clients N` also starts N headless clients (separate processes, `--demo-max-examples`
 * training examples each) on the first task, so rounds run at once; browsers that open the join link
 * take part beside them. On a representation task (FedAFD family) they are of the task's client
 * kinds, at least one of each (demoClients.ts).
 *
 * Through pnpm from the repository root, `pnpm start --task apps/coordinator/tasks/fedafd-digits.yaml`:
 * relative `--task` paths are read from the folder pnpm was started in (`INIT_CWD`), and a lone `--`
 * (`pnpm start -- --task …`) is skipped.
 *
 * The web app's build is served at `/` when its folder exists (build it with the web client's
 * `build` script), and the built-in datasets' artifacts at `/data/…` for browsers to read lazily.
 *
 * Secrets come from the environment, never the command line (which other users can read):
 * CHORUS_ADMIN_TOKEN, and CHORUS_JOIN_TOKENS as `taskId=token,taskId=token`. Missing ones are
 * generated and printed once on stdout (not to the log). A last stdout line `CHORUS_READY {json}`
 * carries the URL and tokens for scripts.
 */
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR } from '@chorus/datasets/node';
import { DIGITS_WEIGHTS_DIR } from '@chorus/models/paths';
import { pino } from 'pino';
import { DEFAULT_COMPACT_ENTRIES, connectCluster } from './cluster/cluster.js';
import { isCoordinatorError } from './errors.js';
import { DEFAULT_HEAP_MB, checkHeapMb, withHeapCap } from './heap.js';
import type { StaticMount } from './http/static.js';
import { startCoordinator } from './server.js';
import { SqliteStore } from './store/sqliteStore.js';
import { readTaskFile } from './task/loadTask.js';
import { JOIN_TOKEN_FILE } from './task/createTask.js';
import type { TaskConfig } from '@chorus/protocol';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseJoinTokens(text: string | undefined): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const pair of (text ?? '').split(',').filter((p) => p.trim().length > 0)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`CHORUS_JOIN_TOKENS: expected taskId=token, got '${pair.slice(0, 20)}…'`);
    tokens.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return tokens;
}

/** The task files `--task` names, read from the folder pnpm was started in; the demo task when none. */
function taskFilesOf(given: readonly string[] | undefined): string[] {
  return given?.map((file) => resolve(process.env['INIT_CWD'] ?? '.', file)) ?? [join(packageRoot, 'tasks', 'demo-digits.yaml')];
}

/** The tasks a dashboard created earlier under `tasksDir`: each folder's task file and stored join token. */
function createdTasks(tasksDir: string): { config: TaskConfig; joinToken: string }[] {
  if (!existsSync(tasksDir)) return [];
  return readdirSync(tasksDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(tasksDir, e.name, JOIN_TOKEN_FILE)))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((e) => ({
      config: readTaskFile(join(tasksDir, e.name)),
      joinToken: readFileSync(join(tasksDir, e.name, JOIN_TOKEN_FILE), 'utf8').trim(),
    }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    // pnpm passes the `--` of `pnpm start -- --task …` on; it separates nothing here.
    args: process.argv.slice(2).filter((arg) => arg !== '--'),
    options: {
      task: { type: 'string', multiple: true },
      'data-dir': { type: 'string', default: '.chorus-data' },
      port: { type: 'string', default: process.env['PORT'] ?? '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      cors: { type: 'string', default: '' },
      'log-level': { type: 'string', default: 'info' },
      'web-dir': { type: 'string', default: join(packageRoot, '..', 'web-client', 'dist') },
      'datasets-dir': { type: 'string', default: DEFAULT_DATA_DIR },
      'demo-clients': { type: 'string', default: '0' },
      'demo-max-examples': { type: 'string', default: '300' },
      'trust-proxy': { type: 'boolean', default: false },
      redis: { type: 'string' },
      'lease-ms': { type: 'string', default: '10000' },
      'compact-entries': { type: 'string', default: String(DEFAULT_COMPACT_ENTRIES) },
      'probe-processes': { type: 'string', default: '1' },
      'node-id': { type: 'string' },
      nodes: { type: 'string', default: '1' },
      'redis-port': { type: 'string', default: '6390' },
      'heap-mb': { type: 'string', default: String(DEFAULT_HEAP_MB) },
    },
  });
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new Error(`--nodes must be an integer in [1, 16], got '${values.nodes}'`);
  // Checked whatever --nodes says, though only the nodes --nodes forks take it.
  const heapMb = checkHeapMb(values['heap-mb'], '--heap-mb');
  if (nodes > 1) return runClusterDemo(nodes, heapMb, values);
  const demoClients = Number(values['demo-clients']);
  if (!Number.isInteger(demoClients) || demoClients < 0 || demoClients > 64)
    throw new Error(`--demo-clients must be an integer in [0, 64], got '${values['demo-clients']}'`);
  const demoMaxExamples = Number(values['demo-max-examples']);
  if (!Number.isInteger(demoMaxExamples) || demoMaxExamples < 1)
    throw new Error(`--demo-max-examples must be an integer ≥ 1, got '${values['demo-max-examples']}'`);
  const logger = pino({ level: values['log-level'] });
  // `pnpm start` runs this in the package folder; paths typed on its command line are the caller's.
  const taskFiles = taskFilesOf(values.task);
  const tasks = taskFiles.map((file) => readTaskFile(file));
  const joinTokens = parseJoinTokens(process.env['CHORUS_JOIN_TOKENS']);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer in [0, 65535], got '${values.port}'`);

  const dataDir = resolve(values['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  // Tasks created from the dashboard live in the data dir, each with its join token beside it.
  const tasksDir = join(dataDir, 'tasks');
  for (const created of createdTasks(tasksDir)) {
    if (tasks.some((t) => t.id === created.config.id)) continue;
    tasks.push(created.config);
    if (!joinTokens.has(created.config.id)) joinTokens.set(created.config.id, created.joinToken);
  }
  const leaseTtlMs = Number(values['lease-ms']);
  if (!Number.isInteger(leaseTtlMs) || leaseTtlMs < 500) throw new Error(`--lease-ms must be an integer ≥ 500, got '${values['lease-ms']}'`);
  const compactEntries = Number(values['compact-entries']);
  if (!Number.isInteger(compactEntries) || compactEntries < 0) {
    throw new Error(`--compact-entries must be an integer ≥ 0 (0: never compact), got '${values['compact-entries']}'`);
  }
  const probeProcesses = Number(values['probe-processes']);
  if (!Number.isInteger(probeProcesses) || probeProcesses < 1 || probeProcesses > 16)
    throw new Error(`--probe-processes must be an integer in [1, 16], got '${values['probe-processes']}'`);
  const cluster = values.redis
    ? await connectCluster({ url: values.redis, ...(values['node-id'] ? { nodeId: values['node-id'] } : {}), leaseTtlMs, compactEntries, logger })
    : null;
  const store = cluster ? cluster.store : new SqliteStore({ path: join(dataDir, 'coordinator.db') });
  const webDir = resolve(values['web-dir']);
  // The pretrained demo encoders, so browser clients start from the same base as the coordinator.
  const staticMounts: StaticMount[] = [
    { prefix: '/data/', root: resolve(values['datasets-dir']) },
    { prefix: '/weights/', root: DIGITS_WEIGHTS_DIR },
  ];
  const serveWeb = existsSync(join(webDir, 'index.html'));
  if (serveWeb) staticMounts.push({ prefix: '/', root: webDir, spaFallback: true });
  const coordinator = await startCoordinator({
    tasks: tasks.map((config) => ({ config, joinToken: joinTokens.get(config.id) })),
    store,
    host: values.host,
    port,
    adminToken: process.env['CHORUS_ADMIN_TOKEN'] || undefined,
    corsOrigins: values.cors
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    logger,
    staticMounts,
    // A task written to one node's folder would be unknown to the others.
    ...(cluster ? { cluster } : { tasksDir }),
    trustProxy: values['trust-proxy'],
    probeProcesses,
  });

  const joinLink = (taskId: string, token: string): string => `${coordinator.url}/join?task=${encodeURIComponent(taskId)}&token=${encodeURIComponent(token)}`;
  const lines = [
    '',
    `Chorus coordinator listening on ${coordinator.url}`,
    cluster ? `  cluster      node ${cluster.nodeId} on ${values.redis}` : `  data dir     ${dataDir}`,
    `  web app      ${serveWeb ? webDir : `not built (${webDir} has no index.html); the API and /data/ are served`}`,
    `  dashboard    ${coordinator.url}/dashboard`,
    `  admin token  ${coordinator.adminToken}   (Authorization: Bearer …; set CHORUS_ADMIN_TOKEN to keep it)`,
    ...[...coordinator.joinTokens].map(([taskId, token]) => `  join link    ${taskId}: ${joinLink(taskId, token)}`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(
    `CHORUS_READY ${JSON.stringify({
      url: coordinator.url,
      dashboardUrl: `${coordinator.url}/dashboard`,
      adminToken: coordinator.adminToken,
      joinTokens: Object.fromEntries(coordinator.joinTokens),
      joinLinks: Object.fromEntries([...coordinator.joinTokens].map(([taskId, token]) => [taskId, joinLink(taskId, token)])),
    })}\n`,
  );

  // Imported only when asked for: the clients' runtime loads TF.js, which a coordinator without demo clients never needs.
  const stopDemoClients =
    demoClients > 0
      ? (await import('./demoClients.js')).startDemoClients(
          tasks[0]!,
          coordinator.joinTokens.get(tasks[0]!.id)!,
          { url: coordinator.url, numClients: demoClients, maxExamples: demoMaxExamples },
          logger,
        )
      : undefined;

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    stopDemoClients?.();
    coordinator
      .close()
      .then(() => (cluster ? cluster.close() : store.close()))
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

/**
 * `--nodes N`: redis-server and N coordinator nodes as child processes sharing one admin token and
 * one join token per task, the demo clients spread across the nodes. Ends them all on SIGINT/SIGTERM.
 */
async function runClusterDemo(nodes: number, heapMb: number, values: Record<string, string | boolean | string[] | undefined>): Promise<void> {
  const port = Number(values['port']);
  const redisPort = Number(values['redis-port']);
  if (!Number.isInteger(redisPort) || redisPort < 1 || redisPort > 65535) throw new Error(`--redis-port must be a port, got '${String(values['redis-port'])}'`);
  const dataDir = resolve(String(values['data-dir']));
  const redisDir = join(dataDir, 'redis');
  mkdirSync(redisDir, { recursive: true });
  const children: ChildProcess[] = [];
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--save', ''], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(redis);
  redis.once('error', (err) => {
    process.stderr.write(`could not run redis-server (install the redis-server package): ${err.message}\n`);
    process.exit(1);
  });
  const taskFiles = taskFilesOf(values['task'] as string[] | undefined);
  const tasks = taskFiles.map((file) => readTaskFile(file));
  const joinTokens = parseJoinTokens(process.env['CHORUS_JOIN_TOKENS']);
  for (const t of tasks) if (!joinTokens.has(t.id)) joinTokens.set(t.id, randomBytes(24).toString('base64url'));
  const env = {
    ...process.env,
    CHORUS_ADMIN_TOKEN: process.env['CHORUS_ADMIN_TOKEN'] || randomBytes(24).toString('base64url'),
    CHORUS_JOIN_TOKENS: [...joinTokens].map(([id, token]) => `${id}=${token}`).join(','),
  };
  const demoClients = Number(values['demo-clients']);
  const urls: string[] = [];
  for (let i = 0; i < nodes; i++) {
    const args = [
      ...taskFiles.flatMap((f) => ['--task', f]),
      '--redis',
      `redis://127.0.0.1:${redisPort}`,
      '--node-id',
      `node${i + 1}`,
      '--lease-ms',
      String(values['lease-ms']),
      '--compact-entries',
      String(values['compact-entries']),
      '--probe-processes',
      String(values['probe-processes']),
      '--port',
      String(port + i),
      '--host',
      String(values['host']),
      '--data-dir',
      join(dataDir, `node${i + 1}`),
      '--log-level',
      String(values['log-level']),
      ...(values['trust-proxy'] ? ['--trust-proxy'] : []),
    ];
    const child = fork(fileURLToPath(import.meta.url), args, {
      execArgv: withHeapCap(process.execArgv, heapMb),
      env: { ...env, INIT_CWD: process.cwd() },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    children.push(child);
    const ready = await new Promise<{ url: string }>((resolveReady, reject) => {
      let out = '';
      let started = false;
      child.stdout!.on('data', (chunk: Buffer) => {
        // Once a node is up, its log goes to this process's stdout.
        if (started) return void process.stdout.write(chunk);
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.startsWith('CHORUS_READY '));
        if (!line) return;
        started = true;
        resolveReady(JSON.parse(line.slice('CHORUS_READY '.length)) as { url: string });
      });
      child.once('exit', (code) => reject(new Error(`node ${i + 1} exited with ${code}`)));
    });
    urls.push(ready.url);
  }
  const joinLinks = Object.fromEntries(
    tasks.map((t) => [t.id, urls.map((u) => `${u}/join?task=${encodeURIComponent(t.id)}&token=${encodeURIComponent(joinTokens.get(t.id)!)}`)]),
  );
  const lines = [
    '',
    `Chorus cluster: ${nodes} coordinator nodes on redis-server 127.0.0.1:${redisPort} (AOF in ${redisDir})`,
    ...urls.map((u, i) => `  node${i + 1}        ${u}   dashboard ${u}/dashboard`),
    `  admin token  ${env.CHORUS_ADMIN_TOKEN}`,
    ...Object.entries(joinLinks).map(([id, links]) => `  join link    ${id}: ${links[0]}   (any node's URL works)`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`CHORUS_READY ${JSON.stringify({ urls, adminToken: env.CHORUS_ADMIN_TOKEN, joinTokens: Object.fromEntries(joinTokens), joinLinks })}\n`);
  // The demo clients are one federation spread over the nodes: each its own share of the data, whichever node it joins.
  const stopDemoClients =
    demoClients > 0
      ? (await import('./demoClients.js')).startDemoClients(
          tasks[0]!,
          joinTokens.get(tasks[0]!.id)!,
          { url: urls.join(','), numClients: demoClients, maxExamples: Number(values['demo-max-examples']) },
          pino({ level: String(values['log-level']) }),
        )
      : undefined;
  const shutdown = (): void => {
    stopDemoClients?.();
    for (const child of children.slice(1)) child.kill('SIGTERM');
    setTimeout(() => {
      redis.kill('SIGTERM');
      process.exit(0);
    }, 1500);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  if (isCoordinatorError(err)) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`coordinator failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
