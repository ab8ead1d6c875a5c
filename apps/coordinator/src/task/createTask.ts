/**
 * Creating a task while the coordinator runs (`POST /api/tasks`, the dashboard's "New task" form):
 * the body carries the task as a task file holds it (paths relative to its folder) and the files it
 * names; they are checked with the same schema as a task file, written to `<tasksDir>/<id>/`
 * (`task.yaml` beside the files, so the next start loads it like any task folder), and checked
 * again as a folder (every encoder file, the vocabulary, the data). Any refusal removes the folder:
 * nothing of a refused task stays on disk or in the store.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { CoordinatorError } from '../errors.js';
import { TASK_FILE_NAME, parseTask, resolveTaskPaths } from './loadTask.js';
import { describeTaskFiles } from './taskFiles.js';
import { isCustomTask } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';

/** The file beside a created task's `task.yaml` holding its join token (owner-only), read again at start. */
export const JOIN_TOKEN_FILE = 'join-token';

/** Largest `maxUpdateBytes` a task created on a running coordinator may ask for (socket.io buffers a whole message). */
export const MAX_CREATED_UPDATE_BYTES = 64 * 1024 * 1024;

/** Largest request body of a new task, its files included (base64 makes them a third larger). */
export const MAX_CREATE_TASK_BODY_BYTES = 96 * 1024 * 1024;
/** Most files a new task may bring. */
export const MAX_CREATE_TASK_FILES = 20_000;

const relativePath = z
  .string()
  .min(1)
  .max(500)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._ -]+)*$/, 'must be a relative path of [A-Za-z0-9._-] segments')
  .refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), 'must stay inside the task folder');

/** Body of `POST /api/tasks`. */
export const createTaskBodySchema = z.strictObject({
  /** The task as a task file holds it; paths are relative to the task's folder. */
  task: z.record(z.string(), z.unknown()),
  /** Files the task names, by path in its folder, as base64. */
  files: z.array(z.strictObject({ path: relativePath, base64: z.string() })).max(MAX_CREATE_TASK_FILES),
});
/** See {@link createTaskBodySchema}. */
export type CreateTaskBody = z.output<typeof createTaskBodySchema>;

/** A new task written to its folder and checked. */
export interface WrittenTask {
  readonly dir: string;
  readonly config: TaskConfig;
}

/**
 * Checks `body` (schema, then the files as a folder) and writes the task to `<tasksDir>/<id>/`.
 * Throws `TASK_INVALID` (naming the field or file), `TASK_DUPLICATE` for an id in `takenIds` or a
 * folder that exists, `BAD_REQUEST`-style `CONFIG_INVALID` for files that are not base64. On any
 * refusal the folder is removed.
 */
export function writeNewTask(tasksDir: string, body: CreateTaskBody, takenIds: ReadonlySet<string>): WrittenTask {
  const parsed = parseTask(body.task, 'new task');
  if (takenIds.has(parsed.id)) throw new CoordinatorError('TASK_DUPLICATE', `a task ${parsed.id} exists already`);
  const dir = resolve(tasksDir, parsed.id);
  if (!dir.startsWith(resolve(tasksDir) + sep))
    throw new CoordinatorError('TASK_INVALID', `task id ${parsed.id} is not a folder name`, ['id: not a folder name']);
  try {
    mkdirSync(dir, { recursive: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CoordinatorError('TASK_DUPLICATE', `${dir} exists already`);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      mkdirSync(tasksDir, { recursive: true });
      mkdirSync(dir);
    } else throw err;
  }
  try {
    for (const file of body.files) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(file.base64)) throw new CoordinatorError('CONFIG_INVALID', `${file.path} is not base64`);
      if (file.path === TASK_FILE_NAME) throw new CoordinatorError('CONFIG_INVALID', `${TASK_FILE_NAME} is written from the task itself`);
      const target = join(dir, ...file.path.split('/'));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, Buffer.from(file.base64, 'base64'));
    }
    writeFileSync(join(dir, TASK_FILE_NAME), `# Created from the dashboard.\n${stringify(body.task)}`);
    const config = resolveTaskPaths(parsed, dir);
    if (isCustomTask(config)) describeTaskFiles(config);
    return { dir, config };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
