/**
 * Sybil section: one attacker with the task's public join link opens many identities beside a few
 * honest volunteers (Douceur 2002, "The Sybil Attack"), against each of the coordinator's defences
 * on its own and all of them together (the task file's default `admission`).
 *
 * Every run is a real federated run through the coordinator (`runSimulation`): the honest
 * volunteers are headless clients that train; the attacker is a script of protocol clients that
 * asks for identities through the real handshake (proof of work solved, per-address and per-task
 * quotas, invitation links) and then, in every round it is invited to, skips training and uploads
 * the same colluding update at once (see {@link colludingDelta}). The honest volunteers were there first (established
 * identities); the attacker's identities arrive after `attackAfterRound` rounds, between two rounds.
 *
 * Every finished run is stored in the run cache (see runCache.ts) under everything that defines it,
 * so an interrupted full grid resumes where it stopped; `--shard i/n` splits the missing runs.
 */
import { DEFAULT_ADMISSION } from '@chorus/coordinator';
import type { Coordinator, TaskConfig } from '@chorus/coordinator';
import { runSimulation } from '@chorus/coordinator/simulate';
import { ConnectRefused, FakeClient, globalOf } from '@chorus/coordinator/testing';
import { createRng, encodeUpdate, gaussian, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { ExperimentsError } from './errors.js';
import { ROBUSTNESS_ENGINE } from './robustness.js';
import { cachedCell, dampingKey, probeKey, settingsKey } from './runCache.js';
import type { Check, ExperimentContext, SectionResult } from './section.js';
import { formatMeanStd, markdownTable, pairedDifference, pairedReading } from './stats.js';
import { barChart } from './svg.js';
import { experimentTask } from './tasks.js';

/**
 * The defences a run turns on (`all-similarity`: the task file's default admission, similarity
 * damping included; `all`: the same without damping, the default before damping was one).
 */
export const SYBIL_DEFENCES = ['none', 'pow-rate', 'invitations', 'fair-slots', 'probation', 'similarity', 'all', 'all-similarity'] as const;
/** One of {@link SYBIL_DEFENCES}. */
export type SybilDefence = (typeof SYBIL_DEFENCES)[number];

/**
 * The runs without an attacker: `clean` (the default admission without similarity damping), the
 * reference of every seed, and `clean-similarity` (the default admission, damping included), which
 * measures what damping costs an honest federation; the grid runs it whenever it runs a row with damping.
 */
export type SybilControl = 'clean' | 'clean-similarity';
/** What one run of the grid is: a defence against the attacker, or a run without one. */
export type SybilCellKind = SybilDefence | SybilControl;

/** Whether `kind` is a run without an attacker. */
export function isControl(kind: SybilCellKind): kind is SybilControl {
  return kind === 'clean' || kind === 'clean-similarity';
}

/** Everything that defines the section's runs. */
export interface SybilSettings {
  /** Dataset of the task and the clients (e.g. `digits`, or `fashion-mm` once built). */
  readonly dataset: string;
  readonly numHonest: number;
  /** Identities the attacker tries to open. */
  readonly numSybils: number;
  readonly rounds: number;
  /** The attacker's identities arrive once this many rounds are complete. */
  readonly attackAfterRound: number;
  readonly clientsPerRound: number;
  readonly overSelection: number;
  /** Training examples per honest volunteer (a seeded subset of its partition); the attacker claims as many. */
  readonly maxExamples: number;
  /** Dirichlet α of the honest volunteers' label skew. */
  readonly alpha: number;
  /** The honest volunteers' data drawn IID instead (`alpha` unused); absent: Dirichlet. */
  readonly iid?: true;
  readonly testExamples: number;
  readonly probeExamples: number;
  /** σ of the colluding update's Gaussian coordinates (see {@link colludingDelta}). */
  readonly attackSigma: number;
  /** Identities the attacker's one invitation link admits (the `invitations` run). */
  readonly invitationQuota: number;
  /** Source addresses the attacker connects from (each volunteer has its own). */
  readonly attackerAddresses: number;
  readonly defences: readonly SybilDefence[];
  /**
   * Defences also run with IID volunteers, beside the two clean controls (similarity damping is
   * known to damp honest clients whose updates agree, as IID clients' do); empty or absent: none.
   */
  readonly iidDefences?: readonly SybilDefence[];
}

/** The whole grid: every defence alone and all together, 8 rounds, the attacker arriving after the second, every seed. */
export const FULL_SYBIL: SybilSettings = {
  dataset: 'digits',
  numHonest: 6,
  numSybils: 20,
  rounds: 8,
  attackAfterRound: 2,
  clientsPerRound: 6,
  overSelection: 0.5,
  maxExamples: 120,
  alpha: 0.5,
  testExamples: 256,
  probeExamples: 64,
  attackSigma: 0.3,
  invitationQuota: 1,
  attackerAddresses: 1,
  defences: SYBIL_DEFENCES,
  iidDefences: ['all', 'all-similarity'],
};

/**
 * `--quick` (CI, about 2 min on 2 cores): no defences against the default, beside the two clean
 * runs, one seed, 6 rounds with the attacker arriving after the second; a smoke test of the path,
 * not evidence. The single defences run in the full grid.
 */
export const QUICK_SYBIL: SybilSettings = {
  ...FULL_SYBIL,
  rounds: 6,
  maxExamples: 80,
  testExamples: 100,
  probeExamples: 32,
  defences: ['none', 'all-similarity'],
  iidDefences: [],
};

/** The IID companion of `settings`' grid: its `iidDefences` with IID volunteers, or null when it has none. */
export function iidGrid(settings: SybilSettings): SybilSettings | null {
  const defences = settings.iidDefences ?? [];
  if (defences.length === 0 || settings.iid) return null;
  return { ...settings, iid: true, defences, iidDefences: [] };
}

/**
 * The task's `admission` section for `defence`: `none` turns every defence off; each single
 * defence adds one to `none` at its default setting; `all-similarity` is the defaults (an empty
 * section), `all` the defaults without similarity damping.
 */
export function sybilAdmission(defence: SybilCellKind): Record<string, unknown> {
  const none = {
    openLink: true,
    proofOfWorkBits: 0,
    newIdentitiesPerAddress: null,
    newIdentitiesPerTask: null,
    slots: 'arrival',
    probationRounds: 0,
    similarityDamping: false,
  };
  switch (defence) {
    case 'none':
      return none;
    case 'pow-rate':
      return {
        ...none,
        proofOfWorkBits: DEFAULT_ADMISSION.proofOfWorkBits,
        newIdentitiesPerAddress: DEFAULT_ADMISSION.newIdentitiesPerAddress,
        newIdentitiesPerTask: DEFAULT_ADMISSION.newIdentitiesPerTask,
      };
    case 'invitations':
      return { ...none, openLink: false };
    case 'fair-slots':
      return { ...none, slots: 'sampling-order' };
    case 'probation':
      return { ...none, probationRounds: DEFAULT_ADMISSION.probationRounds };
    case 'similarity':
      return { ...none, similarityDamping: true };
    case 'all-similarity':
    case 'clean-similarity':
      return {};
    case 'all':
    case 'clean':
      return { similarityDamping: false };
    default:
      throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `sybilAdmission: unknown defence ${JSON.stringify(defence)}`);
  }
}

/** FedMM-X trust weighting with every update clipped per group to the round's median norm (the norm-bounded variant). */
export const SYBIL_STRATEGY = { name: 'fedmm-x', inner: { name: 'clip', maxNorm: 'median', perGroup: true, inner: { name: 'fedavg' } }, historyDecay: 0.5 };

/** The validated task of one run. */
export function sybilTask(defence: SybilCellKind, settings: SybilSettings, seed: number): TaskConfig {
  const admission = sybilAdmission(defence);
  return experimentTask(`sybil-${defence}-s${seed}`, {
    dataset: { name: settings.dataset, modalities: ['image', 'text', 'audio'] },
    strategy: SYBIL_STRATEGY,
    rounds: settings.rounds,
    clientsPerRound: settings.clientsPerRound,
    overSelection: settings.overSelection,
    minClients: Math.min(settings.clientsPerRound, settings.numHonest),
    waitingRoomMs: 0,
    maxRoundAttempts: 6,
    evaluation: { probeExamples: settings.probeExamples, testExamples: settings.testExamples },
    seed,
    admission,
  });
}

/** The honest volunteers' flags. */
export function sybilClientArgs(settings: SybilSettings, seed: number): string[] {
  const partition = settings.iid ? ['--iid'] : ['--alpha', String(settings.alpha)];
  return ['--max-examples', String(settings.maxExamples), '--seed', String(seed), ...partition, '--eval-examples', '0'];
}

/**
 * The colluding update of a round: one seeded Gaussian draw, N(0, σ²) per coordinate, the same for
 * every identity of the attacker (so the round's median is its own update when it holds most
 * slots). It needs no training and no knowledge of the honest updates.
 */
export function colludingDelta(global: readonly Tensor[], attackSeed: number, serverRound: number, sigma: number): Tensor[] {
  const rng = createRng((Math.imul(attackSeed >>> 0, 0x9e3779b1) ^ Math.imul(serverRound >>> 0, 0x85ebca77)) >>> 0);
  return global.map((t) => {
    const out = new Float32Array(t.values.length);
    for (let j = 0; j < out.length; j++) out[j] = sigma * gaussian(rng);
    return tensor(t.name, [...t.shape], out);
  });
}

/** What the attacker achieved in one run. */
export interface AttackerOutcome {
  readonly attempted: number;
  readonly admitted: number;
  /** Refusal codes of the identities it did not get, with counts. */
  readonly refusals: Readonly<Record<string, number>>;
  readonly sybilIds: readonly string[];
  /** Wall time its hellos took, proofs of work included, in ms. */
  readonly proofMs: number;
  readonly uploads: number;
}

/**
 * The attacker: waits until `attackAfterRound` rounds are complete, holds the task between two
 * rounds (pause, as a coordinator between rounds would look to a newcomer), opens up to
 * `numSybils` identities with its token, lets the task go on, and answers every round start at once
 * with the colluding update. Resolves when the task has ended.
 */
async function runAttacker(coordinator: Coordinator, task: TaskConfig, settings: SybilSettings, outcome: { value: AttackerOutcome | null }): Promise<void> {
  const engine = coordinator.engines.get(task.id)!;
  const terminal = (): boolean => ['finished', 'failed', 'stopped'].includes(engine.snapshot().status);
  // Hold the task once round attackAfterRound opens, so the identities arrive between two rounds whatever the machine's speed.
  while (!terminal()) {
    const snap = engine.snapshot();
    if ((snap.openRound?.serverRound ?? 0) >= settings.attackAfterRound || snap.completedRounds >= settings.attackAfterRound) break;
    await sleep(20);
  }
  if (terminal()) return;
  engine.control('pause', 'sybil experiment: the attacker arrives between rounds');
  while (engine.snapshot().openRound !== null && !terminal()) await sleep(20);

  let token = coordinator.joinTokens.get(task.id)!;
  if (!task.admission.openLink) {
    // One invitation link, as one volunteer among many would receive.
    const res = await fetch(`${coordinator.url}/api/tasks/${task.id}/invitations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${coordinator.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ quota: settings.invitationQuota, label: 'attacker' }),
    });
    token = ((await res.json()) as { token: string }).token;
  }
  const sybils: FakeClient[] = [];
  const refusals: Record<string, number> = {};
  let proofMs = 0;
  for (let i = 0; i < settings.numSybils; i++) {
    const headers = { 'x-forwarded-for': `198.51.100.${(i % settings.attackerAddresses) + 1}` };
    let client: FakeClient;
    try {
      client = await FakeClient.connect(coordinator.url, { taskId: task.id, token }, headers);
    } catch (err) {
      const code = err instanceof ConnectRefused ? (err.data?.code ?? 'NO_ANSWER') : 'ERROR';
      refusals[code] = (refusals[code] ?? 0) + 1;
      continue;
    }
    const started = performance.now();
    const res = await client.hello({ backend: 'cpu', modalities: ['image', 'text', 'audio'], numExamples: settings.maxExamples });
    proofMs += performance.now() - started;
    if (res.ok) sybils.push(client);
    else {
      refusals[res.error.code] = (refusals[res.error.code] ?? 0) + 1;
      client.close();
    }
  }

  let uploads = 0;
  const pending: Promise<unknown>[] = [];
  for (const client of sybils) {
    client.socket.on('roundStart', () => {
      pending.push(
        client.roundStarts
          .next(1000, 'round start')
          .then(async (round) => {
            const delta = colludingDelta(globalOf(round), task.seed, round.serverRound, settings.attackSigma);
            const bytes = encodeUpdate({
              kind: 'delta',
              taskId: task.id,
              round: round.serverRound,
              clientId: client.clientId!,
              encoding: 'fp32',
              tensors: delta,
            });
            const ack = await client.submitBytes(round, bytes, { numExamples: settings.maxExamples });
            if (ack.ok) uploads++;
          })
          .catch(() => {
            // No answer in time (a loaded machine): the upload simply did not count.
          }),
      );
    });
  }
  outcome.value = { attempted: settings.numSybils, admitted: sybils.length, refusals, sybilIds: sybils.map((c) => c.clientId!), proofMs, uploads: 0 };
  engine.control('resume', 'sybil experiment: the attacker is in');
  while (!terminal()) await sleep(50);
  await Promise.allSettled(pending);
  for (const c of sybils) c.close();
  outcome.value = { ...outcome.value, uploads };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One run's figures. */
export interface SybilRun {
  readonly defence: SybilCellKind;
  readonly seed: number;
  readonly status: string;
  readonly error?: string;
  readonly completedRounds: number;
  /**
   * Test accuracy of the model the task ended with: after the last round when it finished, or,
   * when it stalled, the last model a round committed. Null when the run broke.
   */
  readonly finalAccuracy: number | null;
  readonly accuracyByRound: readonly (number | null)[];
  readonly attacker: AttackerOutcome | null;
  /** Updates aggregated in the rounds after the attacker arrived, and how many of them were the attacker's. */
  readonly aggregatedAfterArrival: number;
  readonly sybilAggregated: number;
  readonly durationMs: number;
}

/** The attacker's share of aggregated updates after it arrived (null: nothing aggregated). */
export function sybilShare(run: Pick<SybilRun, 'aggregatedAfterArrival' | 'sybilAggregated'>): number | null {
  return run.aggregatedAfterArrival === 0 ? null : run.sybilAggregated / run.aggregatedAfterArrival;
}

/** Honest volunteers' updates the rounds after the attacker's arrival aggregated. */
export function honestAggregated(run: Pick<SybilRun, 'aggregatedAfterArrival' | 'sybilAggregated'>): number {
  return run.aggregatedAfterArrival - run.sybilAggregated;
}

/** The slots of the rounds after the attacker's arrival: what a run aggregating every slot with an honest update reaches. */
export function slotsAfterArrival(settings: Pick<SybilSettings, 'clientsPerRound' | 'rounds' | 'attackAfterRound'>): number {
  return settings.clientsPerRound * (settings.rounds - settings.attackAfterRound);
}

const CACHE_PREFIX = 'sybil';

/** Bumped whenever a change to this section's code (the attacker, what a run counts) changes what a stored run would measure. */
export const SYBIL_ENGINE = 1;

/**
 * The run cache's key of one run: the settings (less the lists of defences, which change no run),
 * the validated task (the admission defaults included), the round engine's version and the cell.
 */
export function sybilCacheKey(settings: SybilSettings, defence: SybilCellKind, seed: number): unknown {
  const task = sybilTask(defence, settings, seed);
  return {
    section: 'sybil',
    settings: settingsKey(SYBIL_ENGINE, settings, ['defences', 'iidDefences']),
    roundEngine: ROBUSTNESS_ENGINE,
    task,
    ...probeKey(task),
    ...dampingKey(task),
    cell: { defence, seed },
  };
}

/** The runs of one seed: the clean run first, the damping control when a row damps, then the defences. */
export function sybilKinds(settings: SybilSettings): SybilCellKind[] {
  const damps = settings.defences.some((d) => d === 'similarity' || d === 'all-similarity');
  return ['clean', ...(damps ? (['clean-similarity'] as const) : []), ...settings.defences];
}

/** Every run of the grid, seed by seed (see {@link sybilKinds}). */
export function sybilPlan(settings: SybilSettings, seeds: readonly number[]): { defence: SybilCellKind; seed: number }[] {
  return seeds.flatMap((seed) => sybilKinds(settings).map((defence) => ({ defence, seed })));
}

/** One run of the grid (what the section stores); tests pass a fake. */
export type SybilRunner = (settings: SybilSettings, defence: SybilCellKind, seed: number) => Promise<SybilRun>;

/** Runs `defence` at `seed` through the coordinator with the attacker alongside. */
export async function runSybilCell(settings: SybilSettings, defence: SybilCellKind, seed: number): Promise<SybilRun> {
  const started = Date.now();
  const task = sybilTask(defence, settings, seed);
  const outcome: { value: AttackerOutcome | null } = { value: null };
  try {
    const report = await runSimulation({
      task,
      numClients: settings.numHonest,
      clientArgs: sybilClientArgs(settings, seed),
      testExamples: settings.testExamples,
      // Each honest volunteer is its own address; the attacker's come from X-Forwarded-For (see runAttacker).
      coordinator: { trustProxy: true },
      ...(isControl(defence) ? {} : { alongside: (c: Coordinator) => runAttacker(c, task, settings, outcome) }),
    });
    const sybilIds = new Set(outcome.value?.sybilIds ?? []);
    // The clients each round aggregated: the trust wrapper scores exactly those.
    const after = report.rounds.filter((r) => r.serverRound > settings.attackAfterRound);
    const aggregated = after.flatMap((r) => r.trust.map((t) => t.clientId));
    const finished = report.status === 'finished' && report.completedRounds === settings.rounds;
    // The engine gave up on a round after the attacker arrived: every attempt built no model (the
    // defences refused what was uploaded) or had too few uploads. The task keeps its last model.
    const stalled = report.status === 'failed' && !isControl(defence) && report.completedRounds >= settings.attackAfterRound;
    return {
      defence,
      seed,
      status: report.status,
      completedRounds: report.completedRounds,
      finalAccuracy: finished || stalled ? (report.rounds.at(-1)?.testAccuracy ?? null) : null,
      accuracyByRound: report.rounds.map((r) => r.testAccuracy),
      attacker: outcome.value,
      aggregatedAfterArrival: aggregated.length,
      sybilAggregated: aggregated.filter((id) => sybilIds.has(id)).length,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    return {
      defence,
      seed,
      status: 'error',
      error: (err as Error).message,
      completedRounds: 0,
      finalAccuracy: null,
      accuracyByRound: [],
      attacker: outcome.value,
      aggregatedAfterArrival: 0,
      sybilAggregated: 0,
      durationMs: Date.now() - started,
    };
  }
}

const DEFENCE_LABELS: Readonly<Record<SybilCellKind, string>> = {
  clean: 'clean (no attacker; defaults without similarity damping)',
  'clean-similarity': 'clean, the defaults (no attacker; similarity damping included)',
  none: 'none',
  'pow-rate': 'proof of work + identity rate limits',
  invitations: 'invitation links only',
  'fair-slots': 'slots by sampling order',
  probation: 'probation',
  similarity: 'similarity damping (FoolsGold)',
  all: 'all but similarity damping (the former default)',
  'all-similarity': 'all (the default, similarity damping included)',
};

/** The design target of the default configuration: share of the clean accuracy it keeps. */
export const SYBIL_TARGET_RETAINED = 0.9;

/** Whether `run` ended before its last round because the engine gave up on a round after the attacker arrived. */
export function stalledRun(run: Pick<SybilRun, 'status' | 'finalAccuracy'>): boolean {
  return run.status === 'failed' && run.finalAccuracy !== null;
}

/**
 * Sanity checks: every run ran to its end (all rounds, or a stall once the attacker was in), and
 * each admission defence capped the identities it is meant to. The accuracy design target is a
 * finding, reported in the Markdown, not a check.
 */
export function sybilChecks(runs: readonly SybilRun[], settings: SybilSettings): Check[] {
  const checks: Check[] = [];
  const unfinished = runs.filter((r) => r.finalAccuracy === null);
  checks.push({
    name: 'every sybil run ended: all rounds, or a stall after the attacker arrived',
    ok: unfinished.length === 0,
    detail:
      unfinished.length === 0
        ? `${runs.length} runs`
        : unfinished.map((r) => `${r.defence} s${r.seed}: ${r.status}${r.error ? ` (${r.error})` : ''}`).join('; '),
  });
  const admitted = (d: SybilDefence): number[] => runs.filter((r) => r.defence === d).map((r) => r.attacker?.admitted ?? -1);
  const perAddress = DEFAULT_ADMISSION.newIdentitiesPerAddress.burst * settings.attackerAddresses;
  const caps: [SybilDefence, number, string][] = [
    ['none', settings.numSybils, 'without defences every identity is admitted (the attack is real)'],
    ['pow-rate', perAddress, `the per-address quota admits at most ${perAddress}`],
    ['invitations', settings.invitationQuota, `one invitation admits at most its quota (${settings.invitationQuota})`],
    ['all-similarity', perAddress, `the default admits at most ${perAddress} from the attacker's address(es)`],
    ['all', perAddress, `the defaults without similarity damping admit at most ${perAddress} from the attacker's address(es)`],
  ];
  for (const [defence, cap, name] of caps) {
    const got = admitted(defence);
    if (got.length === 0) continue;
    const ok = defence === 'none' ? got.every((n) => n === cap) : got.every((n) => n >= 0 && n <= cap);
    checks.push({ name: `sybil: ${name}`, ok, detail: `admitted ${got.join(', ')} of ${settings.numSybils}` });
  }
  return checks;
}

/** Final accuracy of `run` ÷ the clean run's of the same seed (null when either is missing). */
export function retainedOf(runs: readonly SybilRun[], run: SybilRun): number | null {
  const clean = runs.find((r) => r.defence === 'clean' && r.seed === run.seed)?.finalAccuracy ?? null;
  return clean === null || clean <= 0 || run.finalAccuracy === null ? null : run.finalAccuracy / clean;
}

/**
 * The section's Markdown, generated from the runs. `stored`: the runs read from the run cache,
 * whose times were measured by the invocation that made them (marked †).
 */
export function sybilMarkdown(
  runs: readonly SybilRun[],
  settings: SybilSettings,
  seeds: readonly number[],
  durationMs: number,
  options: { readonly stored?: ReadonlySet<SybilRun> } = {},
): string {
  const stored = options.stored ?? new Set<SybilRun>();
  const dagger = (r: SybilRun): string => (stored.has(r) ? ' †' : '');
  const pct = (x: number | null): string => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
  const rows = runs.map((r) => {
    const a = r.attacker;
    const refused = a
      ? Object.entries(a.refusals)
          .map(([code, n]) => `${code} ×${n}`)
          .join(', ') || '—'
      : '—';
    return [
      DEFENCE_LABELS[r.defence],
      String(r.seed),
      a ? `${a.admitted} / ${a.attempted}` : '—',
      refused,
      a ? `${(a.proofMs / 1000).toFixed(2)} s${dagger(r)}` : '—',
      isControl(r.defence) ? '—' : `${pct(sybilShare(r))} (${r.sybilAggregated} / ${r.aggregatedAfterArrival})`,
      stalledRun(r) ? `${pct(r.finalAccuracy)} (stalled after round ${r.completedRounds})` : pct(r.finalAccuracy),
      r.defence === 'clean' ? '100%' : pct(retainedOf(runs, r)),
    ];
  });
  // The default first, then the defaults without damping, seed by seed.
  const combined: readonly SybilCellKind[] = ['all-similarity', 'all'];
  const verdicts = runs
    .filter((r) => combined.includes(r.defence))
    .sort((a, b) => a.seed - b.seed || combined.indexOf(a.defence) - combined.indexOf(b.defence))
    .map((r) => {
      const retained = retainedOf(runs, r);
      const met = retained !== null && retained >= SYBIL_TARGET_RETAINED;
      const what =
        r.defence === 'all-similarity' ? 'the default configuration (similarity damping included) keeps' : 'the defaults without similarity damping keep';
      return `- Seed ${r.seed}: ${what} ${pct(retained)} of clean accuracy — design target (≥ ${SYBIL_TARGET_RETAINED * 100}%) ${met ? 'met' : '**not met**'}.`;
    });
  const failing = runs.filter((r) => !isControl(r.defence) && !combined.includes(r.defence) && (retainedOf(runs, r) ?? 0) < SYBIL_TARGET_RETAINED);
  const finite = (xs: readonly (number | null)[]): number[] => xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const attacked = settings.defences.filter((d) => runs.some((r) => r.defence === d));
  const summarised: SybilCellKind[] = [...(runs.some((r) => r.defence === 'clean-similarity') ? (['clean-similarity'] as const) : []), ...attacked];
  const overSeeds = summarised.map((d) => {
    const of = runs.filter((r) => r.defence === d);
    return [
      DEFENCE_LABELS[d],
      String(of.length),
      formatMeanStd(finite(of.map((r) => retainedOf(runs, r))), { scale: 100 }),
      isControl(d) ? '—' : formatMeanStd(finite(of.map((r) => sybilShare(r))), { scale: 100 }),
      formatMeanStd(of.map(honestAggregated)),
      String(of.filter(stalledRun).length),
    ];
  });
  const slots = slotsAfterArrival(settings);
  // Without an attacker every slot holds an honest update: one short of it is an honest volunteer damping left out.
  const dampedClean = runs.filter((r) => r.defence === 'clean-similarity');
  const runsOf = (n: number): string => (n === 1 ? 'the clean run' : `the ${n} clean runs`);
  const honestLeftOut = dampedClean.reduce((n, r) => n + (slots - honestAggregated(r)), 0);
  const cleanReading =
    dampedClean.length === 0
      ? []
      : [
          honestLeftOut === 0
            ? `Without an attacker, similarity damping left no honest volunteer out: ${runsOf(dampedClean.length)} with the defaults aggregated all ${slots} honest updates of the rounds after round ${settings.attackAfterRound}.`
            : `Without an attacker, similarity damping left an honest volunteer out ${honestLeftOut === 1 ? 'once' : `${honestLeftOut} times`} over ${runsOf(dampedClean.length)} with the defaults (of ${slots} honest updates each after round ${settings.attackAfterRound}).`,
          '',
        ];
  const accuracyOf = (d: SybilDefence) =>
    runs.filter((r) => r.defence === d && r.finalAccuracy !== null).map((r) => ({ seed: r.seed, value: r.finalAccuracy! }));
  const comparison =
    attacked.includes('all') && attacked.includes('all-similarity')
      ? pairedReading(DEFENCE_LABELS['all-similarity'], DEFENCE_LABELS.all, pairedDifference(accuracyOf('all-similarity'), accuracyOf('all')), { scale: 100 })
      : null;
  return [
    `Setting: ${settings.dataset} (image, caption, speech), ${settings.numHonest} honest volunteers (established identities, ${settings.iid ? 'IID partitions' : `Dirichlet α = ${settings.alpha}`}, ≤ ${settings.maxExamples} examples each) and one attacker who tries to open ${settings.numSybils} identities with the task's public join link (or, in the invitation run, with one invitation link of quota ${settings.invitationQuota}) from ${settings.attackerAddresses} address(es), arriving after round ${settings.attackAfterRound} of ${settings.rounds}. ` +
      `Rounds invite ${settings.clientsPerRound} × (1 + ${settings.overSelection}) clients and aggregate ${settings.clientsPerRound}. Strategy: \`${JSON.stringify(SYBIL_STRATEGY)}\` (FedMM-X trust weighting with the median norm bound). ` +
      `The attacker's identities skip training and answer every round start at once with the same update, a seeded Gaussian draw with σ = ${settings.attackSigma} per coordinate, claiming ${settings.maxExamples} examples. Seeds: ${seeds.join(', ')}.`,
    '',
    `Each row turns on one defence (the task file's \`admission\` section, \`${JSON.stringify(sybilAdmission('none'))}\` with one field at its default), or all of them (the defaults: \`${JSON.stringify(DEFAULT_ADMISSION)}\`). ` +
      '**Share of aggregated updates** counts the updates the rounds after the attacker arrived aggregated; **retained** is final test accuracy ÷ the clean run’s (same seed). ' +
      'A run **stalled** when the round engine gave up on a round after the attacker arrived (every attempt built no model, or had too few uploads): the task ends there, and its final accuracy is that of the last model a round committed. ' +
      'The row **clean, the defaults** has no attacker either: against the clean run, it is what similarity damping costs an honest federation.',
    '',
    markdownTable(
      [
        'defences',
        'seed',
        'identities admitted',
        'refusals',
        'attacker’s time opening identities (proof of work included)',
        'attacker’s share of aggregated updates',
        'final accuracy',
        'retained',
      ],
      rows,
    ),
    '',
    '**Over seeds** (mean ± sample std; a stalled run counts with the model it ended with):',
    '',
    markdownTable(
      ['defences', 'seeds', 'retained (%)', 'attacker’s share of aggregated updates (%)', `honest updates aggregated (of ${slots} slots)`, 'stalled runs'],
      overSeeds,
    ),
    'Honest updates aggregated counts, in the rounds after the attacker arrived, the slots that held an honest volunteer’s update. With an attacker the count does not say why an honest update was left out: a Sybil took its sampled place, or damping weighed it 0.',
    '',
    ...cleanReading,
    ...(comparison === null ? [] : [`Final accuracy, paired by seed: ${comparison}`, '']),
    ...verdicts,
    ...(failing.length > 0
      ? [
          '',
          'Where a single defence does not hold on its own (retained below the target):',
          ...failing.map((r) => `- ${DEFENCE_LABELS[r.defence]} (seed ${r.seed}): ${pct(retainedOf(runs, r))} retained, attacker share ${pct(sybilShare(r))}.`),
        ]
      : []),
    '',
    'Reading the rows: proof of work prices an identity in CPU time (here far below a second each, the same as a volunteer pays), so on its own it only slows a scripted attacker; the per-address quota is what caps the identities from one address, and an attacker with many addresses meets only the per-task quota. ' +
      'Slots by sampling order take away the speed advantage of skipping training, but an attacker holding most identities still holds most sampled places. Probation weighs newcomers less only while they are new, and only for weighted aggregation. Invitations bound identities by what the researcher hands out. ' +
      'Similarity damping (FoolsGold) leaves out identities whose summed updates copy one another’s, or that send the same update in one round, and stops inviting them; until then an identity alone in a round is an ordinary Byzantine client, left to trust weighting and the norm bound.',
    '',
    'Reproducibility: runs under the arrival rule (every row but “slots by sampling order” and the two “all” rows) depend on which uploads arrive first, so they are not bit-identical between machines; that dependence is what the sampling-order rule removes. ' +
      `Runtime: ${(durationMs / 1000).toFixed(0)} s.` +
      (stored.size === 0
        ? ''
        : ` ${stored.size} of the ${runs.length} runs (marked †) were read from raw/runs/, stored by earlier invocations (the full grid resumes where an interrupted one stopped): their times, the attacker's time opening identities and their share of the runtime, were measured then, under that invocation's load, not by this one.`),
  ].join('\n');
}

/** Bar chart per defence row (first seed): the attacker's share of aggregated updates and the accuracy retained, in %. */
export function sybilFigure(runs: readonly SybilRun[], seed: number): string {
  const rows = runs.filter((r) => r.seed === seed && !isControl(r.defence));
  const pct = (x: number | null): number | null => (x === null ? null : x * 100);
  return barChart({
    title: `Sybils: 20 identities tried beside 6 volunteers (seed ${seed})`,
    yLabel: '%',
    groups: rows.map((r) => DEFENCE_LABELS[r.defence]),
    series: [
      { name: 'attacker share of aggregated updates', values: rows.map((r) => pct(sybilShare(r))) },
      { name: 'accuracy retained vs clean', values: rows.map((r) => pct(retainedOf(runs, r))) },
    ],
    yMin: 0,
  });
}

/**
 * Runs the Sybil grid (reduced under `ctx.quick`) and returns its report section. Stored runs are
 * read back instead of run again; under `ctx.shard` a missing run of another shard is left to it.
 */
export async function runSybil(
  ctx: ExperimentContext,
  settings: SybilSettings = ctx.quick ? QUICK_SYBIL : FULL_SYBIL,
  runCell: SybilRunner = runSybilCell,
): Promise<SectionResult> {
  const started = Date.now();
  if (ctx.seeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'runSybil: at least one seed is needed');
  const seeds = ctx.quick ? ctx.seeds.slice(0, 1) : [...ctx.seeds];
  const iid = iidGrid(settings);
  const plan = [
    ...sybilPlan(settings, seeds).map((cell) => ({ ...cell, grid: settings })),
    ...(iid ? sybilPlan(iid, seeds).map((cell) => ({ ...cell, grid: iid })) : []),
  ];
  const runs: SybilRun[] = [];
  const iidRuns: SybilRun[] = [];
  const stored = new Set<SybilRun>();
  let storedMs = 0;
  let skipped = 0;
  for (const [i, { defence, seed, grid }] of plan.entries()) {
    const result = await cachedCell(ctx, i, {
      prefix: CACHE_PREFIX,
      key: sybilCacheKey(grid, defence, seed),
      compute: () => runCell(grid, defence, seed),
      // Only runs that ended are kept (finished, or stalled once the attacker was in): a run that broke is tried again next time.
      keep: (r) => r.finalAccuracy !== null,
    });
    if (result === null) {
      skipped += 1;
      continue;
    }
    const run = result.value;
    (grid === iid ? iidRuns : runs).push(run);
    if (result.stored) {
      stored.add(run);
      storedMs += run.durationMs;
    }
    ctx.log(
      `sybil ${grid === iid ? 'iid ' : ''}${defence} s${seed}: ${run.finalAccuracy === null ? run.status : `accuracy ${run.finalAccuracy.toFixed(3)}`}, admitted ${run.attacker?.admitted ?? 0}, share ${sybilShare(run)?.toFixed(2) ?? '—'} (${result.stored ? 'stored run, ' : ''}${(run.durationMs / 1000).toFixed(1)} s)`,
    );
  }
  // Runs read from the cache count with the time they took when they ran.
  const durationMs = Date.now() - started + storedMs;
  const checks = [...sybilChecks(runs, settings), ...(iid ? sybilChecks(iidRuns, iid).map((c) => ({ ...c, name: `${c.name} (IID volunteers)` })) : [])];
  if (skipped > 0)
    checks.push({
      name: 'the sybil grid is complete',
      ok: false,
      detail: `${skipped} of ${plan.length} runs belong to other shards and have no stored run yet`,
    });
  return {
    id: 'sybil',
    title: 'Sybils: one attacker, many identities, behind one open join link',
    markdown: [
      ...(ctx.quick ? ['**Quick mode**: a smoke test of the path (few rounds and examples, not every defence); the full mode is the evidence.', ''] : []),
      sybilMarkdown(runs, settings, seeds, durationMs, { stored: new Set(runs.filter((r) => stored.has(r))) }),
      '',
      '![Sybil defences](sybil-defences.svg)',
      ...(iid
        ? [
            '',
            '### With IID volunteers',
            '',
            'The same attack against the defaults with and without similarity damping, each honest volunteer holding an IID share of the data: honest updates then agree, which is where damping (FoolsGold) is known to mistake honest clients for copies of one another. The runtime above covers both grids.',
            '',
            sybilMarkdown(iidRuns, iid, seeds, durationMs, { stored: new Set(iidRuns.filter((r) => stored.has(r))) }),
          ]
        : []),
    ].join('\n'),
    figures: [{ file: 'sybil-defences.svg', svg: sybilFigure(runs, seeds[0]!) }],
    raw: {
      settings,
      seeds,
      tasks: Object.fromEntries(sybilKinds(settings).map((d) => [d, sybilTask(d, settings, seeds[0]!)])),
      clientArgs: sybilClientArgs(settings, seeds[0]!),
      runs,
      ...(iid ? { iid: { settings: iid, clientArgs: sybilClientArgs(iid, seeds[0]!), runs: iidRuns } } : {}),
    },
    checks,
    durationMs,
  };
}
