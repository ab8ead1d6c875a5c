/**
 * `pnpm experiments --verify k`: checks that stored runs (see runCache.ts) are what the current code
 * computes. For each selected section that keeps runs, k stored runs are picked deterministically
 * (seeded by the section id, spread over the kinds of run), recomputed from their stored key alone
 * (no cache read, nothing written) and compared with the stored value exactly, every field but
 * {@link VERIFY_EXCLUDED_FIELDS}. A retired run (one whose key the code no longer asks for, e.g.
 * stored under an older `engine` or `probe`) stays in the folder but is counted, not verified: the
 * current code would not serve it, so its recomputation differing is no finding.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentsError } from './errors.js';
import { decodeNonFinite, encodeNonFinite } from './runCache.js';

/** Fields (object keys, at any depth) that measure time, not the result: never compared. */
export const VERIFY_EXCLUDED_FIELDS: readonly string[] = ['durationMs', 'cpuMs'];

/** One stored run: its file name, key and value (non-finite numbers restored). */
export interface StoredRun {
  readonly file: string;
  readonly key: unknown;
  readonly value: unknown;
}

/** Recomputes stored runs of one section; `close` frees what it holds (models, backends). */
export interface Recomputer {
  /**
   * The value of the run of `key`, computed by the current code. `stored` may supply only labels
   * that are not inputs of the run (the section says which); every input comes from the key.
   */
  recompute(key: unknown, stored: unknown): Promise<unknown>;
  close(): void;
}

/** How a section's stored runs are found and recomputed. */
export interface VerifySpec {
  /** The prefix of its cache files. */
  readonly prefix: string;
  /** Whether a stored key is this section's (sections may share a prefix). */
  readonly owns: (key: unknown) => boolean;
  /** Why the code no longer asks for a stored key (the run is retired), or null when it still does; absent: none is. */
  readonly retired?: (key: unknown) => string | null;
  /** The kind of run a key stores (the selection spreads over kinds). */
  readonly kindOf: (key: unknown) => string;
  /** A short name of the run for the output line. */
  readonly label: (key: unknown) => string;
  /** Opens a recomputer (loads data, starts the backend). */
  readonly open: () => Promise<Recomputer>;
}

const FILE = /^([a-z0-9][a-z0-9-]*)-[0-9a-f]{16}\.json$/;

/** Every readable run file of `prefix` in `dir` whose key `owns` accepts, by file name (an absent folder holds none). */
export function storedRuns(dir: string, prefix: string, owns: (key: unknown) => boolean = () => true): StoredRun[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: StoredRun[] = [];
  for (const file of names.sort()) {
    if (FILE.exec(file)?.[1] !== prefix) continue;
    let parsed: { version?: unknown; key?: unknown; value?: unknown };
    try {
      parsed = JSON.parse(readFileSync(join(dir, file), 'utf8')) as typeof parsed;
    } catch {
      continue;
    }
    if (parsed === null || typeof parsed !== 'object' || parsed.version !== 1 || !('value' in parsed) || !owns(parsed.key)) continue;
    out.push({ file, key: parsed.key, value: decodeNonFinite(parsed.value) });
  }
  return out;
}

/** A 32-bit PRNG (mulberry32) seeded by the first four bytes of the SHA-256 of `text`. */
function seededRandom(text: string): () => number {
  let a = createHash('sha256').update(text).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `k` of `runs` (all when fewer), the same for the same `seed` and runs: each kind's runs are
 * shuffled by a generator seeded with `seed`, then kinds (in name order) take turns, so k ≥ the
 * number of kinds checks every kind. Throws `EXPERIMENTS_BAD_INPUT` when k is not an integer ≥ 1.
 */
export function selectRuns<R extends StoredRun>(runs: readonly R[], k: number, seed: string, kindOf: (key: unknown) => string): R[] {
  if (!Number.isSafeInteger(k) || k < 1) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `selectRuns: k must be an integer ≥ 1, got ${k}`);
  const random = seededRandom(seed);
  const byKind = new Map<string, R[]>();
  for (const run of [...runs].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    const kind = kindOf(run.key);
    byKind.set(kind, [...(byKind.get(kind) ?? []), run]);
  }
  const groups = [...byKind.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  for (const g of groups) {
    for (let i = g.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [g[i], g[j]] = [g[j]!, g[i]!];
    }
  }
  const out: R[] = [];
  for (let round = 0; out.length < Math.min(k, runs.length); round++) {
    for (const g of groups) if (round < g.length && out.length < k) out.push(g[round]!);
  }
  return out;
}

/** `value` as a cache file would hold it (undefined fields dropped, typed arrays as objects, non-finite numbers kept). */
function asStored(value: unknown): unknown {
  const text = JSON.stringify(encodeNonFinite(value));
  return text === undefined ? undefined : decodeNonFinite(JSON.parse(text));
}

function show(v: unknown): string {
  const text = typeof v === 'number' ? String(v) : JSON.stringify(v);
  return text === undefined ? 'absent' : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Every field where `now` differs from `stored` (numbers exactly, NaN equal to NaN), in key order,
 * each as its path with both values; fields named in `excluded` are skipped at every depth.
 */
export function differences(stored: unknown, now: unknown, excluded: readonly string[] = VERIFY_EXCLUDED_FIELDS): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    const at = path === '' ? '(value)' : path;
    const differ = (): void => void out.push(`${at} (stored ${show(a)}, now ${show(b)})`);
    if (typeof a === 'number' && typeof b === 'number') {
      if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)))) differ();
    } else if (Array.isArray(a) || Array.isArray(b)) {
      if (!Array.isArray(a) || !Array.isArray(b)) differ();
      else for (let i = 0; i < Math.max(a.length, b.length); i++) walk(a[i], b[i], `${path}[${i}]`);
    } else if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !excluded.includes(k)).sort();
      for (const k of keys) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`);
    } else if (a !== b) differ();
  };
  walk(asStored(stored), asStored(now), '');
  return out;
}

/** The first of {@link differences}, or null when the values are equal. */
export function firstDifference(stored: unknown, now: unknown, excluded: readonly string[] = VERIFY_EXCLUDED_FIELDS): string | null {
  return differences(stored, now, excluded)[0] ?? null;
}

/** How many differing fields a DIFFERENT line names after the first. */
const MORE_SHOWN = 4;

/**
 * Verifies `k` stored runs of section `id` under `dir` with `spec`, printing one line per run
 * (`same` or `DIFFERENT: <first differing field>`); false when a run differs, cannot be recomputed,
 * or no stored run exists.
 */
export async function verifySection(id: string, spec: VerifySpec, dir: string, k: number, log: (line: string) => void): Promise<boolean> {
  const owned = storedRuns(dir, spec.prefix, spec.owns);
  const retired = new Map<StoredRun, string>();
  for (const run of owned) {
    let why: string | null;
    try {
      why = spec.retired?.(run.key) ?? null;
    } catch (err) {
      why = `its key is unreadable (${err instanceof Error ? err.message : String(err)})`;
    }
    if (why !== null) retired.set(run, why);
  }
  const all = owned.filter((r) => !retired.has(r));
  if (retired.size > 0) {
    const [file, why] = [...retired].map(([r, w]) => [r.file, w] as const)[0]!;
    log(`${id}: ${retired.size} of ${owned.length} stored runs are retired (the code no longer asks for their keys), not verified; e.g. ${file}: ${why}`);
  }
  if (all.length === 0) {
    log(`${id}: no stored run in ${dir}${retired.size > 0 ? ' that the code still asks for' : ''}; nothing to verify`);
    return false;
  }
  const chosen = selectRuns(all, k, id, spec.kindOf);
  log(`${id}: verifying ${chosen.length} of ${all.length} stored runs (${[...new Set(chosen.map((r) => spec.kindOf(r.key)))].join(', ')})`);
  const recomputer = await spec.open();
  let ok = true;
  try {
    for (const run of chosen) {
      const t0 = Date.now();
      const name = `${id}: ${spec.kindOf(run.key)} ${spec.label(run.key)} [${run.file}]`;
      try {
        const diffs = differences(run.value, await recomputer.recompute(run.key, run.value));
        const time = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
        const more =
          diffs.length <= 1 ? '' : `; ${diffs.length} fields differ: ${diffs.slice(1, 1 + MORE_SHOWN).join(', ')}${diffs.length > 1 + MORE_SHOWN ? ', …' : ''}`;
        log(`${name}: ${diffs.length === 0 ? 'same' : `DIFFERENT: ${diffs[0]}${more}`} (${time})`);
        if (diffs.length > 0) ok = false;
      } catch (err) {
        log(`${name}: FAILED: ${err instanceof Error ? err.message : String(err)}`);
        ok = false;
      }
    }
  } finally {
    recomputer.close();
  }
  return ok;
}
