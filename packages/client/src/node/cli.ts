/**
 * `pnpm --filter @chorus/client clients` (bin: chorus-clients): runs K headless clients against a
 * coordinator, each with its own partition of a built-in dataset.
 *
 *   chorus-clients --url http://127.0.0.1:8787 --task demo-digits [--clients 8] [--dataset digits]
 *   (`--url a,b,c --processes`: client i joins the i-th of several coordinator nodes, round-robin)
 *     [--modalities image,text] [--alpha 0.5 | --iid] [--modality-prob image=0.8,text=0.6]
 *     [--modality-kinds image+text=0.4,image=0.3,text=0.3] [--max-examples 200] [--seed 1]
 *     [--adversarial sign-flip:0.2 …] [--processes] [--identity-dir DIR] [--backend wasm|cpu]
 *     [--eval-examples 128] [--weights-dir DIR] [--data-dir DIR]
 *     [--fedafd-kinds image-classifier:cnn=0.34,text-classifier:bag-mlp=0.33,image-text-retrieval:cnn+bag-mlp=0.33]
 *     [--fedafd-eval test:0:256] [--own-data DIR]
 *
 * `--fedafd-kinds` makes FedAFD clients for a representation task (FedAFD family): each gets a kind,
 * an architecture and its data from the mix, as `--modality-kinds` deals modalities to weight clients.
 * `--fedafd-eval split:start:count` scores them after each round on those held-out examples (at most
 * `--eval-examples` of them) instead of their own data.
 * `--own-data DIR` runs clients of a custom task (its own encoders, fetched from the coordinator and
 * checked against their SHA-256): client i trains on its own files in `DIR/<i>/<modality>/…`
 * (class folders of images or WAVs, CSV / JSONL text with `text` and `label` columns).
 * The LoRA α and every other model option come from the coordinator's round config, not flags.
 * The join token comes from CHORUS_JOIN_TOKEN (or --token, which other users can read on the
 * command line). Live bars on a TTY, plain lines otherwise; the last stdout line is one JSON
 * object summarising each client's outcome. Exit status 0 when the task finished.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ModalityKindShare } from '@chorus/fl-core';
import { BUILTIN_NAMES } from '@chorus/datasets';
import type { BuiltinName } from '@chorus/datasets';
import { MODALITIES } from '@chorus/models';
import type { Modality } from '@chorus/models';
import { parseAdversarialSpec } from '../adversarial.js';
import type { AdversarialSpec } from '../adversarial.js';
import { ClientError, isClientError } from '../errors.js';
import type { ClientEvent } from '../events.js';
import type { ClientOutcome } from '../runtime.js';
import type { FedAfdKindShare } from '../fedafd/clientData.js';
import { isEntryScript } from './entryScript.js';
import { parseFedAfdEvaluation, parseFedAfdKinds } from './fedafdClients.js';
import type { FedAfdEvaluationRange } from './fedafd.js';
import { createHeadlessClients } from './headless.js';
import type { HeadlessClientsOptions } from './headless.js';
import { createProgressView } from './progress.js';
import { createNodeDigitsFactory, useNodeBackend } from './setup.js';
import { createTaskModelFactory, fetchTaskSource } from '../taskModel.js';
import { FileIdentityStorage, identityFileOf } from './storage.js';

/** Parsed command line. */
export interface CliOptions {
  readonly url: string;
  readonly taskId: string;
  readonly token: string | undefined;
  readonly numClients: number;
  readonly dataset: BuiltinName;
  readonly modalities: Modality[] | undefined;
  readonly scheme: 'dirichlet' | 'iid';
  readonly alpha: number;
  readonly modalityProbabilities: Partial<Record<Modality, number>> | undefined;
  readonly modalityKinds: ModalityKindShare[] | undefined;
  /** FedAFD clients' mix (representation tasks). */
  readonly fedafdKinds: FedAfdKindShare[] | undefined;
  /** FedAFD clients' held-out evaluation examples (absent: their own). */
  readonly fedafdEvaluation: FedAfdEvaluationRange | undefined;
  readonly maxExamplesPerClient: number | undefined;
  readonly seed: number;
  readonly adversarial: AdversarialSpec[];
  readonly processes: boolean;
  readonly identityDir: string | undefined;
  readonly backend: string;
  readonly evalExamples: number;
  readonly weightsDir: string | undefined;
  readonly dataDir: string | undefined;
  /** A custom task's clients: client i trains on its own files in `<ownData>/<i>/<modality>/…`. */
  readonly ownData: string | undefined;
  /** Internal: the one client a child process runs. */
  readonly only: number | undefined;
}

const bad = (message: string): ClientError => new ClientError('CLIENT_BAD_CONFIG', message);

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw bad(`--${name} must be an integer ≥ ${min}, got '${text}'`);
  return n;
}

function modalityList(text: string, flag: string): Modality[] {
  const list = text
    .split(/[,+]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const m of list) if (!(MODALITIES as readonly string[]).includes(m)) throw bad(`--${flag}: unknown modality '${m}' (known: ${MODALITIES.join(', ')})`);
  return list as Modality[];
}

/**
 * `--modality-kinds`' value, `image+text=0.4,image=0.3,…`: the client kinds and their shares, as
 * fl-core's `assignModalitiesByFractions` deals them; throws `CLIENT_BAD_CONFIG` naming the pair at fault.
 */
export function parseModalityKinds(text: string): ModalityKindShare[] {
  return text.split(',').map((pair) => {
    const [ms, f] = pair.split('=');
    const fraction = Number(f);
    if (!ms || !(fraction >= 0 && fraction <= 1)) throw bad(`--modality-kinds: expected image+text=fraction, got '${pair}'`);
    return { modalities: modalityList(ms, 'modality-kinds'), fraction };
  });
}

/** Parses `argv` (without node and script); throws `CLIENT_BAD_CONFIG` naming the flag at fault. */
export function parseCliArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: 'string' },
        task: { type: 'string' },
        token: { type: 'string' },
        clients: { type: 'string', default: '4' },
        dataset: { type: 'string', default: 'digits' },
        modalities: { type: 'string' },
        alpha: { type: 'string', default: '0.5' },
        iid: { type: 'boolean', default: false },
        'modality-prob': { type: 'string' },
        'modality-kinds': { type: 'string' },
        'fedafd-kinds': { type: 'string' },
        'fedafd-eval': { type: 'string' },
        'max-examples': { type: 'string' },
        seed: { type: 'string', default: '1' },
        adversarial: { type: 'string', multiple: true },
        processes: { type: 'boolean', default: false },
        'identity-dir': { type: 'string' },
        backend: { type: 'string', default: 'wasm' },
        'eval-examples': { type: 'string', default: '128' },
        'weights-dir': { type: 'string' },
        'data-dir': { type: 'string' },
        'own-data': { type: 'string' },
        only: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (!values.url) throw bad('--url is required');
  // Several coordinator nodes: client i connects to the i-th URL (round-robin), each client in its own process.
  if (values.url.includes(',') && !values.processes) throw bad('--url with several comma-separated nodes needs --processes');
  if (!values.task) throw bad('--task (the task id) is required');
  const dataset = values.dataset;
  if (!(BUILTIN_NAMES as readonly string[]).includes(dataset)) throw bad(`--dataset must be one of ${BUILTIN_NAMES.join(', ')}, got '${dataset}'`);
  const alpha = Number(values.alpha);
  if (!(alpha > 0 && Number.isFinite(alpha))) throw bad(`--alpha must be > 0, got '${values.alpha}'`);
  if (values['modality-prob'] && values['modality-kinds']) throw bad('give --modality-prob or --modality-kinds, not both');
  if (values['fedafd-kinds'] && (values['modality-prob'] || values['modality-kinds'] || values.modalities))
    throw bad('--fedafd-kinds deals kinds and their modalities: give it without --modalities, --modality-prob or --modality-kinds');
  if (values['fedafd-eval'] && !values['fedafd-kinds']) throw bad('--fedafd-eval scores FedAFD clients: give it with --fedafd-kinds');
  if (values['own-data'] && (values['fedafd-kinds'] || values['modality-prob'] || values['modality-kinds'] || values.modalities))
    throw bad('--own-data gives each client its own files: give it without --modalities, --modality-prob, --modality-kinds or --fedafd-kinds');
  let modalityProbabilities: Partial<Record<Modality, number>> | undefined;
  if (values['modality-prob']) {
    modalityProbabilities = {};
    for (const pair of values['modality-prob'].split(',')) {
      const [m, p] = pair.split('=');
      const [modality] = modalityList(m ?? '', 'modality-prob');
      const prob = Number(p);
      if (!modality || !(prob >= 0 && prob <= 1)) throw bad(`--modality-prob: expected modality=probability, got '${pair}'`);
      modalityProbabilities[modality] = prob;
    }
  }
  const modalityKinds = values['modality-kinds'] ? parseModalityKinds(values['modality-kinds']) : undefined;
  return {
    url: values.url,
    taskId: values.task,
    token: env['CHORUS_JOIN_TOKEN'] || values.token,
    numClients: integer('clients', values.clients, 1)!,
    dataset: dataset as BuiltinName,
    modalities: values.modalities ? modalityList(values.modalities, 'modalities') : undefined,
    scheme: values.iid ? 'iid' : 'dirichlet',
    alpha,
    modalityProbabilities,
    modalityKinds,
    fedafdKinds: values['fedafd-kinds'] ? parseFedAfdKinds(values['fedafd-kinds']) : undefined,
    fedafdEvaluation: values['fedafd-eval'] ? parseFedAfdEvaluation(values['fedafd-eval']) : undefined,
    maxExamplesPerClient: integer('max-examples', values['max-examples'], 1),
    seed: integer('seed', values.seed, 0)!,
    adversarial: (values.adversarial ?? []).map(parseAdversarialSpec),
    processes: values.processes,
    identityDir: values['identity-dir'],
    backend: values.backend,
    evalExamples: integer('eval-examples', values['eval-examples'], 0)!,
    weightsDir: values['weights-dir'],
    dataDir: values['data-dir'],
    ownData: values['own-data'],
    only: integer('only', values.only, 0),
  };
}

/** Headless-client options of a parsed command line (the model factory and backend supplied by the caller). */
export function headlessOptions(cli: CliOptions, backend: string, models: HeadlessClientsOptions['models']): HeadlessClientsOptions {
  return {
    url: cli.url,
    taskId: cli.taskId,
    ...(cli.token === undefined ? {} : { token: cli.token }),
    models,
    backend,
    dataset: cli.dataset,
    numClients: cli.numClients,
    scheme: cli.scheme,
    alpha: cli.alpha,
    seed: cli.seed,
    adversarial: cli.adversarial,
    ...(cli.modalities ? { modalities: cli.modalities } : {}),
    ...(cli.modalityProbabilities ? { modalityProbabilities: cli.modalityProbabilities } : {}),
    ...(cli.modalityKinds ? { modalityKinds: cli.modalityKinds } : {}),
    ...(cli.maxExamplesPerClient === undefined ? {} : { maxExamplesPerClient: cli.maxExamplesPerClient }),
    ...(cli.dataDir === undefined ? {} : { dataDir: cli.dataDir }),
    ...(cli.ownData === undefined ? {} : { ownData: cli.ownData }),
    ...(cli.identityDir === undefined ? {} : { storage: (i: number) => new FileIdentityStorage(identityFileOf(cli.identityDir!, i)) }),
    ...(cli.only === undefined ? {} : { only: [cli.only] }),
    ...(cli.fedafdKinds
      ? {
          fedafd: {
            kinds: cli.fedafdKinds,
            ...(cli.weightsDir === undefined ? {} : { weightsDir: cli.weightsDir }),
            ...(cli.fedafdEvaluation === undefined ? {} : { evaluation: cli.fedafdEvaluation }),
          },
        }
      : {}),
    // About a minute of retries (0.5 s doubling to 5 s) before a headless client gives up on an unreachable coordinator.
    client: { evalExamples: cli.evalExamples, reconnectAttempts: 15 },
  };
}

/** Summary of one client's outcome, for the final JSON line. */
export interface ClientSummary {
  readonly client: number;
  readonly outcome: 'finished' | 'stopped' | 'failed' | 'closed';
  readonly accepted: number;
  readonly refused: number;
  readonly behaviour: string | null;
  readonly error?: string;
}

type ChildMessage = { kind: 'event'; client: number; event: ClientEvent } | { kind: 'done'; summary: ClientSummary };

function summarize(client: number, behaviour: string | null, outcome: ClientOutcome, counts: { accepted: number; refused: number }): ClientSummary {
  return {
    client,
    outcome: outcome.kind === 'task-end' ? (outcome.taskEnd.status === 'failed' ? 'failed' : outcome.taskEnd.status) : outcome.kind,
    ...counts,
    behaviour,
    ...(outcome.kind === 'failed' ? { error: outcome.error.message } : {}),
  };
}

/** Runs the clients of `cli` in this process; `onEvent` sees every event. */
export async function runInProcess(cli: CliOptions, onEvent: (client: number, event: ClientEvent) => void): Promise<ClientSummary[]> {
  const backend = await useNodeBackend(cli.backend);
  // A custom task's encoders come from the coordinator (checked against their SHA-256); the demo's from this package.
  const models =
    cli.ownData !== undefined
      ? createTaskModelFactory(await fetchTaskSource({ url: cli.url, taskId: cli.taskId, token: cli.token ?? '' }))
      : createNodeDigitsFactory({
          ...(cli.weightsDir === undefined ? {} : { weightsDir: cli.weightsDir }),
          ...(cli.dataDir === undefined ? {} : { dataDir: cli.dataDir }),
        });
  try {
    const clients = await createHeadlessClients(headlessOptions(cli, backend, models));
    const runs = clients.map(async ({ index, client, behaviour }) => {
      const counts = { accepted: 0, refused: 0 };
      client.on((e) => {
        if (e.type === 'update-result') counts[e.accepted ? 'accepted' : 'refused']++;
        onEvent(index, e);
      });
      await client.start().catch(() => undefined); // a refusal also settles finished()
      const outcome = await client.finished();
      return summarize(index, behaviour ? behaviour.kind : null, outcome, counts);
    });
    const stop = (): void => void Promise.all(clients.map((c) => c.client.close()));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      return await Promise.all(runs);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  } finally {
    models.dispose();
  }
}

/** This CLI's own file, which child processes run. */
const CLI_SCRIPT = fileURLToPath(import.meta.url);

/**
 * Runs each client in its own child process (this CLI with `argv` plus `--only i`), relaying events
 * over IPC. Children inherit the Node flags of this process (e.g. tsx's loader).
 */
export async function runInProcesses(
  cli: CliOptions,
  argv: readonly string[],
  onEvent: (client: number, event: ClientEvent) => void,
  signal?: AbortSignal,
): Promise<ClientSummary[]> {
  const script = CLI_SCRIPT;
  const base = argv.filter((a) => a !== '--processes');
  // Several nodes in --url: each child gets one of them, round-robin.
  const urls = cli.url.split(',').map((u) => u.trim());
  const urlAt = base.indexOf('--url') + 1;
  const argvOf = (i: number): string[] => (urls.length > 1 && urlAt > 0 ? base.map((a, k) => (k === urlAt ? urls[i % urls.length]! : a)) : [...base]);
  const children = Array.from(
    { length: cli.numClients },
    (_, i) =>
      new Promise<ClientSummary>((done) => {
        const child = fork(script, [...argvOf(i), '--only', String(i)], {
          execArgv: process.execArgv,
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
          ...(signal ? { signal } : {}),
        });
        let summary: ClientSummary | null = null;
        child.on('message', (m: ChildMessage) => {
          if (m.kind === 'event') onEvent(m.client, m.event);
          else summary = m.summary;
        });
        child.on('error', () => undefined); // an abort is reported through 'exit'
        child.on('exit', (code) =>
          done(summary ?? { client: i, outcome: 'failed', accepted: 0, refused: 0, behaviour: null, error: `process exited with ${code}` }),
        );
      }),
  );
  return Promise.all(children);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const cli = parseCliArgs(argv, process.env);
  if (cli.only !== undefined) {
    // Child mode: one client, events to the parent.
    const send = (m: ChildMessage): void => void process.send?.(m);
    const [summary] = await runInProcess(cli, (client, event) => send({ kind: 'event', client, event }));
    send({ kind: 'done', summary: summary! });
    process.disconnect?.();
    return;
  }
  const tty = process.stdout.isTTY === true;
  const view = createProgressView(process.stdout, cli.numClients, { tty });
  const onEvent = (i: number, e: ClientEvent): void => view.update(i, e);
  const summaries = cli.processes ? await runInProcesses(cli, argv, onEvent) : await runInProcess(cli, onEvent);
  view.close();
  process.stdout.write(`${JSON.stringify({ clients: summaries, finished: summaries.filter((s) => s.outcome === 'finished').length })}\n`);
  process.exitCode = summaries.some((s) => s.outcome === 'finished') ? 0 : 1;
}

// Run only as the entry script itself, never when another module named alike imports this one.
if (isEntryScript(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${isClientError(err) ? err.message : `chorus-clients failed: ${(err as Error).message}`}\n`);
    process.exit(2);
  });
}
