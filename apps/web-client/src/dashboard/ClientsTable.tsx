/** Connected clients with their modalities, backend, trust and last contribution. Ids are pseudonyms. */
import type { ReactNode } from 'react';
import type { ClientRow } from './dashboardData.js';

/** Seconds since `at` as "12 s ago" / "3 min ago". */
function ago(at: number, now: number): string {
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

/** The clients table, most recently seen first. */
export function ClientsTable({ clients, now }: { clients: readonly ClientRow[]; now: number }): ReactNode {
  const rows = [...clients].sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  return (
    <section className="panel wide" aria-labelledby="clients-title" data-testid="clients-table">
      <h2 id="clients-title">Clients</h2>
      {rows.length === 0 ? (
        <p className="note">No client has joined yet.</p>
      ) : (
        <table className="data-table">
          <thead>
            <tr>
              <th scope="col">Client</th>
              <th scope="col">Modalities</th>
              <th scope="col">Backend</th>
              <th scope="col" className="num">
                Examples
              </th>
              <th scope="col" className="num">
                Trust
              </th>
              <th scope="col" className="num">
                Last contribution
              </th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.clientId}>
                <th scope="row">
                  <code title={c.clientId}>{c.clientId.slice(0, 10)}</code>
                </th>
                <td>{c.modalities.length > 0 ? c.modalities.join(', ') : '—'}</td>
                <td>{c.backend ?? '—'}</td>
                <td className="num">{c.numExamples ?? '—'}</td>
                <td className="num">{c.trust === null ? '—' : c.trust.toFixed(3)}</td>
                <td className="num">{c.lastContributionRound === null ? '—' : `round ${c.lastContributionRound}`}</td>
                <td>{ago(c.lastSeenAt, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
