/**
 * Seeded identities for a simulation's headless clients. Client ids enter the results (sampling
 * draws from the sorted ids, aggregation and trust are keyed by them, every update carries its
 * sender's id), so ids drawn at random on the first `hello` would make two runs of one command
 * differ. Instead the simulation registers each client before it connects: client i is named
 * `client-i`, its id is derived from (task id, task seed, name), and its secret — a credential,
 * still random — is written to the identity file the headless client reads (`--identity-dir`).
 * The coordinator then sees ordinary resumed identities; nothing in it changes.
 *
 * Run again on the same store (a resumed simulation), the files and the store's records are reused.
 * The file is written before the store is, so a crash between the two leaves a file whose client
 * the next run registers, never a registered client whose secret is lost.
 */
import { FileIdentityStorage, identityFileOf } from '@chorus/client/node';
import { CoordinatorError } from '../errors.js';
import { derivedId, generateToken, hashToken, tokenMatchesHash } from '../security/tokens.js';
import type { CoordinatorStore } from '../store/types.js';
import type { TaskConfig } from '@chorus/protocol';

/** The name of simulated client `index`. */
export function simulatedClientName(index: number): string {
  return `client-${index}`;
}

/** The id of the simulated client named `name` in `task`: a function of (task id, task seed, name) only. */
export function simulatedClientId(task: Pick<TaskConfig, 'id' | 'seed'>, name: string): string {
  return derivedId('c', ['chorus/simulated-client', task.id, task.seed, name]);
}

/** Options of {@link registerSimulatedClients}. */
export interface RegisterSimulatedClientsOptions {
  readonly store: CoordinatorStore;
  /** Must already be in the store (the coordinator upserts its tasks when it starts). */
  readonly task: Pick<TaskConfig, 'id' | 'seed'>;
  readonly numClients: number;
  /** Folder of the clients' identity files (the headless clients' `--identity-dir`). */
  readonly identityDir: string;
  readonly now: number;
}

/**
 * Registers clients 0 … numClients − 1 of the task under their derived ids (reusing what an
 * earlier run on this store registered) and returns the ids in client order. Throws
 * `STORE_CONFLICT` when the store holds one of the ids with a secret no identity file matches.
 */
export async function registerSimulatedClients(options: RegisterSimulatedClientsOptions): Promise<string[]> {
  const { store, task } = options;
  const ids: string[] = [];
  for (let i = 0; i < options.numClients; i++) {
    const clientId = simulatedClientId(task, simulatedClientName(i));
    const storage = new FileIdentityStorage(identityFileOf(options.identityDir, i));
    const saved = await storage.load(task.id);
    const record = store.getClient(clientId);
    let secret = saved?.clientId === clientId ? saved.clientSecret : undefined;
    if (record) {
      if (record.taskId !== task.id || secret === undefined || !tokenMatchesHash(secret, record.secretHash)) {
        throw new CoordinatorError(
          'STORE_CONFLICT',
          `the store holds simulated client ${clientId} of ${record.taskId}, but ${storage.path} has no secret for it; use a fresh data dir`,
        );
      }
    } else {
      if (secret === undefined) {
        secret = generateToken();
        await storage.save({ taskId: task.id, clientId, clientSecret: secret, issuedAt: options.now });
      }
      store.createClient({ clientId, taskId: task.id, secretHash: hashToken(secret), capabilitiesJson: null, createdAt: options.now, lastSeenAt: options.now });
    }
    ids.push(clientId);
  }
  return ids;
}
