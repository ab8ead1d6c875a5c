/**
 * Per-round progress of the volunteer's tab: model download, local training (epoch and batch) and
 * upload. Driven by the client runtime through props; a stage the runtime has not reported shows a
 * waiting state, never an invented figure.
 */
import type { ReactNode } from 'react';
import { formatBytes, formatPercent, fractionDone } from '../lib/format.js';

/** Bytes moved of a known (or unknown, null) total. */
export interface TransferProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number | null;
}

/** Where local training stands (1-based epoch and batch). */
export interface TrainingProgress {
  readonly epoch: number;
  readonly numEpochs: number;
  readonly batch: number;
  readonly numBatches: number;
  /** Latest batch loss, when reported. */
  readonly loss?: number;
}

/** Props of {@link ProgressBars}; null stages have not started. */
export interface RoundProgress {
  readonly serverRound: number | null;
  readonly download: TransferProgress | null;
  readonly training: TrainingProgress | null;
  readonly upload: TransferProgress | null;
  /** Shown while nothing has started (e.g. "waiting for the coordinator"). */
  readonly waitingMessage: string;
}

function Bar({ label, value, text, testId }: { label: string; value: number | null; text: string; testId: string }): ReactNode {
  return (
    <div className="progress-row" data-testid={testId}>
      <span className="progress-label">{label}</span>
      {value === null ? <progress aria-label={label} /> : <progress aria-label={label} value={value} max={1} />}
      <span className="progress-text">{text}</span>
    </div>
  );
}

function transfer(label: string, p: TransferProgress | null, testId: string, waiting: string): ReactNode {
  if (p === null) return <Bar label={label} value={0} text={waiting} testId={testId} />;
  const value = p.bytesTotal === null ? null : fractionDone(p.bytesDone, p.bytesTotal);
  const text =
    p.bytesTotal === null ? formatBytes(p.bytesDone) : `${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} (${formatPercent(value ?? 0, 0)})`;
  return <Bar label={label} value={value} text={text} testId={testId} />;
}

/** Download / training / upload bars for the current round. */
export function ProgressBars({ progress }: { progress: RoundProgress }): ReactNode {
  const { training } = progress;
  const idle = progress.download === null && progress.training === null && progress.upload === null;
  const trainingValue = training ? fractionDone((training.epoch - 1) * training.numBatches + training.batch, training.numEpochs * training.numBatches) : 0;
  return (
    <section className="panel" aria-labelledby="progress-title" data-testid="progress-bars">
      <h2 id="progress-title">{progress.serverRound === null ? 'This round' : `Round ${progress.serverRound}`}</h2>
      {idle && (
        <p role="status" className="note">
          {progress.waitingMessage}
        </p>
      )}
      {transfer('Download', progress.download, 'progress-download', 'not started')}
      <Bar
        label="Training"
        value={trainingValue}
        text={
          training
            ? `epoch ${training.epoch}/${training.numEpochs}, batch ${training.batch}/${training.numBatches}${training.loss !== undefined ? `, loss ${training.loss.toFixed(3)}` : ''}`
            : 'not started'
        }
        testId="progress-training"
      />
      {transfer('Upload', progress.upload, 'progress-upload', 'not started')}
    </section>
  );
}
