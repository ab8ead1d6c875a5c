/**
 * Which researcher action a task's status allows, and where it leads. One table serves the round
 * engine (which refuses anything else with `TASK_TRANSITION`) and the admin API (which lists the
 * allowed actions beside each task so a dashboard can disable the others).
 *
 *   start   waiting                  → running   (opens round 1 without waiting out the waiting room)
 *   pause   waiting, running         → paused    (the round in flight finishes; no new one opens)
 *   resume  paused                   → running, or waiting when no round was ever opened
 *   stop    waiting, running, paused → stopped   (final; the last checkpoint stays downloadable)
 *
 * `finished`, `failed` and `stopped` allow nothing.
 */
import { TASK_ACTIONS } from '@chorus/protocol';
import type { TaskAction, TaskStatus } from '@chorus/protocol';

const ALLOWED_FROM: Readonly<Record<TaskAction, readonly TaskStatus[]>> = {
  start: ['waiting'],
  pause: ['waiting', 'running'],
  resume: ['paused'],
  stop: ['waiting', 'running', 'paused'],
};

/** The status `action` leads to from `status`, or null when the action is not allowed; `started`: a round was ever opened. */
export function controlTarget(status: TaskStatus, action: TaskAction, started: boolean): TaskStatus | null {
  if (!ALLOWED_FROM[action].includes(status)) return null;
  switch (action) {
    case 'start':
      return 'running';
    case 'pause':
      return 'paused';
    case 'resume':
      return started ? 'running' : 'waiting';
    case 'stop':
      return 'stopped';
  }
}

/** Every action `status` allows, in {@link TASK_ACTIONS} order. */
export function allowedActions(status: TaskStatus): TaskAction[] {
  return TASK_ACTIONS.filter((action) => ALLOWED_FROM[action].includes(status));
}

/** True when `value` names one of {@link TASK_ACTIONS}. */
export function isTaskAction(value: string): value is TaskAction {
  return (TASK_ACTIONS as readonly string[]).includes(value);
}
