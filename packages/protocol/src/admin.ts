/**
 * The admin namespace (`/admin`) of the coordinator's socket.io server: dashboards connect with the
 * admin token as `auth` and receive one `roundCompleted` event per committed round — the round's
 * stored metrics and the trust score T_k of every client scored in it. The stream only pushes; the
 * admin HTTP API stays the source of history.
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

/** Events the coordinator emits on the admin namespace. */
export interface AdminServerToClientEvents {
  roundCompleted: (payload: RoundCompletedPayload) => void;
}

/** Events a dashboard emits on the admin namespace (none: it only listens). */
export type AdminClientToServerEvents = Record<string, never>;
