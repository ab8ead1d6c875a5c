import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderReport, storedSection, writeReport } from './report.js';
import type { SectionResult } from './section.js';

const section = (id: string, overrides: Partial<SectionResult> = {}): SectionResult => ({
  id,
  title: `Section ${id}`,
  markdown: `Body of ${id}.`,
  figures: [{ file: `${id}.svg`, svg: '<svg xmlns="http://www.w3.org/2000/svg"/>\n' }],
  raw: { accuracy: [0.5, 0.75] },
  checks: [{ name: `${id} works`, ok: true, detail: 'fine' }],
  durationMs: 125_000,
  ...overrides,
});
const run = { command: 'pnpm experiments --quick --only a', quick: true, seeds: [1] };
const options = { title: 'Results', notes: '- small data', order: ['b', 'a'] };

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

describe('renderReport', () => {
  it('lists each section with its mode, seeds, runtime and command, the checks, the notes, then the bodies in order', () => {
    const failing = section('b', { checks: [{ name: 'b works', ok: false, detail: 'no' }], durationMs: 9_400 });

    const md = renderReport([storedSection(failing, run), storedSection(section('a'), run)], options);

    expect(md).toContain('| Section b | quick | 1 | 9 s | `pnpm experiments --quick --only a` |');
    expect(md).toContain('| Section a | quick | 1 | 2 min 05 s |');
    expect(md).toContain('| b | b works | **FAIL** | no |');
    expect(md).toContain('## What differs from the papers\n\n- small data');
    expect(md.indexOf('## Section b')).toBeLessThan(md.indexOf('## Section a'));
    expect(md).not.toMatch(/20\d\d-\d\d-\d\d/);
    expect(md).not.toContain('Not yet run');
  });

  it('shows the seeds a section used when it used fewer than the invocation gave it', () => {
    const full = { command: 'pnpm experiments --only a', quick: false, seeds: [1, 2, 3, 4, 5] };

    const md = renderReport([storedSection(section('a', { seeds: [1, 2, 3] }), full), storedSection(section('b'), full)], options);

    expect(md).toContain('| Section a | full | 1, 2, 3 |');
    expect(md).toContain('| Section b | full | 1, 2, 3, 4, 5 |');
  });

  it('names the expected sections that have no stored result, with their commands', () => {
    const expected = [
      { id: 'a', command: 'pnpm experiments --only a' },
      { id: 'c', command: 'pnpm experiments --only c' },
    ];

    const md = renderReport([storedSection(section('a'), run)], { ...options, expected });

    expect(md).toContain('Not yet run in this mode, so not in this report: c (`pnpm experiments --only c`).');
    expect(md).not.toContain('a (`pnpm experiments --only a`)');
  });
});

describe('writeReport', () => {
  it('writes figures and raw files, and rebuilds the README from every raw file in the folder', () => {
    dir = mkdtempSync(join(tmpdir(), 'report-test-'));
    writeReport(dir, [{ section: section('a'), run }], options);

    const result = writeReport(dir, [{ section: section('b'), run }], options);

    expect(result.sections).toEqual(['b', 'a']);
    expect(existsSync(join(dir, 'a.svg'))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'raw', 'b.json'), 'utf8'))).toMatchObject({ id: 'b', raw: { accuracy: [0.5, 0.75] }, run });
    const md = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(md).toContain('Body of a.');
    expect(md).toContain('Body of b.');
  });

  it('refuses a figure name that leaves the folder, and writes nothing', () => {
    dir = mkdtempSync(join(tmpdir(), 'report-test-'));
    const escaping = section('a', { figures: [{ file: '../evil.svg', svg: '' }] });

    expect(() => writeReport(join(dir!, 'out'), [{ section: escaping, run }], options)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_INPUT' }));
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('refuses duplicate section ids and duplicate figure names', () => {
    dir = mkdtempSync(join(tmpdir(), 'report-test-'));

    expect(() =>
      writeReport(
        dir!,
        [
          { section: section('a'), run },
          { section: section('a'), run },
        ],
        options,
      ),
    ).toThrow(/appears twice/);
    expect(() =>
      writeReport(
        dir!,
        [
          { section: section('a'), run },
          { section: section('b', { figures: section('a').figures }), run },
        ],
        options,
      ),
    ).toThrow(/a\.svg' appears twice/);
  });
});
