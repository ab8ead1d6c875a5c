/**
 * The volunteer page (`/join?task=…&token=…`): consent, data chooser, measured backend, persistent
 * identity, and the round progress and contribution history driven by the tab's client runtime once
 * the volunteer chooses the built-in demo partition or their own loaded files; in a representation
 * task (FedAFD family) the same runtime runs the tab as an image classifier (lib/fedafdTab.ts). Pause / leave closes
 * the client.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { createTaskModelFactory, loadTaskVocabulary, readTaskSource, type ChorusClient, type TaskSource } from '@chorus/client';
import type { Vocabulary } from '@chorus/models';
import { BackendPanel } from '../components/BackendPanel.js';
import { ConsentText } from '../components/ConsentText.js';
import { ContributionHistory } from '../components/ContributionHistory.js';
import { DataChooser } from '../components/DataChooser.js';
import { TaskDataChooser, type LoadedTaskData } from '../components/TaskDataChooser.js';
import { IdentityPanel } from '../components/IdentityPanel.js';
import { LocalDataPanel, type LocalDataInfo } from '../components/LocalDataPanel.js';
import { ProgressBars, type RoundProgress } from '../components/ProgressBars.js';
import { describeError } from '../lib/errors.js';
import { TAB_FEDAFD_ASSIGNMENT } from '../lib/fedafdTab.js';
import { openIdentityStore, type IdentityStore } from '../lib/identity.js';
import type { DataSummary, LoadedSamples } from '../lib/ownData.js';
import { applyEvent, initialView, type SessionView } from '../lib/sessionState.js';
import { useBackend } from '../lib/useBackend.js';
import { createVolunteerClient, DEMO_CLASS_NAMES, DEMO_SLICE_EXAMPLES, type BaseSource } from '../lib/volunteerSession.js';

const WAITING = 'Waiting for the coordinator: this tab has not joined a round yet.';

/** Reads the join link's task id and token; the token is never shown in full. */
export function joinParams(search: string): { taskId: string | null; token: string | null } {
  const params = new URLSearchParams(search);
  const taskId = params.get('task');
  const token = params.get('token');
  return { taskId: taskId && taskId.length > 0 ? taskId : null, token: token && token.length > 0 ? token : null };
}

type Session =
  | { readonly phase: 'idle' }
  | { readonly phase: 'preparing' }
  | { readonly phase: 'running'; readonly base: BaseSource; readonly data: LocalDataInfo; readonly view: SessionView; readonly problem?: string }
  | {
      readonly phase: 'stopped';
      readonly base: BaseSource | null;
      readonly data: LocalDataInfo | null;
      readonly view: SessionView | null;
      readonly error?: string;
    };

/** What the tab trains on: the built-in demo partition (nothing), own files of a built-in task, or own files of a custom task. */
type TrainingData = { readonly ownData?: LoadedSamples; readonly custom?: { readonly source: TaskSource; readonly own: LoadedTaskData } };

/** The task's own spec and a loader of its vocabulary: `null` while reading, `{source: null}` for a task on a built-in base. */
type TaskSourceState = null | { readonly source: TaskSource | null; readonly vocabulary: () => Promise<Vocabulary | null> } | { readonly error: string };

/** Reads the task's spec once: a custom task brings its own encoders, classes and inputs. */
function useTaskSource(taskId: string | null, token: string | null): TaskSourceState {
  const [state, setState] = useState<TaskSourceState>(null);
  useEffect(() => {
    if (!taskId || !token) return;
    let cancelled = false;
    readTaskSource({ url: location.origin, taskId, token }).then(
      (source) => {
        let vocabulary: Promise<Vocabulary | null> | null = null;
        if (!cancelled) setState({ source, vocabulary: () => (vocabulary ??= source ? loadTaskVocabulary(source) : Promise.resolve(null)) });
      },
      (err: unknown) => {
        if (!cancelled) setState({ error: describeError(err) });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [taskId, token]);
  return state;
}

/** Runs the tab's client on the built-in demo partition (no argument) or on own files; `stop` closes it. */
function useTabSession(taskId: string | null, token: string | null): { session: Session; start: (data?: TrainingData) => void; stop: () => void } {
  const [session, setSession] = useState<Session>({ phase: 'idle' });
  const running = useRef<{ client: ChorusClient | null; store: IdentityStore | null; cancelled: boolean } | null>(null);
  const stop = (): void => {
    const r = running.current;
    if (!r) return;
    r.cancelled = true;
    running.current = null;
    void r.client?.close().finally(() => r.store?.close());
    if (!r.client) r.store?.close();
    setSession((s) =>
      s.phase === 'running'
        ? { phase: 'stopped', base: s.base, data: s.data, view: { ...s.view, status: 'closed', detail: 'left by you' } }
        : { phase: 'stopped', base: null, data: null, view: null },
    );
  };
  const start = (data: TrainingData = {}): void => {
    const { ownData, custom } = data;
    if (!taskId || !token || running.current) return;
    const r: { client: ChorusClient | null; store: IdentityStore | null; cancelled: boolean } = { client: null, store: null, cancelled: false };
    running.current = r;
    setSession({ phase: 'preparing' });
    void (async () => {
      try {
        r.store = await openIdentityStore();
        const { identity } = await r.store.localIdentity(
          () => crypto.randomUUID(),
          () => Date.now(),
        );
        const made = await createVolunteerClient({
          taskId,
          token,
          installId: identity.installId,
          identity: r.store,
          ...(ownData ? { ownData } : {}),
          ...(custom ? { custom: { models: createTaskModelFactory(custom.source), own: custom.own } } : {}),
        });
        if (r.cancelled) return;
        r.client = made.client;
        const data: LocalDataInfo = {
          source: ownData || custom ? 'own' : 'demo',
          numExamples: made.numExamples,
          modalities: made.modalities,
          prepareMs: made.prepareMs,
        };
        let view = initialView(made.numExamples, 'Joined: waiting for the coordinator to select this tab for a round.');
        setSession({ phase: 'running', base: made.base, data, view });
        // A round that fails in the tab (e.g. the backend runs out of memory) only reports an error event; show the latest.
        let problem: string | undefined;
        made.client.on((event) => {
          view = applyEvent(view, event);
          if (event.type === 'error') problem = `${event.code}: ${event.message}`;
          else if (event.type === 'update-result' && event.accepted) problem = undefined;
          if (!r.cancelled) setSession({ phase: 'running', base: made.base, data, view, ...(problem === undefined ? {} : { problem }) });
        });
        await made.client.start();
      } catch (err) {
        if (r.cancelled) return;
        running.current = null;
        await r.client?.close();
        r.store?.close();
        setSession((s) => ({
          phase: 'stopped',
          base: s.phase === 'running' ? s.base : null,
          data: s.phase === 'running' ? s.data : null,
          view: s.phase === 'running' ? s.view : null,
          error: describeError(err),
        }));
      }
    })();
  };
  // Leaving the page closes the client, as the pause button does.
  useEffect(
    () => () => {
      const r = running.current;
      if (r) {
        r.cancelled = true;
        void r.client?.close().finally(() => r.store?.close());
      }
    },
    [],
  );
  return { session, start, stop };
}

/** `/join` */
export default function VolunteerPage({ search }: { search: string }): ReactNode {
  const { taskId, token } = joinParams(search);
  const backend = useBackend(search);
  const [consented, setConsented] = useState(false);
  const { session, start, stop } = useTabSession(taskId, token);
  const [ownData, setOwnData] = useState<DataSummary | null>(null);
  const [taskData, setTaskData] = useState<LoadedTaskData | null>(null);
  const taskSource = useTaskSource(taskId, token);
  const custom = taskSource && 'source' in taskSource && taskSource.source ? taskSource : null;
  const ready = Boolean(taskId && token) && backend.status === 'ready';
  const view = session.phase === 'running' || session.phase === 'stopped' ? session.view : null;
  const progress: RoundProgress = view?.progress ?? { serverRound: null, download: null, training: null, upload: null, waitingMessage: WAITING };
  const active = session.phase === 'preparing' || session.phase === 'running';
  const connection =
    session.phase === 'idle'
      ? 'not connected — choose the built-in demo partition to join.'
      : session.phase === 'preparing'
        ? 'preparing — reading the data slice and the model in this tab…'
        : `${view?.status ?? 'closed'}${view?.detail ? ` (${view.detail})` : ''}${view?.clientId ? ` — client ${view.clientId}` : ''}`;
  return (
    <div className="page">
      <h1>Volunteer</h1>
      {taskId && token ? (
        <p className="lead" data-testid="join-task">
          Joining task <strong>{taskId}</strong> with the link's token (…{token.slice(-4)}).
        </p>
      ) : (
        <p className="warning" role="alert" data-testid="join-missing">
          This link names no {taskId ? 'token' : 'task'}. Open the join link you were given (it looks like <code>/join?task=…&amp;token=…</code>). You can still
          check your data and this browser below.
        </p>
      )}
      <p className="status-line" data-testid="connection-status" data-status={view?.status ?? session.phase}>
        Coordinator: {connection}
      </p>
      {session.phase === 'running' && session.problem && (
        <p role="alert" className="warning" data-testid="client-problem">
          Last problem in this tab: {session.problem}
        </p>
      )}
      {session.phase === 'stopped' && session.error && (
        <p role="alert" className="error" data-testid="session-error">
          The tab stopped: {session.error}
        </p>
      )}
      <div className="grid two">
        <div>
          <ConsentText accepted={consented} onChange={setConsented} />
          {taskSource && 'error' in taskSource ? (
            <p role="alert" className="error" data-testid="task-source-error">
              This task&apos;s description could not be read: {taskSource.error}
            </p>
          ) : null}
          {consented && custom?.source ? (
            <>
              <section className="panel" data-testid="custom-task">
                <h2>This task&apos;s model</h2>
                <p className="note">
                  The researcher&apos;s own encoders, fetched from the coordinator and checked against their SHA-256 before use; this tab trains only small
                  adapters and the explainable head on your files and sends only their changes.
                </p>
                {(session.phase === 'running' || session.phase === 'stopped') && session.data ? <LocalDataPanel data={session.data} /> : null}
                {active ? (
                  <button type="button" className="button" data-testid="leave" onClick={stop}>
                    Pause / leave
                  </button>
                ) : taskData ? (
                  <button
                    type="button"
                    className="button"
                    data-testid="use-own-data"
                    disabled={!ready}
                    onClick={() => start({ custom: { source: custom.source!, own: taskData } })}
                  >
                    Train on my {taskData.dataset.numExamples} {taskData.modality} sample{taskData.dataset.numExamples === 1 ? '' : 's'}
                  </button>
                ) : (
                  <p className="note">Choose your files below to join.</p>
                )}
              </section>
              <TaskDataChooser spec={custom.source.spec} vocabulary={custom.vocabulary} onLoaded={setTaskData} />
            </>
          ) : consented ? (
            <>
              <section className="panel" data-testid="demo-partition">
                <h2>Built-in demo partition</h2>
                <p className="note">
                  Train on {DEMO_SLICE_EXAMPLES} spoken &amp; written digits (image, caption and speech) of the built-in training split, chosen for this browser
                  and apart from the demo&apos;s headless clients. They are read in this tab, speech turned into log-mel features here; only model updates are
                  sent. The tab trains the modalities the task has.
                </p>
                <p className="note" data-testid="fedafd-kind" data-kind={TAB_FEDAFD_ASSIGNMENT.kind} data-arch={TAB_FEDAFD_ASSIGNMENT.arch}>
                  In a task whose clients exchange representations instead of weights (FedAFD family), this tab is an{' '}
                  {TAB_FEDAFD_ASSIGNMENT.kind.replace('-', ' ')} ({TAB_FEDAFD_ASSIGNMENT.arch}) trained on the slice&apos;s images: it reads the round&apos;s
                  public samples from the coordinator and sends only its representations of them.
                </p>
                {session.phase === 'running' || session.phase === 'stopped' ? (
                  <p data-testid="model-base" data-base={session.base ?? ''}>
                    Encoders:{' '}
                    {session.base === 'pretrained'
                      ? 'the pretrained base served by the coordinator'
                      : session.base === 'fresh'
                        ? 'fresh (this coordinator does not serve the pretrained weights)'
                        : 'not loaded'}
                  </p>
                ) : null}
                {(session.phase === 'running' || session.phase === 'stopped') && session.data ? <LocalDataPanel data={session.data} /> : null}
                {active ? (
                  <button type="button" className="button" data-testid="leave" onClick={stop}>
                    Pause / leave
                  </button>
                ) : (
                  <div className="inline">
                    <button type="button" className="button" data-testid="use-demo-partition" disabled={!ready} onClick={() => start()}>
                      {backend.status === 'ready' ? 'Use the built-in demo partition' : 'Measuring this browser first…'}
                    </button>
                    {ownData && ownData.numLoaded > 0 ? (
                      <button type="button" className="button" data-testid="use-own-data" disabled={!ready} onClick={() => start({ ownData: ownData.loaded })}>
                        Train on my {ownData.numLoaded} {ownData.modality} sample{ownData.numLoaded === 1 ? '' : 's'}
                      </button>
                    ) : null}
                  </div>
                )}
              </section>
              <DataChooser classNames={DEMO_CLASS_NAMES} onLoaded={setOwnData} />
            </>
          ) : (
            <section className="panel muted">
              <h2>Your data</h2>
              <p>Tick the box above to choose data.</p>
            </section>
          )}
        </div>
        <div>
          <BackendPanel state={backend} />
          <IdentityPanel taskId={taskId} issuedClientId={view?.clientId ?? null} />
          <ProgressBars progress={progress} />
          <ContributionHistory
            entries={view?.contributions ?? []}
            emptyMessage="No contributions yet — waiting for the coordinator to start a round with this tab."
          />
        </div>
      </div>
    </div>
  );
}
