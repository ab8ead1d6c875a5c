/**
 * The researcher dashboard's data: typed props for the charts and the clients table, derived from the
 * coordinator's admin JSON API (GET /api/tasks, /api/tasks/:id/{metrics,trust,clients,rounds,
 * rounds/:r/updates,runs}), and the task controls (POST /api/tasks/:id/{start,pause,resume,stop}).
 * The figures are the current run's, or a past run's (`?run=N`) when one is asked for: a
 * `runs: continuous` task starts a fresh run after each finished one and keeps the old ones.
 * Responses are checked before use — types are not validation — and a wrong shape is
 * `WEB_BAD_RESPONSE`. Metric names are matched by their dot-separated segments, so
 * `client.accuracy`, `eval.accuracy.image` and `accuracy` are all found; server-side evaluation
 * (`global.`/`eval.`/`test.`) wins over clients' own means (`client.`).
 */
import { MODALITIES } from '@chorus/fl-core';
import { TASK_ACTIONS } from '@chorus/protocol';
import type { TaskAction } from '@chorus/protocol';
import type { Modality } from '@chorus/fl-core';
import { WebClientError } from '../lib/errors.js';

/** Modalities the dashboard breaks figures down by: all of them. */
export const DASHBOARD_MODALITIES = MODALITIES;
/** One of {@link DASHBOARD_MODALITIES}. */
export type DashboardModality = Modality;

/** Figures of one completed round. Absent figures are undefined, never 0. */
export interface RoundPoint {
  readonly serverRound: number;
  readonly accuracy?: number;
  readonly loss?: number;
  readonly perModality: Readonly<Partial<Record<DashboardModality, { readonly accuracy?: number; readonly loss?: number }>>>;
  /** Upload bytes received in the round. */
  readonly bytesIn?: number;
  /** Cumulative differential-privacy ε spent after the round. */
  readonly epsilon?: number;
  readonly numAccepted?: number;
  readonly numRejected?: number;
  /** Representation tasks (FedAFD family): the server model's cross-modal retrieval on held-out pairs, R@1 in percent both ways and rsum. */
  readonly serverRetrieval?: { readonly i2tR1?: number; readonly t2iR1?: number; readonly rsum?: number };
}

/** Round metrics of a representation task's server step, as the coordinator names them, and the field each fills. */
export const SERVER_RETRIEVAL_METRICS = { i2tR1: 'server.i2tR1', t2iR1: 'server.t2iR1', rsum: 'server.rsum' } as const;

/** Trust score T_k of every client in one round (clients not scored that round are absent). */
export interface TrustPoint {
  readonly serverRound: number;
  readonly trust: Readonly<Record<string, number>>;
}

/** How many uploads were rejected with one protocol code. */
export interface RejectionCount {
  readonly code: string;
  readonly count: number;
}

/** One row of the clients table. */
export interface ClientRow {
  readonly clientId: string;
  readonly modalities: readonly string[];
  readonly backend: string | null;
  readonly numExamples: number | null;
  readonly lastSeenAt: number;
  /** Latest trust score, or null before the client was first scored. */
  readonly trust: number | null;
  /** Last round with an accepted upload from this client, or null. */
  readonly lastContributionRound: number | null;
}

// What a researcher can do to a task: the admin protocol's list.
export { TASK_ACTIONS };
export type { TaskAction };

/** A task as the dashboard lists it. */
export interface TaskSummary {
  readonly taskId: string;
  readonly status: string;
  readonly updatedAt: number;
  /** Actions the task's status allows now, as the coordinator reports them (none when it reports none). */
  readonly actions: readonly TaskAction[];
  /** Whether the coordinator holds a model of the task it can export as TF.js artifacts. */
  readonly hasModel: boolean;
}

/** One run of a task as the dashboard lists it. */
export interface RunSummary {
  readonly run: number;
  /** 'finished' for a past run; the task's status for the current one. */
  readonly status: string;
  readonly startedAt: number;
  /** When it ended, or null while it goes on. */
  readonly endedAt: number | null;
  readonly completedRounds: number;
  /** Accuracy after its last committed round ({@link pickMetric}'s preference), when reported. */
  readonly finalAccuracy?: number;
  readonly finalLoss?: number;
  /** SHA-256 of its latest global model (a past run's final model). */
  readonly globalHash: string | null;
}

/** Everything the dashboard draws for one task. */
export interface DashboardData {
  readonly task: TaskSummary;
  /** The run the figures below are of. */
  readonly run: number;
  /** The task's current run: the one new rounds go to. */
  readonly currentRun: number;
  /** Every run of the task, oldest first, the current one last. */
  readonly runs: readonly RunSummary[];
  readonly rounds: readonly RoundPoint[];
  readonly trust: readonly TrustPoint[];
  readonly trustClients: readonly string[];
  readonly rejections: readonly RejectionCount[];
  readonly clients: readonly ClientRow[];
}

// ---------------------------------------------------------------------------------------------
// Response checking

type Json = Record<string, unknown>;

function bad(what: string): never {
  throw new WebClientError('WEB_BAD_RESPONSE', what);
}

function objectAt(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(`${what} is not an object`);
  return value as Json;
}

function arrayAt(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) bad(`${what} is not an array`);
  return value;
}

function numberAt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) bad(`${what} is not a finite number`);
  return value;
}

function stringAt(value: unknown, what: string): string {
  if (typeof value !== 'string') bad(`${what} is not a string`);
  return value;
}

function taskSummaryAt(value: unknown, what: string): TaskSummary {
  const task = objectAt(value, what);
  // Absent from coordinators without controls: no action, no export.
  const actions = task['actions'] === undefined ? [] : arrayAt(task['actions'], `${what}.actions`);
  return {
    taskId: stringAt(task['taskId'], `${what}.taskId`),
    status: stringAt(task['status'], `${what}.status`),
    updatedAt: numberAt(task['updatedAt'], `${what}.updatedAt`),
    actions: actions.map((a, i) => {
      const action = stringAt(a, `${what}.actions[${i}]`);
      if (!(TASK_ACTIONS as readonly string[]).includes(action)) bad(`${what}.actions[${i}] is not a task action`);
      return action as TaskAction;
    }),
    hasModel: booleanAt(task['hasModel'] ?? false, `${what}.hasModel`),
  };
}

function booleanAt(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') bad(`${what} is not a boolean`);
  return value;
}

/**
 * A TF.js `model.json` whose weights manifest names `weightsFile` instead (its other fields kept), so
 * the pair can be saved under task-specific names and still load together.
 */
export function renameWeights(modelJson: unknown, weightsFile: string): Json {
  const json = objectAt(modelJson, 'model.json');
  const manifest = arrayAt(json['weightsManifest'], 'model.json weightsManifest');
  if (manifest.length !== 1) bad(`model.json names ${manifest.length} weight groups, expected 1`);
  return { ...json, weightsManifest: [{ ...objectAt(manifest[0], 'model.json weightsManifest[0]'), paths: [`./${weightsFile}`] }] };
}

// ---------------------------------------------------------------------------------------------
// Metric names

const PREFERENCE = ['global', 'eval', 'test', '', 'server', 'client'];

function segments(name: string): string[] {
  return name
    .toLowerCase()
    .split(/[./:]/)
    .filter((s) => s.length > 0);
}

/**
 * The value of the best-matching metric for `quantity` (and `modality`, or none), or undefined.
 * A name matches when its segments contain the quantity, the modality if asked (and no modality
 * otherwise), and nothing else but one source prefix from the preference list.
 */
export function pickMetric(metrics: Readonly<Record<string, number>>, quantity: string, modality?: DashboardModality): number | undefined {
  let best: { rank: number; value: number } | undefined;
  for (const [name, value] of Object.entries(metrics)) {
    if (!Number.isFinite(value)) continue;
    const parts = segments(name);
    if (!parts.includes(quantity)) continue;
    const modalities = parts.filter((p) => (DASHBOARD_MODALITIES as readonly string[]).includes(p));
    if (modality ? modalities.length !== 1 || modalities[0] !== modality : modalities.length !== 0) continue;
    const rest = parts.filter((p) => p !== quantity && !modalities.includes(p));
    if (rest.length > 1) continue;
    const rank = PREFERENCE.indexOf(rest[0] ?? '');
    if (rank < 0) continue;
    if (best === undefined || rank < best.rank) best = { rank, value };
  }
  return best?.value;
}

/** One {@link RoundPoint} per metrics record, sorted by round. */
export function roundPoints(records: readonly { serverRound: number; metrics: Readonly<Record<string, number>> }[]): RoundPoint[] {
  return [...records]
    .sort((a, b) => a.serverRound - b.serverRound)
    .map(({ serverRound, metrics }) => {
      const perModality: Partial<Record<DashboardModality, { accuracy?: number; loss?: number }>> = {};
      for (const m of DASHBOARD_MODALITIES) {
        const accuracy = pickMetric(metrics, 'accuracy', m);
        const loss = pickMetric(metrics, 'loss', m);
        if (accuracy !== undefined || loss !== undefined)
          perModality[m] = { ...(accuracy !== undefined ? { accuracy } : {}), ...(loss !== undefined ? { loss } : {}) };
      }
      const fields: [keyof RoundPoint, number | undefined][] = [
        ['accuracy', pickMetric(metrics, 'accuracy')],
        ['loss', pickMetric(metrics, 'loss')],
        ['bytesIn', metrics['bytesIn']],
        ['epsilon', pickMetric(metrics, 'epsilon')],
        ['numAccepted', metrics['numAccepted']],
        ['numRejected', metrics['numRejected']],
      ];
      const point: Record<string, unknown> = { serverRound, perModality };
      for (const [key, value] of fields) if (value !== undefined && Number.isFinite(value)) point[key] = value;
      const retrieval = Object.fromEntries(
        Object.entries(SERVER_RETRIEVAL_METRICS).flatMap(([field, name]) => (Number.isFinite(metrics[name]) ? [[field, metrics[name]]] : [])),
      );
      if (Object.keys(retrieval).length > 0) point['serverRetrieval'] = retrieval;
      return point as unknown as RoundPoint;
    });
}

/** Trust records grouped by round (sorted), and every client that has a score, in first-seen order. */
export function trustSeries(records: readonly { serverRound: number; clientId: string; trust: number }[]): { points: TrustPoint[]; clients: string[] } {
  const byRound = new Map<number, Record<string, number>>();
  const clients: string[] = [];
  for (const r of [...records].sort((a, b) => a.serverRound - b.serverRound)) {
    if (!clients.includes(r.clientId)) clients.push(r.clientId);
    const row = byRound.get(r.serverRound) ?? {};
    row[r.clientId] = r.trust;
    byRound.set(r.serverRound, row);
  }
  return { points: [...byRound.entries()].map(([serverRound, trust]) => ({ serverRound, trust })), clients };
}

/** Runs from `GET /api/tasks/:id/runs`, checked, sorted oldest first; final figures picked from each run's last round's metrics. */
export function runSummaries(body: unknown): RunSummary[] {
  return arrayAt(objectAt(body, 'runs body')['runs'], 'runs')
    .map((value, i): RunSummary => {
      const r = objectAt(value, `runs[${i}]`);
      const ended = r['endedAt'] ?? null;
      const hash = r['globalHash'] ?? null;
      const final = r['finalMetrics'] ?? null;
      const metrics: Record<string, number> = {};
      if (final !== null)
        for (const [k, v] of Object.entries(objectAt(final, `runs[${i}].finalMetrics`))) metrics[k] = numberAt(v, `runs[${i}].finalMetrics.${k}`);
      const accuracy = pickMetric(metrics, 'accuracy');
      const loss = pickMetric(metrics, 'loss');
      return {
        run: numberAt(r['run'], `runs[${i}].run`),
        status: stringAt(r['status'], `runs[${i}].status`),
        startedAt: numberAt(r['startedAt'], `runs[${i}].startedAt`),
        endedAt: ended === null ? null : numberAt(ended, `runs[${i}].endedAt`),
        completedRounds: numberAt(r['completedRounds'], `runs[${i}].completedRounds`),
        ...(accuracy !== undefined ? { finalAccuracy: accuracy } : {}),
        ...(loss !== undefined ? { finalLoss: loss } : {}),
        globalHash: hash === null ? null : stringAt(hash, `runs[${i}].globalHash`),
      };
    })
    .sort((a, b) => a.run - b.run);
}

/** The runs before the current one (the last of `runs`), newest first: what the dashboard lists as past runs. */
export function pastRuns(runs: readonly RunSummary[]): RunSummary[] {
  return runs.slice(0, -1).reverse();
}

/** The query that reads run `run` of a task's history, or none for the current run. */
function runQuery(run: number | undefined): string {
  return run === undefined ? '' : `?run=${run}`;
}

/** Rejected uploads counted by code, most frequent first (ties by code). */
export function rejectionCounts(updates: readonly { status: string; code: string | null }[]): RejectionCount[] {
  const counts = new Map<string, number>();
  for (const u of updates) if (u.status === 'rejected') counts.set(u.code ?? 'UNKNOWN', (counts.get(u.code ?? 'UNKNOWN') ?? 0) + 1);
  return [...counts.entries()].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1));
}

// ---------------------------------------------------------------------------------------------
// Fetching

/** The part of `fetch` the dashboard needs. */
export type DashboardFetch = (
  url: string,
  init: { headers: Record<string, string>; method?: 'GET' | 'POST'; body?: string },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/** Reads the admin API under `baseUrl` (the coordinator's origin) with `adminToken`. */
export class DashboardApi {
  constructor(
    private readonly baseUrl: string,
    private readonly adminToken: string,
    private readonly fetchImpl: DashboardFetch,
  ) {}

  /** GET `path` as JSON; `WEB_API_FAILED` with the coordinator's own code and message on an error status. */
  async get(path: string): Promise<Json> {
    return this.request(path, { headers: { authorization: `Bearer ${this.adminToken}` } });
  }

  /**
   * Applies a control to a task and returns its summary after it. A status that does not allow the
   * action is `WEB_API_FAILED` carrying the coordinator's `TASK_TRANSITION`.
   */
  async control(taskId: string, action: TaskAction): Promise<TaskSummary> {
    const body = await this.request(`/api/tasks/${encodeURIComponent(taskId)}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminToken}` },
    });
    return taskSummaryAt(body['task'], 'task');
  }

  private async request(path: string, init: Parameters<DashboardFetch>[1]): Promise<Json> {
    let response: Awaited<ReturnType<DashboardFetch>>;
    try {
      response = await this.fetchImpl(`${this.baseUrl.replace(/\/$/, '')}${path}`, init);
    } catch (err) {
      throw new WebClientError('WEB_API_FAILED', `${path}: coordinator unreachable (${err instanceof Error ? err.message : String(err)})`);
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      throw new WebClientError(response.ok ? 'WEB_BAD_RESPONSE' : 'WEB_API_FAILED', `${path}: HTTP ${response.status}, body is not JSON`);
    }
    if (!response.ok) {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const detail = typeof error?.code === 'string' ? `${error.code}: ${typeof error.message === 'string' ? error.message : ''}` : `HTTP ${response.status}`;
      throw new WebClientError('WEB_API_FAILED', `${path}: ${detail}`);
    }
    return objectAt(body, path);
  }

  /** Every task the coordinator runs. */
  async tasks(): Promise<TaskSummary[]> {
    const body = await this.get('/api/tasks');
    return arrayAt(body['tasks'], 'tasks').map((t, i) => taskSummaryAt(t, `tasks[${i}]`));
  }

  /**
   * Everything the dashboard shows for `task`, of run `run` (absent: the current run); rejection
   * codes come from the latest `maxRounds` rounds.
   */
  async dashboard(task: TaskSummary, maxRounds = 50, run?: number): Promise<DashboardData> {
    const id = encodeURIComponent(task.taskId);
    const q = runQuery(run);
    const [metricsBody, trustBody, clientsBody, roundsBody, runsBody] = await Promise.all([
      this.get(`/api/tasks/${id}/metrics${q}`),
      this.get(`/api/tasks/${id}/trust${q}`),
      this.get(`/api/tasks/${id}/clients`),
      this.get(`/api/tasks/${id}/rounds${q}`),
      this.get(`/api/tasks/${id}/runs`),
    ]);
    const runs = runSummaries(runsBody);
    const currentRun = runs.at(-1)?.run ?? 1;
    const metrics = arrayAt(metricsBody['metrics'], 'metrics').map((m, i) => {
      const record = objectAt(m, `metrics[${i}]`);
      const values = objectAt(record['metrics'], `metrics[${i}].metrics`);
      const clean: Record<string, number> = {};
      for (const [k, v] of Object.entries(values)) clean[k] = numberAt(v, `metrics[${i}].metrics.${k}`);
      return { serverRound: numberAt(record['serverRound'], `metrics[${i}].serverRound`), metrics: clean };
    });
    const trustRecords = arrayAt(trustBody['trust'], 'trust').map((t, i) => {
      const r = objectAt(t, `trust[${i}]`);
      return {
        serverRound: numberAt(r['serverRound'], `trust[${i}].serverRound`),
        clientId: stringAt(r['clientId'], `trust[${i}].clientId`),
        trust: numberAt(r['trust'], `trust[${i}].trust`),
      };
    });
    const roundNumbers = [
      ...new Set(arrayAt(roundsBody['rounds'], 'rounds').map((r, i) => numberAt(objectAt(r, `rounds[${i}]`)['serverRound'], `rounds[${i}].serverRound`))),
    ]
      .sort((a, b) => a - b)
      .slice(-maxRounds);
    const updateLists = await Promise.all(roundNumbers.map((r) => this.get(`/api/tasks/${id}/rounds/${r}/updates${q}`)));
    const updates = updateLists.flatMap((body, j) =>
      arrayAt(body['updates'], `rounds/${roundNumbers[j]}/updates`).map((u, i) => {
        const r = objectAt(u, `updates[${i}]`);
        const code = r['code'];
        return {
          clientId: stringAt(r['clientId'], `updates[${i}].clientId`),
          serverRound: numberAt(r['serverRound'], `updates[${i}].serverRound`),
          status: stringAt(r['status'], `updates[${i}].status`),
          code: code === null || code === undefined ? null : stringAt(code, `updates[${i}].code`),
        };
      }),
    );
    const { points, clients: trustClients } = trustSeries(trustRecords);
    const latestTrust = new Map<string, number>();
    for (const p of points) for (const [c, t] of Object.entries(p.trust)) latestTrust.set(c, t);
    const lastAccepted = new Map<string, number>();
    for (const u of updates) if (u.status === 'accepted') lastAccepted.set(u.clientId, Math.max(lastAccepted.get(u.clientId) ?? -1, u.serverRound));
    const clients = arrayAt(clientsBody['clients'], 'clients').map((c, i): ClientRow => {
      const r = objectAt(c, `clients[${i}]`);
      const clientId = stringAt(r['clientId'], `clients[${i}].clientId`);
      const caps = r['capabilities'] === null || r['capabilities'] === undefined ? null : objectAt(r['capabilities'], `clients[${i}].capabilities`);
      return {
        clientId,
        modalities: caps
          ? arrayAt(caps['modalities'], `clients[${i}].capabilities.modalities`).map((m, j) => stringAt(m, `clients[${i}].capabilities.modalities[${j}]`))
          : [],
        backend: caps ? stringAt(caps['backend'], `clients[${i}].capabilities.backend`) : null,
        numExamples: caps ? numberAt(caps['numExamples'], `clients[${i}].capabilities.numExamples`) : null,
        lastSeenAt: numberAt(r['lastSeenAt'], `clients[${i}].lastSeenAt`),
        trust: latestTrust.get(clientId) ?? null,
        lastContributionRound: lastAccepted.get(clientId) ?? null,
      };
    });
    return {
      task,
      run: run ?? currentRun,
      currentRun,
      runs,
      rounds: roundPoints(metrics),
      trust: points,
      trustClients,
      rejections: rejectionCounts(updates),
      clients,
    };
  }

  /** Downloads `path` (metrics CSV/JSON, checkpoint) as a Blob, with the token. */
  async download(path: string): Promise<Blob> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl.replace(/\/$/, '')}${path}`, { headers: { authorization: `Bearer ${this.adminToken}` } });
    } catch (err) {
      throw new WebClientError('WEB_API_FAILED', `${path}: coordinator unreachable (${err instanceof Error ? err.message : String(err)})`);
    }
    if (!response.ok) throw new WebClientError('WEB_API_FAILED', `${path}: HTTP ${response.status}`);
    return response.blob();
  }

  /**
   * The task's global model as TF.js files: `kind` 'model' is the merged LayersModel, 'adapters' the
   * adapters alone. Named `<task>-<kind>.json` and `<task>-<kind>.weights.bin`, the first naming the
   * second, so `tf.loadLayersModel` reads them from one folder.
   */
  async exportFiles(taskId: string, kind: 'model' | 'adapters'): Promise<{ readonly name: string; readonly blob: Blob }[]> {
    const base = `/api/tasks/${encodeURIComponent(taskId)}/export/${kind}`;
    const weightsName = `${taskId}-${kind}.weights.bin`;
    const [modelJson, weights] = await Promise.all([this.get(`${base}/model.json`), this.download(`${base}/weights.bin`)]);
    const json = new Blob([JSON.stringify(renameWeights(modelJson, weightsName))], { type: 'application/json' });
    return [
      { name: `${taskId}-${kind}.json`, blob: json },
      { name: weightsName, blob: weights },
    ];
  }
}
