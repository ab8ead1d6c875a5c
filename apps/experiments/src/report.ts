/**
 * The results folder: `README.md` (the report), one SVG per figure and `raw/<section id>.json` per
 * section. Each raw file keeps the whole section (Markdown, checks, runtime, mode, seeds and every
 * number), so the report is rebuilt from the raw files present: running one section with `--only`
 * refreshes that section and keeps the others. Nothing written depends on the date or the commit.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentsError } from './errors.js';
import type { Check, SectionResult } from './section.js';
import { markdownTable } from './stats.js';

/** How a section was produced, stored beside its numbers. */
export interface RunInfo {
  /** The command that regenerates the section. */
  readonly command: string;
  readonly quick: boolean;
  readonly seeds: readonly number[];
}

/** The content of `raw/<id>.json`. */
export interface StoredSection {
  readonly id: string;
  readonly title: string;
  readonly markdown: string;
  readonly figures: readonly string[];
  readonly checks: readonly Check[];
  readonly durationMs: number;
  readonly run: RunInfo;
  readonly raw: unknown;
}

const SAFE_ID = /^[a-z0-9][a-z0-9-]*$/;
const SAFE_FIGURE = /^[A-Za-z0-9][A-Za-z0-9._-]*\.svg$/;

/** Throws `EXPERIMENTS_BAD_INPUT` unless the section's id and figure names are safe file names, unique across `sections`. */
export function checkSections(sections: readonly Pick<SectionResult, 'id' | 'figures'>[]): void {
  const ids = new Set<string>();
  const files = new Set<string>();
  for (const s of sections) {
    if (!SAFE_ID.test(s.id)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `section id '${s.id}' must match ${SAFE_ID}`);
    if (ids.has(s.id)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `section id '${s.id}' appears twice`);
    ids.add(s.id);
    for (const f of s.figures) {
      if (!SAFE_FIGURE.test(f.file))
        throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `figure '${f.file}' of section '${s.id}' must be a plain .svg file name`);
      if (files.has(f.file)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `figure '${f.file}' appears twice`);
      files.add(f.file);
    }
  }
}

/** The stored form of a section. */
export function storedSection(section: SectionResult, run: RunInfo): StoredSection {
  return {
    id: section.id,
    title: section.title,
    markdown: section.markdown,
    figures: section.figures.map((f) => f.file),
    checks: section.checks,
    durationMs: section.durationMs,
    // The seeds the section used, when it used fewer than the invocation gave it.
    run: section.seeds === undefined ? run : { ...run, seeds: section.seeds },
    raw: section.raw,
  };
}

function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** A section the report should hold, with the command that produces it (listed as pending while it has no raw file). */
export interface ExpectedSection {
  readonly id: string;
  readonly command: string;
}

/** The report's Markdown for `sections` in the given order; `expected` sections without a stored one are listed as not yet run. */
export function renderReport(
  sections: readonly StoredSection[],
  options: { readonly title: string; readonly notes: string; readonly expected?: readonly ExpectedSection[] },
): string {
  const lines: string[] = [`# ${options.title}`, ''];
  const modes = new Set(sections.map((s) => (s.run.quick ? 'quick' : 'full')));
  lines.push(
    `Produced by \`pnpm experiments\` (apps/experiments). Mode: ${[...modes].join(' and ') || '—'}. Each section's raw numbers, task settings and seeds are in \`raw/<section>.json\`; the command beside each section regenerates it.`,
    '',
  );
  if (sections.length > 0)
    lines.push(
      markdownTable(
        ['Section', 'Mode', 'Seeds', 'Runtime', 'Command'],
        sections.map((s) => [s.title, s.run.quick ? 'quick' : 'full', s.run.seeds.join(', '), minutes(s.durationMs), `\`${s.run.command}\``]),
      ),
    );
  const pending = (options.expected ?? []).filter((e) => !sections.some((s) => s.id === e.id));
  if (pending.length > 0)
    lines.push(
      `Not yet run in this mode, so not in this report: ${pending.map((e) => `${e.id} (\`${e.command}\`)`).join(', ')}. No number from an earlier version of the code stands in for them.`,
      '',
    );
  const checks = sections.flatMap((s) => s.checks.map((c) => [s.id, c.name, c.ok ? 'pass' : '**FAIL**', c.detail]));
  if (checks.length > 0)
    lines.push('Sanity checks (`pnpm experiments` exits non-zero when one fails):', '', markdownTable(['Section', 'Check', 'Result', 'Detail'], checks));
  lines.push('## What differs from the papers', '', options.notes.trim(), '');
  for (const s of sections) lines.push(`## ${s.title}`, '', s.markdown.trim(), '');
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Writes the sections' figures and raw files into `outDir`, then rebuilds `README.md` from every raw file there, ordered by `order`. */
export function writeReport(
  outDir: string,
  sections: readonly { section: SectionResult; run: RunInfo }[],
  options: { readonly title: string; readonly notes: string; readonly order: readonly string[]; readonly expected?: readonly ExpectedSection[] },
): { readme: string; sections: string[] } {
  checkSections(sections.map((s) => s.section));
  const rawDir = join(outDir, 'raw');
  mkdirSync(rawDir, { recursive: true });
  for (const { section, run } of sections) {
    for (const f of section.figures) writeFileSync(join(outDir, f.file), f.svg);
    writeFileSync(join(rawDir, `${section.id}.json`), `${JSON.stringify(storedSection(section, run), null, 2)}\n`);
  }
  const stored = readdirSync(rawDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(rawDir, f), 'utf8')) as StoredSection);
  const rank = (id: string): number => (options.order.includes(id) ? options.order.indexOf(id) : options.order.length);
  stored.sort((a, b) => rank(a.id) - rank(b.id) || a.id.localeCompare(b.id));
  const readme = join(outDir, 'README.md');
  writeFileSync(readme, renderReport(stored, options));
  return { readme, sections: stored.map((s) => s.id) };
}
