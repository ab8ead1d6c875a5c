/** A task's past runs (a `runs: continuous` task starts a fresh run after each finished one), newest first, each viewable in the charts. */
import type { ReactNode } from 'react';
import { pastRuns, type RunSummary } from './dashboardData.js';

/** Rows shown; older runs stay readable through the admin API. */
const MAX_ROWS = 20;

/** The past-runs table; `viewing` is the run the charts show (null: the live run), `onView(null)` goes back to it. */
export function RunsTable({ runs, viewing, onView }: { runs: readonly RunSummary[]; viewing: number | null; onView: (run: number | null) => void }): ReactNode {
  const past = pastRuns(runs);
  if (past.length === 0) return null;
  const current = runs.at(-1);
  return (
    <section className="panel wide" aria-labelledby="runs-title" data-testid="runs-table">
      <h2 id="runs-title">Past runs</h2>
      <p className="note">
        {viewing === null ? (
          <>The charts follow the live run{current ? ` (run ${current.run})` : ''}.</>
        ) : (
          <>
            The charts show run {viewing}.{' '}
            <button type="button" className="secondary" onClick={() => onView(null)} data-testid="follow-live-run">
              Follow the live run
            </button>
          </>
        )}
      </p>
      <table className="data-table">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col" className="num">
              Rounds
            </th>
            <th scope="col" className="num">
              Final accuracy
            </th>
            <th scope="col">Finished</th>
            <th scope="col">
              <span className="visually-hidden">Charts</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {past.slice(0, MAX_ROWS).map((r) => (
            <tr key={r.run} aria-current={r.run === viewing ? 'true' : undefined}>
              <th scope="row">run {r.run}</th>
              <td className="num">{r.completedRounds}</td>
              <td className="num">{r.finalAccuracy === undefined ? '—' : `${(100 * r.finalAccuracy).toFixed(1)} %`}</td>
              <td>{r.endedAt === null ? '—' : new Date(r.endedAt).toLocaleString()}</td>
              <td>
                <button type="button" className="secondary" disabled={r.run === viewing} onClick={() => onView(r.run)}>
                  {r.run === viewing ? 'Shown' : 'Show charts'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {past.length > MAX_ROWS && (
        <p className="note">
          {past.length - MAX_ROWS} older run{past.length - MAX_ROWS === 1 ? '' : 's'} not listed (GET /api/tasks/:id/runs lists them all).
        </p>
      )}
    </section>
  );
}
