import { describe, expect, it } from 'vitest';
import { isWebClientError } from '../lib/errors.js';
import {
  DashboardApi,
  pastRuns,
  pickMetric,
  rejectionCounts,
  renameWeights,
  roundPoints,
  runSummaries,
  trustSeries,
  type DashboardFetch,
} from './dashboardData.js';

/** A fake admin API: `[METHOD ]path[?query]` → [status, body] (GET when no method); records the Authorization header of every call. */
function fakeFetch(routes: Record<string, [number, unknown]>, seen: string[] = []): DashboardFetch {
  return (url, init) => {
    seen.push(init.headers['authorization'] ?? '');
    const { pathname: path, search } = new URL(url);
    const route = init.method === 'POST' ? routes[`POST ${path}`] : routes[`${path}${search}`];
    if (!route) return Promise.resolve({ ok: false, status: 404, json: () => Promise.resolve({ error: { code: 'NOT_FOUND', message: 'no such route' } }) });
    return Promise.resolve({ ok: route[0] < 400, status: route[0], json: () => Promise.resolve(route[1]) });
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return isWebClientError(err) ? err.code : 'not a WebClientError';
  }
  return undefined;
}

describe('pickMetric', () => {
  it('prefers server-side evaluation over clients’ means and keeps modalities apart', () => {
    const metrics = { 'client.accuracy': 0.6, 'eval.accuracy': 0.7, 'client.accuracy.image': 0.5, 'client.loss': 1.2, 'strategy.numResults': 3 };

    expect(pickMetric(metrics, 'accuracy')).toBe(0.7);
    expect(pickMetric(metrics, 'accuracy', 'image')).toBe(0.5);
    expect(pickMetric(metrics, 'accuracy', 'audio')).toBeUndefined();
    expect(pickMetric(metrics, 'loss')).toBe(1.2);
  });

  it('ignores names with unknown prefixes and non-finite values', () => {
    expect(pickMetric({ 'weird.accuracy': 0.9 }, 'accuracy')).toBeUndefined();
    expect(pickMetric({ accuracy: Number.NaN }, 'accuracy')).toBeUndefined();
    expect(pickMetric({ 'image/accuracy': 0.4 }, 'accuracy', 'image')).toBe(0.4);
  });
});

describe('round, trust and rejection series', () => {
  it('sorts rounds and leaves missing figures undefined rather than zero', () => {
    const points = roundPoints([
      { serverRound: 2, metrics: { 'client.accuracy': 0.8, bytesIn: 2048, numRejected: 1 } },
      { serverRound: 1, metrics: { 'client.accuracy': 0.5, 'client.accuracy.text': 0.4, epsilon: 0.5 } },
    ]);

    expect(points.map((p) => p.serverRound)).toEqual([1, 2]);
    expect(points[0]).toEqual({ serverRound: 1, accuracy: 0.5, epsilon: 0.5, perModality: { text: { accuracy: 0.4 } } });
    expect(points[1]).toEqual({ serverRound: 2, accuracy: 0.8, bytesIn: 2048, numRejected: 1, perModality: {} });
  });

  it("reads a representation task's server retrieval figures (its server loss is the round's loss), and invents none", () => {
    const points = roundPoints([
      { serverRound: 1, metrics: { 'server.i2tR1': 12.5, 'server.t2iR1': 10, 'server.rsum': 22.5, 'server.loss': 3.2, bytesIn: 4096 } },
      { serverRound: 2, metrics: { 'server.i2tR1': 20, 'server.rsum': Number.NaN } },
      { serverRound: 3, metrics: { 'client.accuracy': 0.5 } },
    ]);

    expect(points[0]).toEqual({ serverRound: 1, loss: 3.2, bytesIn: 4096, perModality: {}, serverRetrieval: { i2tR1: 12.5, t2iR1: 10, rsum: 22.5 } });
    expect(points[1]!.serverRetrieval).toEqual({ i2tR1: 20 });
    expect(points[2]!.serverRetrieval).toBeUndefined();
  });

  it('groups trust by round and lists clients in first-seen order', () => {
    const { points, clients } = trustSeries([
      { serverRound: 2, clientId: 'b', trust: 0.2 },
      { serverRound: 1, clientId: 'a', trust: 0.9 },
      { serverRound: 2, clientId: 'a', trust: 0.8 },
    ]);

    expect(clients).toEqual(['a', 'b']);
    expect(points).toEqual([
      { serverRound: 1, trust: { a: 0.9 } },
      { serverRound: 2, trust: { b: 0.2, a: 0.8 } },
    ]);
  });

  it('counts rejections by code, most frequent first', () => {
    const counts = rejectionCounts([
      { status: 'rejected', code: 'UPDATE_NON_FINITE' },
      { status: 'accepted', code: null },
      { status: 'rejected', code: 'UPDATE_TOO_LARGE' },
      { status: 'rejected', code: 'UPDATE_TOO_LARGE' },
    ]);

    expect(counts).toEqual([
      { code: 'UPDATE_TOO_LARGE', count: 2 },
      { code: 'UPDATE_NON_FINITE', count: 1 },
    ]);
  });
});

describe('DashboardApi', () => {
  const task = { taskId: 'demo', status: 'running', updatedAt: 5, actions: ['pause', 'stop'], hasModel: true } as const;
  const routes: Record<string, [number, unknown]> = {
    '/api/tasks': [
      200,
      { tasks: [{ taskId: 'demo', status: 'running', actions: ['pause', 'stop'], hasModel: true, createdAt: 1, updatedAt: 5, engine: null }] },
    ],
    '/api/tasks/demo/metrics': [
      200,
      { taskId: 'demo', metrics: [{ taskId: 'demo', serverRound: 1, metrics: { 'client.accuracy': 0.5, bytesIn: 100 }, createdAt: 2 }] },
    ],
    '/api/tasks/demo/trust': [200, { trust: [{ taskId: 'demo', serverRound: 1, clientId: 'c1', trust: 0.75 }] }],
    '/api/tasks/demo/clients': [
      200,
      {
        clients: [
          { clientId: 'c1', capabilities: { backend: 'wasm', modalities: ['image'], numExamples: 40 }, createdAt: 1, lastSeenAt: 4 },
          { clientId: 'c2', capabilities: null, createdAt: 1, lastSeenAt: 3 },
        ],
      },
    ],
    '/api/tasks/demo/rounds': [200, { rounds: [{ serverRound: 1, attempt: 0 }] }],
    '/api/tasks/demo/runs': [
      200,
      {
        runs: [
          { taskId: 'demo', run: 1, status: 'running', startedAt: 1, endedAt: null, completedRounds: 1, globalHash: 'h1', finalMetrics: { accuracy: 0.5 } },
        ],
      },
    ],
    '/api/tasks/demo/rounds/1/updates': [
      200,
      {
        updates: [
          { clientId: 'c1', serverRound: 1, status: 'accepted', code: null },
          { clientId: 'c2', serverRound: 1, status: 'rejected', code: 'UPDATE_NON_FINITE' },
        ],
      },
    ],
  };

  it('lists tasks with the bearer token', async () => {
    const seen: string[] = [];
    const api = new DashboardApi('http://coordinator', 'tok', fakeFetch(routes, seen));

    expect(await api.tasks()).toEqual([task]);
    expect(seen).toEqual(['Bearer tok']);
  });

  it('assembles charts and the clients table from the admin routes', async () => {
    const api = new DashboardApi('http://coordinator/', 'tok', fakeFetch(routes));

    const data = await api.dashboard(task);

    expect(data.rounds).toEqual([{ serverRound: 1, accuracy: 0.5, bytesIn: 100, perModality: {} }]);
    expect(data.trustClients).toEqual(['c1']);
    expect(data.rejections).toEqual([{ code: 'UPDATE_NON_FINITE', count: 1 }]);
    expect(data.clients).toEqual([
      { clientId: 'c1', modalities: ['image'], backend: 'wasm', numExamples: 40, lastSeenAt: 4, trust: 0.75, lastContributionRound: 1 },
      { clientId: 'c2', modalities: [], backend: null, numExamples: null, lastSeenAt: 3, trust: null, lastContributionRound: null },
    ]);
  });

  it('reads a past run’s figures with ?run=N and lists every run, the current one last', async () => {
    const runs = {
      runs: [
        {
          taskId: 'demo',
          run: 2,
          status: 'running',
          startedAt: 300,
          endedAt: null,
          completedRounds: 1,
          globalHash: 'b',
          finalMetrics: { 'eval.accuracy': 0.4 },
        },
        {
          taskId: 'demo',
          run: 1,
          status: 'finished',
          startedAt: 100,
          endedAt: 250,
          completedRounds: 20,
          globalHash: 'a',
          finalMetrics: { 'client.accuracy': 0.7, 'eval.accuracy': 0.9, 'eval.loss': 0.3 },
        },
      ],
    };
    const api = new DashboardApi(
      'http://coordinator',
      'tok',
      fakeFetch({
        ...routes,
        '/api/tasks/demo/runs': [200, runs],
        '/api/tasks/demo/metrics?run=1': [
          200,
          {
            taskId: 'demo',
            run: 1,
            metrics: [
              { serverRound: 1, metrics: { 'eval.accuracy': 0.6 } },
              { serverRound: 2, metrics: { 'eval.accuracy': 0.9 } },
            ],
          },
        ],
        '/api/tasks/demo/trust?run=1': [200, { trust: [{ serverRound: 2, clientId: 'old', trust: 0.5 }] }],
        '/api/tasks/demo/rounds?run=1': [200, { rounds: [{ serverRound: 2 }] }],
        '/api/tasks/demo/rounds/2/updates?run=1': [200, { updates: [{ clientId: 'old', serverRound: 2, status: 'rejected', code: 'LATE_UPDATE' }] }],
      }),
    );

    const past = await api.dashboard(task, 50, 1);
    const live = await api.dashboard(task);

    expect(past.run).toBe(1);
    expect(past.currentRun).toBe(2);
    expect(past.rounds.map((r) => [r.serverRound, r.accuracy])).toEqual([
      [1, 0.6],
      [2, 0.9],
    ]);
    expect(past.trustClients).toEqual(['old']);
    expect(past.rejections).toEqual([{ code: 'LATE_UPDATE', count: 1 }]);
    expect(past.runs.map((r) => r.run)).toEqual([1, 2]);
    expect(live).toMatchObject({ run: 2, currentRun: 2 });
    expect(live.rounds.map((r) => r.accuracy)).toEqual([0.5]);
    expect(pastRuns(live.runs)).toEqual([
      { run: 1, status: 'finished', startedAt: 100, endedAt: 250, completedRounds: 20, finalAccuracy: 0.9, finalLoss: 0.3, globalHash: 'a' },
    ]);
  });

  it('reads runs without figures yet, and refuses a runs body of the wrong shape with WEB_BAD_RESPONSE', () => {
    const fresh = runSummaries({
      runs: [{ run: 1, status: 'waiting', startedAt: 5, endedAt: null, completedRounds: 0, globalHash: null, finalMetrics: null }],
    });

    expect(fresh).toEqual([{ run: 1, status: 'waiting', startedAt: 5, endedAt: null, completedRounds: 0, globalHash: null }]);
    expect(pastRuns(fresh)).toEqual([]);
    expect(() => runSummaries({ runs: [{ run: '1', status: 'finished', startedAt: 5, completedRounds: 0 }] })).toThrow(/WEB_BAD_RESPONSE/);
    expect(() => runSummaries({ runs: [{ run: 1, status: 'finished', startedAt: 5, completedRounds: 2, finalMetrics: { accuracy: 'high' } }] })).toThrow(
      /WEB_BAD_RESPONSE/,
    );
    expect(() => runSummaries({})).toThrow(/WEB_BAD_RESPONSE/);
  });

  it('reports the coordinator’s own error code as WEB_API_FAILED', async () => {
    const api = new DashboardApi(
      'http://coordinator',
      'bad',
      fakeFetch({ '/api/tasks': [403, { error: { code: 'AUTH_INVALID', message: 'admin token is not valid' } }] }),
    );

    await expect(api.tasks()).rejects.toThrow(/WEB_API_FAILED: \/api\/tasks: AUTH_INVALID/);
  });

  it('refuses a body of the wrong shape with WEB_BAD_RESPONSE', async () => {
    const api = new DashboardApi(
      'http://coordinator',
      'tok',
      fakeFetch({ ...routes, '/api/tasks/demo/trust': [200, { trust: [{ serverRound: '1', clientId: 'c1', trust: 0.5 }] }] }),
    );

    expect(await codeOf(api.dashboard(task))).toBe('WEB_BAD_RESPONSE');
    expect(await codeOf(new DashboardApi('http://x', 't', fakeFetch({ '/api/tasks': [200, { tasks: 'none' }] })).tasks())).toBe('WEB_BAD_RESPONSE');
  });

  it('reads a task without actions (an older coordinator) as one that allows none and exports nothing', async () => {
    const api = new DashboardApi('http://x', 't', fakeFetch({ '/api/tasks': [200, { tasks: [{ taskId: 'old', status: 'running', updatedAt: 1 }] }] }));

    expect(await api.tasks()).toEqual([{ taskId: 'old', status: 'running', updatedAt: 1, actions: [], hasModel: false }]);
  });

  it('refuses unknown actions and a non-boolean hasModel with WEB_BAD_RESPONSE', async () => {
    const listing = (extra: object) =>
      new DashboardApi('http://x', 't', fakeFetch({ '/api/tasks': [200, { tasks: [{ taskId: 'a', status: 'running', updatedAt: 1, ...extra }] }] }));

    expect(await codeOf(listing({ actions: ['pause', 'explode'] }).tasks())).toBe('WEB_BAD_RESPONSE');
    expect(await codeOf(listing({ actions: 'pause' }).tasks())).toBe('WEB_BAD_RESPONSE');
    expect(await codeOf(listing({ hasModel: 'yes' }).tasks())).toBe('WEB_BAD_RESPONSE');
  });

  it('posts a control with the token and returns the task as the coordinator reports it after', async () => {
    const calls: { url: string; method: string | undefined; auth: string | undefined }[] = [];
    const fetchImpl: DashboardFetch = (url, init) => {
      calls.push({ url, method: init.method, auth: init.headers['authorization'] });
      return Promise.resolve({
        ok: true,
        status: 200,
        json: () =>
          Promise.resolve({ previous: 'running', task: { taskId: 'a b', status: 'paused', actions: ['resume', 'stop'], hasModel: false, updatedAt: 9 } }),
      });
    };

    const after = await new DashboardApi('http://coordinator/', 'tok', fetchImpl).control('a b', 'pause');

    expect(calls).toEqual([{ url: 'http://coordinator/api/tasks/a%20b/pause', method: 'POST', auth: 'Bearer tok' }]);
    expect(after).toEqual({ taskId: 'a b', status: 'paused', actions: ['resume', 'stop'], hasModel: false, updatedAt: 9 });
  });

  it('reports a refused transition with the coordinator’s TASK_TRANSITION code', async () => {
    const api = new DashboardApi(
      'http://x',
      't',
      fakeFetch({ 'POST /api/tasks/demo/resume': [409, { error: { code: 'TASK_TRANSITION', message: 'cannot resume task demo: it is running' } }] }),
    );

    await expect(api.control('demo', 'resume')).rejects.toThrow(/WEB_API_FAILED: \/api\/tasks\/demo\/resume: TASK_TRANSITION: cannot resume/);
  });

  it('renames the weights file a model.json names and keeps the rest', () => {
    const json = {
      format: 'layers-model',
      modelTopology: { a: 1 },
      weightsManifest: [{ paths: ['./weights.bin'], weights: [{ name: 'w', shape: [2], dtype: 'float32' }] }],
    };

    expect(renameWeights(json, 'demo-model.weights.bin')).toEqual({
      ...json,
      weightsManifest: [{ paths: ['./demo-model.weights.bin'], weights: json.weightsManifest[0]!.weights }],
    });
    expect(json.weightsManifest[0]!.paths).toEqual(['./weights.bin']);
    expect(() => renameWeights({ weightsManifest: [] }, 'x.bin')).toThrow(/WEB_BAD_RESPONSE/);
  });

  it('reports an unreachable coordinator as WEB_API_FAILED', async () => {
    const api = new DashboardApi('http://coordinator', 'tok', () => Promise.reject(new Error('connection refused')));

    expect(await codeOf(api.tasks())).toBe('WEB_API_FAILED');
  });
});
