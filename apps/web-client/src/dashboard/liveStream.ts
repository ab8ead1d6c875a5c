/**
 * The dashboard's live feed: the coordinator's admin namespace (`/admin`, the admin token as auth)
 * pushes `taskStatus` on every change of a task's status and `roundCompleted` on every committed
 * round. Each payload is parsed with its protocol schema before use (types are not validation); a
 * malformed one is reported to `onMalformed` and ignored. The stream only says that something
 * changed: the admin HTTP API stays the source of each task's allowed actions and of every figure,
 * so the page re-reads it when an event arrives, and on a slow timer as a fallback for a dropped
 * socket and for what the stream does not push (clients joining).
 */
import { ADMIN_NAMESPACE, isProtocolErrorCode, roundCompletedSchema, taskStatusChangedSchema } from '@chorus/protocol';
import { io } from 'socket.io-client';
import type { TaskSummary } from './dashboardData.js';

/** A status change as the stream reports it. */
export interface TaskStatusChange {
  readonly taskId: string;
  readonly status: string;
  readonly previous: string;
  /** The researcher's action behind it, or null when the rounds themselves changed it. */
  readonly action: string | null;
  /** Epoch milliseconds of the change. */
  readonly at: number;
}

/** A committed round as the stream reports it (figures are re-read from the API). */
export interface RoundCompleted {
  readonly taskId: string;
  readonly serverRound: number;
}

/**
 * The stream's connection: `connecting` until the first connect, `live` while connected,
 * `reconnecting` after a drop or a failed attempt (socket.io retries with back-off), `refused` when
 * the coordinator refused the token (no retry).
 */
export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'refused';

/** What the stream tells the page. */
export interface AdminStreamHandlers {
  onState(state: StreamState, detail: string): void;
  onTaskStatus(change: TaskStatusChange): void;
  onRoundCompleted(round: RoundCompleted): void;
  /** A payload that failed its schema; it was ignored. */
  onMalformed(event: string, reason: string): void;
}

/** The part of a socket.io client socket the stream uses (a fake one in tests). */
export interface AdminSocket {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  connect(): unknown;
  close(): unknown;
}

/** A socket.io socket on `origin`'s admin namespace with `adminToken`, not yet connected; it reconnects on its own. */
export function createAdminSocket(origin: string, adminToken: string): AdminSocket {
  return io(`${origin.replace(/\/$/, '')}${ADMIN_NAMESPACE}`, {
    auth: { adminToken },
    transports: ['websocket'],
    reconnection: true,
    reconnectionDelayMax: 10_000,
    autoConnect: false,
    forceNew: true,
  }) as unknown as AdminSocket;
}

/**
 * Listens to `socket` and connects it; returns a function that closes it, after which no handler is
 * called. Listeners never throw: a handler's exception would otherwise escape into socket.io.
 */
export function openAdminStream(socket: AdminSocket, handlers: AdminStreamHandlers): () => void {
  let closed = false;
  const guard =
    (listener: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      if (closed) return;
      try {
        listener(...args);
      } catch (err) {
        handlers.onMalformed('handler', err instanceof Error ? err.message : String(err));
      }
    };
  socket.on(
    'connect',
    guard(() => handlers.onState('live', 'live updates')),
  );
  socket.on(
    'connect_error',
    guard((err) => {
      const data = (err as { data?: { code?: unknown; message?: unknown } } | undefined)?.data;
      const code = isProtocolErrorCode(data?.code) ? data.code : undefined;
      if (code === 'AUTH_INVALID' || code === 'AUTH_REQUIRED') {
        // socket.io does not retry a refusal from the namespace's middleware; nothing to wait for.
        closed = true;
        socket.close();
        handlers.onState('refused', `the coordinator refused the token for live updates (${code})`);
        return;
      }
      handlers.onState('reconnecting', `cannot reach the live stream (${err instanceof Error ? err.message : 'no answer'})`);
    }),
  );
  socket.on(
    'disconnect',
    guard((reason) => {
      handlers.onState('reconnecting', `live stream dropped (${String(reason)})`);
      // socket.io reconnects by itself except after the server's own disconnect.
      if (reason === 'io server disconnect') socket.connect();
    }),
  );
  socket.on(
    'taskStatus',
    guard((payload) => {
      const parsed = taskStatusChangedSchema.safeParse(payload);
      if (!parsed.success) return handlers.onMalformed('taskStatus', parsed.error.issues[0]?.message ?? 'invalid');
      const { taskId, status, previous, action, at } = parsed.data;
      handlers.onTaskStatus({ taskId, status, previous, action, at });
    }),
  );
  socket.on(
    'roundCompleted',
    guard((payload) => {
      const parsed = roundCompletedSchema.safeParse(payload);
      if (!parsed.success) return handlers.onMalformed('roundCompleted', parsed.error.issues[0]?.message ?? 'invalid');
      handlers.onRoundCompleted({ taskId: parsed.data.taskId, serverRound: parsed.data.serverRound });
    }),
  );
  handlers.onState('connecting', 'connecting to the live stream');
  socket.connect();
  return () => {
    closed = true;
    socket.close();
  };
}

/**
 * The task list after `change`, and whether the list must be re-read. A change older than what the
 * list holds, or one it already shows (the control's own answer often arrives first), changes
 * nothing. Otherwise the task takes the new status at once with no action allowed until the re-read
 * brings the coordinator's own list of allowed actions. An unknown task, or no list yet, asks for a
 * re-read only.
 */
export function applyStatusChange(tasks: readonly TaskSummary[] | null, change: TaskStatusChange): { tasks: readonly TaskSummary[] | null; reread: boolean } {
  const index = tasks?.findIndex((t) => t.taskId === change.taskId) ?? -1;
  const task = tasks?.[index];
  if (!tasks || !task) return { tasks, reread: true };
  if (change.at < task.updatedAt || change.status === task.status) return { tasks, reread: false };
  const next = [...tasks];
  next[index] = { ...task, status: change.status, updatedAt: change.at, actions: [] };
  return { tasks: next, reread: true };
}

/**
 * Wraps an async `run` so that calls while it runs are folded into one more run after it: a burst
 * of events costs at most two reads, and the last one starts after the last event.
 */
export function coalesced(run: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const start = (): void => {
    running = true;
    again = false;
    void run()
      .catch(() => undefined) // `run` reports its own failures; a rejection must not stop later runs
      .finally(() => {
        running = false;
        if (again) start();
      });
  };
  return () => {
    if (running) again = true;
    else start();
  };
}
