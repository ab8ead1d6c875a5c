/** Shows the measured backend trial: which backend won, why (every figure measured), and the known-answer check. */
import type { ReactNode } from 'react';
import type { BackendState } from '../lib/useBackend.js';
import type { BackendOutcome } from '../lib/tfSetup.js';

function resultOf(outcome: BackendOutcome, backend: string, available: boolean, error: string | undefined, verified: boolean): string {
  const rejected = outcome.rejected.find((r) => r.backend === backend);
  if (rejected) return `ran the trial, then failed the known-answer check: ${rejected.reason}`;
  if (!available) return `unavailable: ${error ?? 'unknown reason'}`;
  return backend === outcome.backend && verified ? 'chosen' : 'works';
}

function TrialTable({ outcome, verified }: { outcome: BackendOutcome; verified: boolean }): ReactNode {
  return (
    <table className="data-table">
      <caption>
        Trial of each backend (a frozen 3×3 convolution and a trainable dense layer, forward and backward: the shape of an adapter training step)
      </caption>
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
        {outcome.trials.map((t) => (
          <tr key={t.backend} data-testid={`trial-${t.backend}`} data-available={t.available && !outcome.rejected.some((r) => r.backend === t.backend)}>
            <th scope="row">{t.backend}</th>
            <td>{resultOf(outcome, t.backend, t.available, t.error, verified)}</td>
            <td className="num">{t.available ? t.opsPerSecond.toFixed(1) : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The backend trial's result as a panel. */
export function BackendPanel({ state }: { state: BackendState }): ReactNode {
  return (
    <section
      className="panel"
      aria-labelledby="backend-title"
      data-testid="backend-panel"
      data-status={state.status}
      data-backend={state.status === 'ready' ? state.outcome.backend : ''}
    >
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
        <>
          <p role="alert" className="error" data-testid="backend-error">
            No backend could be used: {state.error}
          </p>
          {state.outcome && <TrialTable outcome={state.outcome} verified={false} />}
        </>
      )}
      {state.status === 'ready' && (
        <>
          <p role="status" aria-live="polite">
            Using <strong data-testid="backend-winner">{state.outcome.backend}</strong>: fastest on a short training step among the backends that work here
            (measured in {(state.outcome.trialMs / 1000).toFixed(1)} s).
          </p>
          <TrialTable outcome={state.outcome} verified />
          <p data-testid="backend-check" data-verified={state.outcome.verified}>
            Known-answer check on {state.outcome.backend}: [[1,2],[3,4]]·[[5,6],[7,8]] = [{state.outcome.check.map((v) => Number(v.toFixed(3))).join(', ')}] ✓
            correct
          </p>
        </>
      )}
    </section>
  );
}
