/**
 * HTTP routes: health, Prometheus metrics, and the admin JSON API the dashboard reads.
 *
 *   GET /healthz                                   liveness (no auth)
 *   GET /metrics                                   Prometheus text format (no auth, counters only)
 *   GET /api/tasks                                 every task with its engine state       (admin)
 *   GET /api/tasks/:id                             one task, config included              (admin)
 *   GET /api/tasks/:id/runs                        every run: status, rounds, final hash and metrics (admin)
 *   GET /api/tasks/:id/rounds                      every attempt of every round           (admin)
 *   GET /api/tasks/:id/rounds/:round/updates       verdicts on that round's uploads       (admin)
 *   GET /api/tasks/:id/clients                     pseudonymous clients (no secrets)      (admin)
 *   GET /api/tasks/:id/trust                       T_k per client per round               (admin)
 *   GET /api/tasks/:id/metrics[.json|.csv]         per-round metrics history              (admin)
 *   GET /api/tasks/:id/trust.csv                   the same as CSV                        (admin)
 *   GET /api/tasks/:id/checkpoint                  current global model, codec bytes      (admin)
 *   GET /api/tasks/:id/global                      the same, read-only, with its round (admin or the task's join token)
 *   GET /api/tasks/:id/export/model/model.json     merged TF.js LayersModel (base + adapters) (admin);
 *                                                  a representation task's server encoders, weights by name (format chorus-fedafd-server)
 *   GET /api/tasks/:id/export/model/weights.bin    its weights
 *   GET /api/tasks/:id/export/adapters/model.json  the adapters artifact alone              (admin)
 *   GET /api/tasks/:id/export/adapters/weights.bin its weights
 *  POST /api/tasks                                a new custom task from {task, files} (admin); 201 with its join token
 *   GET /api/tasks/:id/spec                        a custom task's classes, inputs and encoder files with SHA-256 (join token)
 *   GET /api/tasks/:id/files/<path>                one of those files                     (join token)
 *  POST /api/tasks/:id/{start,pause,resume,stop}   researcher control, body empty or {reason} (admin)
 *   GET /api/tasks/:id/invitations                 invitation links (no tokens)           (admin)
 *  POST /api/tasks/:id/invitations                 new link, body {quota?, label?}; 201 with its token, shown once (admin)
 *  POST /api/tasks/:id/invitations/:inv/revoke     revokes it; its identities can no longer join (admin)
 *   anything else                                  static files (web app, /data/…) when mounted
 *
 * A task's history is its current run's; `?run=N` reads run N instead (a past run of a
 * `runs: continuous` task) on rounds, rounds/:round/updates, trust, metrics (and their files) and
 * checkpoint (a past run's final model). A malformed N is 400 `BAD_REQUEST`, an unknown one 404
 * `RUN_NOT_FOUND`.
 *
 * Admin routes need `Authorization: Bearer <admin token>`, compared in constant time; the routes in
 * JOIN_READABLE also accept the task's own join token, which volunteers hold. Errors are
 * JSON `{error: {code, message}}` and never carry a stack trace. A control answers 200 with the
 * task's summary (its new status and the actions that status allows), 409 `TASK_TRANSITION` when the
 * status does not allow the action (nothing changes), 400 `BAD_REQUEST` for a malformed body. `tf.loadLayersModel(url,
 * {requestInit: {headers: {authorization}}})` loads an export directly: model.json names its
 * weights file relative to itself.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Parameters } from '@chorus/fl-core';
import { invitationCreateBodySchema, taskControlBodySchema } from '@chorus/protocol';
import type { TaskAction } from '@chorus/protocol';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import { decodeGlobal } from '../engine/checkpoint.js';
import type { RoundEngine } from '../engine/roundEngine.js';
import { allowedActions, isTaskAction } from '../engine/taskControl.js';
import type { TaskEvaluator } from '../model/taskEvaluator.js';
import { isRepresentationTask } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';
import type { ExportedArtifacts } from '../model/taskModel.js';
import { generateId, generateToken, hashToken, tokenMatchesHash, tokensEqual } from '../security/tokens.js';
import type { CoordinatorStore, InvitationRecord, RoundMetricsRecord, TrustRecord } from '../store/types.js';
import type { CoordinatorMetrics } from './metrics.js';
import { serveStatic } from './static.js';
import type { TaskFiles } from '../task/taskFiles.js';
import { MAX_CREATE_TASK_BODY_BYTES, createTaskBodySchema } from '../task/createTask.js';
import { readMetrics, readRounds, readTrust, readUpdates } from '../store/history.js';
import type { CreateTaskBody } from '../task/createTask.js';
import type { StaticMount } from './static.js';

/** What the HTTP routes read. */
export interface ApiContext {
  readonly store: CoordinatorStore;
  readonly engines: ReadonlyMap<string, RoundEngine>;
  readonly metrics: CoordinatorMetrics;
  readonly adminToken: string;
  /** Origins allowed to call the API from a browser (exact match; '*' allows any). */
  readonly corsOrigins: readonly string[];
  readonly logger: Logger;
  /** The server's model per task, for exports (tasks without one answer 404 NO_MODEL). */
  readonly models?: ReadonlyMap<string, TaskEvaluator>;
  /** Folders served to browsers (web app build, dataset artifacts). */
  readonly staticMounts?: readonly StaticMount[];
  /** Called after an invitation was revoked (the server disconnects the identities it admitted). Must not throw. */
  readonly onInvitationRevoked?: (taskId: string, invitationId: string) => void;
  /** Clock of stored timestamps (default Date.now). */
  readonly now?: () => number;
  /** Each custom task's spec and files (`GET /api/tasks/:id/spec`, `/files/…`). */
  readonly taskFiles?: ReadonlyMap<string, TaskFiles>;
  /** Creates and starts a task (`POST /api/tasks`); absent: the coordinator takes no new tasks. Throws coded errors. */
  readonly createTask?: (body: CreateTaskBody) => Promise<{ readonly taskId: string; readonly joinToken: string }>;
  /** A cluster node's view of the cluster (`GET /api/cluster`); absent on a single node. */
  readonly cluster?: ClusterView;
}

/** What a cluster node tells about the cluster. */
export interface ClusterView {
  readonly nodeId: string;
  /** Every live node: its id and URL (null until it listens). */
  nodes(): Promise<{ readonly nodeId: string; readonly url: string | null }[]>;
  /** The node leading the task, as this node last saw its lease; null when none does. */
  leaderOf(taskId: string): string | null;
  /** The cluster log's length, the last entry its snapshot holds (null before any compaction) and this node's position in it. */
  log(): Promise<{ readonly entries: number; readonly snapshotId: string | null; readonly applied: string }>;
}

/** A task route; `run` is the run `?run=N` asked for (absent: the current run). */
type Handler = (ctx: ApiContext, taskId: string, rest: string[], res: ServerResponse, run?: number) => void | Promise<void>;

/** Exports of the current global model, one per (task, kind), rebuilt when the global hash changes. */
const exportCache = new WeakMap<ApiContext, Map<string, { hash: string; artifacts: Promise<ExportedArtifacts> }>>();

/**
 * The artifacts of the task's current global: the engine's on the node leading the task; on
 * another node of a cluster (or a node serving the task's store without its engine), the latest
 * model its store holds, so that any node serves exports. Null without a server-side model.
 */
function exported(ctx: ApiContext, taskId: string, kind: 'model' | 'adapters'): Promise<ExportedArtifacts> | null {
  const model = ctx.models?.get(taskId);
  if (!model) return null;
  const engine = ctx.engines.get(taskId);
  const checkpoint = engine ? undefined : ctx.store.latestCheckpoint(taskId);
  const hash = engine?.globalHash ?? checkpoint?.sha256;
  if (hash === undefined) return null;
  let cache = exportCache.get(ctx);
  if (!cache) exportCache.set(ctx, (cache = new Map()));
  const key = `${taskId}\u0000${kind}`;
  const hit = cache.get(key);
  if (hit && hit.hash === hash) return hit.artifacts;
  let parameters: Parameters;
  try {
    parameters = engine ? engine.globalParameters : decodeGlobal(checkpoint!.bytes);
  } catch (err) {
    return Promise.reject(new CoordinatorError('CHECKPOINT_CORRUPT', `the latest checkpoint of ${taskId}: ${(err as Error).message}`));
  }
  const artifacts = kind === 'model' ? model.exportMerged(parameters) : model.exportAdapters(parameters);
  cache.set(key, { hash, artifacts });
  // A failed export is not cached.
  artifacts.catch(() => cache.delete(key));
  return artifacts;
}

/** Trust history as CSV: serverRound, clientId, trust. */
export function trustToCsv(rows: readonly TrustRecord[]): string {
  return `serverRound,clientId,trust\r\n${rows.map((r) => [String(r.serverRound), r.clientId, String(r.trust)].map(csvField).join(',')).join('\r\n')}${rows.length > 0 ? '\r\n' : ''}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

/** Metrics history as CSV: serverRound, createdAt, then every metric name seen, sorted. */
export function metricsToCsv(rows: readonly RoundMetricsRecord[]): string {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort();
  const header = ['serverRound', 'createdAt', ...names];
  const lines = [header.map(csvField).join(',')];
  for (const r of rows) {
    lines.push(
      [String(r.serverRound), new Date(r.createdAt).toISOString(), ...names.map((n) => (r.metrics[n] === undefined ? '' : String(r.metrics[n])))]
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

const taskRoutes: Record<string, Handler> = {
  '': (ctx, taskId, _rest, res) => {
    const task = ctx.store.getTask(taskId)!;
    sendJson(res, 200, { task: { ...taskSummary(ctx, taskId), config: JSON.parse(task.configJson) as unknown } });
  },
  runs: (ctx, taskId, rest, res) => {
    if (rest.length !== 0) return sendError(res, 404, 'NOT_FOUND', 'no such route');
    sendJson(res, 200, { runs: ctx.store.listRuns(taskId) });
  },
  rounds: async (ctx, taskId, rest, res, run) => {
    if (rest.length === 0) return sendJson(res, 200, { rounds: await readRounds(ctx.store, taskId, run) });
    const serverRound = Number(rest[0]);
    if (!Number.isInteger(serverRound) || serverRound < 0 || rest[1] !== 'updates' || rest.length !== 2)
      return sendError(res, 404, 'NOT_FOUND', 'no such route');
    sendJson(res, 200, { updates: await readUpdates(ctx.store, taskId, serverRound, run) });
  },
  clients: (ctx, taskId, _rest, res) => {
    const clients = ctx.store.listClients(taskId).map((c) => ({
      clientId: c.clientId,
      capabilities: c.capabilitiesJson === null ? null : (JSON.parse(c.capabilitiesJson) as unknown),
      createdAt: c.createdAt,
      lastSeenAt: c.lastSeenAt,
    }));
    sendJson(res, 200, { clients });
  },
  trust: async (ctx, taskId, _rest, res, run) => sendJson(res, 200, { trust: await readTrust(ctx.store, taskId, run) }),
  metrics: async (ctx, taskId, _rest, res, run) =>
    sendJson(res, 200, { taskId, run: run ?? currentRun(ctx, taskId), metrics: await readMetrics(ctx.store, taskId, run) }),
  'metrics.json': async (ctx, taskId, _rest, res, run) => {
    const text = JSON.stringify(
      { taskId, run: run ?? currentRun(ctx, taskId), metrics: await readMetrics(ctx.store, taskId, run), trust: await readTrust(ctx.store, taskId, run) },
      null,
      2,
    );
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="${fileStem(taskId, run)}-metrics.json"`,
    });
    res.end(text);
  },
  'metrics.csv': async (ctx, taskId, _rest, res, run) => {
    const metrics = await readMetrics(ctx.store, taskId, run);
    res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${fileStem(taskId, run)}-metrics.csv"` });
    res.end(metricsToCsv(metrics));
  },
  'trust.csv': async (ctx, taskId, _rest, res, run) => {
    const trust = await readTrust(ctx.store, taskId, run);
    res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${fileStem(taskId, run)}-trust.csv"` });
    res.end(trustToCsv(trust));
  },
  export: async (ctx, taskId, rest, res) => {
    const [kind, file] = rest;
    if ((kind !== 'model' && kind !== 'adapters') || (file !== 'model.json' && file !== 'weights.bin') || rest.length !== 2) {
      return sendError(res, 404, 'NOT_FOUND', 'no such export (export/{model,adapters}/{model.json,weights.bin})');
    }
    // A representation task (FedAFD family) has no adapters: its model is the server's encoders.
    if (kind === 'adapters' && isRepresentationTask(JSON.parse(ctx.store.getTask(taskId)!.configJson) as TaskConfig))
      return sendError(
        res,
        404,
        'NO_MODEL',
        `task ${taskId} is a representation task: its server model is at export/model/{model.json,weights.bin}, it has no adapters`,
      );
    const artifacts = exported(ctx, taskId, kind);
    if (!artifacts) return sendError(res, 404, 'NO_MODEL', `task ${taskId} has no server-side model to export`);
    let exportedArtifacts: ExportedArtifacts;
    try {
      exportedArtifacts = await artifacts;
    } catch (err) {
      // A stored model that cannot be read (a node exporting from its replica) is said so, not hidden behind INTERNAL.
      if (!isCoordinatorError(err, 'CHECKPOINT_CORRUPT')) throw err;
      return sendError(res, 500, 'CHECKPOINT_CORRUPT', err.message.replace(/^CHECKPOINT_CORRUPT: /, ''));
    }
    const { modelJson, weights } = exportedArtifacts;
    if (file === 'model.json') return sendJson(res, 200, modelJson);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': weights.byteLength, 'cache-control': 'no-store' });
    res.end(Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength));
  },
  checkpoint: (ctx, taskId, _rest, res, run) => {
    // A past run's final model is its last stored checkpoint; the current run's is the engine's global.
    const engine = run === undefined || run === currentRun(ctx, taskId) ? ctx.engines.get(taskId) : undefined;
    const ck = ctx.store.latestCheckpoint(taskId, run);
    const bytes = engine?.globalBytes ?? ck?.bytes;
    if (!bytes) return sendError(res, 404, 'NOT_FOUND', 'no checkpoint');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': bytes.byteLength,
      'x-chorus-sha256': engine?.globalHash ?? ck!.sha256,
      'content-disposition': `attachment; filename="${fileStem(taskId, run)}-global.chrs"`,
    });
    res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  },
};

/**
 * Task routes a volunteer's join token may read. Only the global adapters: volunteers receive them
 * every round anyway, so this exposes nothing a join token does not already give.
 */
const JOIN_READABLE: Readonly<Record<string, Handler>> = {
  global: (ctx, taskId, rest, res) => {
    if (rest.length !== 0) return sendError(res, 404, 'NOT_FOUND', 'no such route');
    const engine = ctx.engines.get(taskId);
    const ck = ctx.store.latestCheckpoint(taskId);
    const bytes = engine?.globalBytes ?? ck?.bytes;
    if (!bytes) return sendError(res, 404, 'NO_GLOBAL', `task ${taskId} has no global model yet`);
    const config = JSON.parse(ctx.store.getTask(taskId)!.configJson) as { model?: { base?: unknown; adapterAlpha?: unknown } };
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': bytes.byteLength,
      'cache-control': 'no-store',
      'x-chorus-sha256': engine?.globalHash ?? ck!.sha256,
      'x-chorus-round': String(engine?.snapshot().completedRounds ?? ck!.serverRound),
      // The LoRA scale cannot be read off tensor shapes, and a viewer needs it to rebuild the model.
      'x-chorus-adapter-alpha': String(config.model?.adapterAlpha ?? ''),
      'x-chorus-base': String(config.model?.base ?? ''),
    });
    res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  },
  spec: (ctx, taskId, rest, res) => {
    if (rest.length !== 0) return sendError(res, 404, 'NOT_FOUND', 'no such route');
    const files = ctx.taskFiles?.get(taskId);
    if (!files) return sendError(res, 404, 'NO_SPEC', `task ${taskId} uses a built-in base; it has no spec of its own`);
    sendJson(res, 200, files.spec);
  },
  files: async (ctx, taskId, rest, res) => {
    const onDisk = ctx.taskFiles?.get(taskId)?.onDisk.get(rest.join('/'));
    if (!onDisk) return sendError(res, 404, 'NOT_FOUND', `task ${taskId} lists no file ${rest.join('/')}`);
    let bytes: Buffer;
    try {
      bytes = await readFile(onDisk);
    } catch {
      return sendError(res, 404, 'NOT_FOUND', `task ${taskId}'s file ${rest.join('/')} cannot be read`);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength, 'cache-control': 'no-cache' });
    res.end(bytes);
  },
};

/** Whether `token` is the join token of the task a join-readable route names (`/api/tasks/:id/<route>`). */
function joinTokenAllows(ctx: ApiContext, pathname: string, token: string): boolean {
  const [api, tasks, taskId, route] = pathname.split('/').filter((p) => p.length > 0);
  if (api !== 'api' || tasks !== 'tasks' || taskId === undefined || route === undefined || !Object.hasOwn(JOIN_READABLE, route)) return false;
  let id: string;
  try {
    id = decodeURIComponent(taskId);
  } catch {
    return false;
  }
  const task = ctx.store.getTask(id);
  return task !== undefined && tokenMatchesHash(token, task.joinTokenHash);
}

/** The task's current run. */
function currentRun(ctx: ApiContext, taskId: string): number {
  return ctx.store.getTask(taskId)?.run ?? 1;
}

/** Downloaded files' name stem: the task, and the run when one was asked for. */
function fileStem(taskId: string, run: number | undefined): string {
  return run === undefined ? taskId : `${taskId}-run${run}`;
}

/** The run `?run=N` names: undefined when absent, null (error sent) when malformed or unknown. */
function runOf(ctx: ApiContext, taskId: string, url: URL, res: ServerResponse): number | undefined | null {
  const text = url.searchParams.get('run');
  if (text === null) return undefined;
  const run = /^[1-9][0-9]{0,8}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(run)) {
    sendError(res, 400, 'BAD_REQUEST', `run must be a positive integer, got '${text.slice(0, 20)}'`);
    return null;
  }
  if (run > currentRun(ctx, taskId)) {
    sendError(res, 404, 'RUN_NOT_FOUND', `task ${taskId} has no run ${run}`);
    return null;
  }
  return run;
}

function taskSummary(ctx: ApiContext, taskId: string): Record<string, unknown> {
  const task = ctx.store.getTask(taskId)!;
  const engine = ctx.engines.get(taskId);
  return {
    taskId,
    status: task.status,
    run: task.run,
    // Only a task this coordinator serves can be acted on.
    actions: engine ? allowedActions(task.status) : [],
    hasModel: ctx.models?.has(taskId) ?? false,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
    engine: engine?.snapshot() ?? null,
  };
}

/** `GET /api/cluster`: this node, every live node, who leads each task, and the log's state (404 on a single node). */
async function clusterRoute(ctx: ApiContext, res: ServerResponse): Promise<void> {
  if (!ctx.cluster) return sendError(res, 404, 'NOT_FOUND', 'this coordinator is a single node');
  const leaders = Object.fromEntries(ctx.store.listTasks().map((t) => [t.taskId, ctx.cluster!.leaderOf(t.taskId)]));
  sendJson(res, 200, { nodeId: ctx.cluster.nodeId, nodes: await ctx.cluster.nodes(), leaders, log: await ctx.cluster.log() });
}

/** Largest control body read; a reason is at most 200 characters. */
const MAX_CONTROL_BODY_BYTES = 4096;

/** Reads the body up to `limit` bytes; null when it is longer (the rest is not read). */
async function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `POST /api/tasks/:id/<action>`: validates, applies through the task's engine, answers with the new summary. */
async function control(ctx: ApiContext, taskId: string, action: TaskAction, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = await readBody(req, MAX_CONTROL_BODY_BYTES);
  if (text === null) return sendError(res, 413, 'BODY_TOO_LARGE', `a control body is at most ${MAX_CONTROL_BODY_BYTES} bytes`);
  let json: unknown = {};
  if (text.trim().length > 0) {
    try {
      json = JSON.parse(text);
    } catch {
      return sendError(res, 400, 'BAD_REQUEST', 'body is not JSON (send nothing, or {"reason": "…"})');
    }
  }
  const body = taskControlBodySchema.safeParse(json);
  if (!body.success) {
    const issue = body.error.issues[0];
    return sendError(res, 400, 'BAD_REQUEST', `body: ${issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  const engine = ctx.engines.get(taskId);
  if (!engine && ctx.cluster) {
    const leader = ctx.cluster.leaderOf(taskId);
    const url = leader === null ? null : ((await ctx.cluster.nodes()).find((n) => n.nodeId === leader)?.url ?? null);
    return sendError(
      res,
      409,
      'NOT_LEADER',
      leader === null
        ? `no node leads task ${taskId} at the moment; try again shortly`
        : `task ${taskId} is led by node ${leader}${url ? ` (${url})` : ''}; send the action there`,
    );
  }
  if (!engine) return sendError(res, 409, 'TASK_NOT_LOADED', `task ${taskId} is stored but not served by this coordinator`);
  const previous = ctx.store.getTask(taskId)!.status;
  try {
    engine.control(action, body.data.reason);
  } catch (err) {
    if (!isCoordinatorError(err, 'TASK_TRANSITION')) throw err;
    ctx.metrics.controls.inc({ task: taskId, action, outcome: 'refused' });
    return sendError(res, 409, 'TASK_TRANSITION', err.message.replace(/^TASK_TRANSITION: /, ''));
  }
  ctx.metrics.controls.inc({ task: taskId, action, outcome: 'applied' });
  sendJson(res, 200, { previous, task: taskSummary(ctx, taskId) });
}

/** `POST /api/tasks`: a new task from `{task, files}`; 201 with its join token and link, or every problem, coded. */
async function createTask(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!ctx.createTask) return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'this coordinator takes no new tasks (start it with a data dir)');
  const text = await readBody(req, MAX_CREATE_TASK_BODY_BYTES);
  if (text === null) return sendError(res, 413, 'BODY_TOO_LARGE', `a new task's body is at most ${MAX_CREATE_TASK_BODY_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return sendError(res, 400, 'BAD_REQUEST', 'body is not JSON ({"task": {…}, "files": [{"path", "base64"}]})');
  }
  const body = createTaskBodySchema.safeParse(json);
  if (!body.success) {
    const issue = body.error.issues[0];
    return sendError(res, 400, 'BAD_REQUEST', `body: ${issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  try {
    const { taskId, joinToken } = await ctx.createTask(body.data);
    sendJson(res, 201, {
      taskId,
      joinToken,
      joinPath: `/join?task=${encodeURIComponent(taskId)}&token=${encodeURIComponent(joinToken)}`,
      task: taskSummary(ctx, taskId),
    });
  } catch (err) {
    if (!isCoordinatorError(err)) throw err;
    const status = err.code === 'TASK_DUPLICATE' ? 409 : 400;
    sendJson(res, status, { error: { code: err.code, message: err.message, issues: err.issues } });
  }
}

/** An invitation as the API shows it: everything but the token's hash. */
function invitationView(inv: InvitationRecord): Record<string, unknown> {
  const { tokenHash: _tokenHash, ...view } = inv;
  return view;
}

/** Parses a JSON body (empty: `{}`); sends the error and returns undefined when it is not JSON or too long. */
async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const text = await readBody(req, MAX_CONTROL_BODY_BYTES);
  if (text === null) {
    sendError(res, 413, 'BODY_TOO_LARGE', `a body is at most ${MAX_CONTROL_BODY_BYTES} bytes`);
    return undefined;
  }
  if (text.trim().length === 0) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    sendError(res, 400, 'BAD_REQUEST', 'body is not JSON');
    return undefined;
  }
}

/**
 * `/api/tasks/:id/invitations[/:inv/revoke]`: lists, creates (the token is in the answer, and only
 * there: the store keeps its hash) and revokes per-volunteer invitation links.
 */
async function invitations(ctx: ApiContext, taskId: string, rest: string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const post = req.method === 'POST';
  if (rest.length === 0 && !post) return sendJson(res, 200, { invitations: ctx.store.listInvitations(taskId).map(invitationView) });
  if (rest.length === 0) {
    const json = await readJson(req, res);
    if (json === undefined) return;
    const body = invitationCreateBodySchema.safeParse(json);
    if (!body.success) {
      const issue = body.error.issues[0];
      return sendError(res, 400, 'BAD_REQUEST', `body: ${issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
    }
    const token = generateToken();
    const invitationId = generateId('inv');
    ctx.store.createInvitation({
      invitationId,
      taskId,
      tokenHash: hashToken(token),
      quota: body.data.quota,
      label: body.data.label ?? null,
      createdAt: (ctx.now ?? Date.now)(),
    });
    return sendJson(res, 201, { invitation: invitationView(ctx.store.getInvitation(invitationId)!), token });
  }
  if (rest.length !== 2 || rest[1] !== 'revoke') return sendError(res, 404, 'NOT_FOUND', 'no such route');
  if (!post) return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'revoke is a POST');
  const invitationId = rest[0]!;
  if (!ctx.store.revokeInvitation(taskId, invitationId, (ctx.now ?? Date.now)())) {
    return sendError(res, 404, 'INVITATION_NOT_FOUND', `task ${taskId} has no invitation ${invitationId}`);
  }
  try {
    ctx.onInvitationRevoked?.(taskId, invitationId);
  } catch (err) {
    ctx.logger.warn({ err }, 'revocation listener failed');
  }
  sendJson(res, 200, { invitation: invitationView(ctx.store.getInvitation(invitationId)!) });
}

/** Builds the request listener; it never throws and never leaks internals in a response. */
export function createRequestHandler(ctx: ApiContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(ctx, req, res).catch((err: unknown) => {
      ctx.logger.error({ err, url: req.url }, 'http handler failed');
      if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'internal error');
      else res.destroy();
    });
  };
}

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  applyCors(ctx, req, res);
  if (req.method === 'OPTIONS') {
    res.writeHead(204);
    res.end();
    return;
  }
  const post = req.method === 'POST';
  if (req.method !== 'GET' && req.method !== 'HEAD' && !post)
    return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'only GET, and POST for task controls, are supported');
  if (post && !url.pathname.startsWith('/api/')) return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'POST is only for task controls and invitations');

  if (url.pathname === '/healthz' || url.pathname === '/health') {
    return sendJson(res, 200, { status: 'ok', tasks: [...ctx.engines.keys()] });
  }
  if (url.pathname === '/metrics') {
    const text = await ctx.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType });
    res.end(text);
    return;
  }
  if (!url.pathname.startsWith('/api/')) {
    if (ctx.staticMounts && (await serveStatic(ctx.staticMounts, req, res, url.pathname))) return;
    return sendError(res, 404, 'NOT_FOUND', 'no such route');
  }

  const auth = req.headers.authorization ?? '';
  const match = /^Bearer (.+)$/.exec(auth);
  if (!match) return sendError(res, 401, 'AUTH_REQUIRED', 'admin token required (Authorization: Bearer …)');
  if (!tokensEqual(match[1]!, ctx.adminToken) && !joinTokenAllows(ctx, url.pathname, match[1]!))
    return sendError(res, 403, 'AUTH_INVALID', 'admin token is not valid');

  let parts: string[];
  try {
    parts = url.pathname
      .split('/')
      .filter((p) => p.length > 0)
      .map(decodeURIComponent);
  } catch {
    return sendError(res, 400, 'BAD_REQUEST', 'malformed percent-encoding in the path');
  }
  // parts: ['api', 'tasks', id?, route?, ...rest]
  if (parts[1] === 'cluster' && parts.length === 2 && !post) {
    if (!tokensEqual(match[1]!, ctx.adminToken)) return sendError(res, 403, 'AUTH_INVALID', 'admin token is not valid');
    return clusterRoute(ctx, res);
  }
  if (parts[1] !== 'tasks') return sendError(res, 404, 'NOT_FOUND', 'no such route');
  if (parts.length === 2 && post) {
    if (!tokensEqual(match[1]!, ctx.adminToken)) return sendError(res, 403, 'AUTH_INVALID', 'admin token is not valid');
    return createTask(ctx, req, res);
  }
  if (parts.length === 2) return sendJson(res, 200, { tasks: ctx.store.listTasks().map((t) => taskSummary(ctx, t.taskId)) });
  const taskId = parts[2]!;
  if (!ctx.store.getTask(taskId)) return sendError(res, 404, 'TASK_NOT_FOUND', `no task ${taskId}`);
  const name = parts[3] ?? '';
  if (name === 'invitations') {
    if (!tokensEqual(match[1]!, ctx.adminToken)) return sendError(res, 403, 'AUTH_INVALID', 'admin token is not valid');
    return invitations(ctx, taskId, parts.slice(4), req, res);
  }
  if (isTaskAction(name)) {
    if (!post) return sendError(res, 405, 'METHOD_NOT_ALLOWED', `${name} is a POST`);
    if (parts.length !== 4) return sendError(res, 404, 'NOT_FOUND', 'no such route');
    // Join tokens only ever read; acting on a task takes the admin token.
    if (!tokensEqual(match[1]!, ctx.adminToken)) return sendError(res, 403, 'AUTH_INVALID', 'admin token is not valid');
    return control(ctx, taskId, name, req, res);
  }
  const route = Object.hasOwn(taskRoutes, name) ? taskRoutes[name] : Object.hasOwn(JOIN_READABLE, name) ? JOIN_READABLE[name] : undefined;
  if (!route) return sendError(res, 404, 'NOT_FOUND', 'no such route');
  if (post) return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'POST is only for task controls (start, pause, resume, stop)');
  const run = runOf(ctx, taskId, url, res);
  if (run === null) return;
  await route(ctx, taskId, parts.slice(4), res, run);
}

function applyCors(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): void {
  const origin = req.headers.origin;
  if (!origin) return;
  if (ctx.corsOrigins.includes('*') || ctx.corsOrigins.includes(origin)) {
    res.setHeader('access-control-allow-origin', ctx.corsOrigins.includes('*') ? '*' : origin);
    res.setHeader('vary', 'Origin');
    res.setHeader('access-control-allow-headers', 'authorization, content-type');
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
  }
}
