/**
 * Progress events of the client runtime, for the volunteer page and the headless CLI. Each event is
 * tagged by `type`; listeners get them synchronously, in order, and a listener that throws is
 * ignored (it must not break training). Figures are only reported once measured — a stage that has
 * not happened emits nothing.
 */
import type { ProtocolErrorCode } from '@chorus/protocol';
import type { ClientErrorCode } from './errors.js';

/** Where the client stands. */
export type ClientStatus =
  | 'connecting'
  | 'waiting' // joined, waiting to be selected
  | 'training'
  | 'uploading'
  | 'disconnected'
  | 'finished' // the task ended (or was already over)
  | 'failed' // unrecoverable (refused identity, protocol mismatch, model mismatch)
  | 'closed'; // closed by its owner

/** Status changes, with a short human-readable detail. */
export interface StatusEvent {
  readonly type: 'status';
  readonly status: ClientStatus;
  readonly detail?: string;
}

/** The identity the coordinator gave; `resumed` when a stored one was accepted. */
export interface IdentityEvent {
  readonly type: 'identity';
  readonly clientId: string;
  readonly resumed: boolean;
  readonly completedRounds: number;
}

/** This client was selected for a round. */
export interface RoundStartEvent {
  readonly type: 'round-start';
  readonly serverRound: number;
  readonly attempt: number;
  readonly roundId: string;
  readonly deadlineAt: number;
}

/** Bytes of the global model received (socket.io delivers a message whole, so once per round). */
export interface DownloadEvent {
  readonly type: 'download';
  readonly serverRound: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

/** One local optimiser step done (1-based epoch and batch). */
export interface TrainEvent {
  readonly type: 'train';
  readonly serverRound: number;
  readonly epoch: number;
  readonly numEpochs: number;
  readonly batch: number;
  readonly numBatches: number;
  readonly loss: number;
}

/** Accuracy on this client's own data: of the received global model ('global'), or after local training ('local'). */
export interface EvaluateEvent {
  readonly type: 'evaluate';
  readonly serverRound: number;
  readonly scope: 'global' | 'local';
  readonly accuracy: number;
  readonly loss: number;
  readonly numExamples: number;
}

/** Upload progress: 0 of the total when it starts, the total once the coordinator acknowledged it. */
export interface UploadEvent {
  readonly type: 'upload';
  readonly serverRound: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

/** The coordinator accepted or refused this client's update. */
export interface UpdateResultEvent {
  readonly type: 'update-result';
  readonly serverRound: number;
  readonly accepted: boolean;
  /** The refusal code, when refused. */
  readonly code?: ProtocolErrorCode;
  readonly message?: string;
}

/** A round closed on the coordinator (completed, or to be retried). */
export interface RoundEndEvent {
  readonly type: 'round-end';
  readonly serverRound: number;
  readonly attempt: number;
  readonly status: 'completed' | 'retry';
  readonly globalHash: string;
}

/** The task ended: its rounds are done, it failed, or a researcher stopped it. */
export interface TaskEndEvent {
  readonly type: 'task-end';
  readonly status: 'finished' | 'failed' | 'stopped';
  readonly completedRounds: number;
  readonly globalHash: string;
}

/** Something went wrong; `fatal` when the client stopped because of it. */
export interface ErrorEvent {
  readonly type: 'error';
  readonly code: ClientErrorCode;
  readonly protocolCode?: ProtocolErrorCode;
  readonly message: string;
  readonly fatal: boolean;
}

/** Every event a client emits. */
export type ClientEvent =
  | StatusEvent
  | IdentityEvent
  | RoundStartEvent
  | DownloadEvent
  | TrainEvent
  | EvaluateEvent
  | UploadEvent
  | UpdateResultEvent
  | RoundEndEvent
  | TaskEndEvent
  | ErrorEvent;

/** A listener of {@link ClientEvent}s. */
export type ClientEventListener = (event: ClientEvent) => void;

/** A minimal synchronous emitter; `on` returns the unsubscribe function. */
export class ClientEvents {
  private readonly listeners = new Set<ClientEventListener>();

  /** Subscribes `listener`; call the returned function to unsubscribe. */
  on(listener: ClientEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delivers `event` to every listener; a throwing listener does not stop the others or the caller. */
  emit(event: ClientEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // A UI bug must not abort a round; listeners own their errors.
      }
    }
  }
}
