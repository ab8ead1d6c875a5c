import { TASK_ACTIONS, TASK_STATUSES } from '@chorus/protocol';
import type { TaskAction, TaskStatus } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { allowedActions, controlTarget, isTaskAction } from './taskControl.js';

describe('task control table', () => {
  it('leads each allowed action to its status', () => {
    // Arrange: [from, action, started, expected]
    const cases: [TaskStatus, TaskAction, boolean, TaskStatus][] = [
      ['waiting', 'start', false, 'running'],
      ['waiting', 'pause', false, 'paused'],
      ['running', 'pause', true, 'paused'],
      ['paused', 'resume', true, 'running'],
      ['paused', 'resume', false, 'waiting'],
      ['waiting', 'stop', false, 'stopped'],
      ['running', 'stop', true, 'stopped'],
      ['paused', 'stop', true, 'stopped'],
    ];
    // Act
    const targets = cases.map(([from, action, started]) => controlTarget(from, action, started));
    // Assert
    expect(targets).toEqual(cases.map((c) => c[3]));
  });

  it('allows nothing else, and nothing at all once a task has ended', () => {
    // Arrange
    const allowed = new Set(['waiting:start', 'waiting:pause', 'running:pause', 'paused:resume', 'waiting:stop', 'running:stop', 'paused:stop']);
    // Act
    const refused = TASK_STATUSES.flatMap((s) =>
      TASK_ACTIONS.filter((a) => !allowed.has(`${s}:${a}`)).map((a) => [s, a, controlTarget(s, a, true), controlTarget(s, a, false)]),
    );
    // Assert: 6 statuses × 4 actions, 7 allowed.
    expect(refused).toHaveLength(17);
    expect(refused.every(([, , started, notStarted]) => started === null && notStarted === null)).toBe(true);
    expect(['stopped', 'finished', 'failed'].map((s) => allowedActions(s as TaskStatus))).toEqual([[], [], []]);
  });

  it('lists the allowed actions in a fixed order and recognises action names', () => {
    expect(allowedActions('waiting')).toEqual(['start', 'pause', 'stop']);
    expect(allowedActions('running')).toEqual(['pause', 'stop']);
    expect(allowedActions('paused')).toEqual(['resume', 'stop']);
    expect(['start', 'stop', 'rounds', 'Pause', ''].map(isTaskAction)).toEqual([true, true, false, false, false]);
  });
});
