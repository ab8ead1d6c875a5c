/** Shows the measured backend trial: which backend won, why (every figure measured), and the known-answer check. */
import type { ReactNode } from 'react';
import type { BackendState } from '../lib/useBackend.js';

/** The backend trial's result as a panel. */
export function BackendPanel({ state }: { state: BackendState }): ReactNode {
  return (
    <section className="panel" aria-labelledby="backend-title" data-testid="backend-panel" data-status={state.status} data-backend={state.status === 'ready' ? state.outcome.backend : ''}>
      <h2 id="backend-title">Compute backend</h2>
      {state.request?.forced && (
        <p className="note">
          Forced by the link: only <code>{state.request.forced}</code> is tried.
        </p>
      )}
      {state.status === 'measuring' && (
        <p role="status" aria-live="polite">
          Measuring a short training step on each backend…
        </p>
      )}
      {state.status === 'failed' && (
        <p role="alert" className="error" data-testid="backend-error">
          No backend could be used: {state.error}
        </p>
      )}
      {state.status === 'ready' && (
        <>
          <p role="status" aria-live="polite">
            Using <strong data-testid="backend-winner">{state.outcome.backend}</strong>: fastest on a short training step (measured in {(state.outcome.trialMs / 1000).toFixed(1)} s).
          </p>
          <table className="data-table">
            <caption>Trial of each backend (a dense layer and a 3×3 convolution, forward and backward)</caption>
            <thead>
              <tr>
                <th scope="col">Backend</th>
                <th scope="col">Result</th>
                <th scope="col" className="num">
                  Steps / s
                </th>
              </tr>
            </thead>
            <tbody>
              {state.outcome.trials.map((t) => (
                <tr key={t.backend} data-testid={`trial-${t.backend}`} data-available={t.available}>
                  <th scope="row">{t.backend}</th>
                  <td>{t.available ? (t.backend === state.outcome.backend ? 'chosen' : 'works') : `unavailable: ${t.error ?? 'unknown reason'}`}</td>
                  <td className="num">{t.available ? t.opsPerSecond.toFixed(1) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p data-testid="backend-check" data-verified={state.outcome.verified}>
            Known-answer check on {state.outcome.backend}: [[1,2],[3,4]]·[[5,6],[7,8]] = [{state.outcome.check.map((v) => Number(v.toFixed(3))).join(', ')}]{' '}
            {state.outcome.verified ? '✓ correct' : '✗ wrong — this backend computes incorrectly here'}
          </p>
        </>
      )}
    </section>
  );
}
