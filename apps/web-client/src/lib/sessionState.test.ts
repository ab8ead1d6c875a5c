import type { ClientEvent } from '@chorus/client';
import { describe, expect, it } from 'vitest';
import { applyEvent, initialView } from './sessionState.js';

const fold = (events: ClientEvent[]) => events.reduce(applyEvent, initialView(100, 'waiting'));

describe('applyEvent', () => {
  it('drives the bars from download, train and upload events', () => {
    // Arrange
    const events: ClientEvent[] = [
      { type: 'round-start', serverRound: 3, attempt: 1, roundId: 'r3', deadlineAt: 0 },
      { type: 'download', serverRound: 3, bytesDone: 2048, bytesTotal: 2048 },
      { type: 'train', serverRound: 3, epoch: 1, numEpochs: 2, batch: 3, numBatches: 4, loss: 0.5 },
      { type: 'upload', serverRound: 3, bytesDone: 0, bytesTotal: 900 },
    ];
    // Act
    const view = fold(events);
    // Assert
    expect(view.progress).toEqual({
      serverRound: 3,
      download: { bytesDone: 2048, bytesTotal: 2048 },
      training: { epoch: 1, numEpochs: 2, batch: 3, numBatches: 4, loss: 0.5 },
      upload: { bytesDone: 0, bytesTotal: 900 },
      waitingMessage: 'waiting',
    });
    expect(view.contributions).toEqual([{ serverRound: 3, numExamples: 100, bytesSent: 900, status: 'pending' }]);
  });

  it('records accuracies and the coordinator verdict per round', () => {
    const view = fold([
      { type: 'evaluate', serverRound: 1, scope: 'global', accuracy: 0.1, loss: 2, numExamples: 100 },
      { type: 'evaluate', serverRound: 1, scope: 'local', accuracy: 0.4, loss: 1, numExamples: 100 },
      { type: 'upload', serverRound: 1, bytesDone: 500, bytesTotal: 500 },
      { type: 'update-result', serverRound: 1, accepted: true },
      { type: 'update-result', serverRound: 2, accepted: false, code: 'UPDATE_NORM' },
    ]);
    expect(view.contributions).toEqual([
      { serverRound: 1, numExamples: 100, bytesSent: 500, status: 'accepted', globalAccuracy: 0.1, localAccuracy: 0.4 },
      { serverRound: 2, numExamples: 100, bytesSent: 0, status: 'rejected', code: 'UPDATE_NORM' },
    ]);
  });

  it('a new round clears the bars; a fatal error fails the view, a passing one does not', () => {
    const before = fold([{ type: 'train', serverRound: 1, epoch: 1, numEpochs: 1, batch: 1, numBatches: 1, loss: 1 }]);
    const next = applyEvent(before, { type: 'round-start', serverRound: 2, attempt: 1, roundId: 'r2', deadlineAt: 0 });
    expect(next.progress.training).toBeNull();
    expect(before.progress.training).not.toBeNull();
    expect(applyEvent(next, { type: 'error', code: 'CLIENT_STORAGE', message: 'x', fatal: false })).toBe(next);
    expect(applyEvent(next, { type: 'error', code: 'CLIENT_STORAGE', message: 'x', fatal: true }).status).toBe('failed');
  });
});
