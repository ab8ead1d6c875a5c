/**
 * `pnpm task`: researchers' task folders.
 *
 *   pnpm task create <dir> [--id shapes] [--modalities image,text] [--clients 4] [--rounds 5] [--seed 7]
 *   pnpm task check <dir | task.yaml>
 *
 * `create` writes a complete custom task folder (exampleTask.ts): a commented `task.yaml`, frozen
 * encoders in TF.js format, a word-vector table, the server's probe and test data and volunteers'
 * own files — a working task to run at once (`pnpm start --task <dir>`) and to edit into one's own —
 * then checks it. It refuses a folder that already holds a task file.
 *
 * `check` loads a task the way the coordinator will: the file against the schema, every encoder file
 * (present, hashed, a TF.js LayersModel whose input matches the input spec, adapters on layers that
 * can take them), the vocabulary, and every probe and test file (readable, in a listed class). The
 * last stdout line is one JSON object: `{ok: true, …summary}` or `{ok: false, error: {code, message}}`;
 * the exit status is 0 or 1. Relative paths are read from the folder pnpm was started in (`INIT_CWD`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isEntryScript } from '@chorus/client/node';
import { MODALITIES } from '@chorus/protocol';
import type { Modality } from '@chorus/protocol';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import { TaskModel } from '../model/taskModel.js';
import { writeExampleTask } from '../task/exampleTask.js';
import { TASK_FILE_NAME, readTaskFile } from '../task/loadTask.js';
import { describeTaskFiles } from '../task/taskFiles.js';
import { isCustomTask, isRepresentationTask } from '@chorus/protocol';

/** What `check` reports of a task that loads. */
export interface TaskCheckSummary {
  readonly ok: true;
  readonly taskId: string;
  readonly base: string;
  readonly modalities: readonly string[];
  readonly classes: readonly string[] | null;
  /** Trainable values the clients exchange (adapters, concept projections, head). */
  readonly adapterValues: number;
  readonly probeExamples: number;
  /** Files clients fetch, with their total size. */
  readonly files: number;
  readonly fileBytes: number;
}

/** Loads the task at `path` as the coordinator would and summarises it; throws the coded error that refuses it. */
export async function checkTask(path: string): Promise<TaskCheckSummary> {
  const task = readTaskFile(path);
  const files = isCustomTask(task) ? describeTaskFiles(task) : null;
  if (isRepresentationTask(task))
    return {
      ok: true,
      taskId: task.id,
      base: task.model.base,
      modalities: task.dataset.modalities,
      classes: null,
      adapterValues: 0,
      probeExamples: 0,
      files: 0,
      fileBytes: 0,
    };
  const model = await TaskModel.create(task, {});
  try {
    return {
      ok: true,
      taskId: task.id,
      base: task.model.base,
      modalities: model.modalities,
      classes: task.classes ?? null,
      adapterValues: model.initialParameters().reduce((s, t) => s + t.values.length, 0),
      probeExamples: model.probeLabels.length,
      files: files ? files.onDisk.size : 0,
      fileBytes: files
        ? [...Object.values(files.spec.encoders ?? {}).flatMap((e) => e.files), ...(files.spec.vocabulary ? [files.spec.vocabulary] : [])].reduce(
            (s, f) => s + f.bytes,
            0,
          )
        : 0,
    };
  } finally {
    model.dispose();
  }
}

function modalityList(text: string): Modality[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const m of list)
    if (!(MODALITIES as readonly string[]).includes(m))
      throw new CoordinatorError('CONFIG_INVALID', `--modalities: unknown modality '${m}' (known: ${MODALITIES.join(', ')})`);
  if (list.length === 0 || new Set(list).size !== list.length)
    throw new CoordinatorError('CONFIG_INVALID', `--modalities must list distinct modalities, got '${text}'`);
  return list as Modality[];
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new CoordinatorError('CONFIG_INVALID', `--${name} must be an integer ≥ 1, got '${text}'`);
  return n;
}

async function main(argv: readonly string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv.filter((arg) => arg !== '--'),
    allowPositionals: true,
    options: {
      id: { type: 'string', default: 'shapes' },
      modalities: { type: 'string', default: 'image,text' },
      clients: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '5' },
      seed: { type: 'string', default: '7' },
    },
    strict: true,
  });
  const [verb, target] = positionals;
  if ((verb !== 'create' && verb !== 'check') || target === undefined || positionals.length !== 2)
    throw new CoordinatorError('CONFIG_INVALID', 'usage: pnpm task create <dir> [--modalities image,text] | pnpm task check <dir | task.yaml>');
  const path = resolve(process.env['INIT_CWD'] ?? '.', target);
  if (verb === 'create') {
    if (existsSync(join(path, TASK_FILE_NAME)))
      throw new CoordinatorError('CONFIG_INVALID', `${join(path, TASK_FILE_NAME)} exists; create writes a new task folder`);
    const written = await writeExampleTask(path, {
      id: values.id,
      modalities: modalityList(values.modalities),
      numClients: positive('clients', values.clients),
      rounds: positive('rounds', values.rounds),
      seed: positive('seed', values.seed),
    });
    process.stdout.write(
      `wrote ${written.taskFile}, its encoders and data, and ${written.clientDirs.length} volunteers' folders under ${join(path, 'clients')}\n`,
    );
  }
  const summary = await checkTask(path);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

// Run only as the entry script itself, never when another module named alike imports this one.
if (isEntryScript(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    const code = isCoordinatorError(err) ? err.code : 'CONFIG_INVALID';
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`task: ${message}\n`);
    process.stdout.write(`${JSON.stringify({ ok: false, error: { code, message } })}\n`);
    process.exit(1);
  });
}
