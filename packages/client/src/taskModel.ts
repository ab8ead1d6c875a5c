/**
 * A custom task's model and data on the client side (tab and headless alike): the task's spec read
 * from the coordinator, its encoders fetched file by file and checked against their SHA-256 before
 * TF.js reads them, and the volunteer's own files turned into model inputs by the task's input spec
 * (`@chorus/models`' task inputs, the functions the coordinator's evaluator calls too).
 */
import type * as tf from '@tensorflow/tfjs';
import { loadAudioFolder, loadImageFolder, loadTextFiles, sha256Hex } from '@chorus/datasets';
import type { Skipped, SourceFile } from '@chorus/datasets';
import {
  TextEmbedder,
  audioFrames,
  audioInputs,
  encoderInputShape,
  imageInputs,
  imageTargetOf,
  isModelsError,
  loadTaskEncoder,
  parseVocabulary,
  textInputs,
  vocabularyTokenizer,
} from '@chorus/models';
import type { Modality, Vocabulary } from '@chorus/models';
import { MODALITIES, taskSpecSchema } from '@chorus/protocol';
import type { TaskSpec } from '@chorus/protocol';
import { ArrayDataset } from './dataset.js';
import type { LocalDataset } from './dataset.js';
import { ClientError } from './errors.js';
import { disposeLoaded, modelForRequest } from './models.js';
import type { ModelFactory } from './models.js';

/** A task's spec and a way to fetch the files it lists. */
export interface TaskSource {
  readonly spec: TaskSpec;
  /** The bytes of a file the spec lists (by its path in the spec). */
  fetchFile(path: string): Promise<Uint8Array>;
}

/** Options of {@link fetchTaskSource}. */
export interface FetchTaskOptions {
  /** The coordinator's origin, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  readonly taskId: string;
  /** The task's join token (or an invitation's). */
  readonly token: string;
  readonly fetchFunc?: typeof fetch;
}

/**
 * Reads a task's spec from `GET /api/tasks/:id/spec` and returns it with a fetcher for its files.
 * Throws `CLIENT_CONNECT_FAILED` when the request fails, `CLIENT_BAD_CONFIG` when the task has no
 * spec (a built-in task) or the answer is not a valid spec.
 */
export async function fetchTaskSource(options: FetchTaskOptions): Promise<TaskSource> {
  const source = await readTaskSource(options);
  if (!source) throw new ClientError('CLIENT_BAD_CONFIG', `task ${options.taskId} uses a built-in base; it has no encoders of its own`);
  return source;
}

/** As {@link fetchTaskSource}, but null for a task on a built-in base (the coordinator answers 404 `NO_SPEC`). */
export async function readTaskSource(options: FetchTaskOptions): Promise<TaskSource | null> {
  const fetchFunc = options.fetchFunc ?? ((input, init) => fetch(input, init));
  const base = `${options.url.replace(/\/+$/, '')}/api/tasks/${encodeURIComponent(options.taskId)}`;
  const headers = { authorization: `Bearer ${options.token}` };
  const get = async (url: string, what: string): Promise<Response | null> => {
    let res: Response;
    try {
      res = await fetchFunc(url, { headers });
    } catch (err) {
      throw new ClientError('CLIENT_CONNECT_FAILED', `reading ${what} of task ${options.taskId} failed: ${(err as Error).message}`);
    }
    if (!res.ok) {
      if (res.status === 404 && what === 'the spec') {
        const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
        if (body?.error?.code === 'NO_SPEC') return null;
      }
      let detail = '';
      try {
        detail = ` (${((await res.json()) as { error?: { code?: string; message?: string } }).error?.message ?? ''})`;
      } catch {
        // The body is only there to explain; its absence changes nothing.
      }
      throw new ClientError('CLIENT_BAD_CONFIG', `reading ${what} of task ${options.taskId}: HTTP ${res.status}${detail}`);
    }
    return res;
  };
  const specResponse = await get(`${base}/spec`, 'the spec');
  if (!specResponse) return null;
  const parsed = taskSpecSchema.safeParse(await specResponse.json().catch(() => null));
  if (!parsed.success) throw new ClientError('CLIENT_BAD_CONFIG', `task ${options.taskId}'s spec is not valid: ${parsed.error.issues[0]?.message ?? ''}`);
  return {
    spec: parsed.data,
    fetchFile: async (path) => new Uint8Array(await (await get(`${base}/files/${path.split('/').map(encodeURIComponent).join('/')}`, path))!.arrayBuffer()),
  };
}

/** The word-vector table a task's text encoder reads, fetched and checked; null without text. */
export async function loadTaskVocabulary(source: TaskSource): Promise<Vocabulary | null> {
  const file = source.spec.vocabulary;
  if (!file) return null;
  const bytes = await source.fetchFile(file.path);
  const digest = await sha256Hex(bytes);
  if (digest !== file.sha256) throw new ClientError('CLIENT_MODEL_MISMATCH', `${file.path} has SHA-256 ${digest}, the task declares ${file.sha256}`);
  try {
    return parseVocabulary(new TextDecoder().decode(bytes), file.path);
  } catch (err) {
    throw new ClientError('CLIENT_MODEL_MISMATCH', (err as Error).message);
  }
}

/**
 * One of a task's encoders: its files fetched, checked against their SHA-256 and loaded as a frozen
 * base whose input matches the spec (`textDim`: the vocabulary's width, for text). Throws
 * `CLIENT_MODEL_MISMATCH` naming the file.
 */
export async function loadTaskEncoderFrom(source: TaskSource, modality: Modality, textDim: number): Promise<tf.LayersModel> {
  const { spec } = source;
  const declared = spec.encoders?.[modality];
  if (!declared || !spec.inputs) throw new ClientError('CLIENT_MODEL_MISMATCH', `task ${spec.taskId} has no ${modality} encoder`);
  const bytes = new Map<string, Uint8Array>();
  for (const f of declared.files) bytes.set(f.path, await source.fetchFile(f.path));
  try {
    return await loadTaskEncoder(modality, { declared: declared.files, bytes }, encoderInputShape(modality, spec.inputs, textDim));
  } catch (err) {
    if (isModelsError(err)) throw new ClientError('CLIENT_MODEL_MISMATCH', err.message);
    throw err;
  }
}

/** A factory of a custom task's model; also hands out the vocabulary the own texts are tokenised with. */
export interface TaskModelFactory extends ModelFactory {
  /** The task's spec. */
  readonly spec: TaskSpec;
  /** The task's word-vector table (null without text); loaded once. */
  vocabulary(): Promise<Vocabulary | null>;
}

/**
 * A model factory for a custom task: each encoder is fetched, checked and loaded on first use and
 * shared by every round; each round's model puts adapters on the layers the spec names. A file whose
 * digest or shape does not match is refused with `CLIENT_MODEL_MISMATCH` naming it.
 */
export function createTaskModelFactory(source: TaskSource): TaskModelFactory {
  const { spec } = source;
  if (spec.base !== 'custom' || !spec.encoders || !spec.inputs) throw new ClientError('CLIENT_BAD_CONFIG', `task ${spec.taskId} brings no encoders of its own`);
  const encoders = spec.encoders;
  let vocabulary: Promise<Vocabulary | null> | null = null;
  let embedder: Promise<TextEmbedder> | null = null;
  const bases = new Map<Modality, Promise<tf.LayersModel>>();
  let disposed = false;
  const loadVocabulary = (): Promise<Vocabulary | null> => (vocabulary ??= loadTaskVocabulary(source));
  const base = (m: Modality): Promise<tf.LayersModel> => {
    let p = bases.get(m);
    if (!p) {
      p = (async () => loadTaskEncoderFrom(source, m, m === 'text' ? ((await loadVocabulary())?.dim ?? 0) : 0))();
      bases.set(m, p);
    }
    return p;
  };
  const textEmbedder = (): Promise<TextEmbedder> =>
    (embedder ??= loadVocabulary().then((v) => {
      if (!v) throw new ClientError('CLIENT_MODEL_MISMATCH', `task ${spec.taskId} has a text encoder but no vocabulary`);
      return new TextEmbedder(v.vectors, v.dim);
    }));
  return {
    spec,
    modalities: spec.modalities,
    vocabulary: loadVocabulary,
    async create(request) {
      if (disposed) throw new ClientError('CLIENT_CLOSED', 'the model factory was disposed');
      if (request.numClasses !== spec.classes.length)
        throw new ClientError('CLIENT_MODEL_MISMATCH', `the global model has ${request.numClasses} classes, task ${spec.taskId} lists ${spec.classes.length}`);
      const parts: Partial<Record<Modality, { base: tf.LayersModel; targets: readonly string[] }>> = {};
      for (const m of request.modalities) parts[m] = { base: await base(m), targets: encoders[m]!.adapters };
      return modelForRequest(request, {
        encoders: parts,
        ...(request.modalities.includes('text') ? { textEmbedder: await textEmbedder() } : {}),
        adapterAlpha: request.adapterAlpha ?? spec.adapterAlpha,
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      disposeLoaded([...bases.values(), embedder]);
    },
  };
}

/** A volunteer's own files of one modality, loaded under a task's spec. */
export interface OwnTaskData {
  readonly modality: Modality;
  readonly dataset: LocalDataset;
  /** Loaded examples per class id (the task's classes). */
  readonly perClass: readonly number[];
  /** Every file or row left out, with its coded reason and a message naming it. */
  readonly skipped: readonly Skipped[];
}

/** Text columns of own CSV / JSONL files (the task data's defaults). */
export const OWN_TEXT_COLUMNS = { textColumn: 'text', labelColumn: 'label' } as const;

/**
 * A local dataset of `modality` from a volunteer's own `files` under `spec`: images and clips in
 * class folders named after the task's classes, texts as CSV / JSONL with `text` and `label`
 * columns. Files that don't fit (another class, another format, a corrupt file) are left out and
 * listed; throws `CLIENT_DATASET` when the task takes no such modality or nothing loads.
 */
export async function loadOwnTaskData(spec: TaskSpec, modality: Modality, files: readonly SourceFile[], vocabulary: Vocabulary | null): Promise<OwnTaskData> {
  if (!spec.modalities.includes(modality)) throw new ClientError('CLIENT_DATASET', `task ${spec.taskId} takes ${spec.modalities.join(', ')}, not ${modality}`);
  const classNames = spec.classes;
  const inputs = spec.inputs ?? {};
  let labels: number[];
  let skipped: Skipped[];
  let dataset: LocalDataset | null = null;
  if (modality === 'image') {
    const input = inputs.image!;
    const loaded = await loadImageFolder(files, { target: imageTargetOf(input), classNames });
    labels = loaded.samples.map((s) => s.label);
    skipped = loaded.skipped;
    if (labels.length > 0)
      dataset = new ArrayDataset(Int32Array.from(labels), {
        image: {
          values: imageInputs(
            loaded.samples.map((s) => s.pixels),
            input,
          ),
          shape: [labels.length, input.height, input.width, input.channels],
        },
      });
  } else if (modality === 'text') {
    const input = inputs.text!;
    if (!vocabulary) throw new ClientError('CLIENT_DATASET', `task ${spec.taskId} has no vocabulary for text`);
    const loaded = await loadTextFiles(files, { ...OWN_TEXT_COLUMNS, classNames });
    labels = loaded.samples.map((s) => s.label);
    skipped = loaded.skipped;
    if (labels.length > 0)
      dataset = new ArrayDataset(Int32Array.from(labels), {
        text: {
          values: textInputs(
            loaded.samples.map((s) => s.text),
            vocabularyTokenizer(vocabulary),
            input,
          ),
          shape: [labels.length, input.maxTokens],
        },
      });
  } else {
    const input = inputs.audio!;
    const loaded = await loadAudioFolder(files, { classNames, sampleRate: input.sampleRate });
    labels = loaded.samples.map((s) => s.label);
    skipped = loaded.skipped;
    if (labels.length > 0) {
      const values = await audioInputs(
        loaded.samples.map((s) => s.samples),
        input,
      );
      dataset = new ArrayDataset(Int32Array.from(labels), { audio: { values, shape: [labels.length, audioFrames(input), input.numMels] } });
    }
  }
  if (!dataset) {
    const why = skipped[0] ? ` (first refusal: ${skipped[0].message})` : '';
    throw new ClientError('CLIENT_DATASET', `none of the ${files.length} ${modality} files fits task ${spec.taskId}${why}`);
  }
  const perClass = new Array<number>(classNames.length).fill(0);
  for (const l of labels) perClass[l]!++;
  return { modality, dataset, perClass, skipped };
}

/**
 * Which modality a folder of own files holds, from its top-level folders (`image/`, `text/`,
 * `audio/`): files under each go to that modality with the prefix removed. Unknown top-level
 * folders are left out.
 */
export function splitByModality(files: readonly SourceFile[]): Partial<Record<Modality, SourceFile[]>> {
  const out: Partial<Record<Modality, SourceFile[]>> = {};
  for (const f of files) {
    const slash = f.path.indexOf('/');
    const head = slash > 0 ? f.path.slice(0, slash) : '';
    if (!(MODALITIES as readonly string[]).includes(head)) continue;
    const m = head as Modality;
    (out[m] ??= []).push({ ...f, path: f.path.slice(slash + 1) });
  }
  return out;
}
