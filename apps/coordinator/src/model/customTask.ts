/**
 * The server's side of a custom task (`model.base: custom`): its own encoders, loaded from the
 * task's folder through the same code clients use (`loadTaskEncoder`, which checks every file's
 * SHA-256 and the encoder's input against the input spec), its LoRA targets checked on each
 * encoder, and its probe and test data read by the datasets package's loaders and preprocessed by
 * `@chorus/models`' task inputs — the functions the tab and the headless client call.
 *
 * Every refusal is `TASK_INVALID` naming the task-file field and the path on disk: a missing or
 * altered file, an encoder whose input does not match the spec, an adapter target that is not a
 * Dense / 1×1 Conv2D layer, a data file the loaders cannot read, a class the task does not list.
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { loadAudioFolder, loadImageFolder, loadTextFiles } from '@chorus/datasets';
import type { SourceFile } from '@chorus/datasets';
import { sourceFromPath, sourcesFromDirectory } from '@chorus/datasets/node';
import {
  TextEmbedder,
  applyLora,
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
import type { Modality, MultimodalBatch, Vocabulary } from '@chorus/models';
import { MODALITIES } from '@chorus/protocol';
import type { TaskSpec } from '@chorus/protocol';
import { TaskFileError } from '../task/loadTask.js';
import type { TaskProblem } from '../task/loadTask.js';
import { describeTaskFiles } from '../task/taskFiles.js';
import type { CustomData, TaskConfig } from '@chorus/protocol';

/** A custom task's frozen parts, loaded and checked. */
export interface CustomParts {
  readonly spec: TaskSpec;
  readonly bases: Partial<Record<Modality, tf.LayersModel>>;
  /** LoRA targets by modality. */
  readonly targets: Partial<Record<Modality, readonly string[]>>;
  readonly vocabulary: Vocabulary | null;
  readonly embedder: TextEmbedder | null;
}

function refuse(task: TaskConfig, problems: TaskProblem[]): never {
  throw new TaskFileError(`task ${task.id}`, problems);
}

/** Loads and checks a custom task's encoders and vocabulary; throws `TASK_INVALID` naming the field. Nothing stays allocated on failure. */
export async function loadCustomParts(task: TaskConfig): Promise<CustomParts> {
  const { spec, onDisk } = describeTaskFiles(task);
  const encoders = task.model.encoders!;
  let vocabulary: Vocabulary | null = null;
  if (encoders.text) {
    const path = encoders.text.vocabulary;
    try {
      vocabulary = parseVocabulary(await readFile(path, 'utf8'), path);
    } catch (err) {
      refuse(task, [{ path: 'model.encoders.text.vocabulary', message: (err as Error).message }]);
    }
  }
  const bases: Partial<Record<Modality, tf.LayersModel>> = {};
  const targets: Partial<Record<Modality, readonly string[]>> = {};
  try {
    for (const m of MODALITIES as readonly Modality[]) {
      const declared = spec.encoders?.[m];
      if (!declared) continue;
      const bytes = new Map<string, Uint8Array>();
      for (const f of declared.files) bytes.set(f.path, new Uint8Array(await readFile(onDisk.get(f.path)!)));
      const expected = encoderInputShape(m, spec.inputs ?? {}, vocabulary?.dim ?? 0);
      try {
        bases[m] = await loadTaskEncoder(m, { declared: declared.files, bytes }, expected);
      } catch (err) {
        if (!isModelsError(err)) throw err;
        refuse(task, [{ path: `model.encoders.${m}.path`, message: `${encoders[m]!.path}: ${err.message}` }]);
      }
      // Adapters are checked on a throwaway copy, so a bad target names its layer before any model is built.
      try {
        applyLora(bases[m]!, { targets: declared.adapters, rank: task.model.adapterRank, alpha: task.model.adapterAlpha }).dispose();
      } catch (err) {
        if (!isModelsError(err)) throw err;
        refuse(task, [{ path: `model.encoders.${m}.adapters`, message: err.message }]);
      }
      targets[m] = declared.adapters;
    }
  } catch (err) {
    for (const base of Object.values(bases)) base.dispose();
    throw err;
  }
  const embedder = vocabulary ? new TextEmbedder(vocabulary.vectors, vocabulary.dim) : null;
  return { spec, bases, targets, vocabulary, embedder };
}

/** One raw example of a custom task's server data. */
export type RawExample =
  | { readonly modality: 'image'; readonly pixels: Float32Array; readonly label: number; readonly path: string }
  | { readonly modality: 'text'; readonly text: string; readonly label: number; readonly path: string }
  | { readonly modality: 'audio'; readonly clip: Float32Array; readonly label: number; readonly path: string };

async function sourcesAt(path: string): Promise<SourceFile[]> {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ? [await sourceFromPath(path)] : sourcesFromDirectory(path);
}

/**
 * Reads a custom task's probe or test data (`dataset.<split>`) with the datasets loaders, in path
 * order, modality by modality. Throws `TASK_INVALID` for a folder that cannot be read, any file or
 * row the loaders leave out (a class the task does not list, a corrupt file), or no example at all.
 */
export async function loadCustomData(task: TaskConfig, split: 'probe' | 'test', spec: TaskSpec): Promise<RawExample[]> {
  const data: CustomData | undefined = task.dataset[split];
  if (!data) return [];
  const classNames = task.classes!;
  const out: RawExample[] = [];
  const problems: TaskProblem[] = [];
  const read = async <T extends { skipped: readonly { message: string }[] }>(
    field: string,
    path: string,
    load: (files: SourceFile[]) => Promise<T>,
  ): Promise<T | null> => {
    let loaded: T;
    try {
      loaded = await load(await sourcesAt(path));
    } catch (err) {
      problems.push({ path: field, message: `${path}: ${(err as Error).message}` });
      return null;
    }
    for (const s of loaded.skipped.slice(0, 5)) problems.push({ path: field, message: `${path}: ${s.message}` });
    if (loaded.skipped.length > 5) problems.push({ path: field, message: `${path}: and ${loaded.skipped.length - 5} more files or rows left out` });
    return loaded;
  };
  if (data.image !== undefined && spec.inputs?.image) {
    const target = imageTargetOf(spec.inputs.image);
    const loaded = await read(`dataset.${split}.image`, data.image, (files) => loadImageFolder(files, { target, classNames }));
    for (const s of loaded?.samples ?? []) out.push({ modality: 'image', pixels: s.pixels as Float32Array, label: s.label, path: s.path });
  }
  if (data.text !== undefined) {
    const text = data.text;
    const loaded = await read(`dataset.${split}.text`, text.path, (files) =>
      loadTextFiles(files, { textColumn: text.textColumn, labelColumn: text.labelColumn, classNames }),
    );
    for (const s of loaded?.samples ?? []) out.push({ modality: 'text', text: s.text, label: s.label, path: s.path });
  }
  if (data.audio !== undefined && spec.inputs?.audio) {
    const sampleRate = spec.inputs.audio.sampleRate;
    const loaded = await read(`dataset.${split}.audio`, data.audio, (files) => loadAudioFolder(files, { classNames, sampleRate }));
    for (const s of loaded?.samples ?? []) out.push({ modality: 'audio', clip: s.samples, label: s.label, path: s.path });
  }
  if (problems.length === 0 && out.length === 0) problems.push({ path: `dataset.${split}`, message: 'holds no example' });
  if (problems.length > 0) refuse(task, problems);
  return out;
}

/**
 * Model inputs of `examples` in chunks of at most `chunkSize`, each chunk holding one modality (the
 * examples' order is kept within a modality; modalities follow `MODALITIES`' order). Returns the
 * chunks and the labels in chunk order.
 */
export async function customBatches(
  examples: readonly RawExample[],
  parts: Pick<CustomParts, 'spec' | 'vocabulary'>,
  chunkSize: number,
): Promise<{ chunks: MultimodalBatch[]; labels: Int32Array }> {
  const chunks: MultimodalBatch[] = [];
  const labels: number[] = [];
  const inputs = parts.spec.inputs ?? {};
  const tokenizer = parts.vocabulary ? vocabularyTokenizer(parts.vocabulary) : null;
  for (const m of MODALITIES as readonly Modality[]) {
    const own = examples.filter((e) => e.modality === m);
    for (let start = 0; start < own.length; start += chunkSize) {
      const part = own.slice(start, start + chunkSize);
      const n = part.length;
      const batch: MultimodalBatch = {
        labels: tf.tensor1d(
          Int32Array.from(part, (e) => e.label),
          'int32',
        ),
      };
      if (m === 'image') {
        const spec = inputs.image!;
        batch.image = tf.tensor4d(
          imageInputs(
            part.map((e) => (e as Extract<RawExample, { modality: 'image' }>).pixels),
            spec,
          ),
          [n, spec.height, spec.width, spec.channels],
        );
      } else if (m === 'text') {
        const spec = inputs.text!;
        const ids = textInputs(
          part.map((e) => (e as Extract<RawExample, { modality: 'text' }>).text),
          tokenizer!,
          spec,
        );
        batch.text = tf.tensor2d(ids, [n, spec.maxTokens], 'int32');
      } else {
        const spec = inputs.audio!;
        const values = await audioInputs(
          part.map((e) => (e as Extract<RawExample, { modality: 'audio' }>).clip),
          spec,
        );
        batch.audio = tf.tensor3d(values, [n, values.length / n / spec.numMels, spec.numMels]);
      }
      chunks.push(batch);
      labels.push(...part.map((e) => e.label));
    }
  }
  return { chunks, labels: Int32Array.from(labels) };
}
