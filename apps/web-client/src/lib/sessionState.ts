/**
 * What the volunteer page shows of the tab's client, folded from the runtime's events: connection
 * status, the current round's download / training / upload, and one contribution per round. Pure,
 * so the page and its tests see the same figures; only what the runtime reported is shown.
 */
import type { ClientEvent, ClientStatus } from '@chorus/client';
import type { Contribution } from '../components/ContributionHistory.js';
import type { RoundProgress } from '../components/ProgressBars.js';

/** The page's view of the client. */
export interface SessionView {
  readonly status: ClientStatus | 'preparing';
  readonly detail: string;
  readonly clientId: string | null;
  readonly progress: RoundProgress;
  readonly contributions: readonly Contribution[];
  /** Examples in the local slice (the number sent with each contribution). */
  readonly numExamples: number;
}

/** The view before any event, for a slice of `numExamples` and the given waiting text. */
export function initialView(numExamples: number, waitingMessage: string): SessionView {
  return {
    status: 'preparing',
    detail: '',
    clientId: null,
    progress: { serverRound: null, download: null, training: null, upload: null, waitingMessage },
    contributions: [],
    numExamples,
  };
}

function upsert(list: readonly Contribution[], serverRound: number, change: (c: Contribution) => Contribution, fresh: Contribution): Contribution[] {
  const at = list.findIndex((c) => c.serverRound === serverRound);
  if (at < 0) return [...list, change(fresh)];
  return list.map((c, i) => (i === at ? change(c) : c));
}

/** `view` after `event`; never mutates `view`. */
export function applyEvent(view: SessionView, event: ClientEvent): SessionView {
  const pending = (serverRound: number): Contribution => ({ serverRound, numExamples: view.numExamples, bytesSent: 0, status: 'pending' });
  const p = view.progress;
  switch (event.type) {
    case 'status':
      return { ...view, status: event.status, detail: event.detail ?? '' };
    case 'identity':
      return { ...view, clientId: event.clientId };
    case 'round-start':
      return { ...view, progress: { ...p, serverRound: event.serverRound, download: null, training: null, upload: null } };
    case 'download':
      return { ...view, progress: { ...p, serverRound: event.serverRound, download: { bytesDone: event.bytesDone, bytesTotal: event.bytesTotal } } };
    case 'train':
      return {
        ...view,
        progress: {
          ...p,
          serverRound: event.serverRound,
          training: { epoch: event.epoch, numEpochs: event.numEpochs, batch: event.batch, numBatches: event.numBatches, loss: event.loss },
        },
      };
    case 'evaluate': {
      const key = event.scope === 'local' ? 'localAccuracy' : 'globalAccuracy';
      return { ...view, contributions: upsert(view.contributions, event.serverRound, (c) => ({ ...c, [key]: event.accuracy }), pending(event.serverRound)) };
    }
    case 'upload':
      return {
        ...view,
        progress: { ...p, serverRound: event.serverRound, upload: { bytesDone: event.bytesDone, bytesTotal: event.bytesTotal } },
        contributions: upsert(view.contributions, event.serverRound, (c) => ({ ...c, bytesSent: event.bytesTotal }), pending(event.serverRound)),
      };
    case 'update-result':
      return {
        ...view,
        contributions: upsert(
          view.contributions,
          event.serverRound,
          (c) => {
            const { code: _dropped, ...rest } = c;
            return event.accepted ? { ...rest, status: 'accepted' } : { ...rest, status: 'rejected', code: event.code ?? 'no code' };
          },
          pending(event.serverRound),
        ),
      };
    case 'task-end':
      return { ...view, status: 'finished', detail: `task ${event.status} after ${event.completedRounds} rounds` };
    case 'error':
      return event.fatal ? { ...view, status: 'failed', detail: `${event.code}: ${event.message}` } : view;
    case 'round-end':
      return view;
  }
}
