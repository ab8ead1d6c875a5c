/**
 * The files of a custom task (`model.base: custom`): each encoder's `model.json` and the weight files
 * it names, and a text encoder's word-vector table. They are checked and hashed once when the task
 * is loaded; clients receive the list (their path under the task, size, SHA-256) in the task's spec
 * and fetch each file from `GET /api/tasks/:id/files/<path>`, checking the digest before use.
 *
 * A file that is missing, unreadable, or not what `model.json` says is refused with `TASK_INVALID`
 * naming the path on disk and the task-file field it came from.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { MODALITIES, TASK_SPEC_TYPE } from '@chorus/protocol';
import type { Modality, TaskFile, TaskSpec } from '@chorus/protocol';
import { TaskFileError } from './loadTask.js';
import { isCustomTask } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';

/** Largest file of a task's encoder a client is asked to fetch. */
export const MAX_TASK_FILE_BYTES = 256 * 1024 * 1024;

/** A custom task's spec for clients, and where each listed file lies on disk. */
export interface TaskFiles {
  readonly spec: TaskSpec;
  /** Absolute path on disk of each listed file, by its path in the spec. */
  readonly onDisk: ReadonlyMap<string, string>;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Reads and hashes a custom task's files and builds its spec; throws `TASK_INVALID` (a
 * {@link TaskFileError} naming the task) for a file that is missing, unreadable, too large, or for a
 * `model.json` that is not a TF.js LayersModel or names a weight file outside its folder.
 */
export function describeTaskFiles(task: TaskConfig): TaskFiles {
  const problems: { path: string; message: string }[] = [];
  const encoders = task.model.encoders;
  if (!isCustomTask(task) || !encoders || !task.classes) throw new TaskFileError(`task ${task.id}`, [{ path: 'model.base', message: 'is not a custom task' }]);
  const onDisk = new Map<string, string>();
  const read = (file: string, field: string): Uint8Array | null => {
    try {
      const size = statSync(file).size;
      if (size > MAX_TASK_FILE_BYTES) {
        problems.push({ path: field, message: `${file} has ${size} bytes; a task file may have at most ${MAX_TASK_FILE_BYTES}` });
        return null;
      }
      return readFileSync(file);
    } catch (err) {
      problems.push({ path: field, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return null;
    }
  };
  const listed = (specPath: string, file: string, bytes: Uint8Array): TaskFile => {
    onDisk.set(specPath, file);
    return { path: specPath, bytes: bytes.byteLength, sha256: sha256Of(bytes) };
  };
  const specEncoders: NonNullable<TaskSpec['encoders']> = {};
  for (const m of MODALITIES as readonly Modality[]) {
    const encoder = encoders[m];
    if (!encoder) continue;
    const field = `model.encoders.${m}.path`;
    const modelFile = join(encoder.path, 'model.json');
    const modelBytes = read(modelFile, field);
    if (!modelBytes) continue;
    let json: { modelTopology?: unknown; weightsManifest?: { paths?: unknown }[] };
    try {
      json = JSON.parse(Buffer.from(modelBytes).toString('utf8')) as typeof json;
    } catch (err) {
      problems.push({ path: field, message: `${modelFile} is not JSON: ${(err as Error).message}` });
      continue;
    }
    if (typeof json !== 'object' || json === null || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
      problems.push({ path: field, message: `${modelFile} is not a TF.js LayersModel (it needs modelTopology and weightsManifest)` });
      continue;
    }
    const files: TaskFile[] = [listed(`${m}/model.json`, modelFile, modelBytes)];
    for (const group of json.weightsManifest) {
      const paths = Array.isArray(group?.paths) ? (group.paths as unknown[]) : [];
      for (const p of paths) {
        const name = typeof p === 'string' ? normalize(p.replace(/^\.\//, '')) : '';
        if (name === '' || name.startsWith('..') || name.startsWith(sep) || !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(name)) {
          problems.push({ path: field, message: `${modelFile} names the weight file ${JSON.stringify(p)}, which is not a plain path inside its folder` });
          continue;
        }
        const weightFile = join(encoder.path, name);
        const bytes = read(weightFile, field);
        if (bytes) files.push(listed(`${m}/${name}`, weightFile, bytes));
      }
    }
    specEncoders[m] = { files, adapters: [...encoder.adapters] };
  }
  let vocabulary: TaskFile | undefined;
  if (encoders.text) {
    const bytes = read(encoders.text.vocabulary, 'model.encoders.text.vocabulary');
    if (bytes) vocabulary = listed('text/vocabulary.txt', encoders.text.vocabulary, bytes);
  }
  if (problems.length > 0) throw new TaskFileError(`task ${task.id}`, problems);
  const spec: TaskSpec = {
    type: TASK_SPEC_TYPE,
    taskId: task.id,
    classes: [...task.classes],
    modalities: [...task.dataset.modalities],
    base: task.model.base,
    adapterRank: task.model.adapterRank,
    adapterAlpha: task.model.adapterAlpha,
    namConcepts: task.model.namConcepts,
    head: task.model.head,
    encoders: specEncoders,
    inputs: {
      ...(encoders.image ? { image: encoders.image.input } : {}),
      ...(encoders.text ? { text: encoders.text.input } : {}),
      ...(encoders.audio ? { audio: encoders.audio.input } : {}),
    },
    ...(vocabulary ? { vocabulary } : {}),
  };
  return { spec, onDisk };
}
