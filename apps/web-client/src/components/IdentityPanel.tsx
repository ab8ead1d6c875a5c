/** This browser's persistent identity (IndexedDB) and whether the coordinator has issued one for the task yet. */
import { useEffect, useState, type ReactNode } from 'react';
import { describeError } from '../lib/errors.js';
import { openIdentityStore, type LocalIdentity, type TaskCredentials } from '../lib/identity.js';

type State =
  | { status: 'loading' }
  | { status: 'ready'; identity: LocalIdentity; created: boolean; credentials: TaskCredentials | null }
  | { status: 'failed'; error: string };

/** Loads (or creates) the local identity and the task's stored credentials; `issuedClientId` is the id the running client was given since. */
export function IdentityPanel({ taskId, issuedClientId = null }: { taskId: string | null; issuedClientId?: string | null }): ReactNode {
  const [state, setState] = useState<State>({ status: 'loading' });
  useEffect(() => {
    let live = true;
    void (async () => {
      try {
        const store = await openIdentityStore();
        try {
          const { identity, created } = await store.localIdentity(
            () => crypto.randomUUID(),
            () => Date.now(),
          );
          const credentials = taskId ? await store.credentials(taskId) : null;
          if (live) setState({ status: 'ready', identity, created, credentials });
        } finally {
          store.close();
        }
      } catch (err) {
        if (live) setState({ status: 'failed', error: describeError(err) });
      }
    })();
    return () => {
      live = false;
    };
  }, [taskId]);
  return (
    <section className="panel" aria-labelledby="identity-title" data-testid="identity-panel">
      <h2 id="identity-title">This browser</h2>
      {state.status === 'loading' && <p role="status">Reading the stored identity…</p>}
      {state.status === 'failed' && (
        <p role="alert" className="error">
          The identity could not be stored, so a reload will start over: {state.error}
        </p>
      )}
      {state.status === 'ready' && (
        <dl className="facts">
          <dt>Browser identity</dt>
          <dd>
            <code data-testid="install-id">{state.identity.installId}</code> (
            {state.created ? 'created now' : `kept since ${new Date(state.identity.createdAt).toLocaleString()}`})
          </dd>
          <dt>Client id for this task</dt>
          <dd data-testid="task-client-id">
            {issuedClientId ? (
              <code>{issuedClientId}</code>
            ) : state.credentials ? (
              <code>{state.credentials.clientId}</code>
            ) : (
              'not issued yet — waiting for the coordinator'
            )}
          </dd>
        </dl>
      )}
    </section>
  );
}
