import { describe, expect, it } from 'vitest';
import type { TaskSummary } from './dashboardData.js';
import {
  applyStatusChange,
  coalesced,
  openAdminStream,
  type AdminSocket,
  type AdminStreamHandlers,
  type StreamState,
  type TaskStatusChange,
} from './liveStream.js';

/** A socket whose events the test fires by hand; records connects and closes. */
class FakeSocket implements AdminSocket {
  readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  connects = 0;
  closes = 0;

  on(event: string, listener: (...args: unknown[]) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }

  connect(): this {
    this.connects++;
    return this;
  }

  close(): this {
    this.closes++;
    return this;
  }

  fire(event: string, ...args: unknown[]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }
}

/** Handlers that record what they are told. */
function recorder(): AdminStreamHandlers & { states: StreamState[]; changes: TaskStatusChange[]; rounds: string[]; malformed: string[] } {
  const r = {
    states: [] as StreamState[],
    changes: [] as TaskStatusChange[],
    rounds: [] as string[],
    malformed: [] as string[],
    onState: (state: StreamState) => void r.states.push(state),
    onTaskStatus: (change: TaskStatusChange) => void r.changes.push(change),
    onRoundCompleted: (round: { taskId: string; serverRound: number }) => void r.rounds.push(`${round.taskId}#${round.serverRound}`),
    onMalformed: (event: string) => void r.malformed.push(event),
  };
  return r;
}

const statusEvent = { type: 'task-status', protocolVersion: 2, taskId: 'demo', status: 'paused', previous: 'running', action: 'pause', at: 1000 };
const roundEvent = {
  type: 'round-completed',
  protocolVersion: 2,
  taskId: 'demo',
  serverRound: 3,
  attempt: 1,
  globalHash: 'ab'.repeat(32),
  metrics: { numAccepted: 2 },
  trust: [],
};

describe('openAdminStream', () => {
  it('connects, reports the socket state, and hands over status changes and rounds that pass their schema', () => {
    // Arrange
    const socket = new FakeSocket();
    const seen = recorder();
    // Act
    openAdminStream(socket, seen);
    socket.fire('connect');
    socket.fire('taskStatus', statusEvent);
    socket.fire('taskStatus', { ...statusEvent, status: 'asleep' });
    socket.fire('roundCompleted', roundEvent);
    socket.fire('roundCompleted', { ...roundEvent, serverRound: 0 });
    socket.fire('disconnect', 'transport close');
    // Assert
    expect(socket.connects).toBe(1);
    expect(seen.states).toEqual(['connecting', 'live', 'reconnecting']);
    expect(seen.changes).toEqual([{ taskId: 'demo', status: 'paused', previous: 'running', action: 'pause', at: 1000 }]);
    expect(seen.rounds).toEqual(['demo#3']);
    expect(seen.malformed).toEqual(['taskStatus', 'roundCompleted']);
  });

  it('stops for good when the token is refused, and keeps retrying when the coordinator is only unreachable', () => {
    // Arrange
    const refused = new FakeSocket();
    const unreachable = new FakeSocket();
    const [a, b] = [recorder(), recorder()];
    openAdminStream(refused, a);
    openAdminStream(unreachable, b);
    // Act
    refused.fire('connect_error', Object.assign(new Error('admin token required'), { data: { code: 'AUTH_INVALID', message: 'admin token required' } }));
    refused.fire('taskStatus', statusEvent);
    unreachable.fire('connect_error', new Error('websocket error'));
    unreachable.fire('connect');
    unreachable.fire('disconnect', 'io server disconnect');
    // Assert
    expect(a.states).toEqual(['connecting', 'refused']);
    expect(refused.closes).toBe(1);
    expect(a.changes).toEqual([]);
    expect(b.states).toEqual(['connecting', 'reconnecting', 'live', 'reconnecting']);
    // socket.io leaves a server-side disconnect to the caller: one connect at start, one after it.
    expect(unreachable.connects).toBe(2);
    expect(unreachable.closes).toBe(0);
  });

  it('calls no handler after it is closed, and a throwing handler does not escape the listener', () => {
    // Arrange
    const socket = new FakeSocket();
    const seen = recorder();
    const close = openAdminStream(socket, {
      ...seen,
      onRoundCompleted: () => {
        throw new Error('boom');
      },
    });
    // Act
    socket.fire('roundCompleted', roundEvent);
    close();
    socket.fire('taskStatus', statusEvent);
    socket.fire('connect');
    // Assert
    expect(seen.malformed).toEqual(['handler']);
    expect(seen.changes).toEqual([]);
    expect(seen.states).toEqual(['connecting']);
    expect(socket.closes).toBe(1);
  });
});

describe('applyStatusChange', () => {
  const running: TaskSummary = { taskId: 'demo', status: 'running', updatedAt: 900, actions: ['pause', 'stop'], hasModel: false };
  const other: TaskSummary = { taskId: 'other', status: 'waiting', updatedAt: 10, actions: ['start', 'pause', 'stop'], hasModel: true };
  const change: TaskStatusChange = { taskId: 'demo', status: 'paused', previous: 'running', action: 'pause', at: 1000 };

  it('shows the new status at once, allows no action until the list is re-read, and leaves other tasks alone', () => {
    // Arrange
    const tasks = [running, other];
    // Act
    const result = applyStatusChange(tasks, change);
    // Assert
    expect(result.reread).toBe(true);
    expect(result.tasks).toEqual([{ ...running, status: 'paused', updatedAt: 1000, actions: [] }, other]);
    expect(tasks[0]).toBe(running);
  });

  it('changes nothing for a change the list already shows or one older than it', () => {
    // Arrange
    const tasks = [running, other];
    // Act
    const same = applyStatusChange(tasks, { ...change, status: 'running', previous: 'waiting' });
    const older = applyStatusChange(tasks, { ...change, at: 899 });
    // Assert
    expect(same).toEqual({ tasks, reread: false });
    expect(same.tasks).toBe(tasks);
    expect(older.tasks).toBe(tasks);
    expect(older.reread).toBe(false);
  });

  it('asks for a re-read when the task is not listed yet or no list was read', () => {
    expect(applyStatusChange([other], change)).toEqual({ tasks: [other], reread: true });
    expect(applyStatusChange(null, change)).toEqual({ tasks: null, reread: true });
  });
});

describe('coalesced', () => {
  it('folds calls made while a run is in flight into one more run after it', async () => {
    // Arrange: runs that finish only when the test says so.
    const finishers: (() => void)[] = [];
    let runs = 0;
    const trigger = coalesced(() => {
      runs++;
      return new Promise<void>((resolve) => finishers.push(resolve));
    });
    const settle = async (): Promise<void> => {
      finishers.shift()?.();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    // Act
    trigger();
    trigger();
    trigger();
    trigger();
    const duringFirst = runs;
    await settle();
    const afterFirst = runs;
    await settle();
    trigger();
    // Assert
    expect(duringFirst).toBe(1);
    expect(afterFirst).toBe(2);
    expect(runs).toBe(3);
  });

  it('keeps running after a run fails', async () => {
    // Arrange
    let runs = 0;
    const trigger = coalesced(() => (runs++ === 0 ? Promise.reject(new Error('down')) : Promise.resolve()));
    // Act
    trigger();
    for (let i = 0; i < 5; i++) await Promise.resolve();
    trigger();
    // Assert
    expect(runs).toBe(2);
  });
});

describe('the stream of a real coordinator', () => {
  it('goes live with the admin token, reports a pause made over the API, and is refused a wrong token', async () => {
    // Arrange: a coordinator with one task and no client, so it stays waiting until paused.
    const { MemoryStore, parseTask, startCoordinator } = await import('@chorus/coordinator');
    const { tensor } = await import('@chorus/fl-core');
    const { pino } = await import('pino');
    const { createAdminSocket } = await import('./liveStream.js');
    const task = parseTask({
      id: 'live',
      dataset: { name: 'digits', modalities: ['image'] },
      model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
      strategy: { name: 'fedavg' },
      rounds: 1,
      clientsPerRound: 2,
      minClients: 2,
      roundDeadlineMs: 10_000,
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.1,
      maxUpdateBytes: 4096,
      seed: 1,
    });
    const store = new MemoryStore();
    const server = await startCoordinator({
      tasks: [{ config: task, initialGlobal: () => [tensor('image/w', [1], new Float32Array([1]))] }],
      store,
      adminToken: 'admin-1',
      logger: pino({ level: 'silent' }),
      processMetrics: false,
    });
    const good = recorder();
    const bad = recorder();
    const closers: (() => void)[] = [];
    try {
      closers.push(openAdminStream(createAdminSocket(server.url, 'admin-1'), good));
      closers.push(openAdminStream(createAdminSocket(server.url, 'wrong'), bad));
      await until(() => good.states.includes('live') && bad.states.includes('refused'));
      // Act
      const res = await fetch(`${server.url}/api/tasks/live/pause`, { method: 'POST', headers: { authorization: 'Bearer admin-1' } });
      await until(() => good.changes.length > 0);
      // Assert
      expect(res.status).toBe(200);
      expect(good.changes).toEqual([expect.objectContaining({ taskId: 'live', status: 'paused', previous: 'waiting', action: 'pause' })]);
      expect(bad.states).toEqual(['connecting', 'refused']);
      expect(bad.changes).toEqual([]);
      expect(good.malformed).toEqual([]);
    } finally {
      closers.forEach((close) => close());
      await server.close();
      store.close();
    }
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!condition()) throw new Error('the condition never held');
}
