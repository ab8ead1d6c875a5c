/**
 * Robustness section: accuracy retained under adversarial clients per aggregator, and the trust
 * figure of trust-aware aggregation (FedMM-X §6.3 and Figure 1, Balija 2025, arXiv:2503.19564).
 *
 * Every run is a real federated run (`runSimulation`: coordinator plus headless clients). For one
 * seed the client partition, the choice of adversarial clients (per fraction), the initial adapters
 * and the probe and test subsets are the same for every aggregator and attack, so a cell differs
 * from its clean partner only by the attack.
 */
import type { AdversarialKind } from '@chorus/client';
import type { TaskConfig } from '@chorus/coordinator';
import type { BuiltinName } from '@chorus/datasets';
import { runSimulation } from '@chorus/coordinator/simulate';
import { DEFAULT_SEEDS } from './args.js';
import { ExperimentsError } from './errors.js';
import {
  adversarialTrustBelowHonest,
  ROBUSTNESS_AGGREGATORS,
  AGGREGATOR_LABELS,
  BASELINE_AGGREGATORS,
  BOUNDED_TRUST_AGGREGATORS,
  designTarget,
  designTargetLines,
  MIN_CLEAN_ACCURACY,
  REFERENCE_AGGREGATORS,
  robustnessSummary,
  robustnessTables,
  retainedBarChart,
  trustFigure,
  trustGroupMeans,
} from './robustnessAnalysis.js';
import type { AggregatorId, RobustnessGridShape, RobustnessRun, RunClient } from './robustnessAnalysis.js';
import type { Check, ExperimentContext, Figure, SectionResult } from './section.js';
import type { VerifySpec } from './verify.js';
import { belongsToOtherShard, dampingKey, probeKey, probeRetirement } from './runCache.js';
import { markdownTable, meanStd } from './stats.js';
import { experimentTask } from './tasks.js';

/** Everything that defines the robustness grid. */
export interface RobustnessSettings extends RobustnessGridShape {
  /** The built-in dataset the clients train on and the coordinator probes and tests on (the task's `dataset.name`). */
  readonly dataset: BuiltinName;
  readonly numClients: number;
  readonly rounds: number;
  /** Local epochs per round (fashion-mm learns too slowly from one). */
  readonly localEpochs: number;
  /** Training examples per client (a seeded subset of its partition). */
  readonly maxExamples: number;
  /** Test accuracy the clean FedAvg and FedMM-X runs must reach for retained accuracy to mean anything (a sanity check, fixed before any run). */
  readonly minHeadlineAccuracy: number;
  /** Dirichlet α of the label skew. */
  readonly alpha: number;
  /** The `--modality-kinds` flag: which modalities each client holds. */
  readonly modalityKinds: string;
  readonly testExamples: number;
  readonly probeExamples: number;
  /** How many of the context's seeds to use (null: all). */
  readonly maxSeeds: number | null;
}

/** Every attack of the full grid; alie's clients each train 4 times a round (its bootstrap estimate), so its runs cost more. */
const ALL_ATTACKS: readonly AdversarialKind[] = ['sign-flip', 'scaling', 'gaussian-noise', 'label-flip', 'free-rider', 'alie', 'ipm', 'delayed-sign-flip'];

/** The strength of each attack as the grid runs it (the clients' defaults; see packages/client/src/adversarial.ts). */
const ATTACK_STRENGTHS: Readonly<Record<AdversarialKind, string>> = {
  'sign-flip': '−Δ',
  scaling: '×10',
  'gaussian-noise': 'σ = 1',
  'label-flip': 'labels deranged',
  'free-rider': 'zero update',
  alie: "mean − z·std from 4 bootstrap replicates, z the paper's z_max for the clients and colluders",
  ipm: '−0.5·Δ',
  'delayed-sign-flip': 'honest for rounds 1–3, then −Δ',
};
const MODALITY_KINDS = 'image=0.25,text=0.25,audio=0.25,image+text+audio=0.25';

/**
 * The reduced grid `--quick` runs (CI): 2 attacks at 20%, 2 aggregators (FedAvg and FedMM-X with
 * the median norm bound), 5 clients, 5 rounds, one seed: 6 runs. The median, unbounded FedMM-X,
 * Multi-Krum, the trust-signal ablations and the server-only reference run in the full grid.
 */
export const QUICK_ROBUSTNESS: RobustnessSettings = {
  aggregators: ['fedavg', 'fedmm-x-bounded'],
  dataset: 'fashion-mm',
  attacks: ['sign-flip', 'scaling'],
  fractions: [0.2],
  numClients: 5,
  rounds: 5,
  localEpochs: 3,
  maxExamples: 120,
  minHeadlineAccuracy: 0.3,
  alpha: 0.5,
  modalityKinds: MODALITY_KINDS,
  testExamples: 100,
  probeExamples: 64,
  maxSeeds: 1,
};

/**
 * The whole grid: every attack × {20%, 40%} × 11 aggregators (five baselines, unbounded FedMM-X, the
 * two norm-bounded FedMM-X configurations, three trust-signal ablations) and the server-only
 * reference (clean only), 10 clients, 6 rounds, every seed: 188 runs a seed. Each finished run is
 * stored in the run cache, seed by seed, so the grid fills over several invocations or machines.
 */
export const FULL_ROBUSTNESS: RobustnessSettings = {
  // Every aggregator but per-group Krum, which Multi-Krum client selection supersedes.
  aggregators: ROBUSTNESS_AGGREGATORS.filter((a) => a !== 'multi-krum'),
  dataset: 'fashion-mm',
  attacks: ALL_ATTACKS,
  fractions: [0.2, 0.4],
  numClients: 10,
  rounds: 6,
  localEpochs: 2,
  maxExamples: 96,
  minHeadlineAccuracy: 0.3,
  alpha: 0.5,
  modalityKinds: MODALITY_KINDS,
  testExamples: 256,
  probeExamples: 64,
  maxSeeds: null,
};

/** Trimmed share per side: the grid's smaller adversarial fraction, fixed before any run (not tuned). */
const TRIM_FRACTION = 0.2;

/**
 * Krum's f: the number of adversarial clients at the grid's largest fraction, capped at what
 * Blanchard et al.'s n > 2f + 2 allows (so at 40% of 10 clients Krum is told 3, not 4).
 */
export function krumByzantine(settings: Pick<RobustnessSettings, 'numClients' | 'fractions'>): number {
  const largest = Math.max(0, ...settings.fractions);
  return Math.max(0, Math.min(Math.round(largest * settings.numClients), Math.floor((settings.numClients - 3) / 2)));
}

/**
 * Multi-Krum selection's f: the adversarial clients at the grid's largest fraction (a server does
 * not know the fraction it faces, so it is set for the worst case), leaving at least one client.
 */
export function selectionByzantine(settings: Pick<RobustnessSettings, 'numClients' | 'fractions'>): number {
  const largest = Math.max(0, ...settings.fractions);
  return Math.max(0, Math.min(Math.round(largest * settings.numClients), settings.numClients - 1));
}

/** FedMM-X's recommended configuration: trust weighting over FedAvg, every update clipped per group to the round's median norm. */
const BOUNDED = { name: 'fedmm-x', inner: { name: 'fedavg' }, maxNorm: 'median', historyDecay: 0.5 } as const;
const SIGNALS_OFF = { agreement: 0, accuracy: 0, loss: 0, calibration: 0, explanation: 0 } as const;

/** The task-file strategy of `aggregator`, with the parameters this section uses. */
export function aggregatorStrategy(aggregator: AggregatorId, settings: Pick<RobustnessSettings, 'numClients' | 'fractions'>): Record<string, unknown> {
  switch (aggregator) {
    case 'fedavg':
      return { name: 'fedavg' };
    case 'median':
      return { name: 'median' };
    case 'trimmed-mean':
      return { name: 'trimmed-mean', trimFraction: TRIM_FRACTION };
    case 'multi-krum':
      return { name: 'multi-krum', numByzantine: krumByzantine(settings), numSelected: null };
    case 'multi-krum-select':
      return { name: 'multi-krum-select', numByzantine: selectionByzantine(settings), numSelected: null };
    case 'fltrust':
      return { name: 'fltrust', rootExamples: 100 };
    case 'fedmm-x':
      // As in tasks/demo-digits.yaml: trust weighting around FedAvg, default signal weights.
      return { name: 'fedmm-x', inner: { name: 'fedavg' }, historyDecay: 0.5 };
    case 'server-only':
      // FLTrust's root update alone (the same 100 public-split examples), clients ignored: how much of FLTrust's robustness is the server's own data.
      return { name: 'server-only', rootExamples: 100 };
    case 'fedmm-x-bounded':
      // The same trust weighting over FedAvg with every update clipped, per group, to the round's median norm (FLAME's adaptive bound): no constant to tune.
      return { ...BOUNDED };
    case 'fedmm-x-rooted':
      // The server's evidence instead of the round's: clipped to the norm of the root update (FLTrust's 100 public-split examples), agreement measured against it.
      return { ...BOUNDED, maxNorm: 'reference', agreementReference: 'root', rootExamples: 100 };
    case 'fedmm-x-agreement-only':
      // Ablations of the bounded configuration: one family of trust signals each. Agreement keeps its gate.
      return { ...BOUNDED, weights: { ...SIGNALS_OFF, agreement: 1 }, agreementGate: true };
    case 'fedmm-x-probe-only':
      // Without agreement the gate goes too, or agreement would still act through it.
      return { ...BOUNDED, weights: { ...SIGNALS_OFF, accuracy: 1, loss: 1 }, agreementGate: false };
    case 'fedmm-x-expl-calib-only':
      return { ...BOUNDED, weights: { ...SIGNALS_OFF, calibration: 0.5, explanation: 0.5 }, agreementGate: false };
    default:
      throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `aggregatorStrategy: unknown aggregator ${JSON.stringify(aggregator)}`);
  }
}

/** The validated task of one run: every client takes part in every round. */
export function robustnessTask(aggregator: AggregatorId, settings: RobustnessSettings, seed: number): TaskConfig {
  return experimentTask(`robustness-${aggregator}-s${seed}`, {
    dataset: { name: settings.dataset, modalities: ['image', 'text', 'audio'] },
    strategy: aggregatorStrategy(aggregator, settings),
    rounds: settings.rounds,
    localEpochs: settings.localEpochs,
    clientsPerRound: settings.numClients,
    minClients: settings.numClients,
    // Every client must upload, so one dropped socket (a blocked event loop on a loaded machine) retries
    // the round; a few more attempts than the base task keep such a run alive without changing its data.
    maxRoundAttempts: 6,
    evaluation: { probeExamples: settings.probeExamples, testExamples: settings.testExamples },
    seed,
  });
}

/** The headless clients' flags of one run (`attack` null: the clean run). */
export function robustnessClientArgs(settings: RobustnessSettings, seed: number, attack: AdversarialKind | null, fraction: number): string[] {
  if (attack !== null && !(fraction > 0 && fraction <= 1))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `robustnessClientArgs: fraction must be in (0, 1], got ${fraction}`);
  return [
    '--max-examples',
    String(settings.maxExamples),
    '--seed',
    String(seed),
    '--alpha',
    String(settings.alpha),
    '--modality-kinds',
    settings.modalityKinds,
    '--dataset',
    settings.dataset,
    // The clients' own evaluation is not used here; the coordinator measures the test split.
    '--eval-examples',
    '0',
    ...(attack === null ? [] : ['--adversarial', `${attack}:${fraction}`]),
  ];
}

/** Runs one cell of the grid; a run that throws is recorded with status 'error' rather than ending the section. */
async function runOne(
  settings: RobustnessSettings,
  aggregator: AggregatorId,
  attack: AdversarialKind | null,
  fraction: number,
  seed: number,
): Promise<RobustnessRun> {
  const started = Date.now();
  const cpuStart = process.cpuUsage();
  const cpuMs = (): number => {
    const used = process.cpuUsage(cpuStart);
    return (used.user + used.system) / 1000;
  };
  const identities = new Map<number, string>();
  const base = { aggregator, attack, fraction: attack === null ? 0 : fraction, seed };
  try {
    const report = await runSimulation({
      task: robustnessTask(aggregator, settings, seed),
      numClients: settings.numClients,
      clientArgs: robustnessClientArgs(settings, seed, attack, fraction),
      testExamples: settings.testExamples,
      onEvent: (client, event) => {
        if (event.type === 'identity') identities.set(client, event.clientId);
      },
    });
    const clients: RunClient[] = report.clients.map((c) => ({ client: c.client, clientId: identities.get(c.client) ?? null, behaviour: c.behaviour }));
    const finished = report.status === 'finished' && report.completedRounds === settings.rounds;
    return {
      ...base,
      status: report.status,
      completedRounds: report.completedRounds,
      initialAccuracy: report.initialTestAccuracy,
      accuracyByRound: report.rounds.map((r) => r.testAccuracy),
      finalAccuracy: finished ? (report.rounds.at(-1)?.testAccuracy ?? null) : null,
      clients,
      trust: report.rounds.filter((r) => r.trust.length > 0).map((r) => ({ serverRound: r.serverRound, trust: r.trust })),
      durationMs: Date.now() - started,
      cpuMs: cpuMs(),
    };
  } catch (err) {
    return {
      ...base,
      status: 'error',
      error: (err as Error).message,
      completedRounds: 0,
      initialAccuracy: null,
      accuracyByRound: [],
      finalAccuracy: null,
      clients: [],
      trust: [],
      durationMs: Date.now() - started,
      cpuMs: cpuMs(),
    };
  }
}

const CACHE_PREFIX = 'robustness';

/** Version of the round engine's behaviour that a cached run depends on (bumped when a run would come out differently: 3 = admission defaults with probation and sampling-order slots). */
export const ROBUSTNESS_ENGINE = 3;

/** Cache key of one run: the grid's settings (without the seed count) and the cell; the seed is in the cell. */

/** The cell of a stored key (the fields `robustnessCacheKey` writes). */
type StoredCell = { aggregator: AggregatorId; attack: AdversarialKind | null; fraction: number; seed: number };

/** Why the code no longer asks for the stored run of `key` (another round engine, or another server probe), or null. */
function robustnessRetirement(key: unknown): string | null {
  const { engine, settings, cell } = key as { engine: unknown; settings: Partial<RobustnessSettings>; cell: StoredCell };
  if (engine !== ROBUSTNESS_ENGINE) return `robustness: run stored by engine ${String(engine)}, the code is at ${ROBUSTNESS_ENGINE}`;
  const why = probeRetirement(key, robustnessTask(cell.aggregator, { ...FULL_ROBUSTNESS, ...settings }, cell.seed));
  return why === null ? null : `robustness: ${why}`;
}

/**
 * What `--verify` needs of the robustness grid: a stored cell is rerun from its key alone (the
 * settings it leaves out, the lists of aggregators and attacks and the seed count, change no run).
 */
export const ROBUSTNESS_VERIFY: VerifySpec = {
  prefix: CACHE_PREFIX,
  owns: (key) => (key as { section?: unknown } | null)?.section === 'robustness',
  retired: robustnessRetirement,
  kindOf: (key) => ((key as { cell: StoredCell }).cell.attack === null ? 'clean' : 'attacked'),
  label: (key) => {
    const { aggregator, attack, fraction, seed } = (key as { cell: StoredCell }).cell;
    return `${aggregator} ${attack ?? 'clean'}${attack === null ? '' : ` ${fraction}`} seed ${seed}`;
  },
  open: () =>
    Promise.resolve({
      recompute: async (key: unknown) => {
        const { settings, cell } = key as { settings: Partial<RobustnessSettings>; cell: StoredCell };
        const retired = robustnessRetirement(key);
        if (retired !== null) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', retired);
        return runOne({ ...FULL_ROBUSTNESS, ...settings }, cell.aggregator, cell.attack, cell.fraction, cell.seed);
      },
      close: (): void => undefined,
    }),
};

/** Mean clean final accuracy over seeds of each aggregator's finished clean runs (absent: none finished). */
function cleanMeans(runs: readonly RobustnessRun[]): Map<AggregatorId, number> {
  const by = new Map<AggregatorId, number[]>();
  for (const r of runs) if (r.attack === null && r.finalAccuracy !== null) by.set(r.aggregator, [...(by.get(r.aggregator) ?? []), r.finalAccuracy]);
  return new Map([...by].map(([a, xs]) => [a, meanStd(xs).mean]));
}

/** One cell of the trust table: an attack × fraction of `trusted`'s runs. */
export interface TrustSeparation {
  readonly attack: AdversarialKind;
  readonly fraction: number;
  /** Each run's honest clients' mean T_k after round 3 (runs with none left out). */
  readonly honest: readonly number[];
  /** Each run's adversarial clients' mean T_k after round 3. */
  readonly adversarial: readonly number[];
  /** Runs with both means in which the adversaries' was the lower. */
  readonly below: number;
  /** Runs with both means. */
  readonly compared: number;
}

/**
 * Cells of the trust table: for each attack × fraction of the grid (in its order) with runs of
 * `trusted`, the honest and the adversarial clients' mean T_k after round 3 of each run, and in how
 * many runs the adversaries' mean was the lower.
 */
export function trustSeparations(
  runs: readonly RobustnessRun[],
  settings: Pick<RobustnessSettings, 'attacks' | 'fractions'>,
  trusted: AggregatorId | null,
): TrustSeparation[] {
  const laterMean = (r: RobustnessRun, side: 'honest' | 'adversarial'): number | null => {
    const v = trustGroupMeans(r)
      .filter((m) => m.serverRound > 3)
      .map((m) => m[side])
      .filter((x): x is number => x !== null);
    return v.length === 0 ? null : v.reduce((a, x) => a + x, 0) / v.length;
  };
  return settings.fractions.flatMap((fraction) =>
    settings.attacks.flatMap((attack) => {
      const cell = runs.filter((r) => r.aggregator === trusted && r.attack === attack && r.fraction === fraction && r.trust.length > 0);
      if (cell.length === 0) return [];
      const pairs = cell.map((r) => [laterMean(r, 'honest'), laterMean(r, 'adversarial')] as const);
      const both = pairs.filter(([h, a]) => h !== null && a !== null);
      return [
        {
          attack,
          fraction,
          honest: pairs.flatMap(([h]) => (h === null ? [] : [h])),
          adversarial: pairs.flatMap(([, a]) => (a === null ? [] : [a])),
          below: both.filter(([h, a]) => a! < h!).length,
          compared: both.length,
        },
      ];
    }),
  );
}

/** A trust cell as a table row: attack, fraction, honest and adversarial mean ± std over runs (the mean alone for one run), "k of n". */
export function trustSeparationRow(cell: TrustSeparation): string[] {
  const show = (xs: readonly number[]): string => {
    if (xs.length === 0) return '—';
    const { mean, std } = meanStd(xs);
    return xs.length === 1 ? mean.toFixed(3) : `${mean.toFixed(3)} ± ${std.toFixed(3)}`;
  };
  return [cell.attack, `${Math.round(cell.fraction * 100)}%`, show(cell.honest), show(cell.adversarial), `${cell.below} of ${cell.compared}`];
}

/** Seeds of the full mode (`--seeds` left out). */
const FULL_SEED_COUNT = DEFAULT_SEEDS.full.split(',').length;

/** The server-only baseline's clean final accuracy (mean over seeds), formatted. */
function serverOnlyClean(runs: readonly RobustnessRun[]): string {
  const mean = cleanMeans(runs).get('server-only');
  return mean === undefined ? 'n/a' : `${(mean * 100).toFixed(1)}%`;
}

/**
 * Which aggregators' clean accuracy (mean over seeds) is above the server-only reference's and which
 * is not, in `order`; null without a server-only clean run.
 */
export function againstServerOnly(runs: readonly RobustnessRun[], order: readonly AggregatorId[]): string | null {
  const means = cleanMeans(runs);
  const reference = means.get('server-only');
  if (reference === undefined) return null;
  const listed = (above: boolean): string[] =>
    order.flatMap((a) => {
      const m = means.get(a);
      return a === 'server-only' || m === undefined || m > reference !== above ? [] : [`${AGGREGATOR_LABELS[a]} (${(m * 100).toFixed(1)}%)`];
    });
  const above = listed(true);
  const below = listed(false);
  return (
    `Clean accuracy (mean over seeds) above server only's ${(reference * 100).toFixed(1)}%: ${above.length === 0 ? 'none' : above.join(', ')}; not above it: ${below.length === 0 ? 'none' : below.join(', ')}.` +
    (below.length > above.length
      ? " Most aggregators' clean accuracy is not above the server's alone: in this setting the clients add little to what the server's root examples give, so retained accuracy measures how much an attack costs a weak model more than what the clients were worth."
      : '')
  );
}

/** The run cache's key of one cell. */
export function robustnessCacheKey(
  settings: RobustnessSettings,
  cell: { aggregator: AggregatorId; attack: AdversarialKind | null; fraction: number; seed: number },
): unknown {
  const { maxSeeds: _maxSeeds, aggregators: _aggregators, attacks: _attacks, minHeadlineAccuracy: _minHeadline, fractions, ...shape } = settings;
  // The aggregators and attacks lists do not change a run; the fractions do (Krum's f is set from the largest).
  // `engine` names the coordinator behaviour a stored run was made with: runs from before canonical-order
  // aggregation, seeded client identities and per-group Krum bounds are not reused. The dataset is part of the settings.
  // `probe` (only cells whose trust weighs a probe signal; see probeKey) names the server probe's outputs it read.
  const task = robustnessTask(cell.aggregator, settings, cell.seed);
  return {
    section: 'robustness',
    engine: ROBUSTNESS_ENGINE,
    ...probeKey(task),
    ...dampingKey(task),
    settings: { ...shape, fractions },
    cell: { aggregator: cell.aggregator, attack: cell.attack, fraction: cell.fraction, seed: cell.seed },
  };
}

/** Every run of the grid for `seeds`, clean runs first, in a fixed order. */
export function robustnessPlan(
  settings: RobustnessSettings,
  seeds: readonly number[],
): { aggregator: AggregatorId; attack: AdversarialKind | null; fraction: number; seed: number }[] {
  const plan: { aggregator: AggregatorId; attack: AdversarialKind | null; fraction: number; seed: number }[] = [];
  for (const seed of seeds) {
    for (const aggregator of settings.aggregators) plan.push({ aggregator, attack: null, fraction: 0, seed });
    // A reference row ignores the clients, so an attack cannot change it: it runs clean only.
    const competitors = settings.aggregators.filter((a) => !REFERENCE_AGGREGATORS.includes(a));
    for (const fraction of settings.fractions) {
      for (const attack of settings.attacks) for (const aggregator of competitors) plan.push({ aggregator, attack, fraction, seed });
    }
  }
  return plan;
}

/** The trust-aware aggregator whose trust the section plots and checks: the median-bounded configuration, else unbounded FedMM-X (null when neither runs). */
export function trustAggregator(settings: Pick<RobustnessSettings, 'aggregators'>): AggregatorId | null {
  return (['fedmm-x-bounded', 'fedmm-x'] as const).find((a) => settings.aggregators.includes(a)) ?? null;
}

/** Checks `--quick` asserts: every run finished, the clean runs learned, and trust separated sign-flip and scaling clients. */
export function robustnessChecks(runs: readonly RobustnessRun[], settings: RobustnessSettings): Check[] {
  const checks: Check[] = [];
  const unfinished = runs.filter((r) => r.finalAccuracy === null);
  checks.push({
    name: 'every robustness run finished all rounds',
    ok: unfinished.length === 0,
    detail:
      unfinished.length === 0
        ? `${runs.length} runs`
        : unfinished.map((r) => `${r.aggregator} ${r.attack ?? 'clean'} s${r.seed}: ${r.status}${r.error ? ` (${r.error})` : ''}`).join('; '),
  });
  // The headline compares FedAvg and trust-aware FedMM-X, which is only meaningful against clean runs well above
  // chance (10 classes). Other aggregators' clean accuracy is reported, not asserted: failing to learn
  // is a finding about them (see Multi-Krum), not a broken run.
  const trusted = trustAggregator(settings);
  const clean = runs.filter((r) => r.attack === null);
  const headline = clean.filter((r) => r.aggregator === 'fedavg' || r.aggregator === trusted);
  const weak = headline.filter((r) => r.finalAccuracy === null || r.finalAccuracy < settings.minHeadlineAccuracy);
  checks.push({
    name: `clean FedAvg and ${trusted === null ? 'FedMM-X' : AGGREGATOR_LABELS[trusted]} runs reach ≥ ${Math.round(settings.minHeadlineAccuracy * 100)}% test accuracy`,
    ok: headline.length > 0 && weak.length === 0,
    detail: clean.map((r) => `${r.aggregator} s${r.seed}: ${r.finalAccuracy === null ? 'n/a' : (r.finalAccuracy * 100).toFixed(1)}`).join(', '),
  });
  for (const attack of ['sign-flip', 'scaling'] as const) {
    if (!settings.attacks.includes(attack) || trusted === null) continue;
    for (const r of runs.filter((x) => x.aggregator === trusted && x.attack === attack)) {
      const result = adversarialTrustBelowHonest(r, 3);
      checks.push({
        name: `trust of ${attack} clients below honest mean after round 3 (${Math.round(r.fraction * 100)}%, seed ${r.seed})`,
        ok: result.ok,
        detail: result.detail,
      });
    }
  }
  return checks;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(0)} s`;
}

/** Runs the robustness grid (reduced under `ctx.quick`) and returns its report section. */
export async function runRobustness(ctx: ExperimentContext): Promise<SectionResult> {
  const started = Date.now();
  const settings = ctx.quick ? QUICK_ROBUSTNESS : FULL_ROBUSTNESS;
  if (ctx.seeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'runRobustness: at least one seed is needed');
  const seeds = settings.maxSeeds === null ? [...ctx.seeds] : ctx.seeds.slice(0, settings.maxSeeds);
  const plan = robustnessPlan(settings, seeds);
  const runs: RobustnessRun[] = [];
  let reused = 0;
  let reusedMs = 0;
  let skipped = 0;
  for (const [i, cell] of plan.entries()) {
    const key = robustnessCacheKey(settings, cell);
    const stored = ctx.cache?.get<RobustnessRun>(CACHE_PREFIX, key) ?? null;
    // Another shard's cell: left to it (the report of this invocation then lacks the cell).
    if (stored === null && belongsToOtherShard(ctx.shard, i)) {
      skipped += 1;
      continue;
    }
    const run = stored ?? (await runOne(settings, cell.aggregator, cell.attack, cell.fraction, cell.seed));
    // Only finished runs are kept: a run that failed is tried again next time.
    if (stored === null && run.finalAccuracy !== null) ctx.cache?.put(CACHE_PREFIX, key, run);
    if (stored !== null) {
      reused += 1;
      reusedMs += run.durationMs;
    }
    runs.push(run);
    const label = cell.attack === null ? 'clean' : `${cell.attack} ${Math.round(cell.fraction * 100)}%`;
    ctx.log(
      `robustness ${i + 1}/${plan.length}: ${cell.aggregator}, ${label}, seed ${cell.seed}: ${run.finalAccuracy === null ? run.status : `accuracy ${run.finalAccuracy.toFixed(3)}`} (${stored === null ? '' : 'stored run, '}${seconds(run.durationMs)}, CPU ${seconds(run.cpuMs)})`,
    );
  }

  const figures: Figure[] = [{ file: 'robustness-retained.svg', svg: retainedBarChart(runs, settings) }];
  const trusted = trustAggregator(settings);
  const trustRuns = settings.attacks.flatMap((attack) => {
    const r = runs.find(
      (x) => x.aggregator === trusted && x.attack === attack && x.fraction === settings.fractions[0] && x.seed === seeds[0] && x.trust.length > 0,
    );
    return r ? [r] : [];
  });
  for (const r of trustRuns) {
    figures.push({
      file: `robustness-trust-${r.attack}.svg`,
      svg: trustFigure(r, `Trust T_k per client, ${AGGREGATOR_LABELS[r.aggregator]}, ${r.attack} at ${Math.round(r.fraction * 100)}% (seed ${r.seed})`),
    });
  }

  const checks = robustnessChecks(runs, settings);
  if (skipped > 0)
    checks.push({ name: 'the grid is complete', ok: false, detail: `${skipped} of ${plan.length} cells belong to other shards and have no stored run yet` });
  // Runs read from the cache count with the time they took when they ran.
  const durationMs = Date.now() - started + reusedMs;
  const markdown = robustnessMarkdown(runs, settings, seeds, durationMs, figures, reused);
  const tasks = Object.fromEntries(settings.aggregators.map((a) => [a, robustnessTask(a, settings, seeds[0]!)]));
  return {
    id: 'robustness',
    title: 'Robustness to adversarial clients and trust over rounds (FedMM-X §6.3, Figure 1)',
    markdown,
    figures,
    raw: { settings, seeds, tasks, clientArgs: robustnessClientArgs(settings, seeds[0]!, settings.attacks[0] ?? null, settings.fractions[0] ?? 0), runs },
    checks,
    durationMs,
  };
}

/** The section's Markdown: settings, the two tables, the headline, where trust-aware does not win, trust separation, runtime. */
export function robustnessMarkdown(
  runs: readonly RobustnessRun[],
  settings: RobustnessSettings,
  seeds: readonly number[],
  durationMs: number,
  figures: readonly Figure[],
  reused = 0,
): string {
  const tables = robustnessTables(runs, settings);
  const trusted = trustAggregator(settings);
  const summary = trusted === null ? { headline: [] } : robustnessSummary(runs, settings, trusted);
  const bounded = BOUNDED_TRUST_AGGREGATORS.filter((a) => settings.aggregators.includes(a));
  const ablations = settings.aggregators.filter((a) => a.endsWith('-only') && a.startsWith('fedmm-x'));
  const baselineLabels = settings.aggregators
    .filter((a) => BASELINE_AGGREGATORS.includes(a))
    .map((a) => AGGREGATOR_LABELS[a])
    .join(', ');
  const pct = (f: number): string => `${Math.round(f * 100)}%`;
  const serverOnlySentence = againstServerOnly(runs, settings.aggregators);
  const lines: string[] = [];
  lines.push(
    `Setting: ${settings.dataset} (image, caption, speech), ${settings.numClients} clients, all of them in every round, ${settings.rounds} rounds of ${settings.localEpochs} local epoch${settings.localEpochs === 1 ? '' : 's'}, ` +
      `≤ ${settings.maxExamples} training examples per client, Dirichlet α = ${settings.alpha} label skew, modality kinds ${settings.modalityKinds.replace(/,/g, ', ')}; ` +
      `test accuracy on ${settings.testExamples} test-split examples after the last round. Seeds: ${seeds.join(', ')}. ` +
      (settings.maxSeeds !== null || seeds.length >= FULL_SEED_COUNT
        ? ''
        : `These are ${seeds.length} of the full mode's ${FULL_SEED_COUNT} seeds, so every interval below is over ${seeds.length} seeds and wide; \`pnpm experiments --only robustness\` runs the others (each run it finishes is stored). `) +
      `For one seed the partition, the adversarial clients and the initial model are the same for every aggregator. ` +
      `Each run is bit-reproducible from its command: the coordinator aggregates in canonical (client-id) order, clients have identities derived from the seed, and every random choice derives from the seed, so the spread over seeds measures the seeds, not scheduling noise.`,
    '',
    `Attacks (packages/client/src/adversarial.ts): ${settings.attacks.join(', ')} at ${settings.fractions.map(pct).join(' and ')} of the clients. ` +
      `Aggregators: ${settings.aggregators.map((a) => `${AGGREGATOR_LABELS[a]} (\`${JSON.stringify(aggregatorStrategy(a, settings))}\`)`).join(', ')}. ` +
      (settings.aggregators.includes('multi-krum') ? `Per-group Multi-Krum's f is ${krumByzantine(settings)} (n > 2f + 2 caps it). ` : '') +
      (settings.aggregators.includes('multi-krum-select')
        ? `Multi-Krum selection's f is ${selectionByzantine(settings)} (the largest fraction's attackers), so it keeps n − f clients each round. `
        : '') +
      `FLTrust and FedMM-X use the coordinator's probe on the public split (${settings.probeExamples} examples), never the test split. No parameter was tuned.`,
    '',
    "**Accuracy retained** = final test accuracy under attack ÷ the same aggregator's clean final accuracy (same seed), in %" +
      (seeds.length > 1 ? ', mean ± std over seeds' : '') +
      `; — where the clean run stayed below ${MIN_CLEAN_ACCURACY * 100}% (twice chance), since a ratio to a model that learned nothing says nothing:`,
    '',
    tables.retained,
    ...summary.headline.map((h) => `- ${h}`),
    `- The paper reports 91.2% retained for FedMM-X vs 78.4% for FedAvg at 20% adversarial clients (its attacks are not specified).`,
    ...(settings.aggregators.includes('server-only')
      ? [
          `- Server only is a reference row, not a competitor: it applies FLTrust's root update (100 public-split examples) and ignores every client, so it keeps all of its clean accuracy (${serverOnlyClean(runs)}) under any attack by construction. An aggregator whose clean accuracy is not above it learned nothing from the clients that the server's own data did not give it.` +
            (serverOnlySentence === null ? '' : ` ${serverOnlySentence}`),
        ]
      : []),
    '',
    ...(bounded.length === 0
      ? []
      : [
          `Norm-bounded trust-aware aggregation against its design target (mean retained accuracy over attacks) and against the best baseline (${baselineLabels}) of each cell, over the seeds both have:`,
          '',
          ...bounded.flatMap((a) => designTargetLines(designTarget(runs, settings, a))),
          '',
        ]),
    'How the aggregators differ, which the table should be read against: unbounded FedMM-X is FedAvg weighted by T_k, so a client it distrusts keeps a smaller but non-zero share and nothing bounds the norm of its update; ' +
      "the norm-bounded configurations clip every update, per modality group, to the round's median norm or to the norm of the server's root update before weighting, so a client moves the model by at most its weight share times that bound; " +
      'the root-referenced one also measures agreement against the root update instead of the median of the round, which a majority of colluding attackers would own; ' +
      "median and trimmed mean drop extreme values per coordinate; Multi-Krum selection keeps the n − f clients closest to their neighbours over the modality groups each sent; FLTrust weights each update by its ReLU-cosine to an update the server trains on its own root data and rescales it to that update's norm, " +
      "so it bounds the magnitude of every update (at the price of trusting the root data, 100 public-split examples here). Attacks that change an update's magnitude (scaling, Gaussian noise) test exactly that bound.",
    ...(ablations.length === 0
      ? []
      : [
          '',
          `Trust-signal ablations (${ablations.map((a) => AGGREGATOR_LABELS[a]).join('; ')}): the median-bounded configuration with one family of signals each — agreement alone (with its gate), the probe signals alone (accuracy and loss improvement of the candidate model on the probe set, no agreement gate), explanation consistency and calibration alone (no gate). Their rows against the full signal set show which signals do the work.`,
        ]),
    '',
    'Final test accuracy (%), clean and under attack:',
    '',
    tables.accuracy,
  );
  if (settings.aggregators.includes('multi-krum-select')) {
    lines.push(
      "Multi-Krum selection scores each client in every modality group it sent (Krum's summed squared distance to its nearest fellow senders, divided by the group's median score), averages those scores over its groups and keeps the n − f best clients; " +
        'each group is then the mean over the kept clients that sent it. A small group cannot shrink f to 0 and keep everybody, as per-group Krum does.',
      '',
    );
  }
  if (settings.aggregators.includes('multi-krum')) {
    lines.push(
      `Per-group Multi-Krum (like every fl-core strategy) aggregates each parameter group on its own; a modality's adapters are sent only by the clients holding that modality, so groups have different numbers of senders n_g. ` +
        `Each group uses f_g = min(f, ⌊(n_g − 3)/2⌋) with f = ${krumByzantine(settings)}, and a group of at most two senders takes their mean: every group learns, ` +
        'but a group with few senders tolerates fewer Byzantine clients than f.',
      '',
    );
  }
  const bar = figures.find((f) => f.file === 'robustness-retained.svg');
  if (bar) lines.push(`![Retained accuracy per aggregator](${bar.file})`, '');
  const trustCells = trustSeparations(runs, settings, trusted);
  if (trustCells.length > 0) {
    lines.push(
      `Trust T_k of ${trusted === null ? 'FedMM-X' : AGGREGATOR_LABELS[trusted]} (FedMM-X Figure 1), averaged over rounds after round 3 in each run` +
        (seeds.length > 1 ? ', then mean ± std over seeds' : '') +
        '; the last column counts the runs in which the adversarial clients were trusted less than the honest ones:',
      '',
      markdownTable(['attack', 'fraction', 'honest mean T_k', 'adversarial mean T_k', 'adversarial below honest'], trustCells.map(trustSeparationRow)),
    );
    // Cells where trust did not single the attackers out in most runs.
    const evaded = trustCells.filter((c) => c.below * 2 <= c.compared);
    if (evaded.length > 0)
      lines.push(
        `Trust did not rank the adversarial clients below the honest ones in most runs of: ${evaded.map((c) => `${c.attack} ${Math.round(c.fraction * 100)}% (${c.below} of ${c.compared})`).join(', ')}. ` +
          'Attacks built to stay inside the honest spread are meant to pass such a score; the retained-accuracy table shows what they cost.',
        '',
      );
    for (const f of figures.filter((x) => x.file.startsWith('robustness-trust-'))) lines.push(`![${f.file.replace(/\.svg$/, '')}](${f.file})`, '');
  }
  const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, v) => a + v, 0) / xs.length);
  const wallPerRun = mean(runs.map((r) => r.durationMs));
  const cpuPerRun = mean(runs.map((r) => r.cpuMs));
  const cpuTotal = runs.reduce((a, r) => a + r.cpuMs, 0);
  const clientRoundExamples = (s: RobustnessSettings): number => s.numClients * s.rounds * s.maxExamples;
  const fullRuns = robustnessPlan(FULL_ROBUSTNESS, [0]).length;
  // The clients and the coordinator train and aggregate on one thread, so the CPU time of this process is a load-independent cost;
  // the evaluator child process (test and probe evaluation) is not in it.
  const estimate = (fullRuns * cpuPerRun * clientRoundExamples(FULL_ROBUSTNESS)) / clientRoundExamples(settings);
  lines.push(
    (reused > 0
      ? `Runtime: the ${runs.length} runs took ${(durationMs / 60_000).toFixed(1)} min of wall-clock time added up (${seconds(wallPerRun)} per run; ${reused} of them were read from raw/runs/, stored by earlier invocations, some run side by side with \`--shard\` on a shared machine, so per-run wall times are longer than alone), `
      : `Runtime: ${(durationMs / 60_000).toFixed(1)} min wall-clock for ${runs.length} runs (${seconds(wallPerRun)} per run), `) +
      `${(cpuTotal / 60_000).toFixed(1)} min of CPU time in the process running the clients and the coordinator (${seconds(cpuPerRun)} per run; the evaluator process that measures test accuracy and probes candidates comes on top)` +
      (settings === FULL_ROBUSTNESS
        ? '.'
        : `. The full grid (${fullRuns} runs per seed, ${FULL_ROBUSTNESS.numClients} clients × ${FULL_ROBUSTNESS.rounds} rounds × ${FULL_ROBUSTNESS.maxExamples} examples) is estimated at ` +
          `${(estimate / 60_000).toFixed(0)} min of such CPU time per seed (runs × CPU per run × ratio of clients·rounds·examples), an overestimate because the start-up cost of a run does not scale.`),
    '',
    `What differs from the paper: ${settings.dataset === 'digits' ? 'spoken & written digits' : `the built-in ${settings.dataset} dataset`} with small frozen pretrained encoders and LoRA adapters instead of VQA/MSCOCO/AVQA with CLIP-scale models; ` +
      `${settings.numClients} clients and ${settings.rounds} rounds; the paper does not say which attacks it used, ours are the ${settings.attacks.length} above with strengths of our choosing (` +
      settings.attacks.map((a) => `${a}: ${ATTACK_STRENGTHS[a]}`).join('; ') +
      '); ' +
      'trust here is scored from what the coordinator measures itself (update agreement, probe accuracy, loss, calibration, explanation consistency), never from what clients report.',
  );
  return `${lines.join('\n')}\n`;
}
