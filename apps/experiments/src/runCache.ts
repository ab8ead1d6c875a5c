/**
 * A folder of finished runs, one JSON file per run, keyed by everything that defines the run (the
 * section's settings and the cell). A long grid (the full robustness grid is about an hour of CPU
 * per seed) then fills in over several invocations, even several machines once the folder is
 * committed: `pnpm experiments` reruns only the cells that have no file yet, and separate
 * invocations (say one per seed) can fill the same folder side by side, since each writes only the
 * files of its own cells.
 *
 * A file is used only when its stored key equals the requested key exactly; a file that does not
 * parse, or whose key differs (the settings changed), is reported and its cell is run again.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskConfig } from '@chorus/coordinator';
import type { Shard } from './args.js';
import { ExperimentsError } from './errors.js';

/** What a cache file holds. */
interface CacheFile<T> {
  readonly version: 1;
  readonly key: unknown;
  readonly value: T;
}

const SAFE_PREFIX = /^[a-z0-9][a-z0-9-]*$/;

/** JSON with object keys sorted at every level, so equal keys give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** The file name of `key`: the prefix and the first 16 hex digits of the SHA-256 of its canonical JSON. */
export function cacheFileName(prefix: string, key: unknown): string {
  if (!SAFE_PREFIX.test(prefix)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `cacheFileName: prefix '${prefix}' must match ${SAFE_PREFIX}`);
  return `${prefix}-${createHash('sha256').update(canonicalJson(key)).digest('hex').slice(0, 16)}.json`;
}

/** Reads and writes finished runs under one folder. */
export interface RunCache {
  /** The folder, or null for a cache that keeps nothing. */
  readonly dir: string | null;
  /** The stored value of `key`, or null (no file, an unreadable file, another key, or reading turned off). */
  get<T>(prefix: string, key: unknown): T | null;
  /** Stores `value` under `key` (written to a temporary name, then renamed, so a killed run leaves no half file). */
  put(prefix: string, key: unknown, value: unknown): void;
}

/**
 * A cache over `dir` (null: none). `read` false makes every `get` miss while `put` still writes,
 * so a fresh run replaces the stored one. `warn` hears about files that were present but unusable.
 */
export function createRunCache(dir: string | null, options: { readonly read?: boolean; readonly warn?: (line: string) => void } = {}): RunCache {
  const read = options.read ?? true;
  const warn = options.warn ?? ((): void => undefined);
  return {
    dir,
    get<T>(prefix: string, key: unknown): T | null {
      if (dir === null || !read) return null;
      const file = join(dir, cacheFileName(prefix, key));
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        return null;
      }
      let stored: CacheFile<T>;
      try {
        stored = JSON.parse(text) as CacheFile<T>;
      } catch (err) {
        warn(`run cache: ${file} is not JSON (${(err as Error).message}); running the cell again`);
        return null;
      }
      if (stored === null || typeof stored !== 'object' || stored.version !== 1 || !('value' in stored)) {
        warn(`run cache: ${file} is not a run file; running the cell again`);
        return null;
      }
      if (canonicalJson(stored.key) !== canonicalJson(key)) {
        warn(`run cache: ${file} holds another key (settings changed?); running the cell again`);
        return null;
      }
      return stored.value;
    },
    put(prefix: string, key: unknown, value: unknown): void {
      if (dir === null) return;
      mkdirSync(dir, { recursive: true });
      const file = join(dir, cacheFileName(prefix, key));
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ version: 1, key, value } satisfies CacheFile<unknown>)}\n`);
      renameSync(tmp, file);
    },
  };
}

/** How a non-finite number (NaN, ±Infinity) is written in a cache file: plain JSON would turn it into null. */
const NON_FINITE = '$nonFinite';

/** `value` with every non-finite number replaced by `{ $nonFinite: 'NaN' | 'Infinity' | '-Infinity' }`. */
export function encodeNonFinite(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : { [NON_FINITE]: String(value) };
  if (Array.isArray(value)) return value.map(encodeNonFinite);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodeNonFinite(v)]));
  return value;
}

/** The inverse of `encodeNonFinite`. */
export function decodeNonFinite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeNonFinite);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === NON_FINITE && typeof entries[0]![1] === 'string') return Number(entries[0]![1]);
    return Object.fromEntries(entries.map(([k, v]) => [k, decodeNonFinite(v)]));
  }
  return value;
}

/**
 * The stored value of `key` when `cache` holds one, else `compute()`'s, stored when `keep` accepts
 * it (e.g. only finished runs). Non-finite numbers survive the round trip. `stored` tells which.
 */
export async function cachedRun<T>(
  cache: RunCache | undefined,
  prefix: string,
  key: unknown,
  compute: () => Promise<T>,
  keep: (value: T) => boolean = () => true,
): Promise<{ value: T; stored: boolean }> {
  // Without a shard no cell is left to another, so the result is never null.
  return (await cachedCell({ ...(cache === undefined ? {} : { cache }) }, 0, { prefix, key, compute, keep }))!;
}

/**
 * The settings part of a run's key: `settings` without the fields in `ignored` (those that change
 * no single run, e.g. the list of cells or the tuning grid), with the section's code version
 * `engine`, bumped whenever a change to the code changes what a stored run would measure.
 */
export function settingsKey<S extends object>(engine: number, settings: S, ignored: readonly (keyof S)[]): Readonly<Record<string, unknown>> {
  const rest = Object.fromEntries(Object.entries(settings).filter(([k]) => !(ignored as readonly PropertyKey[]).includes(k)));
  return { engine, ...rest };
}

/**
 * Version of the outputs of the coordinator's server-side probe: each candidate model global + Δ_k
 * run on the server's probe set (packages/models cachedProbe.ts, in the task's evaluator), whose
 * probabilities and explanations FedMM-X trust turns into T_k. It is in the key of exactly the runs
 * whose aggregation reads those outputs ({@link probeKey}), so moving it retires those runs and no
 * other. Bump it whenever the probe's outputs change in any bit (pass layout, summation order, probe
 * set, softmax): T_k moves, and with it the weights and every later round of such a run.
 * 1: candidates scored in batched passes over cached frozen activations, equal to the former
 * one-by-one path only to float rounding (runs stored before have no `probe` field). Running an
 * encoder once for the candidates holding the same adapters for it, and keeping the last sets'
 * embeddings between calls, left every bit as it was (each stage still runs in passes of the same
 * size; a stored FedMM-X run with mixed modality sets recomputes the same), so it stays 1.
 *
 * The evaluation of each new global on the test subset (TaskModel.evaluate, a second cache over
 * the test set) is not covered: it feeds no aggregation, and the sections store only its accuracy,
 * a count of argmaxes that float rounding has not moved (stored FedAvg and median runs recompute
 * bit for bit). A change that moves it would retire every cell the coordinator evaluates, which is
 * for the sections' engines (ROBUSTNESS_ENGINE, SYBIL_ENGINE) to say, not for this field.
 */
export const PROBE_ENGINE = 1;

/** The trust signals computed from the probe's outputs (the task file's names; agreement is the one that is not). */
const PROBE_SIGNALS = ['accuracy', 'loss', 'calibration', 'explanation'] as const;

/**
 * Whether a run of `task` reads the server probe's outputs: its strategy holds a FedMM-X trust
 * wrapper (`fedmm-x`, at any depth) that weighs a probe signal above 0. The coordinator probes every
 * candidate of such a task (apps/coordinator server.ts, engine/serverMeasurements.ts); a wrapper
 * weighing agreement alone is probed too, but scoreTrust drops signals of weight 0, so its T_k never
 * reads the outputs. FedAvg, median, trimmed mean, Krum, FLTrust, server-only (the root update is
 * training, not a probe) and the representation tasks (FedAFD) read none.
 */
export function readsServerProbe(task: TaskConfig): boolean {
  for (let node: unknown = task.strategy; node !== null && typeof node === 'object'; node = (node as { inner?: unknown }).inner) {
    const s = node as { name?: unknown; weights?: Readonly<Record<string, unknown>> };
    // A parsed task has every weight filled in; an absent one would take its default, which is positive.
    if (s.name === 'fedmm-x' && PROBE_SIGNALS.some((w) => (s.weights?.[w] ?? 1) !== 0)) return true;
  }
  return false;
}

/**
 * The key field of a run of `task` that depends on the server probe: `{ probe: PROBE_ENGINE }` when
 * it reads the probe's outputs ({@link readsServerProbe}), else nothing, so every other run keeps
 * its key byte for byte. Every section spreads it into the key of each run built from a coordinator task.
 */
export function probeKey(task: TaskConfig): { readonly probe?: number } {
  return readsServerProbe(task) ? { probe: PROBE_ENGINE } : {};
}

/** Version of similarity damping's behaviour that a stored run with damping on depends on (2: only copies are left out for good). */
export const DAMPING_ENGINE = 2;

/**
 * The key field of a run of `task` that damps similar updates (`admission.similarityDamping`):
 * `{ damping: DAMPING_ENGINE }`, else nothing, so every run without damping keeps its key byte for
 * byte. Spread into the key beside {@link probeKey}.
 */
export function dampingKey(task: TaskConfig): { readonly damping?: number } {
  return task.admission.similarityDamping ? { damping: DAMPING_ENGINE } : {};
}

/**
 * Why the code no longer asks for the stored run of `key` (a run of `task`) on account of the
 * probe: it read the probe under another {@link PROBE_ENGINE} (or before the field), or it holds a
 * `probe` field its task does not read. Null when the stored field is what {@link probeKey} gives.
 */
export function probeRetirement(key: unknown, task: TaskConfig): string | null {
  const stored = key !== null && typeof key === 'object' ? (key as { probe?: unknown }).probe : undefined;
  const requested = probeKey(task).probe;
  if (stored === requested) return null;
  return requested === undefined
    ? `stored with probe engine ${String(stored)}, but its run reads no server probe`
    : `read the server probe ${stored === undefined ? 'before PROBE_ENGINE existed' : `under probe engine ${String(stored)}`}; the code is at ${requested}`;
}

/** Whether the cell at `index` of a grid's plan is left to another shard when it has no stored run (never without `shard`). */
export function belongsToOtherShard(shard: Shard | undefined, index: number): boolean {
  return shard !== undefined && index % shard.count !== shard.index;
}

/**
 * `cachedRun` for the cell at `index` of a grid's plan: a cell with no stored run that belongs to
 * another shard is left to it (null, nothing computed).
 */
export async function cachedCell<T>(
  where: { readonly cache?: RunCache; readonly shard?: Shard },
  index: number,
  run: { readonly prefix: string; readonly key: unknown; readonly compute: () => Promise<T>; readonly keep?: (value: T) => boolean },
): Promise<{ value: T; stored: boolean } | null> {
  const hit = where.cache?.get<unknown>(run.prefix, run.key) ?? null;
  if (hit !== null) return { value: decodeNonFinite(hit) as T, stored: true };
  if (belongsToOtherShard(where.shard, index)) return null;
  const value = await run.compute();
  if (run.keep?.(value) ?? true) where.cache?.put(run.prefix, run.key, encodeNonFinite(value));
  return { value, stored: false };
}

/** How many of a section's cached runs were read back from the run cache, of all it asked for. */
export interface ReadBack {
  readonly stored: number;
  readonly total: number;
}

/** A tally of {@link ReadBack} and the callback that counts one run (`stored`: read back). */
export function readBackCounter(): { readonly tally: () => ReadBack; readonly count: (stored: boolean) => void } {
  let stored = 0;
  let total = 0;
  return {
    tally: () => ({ stored, total }),
    count: (wasStored) => {
      total += 1;
      if (wasStored) stored += 1;
    },
  };
}

/** The runtime line's sentence about runs read back (empty when none was). */
export function readBackNote(readBack: ReadBack | undefined): string {
  return readBack && readBack.stored > 0
    ? ` ${readBack.stored} of its ${readBack.total} runs were read from raw/runs/, stored by earlier invocations, so this is not the compute time of the grid.`
    : '';
}
