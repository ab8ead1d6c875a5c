/** The heap cap a coordinator process runs with (heap.ts). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_MB, withHeapCap } from './heap.js';

describe('the coordinator heap cap', () => {
  it('replaces a cap already in execArgv (either spelling) and keeps every other flag in order', () => {
    expect(withHeapCap(['--import', 'tsx'], 192)).toEqual(['--import', 'tsx', '--max-old-space-size=192']);
    expect(withHeapCap(['--max-old-space-size=4096', '--import', 'tsx', '--max-old-space-size', '512', '--inspect'], 128)).toEqual([
      '--import',
      'tsx',
      '--inspect',
      '--max-old-space-size=128',
    ]);
  });

  it('refuses a cap that is not an integer of at least 64 MB', () => {
    for (const bad of [0, 63, 100.5, Number.NaN]) expect(() => withHeapCap([], bad)).toThrow(/integer ≥ 64/);
  });

  it('is the cap the package start script gives the process it starts', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
    expect(pkg.scripts.start).toContain(`--max-old-space-size=${DEFAULT_HEAP_MB} `);
  });
});
