import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileIdentityStorage } from './storage.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempFile = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'chorus-id-'));
  dirs.push(d);
  return join(d, 'nested', 'identity.json');
};

describe('FileIdentityStorage', () => {
  it('round-trips identities per task through a private file, and clears one', async () => {
    // Arrange
    const path = tempFile();
    const storage = new FileIdentityStorage(path);
    // Act
    await storage.save({ taskId: 'a', clientId: 'c-a', clientSecret: 'sa', issuedAt: 1 });
    await storage.save({ taskId: 'b', clientId: 'c-b', clientSecret: 'sb', issuedAt: 2 });
    await storage.clear('a');
    // Assert
    const reopened = new FileIdentityStorage(path);
    expect(await reopened.load('a')).toBeNull();
    expect(await reopened.load('b')).toEqual({ taskId: 'b', clientId: 'c-b', clientSecret: 'sb', issuedAt: 2 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')) as object)).toEqual(['b']);
  });

  it('treats a missing, corrupt or ill-formed file as holding no identity', async () => {
    const path = tempFile();
    const storage = new FileIdentityStorage(path);
    expect(await storage.load('a')).toBeNull();
    await storage.save({ taskId: 'a', clientId: 'c', clientSecret: 's', issuedAt: 1 });
    writeFileSync(path, '{not json');
    expect(await storage.load('a')).toBeNull();
    writeFileSync(path, JSON.stringify({ a: { taskId: 'a', clientId: '', clientSecret: 's', issuedAt: 1 } }));
    expect(await storage.load('a')).toBeNull();
  });
});
