/**
 * Where a client keeps the identity the coordinator issued (client id + secret, per task), so a
 * reconnect or a restart resumes instead of joining as a stranger. Injected: IndexedDB in a browser
 * tab, a file or memory in Node. Nothing in here is a raw sample.
 */

/** What the coordinator issued for one task. */
export interface StoredIdentity {
  readonly taskId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Epoch milliseconds when it was stored. */
  readonly issuedAt: number;
}

/** Persistence of identities; implementations reject with an Error when the medium fails. */
export interface IdentityStorage {
  load(taskId: string): Promise<StoredIdentity | null>;
  save(identity: StoredIdentity): Promise<void>;
  /** Forgets the identity of `taskId` (e.g. when the coordinator no longer knows it). */
  clear(taskId: string): Promise<void>;
}

/** True when `value` is a well-formed identity for `taskId`. */
export function isStoredIdentity(value: unknown, taskId: string): value is StoredIdentity {
  const v = value as Partial<StoredIdentity> | null | undefined;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.taskId === taskId &&
    typeof v.clientId === 'string' &&
    v.clientId.length > 0 &&
    typeof v.clientSecret === 'string' &&
    v.clientSecret.length > 0 &&
    typeof v.issuedAt === 'number'
  );
}

/** Identities in memory: survive reconnects, not restarts. */
export class MemoryIdentityStorage implements IdentityStorage {
  private readonly byTask = new Map<string, StoredIdentity>();

  /** The stored identity of `taskId`, or null. */
  load(taskId: string): Promise<StoredIdentity | null> {
    return Promise.resolve(this.byTask.get(taskId) ?? null);
  }

  /** Stores (replaces) the identity of its task. */
  save(identity: StoredIdentity): Promise<void> {
    this.byTask.set(identity.taskId, { ...identity });
    return Promise.resolve();
  }

  /** Forgets the identity of `taskId`. */
  clear(taskId: string): Promise<void> {
    this.byTask.delete(taskId);
    return Promise.resolve();
  }
}
