/**
 * A task's own encoders and preprocessing: the one place where raw samples (decoded images, texts,
 * mono clips) become model inputs under a task's input spec (`@chorus/protocol`'s `InputSpecs`), and
 * where an encoder's files become a frozen base. The coordinator's evaluator, the headless client
 * and the tab all call these, so every party feeds a task's encoders the same numbers.
 *
 * Files arrive as bytes with the SHA-256 the task declared; {@link loadTaskEncoder} checks every
 * digest before TF.js reads anything, then checks the base's input against the spec, so a wrong or
 * tampered file is refused with a message naming it.
 */
import * as tf from '@tensorflow/tfjs';
import { sha256Hex } from '@chorus/datasets';
import type { ImageTarget } from '@chorus/datasets';
import type { AudioInputSpec, ImageInputSpec, TaskFile, TextInputSpec } from '@chorus/protocol';
import { chainLayers, inputSpec } from './adapt.js';
import { frameCount, LogMelFrontend } from './audio.js';
import { WordTokenizer, type Modality } from './encoders.js';
import { ModelsError } from './errors.js';

/** The loaders' target for images of `spec`: resized, channels converted, scaled to [0, 1]. */
export function imageTargetOf(spec: ImageInputSpec): ImageTarget {
  return { height: spec.height, width: spec.width, channels: spec.channels, dtype: 'float32' };
}

/** Size of one image of `spec` (height · width · channels). */
export function imageSize(spec: ImageInputSpec): number {
  return spec.height * spec.width * spec.channels;
}

/**
 * Model inputs [n, h, w, c] of images already resized to `spec` and scaled to [0, 1] (the loaders'
 * {@link imageTargetOf} output), normalised per channel as (x − mean) / std. Throws
 * `MODELS_BAD_INPUT` for an image of the wrong size.
 */
export function imageInputs(images: readonly ArrayLike<number>[], spec: ImageInputSpec): Float32Array {
  const size = imageSize(spec);
  const c = spec.channels;
  const out = new Float32Array(images.length * size);
  images.forEach((pixels, i) => {
    if (pixels.length !== size)
      throw new ModelsError('MODELS_BAD_INPUT', `imageInputs: image ${i} has ${pixels.length} values, expected ${spec.height}×${spec.width}×${c} = ${size}`);
    for (let j = 0; j < size; j++) {
      const k = j % c;
      out[i * size + j] = (pixels[j]! - (spec.mean?.[k] ?? 0)) / (spec.std?.[k] ?? 1);
    }
  });
  return out;
}

/** A parsed word-vector table: row 0 is padding (zeros), row i + 1 the i-th word of the file. */
export interface Vocabulary {
  /** Word of each row; row 0 (padding) is the empty string. */
  readonly words: readonly string[];
  /** (words.length) × dim values, row-major. */
  readonly vectors: Float32Array;
  readonly dim: number;
}

/** Most rows a vocabulary file may hold. */
export const MAX_VOCABULARY_ROWS = 500_000;

/**
 * Parses a GloVe-style text file (`word v1 … vd` per line, blank lines ignored). Throws
 * `MODELS_BAD_ARTIFACTS` naming `path` and the line for a ragged or non-numeric row, a repeated
 * word, or an empty table.
 */
export function parseVocabulary(text: string, path: string): Vocabulary {
  const words: string[] = [''];
  const rows: number[][] = [];
  const seen = new Set<string>();
  let dim = 0;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const fail = (why: string): never => {
      throw new ModelsError('MODELS_BAD_ARTIFACTS', `${path}:${i + 1}: ${why}`);
    };
    const parts = line.trim().split(/\s+/);
    const word = parts[0]!;
    const values = parts.slice(1).map(Number);
    if (values.length === 0) fail(`'${word}' has no vector`);
    if (values.some((v) => !Number.isFinite(v))) fail(`'${word}' has a value that is not a finite number`);
    if (dim === 0) dim = values.length;
    else if (values.length !== dim) fail(`'${word}' has ${values.length} values, the first row ${dim}`);
    if (seen.has(word)) fail(`'${word}' appears twice`);
    if (words.length > MAX_VOCABULARY_ROWS) fail(`the table holds more than ${MAX_VOCABULARY_ROWS} words`);
    seen.add(word);
    words.push(word);
    rows.push(values);
  });
  if (rows.length === 0) throw new ModelsError('MODELS_BAD_ARTIFACTS', `${path}: holds no word vectors`);
  const vectors = new Float32Array(words.length * dim);
  rows.forEach((row, i) => vectors.set(row, (i + 1) * dim));
  return { words, vectors, dim };
}

/** The tokenizer of a vocabulary: the task's words, unknown words dropped. */
export function vocabularyTokenizer(vocabulary: Vocabulary): WordTokenizer {
  return new WordTokenizer(vocabulary.words, null);
}

/** Token ids [n, maxTokens] (int32, 0 = padding) of `texts` under `spec`. */
export function textInputs(texts: readonly string[], tokenizer: WordTokenizer, spec: TextInputSpec): Int32Array {
  const out = new Int32Array(texts.length * spec.maxTokens);
  texts.forEach((text, i) => out.set(tokenizer.encode(text, spec.maxTokens), i * spec.maxTokens));
  return out;
}

/** Frames of the log-mel input of `spec`. */
export function audioFrames(spec: AudioInputSpec): number {
  return frameCount(spec.clipSamples, spec.frameLength, spec.hopLength);
}

/**
 * Log-mel inputs [n, frames, numMels] of mono clips in [-1, 1] at `spec.sampleRate`, each cropped or
 * zero-padded to `spec.clipSamples`; computed `chunk` clips at a time, returned as host data.
 */
export async function audioInputs(clips: readonly Float32Array[], spec: AudioInputSpec, chunk = 16): Promise<Float32Array> {
  const frontend = new LogMelFrontend(spec.clipSamples, {
    sampleRate: spec.sampleRate,
    frameLength: spec.frameLength,
    hopLength: spec.hopLength,
    fftLength: spec.fftLength,
    numMels: spec.numMels,
  });
  const rowSize = audioFrames(spec) * spec.numMels;
  const out = new Float32Array(clips.length * rowSize);
  try {
    for (let start = 0; start < clips.length; start += chunk) {
      const part = clips.slice(start, start + chunk);
      const pcm = new Float32Array(part.length * spec.clipSamples);
      part.forEach((clip, i) => pcm.set(clip.subarray(0, spec.clipSamples), i * spec.clipSamples));
      const features = tf.tidy(() => frontend.compute(tf.tensor2d(pcm, [part.length, spec.clipSamples])));
      try {
        out.set(await features.data(), start * rowSize);
      } finally {
        features.dispose();
      }
    }
  } finally {
    frontend.dispose();
  }
  return out;
}

/** The input shape (without batch) a task's encoder for `modality` must take; text encoders take the pooled word vector. */
export function encoderInputShape(modality: Modality, spec: { image?: ImageInputSpec; audio?: AudioInputSpec }, textDim: number): number[] {
  if (modality === 'image') {
    const s = spec.image;
    if (!s) throw new ModelsError('MODELS_BAD_CONFIG', 'encoderInputShape: the task gives no image input spec');
    return [s.height, s.width, s.channels];
  }
  if (modality === 'audio') {
    const s = spec.audio;
    if (!s) throw new ModelsError('MODELS_BAD_CONFIG', 'encoderInputShape: the task gives no audio input spec');
    return [audioFrames(s), s.numMels];
  }
  return [textDim];
}

/** A task encoder's files as the task lists them, with their bytes. */
export interface EncoderFiles {
  /** `model.json` first, then its weight files, each as the task declared it. */
  readonly declared: readonly TaskFile[];
  /** Bytes by declared path. */
  readonly bytes: ReadonlyMap<string, Uint8Array>;
}

/**
 * The frozen base of a task's encoder: checks every file's size and SHA-256 against the declaration,
 * reads `model.json` and the weight files it names (relative to it), checks the model is chain-shaped
 * and takes `expectedInput`, and loads it. Throws `MODELS_BAD_ARTIFACTS` naming the file for a
 * missing, altered or unreadable file, `MODELS_BAD_BASE` for a model of the wrong shape; nothing
 * stays allocated then.
 */
export async function loadTaskEncoder(modality: Modality, files: EncoderFiles, expectedInput: readonly number[]): Promise<tf.LayersModel> {
  const fail = (why: string): never => {
    throw new ModelsError('MODELS_BAD_ARTIFACTS', `the ${modality} encoder: ${why}`);
  };
  for (const file of files.declared) {
    const bytes = files.bytes.get(file.path) ?? fail(`${file.path} was not received`);
    if (bytes.byteLength !== file.bytes) fail(`${file.path} has ${bytes.byteLength} bytes, the task declares ${file.bytes}`);
    const digest = await sha256Hex(bytes);
    if (digest !== file.sha256) fail(`${file.path} has SHA-256 ${digest}, the task declares ${file.sha256}`);
  }
  const modelFile = files.declared[0] ?? fail('the task lists no files');
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(new TextDecoder().decode(files.bytes.get(modelFile.path)!)) as tf.io.ModelJSON;
  } catch (err) {
    return fail(`${modelFile.path} is not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || !json.modelTopology || !Array.isArray(json.weightsManifest))
    fail(`${modelFile.path} is not a TF.js LayersModel (no modelTopology / weightsManifest)`);
  const dir = modelFile.path.includes('/') ? modelFile.path.slice(0, modelFile.path.lastIndexOf('/') + 1) : '';
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const path = dir + p.replace(/^\.\//, '');
      buffers.push(files.bytes.get(path) ?? fail(`${modelFile.path} names the weight file ${path}, which the task does not list`));
    }
    specs.push(...group.weights);
  }
  const total = buffers.reduce((s, b) => s + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: weightData.buffer,
        ...(json.format ? { format: json.format } : {}),
      }),
    );
  } catch (err) {
    return fail(`${modelFile.path} cannot be loaded: ${(err as Error).message}`);
  }
  try {
    chainLayers(model);
    const { shape } = inputSpec(model);
    if (shape.length !== expectedInput.length || shape.some((d, i) => d !== expectedInput[i]))
      throw new ModelsError(
        'MODELS_BAD_BASE',
        `the ${modality} encoder (${modelFile.path}) takes input [${shape.join(', ')}]; the task's input spec gives [${expectedInput.join(', ')}]`,
      );
    if (model.outputs[0]!.shape.length !== 2)
      throw new ModelsError(
        'MODELS_BAD_BASE',
        `the ${modality} encoder (${modelFile.path}) must output [batch, d], got [${model.outputs[0]!.shape.join(', ')}]`,
      );
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
