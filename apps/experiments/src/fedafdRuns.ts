/**
 * The runs behind the FedAFD section ("FedAFD: Multimodal Federated Learning via Adversarial Fusion
 * and Distillation", Tables 2–3): the grid (methods, partitions, learning rates), the task of each
 * run as the coordinator's schema checks it, the headless clients' flags, one run on the real
 * coordinator (`runSimulation`) reduced to the metrics the report reads, and the pure measures the
 * report computes from them (validation score, rounds to a target, FedAvg's bytes).
 */
import { parseTask } from '@chorus/coordinator';
import type { TaskConfig } from '@chorus/coordinator';
import { runSimulation } from '@chorus/coordinator/simulate';
import { ExperimentsError } from './errors.js';

/** How the training split is dealt: IID, or FedAFD's non-IID (Dirichlet α = 0.1 for classifiers, two label shards per retrieval client). */
export type FedAfdPartition = 'iid' | 'non-iid';

/** The server model of every run (the task's `representation.server`). */
export interface FedAfdServerSizes {
  readonly hiddenUnits: number;
  readonly imageFilters: readonly [number, number];
  readonly textFilters: number;
  readonly learningRate: number;
  readonly stepsPerRound: number;
}

/** The grid of the section. */
export interface FedAfdSettings {
  readonly dataset: 'digits';
  readonly numClients: number;
  readonly rounds: number;
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly maxExamplesPerClient: number;
  /** `--fedafd-kinds` of the headless clients: kinds, architectures and shares. */
  readonly kinds: string;
  /** D, the shared space. */
  readonly dim: number;
  /** B, public samples a round exchanges representations of (the same for every method). */
  readonly publicBatch: number;
  readonly server: FedAfdServerSizes;
  /** Test pairs and examples (the first of the test split) the server's R@1 and the clients' accuracy and R@1 are measured on. */
  readonly testExamples: number;
  /** The validation part of the test split (disjoint from the first `testExamples`): the clients' scores on it choose the learning rate. */
  readonly validation: { readonly start: number; readonly count: number };
  readonly partitions: readonly FedAfdPartition[];
  /** The learning-rate grid (the task's `learningRate`, which is the clients'). */
  readonly learningRates: readonly number[];
  /** Seeds of the tuning runs, disjoint from the evaluation seeds. */
  readonly tuningSeeds: readonly number[];
  /** Method ids that run (main methods first; ablations keep FedAFD's chosen learning rate). */
  readonly methods: readonly string[];
}

/** One method of the section. */
export interface FedAfdMethod {
  readonly id: string;
  readonly label: string;
  /** The task's `strategy` section. */
  readonly strategy: Readonly<Record<string, unknown>>;
  /** `representation.adversarialWeight` when the method sets it (the "w/o BAA" ablation: 0). */
  readonly adversarialWeight?: number;
  /** Ablations change one thing of FedAFD and run with FedAFD's chosen learning rate. */
  readonly ablation: boolean;
}

/** LOCAL, the baselines, FedAFD and its three ablations, in report order. */
export const FEDAFD_METHODS: readonly FedAfdMethod[] = [
  { id: 'local', label: 'LOCAL', strategy: { name: 'local' }, ablation: false },
  { id: 'fedmd', label: 'FedMD', strategy: { name: 'fedmd' }, ablation: false },
  { id: 'fedgems', label: 'FedGEMS', strategy: { name: 'fedgems' }, ablation: false },
  { id: 'fedet', label: 'FedET', strategy: { name: 'fedet' }, ablation: false },
  { id: 'fedmkd', label: 'FedMKD', strategy: { name: 'fedmkd' }, ablation: false },
  { id: 'fedafd', label: 'FedAFD', strategy: { name: 'fedafd' }, ablation: false },
  { id: 'no-baa', label: 'FedAFD w/o BAA', strategy: { name: 'fedafd' }, adversarialWeight: 0, ablation: true },
  { id: 'no-gff', label: 'FedAFD w/o GFF', strategy: { name: 'fedafd', fusion: false }, ablation: true },
  { id: 'no-sed', label: 'FedAFD w/o SED', strategy: { name: 'fedafd', sed: false }, ablation: true },
];

/** The method `id`; throws `EXPERIMENTS_BAD_INPUT` for an unknown one. */
export function fedAfdMethod(id: string): FedAfdMethod {
  const method = FEDAFD_METHODS.find((m) => m.id === id);
  if (method === undefined)
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `fedafd: unknown method '${id}' (known: ${FEDAFD_METHODS.map((m) => m.id).join(', ')})`);
  return method;
}

/** What a run is: a method, a partition, a seed and the learning rate; `evaluate` measures the server on the test pairs (evaluation runs) or not (tuning runs). */
export interface FedAfdCell {
  readonly method: string;
  readonly partition: FedAfdPartition;
  readonly seed: number;
  readonly learningRate: number;
  readonly evaluate: boolean;
}

/** The client mix of `--fedafd-kinds` as the task's `representation.clientKinds`. */
export function clientKindsOf(kinds: string): { kind: string; arch: string; share: number }[] {
  return kinds.split(',').map((entry) => {
    const match = /^([a-z-]+):([a-z0-9+-]+)=([0-9.]+)$/.exec(entry.trim());
    if (!match) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `fedafd: kinds entry '${entry}' must be kind:arch=share`);
    return { kind: match[1]!, arch: match[2]!, share: Number(match[3]) };
  });
}

/**
 * The task of `cell`, validated by the coordinator's schema (throws its coded error when refused):
 * every client every round, the same rounds, local epochs, batch and public batch for every method.
 */
export function fedAfdTask(settings: FedAfdSettings, cell: FedAfdCell): TaskConfig {
  const method = fedAfdMethod(cell.method);
  return parseTask(
    {
      id: `fedafd-${method.id}-${cell.partition}-s${cell.seed}${cell.evaluate ? '' : '-tune'}`,
      dataset: { name: settings.dataset, modalities: ['image', 'text'] },
      strategy: method.strategy,
      representation: {
        dim: settings.dim,
        publicBatch: settings.publicBatch,
        encoding: 'fp16',
        ...(method.adversarialWeight === undefined ? {} : { adversarialWeight: method.adversarialWeight }),
        server: { ...settings.server, imageFilters: [...settings.server.imageFilters] },
        clientKinds: clientKindsOf(settings.kinds),
      },
      evaluation: { testExamples: cell.evaluate ? settings.testExamples : 0 },
      rounds: settings.rounds,
      clientsPerRound: settings.numClients,
      minClients: settings.numClients,
      overSelection: 0,
      roundDeadlineMs: 600_000,
      waitingRoomMs: 1_000,
      localEpochs: settings.localEpochs,
      batchSize: settings.batchSize,
      learningRate: cell.learningRate,
      maxUpdateBytes: 4_194_304,
      seed: cell.seed,
      // As every experiment's task (tasks.ts): similarity damping off, as the stored runs were made.
      admission: { similarityDamping: false },
    },
    `experiment task fedafd-${method.id}`,
  );
}

/** The headless clients' flags of `cell`: kinds, partition, seed, and the held-out part they are scored on (test or validation). */
export function fedAfdClientArgs(settings: FedAfdSettings, cell: FedAfdCell): string[] {
  const range = cell.evaluate ? { start: 0, count: settings.testExamples } : settings.validation;
  return [
    '--fedafd-kinds',
    settings.kinds,
    ...(cell.partition === 'iid' ? ['--iid'] : []),
    '--max-examples',
    String(settings.maxExamplesPerClient),
    '--seed',
    String(cell.seed),
    '--eval-examples',
    String(range.count),
    '--fedafd-eval',
    `test:${range.start}:${range.count}`,
  ];
}

/** Metric names a run keeps per round: the server's recalls, the per-kind client scores and counts, bytes and acceptances. */
export const KEPT_METRIC =
  /^(server\.(i2tR1|t2iR1|rsum|testPairs)|kind\.[a-z+]+\.(accuracy|i2tR1|t2iR1|rsum|clients|evalExamples)|bytesIn|bytesOut|numAccepted)$/;

/** One finished run, reduced to what the report reads. */
export interface FedAfdRun extends FedAfdCell {
  readonly status: string;
  readonly completedRounds: number;
  /** Per round (round 1 first): the kept metrics ({@link KEPT_METRIC}). */
  readonly rounds: readonly Readonly<Record<string, number>>[];
  readonly durationMs: number;
}

/** Runs `cell` on the real coordinator with headless clients (in this process) and keeps its per-round metrics. */
export async function runFedAfdCell(settings: FedAfdSettings, cell: FedAfdCell): Promise<FedAfdRun> {
  const task = fedAfdTask(settings, cell);
  const report = await runSimulation({ task, numClients: settings.numClients, clientArgs: fedAfdClientArgs(settings, cell), testExamples: 0 });
  return {
    ...cell,
    status: report.status,
    completedRounds: report.completedRounds,
    rounds: report.rounds.map((r) => Object.fromEntries(Object.entries(r.metrics).filter(([name, v]) => KEPT_METRIC.test(name) && Number.isFinite(v)))),
    durationMs: report.durationMs,
  };
}

/** Client kinds by the modalities their uploads carry (the metrics' `kind.<modalities>` key). */
export const KIND_KEYS = {
  'image-classifier': 'image',
  'text-classifier': 'text',
  'image-text-retrieval': 'image+text',
  'audio-text-retrieval': 'audio+text',
} as const;

/**
 * The validation score of a round's metrics: the mean over the client kinds present of their score
 * in [0, 1] — a classifier kind's accuracy, a retrieval kind's mean R@1 of both directions / 100.
 * NaN when no kind reported a score.
 */
export function clientScore(metrics: Readonly<Record<string, number>>): number {
  const scores: number[] = [];
  for (const key of Object.values(KIND_KEYS)) {
    const accuracy = metrics[`kind.${key}.accuracy`];
    const i2t = metrics[`kind.${key}.i2tR1`];
    const t2i = metrics[`kind.${key}.t2iR1`];
    if (typeof accuracy === 'number') scores.push(accuracy);
    else if (typeof i2t === 'number' && typeof t2i === 'number') scores.push((i2t + t2i) / 200);
  }
  return scores.length === 0 ? Number.NaN : scores.reduce((s, v) => s + v, 0) / scores.length;
}

/** The first round (1-based) whose value reaches `target`, or null when none does (or the target is not finite). */
export function roundsToTarget(series: readonly (number | undefined)[], target: number): number | null {
  if (!Number.isFinite(target)) return null;
  const at = series.findIndex((v) => typeof v === 'number' && v >= target);
  return at < 0 ? null : at + 1;
}

/**
 * Bytes one round of weight-based FedAvg of the same client models would move: every client
 * downloads its kind's model and uploads as many values, so Σ_kind clients × parameters × 2 ×
 * `bytesPerValue`. Throws `EXPERIMENTS_BAD_INPUT` for a kind without a parameter count or a bad count.
 */
export function fedAvgBytesPerRound(
  clientsPerKind: Readonly<Record<string, number>>,
  parametersPerKind: Readonly<Record<string, number>>,
  bytesPerValue: number,
): number {
  if (!(Number.isFinite(bytesPerValue) && bytesPerValue > 0))
    throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `fedAvgBytesPerRound: bytesPerValue must be > 0, got ${bytesPerValue}`);
  let total = 0;
  for (const [kind, clients] of Object.entries(clientsPerKind)) {
    const parameters = parametersPerKind[kind];
    if (parameters === undefined) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `fedAvgBytesPerRound: no parameter count for kind '${kind}'`);
    if (!(Number.isInteger(clients) && clients >= 0 && Number.isInteger(parameters) && parameters >= 0))
      throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `fedAvgBytesPerRound: kind '${kind}' has ${clients} clients of ${parameters} parameters`);
    total += clients * parameters * 2 * bytesPerValue;
  }
  return total;
}

/** The client count of each kind in a round's metrics (`kind.<key>.clients`). */
export function clientsPerKindOf(metrics: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(metrics)
      .map(([name, v]) => [/^kind\.([a-z+]+)\.clients$/.exec(name)?.[1], v] as const)
      .filter((e): e is readonly [string, number] => e[0] !== undefined),
  );
}
