/**
 * `pnpm simulate`: a whole federated run on one machine — the coordinator in-process on a free
 * port with a task file (in-memory store), plus K headless clients with their own partitions of
 * the task's built-in dataset — run to the end, then per-round metrics written as JSON.
 *
 *   tsx src/cli/simulate.ts [--task tasks/demo-digits.yaml] [--out simulate-metrics.json]
 *     [--clients 8] [--rounds N] [--alpha 0.5 | --iid] [--modality-prob image=0.8,…]
 *     [--modality-kinds image+text=0.5,…] [--max-examples 200] [--seed 1]
 *     [--adversarial sign-flip:0.2 …] [--processes] [--backend wasm|cpu] [--eval-examples 128]
 *     [--data-dir DIR] [--log-level warn] [--own-data DIR]
 *
 * A custom task (`model.base: custom`) has no built-in dataset to partition: `--own-data DIR` gives
 * client i its own files in `DIR/<i>/<modality>/…` (as `pnpm task create` lays them out), and the
 * clients fetch the task's encoders from the coordinator as a tab does.
 *
 * A run is meant to replay from its command: client ids are derived from the task (see
 * simulatedClients.ts), every client's randomness from `--seed`, sampling and the initial model
 * from the task's seed, so two runs of one command hold the same global model after every round.
 * With `--data-dir` the store is SQLite in that folder (`coordinator.db`, the clients' identities
 * beside it) and running the same command again resumes an interrupted run where it stopped;
 * without it the store is in memory.
 *
 * Each round's entry holds the coordinator's metrics (accepted, rejected, dropped, update norms,
 * the clients' reported accuracies, trust, and its own evaluation when it has one); when the
 * coordinator did not evaluate the global model, the checkpoint of every round is evaluated here
 * on the test split with packages/models, so `testAccuracy` is always measured, never reported.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeUpdate } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { datasetFromSamples, evaluateLocally } from '@chorus/client';
import type { ClientEvent, ModelFactory, ModelRequest } from '@chorus/client';
import { createNodeDigitsFactory, createProgressView, isEntryScript, parseCliArgs, runInProcess, runInProcesses, useNodeBackend } from '@chorus/client/node';
import type { ClientSummary } from '@chorus/client/node';
import { BUILTIN_NAMES, openBuiltin, readManifest } from '@chorus/datasets';
import type { BuiltinName } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import type { Modality } from '@chorus/models';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import type { RoundEngine } from '../engine/roundEngine.js';
import { startCoordinator } from '../server.js';
import type { Coordinator, CoordinatorOptions } from '../server.js';
import { derivedId } from '../security/tokens.js';
import { MemoryStore } from '../store/memoryStore.js';
import { SqliteStore } from '../store/sqliteStore.js';
import type { CoordinatorStore } from '../store/types.js';
import { readTaskFile } from '../task/loadTask.js';
import { isCustomTask, isRepresentationTask } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';
import { registerSimulatedClients } from './simulatedClients.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The model a client builds for `task` (its modalities, adapters, LoRA α, head and seed), with `numClasses` classes. */
export function modelRequestOf(task: TaskConfig, numClasses = 10): ModelRequest {
  return {
    modalities: task.dataset.modalities as Modality[],
    numClasses,
    adapterRank: task.model.adapterRank,
    namConcepts: task.model.namConcepts,
    namHiddenUnits: 8,
    head: task.model.head,
    adapterAlpha: task.model.adapterAlpha,
    learningRate: task.learningRate,
    seed: task.seed,
  };
}

/** The task's initial adapters as the client model factory builds them (LoRA B zero, seeded from the task). */
export async function initialGlobalOf(task: TaskConfig, models: ModelFactory): Promise<Tensor[]> {
  const model = await models.create(modelRequestOf(task));
  try {
    return model.adapterParameters();
  } finally {
    model.dispose();
  }
}

/** One round of the metrics file. */
export interface SimulatedRound {
  readonly serverRound: number;
  /** SHA-256 of the global model after the round (its checkpoint). */
  readonly globalHash: string;
  /** Test-split accuracy of the global model after the round (the coordinator's, else measured here). */
  readonly testAccuracy: number | null;
  readonly testLoss: number | null;
  readonly metrics: Readonly<Record<string, number>>;
  readonly trust: readonly { readonly clientId: string; readonly trust: number }[];
}

/** The metrics file. */
export interface SimulationReport {
  readonly taskId: string;
  readonly status: string;
  readonly completedRounds: number;
  readonly globalHash: string;
  readonly numClients: number;
  readonly durationMs: number;
  /** Test accuracy of the initial global model (round 0). */
  readonly initialTestAccuracy: number | null;
  readonly rounds: readonly SimulatedRound[];
  readonly clients: readonly ClientSummary[];
}

/** Accuracy and loss of each checkpoint of `task` on the first `numExamples` of the test split. */
export async function evaluateCheckpoints(
  task: TaskConfig,
  checkpoints: readonly Uint8Array[],
  models: ModelFactory,
  numExamples: number,
): Promise<{ accuracy: number; loss: number }[]> {
  const name = task.dataset.name;
  if (!(BUILTIN_NAMES as readonly string[]).includes(name)) throw new CoordinatorError('TASK_INVALID', `dataset '${name}' is not built in`);
  const source = fileSource();
  const split = await openBuiltin(source, await readManifest(source), name as BuiltinName, 'test');
  const indices = Array.from({ length: Math.min(numExamples, split.numExamples) }, (_, i) => i);
  const data = await datasetFromSamples(await split.read(indices), task.dataset.modalities as Modality[]);
  const model = await models.create(modelRequestOf(task, split.classes.length));
  try {
    const out: { accuracy: number; loss: number }[] = [];
    for (const bytes of checkpoints) {
      model.setAdapterParameters(decodeUpdate(bytes, { maxBytes: bytes.byteLength }).tensors);
      const r = await evaluateLocally(model, data, indices);
      out.push({ accuracy: r.accuracy, loss: r.loss });
    }
    return out;
  } finally {
    model.dispose();
  }
}

/** Builds the report from the store once the run is over. */
async function report(
  task: TaskConfig,
  store: CoordinatorStore,
  models: ModelFactory,
  extra: { numClients: number; durationMs: number; clients: ClientSummary[]; evalExamples: number },
): Promise<SimulationReport> {
  const metrics = store.listMetrics(task.id);
  const trust = store.listTrust(task.id);
  const latest = store.latestCheckpoint(task.id);
  const completedRounds = latest?.serverRound ?? 0;
  const measured = metrics.every((m) => typeof m.metrics['eval.accuracy'] === 'number');
  const checkpoints = Array.from({ length: completedRounds + 1 }, (_, r) => store.getCheckpoint(task.id, r)?.bytes).filter(
    (b): b is Uint8Array => b !== undefined,
  );
  const own = extra.evalExamples > 0 ? await evaluateCheckpoints(task, measured ? checkpoints.slice(0, 1) : checkpoints, models, extra.evalExamples) : [];
  return {
    taskId: task.id,
    status: store.getTask(task.id)?.status ?? 'unknown',
    completedRounds,
    globalHash: latest?.sha256 ?? '',
    numClients: extra.numClients,
    durationMs: extra.durationMs,
    initialTestAccuracy: own[0]?.accuracy ?? null,
    rounds: metrics.map((m) => ({
      serverRound: m.serverRound,
      globalHash: store.getCheckpoint(task.id, m.serverRound)?.sha256 ?? '',
      testAccuracy: measured ? m.metrics['eval.accuracy']! : (own[m.serverRound]?.accuracy ?? null),
      testLoss: measured ? (m.metrics['eval.loss'] ?? null) : (own[m.serverRound]?.loss ?? null),
      metrics: m.metrics,
      trust: trust.filter((t) => t.serverRound === m.serverRound).map((t) => ({ clientId: t.clientId, trust: t.trust })),
    })),
    clients: extra.clients,
  };
}

/** Options of {@link runSimulation}: the task and the headless clients' flags (as `chorus-clients` takes them). */
export interface SimulationOptions {
  readonly task: TaskConfig;
  readonly numClients: number;
  /** Extra client flags: `--alpha`, `--iid`, `--modality-kinds`, `--adversarial`, `--max-examples`, `--seed`, … */
  readonly clientArgs?: readonly string[];
  readonly processes?: boolean;
  readonly backend?: string;
  /** Test-split examples the checkpoints are evaluated on when the coordinator did not evaluate them (0: none). */
  readonly testExamples?: number;
  readonly logLevel?: string;
  /**
   * Folder of a SQLite store (`coordinator.db`) and the clients' identities (`identities/`); a run
   * on a folder that holds the task resumes it. Absent: an in-memory store, nothing kept.
   */
  readonly dataDir?: string;
  readonly onEvent?: (client: number, event: ClientEvent) => void;
  /** A custom task's clients' own files: client i reads `<ownData>/<i>/<modality>/…` (required for a custom task). */
  readonly ownData?: string;
  /** Called with the store before it is closed, e.g. to read checkpoints. */
  readonly inspect?: (store: CoordinatorStore) => void | Promise<void>;
  /** Coordinator settings beyond the defaults (e.g. `trustProxy` to emulate volunteers' addresses). */
  readonly coordinator?: Pick<CoordinatorOptions, 'trustProxy'>;
  /**
   * Started once the coordinator listens, before the headless clients: whatever else should talk to
   * it (e.g. scripted attackers). The run awaits the returned promise after the clients finished,
   * before the coordinator closes.
   */
  readonly alongside?: (coordinator: Coordinator) => Promise<void>;
}

/**
 * Runs a coordinator in-process and headless clients for `options.task` to the end (resuming the
 * task when `options.dataDir` holds it), and returns the report. A simulation is one run: a task
 * with `runs: continuous` (the demo's) is run once, so that it ends.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  const backend = options.backend ?? 'wasm';
  const testExamples = options.testExamples ?? 300;
  const logger = pino({ level: options.logLevel ?? 'warn' });
  let store: CoordinatorStore;
  let identityDir: string;
  if (options.dataDir === undefined) {
    store = new MemoryStore();
    identityDir = mkdtempSync(join(tmpdir(), 'chorus-simulate-'));
  } else {
    const dataDir = resolve(options.dataDir);
    mkdirSync(dataDir, { recursive: true });
    store = new SqliteStore({ path: join(dataDir, 'coordinator.db') });
    identityDir = join(dataDir, 'identities');
  }
  try {
    // Without `runs` a task runs once: a continuous one would never end the simulation.
    const { runs: _runs, ...once } = options.task;
    return await simulateOn(store, identityDir, { ...options, task: once, backend, testExamples }, logger);
  } finally {
    store.close();
    if (options.dataDir === undefined) rmSync(identityDir, { recursive: true, force: true });
  }
}

/**
 * Holds the task (paused) until each of `numClients` clients has joined or given up, then lets it
 * run, and returns the event hook that counts them. A round's cohort is drawn from the clients
 * waiting when it opens, so without this the first round (and the first after a resume) would go
 * to whichever clients connected first.
 */
function holdUntilEveryClientJoined(engine: RoundEngine, numClients: number): (client: number, event: ClientEvent) => void {
  const status = engine.snapshot().status;
  // Finished, failed or stopped: nothing will open. Paused: held already (a run killed while holding).
  if (status === 'waiting' || status === 'running') engine.control('pause', 'simulate: waiting for every client to join');
  else if (status !== 'paused') return () => undefined;
  const settled = new Set<number>();
  let released = false;
  return (client, event) => {
    if (released) return;
    const joined = event.type === 'identity';
    const gone = event.type === 'status' && (event.status === 'failed' || event.status === 'finished' || event.status === 'closed');
    if (!joined && !gone) return;
    settled.add(client);
    if (settled.size < numClients) return;
    released = true;
    if (engine.snapshot().status !== 'paused') return;
    // Never started: resume goes back to waiting, and start opens round 1 without waiting out the waiting room.
    if (engine.control('resume', 'simulate: every client joined') === 'waiting') engine.control('start', 'simulate: every client joined');
  };
}

/** The run itself, on an open store; the caller closes the store. */
async function simulateOn(
  store: CoordinatorStore,
  identityDir: string,
  options: SimulationOptions & { backend: string; testExamples: number },
  logger: Logger,
): Promise<SimulationReport> {
  const { task, backend } = options;
  const custom = isCustomTask(task);
  if (custom && options.ownData === undefined)
    throw new CoordinatorError('CONFIG_INVALID', `task ${task.id} is a custom task: give its clients' own files (--own-data)`);
  await useNodeBackend(backend);
  // Identities opened during the run (not the registered clients) get ids that depend only on their order, so a rerun samples alike.
  let opened = 0;
  const newClientId = (): string => {
    let id: string;
    do id = derivedId('c', [task.id, 'opened', opened++]);
    while (store.getClient(id));
    return id;
  };
  const coordinator = await startCoordinator({ tasks: [{ config: task }], store, logger, processMetrics: false, newClientId, ...options.coordinator });
  let clients: ClientSummary[];
  let durationMs: number;
  try {
    // Registered before any client connects, so every client resumes its seeded identity.
    await registerSimulatedClients({ store, task, numClients: options.numClients, identityDir, now: Date.now() });
    const gate = holdUntilEveryClientJoined(coordinator.engines.get(task.id)!, options.numClients);
    const token = coordinator.joinTokens.get(task.id)!;
    const clientArgs = [
      '--url',
      coordinator.url,
      '--task',
      task.id,
      '--clients',
      String(options.numClients),
      // A custom task's clients bring their own files; the others get a partition of the built-in dataset.
      ...(custom ? ['--own-data', options.ownData!] : ['--dataset', task.dataset.name]),
      // A representation task's clients take their modalities from their kinds (`--fedafd-kinds` in clientArgs).
      ...(isRepresentationTask(task) || custom ? [] : ['--modalities', task.dataset.modalities.join(',')]),
      '--backend',
      backend,
      '--identity-dir',
      identityDir,
      ...(options.clientArgs ?? []),
    ];
    // The token travels in the environment, never on a command line other users can read.
    const cli = parseCliArgs(clientArgs, { CHORUS_JOIN_TOKEN: token });
    process.env['CHORUS_JOIN_TOKEN'] = token;
    const onEvent = (client: number, event: ClientEvent): void => {
      gate(client, event);
      options.onEvent?.(client, event);
    };
    const started = Date.now();
    // Caught here and rethrown after the clients finished, so a failing side run never leaves them behind.
    const side = options.alongside?.(coordinator).then(
      () => null,
      (err: unknown) => err,
    );
    clients = options.processes === true ? await runInProcesses(cli, clientArgs, onEvent) : await runInProcess(cli, onEvent);
    const sideError = await side;
    if (sideError) throw sideError;
    durationMs = Date.now() - started;
  } finally {
    await coordinator.close();
  }
  const models = createNodeDigitsFactory();
  try {
    // A custom task is evaluated by the coordinator on its own test data, or not at all.
    const evalExamples = custom ? 0 : options.testExamples;
    const result = await report(task, store, models, { numClients: options.numClients, durationMs, clients, evalExamples });
    await options.inspect?.(store);
    return result;
  } finally {
    models.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      task: { type: 'string', default: join(packageRoot, 'tasks', 'demo-digits.yaml') },
      out: { type: 'string', default: 'simulate-metrics.json' },
      clients: { type: 'string', default: '8' },
      rounds: { type: 'string' },
      alpha: { type: 'string' },
      iid: { type: 'boolean', default: false },
      'modality-prob': { type: 'string' },
      'modality-kinds': { type: 'string' },
      'max-examples': { type: 'string', default: '200' },
      seed: { type: 'string', default: '1' },
      adversarial: { type: 'string', multiple: true },
      processes: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'wasm' },
      'eval-examples': { type: 'string', default: '128' },
      'test-examples': { type: 'string', default: '300' },
      'log-level': { type: 'string', default: 'warn' },
      'data-dir': { type: 'string' },
      'own-data': { type: 'string' },
    },
    strict: true,
  });
  let task = readTaskFile(resolve(values.task));
  if (values.rounds !== undefined) {
    const rounds = Number(values.rounds);
    if (!Number.isInteger(rounds) || rounds < 1) throw new CoordinatorError('CONFIG_INVALID', `--rounds must be an integer ≥ 1, got '${values.rounds}'`);
    task = { ...task, rounds };
  }
  const testExamples = Number(values['test-examples']);
  if (!Number.isInteger(testExamples) || testExamples < 0)
    throw new CoordinatorError('CONFIG_INVALID', `--test-examples must be an integer ≥ 0, got '${values['test-examples']}'`);
  const numClients = Number(values.clients);
  if (!Number.isInteger(numClients) || numClients < 1)
    throw new CoordinatorError('CONFIG_INVALID', `--clients must be an integer ≥ 1, got '${values.clients}'`);
  const clientArgs = [
    '--max-examples',
    values['max-examples'],
    '--seed',
    values.seed,
    '--eval-examples',
    values['eval-examples'],
    ...(values.alpha === undefined ? [] : ['--alpha', values.alpha]),
    ...(values.iid ? ['--iid'] : []),
    ...(values['modality-prob'] === undefined ? [] : ['--modality-prob', values['modality-prob']]),
    ...(values['modality-kinds'] === undefined ? [] : ['--modality-kinds', values['modality-kinds']]),
    ...(values.adversarial ?? []).flatMap((a) => ['--adversarial', a]),
  ];
  const tty = process.stdout.isTTY === true;
  const view = createProgressView(process.stdout, numClients, { tty });
  process.stdout.write(`simulate: ${task.id}, ${numClients} clients, ${task.rounds} rounds\n`);
  let result: SimulationReport;
  try {
    result = await runSimulation({
      task,
      numClients,
      clientArgs,
      processes: values.processes,
      backend: values.backend,
      testExamples,
      logLevel: values['log-level'],
      ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
      ...(values['own-data'] === undefined ? {} : { ownData: resolve(values['own-data']) }),
      onEvent: (i, e) => view.update(i, e),
    });
  } finally {
    view.close();
  }
  const out = resolve(values.out);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  for (const r of result.rounds) {
    process.stdout.write(
      `round ${r.serverRound}: test accuracy ${r.testAccuracy === null ? 'n/a' : r.testAccuracy.toFixed(3)}, accepted ${r.metrics['numAccepted'] ?? 0}, rejected ${r.metrics['numRejected'] ?? 0}, dropped ${r.metrics['numDropped'] ?? 0}\n`,
    );
  }
  process.stdout.write(
    `${JSON.stringify({ out, status: result.status, completedRounds: result.completedRounds, initialTestAccuracy: result.initialTestAccuracy, finalTestAccuracy: result.rounds.at(-1)?.testAccuracy ?? null, durationMs: result.durationMs })}\n`,
  );
  process.exitCode = result.status === 'finished' ? 0 : 1;
}

// Run only as the entry script itself, never when another module named alike imports this one.
if (isEntryScript(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`simulate failed: ${isCoordinatorError(err) || err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
