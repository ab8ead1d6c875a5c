/**
 * `pnpm experiments [--quick] [--only <id>[,<id>…]] [--out DIR] [--seeds 1,2,3,4,5] [--jobs 2]
 * [--cache DIR | --no-cache] [--fresh] [--shard i/n] [--render] [--verify k]`: runs the experiment sections with headless clients and
 * writes the report (README.md, SVG figures and raw/<id>.json) into DIR — by default docs/results/
 * (full) or docs/results/quick/ (--quick, so CI never overwrites the full results). Sections run as
 * child processes, `--jobs` at a time (each child has its own TF.js backend and trains on one core).
 * Finished runs of the full mode (every section's) are kept in DIR/raw/runs/ (see runCache.ts) and reused by later
 * invocations unless `--fresh`; `--cache` picks another folder, `--no-cache` keeps none; `--shard i/n`
 * runs only every n-th missing cell, so n invocations can fill one grid together; `--render` runs
 * nothing and rebuilds README.md from the raw files already there; `--verify k` recomputes k stored runs of each
 * selected section from their keys and compares them with the stored values (see verify.ts), writing nothing. Sections of the list that have no
 * raw file yet are named in the report as not yet run. Prints one
 * progress line per run; exits 1 when a section fails (it is then not written) or one of its sanity
 * checks does, 2 on bad arguments.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SEEDS, parseExperimentsArgs, parseShard } from './args.js';
import type { ExperimentsArgs, Shard } from './args.js';
import { ExperimentsError } from './errors.js';
import { FEDAFD_SECTION } from './fedafd.js';
import { fedMmxSection } from './fedmmx.js';
import { fedUmmSection } from './fedumm.js';
import { writeReport } from './report.js';
import type { RunInfo } from './report.js';
import { ROBUSTNESS_VERIFY, runRobustness } from './robustness.js';
import { runSybil } from './sybil.js';
import { SPLIT_SECTION } from './split.js';
import { createRunCache } from './runCache.js';
import type { SectionEntry, SectionResult } from './section.js';
import { verifySection } from './verify.js';

export type { SectionEntry } from './section.js';

/** Every section, in report order. */
export const SECTIONS: readonly SectionEntry[] = [
  { ...fedMmxSection('fedmmx', 'digits'), quickMinutes: 3.2 },
  { ...fedMmxSection('fedmmx-fashion', 'fashion-mm'), quickMinutes: 4.3 },
  { id: 'robustness', run: runRobustness, quickMinutes: 4.6, verify: ROBUSTNESS_VERIFY },
  { id: 'sybil', run: runSybil, quickMinutes: 1.4 },
  { ...fedUmmSection('fedumm', 'digits'), quickMinutes: 3.2 },
  { ...FEDAFD_SECTION, quickMinutes: 2.1 },
  { ...SPLIT_SECTION, quickMinutes: 2.4 },
];

/** `ids` in the order sections start: longest quick grid first (ties keep report order), so the last to finish starts early. */
export function startOrder(ids: readonly string[], sections: readonly SectionEntry[] = SECTIONS): string[] {
  const minutes = (id: string): number => sections.find((s) => s.id === id)?.quickMinutes ?? 0;
  return ids
    .map((id, i) => ({ id, i }))
    .sort((a, b) => minutes(b.id) - minutes(a.id) || a.i - b.i)
    .map((x) => x.id);
}

/** Notes on what differs from the papers, common to every section (each section adds its own). */
export const REPORT_NOTES = `
- Data: two built-in multimodal datasets (image, caption, synthesized speech; 10 classes), not the
  papers' VQA v2, MSCOCO, AVQA or their FedUMM benchmarks: spoken & written digits, which every
  method nearly saturates, and \`fashion-mm\` — Fashion-MNIST with captions of graded informativeness
  (exact, superclass only, image attributes, uninformative, misleading at a per-client rate) and
  the caption spoken with noise at a per-client SNR — on which the encoders, pretrained on digits
  only, transfer imperfectly, so methods can differ. The robustness grid runs on \`fashion-mm\`.
- Model: small frozen pretrained encoders with LoRA adapters and a NAM head, trained on the TF.js
  WASM backend; the papers use CLIP-scale or larger models.
- Scale: tens of clients, a few hundred examples each and a handful of rounds, so that the whole
  grid runs on a laptop; the quick grid (CI) is smaller still and is a smoke test, not evidence.
- Every number is measured by the code in apps/experiments from the run it reports. Learning rates
  (and FedProx μ, FedMM-X λ₁) are chosen on a validation subset with tuning seeds of their own
  before any test number is read; digits has no validation split, so a fixed stratified part of
  its test split is held out for validation and test numbers come from the rest.
- Methods are compared by paired differences over evaluation seeds (a seed fixes the partition and
  the initial model) with 95 % t intervals; a sentence says when an interval includes 0.
- Tasks keep the default admission (newcomer probation, slots in sampling order) but turn
  similarity damping off (\`admission.similarityDamping: false\`), a default since the Sybil section
  measured it: the other sections compare aggregation rules among established clients, and their
  stored runs were made without it. The Sybil section runs it on and off.
- Every full grid (FedMM-X on both datasets, robustness, Sybil, FedUMM, the device–edge split) keeps each finished run in
  \`raw/runs/\`, keyed by everything that defines it (settings, task, seed, code version), so an
  interrupted grid resumes where it stopped and \`--shard i/n\` invocations can fill one grid side by
  side. The robustness, Sybil, FedUMM and split sections say how many of their runs were read back
  and that the times of those runs were measured by the invocation that made them; FedUMM's
  per-round client times (its Table 4) and the split section's device timings are measured again
  by every invocation.
- The device–edge split (FedUMM §3.3) has no numbers in the paper: its section compares this
  implementation with adapter-only FedUMM and centralized split training, in-process and
  sequential (the edge trains on the clients' steps in client order), so a run replays bit for bit.
  Its full grid (\`pnpm experiments --only split\`, 5 seeds) is estimated at 45–55 min of one core,
  scaled from its quick grid (\`pnpm experiments --quick --only split\`, about 3 min on 2 cores).
`;

/** The command that regenerates `id` in the given mode. */
function commandOf(id: string, args: ExperimentsArgs): string {
  const defaultSeeds = args.quick ? DEFAULT_SEEDS.quick : DEFAULT_SEEDS.full;
  const seeds = args.seeds.join(',') === defaultSeeds ? '' : ` --seeds ${args.seeds.join(',')}`;
  return `pnpm experiments${args.quick ? ' --quick' : ''} --only ${id}${seeds}`;
}

type ChildMessage = { kind: 'log'; line: string } | { kind: 'result'; file: string };

/** Hard limit of one section in `--quick` (the whole quick report must fit 10 minutes). */
export const QUICK_SECTION_LIMIT_MS = 15 * 60_000;

// The entry file, not this one: another package's CLI starts itself when the process's script is named cli.ts.
const ENTRY = fileURLToPath(new URL('./main.ts', import.meta.url));

/** Runs one section in a child process (the entry with `--child`); resolves with its result. */
function runChild(id: string, args: ExperimentsArgs, scratch: string, log: (line: string) => void): Promise<SectionResult> {
  const file = join(scratch, `${id}.json`);
  const childArgs = [
    '--child',
    id,
    '--result',
    file,
    '--seeds',
    args.seeds.join(','),
    ...(args.quick ? ['--quick'] : []),
    ...(args.cacheDir === null ? [] : ['--cache', args.cacheDir]),
    ...(args.fresh ? ['--fresh'] : []),
    ...(args.shard === null ? [] : ['--shard', `${args.shard.index}/${args.shard.count}`]),
  ];
  return new Promise((resolveRun, reject) => {
    const child = fork(ENTRY, childArgs, { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let done = false;
    child.on('message', (m: ChildMessage) => {
      if (m.kind === 'log') log(m.line);
      if (m.kind === 'result') done = true;
    });
    // A hung run (e.g. a coordinator that stopped answering) must not hang CI: the quick grid has a hard limit.
    const limit = args.quick ? setTimeout(() => child.kill('SIGKILL'), QUICK_SECTION_LIMIT_MS) : null;
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (limit) clearTimeout(limit);
      if (!done || code !== 0) {
        const why =
          signal === 'SIGKILL' && args.quick
            ? `was stopped after ${QUICK_SECTION_LIMIT_MS / 60_000} minutes`
            : `exited with ${signal ?? `code ${code}`} before reporting`;
        reject(new ExperimentsError('EXPERIMENTS_RUN_FAILED', `section ${id} ${why}`));
        return;
      }
      try {
        resolveRun(JSON.parse(readFileSync(file, 'utf8')) as SectionResult);
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** Runs the selected sections `jobs` at a time in child processes and writes the report; returns true when every check passed. */
export async function runExperiments(args: ExperimentsArgs, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<boolean> {
  const reportOptions = {
    title: args.quick ? 'Experiment results (quick grid)' : 'Experiment results',
    notes: REPORT_NOTES,
    order: SECTIONS.map((s) => s.id),
    expected: SECTIONS.map((s) => ({ id: s.id, command: commandOf(s.id, args) })),
  };
  if (args.render) {
    const written = writeReport(args.outDir, [], reportOptions);
    log(`report: ${written.readme} re-rendered from ${written.sections.length} raw file(s) (${written.sections.join(', ')})`);
    return true;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'chorus-experiments-'));
  const results = new Map<string, SectionResult>();
  const failures: string[] = [];
  const started = Date.now();
  try {
    const queue = startOrder(args.only);
    const worker = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        const t0 = Date.now();
        log(`${id}: started`);
        try {
          results.set(id, await runChild(id, args, scratch, log));
          log(`${id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        } catch (err) {
          // A failed section is not written: the folder keeps its earlier results rather than half of new ones.
          failures.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
          log(`${id}: FAILED after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(args.jobs, args.only.length) }, worker));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const ordered = args.only.flatMap((id) => results.get(id) ?? []);
  const written = writeReport(
    args.outDir,
    ordered.map((section) => ({ section, run: { command: commandOf(section.id, args), quick: args.quick, seeds: args.seeds } satisfies RunInfo })),
    reportOptions,
  );
  const failed = [...failures, ...ordered.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => `${s.id}: ${c.name} (${c.detail})`))];
  for (const f of failed) log(`failed: ${f}`);
  log(`report: ${written.readme} (${written.sections.join(', ')}), ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failed.length === 0;
}

/**
 * `--verify k`: for each selected section, k of its stored runs recomputed in this process and compared
 * with the stored values; writes nothing. True when every checked run is the same (a section that keeps
 * no runs is named and skipped; one that keeps runs but has none stored fails).
 */
export async function runVerify(
  args: ExperimentsArgs,
  log: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  sections: readonly SectionEntry[] = SECTIONS,
): Promise<boolean> {
  if (args.verify === null || args.cacheDir === null) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', 'runVerify: needs --verify k and the run cache');
  let ok = true;
  for (const id of args.only) {
    const entry = sections.find((s) => s.id === id);
    if (entry?.verify === undefined) {
      log(`${id}: keeps no stored runs; not verified`);
      continue;
    }
    if (!(await verifySection(id, entry.verify, args.cacheDir, args.verify, log))) ok = false;
  }
  log(ok ? 'verify: every checked run is the same' : 'verify: FAILED (see the lines above)');
  return ok;
}

/** Child mode: runs one section in this process and writes its result to `file`. */
async function child(
  id: string,
  file: string,
  quick: boolean,
  seeds: readonly number[],
  cacheDir: string | null,
  fresh: boolean,
  shard: Shard | null,
): Promise<void> {
  const entry = SECTIONS.find((s) => s.id === id);
  if (!entry) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `unknown section '${id}'`);
  const send = (m: ChildMessage): Promise<void> => new Promise((done) => (process.send ? process.send(m, undefined, undefined, () => done()) : done()));
  const log = (line: string): void => void send({ kind: 'log', line });
  const cache = createRunCache(cacheDir, { read: !fresh, warn: log });
  const result = await entry.run({ quick, seeds, log, cache, ...(shard === null ? {} : { shard }) });
  writeFileSync(file, JSON.stringify(result));
  await send({ kind: 'result', file });
}

/** The CLI: child mode when `--child` is given, else parses `argv`, runs and exits (0 ok, 1 failed check or section). */
export async function main(argv: readonly string[]): Promise<never> {
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    const value = (flag: string): string => argv[argv.indexOf(flag) + 1] ?? '';
    await child(
      value('--child'),
      value('--result'),
      argv.includes('--quick'),
      value('--seeds').split(',').map(Number),
      argv.includes('--cache') ? value('--cache') : null,
      argv.includes('--fresh'),
      argv.includes('--shard') ? parseShard(value('--shard')) : null,
    );
    // Sockets and the WASM backend may hold the loop open; the result is written, so leave.
    process.exit(0);
  }
  const args = parseExperimentsArgs(
    argv,
    SECTIONS.map((s) => s.id),
  );
  const ok = args.verify === null ? await runExperiments(args) : await runVerify(args);
  process.exit(ok ? 0 : 1);
}
