/** Command-line arguments of `pnpm experiments`. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ExperimentsError } from './errors.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(packageRoot, '..', '..');

/**
 * Evaluation seeds when `--seeds` is not given: five in the full mode (paired intervals over seeds
 * need several), one in `--quick` (a smoke test). Tuning seeds are set per section and never overlap these.
 */
export const DEFAULT_SEEDS = { full: '1,2,3,4,5', quick: '1' } as const;

/** Parsed command line. */
export interface ExperimentsArgs {
  readonly quick: boolean;
  readonly only: readonly string[];
  readonly outDir: string;
  readonly seeds: readonly number[];
  readonly jobs: number;
  /**
   * Folder of finished runs that sections reuse (see runCache.ts), or null: by default
   * `<out>/raw/runs` in the full mode and none under `--quick`, so CI always runs its grid.
   */
  readonly cacheDir: string | null;
  /** `--fresh`: run every cell again (and overwrite its cache file) instead of reusing it. */
  readonly fresh: boolean;
  /** `--shard i/n`: run only every n-th missing cell from the i-th (0-based), so n invocations fill one grid side by side; null: all. */
  readonly shard: Shard | null;
  /** `--render`: run nothing, rebuild README.md from the raw files in the folder (after a code change to the report's frame). */
  readonly render: boolean;
  /** `--verify k`: run nothing new; recompute k stored runs of each selected section and compare them with the stored values; null: off. */
  readonly verify: number | null;
}

/** One of n interleaved parts of a grid's plan. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** Parses `i/n` (0 ≤ i < n); throws `EXPERIMENTS_BAD_ARGS`. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(count) && count >= 1 && index < count)) {
    throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `--shard must be i/n with 0 ≤ i < n, e.g. 0/3; got '${text}'`);
  }
  return { index, count };
}

/** Parses the count of `--verify k` (an integer ≥ 1); throws `EXPERIMENTS_BAD_ARGS`. */
export function parseVerify(text: string): number {
  const k = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!(Number.isSafeInteger(k) && k >= 1))
    throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `--verify must be an integer ≥ 1 (stored runs per section), got '${text}'`);
  return k;
}

/** Parses the command line; throws `EXPERIMENTS_BAD_ARGS` naming the flag at fault. */
export function parseExperimentsArgs(argv: readonly string[], known: readonly string[]): ExperimentsArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string', multiple: true },
        out: { type: 'string' },
        seeds: { type: 'string' },
        jobs: { type: 'string', default: '2' },
        cache: { type: 'string' },
        'no-cache': { type: 'boolean', default: false },
        fresh: { type: 'boolean', default: false },
        shard: { type: 'string' },
        render: { type: 'boolean', default: false },
        verify: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', (err as Error).message);
  }
  const only = (values.only ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const unknown = only.filter((id) => !known.includes(id));
  if (unknown.length > 0) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `--only: unknown section ${unknown.join(', ')} (known: ${known.join(', ')})`);
  const seedText = values.seeds ?? (values.quick ? DEFAULT_SEEDS.quick : DEFAULT_SEEDS.full);
  const seeds = seedText.split(',').map((s) => Number(s.trim()));
  if (seeds.length === 0 || seeds.some((s) => !Number.isSafeInteger(s) || s < 0) || new Set(seeds).size !== seeds.length) {
    throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `--seeds must be distinct integers ≥ 0, e.g. 1,2,3; got '${seedText}'`);
  }
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `--jobs must be an integer ≥ 1, got '${values.jobs}'`);
  const outDir = resolve(values.out ?? join(repoRoot, 'docs', 'results', ...(values.quick ? ['quick'] : [])));
  if (values.cache !== undefined && values['no-cache']) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', '--cache and --no-cache exclude each other');
  const cacheDir = values['no-cache'] ? null : values.cache !== undefined ? resolve(values.cache) : values.quick ? null : join(outDir, 'raw', 'runs');
  const shard = values.shard === undefined ? null : parseShard(values.shard);
  if (shard !== null && cacheDir === null) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', '--shard needs the run cache: the shards meet only there');
  const verify = values.verify === undefined ? null : parseVerify(values.verify);
  if (verify !== null) {
    if (cacheDir === null) throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', '--verify needs the run cache: it checks the runs stored there');
    const other = (['fresh', 'render', 'shard'] as const).filter((f) => values[f] !== undefined && values[f] !== false);
    if (other.length > 0)
      throw new ExperimentsError('EXPERIMENTS_BAD_ARGS', `--verify runs nothing new and writes nothing; it excludes --${other.join(', --')}`);
  }
  return {
    quick: values.quick,
    only: only.length > 0 ? only : known,
    outDir,
    seeds,
    jobs,
    cacheDir,
    fresh: values.fresh,
    shard,
    render: values.render,
    verify,
  };
}
