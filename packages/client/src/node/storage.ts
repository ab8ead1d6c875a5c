/**
 * A file-backed identity storage for headless clients: one JSON file holding the identity per task,
 * written atomically (temporary file + rename) and readable by its owner only, since the client
 * secret is a credential.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ClientError } from '../errors.js';
import { isStoredIdentity } from '../storage.js';
import type { IdentityStorage, StoredIdentity } from '../storage.js';

/** The identity file of headless client `client` in an identity folder (`--identity-dir`). */
export function identityFileOf(dir: string, client: number): string {
  return join(resolve(dir), `client-${client}.json`);
}

/** Identities in a JSON file (`{taskId: identity}`); a missing file holds none. */
export class FileIdentityStorage implements IdentityStorage {
  constructor(readonly path: string) {}

  /** The stored identity of `taskId`, or null (also when the file is absent or unreadable as JSON). */
  async load(taskId: string): Promise<StoredIdentity | null> {
    const all = await this.readAll();
    const v = all[taskId];
    return isStoredIdentity(v, taskId) ? v : null;
  }

  /** Stores (replaces) the identity of its task. */
  async save(identity: StoredIdentity): Promise<void> {
    const all = await this.readAll();
    all[identity.taskId] = identity;
    await this.writeAll(all);
  }

  /** Forgets the identity of `taskId`. */
  async clear(taskId: string): Promise<void> {
    const all = await this.readAll();
    if (!(taskId in all)) return;
    delete all[taskId];
    await this.writeAll(all);
  }

  private async readAll(): Promise<Record<string, unknown>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new ClientError('CLIENT_STORAGE', `${this.path}: ${(err as Error).message}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    } catch {
      // A corrupt file is treated as empty: the client joins afresh rather than not at all.
      return {};
    }
  }

  private async writeAll(all: Record<string, unknown>): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(all), { mode: 0o600 });
      await rename(tmp, this.path);
    } catch (err) {
      throw new ClientError('CLIENT_STORAGE', `${this.path}: ${(err as Error).message}`);
    }
  }
}
