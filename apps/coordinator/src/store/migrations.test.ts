import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SqliteStore } from './sqliteStore.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A database file as the first schema version wrote it: one running task with a client and a checkpoint. */
function versionOneFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-migrate-'));
  dirs.push(dir);
  const path = join(dir, 'coordinator.db');
  const db = new Database(path);
  db.exec(MIGRATIONS[0]!);
  db.pragma('user_version = 1');
  db.prepare("INSERT INTO tasks VALUES ('t1', '{}', 'hash', 'running', 100, 120)").run();
  db.prepare("INSERT INTO clients VALUES ('c1', 't1', 'secret-hash', NULL, 100, 110)").run();
  db.prepare("INSERT INTO checkpoints VALUES ('t1', 0, x'010203', 'h0', NULL, NULL, 100)").run();
  db.close();
  return path;
}

describe('SqliteStore migrations', () => {
  it('upgrades a version-1 file in place: rows kept, paused and stopped now storable, foreign keys still enforced', () => {
    // Arrange
    const path = versionOneFile();
    // Act
    const store = new SqliteStore({ path });
    store.setTaskStatus('t1', 'paused', 130);
    const paused = store.getTask('t1');
    store.setTaskStatus('t1', 'stopped', 140);
    // Assert
    expect(paused).toMatchObject({ taskId: 't1', status: 'paused', createdAt: 100, updatedAt: 130 });
    expect(store.getTask('t1')?.status).toBe('stopped');
    expect(store.getClient('c1')?.taskId).toBe('t1');
    expect([...store.latestCheckpoint('t1')!.bytes]).toEqual([1, 2, 3]);
    // The rebuilt table is still the one clients reference: a client of an unknown task is refused.
    expect(() => store.createClient({ clientId: 'c2', taskId: 'nope', secretHash: 'x', capabilitiesJson: null, createdAt: 1, lastSeenAt: 1 })).toThrow(
      /TASK_UNKNOWN/,
    );
    store.close();
    const raw = new Database(path);
    expect(raw.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    raw.pragma('foreign_keys = ON');
    expect(() => raw.prepare("INSERT INTO clients VALUES ('c4', 'nope', 's', NULL, 1, 1, NULL)").run()).toThrow(/FOREIGN KEY/);
    // Version 3: the invitations table, and each identity's invitation (null for rows from before it).
    expect(raw.prepare("SELECT invitation_id FROM clients WHERE client_id = 'c1'").get()).toEqual({ invitation_id: null });
    expect(() => raw.prepare("INSERT INTO invitations VALUES ('i1', 't1', 'th', 0, 0, NULL, 1, NULL)").run()).toThrow(/CHECK constraint/);
    raw.close();
  });

  it('reads a version-3 file as run 1 of each task: rounds, uploads, checkpoints, metrics and trust kept, and the next run can begin', () => {
    // Arrange: a finished task as the third schema version stored it.
    const dir = mkdtempSync(join(tmpdir(), 'chorus-migrate-'));
    dirs.push(dir);
    const path = join(dir, 'coordinator.db');
    const db = new Database(path);
    for (const sql of MIGRATIONS.slice(0, 3)) db.exec(sql);
    db.pragma('user_version = 3');
    db.prepare("INSERT INTO tasks VALUES ('t1', '{}', 'hash', 'finished', 100, 300)").run();
    db.prepare("INSERT INTO rounds VALUES ('t1', 1, 1, 't1.r1.a1', 'completed', '[\"c1\"]', 150, 200, NULL, 1)").run();
    db.prepare(
      "INSERT INTO updates (task_id, server_round, attempt, client_id, status, num_examples, byte_length, received_at) VALUES ('t1', 1, 1, 'c1', 'accepted', 3, 10, 160)",
    ).run();
    db.prepare("INSERT INTO checkpoints VALUES ('t1', 0, x'01', 'h0', NULL, NULL, 100)").run();
    db.prepare("INSERT INTO checkpoints VALUES ('t1', 1, x'02', 'h1', NULL, NULL, 200)").run();
    db.prepare("INSERT INTO round_metrics VALUES ('t1', 1, '{\"accuracy\":0.5}', 200)").run();
    db.prepare("INSERT INTO trust VALUES ('t1', 1, 'c1', 0.75)").run();
    db.close();
    // Act
    const store = new SqliteStore({ path });
    const before = store.listRuns('t1');
    const next = store.beginRun('t1', 400);
    // Assert
    expect(before).toEqual([
      { taskId: 't1', run: 1, status: 'finished', startedAt: 100, endedAt: 300, completedRounds: 1, globalHash: 'h1', finalMetrics: { accuracy: 0.5 } },
    ]);
    expect(next).toBe(2);
    expect(store.listRounds('t1', 1).map((r) => r.roundId)).toEqual(['t1.r1.a1']);
    expect(store.listUpdates('t1', 1, 1).map((u) => u.clientId)).toEqual(['c1']);
    expect(store.listTrust('t1', 1).map((t) => t.trust)).toEqual([0.75]);
    expect(store.latestCheckpoint('t1', 1)?.sha256).toBe('h1');
    expect(store.listRounds('t1')).toEqual([]);
    store.close();
    const raw = new Database(path);
    raw.pragma('foreign_keys = ON');
    // A row of a run the task never had is refused.
    expect(() => raw.prepare("INSERT INTO round_metrics VALUES ('t1', 9, 1, '{}', 1)").run()).toThrow(/FOREIGN KEY/);
    raw.close();
  });

  it('still refuses a status outside the lifecycle', () => {
    // Arrange
    const store = new SqliteStore({ path: versionOneFile() });
    // Act / Assert
    expect(() => store.setTaskStatus('t1', 'exploded' as never, 150)).toThrow(/CHECK constraint/);
    expect(store.getTask('t1')?.status).toBe('running');
    store.close();
  });
});
