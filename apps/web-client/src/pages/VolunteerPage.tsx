/**
 * The volunteer page (`/join?task=…&token=…`): consent, data chooser, measured backend, persistent
 * identity, and the round progress and contribution history that the client runtime will drive.
 * Until the runtime joins the coordinator, those last two show waiting states.
 */
import { useState, type ReactNode } from 'react';
import { BackendPanel } from '../components/BackendPanel.js';
import { ConsentText } from '../components/ConsentText.js';
import { ContributionHistory } from '../components/ContributionHistory.js';
import { DataChooser } from '../components/DataChooser.js';
import { IdentityPanel } from '../components/IdentityPanel.js';
import { ProgressBars, type RoundProgress } from '../components/ProgressBars.js';
import { useBackend } from '../lib/useBackend.js';

const WAITING = 'Waiting for the coordinator: this tab has not joined a round yet.';

/** Reads the join link's task id and token; the token is never shown in full. */
export function joinParams(search: string): { taskId: string | null; token: string | null } {
  const params = new URLSearchParams(search);
  const taskId = params.get('task');
  const token = params.get('token');
  return { taskId: taskId && taskId.length > 0 ? taskId : null, token: token && token.length > 0 ? token : null };
}

/** `/join` */
export default function VolunteerPage({ search }: { search: string }): ReactNode {
  const { taskId, token } = joinParams(search);
  const backend = useBackend(search);
  const [consented, setConsented] = useState(false);
  const progress: RoundProgress = { serverRound: null, download: null, training: null, upload: null, waitingMessage: WAITING };
  return (
    <div className="page">
      <h1>Volunteer</h1>
      {taskId && token ? (
        <p className="lead" data-testid="join-task">
          Joining task <strong>{taskId}</strong> with the link's token (…{token.slice(-4)}).
        </p>
      ) : (
        <p className="warning" role="alert" data-testid="join-missing">
          This link names no {taskId ? 'token' : 'task'}. Open the join link you were given (it looks like <code>/join?task=…&amp;token=…</code>). You can still check your data and this browser below.
        </p>
      )}
      <p className="status-line" data-testid="connection-status">
        Coordinator: not connected — waiting for the coordinator.
      </p>
      <div className="grid two">
        <div>
          <ConsentText accepted={consented} onChange={setConsented} />
          {consented ? (
            <DataChooser />
          ) : (
            <section className="panel muted">
              <h2>Your data</h2>
              <p>Tick the box above to choose data.</p>
            </section>
          )}
        </div>
        <div>
          <BackendPanel state={backend} />
          <IdentityPanel taskId={taskId} />
          <ProgressBars progress={progress} />
          <ContributionHistory entries={[]} emptyMessage="No contributions yet — waiting for the coordinator to start a round with this tab." />
        </div>
      </div>
    </div>
  );
}
