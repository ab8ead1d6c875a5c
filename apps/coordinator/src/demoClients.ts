/**
 * The demo's headless clients (`--demo-clients N` of `pnpm start`): the headless-clients CLI's
 * arguments for the first task, and the processes that run them. Each client gets a Dirichlet share
 * of the task's built-in dataset; on a representation task (FedAFD family) each also gets a kind and
 * an architecture from the task's own mix (`representation.clientKinds`, passed as `--fedafd-kinds`),
 * with at least one client per kind so that every kind takes part.
 */
import { formatFedAfdKinds, parseCliArgs, runInProcesses } from '@chorus/client/node';
import type { Logger } from 'pino';
import { isRepresentationTask } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';

/** Options of {@link demoClientArgs}. */
export interface DemoClientsOptions {
  /** The coordinator's URL, or several nodes' comma-separated (client i joins the i-th, round-robin). */
  readonly url: string;
  /** Clients asked for (`--demo-clients`); a representation task gets at least one per client kind. */
  readonly numClients: number;
  /** Training examples per client (`--demo-max-examples`). */
  readonly maxExamples: number;
}

/** The demo clients' count and the headless-clients CLI arguments for `task` (the join token travels apart, in the environment). */
export function demoClientArgs(task: TaskConfig, options: DemoClientsOptions): { numClients: number; args: string[] } {
  const kinds = isRepresentationTask(task) ? task.representation.clientKinds.filter((k) => k.share > 0) : null;
  const numClients = kinds ? Math.max(options.numClients, kinds.length) : options.numClients;
  const args = [
    '--url',
    options.url,
    '--task',
    task.id,
    '--clients',
    String(numClients),
    '--dataset',
    task.dataset.name,
    // A FedAFD kind fixes its client's modalities, so the mix replaces --modalities.
    ...(kinds ? ['--fedafd-kinds', formatFedAfdKinds(kinds)] : ['--modalities', task.dataset.modalities.join(',')]),
    '--max-examples',
    String(options.maxExamples),
  ];
  return { numClients, args };
}

/**
 * Starts the demo clients of `task`, each in its own process (local training would otherwise stall
 * the coordinator's event loop). Returns a function that stops them.
 */
export function startDemoClients(task: TaskConfig, token: string, options: DemoClientsOptions, logger: Logger): () => void {
  const { numClients, args } = demoClientArgs(task, options);
  if (numClients > options.numClients) logger.info({ demoClients: numClients, task: task.id }, 'one demo client per client kind at least');
  // The token travels in the environment, never on a command line other users can read.
  process.env['CHORUS_JOIN_TOKEN'] = token;
  // Each client runs in its own process, so `url` may list several coordinator nodes (client i → the i-th, round-robin).
  const cli = parseCliArgs([...args, '--processes'], { CHORUS_JOIN_TOKEN: token });
  const stop = new AbortController();
  const done = runInProcesses(
    cli,
    args,
    (index, event) => {
      if (event.type === 'round-end' || event.type === 'task-end') logger.info({ demoClient: index, event: event.type }, 'demo client');
    },
    stop.signal,
  );
  done.then(
    (summaries) => logger.info({ clients: summaries.length }, 'demo clients finished'),
    (err: unknown) => logger.warn({ err }, 'demo clients stopped'),
  );
  return () => stop.abort();
}
