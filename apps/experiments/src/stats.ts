/** Summary statistics and Markdown helpers of the report. */
import { ExperimentsError } from './errors.js';

/** Mean, sample standard deviation (0 for one value) and count of `values`; NaN mean when empty. */
export function meanStd(values: readonly number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/**
 * One chart point per round 1…`rounds`: the mean of `valuesAt(i)` (0-based round index) with a
 * ±1 std band when there are two or more values; rounds without a value are left out.
 */
export function meanBandPoints(rounds: number, valuesAt: (i: number) => readonly number[]): { x: number; y: number; low?: number; high?: number }[] {
  const points: { x: number; y: number; low?: number; high?: number }[] = [];
  for (let i = 0; i < rounds; i++) {
    const values = valuesAt(i);
    if (values.length === 0) continue;
    const s = meanStd(values);
    points.push({ x: i + 1, y: s.mean, ...(values.length > 1 ? { low: s.mean - s.std, high: s.mean + s.std } : {}) });
  }
  return points;
}

/** `mean ± std` of `values` scaled by `scale` (e.g. 100 for percent), with `digits` decimals; `—` when empty. */
export function formatMeanStd(values: readonly number[], options: { scale?: number; digits?: number } = {}): string {
  const { mean, std, n } = meanStd(values);
  if (n === 0) return '—';
  const scale = options.scale ?? 1;
  const digits = options.digits ?? 1;
  return n > 1 ? `${(mean * scale).toFixed(digits)} ± ${(std * scale).toFixed(digits)}` : (mean * scale).toFixed(digits);
}

/** A Markdown table; cells are escaped so a `|` in a value cannot break the row. */
export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cell = (v: string | number): string => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

/**
 * Two-sided 95 % quantiles of Student's t (t₀.₉₇₅) for 1–30 degrees of freedom, then 40, 60 and 120
 * (standard table values, three decimals); beyond 120 the normal quantile 1.960 is used.
 */
const T_975: ReadonlyMap<number, number> = new Map([
  [1, 12.706],
  [2, 4.303],
  [3, 3.182],
  [4, 2.776],
  [5, 2.571],
  [6, 2.447],
  [7, 2.365],
  [8, 2.306],
  [9, 2.262],
  [10, 2.228],
  [11, 2.201],
  [12, 2.179],
  [13, 2.16],
  [14, 2.145],
  [15, 2.131],
  [16, 2.12],
  [17, 2.11],
  [18, 2.101],
  [19, 2.093],
  [20, 2.086],
  [21, 2.08],
  [22, 2.074],
  [23, 2.069],
  [24, 2.064],
  [25, 2.06],
  [26, 2.056],
  [27, 2.052],
  [28, 2.048],
  [29, 2.045],
  [30, 2.042],
  [40, 2.021],
  [60, 2.0],
  [120, 1.98],
]);

/**
 * t₀.₉₇₅ with `df` degrees of freedom (the half-width factor of a 95 % confidence interval). Between
 * tabulated values it takes the largest tabulated df ≤ `df`, whose quantile is the larger one, so an
 * interval is never narrower than the exact one. Throws `EXPERIMENTS_BAD_INPUT` unless df is an integer ≥ 1.
 */
export function tQuantile975(df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `tQuantile975: df must be an integer ≥ 1, got ${df}`);
  if (df > 120) return 1.96;
  let best = 12.706;
  for (const [d, t] of T_975) if (d <= df) best = t;
  return best;
}

/** One value of one seed. */
export interface SeededValue {
  readonly seed: number;
  readonly value: number;
}

/** A paired comparison over seeds: per-seed differences `a − b`, their mean and its 95 % t interval. */
export interface PairedDifference {
  /** Seeds present (with a finite value) in both series, ascending. */
  readonly seeds: readonly number[];
  /** `a − b` of each seed of `seeds`. */
  readonly differences: readonly number[];
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation of the differences (NaN below two seeds). */
  readonly std: number;
  /** Lower and upper end of the 95 % t interval of the mean difference (NaN below two seeds). */
  readonly low: number;
  readonly high: number;
  /** Whether the interval contains 0 (null below two seeds: no interval). */
  readonly includesZero: boolean | null;
}

/**
 * The paired difference `a − b` over the seeds both series hold (a seed's runs share the partition
 * and initial model, so the pairing removes that variation): mean ± t₀.₉₇₅(n − 1) · s / √n. Throws
 * `EXPERIMENTS_BAD_INPUT` when a series names a seed twice.
 */
export function pairedDifference(a: readonly SeededValue[], b: readonly SeededValue[]): PairedDifference {
  const byB = new Map<number, number>();
  for (const [name, series] of [
    ['a', a],
    ['b', b],
  ] as const) {
    const seen = new Set<number>();
    for (const { seed } of series) {
      if (seen.has(seed)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `pairedDifference: series ${name} holds seed ${seed} twice`);
      seen.add(seed);
    }
  }
  for (const { seed, value } of b) if (Number.isFinite(value)) byB.set(seed, value);
  const pairs = a
    .filter(({ seed, value }) => Number.isFinite(value) && byB.has(seed))
    .map(({ seed, value }) => ({ seed, d: value - byB.get(seed)! }))
    .sort((x, y) => x.seed - y.seed);
  const differences = pairs.map((p) => p.d);
  const n = differences.length;
  const mean = n === 0 ? Number.NaN : differences.reduce((s, v) => s + v, 0) / n;
  if (n < 2) return { seeds: pairs.map((p) => p.seed), differences, n, mean, std: Number.NaN, low: Number.NaN, high: Number.NaN, includesZero: null };
  const std = meanStd(differences).std;
  const half = (tQuantile975(n - 1) * std) / Math.sqrt(n);
  const low = mean - half;
  const high = mean + half;
  return { seeds: pairs.map((p) => p.seed), differences, n, mean, std, low, high, includesZero: low <= 0 && high >= 0 };
}

/** `+1.2 [−0.3, +2.7]` (mean and 95 % interval, scaled), `+1.2 (1 seed)` without an interval, `—` without seeds. */
export function formatPaired(d: PairedDifference, options: { scale?: number; digits?: number } = {}): string {
  if (d.n === 0) return '—';
  const scale = options.scale ?? 1;
  const digits = options.digits ?? 1;
  const s = (v: number): string => `${v * scale >= 0 ? '+' : '−'}${Math.abs(v * scale).toFixed(digits)}`;
  return d.n < 2 ? `${s(d.mean)} (1 seed, no interval)` : `${s(d.mean)} [${s(d.low)}, ${s(d.high)}]`;
}

/**
 * One sentence on `d` (`a − b`, in points after `scale`): whether its 95 % interval excludes 0 and in
 * which direction, so the report's prose follows the numbers.
 */
export function pairedReading(a: string, b: string, d: PairedDifference, options: { scale?: number; digits?: number } = {}): string {
  const text = formatPaired(d, options);
  if (d.n === 0) return `${a} vs ${b}: no seed holds both.`;
  if (d.includesZero === null) return `${a} − ${b}: ${text} points; one seed gives no interval, so these runs cannot separate them.`;
  if (d.includesZero) return `${a} − ${b}: ${text} points; the 95 % interval includes 0, so these ${d.n} seeds do not separate them.`;
  return `${a} − ${b}: ${text} points; the 95 % interval excludes 0, so over these ${d.n} seeds ${a} is ${d.mean > 0 ? 'above' : 'below'} ${b}.`;
}
