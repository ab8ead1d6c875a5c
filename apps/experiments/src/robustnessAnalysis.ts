/**
 * Analysis of the robustness grid (FedMM-X §6.3 and Figure 1, Balija 2025, arXiv:2503.19564):
 * accuracy retained under attack relative to the same aggregator's clean run, and the trust T_k of
 * honest and adversarial clients over rounds. Pure functions over finished runs; no I/O.
 */
import type { AdversarialKind } from '@chorus/client';
import { ExperimentsError } from './errors.js';
import { formatMeanStd, formatPaired, markdownTable, meanStd, pairedDifference } from './stats.js';
import type { PairedDifference } from './stats.js';
import { barChart, lineChart } from './svg.js';
import type { LinePoint, LineSeries } from './svg.js';

/** Aggregators compared, as the report names them. */
export const ROBUSTNESS_AGGREGATORS = [
  'fedavg',
  'median',
  'trimmed-mean',
  'multi-krum',
  'multi-krum-select',
  'fltrust',
  'fedmm-x',
  'fedmm-x-bounded',
  'fedmm-x-rooted',
  'fedmm-x-agreement-only',
  'fedmm-x-probe-only',
  'fedmm-x-expl-calib-only',
  'server-only',
] as const;
/** One of {@link ROBUSTNESS_AGGREGATORS}. */
export type AggregatorId = (typeof ROBUSTNESS_AGGREGATORS)[number];

/**
 * Reference rows, not competitors: the server-only baseline ignores clients, so it "retains" all of
 * its (lower) clean accuracy by construction and is left out of every "best aggregator" comparison.
 */
export const REFERENCE_AGGREGATORS: readonly AggregatorId[] = ['server-only'];

/** The baselines the norm-bounded trust-aware method is held against: every aggregator that is neither FedMM-X nor a reference row. */
export const BASELINE_AGGREGATORS: readonly AggregatorId[] = ['fedavg', 'median', 'trimmed-mean', 'multi-krum', 'multi-krum-select', 'fltrust'];

/** The norm-bounded trust-aware aggregators, each judged against the design target. */
export const BOUNDED_TRUST_AGGREGATORS: readonly AggregatorId[] = ['fedmm-x-bounded', 'fedmm-x-rooted'];

/** Design target of the norm-bounded trust-aware method: mean retained accuracy over attacks, by adversarial fraction. */
export const DESIGN_TARGETS: ReadonlyMap<number, number> = new Map([
  [0.2, 0.95],
  [0.4, 0.9],
]);

/** Display names of the aggregators. */
export const AGGREGATOR_LABELS: Readonly<Record<AggregatorId, string>> = {
  fedavg: 'FedAvg',
  median: 'Median',
  'trimmed-mean': 'Trimmed mean',
  'multi-krum': 'Multi-Krum per group',
  'multi-krum-select': 'Multi-Krum (client selection)',
  fltrust: 'FLTrust',
  'fedmm-x': 'FedMM-X (trust-aware, unbounded)',
  'fedmm-x-bounded': 'FedMM-X + median norm bound',
  'fedmm-x-rooted': 'FedMM-X + root norm bound, root reference',
  'fedmm-x-agreement-only': 'FedMM-X bounded, agreement only',
  'fedmm-x-probe-only': 'FedMM-X bounded, probe only (quality + loss)',
  'fedmm-x-expl-calib-only': 'FedMM-X bounded, explanation + calibration only',
  'server-only': 'Server only (FLTrust root data, clients ignored)',
};

/** One headless client of a run: its index, the id the coordinator gave it, and what it did. */
export interface RunClient {
  readonly client: number;
  /** Null when the client never received an identity (it failed before joining). */
  readonly clientId: string | null;
  /** Adversarial behaviour, null for an honest client. */
  readonly behaviour: string | null;
}

/** Trust scores T_k the coordinator recorded after one round. */
export interface TrustRound {
  readonly serverRound: number;
  readonly trust: readonly { readonly clientId: string; readonly trust: number }[];
}

/** One finished (or failed) federated run of the grid. */
export interface RobustnessRun {
  readonly aggregator: AggregatorId;
  /** Null for the clean run. */
  readonly attack: AdversarialKind | null;
  /** Fraction of adversarial clients (0 for the clean run). */
  readonly fraction: number;
  readonly seed: number;
  /** The task's final status ('finished' when every round completed), or 'error' when the run threw. */
  readonly status: string;
  readonly error?: string;
  readonly completedRounds: number;
  readonly initialAccuracy: number | null;
  /** Test accuracy after each round. */
  readonly accuracyByRound: readonly (number | null)[];
  /** Test accuracy after the last round (null when the run did not finish). */
  readonly finalAccuracy: number | null;
  readonly clients: readonly RunClient[];
  /** Per-round trust (recorded by trust-aware aggregation only; empty otherwise). */
  readonly trust: readonly TrustRound[];
  readonly durationMs: number;
  /** CPU time of this process during the run (user + system): a load-independent cost measure on a shared machine. */
  readonly cpuMs: number;
}

function bad(fn: string, why: string): ExperimentsError {
  return new ExperimentsError('EXPERIMENTS_BAD_INPUT', `${fn}: ${why}`);
}

function checkAccuracy(fn: string, name: string, v: number | null): void {
  if (v !== null && !(Number.isFinite(v) && v >= 0 && v <= 1)) throw bad(fn, `${name} must be an accuracy in [0, 1] or null, got ${v}`);
}

/** Accuracy under attack ÷ clean accuracy; null when either is missing or the clean accuracy is 0. */
export function retainedAccuracy(attacked: number | null, clean: number | null): number | null {
  checkAccuracy('retainedAccuracy', 'attacked', attacked);
  checkAccuracy('retainedAccuracy', 'clean', clean);
  if (attacked === null || clean === null || clean === 0) return null;
  return attacked / clean;
}

/** Key of one cell of the grid. */
export function cellKey(aggregator: AggregatorId, attack: AdversarialKind, fraction: number): string {
  return `${aggregator}|${attack}|${fraction}`;
}

/**
 * Clean accuracy below which a retained ratio is not reported: twice chance on 10 classes. A clean
 * run that never learned would otherwise "retain" about 100% of nothing.
 */
export const MIN_CLEAN_ACCURACY = 0.2;

/**
 * Retained accuracy of every attacked run against the clean run of the same aggregator and seed,
 * grouped by cell ({@link cellKey}); each list holds one value per seed, in seed order. A run whose
 * clean partner is missing, failed or below `minCleanAccuracy` contributes nothing.
 */
export function retainedByCell(runs: readonly RobustnessRun[], minCleanAccuracy = MIN_CLEAN_ACCURACY): Map<string, { seed: number; retained: number }[]> {
  if (!(minCleanAccuracy >= 0 && minCleanAccuracy < 1)) throw bad('retainedByCell', `minCleanAccuracy must be in [0, 1), got ${minCleanAccuracy}`);
  const clean = new Map<string, RobustnessRun>();
  for (const r of runs) {
    if (r.attack !== null) continue;
    const key = `${r.aggregator}|${r.seed}`;
    if (clean.has(key)) throw bad('retainedByCell', `two clean runs of ${r.aggregator} with seed ${r.seed}`);
    clean.set(key, r);
  }
  const out = new Map<string, { seed: number; retained: number }[]>();
  for (const r of runs) {
    if (r.attack === null) continue;
    const cleanAccuracy = clean.get(`${r.aggregator}|${r.seed}`)?.finalAccuracy ?? null;
    const value = cleanAccuracy !== null && cleanAccuracy >= minCleanAccuracy ? retainedAccuracy(r.finalAccuracy, cleanAccuracy) : null;
    if (value === null) continue;
    const key = cellKey(r.aggregator, r.attack, r.fraction);
    const list = out.get(key) ?? [];
    list.push({ seed: r.seed, retained: value });
    out.set(key, list);
  }
  for (const list of out.values()) list.sort((a, b) => a.seed - b.seed);
  return out;
}

/**
 * Per seed, the retained accuracy of `aggregator` at `fraction` averaged over `attacks`; a seed
 * counts only when every attack has a value for it (so the average is always over the same attacks).
 */
export function retainedOverAttacks(
  cells: ReadonlyMap<string, readonly { seed: number; retained: number }[]>,
  aggregator: AggregatorId,
  fraction: number,
  attacks: readonly AdversarialKind[],
): number[] {
  if (attacks.length === 0) return [];
  const bySeed = new Map<number, number[]>();
  for (const attack of attacks) {
    for (const { seed, retained } of cells.get(cellKey(aggregator, attack, fraction)) ?? []) {
      const list = bySeed.get(seed) ?? [];
      list.push(retained);
      bySeed.set(seed, list);
    }
  }
  return [...bySeed.entries()]
    .filter(([, values]) => values.length === attacks.length)
    .sort(([a], [b]) => a - b)
    .map(([, values]) => values.reduce((s, v) => s + v, 0) / values.length);
}

/** Which clients of a run were honest and which adversarial, by coordinator client id. */
export function behaviourById(run: RobustnessRun): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const c of run.clients) if (c.clientId !== null) out.set(c.clientId, c.behaviour);
  return out;
}

/** Mean, lowest and highest trust of one group of clients in one round. */
export interface GroupTrust {
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** Trust of the honest and of the adversarial clients after each round (null for an empty group). */
export function trustGroups(run: RobustnessRun): { serverRound: number; honest: GroupTrust | null; adversarial: GroupTrust | null }[] {
  const behaviours = behaviourById(run);
  return run.trust.map((round) => {
    const honest: number[] = [];
    const adversarial: number[] = [];
    for (const { clientId, trust } of round.trust) {
      if (!behaviours.has(clientId)) throw bad('trustGroups', `round ${round.serverRound}: trust of unknown client '${clientId}'`);
      (behaviours.get(clientId) === null ? honest : adversarial).push(trust);
    }
    const group = (values: number[]): GroupTrust | null =>
      values.length === 0 ? null : { mean: meanStd(values).mean, min: Math.min(...values), max: Math.max(...values) };
    return { serverRound: round.serverRound, honest: group(honest), adversarial: group(adversarial) };
  });
}

/** Mean trust of the honest and of the adversarial clients after each round (null for an empty group). */
export function trustGroupMeans(run: RobustnessRun): { serverRound: number; honest: number | null; adversarial: number | null }[] {
  return trustGroups(run).map((g) => ({ serverRound: g.serverRound, honest: g.honest?.mean ?? null, adversarial: g.adversarial?.mean ?? null }));
}

/**
 * Whether the adversarial clients' mean trust is below the honest clients' in every round after
 * `afterRound`; false when there is no such round or a group is empty (nothing was shown).
 */
export function adversarialTrustBelowHonest(run: RobustnessRun, afterRound: number): { ok: boolean; detail: string } {
  const later = trustGroupMeans(run).filter((r) => r.serverRound > afterRound);
  if (later.length === 0) return { ok: false, detail: `no trust recorded after round ${afterRound}` };
  const failing = later.filter((r) => r.honest === null || r.adversarial === null || r.adversarial >= r.honest);
  const fmt = (v: number | null): string => (v === null ? 'none' : v.toFixed(3));
  const detail = later.map((r) => `r${r.serverRound} adv ${fmt(r.adversarial)} / honest ${fmt(r.honest)}`).join('; ');
  return { ok: failing.length === 0, detail };
}

// Trust figure hues: blue honest, red adversarial; the group means darker than the clients' lines.
const HONEST_COLOUR = '#1f4e9c';
const HONEST_CLIENT_COLOUR = '#8fb3e8';
const ADVERSARIAL_COLOUR = '#b2182b';
const ADVERSARIAL_CLIENT_COLOUR = '#f0a0a0';

/** Figure 1 of FedMM-X for one run: every client's T_k over rounds (adversarial dashed) and each group's mean with its range. */
export function trustFigure(run: RobustnessRun, title: string): string {
  const pointsOf = new Map<string, LinePoint[]>();
  for (const round of run.trust) {
    for (const { clientId, trust } of round.trust) {
      const list = pointsOf.get(clientId) ?? [];
      list.push({ x: round.serverRound, y: trust });
      pointsOf.set(clientId, list);
    }
  }
  if (pointsOf.size === 0) throw bad('trustFigure', 'the run recorded no trust scores');
  const groups = trustGroups(run);
  // The band spans the group's lowest to highest T_k, so the spread reads even where lines overlap.
  const meanSeries = (name: string, pick: (g: (typeof groups)[number]) => GroupTrust | null, dashed: boolean, colour: string): LineSeries[] => {
    const points = groups.flatMap((g) => {
      const t = pick(g);
      return t === null ? [] : [{ x: g.serverRound, y: t.mean, low: t.min, high: t.max }];
    });
    return points.length === 0 ? [] : [{ name, points, dashed, colour, strokeWidth: 3 }];
  };
  // Clients in their index order so the legend reads the same in every figure.
  const clients = [...run.clients].filter((c) => c.clientId !== null && pointsOf.has(c.clientId)).sort((a, b) => a.client - b.client);
  // One hue per group (blue honest, red adversarial): thick group means, thin lines per client.
  const honest = clients
    .filter((c) => c.behaviour === null)
    .map((c) => ({ name: `honest c${c.client}`, points: pointsOf.get(c.clientId!)!, dashed: false, colour: HONEST_CLIENT_COLOUR, strokeWidth: 1 }));
  const adversarial = clients
    .filter((c) => c.behaviour !== null)
    .map((c) => ({ name: `${c.behaviour} c${c.client}`, points: pointsOf.get(c.clientId!)!, dashed: true, colour: ADVERSARIAL_CLIENT_COLOUR, strokeWidth: 1 }));
  return lineChart({
    title,
    xLabel: 'round',
    yLabel: 'trust T_k',
    yMin: 0,
    yMax: 1,
    series: [
      ...meanSeries('honest mean (band: range)', (g) => g.honest, false, HONEST_COLOUR),
      ...meanSeries('adversarial mean (band: range)', (g) => g.adversarial, true, ADVERSARIAL_COLOUR),
      ...honest,
      ...adversarial,
    ],
  });
}

/** The grid a report covers. */
export interface RobustnessGridShape {
  readonly aggregators: readonly AggregatorId[];
  readonly attacks: readonly AdversarialKind[];
  readonly fractions: readonly number[];
}

const pct = (fraction: number): string => `${Math.round(fraction * 100)}%`;

/** Bar chart of retained accuracy per aggregator, one bar per adversarial fraction, averaged over attacks (whiskers: std over seeds). */
export function retainedBarChart(runs: readonly RobustnessRun[], grid: RobustnessGridShape): string {
  const cells = retainedByCell(runs);
  return barChart({
    title: `Accuracy retained under attack (mean over ${grid.attacks.join(', ')})`,
    yLabel: 'retained accuracy (%)',
    groups: grid.aggregators.map((a) => AGGREGATOR_LABELS[a]),
    yMin: 0,
    series: grid.fractions.map((fraction) => {
      const stats = grid.aggregators.map((a) => meanStd(retainedOverAttacks(cells, a, fraction, grid.attacks)));
      return {
        name: `${pct(fraction)} adversarial`,
        values: stats.map((s) => (s.n === 0 ? null : s.mean * 100)),
        errors: stats.map((s) => (s.n > 1 ? s.std * 100 : null)),
      };
    }),
  });
}

/** Columns of the tables: every (attack, fraction) cell of the grid. */
function columns(grid: RobustnessGridShape): { attack: AdversarialKind; fraction: number; label: string }[] {
  return grid.fractions.flatMap((fraction) => grid.attacks.map((attack) => ({ attack, fraction, label: `${attack} ${pct(fraction)}` })));
}

/** Markdown tables: retained accuracy (and final accuracy) per aggregator × (attack, fraction), with means over attacks. */
export function robustnessTables(runs: readonly RobustnessRun[], grid: RobustnessGridShape): { retained: string; accuracy: string } {
  const cells = retainedByCell(runs);
  const cols = columns(grid);
  const finals = (aggregator: AggregatorId, attack: AdversarialKind | null, fraction: number): number[] =>
    runs.filter((r) => r.aggregator === aggregator && r.attack === attack && r.fraction === fraction && r.finalAccuracy !== null).map((r) => r.finalAccuracy!);
  const retainedRows = grid.aggregators.map((a) => [
    AGGREGATOR_LABELS[a],
    formatMeanStd(finals(a, null, 0), { scale: 100 }),
    ...cols.map((c) =>
      formatMeanStd(
        (cells.get(cellKey(a, c.attack, c.fraction)) ?? []).map((v) => v.retained),
        { scale: 100 },
      ),
    ),
    ...grid.fractions.map((f) => formatMeanStd(retainedOverAttacks(cells, a, f, grid.attacks), { scale: 100 })),
  ]);
  const accuracyRows = grid.aggregators.map((a) => [
    AGGREGATOR_LABELS[a],
    formatMeanStd(finals(a, null, 0), { scale: 100 }),
    ...cols.map((c) => formatMeanStd(finals(a, c.attack, c.fraction), { scale: 100 })),
  ]);
  return {
    retained: markdownTable(['aggregator', 'clean acc. (%)', ...cols.map((c) => `${c.label}`), ...grid.fractions.map((f) => `mean ${pct(f)}`)], retainedRows),
    accuracy: markdownTable(['aggregator', 'clean', ...cols.map((c) => c.label)], accuracyRows),
  };
}

/** Mean retained accuracy of `aggregator` at `fraction` over `attacks` (mean over seeds), or null without a value. */
function meanRetained(
  cells: ReadonlyMap<string, readonly { seed: number; retained: number }[]>,
  aggregator: AggregatorId,
  fraction: number,
  attacks: readonly AdversarialKind[],
): number | null {
  const values = retainedOverAttacks(cells, aggregator, fraction, attacks);
  return values.length === 0 ? null : meanStd(values).mean;
}

const fmtPct = (v: number | null): string => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);

/**
 * The headline sentence in the paper's form ("X% retained at 20% vs FedAvg's Y%") for `method`, with
 * the best non-reference aggregator of each fraction.
 */
export function robustnessSummary(runs: readonly RobustnessRun[], grid: RobustnessGridShape, method: AggregatorId): { headline: string[] } {
  const cells = retainedByCell(runs);
  const headline = grid.fractions.map((f) => {
    const ours = meanRetained(cells, method, f, grid.attacks);
    const fedavg = meanRetained(cells, 'fedavg', f, grid.attacks);
    const ranked = grid.aggregators
      .filter((a) => !REFERENCE_AGGREGATORS.includes(a))
      .map((a) => ({ a, v: meanRetained(cells, a, f, grid.attacks) }))
      .filter((x): x is { a: AggregatorId; v: number } => x.v !== null)
      .sort((x, y) => y.v - x.v);
    const best = ranked[0];
    return `At ${pct(f)} adversarial clients (mean over ${grid.attacks.length} attack${grid.attacks.length === 1 ? '' : 's'}): ${AGGREGATOR_LABELS[method]} retains ${fmtPct(ours)} of its clean accuracy vs FedAvg's ${fmtPct(fedavg)}${best ? `; best: ${AGGREGATOR_LABELS[best.a]} ${fmtPct(best.v)}` : ''}.`;
  });
  return { headline };
}

/** One cell where a method falls below the best baseline by more than the cell's 95 % interval (or, with one seed, at all). */
export interface LosingCell {
  readonly attack: AdversarialKind;
  readonly fraction: number;
  /** The baseline with the highest mean retained accuracy in the cell. */
  readonly baseline: AggregatorId;
  readonly methodRetained: number;
  readonly baselineRetained: number;
  /** Paired difference method − baseline over the seeds both have. */
  readonly difference: PairedDifference;
}

/** How a norm-bounded trust-aware method measures against the design target and the baselines. */
export interface DesignTargetResult {
  readonly method: AggregatorId;
  /** Per fraction: mean retained accuracy over attacks (null without runs), the target (null when none is set) and whether it is met. */
  readonly fractions: readonly { readonly fraction: number; readonly retained: number | null; readonly target: number | null; readonly met: boolean | null }[];
  /** Cells where the method is below the best baseline by more than the cell's interval; with one seed, every cell where it is below. */
  readonly losing: readonly LosingCell[];
  /** Cells where both the method and at least one baseline have values. */
  readonly comparedCells: number;
}

/**
 * Measures `method` against the design target ({@link DESIGN_TARGETS}) and, cell by cell, against the
 * best baseline of the grid ({@link BASELINE_AGGREGATORS} present in it, best by mean retained
 * accuracy over seeds): the paired difference over seeds and its 95 % t interval; a cell counts as lost
 * when the whole interval lies below 0 (the method is below by more than the interval's half-width),
 * and with one seed, which gives no interval, whenever the method is below.
 */
export function designTarget(runs: readonly RobustnessRun[], grid: RobustnessGridShape, method: AggregatorId): DesignTargetResult {
  const cells = retainedByCell(runs);
  const fractions = grid.fractions.map((fraction) => {
    const retained = meanRetained(cells, method, fraction, grid.attacks);
    const target = DESIGN_TARGETS.get(fraction) ?? null;
    return { fraction, retained, target, met: retained === null || target === null ? null : retained >= target };
  });
  const losing: LosingCell[] = [];
  let comparedCells = 0;
  const baselines = grid.aggregators.filter((a) => BASELINE_AGGREGATORS.includes(a));
  for (const c of columns(grid)) {
    const series = (a: AggregatorId) => (cells.get(cellKey(a, c.attack, c.fraction)) ?? []).map((v) => ({ seed: v.seed, value: v.retained }));
    const ours = series(method);
    if (ours.length === 0) continue;
    const best = baselines
      .map((a) => ({ a, values: series(a) }))
      .filter((b) => b.values.length > 0)
      .map((b) => ({ ...b, mean: meanStd(b.values.map((v) => v.value)).mean }))
      .sort((x, y) => y.mean - x.mean)[0];
    if (!best) continue;
    comparedCells += 1;
    const difference = pairedDifference(ours, best.values);
    if (difference.n === 0) continue;
    const lost = difference.n < 2 ? difference.mean < 0 : difference.high < 0;
    if (lost) {
      losing.push({
        attack: c.attack,
        fraction: c.fraction,
        baseline: best.a,
        methodRetained: meanStd(ours.map((v) => v.value)).mean,
        baselineRetained: best.mean,
        difference,
      });
    }
  }
  return { method, fractions, losing, comparedCells };
}

/** The report's lines on {@link designTarget}'s result, every figure taken from it. */
export function designTargetLines(result: DesignTargetResult): string[] {
  const label = AGGREGATOR_LABELS[result.method];
  const lines = result.fractions.map(
    (f) =>
      `- ${label} at ${pct(f.fraction)}: mean retained ${fmtPct(f.retained)}` +
      (f.target === null
        ? ' (no design target at this fraction)'
        : ` against the design target ≥ ${pct(f.target)}: ${f.met === null ? 'not measured' : f.met ? 'met' : 'missed'}`) +
      '.',
  );
  if (result.comparedCells === 0) return [...lines, `- ${label}: no cell has a baseline to compare with.`];
  const oneSeed = result.losing.some((l) => l.difference.n < 2);
  lines.push(
    result.losing.length === 0
      ? `- In none of the ${result.comparedCells} cells is ${label} below the best baseline by more than the cell's 95 % interval.`
      : `- Cells (${result.losing.length} of ${result.comparedCells}) where ${label} is below the best baseline by more than the cell's 95 % interval${oneSeed ? ' (one seed gives no interval: there, any shortfall is listed)' : ''}, retained accuracy and the paired difference in points:`,
  );
  for (const l of result.losing) {
    lines.push(
      `  - ${l.attack} ${pct(l.fraction)}: ${fmtPct(l.methodRetained)} vs ${AGGREGATOR_LABELS[l.baseline]} ${fmtPct(l.baselineRetained)}, difference ${formatPaired(l.difference, { scale: 100 })}.`,
    );
  }
  return lines;
}
