/** The volunteer's contribution history: one row per round the tab took part in, as the coordinator reported it. */
import type { ReactNode } from 'react';
import { formatBytes, formatPercent } from '../lib/format.js';

/** One round's contribution. Figures the runtime did not report are undefined. */
export interface Contribution {
  readonly serverRound: number;
  readonly numExamples: number;
  readonly bytesSent: number;
  readonly status: 'accepted' | 'rejected' | 'pending';
  /** The coordinator's rejection code, when rejected. */
  readonly code?: string;
  readonly localAccuracy?: number;
  readonly globalAccuracy?: number;
  /** Trust score the coordinator gave this update, when it shares it. */
  readonly trust?: number;
}

/** The history table, newest first; an empty history says what it is waiting for. */
export function ContributionHistory({ entries, emptyMessage }: { entries: readonly Contribution[]; emptyMessage: string }): ReactNode {
  const rows = [...entries].sort((a, b) => b.serverRound - a.serverRound);
  return (
    <section className="panel" aria-labelledby="history-title" data-testid="contribution-history">
      <h2 id="history-title">Your contributions</h2>
      {rows.length === 0 ? (
        <p className="note" role="status">
          {emptyMessage}
        </p>
      ) : (
        <table className="data-table">
          <thead>
            <tr>
              <th scope="col">Round</th>
              <th scope="col">Status</th>
              <th scope="col" className="num">
                Examples
              </th>
              <th scope="col" className="num">
                Sent
              </th>
              <th scope="col" className="num">
                Local acc.
              </th>
              <th scope="col" className="num">
                Global acc.
              </th>
              <th scope="col" className="num">
                Trust
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.serverRound} data-testid="contribution" data-round={c.serverRound} data-status={c.status}>
                <th scope="row">{c.serverRound}</th>
                <td>{c.status === 'rejected' ? `rejected (${c.code ?? 'no code'})` : c.status}</td>
                <td className="num">{c.numExamples}</td>
                <td className="num">{formatBytes(c.bytesSent)}</td>
                <td className="num">{c.localAccuracy === undefined ? '—' : formatPercent(c.localAccuracy)}</td>
                <td className="num">{c.globalAccuracy === undefined ? '—' : formatPercent(c.globalAccuracy)}</td>
                <td className="num">{c.trust === undefined ? '—' : c.trust.toFixed(2)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
