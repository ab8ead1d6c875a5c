/**
 * The researcher dashboard (`/dashboard`): asks for the admin token (kept in this tab's session
 * storage only), lists the coordinator's tasks and polls the chosen one's figures every few seconds.
 */
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { BytesChart, EpsilonChart, MetricPerRoundChart, RejectionsChart, TrustChart } from '../dashboard/Charts.js';
import { ClientsTable } from '../dashboard/ClientsTable.js';
import { DashboardApi, type DashboardData, type TaskSummary } from '../dashboard/dashboardData.js';
import { describeError } from '../lib/errors.js';

const TOKEN_KEY = 'chorus.adminToken';
const POLL_MS = 5000;

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

async function saveBlob(api: DashboardApi, path: string, fileName: string): Promise<void> {
  const blob = await api.download(path);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  URL.revokeObjectURL(url);
}

/** `/dashboard` */
export default function DashboardPage(): ReactNode {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [tokenError, setTokenError] = useState<string | null>(null);
  const [tasks, setTasks] = useState<TaskSummary[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [data, setData] = useState<DashboardData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());
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
    new DashboardApi(window.location.origin, token, (url, init) => fetch(url, init))
      .tasks()
      .then((list) => {
        if (!live) return;
        setTasks(list);
        setSelected((s) => s ?? list[0]?.taskId ?? null);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!live) return;
        const message = describeError(err);
        if (/AUTH_(INVALID|REQUIRED)/.test(message)) forget('The coordinator refused this token.');
        else setError(message);
      });
    return () => {
      live = false;
    };
  }, [token, forget]);

  useEffect(() => {
    const task = tasks?.find((t) => t.taskId === selected);
    if (!token || !task) return;
    let live = true;
    const client = new DashboardApi(window.location.origin, token, (url, init) => fetch(url, init));
    const poll = (): void => {
      client
        .dashboard(task)
        .then((d) => {
          if (!live) return;
          setData(d);
          setNow(Date.now());
          setError(null);
        })
        .catch((err: unknown) => {
          if (live) setError(describeError(err));
        });
    };
    poll();
    const timer = window.setInterval(poll, POLL_MS);
    return () => {
      live = false;
      window.clearInterval(timer);
    };
  }, [token, tasks, selected]);

  if (!token || !api) {
    return (
      <div className="page">
        <h1>Researcher dashboard</h1>
        <TokenForm onToken={acceptToken} error={tokenError} />
      </div>
    );
  }
  const id = selected ? encodeURIComponent(selected) : '';
  return (
    <div className="page">
      <h1>Researcher dashboard</h1>
      <div className="toolbar">
        {tasks && tasks.length > 0 ? (
          <label>
            Task{' '}
            <select value={selected ?? ''} onChange={(e) => setSelected(e.currentTarget.value)}>
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
            <button type="button" onClick={() => void saveBlob(api, `/api/tasks/${id}/metrics.csv`, `${selected}-metrics.csv`).catch((e: unknown) => setError(describeError(e)))}>
              Metrics (CSV)
            </button>
            <button type="button" onClick={() => void saveBlob(api, `/api/tasks/${id}/metrics.json`, `${selected}-metrics.json`).catch((e: unknown) => setError(describeError(e)))}>
              Metrics (JSON)
            </button>
            <button type="button" onClick={() => void saveBlob(api, `/api/tasks/${id}/checkpoint`, `${selected}-global.chrs`).catch((e: unknown) => setError(describeError(e)))}>
              Global model
            </button>
          </>
        )}
        <button type="button" className="secondary" onClick={() => forget(null)}>
          Forget token
        </button>
      </div>
      {error && (
        <p role="alert" className="error" data-testid="dashboard-error">
          {error}
        </p>
      )}
      <p className="note">Starting, pausing and stopping a task from here needs the coordinator's control API, which is not available yet.</p>
      {data && (
        <p className="status-line">
          Task <strong>{data.task.taskId}</strong>: {data.task.status}, {data.rounds.length} completed round{data.rounds.length === 1 ? '' : 's'}, {data.clients.length} client
          {data.clients.length === 1 ? '' : 's'}.
        </p>
      )}
      <div className="grid charts">
        <MetricPerRoundChart rounds={data?.rounds ?? []} quantity="accuracy" />
        <MetricPerRoundChart rounds={data?.rounds ?? []} quantity="loss" />
        <TrustChart points={data?.trust ?? []} clients={data?.trustClients ?? []} />
        <BytesChart rounds={data?.rounds ?? []} />
        <RejectionsChart rejections={data?.rejections ?? []} />
        <EpsilonChart rounds={data?.rounds ?? []} />
      </div>
      <ClientsTable clients={data?.clients ?? []} now={now} />
    </div>
  );
}
