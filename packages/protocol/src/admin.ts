/**
 * The admin namespace (`/admin`) of the coordinator's socket.io server: dashboards connect with the
 * admin token as `auth` and receive one `roundCompleted` event per committed round — the round's
 * stored metrics and the trust score T_k of every client scored in it — and one `taskStatus` event
 * per change of a task's status. The stream only pushes; the admin HTTP API stays the source of
 * history and the only way to act on a task (`POST /api/tasks/:id/{start,pause,resume,stop}`).
 */
import { z } from 'zod';

/** Namespace of the admin stream. */
export const ADMIN_NAMESPACE = '/admin';

/** What a dashboard passes as socket.io's `auth` option on the admin namespace. */
export const adminAuthSchema = z.strictObject({
  adminToken: z.string().min(1).max(256),
});
/** See {@link adminAuthSchema}. */
export type AdminAuthPayload = z.input<typeof adminAuthSchema>;

/** One committed round. */
export const roundCompletedSchema = z.strictObject({
  type: z.literal('round-completed'),
  protocolVersion: z.number().int().nonnegative(),
  taskId: z.string().min(1).max(128),
  serverRound: z.number().int().positive(),
  attempt: z.number().int().positive(),
  globalHash: z.string().regex(/^[0-9a-f]{64}$/),
  metrics: z.record(z.string(), z.number()),
  trust: z.array(z.strictObject({ clientId: z.string().min(1).max(128), trust: z.number().min(0).max(1) })),
});
/** See {@link roundCompletedSchema}. */
export type RoundCompletedPayload = z.input<typeof roundCompletedSchema>;

/**
 * Lifecycle of a task. `paused` finishes the round in flight and opens no new one; `stopped`,
 * `finished` and `failed` are final.
 */
export const TASK_STATUSES = ['waiting', 'running', 'paused', 'stopped', 'finished', 'failed'] as const;
/** One of {@link TASK_STATUSES}. */
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** What a researcher can do to a task; the coordinator refuses an action its status does not allow. */
export const TASK_ACTIONS = ['start', 'pause', 'resume', 'stop'] as const;
/** One of {@link TASK_ACTIONS}. */
export type TaskAction = (typeof TASK_ACTIONS)[number];

/** Body of `POST /api/tasks/:id/<action>`: empty, or a short reason kept in the log and the stream. */
export const taskControlBodySchema = z.strictObject({
  reason: z.string().min(1).max(200).optional(),
});
/** See {@link taskControlBodySchema}. */
export type TaskControlBody = z.input<typeof taskControlBodySchema>;

/** Body of `POST /api/tasks/:id/invitations`: how many identities the link may admit, and a note for the researcher. */
export const invitationCreateBodySchema = z.strictObject({
  quota: z.number().int().min(1).max(10_000).default(1),
  label: z.string().min(1).max(200).optional(),
});
/** See {@link invitationCreateBodySchema}. */
export type InvitationCreateBody = z.input<typeof invitationCreateBodySchema>;

/** A task's status changed: by a researcher's action, or by the rounds themselves (`action: null`). */
export const taskStatusChangedSchema = z.strictObject({
  type: z.literal('task-status'),
  protocolVersion: z.number().int().nonnegative(),
  taskId: z.string().min(1).max(128),
  status: z.enum(TASK_STATUSES),
  previous: z.enum(TASK_STATUSES),
  action: z.enum(TASK_ACTIONS).nullable(),
  reason: z.string().max(200).optional(),
  at: z.number().int().nonnegative(),
});
/** See {@link taskStatusChangedSchema}. */
export type TaskStatusChangedPayload = z.input<typeof taskStatusChangedSchema>;

/** Events the coordinator emits on the admin namespace. */
export interface AdminServerToClientEvents {
  roundCompleted: (payload: RoundCompletedPayload) => void;
  taskStatus: (payload: TaskStatusChangedPayload) => void;
}

/** Events a dashboard emits on the admin namespace (none: it only listens). */
export type AdminClientToServerEvents = Record<string, never>;
