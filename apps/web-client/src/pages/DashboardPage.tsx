/**
 * The researcher dashboard (`/dashboard`): asks for the admin token (kept in this tab's session
 * storage only), follows the coordinator's live stream of task status changes and committed rounds
 * (re-reading the tasks and the chosen one's figures as each arrives), and starts, pauses, resumes
 * or stops the chosen task. The charts follow the task's live run; a continuous task's past runs are
 * listed, and choosing one shows its charts (and its downloads) until the live run is chosen again.
 * A slow poll keeps the page current when the stream drops, and the toolbar shows the stream's state.
 * Downloads (metrics, the global model as codec bytes or TF.js files) go through the token too, so
 * they are buttons rather than plain links.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { BytesChart, EpsilonChart, MetricPerRoundChart, RejectionsChart, RetrievalChart, TrustChart } from '../dashboard/Charts.js';
import { ClientsTable } from '../dashboard/ClientsTable.js';
import { RunsTable } from '../dashboard/RunsTable.js';
import { DashboardApi, type DashboardData, type TaskAction, type TaskSummary } from '../dashboard/dashboardData.js';
import { applyStatusChange, coalesced, createAdminSocket, openAdminStream, type StreamState } from '../dashboard/liveStream.js';
import { TaskControls } from '../dashboard/TaskControls.js';
import { describeError } from '../lib/errors.js';
import { Link } from '../app/router.js';

const TOKEN_KEY = 'chorus.adminToken';
// The stream pushes every status change and round; the poll only covers a dropped stream and
// what the stream does not push (clients joining, their last-seen times).
const FALLBACK_POLL_MS = 30_000;

const STREAM_LABELS: Readonly<Record<StreamState, string>> = {
  connecting: 'Connecting to live updates…',
  live: 'Live',
  reconnecting: `No live updates: retrying, reading every ${FALLBACK_POLL_MS / 1000} s`,
  refused: `Live updates refused: reading every ${FALLBACK_POLL_MS / 1000} s`,
};

function TokenForm({ onToken, error }: { onToken: (token: string) => void; error: string | null }): ReactNode {
  const [value, setValue] = useState('');
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    if (value.trim().length > 0) onToken(value.trim());
  };
  return (
    <form className="panel narrow" onSubmit={submit} aria-labelledby="token-title">
      <h2 id="token-title">Admin token</h2>
      <p>The coordinator printed it at start-up. It stays in this tab and is sent only to this origin.</p>
      <label>
        Token <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.currentTarget.value)} data-testid="admin-token" required />
      </label>
      <button type="submit">Open dashboard</button>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </form>
  );
}

function saveFile(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  URL.revokeObjectURL(url);
}

async function saveBlob(api: DashboardApi, path: string, fileName: string): Promise<void> {
  saveFile(await api.download(path), fileName);
}

/** `/dashboard` */
export default function DashboardPage(): ReactNode {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [tokenError, setTokenError] = useState<string | null>(null);
  const [tasks, setTasks] = useState<readonly TaskSummary[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  // A past run whose charts are shown, or null to follow the live run.
  const [viewRun, setViewRun] = useState<number | null>(null);
  const [data, setData] = useState<DashboardData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());
  // Bumped after a control so the figures are read again at once even when the stream is down.
  const [refreshKey, setRefreshKey] = useState(0);
  const [stream, setStream] = useState<{ state: StreamState; detail: string }>({ state: 'connecting', detail: '' });
  // The stream outlives a change of task; it reaches the current list, selection and reader through these.
  const tasksRef = useRef(tasks);
  const selectedRef = useRef(selected);
  const refreshRef = useRef<() => void>(() => undefined);
  useEffect(() => {
    tasksRef.current = tasks;
    selectedRef.current = selected;
  }, [tasks, selected]);
  const api = token ? new DashboardApi(window.location.origin, token, (url, init) => fetch(url, init)) : null;

  const acceptToken = (value: string): void => {
    sessionStorage.setItem(TOKEN_KEY, value);
    setTokenError(null);
    setToken(value);
  };
  const forget = useCallback((message: string | null) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setTasks(null);
    setData(null);
    setTokenError(message);
  }, []);

  useEffect(() => {
    if (!token) return;
    let live = true;
    const client = new DashboardApi(window.location.origin, token, (url, init) => fetch(url, init));
    // The task list is read on every tick too: it carries each task's status and allowed actions.
    const poll = async (): Promise<void> => {
      try {
        const list = await client.tasks();
        if (!live) return;
        setTasks(list);
        const task = list.find((t) => t.taskId === selected) ?? (selected === null ? list[0] : undefined);
        if (!task) return;
        if (selected === null) return setSelected(task.taskId); // the effect runs again for it
        const d = await client.dashboard(task, undefined, viewRun ?? undefined);
        if (!live) return;
        setData(d);
        setNow(Date.now());
        setError(null);
      } catch (err) {
        if (!live) return;
        const message = describeError(err);
        if (/AUTH_(INVALID|REQUIRED)/.test(message)) forget('The coordinator refused this token.');
        else setError(message);
      }
    };
    const refresh = coalesced(poll);
    refreshRef.current = refresh;
    refresh();
    const timer = window.setInterval(refresh, FALLBACK_POLL_MS);
    return () => {
      live = false;
      window.clearInterval(timer);
      refreshRef.current = () => undefined;
    };
  }, [token, selected, viewRun, refreshKey, forget]);

  useEffect(() => {
    if (!token) return;
    return openAdminStream(createAdminSocket(window.location.origin, token), {
      onState: (state, detail) => {
        setStream({ state, detail });
        // Changes may have been missed while the stream was down.
        if (state === 'live') refreshRef.current();
      },
      onTaskStatus: (change) => {
        const { tasks: next, reread } = applyStatusChange(tasksRef.current, change);
        if (next !== tasksRef.current) {
          tasksRef.current = next;
          setTasks(next);
        }
        if (reread) refreshRef.current();
      },
      onRoundCompleted: (round) => {
        if (round.taskId === selectedRef.current) refreshRef.current();
      },
      onMalformed: (event, reason) => setError(`Ignored a malformed live update (${event}): ${reason}`),
    });
  }, [token]);

  if (!token || !api) {
    return (
      <div className="page">
        <h1>Researcher dashboard</h1>
        <TokenForm onToken={acceptToken} error={tokenError} />
      </div>
    );
  }
  const id = selected ? encodeURIComponent(selected) : '';
  // Downloads of the run on screen: a past run's history and final model, or the live run's.
  const runQuery = viewRun === null ? '' : `?run=${viewRun}`;
  const fileStem = viewRun === null ? selected : `${selected}-run${viewRun}`;
  const current = tasks?.find((t) => t.taskId === selected) ?? null;
  const act = async (action: TaskAction): Promise<void> => {
    if (!current) return;
    try {
      const updated = await api.control(current.taskId, action);
      setTasks((list) => list?.map((t) => (t.taskId === updated.taskId ? updated : t)) ?? list);
      setError(null);
      setRefreshKey((k) => k + 1);
    } catch (err) {
      setError(describeError(err));
    }
  };
  const saveExport = (kind: 'model' | 'adapters'): void => {
    if (!current) return;
    void api
      .exportFiles(current.taskId, kind)
      .then((files) => files.forEach((f) => saveFile(f.blob, f.name)))
      .catch((e: unknown) => setError(describeError(e)));
  };
  const noModel =
    viewRun !== null
      ? 'TF.js exports are of the live run’s model; “Global model (codec)” downloads this run’s final model'
      : current?.hasModel
        ? undefined
        : 'The coordinator holds no model of this task to export';
  return (
    <div className="page">
      <h1>Researcher dashboard</h1>
      <p>
        <Link to="/dashboard/new" data-testid="new-task-link">
          New task
        </Link>{' '}
        — your own encoders, classes and data.
      </p>
      <div className="toolbar">
        {tasks && tasks.length > 0 ? (
          <label>
            Task{' '}
            <select
              value={selected ?? ''}
              onChange={(e) => {
                setViewRun(null);
                setSelected(e.currentTarget.value);
              }}
            >
              {tasks.map((t) => (
                <option key={t.taskId} value={t.taskId}>
                  {t.taskId} ({t.status})
                </option>
              ))}
            </select>
          </label>
        ) : (
          <span>{tasks ? 'The coordinator runs no task.' : 'Connecting to the coordinator…'}</span>
        )}
        {selected && (
          <>
            <button
              type="button"
              onClick={() =>
                void saveBlob(api, `/api/tasks/${id}/metrics.csv${runQuery}`, `${fileStem}-metrics.csv`).catch((e: unknown) => setError(describeError(e)))
              }
            >
              Metrics (CSV)
            </button>
            <button
              type="button"
              onClick={() =>
                void saveBlob(api, `/api/tasks/${id}/metrics.json${runQuery}`, `${fileStem}-metrics.json`).catch((e: unknown) => setError(describeError(e)))
              }
            >
              Metrics (JSON)
            </button>
            <button
              type="button"
              onClick={() =>
                void saveBlob(api, `/api/tasks/${id}/checkpoint${runQuery}`, `${fileStem}-global.chrs`).catch((e: unknown) => setError(describeError(e)))
              }
            >
              Global model (codec)
            </button>
            <button
              type="button"
              disabled={noModel !== undefined}
              title={noModel ?? 'Merged TF.js LayersModel: model.json and its weights'}
              onClick={() => saveExport('model')}
            >
              Model (TF.js)
            </button>
            <button
              type="button"
              disabled={noModel !== undefined}
              title={noModel ?? 'The LoRA adapters alone, as TF.js files'}
              onClick={() => saveExport('adapters')}
            >
              Adapters (TF.js)
            </button>
          </>
        )}
        <span
          role="status"
          className={stream.state === 'live' ? undefined : 'badge'}
          title={stream.detail}
          data-testid="stream-state"
          data-state={stream.state}
        >
          {STREAM_LABELS[stream.state]}
        </span>
        <button type="button" className="secondary" onClick={() => forget(null)}>
          Forget token
        </button>
      </div>
      {error && (
        <p role="alert" className="error" data-testid="dashboard-error">
          {error}
        </p>
      )}
      {current && <TaskControls key={current.taskId} task={current} onAction={act} />}
      {data && (
        <p className="status-line" data-testid="status-line">
          Task <strong>{data.task.taskId}</strong>
          {data.run === data.currentRun ? (
            <>
              {data.currentRun > 1 && <>, run {data.currentRun}</>}: {current?.status ?? data.task.status}
            </>
          ) : (
            <>
              , past run {data.run} (live: run {data.currentRun}): {data.runs.find((r) => r.run === data.run)?.status ?? 'finished'}
            </>
          )}
          , {data.rounds.length} completed round
          {data.rounds.length === 1 ? '' : 's'}, {data.clients.length} client
          {data.clients.length === 1 ? '' : 's'}.
        </p>
      )}
      {data && <RunsTable runs={data.runs} viewing={viewRun} onView={setViewRun} />}
      <div className="grid charts">
        <MetricPerRoundChart rounds={data?.rounds ?? []} quantity="accuracy" />
        <MetricPerRoundChart rounds={data?.rounds ?? []} quantity="loss" />
        <TrustChart points={data?.trust ?? []} clients={data?.trustClients ?? []} />
        <BytesChart rounds={data?.rounds ?? []} />
        <RejectionsChart rejections={data?.rejections ?? []} />
        <EpsilonChart rounds={data?.rounds ?? []} />
        {data?.rounds.some((r) => r.serverRetrieval !== undefined) && <RetrievalChart rounds={data.rounds} />}
      </div>
      <ClientsTable clients={data?.clients ?? []} now={now} />
    </div>
  );
}
