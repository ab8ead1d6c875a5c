/**
 * The dashboard's "New task" form as data: what the researcher entered and chose, turned into the
 * body of `POST /api/tasks` — the task as a task file holds it (paths inside its folder) and the
 * files it names, base64 — plus what the form reads off a chosen `model.json` (its input shape and
 * the layers that can take LoRA adapters) to fill itself in. The form checks the task with the
 * task-file schema (`@chorus/protocol`'s, the one the coordinator reads task files with) before
 * sending; the coordinator checks it again with its files and answers every problem with the field
 * it is about.
 */
import { taskSchema, type Modality } from '@chorus/protocol';

/** One file the researcher chose, with its path relative to the folder picked (or its name). */
export interface ChosenFile {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** One modality's part of the form. */
export interface ModalityForm {
  /** `model.json` and the weight files it names. */
  readonly encoderFiles: readonly ChosenFile[];
  readonly adapters: readonly string[];
  /** image: height, width, channels, mean, std; text: maxTokens; audio: the log-mel settings. */
  readonly input: Readonly<Record<string, number | readonly number[]>>;
  /** A text encoder's word-vector table. */
  readonly vocabulary?: ChosenFile;
  /** The server's probe data (class folders, or CSV / JSONL files for text). */
  readonly probe: readonly ChosenFile[];
  readonly test: readonly ChosenFile[];
}

/** The whole form. */
export interface NewTaskForm {
  readonly id: string;
  readonly name: string;
  readonly classes: readonly string[];
  readonly modalities: Partial<Record<Modality, ModalityForm>>;
  readonly strategy: string;
  readonly rounds: number;
  readonly clientsPerRound: number;
  readonly minClients: number;
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly roundDeadlineMs: number;
  readonly probeExamples: number;
  readonly testExamples: number;
  readonly maxUpdateBytes: number;
  readonly adapterRank: number;
  readonly adapterAlpha: number;
  readonly namConcepts: number;
}

/** The request body of `POST /api/tasks`. */
export interface NewTaskBody {
  readonly task: Record<string, unknown>;
  readonly files: { readonly path: string; readonly base64: string }[];
}

/** Base64 of bytes (browsers and Node alike). */
export function toBase64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** A chosen file's path below the folder that was picked (`probe/circle/a.png` → `circle/a.png`); a lone file keeps its name. */
export function belowPicked(path: string): string {
  const slash = path.indexOf('/');
  return slash > 0 ? path.slice(slash + 1) : path;
}

const MODALITY_ORDER: readonly Modality[] = ['image', 'text', 'audio'];

/** The body the form asks the coordinator to create; see the module comment. */
export function newTaskBody(form: NewTaskForm): NewTaskBody {
  const files: { path: string; base64: string }[] = [];
  const add = (path: string, file: ChosenFile): void => void files.push({ path, base64: toBase64(file.bytes) });
  const modalities = MODALITY_ORDER.filter((m) => form.modalities[m] !== undefined);
  const encoders: Record<string, unknown> = {};
  const probe: Record<string, unknown> = {};
  const test: Record<string, unknown> = {};
  for (const m of modalities) {
    const part = form.modalities[m]!;
    for (const f of part.encoderFiles) add(`encoders/${m}/${baseName(f.path)}`, f);
    encoders[m] = {
      path: `encoders/${m}`,
      adapters: [...part.adapters],
      input: { ...part.input },
      ...(m === 'text' && part.vocabulary ? { vocabulary: 'vocabulary.txt' } : {}),
    };
    if (m === 'text' && part.vocabulary) add('vocabulary.txt', part.vocabulary);
    for (const [split, chosen, into] of [
      ['probe', part.probe, probe],
      ['test', part.test, test],
    ] as const) {
      if (chosen.length === 0) continue;
      for (const f of chosen) add(`data/${split}/${m}/${belowPicked(f.path)}`, f);
      into[m] = m === 'text' ? { path: `data/${split}/${m}` } : `data/${split}/${m}`;
    }
  }
  const task: Record<string, unknown> = {
    id: form.id,
    ...(form.name ? { name: form.name } : {}),
    classes: [...form.classes],
    dataset: {
      name: form.id,
      modalities,
      ...(Object.keys(probe).length > 0 ? { probe } : {}),
      ...(Object.keys(test).length > 0 ? { test } : {}),
    },
    model: { base: 'custom', encoders, adapterRank: form.adapterRank, adapterAlpha: form.adapterAlpha, namConcepts: form.namConcepts },
    strategy: { name: form.strategy },
    rounds: form.rounds,
    clientsPerRound: form.clientsPerRound,
    minClients: form.minClients,
    roundDeadlineMs: form.roundDeadlineMs,
    localEpochs: form.localEpochs,
    batchSize: form.batchSize,
    learningRate: form.learningRate,
    maxUpdateBytes: form.maxUpdateBytes,
    evaluation: { probeExamples: form.probeExamples, testExamples: Object.keys(test).length > 0 ? form.testExamples : 0 },
  };
  return { task, files };
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** What the form reads off a chosen `model.json`. */
export interface EncoderOutline {
  /** The input shape without the batch dimension. */
  readonly inputShape: readonly number[];
  /** Dense and 1×1 Conv2D layers, in order: the layers that can take adapters. */
  readonly adapterLayers: readonly string[];
  /** Weight files the model names (relative to it). */
  readonly weightFiles: readonly string[];
}

interface LayerJson {
  readonly class_name?: string;
  readonly config?: {
    readonly name?: string;
    readonly kernel_size?: readonly number[];
    readonly strides?: readonly number[];
    readonly batch_input_shape?: readonly (number | null)[];
  };
}

/** Reads a TF.js LayersModel `model.json`; throws an Error saying what is missing. */
export function outlineEncoder(text: string): EncoderOutline {
  let json: { modelTopology?: { config?: { layers?: LayerJson[] } | LayerJson[] }; weightsManifest?: { paths?: string[] }[] };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new Error('model.json is not JSON');
  }
  const config = json.modelTopology?.config;
  const layers: LayerJson[] = Array.isArray(config) ? config : (config?.layers ?? []);
  if (layers.length === 0 || !Array.isArray(json.weightsManifest)) throw new Error('model.json is not a TF.js LayersModel (no layers or no weightsManifest)');
  const shaped = layers.find((l) => l.config?.batch_input_shape);
  const inputShape = (shaped?.config?.batch_input_shape ?? []).slice(1).map((d) => d ?? 0);
  const adapterLayers = layers
    .filter((l) => {
      if (l.class_name === 'Dense') return true;
      if (l.class_name !== 'Conv2D') return false;
      return (l.config?.kernel_size ?? []).every((k) => k === 1) && (l.config?.strides ?? [1]).every((s) => s === 1);
    })
    .map((l) => l.config?.name ?? '')
    .filter((n) => n !== '');
  const weightFiles = json.weightsManifest.flatMap((g) => g.paths ?? []).map((p) => p.replace(/^\.\//, ''));
  return { inputShape, adapterLayers, weightFiles };
}

/** Problems the task-file schema finds in `body.task`, as `path: message` lines (none: it passes); the coordinator then checks its files too. */
export function checkNewTask(body: NewTaskBody): string[] {
  const result = taskSchema.safeParse(body.task);
  if (result.success) return [];
  return result.error.issues.map((issue) => {
    const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
    return `${path || '(root)'}: ${issue.message}`;
  });
}
