import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourcesFromDataTransfer, sourcesFromFileList } from './browser.js';
import type { DataTransferItemLike, DirectoryEntryLike, EntryLike, FileEntryLike } from './browser.js';
import { loadImageFolder } from './imageFolder.js';
import { sourceFromPath, sourcesFromDirectory } from './node.js';

function png(value: number): Uint8Array {
  const image = new PNG({ width: 1, height: 1 });
  image.data.set([value, value, value, 255]);
  return new Uint8Array(PNG.sync.write(image));
}

const TARGET = { height: 1, width: 1, channels: 1, dtype: 'uint8' } as const;

describe('Node adapter', () => {
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'chorus-loaders-'));
    await mkdir(join(root, 'cats'));
    await mkdir(join(root, 'dogs', 'nested'), { recursive: true });
    await writeFile(join(root, 'cats', 'a.png'), png(10));
    await writeFile(join(root, 'dogs', 'nested', 'b.png'), png(20));
    await writeFile(join(root, 'dogs', 'c.png'), new Uint8Array(0));
    await symlink(root, join(root, 'dogs', 'loop'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lists files recursively with relative paths, not following links, and they load', async () => {
    // Act
    const files = await sourcesFromDirectory(root);
    const result = await loadImageFolder(files, { target: TARGET });
    // Assert
    expect(files.map((f) => [f.path, f.size > 0])).toEqual([
      ['cats/a.png', true],
      ['dogs/c.png', false],
      ['dogs/nested/b.png', true],
    ]);
    expect(result.classNames).toEqual(['cats', 'dogs', 'nested']);
    expect(result.samples.map((s) => [s.path, [...s.pixels]])).toEqual([
      ['cats/a.png', [10]],
      ['dogs/nested/b.png', [20]],
    ]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([['dogs/c.png', 'LOADER_EMPTY']]);
  });

  it('wraps one file and refuses what is not a folder', async () => {
    const one = await sourceFromPath(join(root, 'cats', 'a.png'));
    expect([one.path, (await one.read()).length]).toEqual(['a.png', png(10).length]);
    await expect(sourcesFromDirectory(join(root, 'cats', 'a.png'))).rejects.toMatchObject({ code: 'LOADER_BAD_CONFIG' });
  });
});

describe('browser adapter', () => {
  const file = (name: string, bytes: Uint8Array, webkitRelativePath = ''): File => Object.assign(new File([bytes], name), { webkitRelativePath });

  it('uses folder-picker paths from a FileList', async () => {
    const list = [file('a.png', png(30), 'pick/x/a.png'), file('b.png', png(40))];
    const sources = sourcesFromFileList(list);
    expect(sources.map((s) => s.path)).toEqual(['pick/x/a.png', 'b.png']);
    const result = await loadImageFolder(sources, { target: TARGET });
    expect(result.samples.map((s) => [s.path, s.label, [...s.pixels]])).toEqual([['pick/x/a.png', 0, [30]]]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([['b.png', 'LOADER_BAD_LABEL']]);
  });

  it('walks dropped folders in batches and reports unreadable entries', async () => {
    // Arrange: a dropped folder whose reader returns two batches, like Chromium past 100 entries
    const fileEntry = (fullPath: string, bytes: Uint8Array | Error): FileEntryLike => ({
      isFile: true,
      isDirectory: false,
      name: fullPath.split('/').pop() ?? '',
      fullPath,
      file: (ok, fail) => (bytes instanceof Error ? fail?.(bytes) : ok(new File([bytes], fullPath.split('/').pop() ?? ''))),
    });
    const batches: EntryLike[][] = [[fileEntry('/drop/cats/a.png', png(50))], [fileEntry('/drop/cats/gone.png', new Error('permission denied'))], []];
    const folder: DirectoryEntryLike = {
      isFile: false,
      isDirectory: true,
      name: 'drop',
      fullPath: '/drop',
      createReader: () => ({ readEntries: (ok) => ok(batches.shift() ?? []) }),
    };
    const items: DataTransferItemLike[] = [
      { kind: 'file', webkitGetAsEntry: () => folder, getAsFile: () => null },
      { kind: 'string', webkitGetAsEntry: () => null, getAsFile: () => null },
      { kind: 'file', webkitGetAsEntry: () => null, getAsFile: () => new File([png(60)], 'loose.png') },
    ];
    // Act
    const sources = await sourcesFromDataTransfer(items);
    const result = await loadImageFolder(sources, { target: TARGET });
    // Assert
    expect(sources.map((s) => s.path)).toEqual(['drop/cats/a.png', 'drop/cats/gone.png', 'loose.png']);
    expect(result.samples.map((s) => [s.path, [...s.pixels]])).toEqual([['drop/cats/a.png', [50]]]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['drop/cats/gone.png', 'LOADER_CORRUPT'],
      ['loose.png', 'LOADER_BAD_LABEL'],
    ]);
    expect(result.skipped[0]?.message).toMatch(/could not be read \(permission denied\)/);
  });
});
