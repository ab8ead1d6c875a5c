import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIdentityStorage, identityFileOf } from '@chorus/client/node';
import { afterEach, describe, expect, it } from 'vitest';
import { isCoordinatorError } from '../errors.js';
import { tokenMatchesHash } from '../security/tokens.js';
import { MemoryStore } from '../store/memoryStore.js';
import { registerSimulatedClients, simulatedClientId, simulatedClientName } from './simulatedClients.js';

const task = { id: 'sim', seed: 7 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(): { store: MemoryStore; identityDir: string } {
  const identityDir = mkdtempSync(join(tmpdir(), 'chorus-sim-ids-'));
  dirs.push(identityDir);
  const store = new MemoryStore();
  store.upsertTask({ taskId: task.id, configJson: '{}', joinTokenHash: 'x', createdAt: 0 });
  return { store, identityDir };
}

describe('simulated client identities', () => {
  it('derive each id from the task id, the task seed and the client name only', () => {
    // Act
    const id = simulatedClientId(task, simulatedClientName(0));
    // Assert
    expect(id).toMatch(/^c-[0-9a-f]{32}$/);
    expect(simulatedClientId({ ...task }, 'client-0')).toBe(id);
    expect(simulatedClientId(task, 'client-1')).not.toBe(id);
    expect(simulatedClientId({ ...task, seed: 8 }, 'client-0')).not.toBe(id);
    expect(simulatedClientId({ ...task, id: 'other' }, 'client-0')).not.toBe(id);
  });

  it('registers every client under its id with a secret only its identity file holds', async () => {
    // Arrange
    const { store, identityDir } = setup();
    // Act
    const ids = await registerSimulatedClients({ store, task, numClients: 3, identityDir, now: 5 });
    // Assert
    expect(ids).toEqual([0, 1, 2].map((i) => simulatedClientId(task, simulatedClientName(i))));
    for (const [i, id] of ids.entries()) {
      const saved = await new FileIdentityStorage(identityFileOf(identityDir, i)).load(task.id);
      const record = store.getClient(id)!;
      expect(saved?.clientId).toBe(id);
      expect(record).toMatchObject({ taskId: task.id, capabilitiesJson: null, createdAt: 5 });
      expect(tokenMatchesHash(saved!.clientSecret, record.secretHash)).toBe(true);
    }
  });

  it('reuses what an earlier run on the same store registered, and refuses a store whose secrets are lost', async () => {
    // Arrange
    const { store, identityDir } = setup();
    const first = await registerSimulatedClients({ store, task, numClients: 2, identityDir, now: 5 });
    const secret = (await new FileIdentityStorage(identityFileOf(identityDir, 0)).load(task.id))!.clientSecret;
    // Act
    const again = await registerSimulatedClients({ store, task, numClients: 2, identityDir, now: 9 });
    const lost = await registerSimulatedClients({ store, task, numClients: 2, identityDir: join(identityDir, 'elsewhere'), now: 9 }).catch(
      (err: unknown) => err,
    );
    // Assert
    expect(again).toEqual(first);
    expect((await new FileIdentityStorage(identityFileOf(identityDir, 0)).load(task.id))!.clientSecret).toBe(secret);
    expect(store.listClients(task.id)).toHaveLength(2);
    expect(isCoordinatorError(lost, 'STORE_CONFLICT')).toBe(true);
  });

  it('registers a client whose identity file was written before a crash kept it out of the store', async () => {
    // Arrange: the file exists, the store never got the client.
    const { store, identityDir } = setup();
    const id = simulatedClientId(task, simulatedClientName(0));
    await new FileIdentityStorage(identityFileOf(identityDir, 0)).save({ taskId: task.id, clientId: id, clientSecret: 'kept-secret', issuedAt: 1 });
    // Act
    await registerSimulatedClients({ store, task, numClients: 1, identityDir, now: 5 });
    // Assert
    expect(tokenMatchesHash('kept-secret', store.getClient(id)!.secretHash)).toBe(true);
  });
});
