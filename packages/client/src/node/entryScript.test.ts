import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isEntryScript } from './entryScript.js';

describe('isEntryScript', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-entry-'));
  const file = join(dir, 'cli.js');
  writeFileSync(file, '');
  const link = join(dir, 'bin-link');
  symlinkSync(file, link);
  const other = join(dir, 'other', 'cli.js');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is true for the module itself and for a link to it', () => {
    // Arrange
    const url = pathToFileURL(file).href;
    // Act / Assert
    expect(isEntryScript(url, file)).toBe(true);
    expect(isEntryScript(url, link)).toBe(true);
  });

  it('is false for another entry of the same name, a missing one, and none', () => {
    // Arrange
    const url = pathToFileURL(file).href;
    // Act / Assert
    expect(isEntryScript(url, other)).toBe(false);
    expect(isEntryScript(pathToFileURL(other).href, file)).toBe(false);
    expect(isEntryScript(url, undefined)).toBe(false);
  });
});
