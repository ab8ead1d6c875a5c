/**
 * Start / Pause / Resume / Stop for one task, with its current status. A button is enabled only
 * when the coordinator lists its action as allowed for the task's status, and none while a request
 * is in flight; Stop is final, so it asks for a confirmation first.
 */
import { useState, type ReactNode } from 'react';
import type { TaskAction, TaskSummary } from './dashboardData.js';

const LABELS: Readonly<Record<TaskAction, string>> = { start: 'Start', pause: 'Pause', resume: 'Resume', stop: 'Stop' };

/** What each action does, shown as the button's title. */
const HINTS: Readonly<Record<TaskAction, string>> = {
  start: 'Open round 1 as soon as enough clients wait, without waiting out the waiting room',
  pause: 'Let the round in flight finish, then open no new round until resumed',
  resume: 'Open rounds again',
  stop: 'End the task for good; the last global model stays downloadable',
};

/** Control buttons for `task`; `onAction` performs the request and settles when it is answered. */
export function TaskControls({ task, onAction }: { task: TaskSummary; onAction: (action: TaskAction) => Promise<void> }): ReactNode {
  const [busy, setBusy] = useState(false);
  const [confirmingStop, setConfirmingStop] = useState(false);
  const allowed = (action: TaskAction): boolean => !busy && task.actions.includes(action);
  const run = (action: TaskAction): void => {
    setBusy(true);
    setConfirmingStop(false);
    void onAction(action).finally(() => setBusy(false));
  };
  return (
    <div className="toolbar" role="group" aria-label="Task controls" data-testid="task-controls">
      <span>
        Status:{' '}
        <strong data-testid="task-status" data-status={task.status}>
          {task.status}
        </strong>
      </span>
      {(['start', 'pause', 'resume'] as const).map((action) => (
        <button key={action} type="button" disabled={!allowed(action)} title={HINTS[action]} onClick={() => run(action)} data-testid={`control-${action}`}>
          {LABELS[action]}
        </button>
      ))}
      {confirmingStop ? (
        <span role="alertdialog" aria-label="Confirm stop" className="inline">
          Stop {task.taskId} for good? No round will run again.
          <button type="button" disabled={!allowed('stop')} onClick={() => run('stop')} data-testid="control-stop-confirm">
            Stop for good
          </button>
          <button type="button" className="secondary" onClick={() => setConfirmingStop(false)}>
            Cancel
          </button>
        </span>
      ) : (
        <button
          type="button"
          className="secondary"
          disabled={!allowed('stop')}
          title={HINTS.stop}
          onClick={() => setConfirmingStop(true)}
          data-testid="control-stop"
        >
          {LABELS.stop}
        </button>
      )}
    </div>
  );
}
