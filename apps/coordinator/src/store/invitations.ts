/** The rule both stores enforce when an invitation admits an identity (one home for it). */
import { CoordinatorError } from '../errors.js';
import type { InvitationRecord } from './types.js';

/** Throws the coded reason `inv` cannot admit one more identity of `taskId`; returns when it can. */
export function checkInvitationUse(inv: InvitationRecord | undefined, taskId: string, invitationId: string): void {
  if (!inv || inv.taskId !== taskId) throw new CoordinatorError('INVITATION_UNKNOWN', `no invitation ${invitationId} for task ${taskId}`);
  if (inv.revokedAt !== null) throw new CoordinatorError('INVITATION_REVOKED', `invitation ${invitationId} was revoked`);
  if (inv.used >= inv.quota) throw new CoordinatorError('INVITATION_EXHAUSTED', `invitation ${invitationId} has admitted its ${inv.quota} identities`);
}
