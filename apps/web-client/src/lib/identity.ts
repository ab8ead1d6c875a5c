/**
 * The tab's persistent identity in IndexedDB, so a reload resumes instead of starting over. Two
 * records: this browser's local identity (created on first visit; names the install in the UI and
 * keys local caches) and, per task, the pseudonymous credentials the coordinator issues on the
 * first `hello` (`clientId` + `clientSecret`, sent back to resume). Nothing in here is a raw sample.
 * The factory is a parameter so any IndexedDB implementation (or a fake) can stand in.
 */
import { WebClientError } from './errors.js';

/** This browser's identity, created once. */
export interface LocalIdentity {
  /** Random UUID. */
  readonly installId: string;
  /** Epoch milliseconds of creation. */
  readonly createdAt: number;
}

/** What the coordinator issued for one task. */
export interface TaskCredentials {
  readonly taskId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Epoch milliseconds when it was stored. */
  readonly issuedAt: number;
}

const DB_NAME = 'chorus';
const DB_VERSION = 1;
const LOCAL_STORE = 'identity';
const CREDENTIALS_STORE = 'credentials';
const LOCAL_KEY = 'local';

function request<T>(req: IDBRequest<T>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', `${what}: ${req.error?.message ?? 'request failed'}`));
  });
}

function isLocalIdentity(value: unknown): value is LocalIdentity {
  const v = value as Partial<LocalIdentity> | undefined;
  return typeof v === 'object' && v !== null && typeof v.installId === 'string' && v.installId.length > 0 && typeof v.createdAt === 'number';
}

function isCredentials(value: unknown, taskId: string): value is TaskCredentials {
  const v = value as Partial<TaskCredentials> | undefined;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.taskId === taskId &&
    typeof v.clientId === 'string' &&
    typeof v.clientSecret === 'string' &&
    typeof v.issuedAt === 'number'
  );
}

/** IndexedDB-backed identity storage; open with {@link openIdentityStore}. */
export class IdentityStore {
  constructor(private readonly db: IDBDatabase) {}

  /**
   * The stored local identity, or a new one (from `newId` and `now`) written atomically: the get
   * and the put share one read-write transaction, so two tabs opening at once agree on one id.
   */
  async localIdentity(newId: () => string, now: () => number): Promise<{ identity: LocalIdentity; created: boolean }> {
    const tx = this.db.transaction(LOCAL_STORE, 'readwrite');
    const store = tx.objectStore(LOCAL_STORE);
    const existing: unknown = await request(store.get(LOCAL_KEY), 'reading the local identity');
    if (isLocalIdentity(existing)) return { identity: existing, created: false };
    const identity: LocalIdentity = { installId: newId(), createdAt: now() };
    await request(store.put(identity, LOCAL_KEY), 'writing the local identity');
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', `writing the local identity: ${tx.error?.message ?? 'transaction failed'}`));
    });
    return { identity, created: true };
  }

  /** Credentials stored for `taskId`, or null when the coordinator has issued none yet. */
  async credentials(taskId: string): Promise<TaskCredentials | null> {
    const tx = this.db.transaction(CREDENTIALS_STORE, 'readonly');
    const value: unknown = await request(tx.objectStore(CREDENTIALS_STORE).get(taskId), 'reading credentials');
    return isCredentials(value, taskId) ? value : null;
  }

  /** Stores what the coordinator issued; refuses empty fields with `WEB_STORAGE_UNAVAILABLE` left unwritten. */
  async saveCredentials(credentials: TaskCredentials): Promise<void> {
    if (!credentials.taskId || !credentials.clientId || !credentials.clientSecret) {
      throw new WebClientError('WEB_STORAGE_UNAVAILABLE', 'saveCredentials: taskId, clientId and clientSecret must be non-empty');
    }
    const tx = this.db.transaction(CREDENTIALS_STORE, 'readwrite');
    await request(tx.objectStore(CREDENTIALS_STORE).put({ ...credentials }, credentials.taskId), 'writing credentials');
  }

  /** Forgets the credentials of `taskId` (the coordinator no longer knows them). */
  async clearCredentials(taskId: string): Promise<void> {
    const tx = this.db.transaction(CREDENTIALS_STORE, 'readwrite');
    await request(tx.objectStore(CREDENTIALS_STORE).delete(taskId), 'deleting credentials');
  }

  /** Closes the connection. */
  close(): void {
    this.db.close();
  }
}

/** Opens (creating on first use) the identity database; `WEB_STORAGE_UNAVAILABLE` when IndexedDB is absent or refuses. */
export async function openIdentityStore(factory: IDBFactory | undefined = globalThis.indexedDB): Promise<IdentityStore> {
  if (factory === undefined) throw new WebClientError('WEB_STORAGE_UNAVAILABLE', 'this browser has no IndexedDB');
  const req = factory.open(DB_NAME, DB_VERSION);
  req.onupgradeneeded = () => {
    const db = req.result;
    if (!db.objectStoreNames.contains(LOCAL_STORE)) db.createObjectStore(LOCAL_STORE);
    if (!db.objectStoreNames.contains(CREDENTIALS_STORE)) db.createObjectStore(CREDENTIALS_STORE);
  };
  const opened = new Promise<IDBDatabase>((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', `opening IndexedDB: ${req.error?.message ?? 'refused'}`));
    req.onblocked = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', 'opening IndexedDB: blocked by another tab holding an older version'));
  });
  return new IdentityStore(await opened);
}
