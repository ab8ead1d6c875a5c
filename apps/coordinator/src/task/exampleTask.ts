/**
 * A complete custom task folder, generated: what `pnpm task create <dir>` writes for a researcher to
 * start from, and what tests and the headless simulation run. Everything is made here from a seed —
 * frozen encoders saved in TF.js's LayersModel format (architectures and input sizes unlike the
 * demo's: 32×32 RGB images, 12-d word vectors, 8 kHz log-mel audio), a word-vector table, and a
 * synthetic five-class "shapes" dataset in the formats the datasets package reads (class-folder PNGs,
 * a CSV of captions, class-folder WAVs) — split into the server's probe and test data and one folder
 * of own files per volunteer.
 *
 * The task file it writes is commented field by field; replacing the encoders and data with one's own
 * (and the classes, input specs and adapter layers with theirs) makes a new task.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createRng, crc32 } from '@chorus/fl-core';
import type { Rng } from '@chorus/fl-core';
import { fileSystemHandler } from '@chorus/models/node';
import type { Modality } from '@chorus/protocol';

/** The example's classes, in id order. */
export const EXAMPLE_CLASSES = ['circle', 'square', 'triangle', 'cross', 'ring'] as const;

/** Options of {@link writeExampleTask}. */
export interface ExampleTaskOptions {
  /** Task id; default `shapes`. */
  readonly id?: string;
  /** Modalities of the task; default image and text. */
  readonly modalities?: readonly Modality[];
  /** Volunteers' folders of own files (each holds one modality, dealt in turn); default 4. */
  readonly numClients?: number;
  /** Examples per class in the server's probe data, in its test data, and in each volunteer's folder; default 12, 20, 10. */
  readonly perClass?: { readonly probe?: number; readonly test?: number; readonly client?: number };
  /** Rounds of the task; default 5. */
  readonly rounds?: number;
  /** Seed of the encoders' weights and of the data; default 7. */
  readonly seed?: number;
}

/** What {@link writeExampleTask} wrote. */
export interface ExampleTask {
  readonly dir: string;
  readonly taskFile: string;
  /** Each volunteer's folder of own files (`<modality>/…` inside). */
  readonly clientDirs: readonly string[];
  /** The modality each volunteer's folder holds. */
  readonly clientModalities: readonly Modality[];
}

const IMAGE_SIDE = 32;
const WORD_DIM = 12;
const AUDIO = { sampleRate: 8000, clipSamples: 4000, frameLength: 256, hopLength: 128, fftLength: 256, numMels: 24 } as const;
const AUDIO_FRAMES = 1 + Math.floor((AUDIO.clipSamples - AUDIO.frameLength) / AUDIO.hopLength);

// Words of the captions: each class has its name and a describing word; the rest are shared by all.
const CLASS_WORDS: Readonly<Record<(typeof EXAMPLE_CLASSES)[number], readonly [string, string]>> = {
  circle: ['circle', 'round'],
  square: ['square', 'boxy'],
  triangle: ['triangle', 'pointed'],
  cross: ['cross', 'crossed'],
  ring: ['ring', 'hollow'],
};
const SHARED_WORDS = ['a', 'the', 'small', 'large', 'red', 'green', 'blue', 'shape', 'on', 'left', 'right', 'picture', 'of', 'drawn'];

const glorot = (seed: number): ReturnType<typeof tf.initializers.glorotUniform> => tf.initializers.glorotUniform({ seed });

/** An integer in [0, n) from `rng`. */
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);

/** The example's frozen encoders (plain TF.js layers, loadable by a bare `tf.loadLayersModel`). */
export function buildExampleEncoder(modality: Modality, seed: number): tf.Sequential {
  const model = tf.sequential({ name: `${modality}_base` });
  if (modality === 'image') {
    model.add(
      tf.layers.conv2d({
        name: 'conv_a',
        inputShape: [IMAGE_SIDE, IMAGE_SIDE, 3],
        filters: 8,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: glorot(seed),
      }),
    );
    model.add(
      tf.layers.conv2d({ name: 'conv_b', filters: 16, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: glorot(seed + 1) }),
    );
    model.add(tf.layers.conv2d({ name: 'mix', filters: 16, kernelSize: 1, activation: 'relu', kernelInitializer: glorot(seed + 2) }));
    model.add(tf.layers.flatten({ name: 'flatten' }));
  } else if (modality === 'text') {
    model.add(tf.layers.dense({ name: 'project', inputShape: [WORD_DIM], units: 24, activation: 'tanh', kernelInitializer: glorot(seed) }));
  } else {
    model.add(tf.layers.flatten({ name: 'flatten', inputShape: [AUDIO_FRAMES, AUDIO.numMels] }));
  }
  model.add(tf.layers.dense({ name: 'hidden', units: 32, activation: 'relu', kernelInitializer: glorot(seed + 3) }));
  model.add(tf.layers.dense({ name: 'embedding', units: 16, activation: 'relu', kernelInitializer: glorot(seed + 4) }));
  return model;
}

/** Layers of {@link buildExampleEncoder} that take adapters. */
const EXAMPLE_ADAPTERS: Readonly<Record<Modality, readonly string[]>> = {
  image: ['mix', 'hidden', 'embedding'],
  text: ['hidden', 'embedding'],
  audio: ['hidden', 'embedding'],
};

/** A PNG of RGB pixels (8-bit, no filtering), as any image tool would read it. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Uint8Array {
  const chunk = (type: string, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8);
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (1 + width * 3) + 1);
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A mono 16-bit PCM WAV of samples in [-1, 1]. */
export function encodeWav(samples: Float32Array, sampleRate: number): Uint8Array {
  const out = new Uint8Array(44 + samples.length * 2);
  const v = new DataView(out.buffer);
  const text = (offset: number, s: string): void => out.set(new TextEncoder().encode(s), offset);
  text(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  text(36, 'data');
  v.setUint32(40, samples.length * 2, true);
  samples.forEach((s, i) => v.setInt16(44 + i * 2, Math.round(Math.max(-1, Math.min(1, s)) * 32767), true));
  return out;
}

/** A 32×32 RGB picture of class `label`: the shape at a jittered place and size, in a random colour, over noise. */
function drawShape(label: number, rng: Rng): Uint8Array {
  const rgb = new Uint8Array(IMAGE_SIDE * IMAGE_SIDE * 3);
  const colour = [60 + int(rng, 196), 60 + int(rng, 196), 60 + int(rng, 196)];
  const cx = 12 + rng() * 8;
  const cy = 12 + rng() * 8;
  const r = 7 + rng() * 4;
  for (let y = 0; y < IMAGE_SIDE; y++) {
    for (let x = 0; x < IMAGE_SIDE; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const d = Math.hypot(dx, dy);
      const inside =
        label === 0
          ? d <= r
          : label === 1
            ? Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85
            : label === 2
              ? dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= (dy + r) * 0.6
              : label === 3
                ? (Math.abs(dx) <= r * 0.3 && Math.abs(dy) <= r) || (Math.abs(dy) <= r * 0.3 && Math.abs(dx) <= r)
                : d <= r && d >= r * 0.6;
      for (let k = 0; k < 3; k++) {
        const noise = int(rng, 40);
        rgb[(y * IMAGE_SIDE + x) * 3 + k] = inside ? Math.min(255, colour[k]! + noise) : noise;
      }
    }
  }
  return rgb;
}

/** A caption of class `label`: its name or its describing word (or, one time in ten, neither) among shared words. */
function caption(label: number, rng: Rng): string {
  const [name, describing] = CLASS_WORDS[EXAMPLE_CLASSES[label]!];
  const pick = (): string => SHARED_WORDS[int(rng, SHARED_WORDS.length)]!;
  const u = rng();
  const key = u < 0.6 ? name : u < 0.9 ? describing : pick();
  const words = [pick(), pick(), key, pick(), pick()];
  return words.join(' ');
}

/** Half a second of class `label`'s tone (its own pitch, with a random phase and level) in noise. */
function tone(label: number, rng: Rng): Float32Array {
  const hz = 300 + 250 * label + rng() * 40;
  const level = 0.3 + rng() * 0.3;
  const phase = rng() * 2 * Math.PI;
  const out = new Float32Array(AUDIO.clipSamples);
  for (let i = 0; i < out.length; i++) out[i] = level * Math.sin(phase + (2 * Math.PI * hz * i) / AUDIO.sampleRate) + (rng() - 0.5) * 0.2;
  return out;
}

/** Writes `perClass` examples of `modality` under `dir` (class folders of PNG/WAV, or `<dir>/text.csv`). */
function writeExamples(dir: string, modality: Modality, perClass: number, rng: Rng): void {
  if (modality === 'text') {
    mkdirSync(dir, { recursive: true });
    const rows = ['text,label'];
    for (let i = 0; i < perClass; i++)
      for (let label = 0; label < EXAMPLE_CLASSES.length; label++) rows.push(`${caption(label, rng)},${EXAMPLE_CLASSES[label]}`);
    writeFileSync(join(dir, 'text.csv'), `${rows.join('\n')}\n`);
    return;
  }
  EXAMPLE_CLASSES.forEach((name, label) => {
    const folder = join(dir, name);
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const file = join(folder, `${String(i).padStart(3, '0')}.${modality === 'image' ? 'png' : 'wav'}`);
      writeFileSync(file, modality === 'image' ? encodePng(IMAGE_SIDE, IMAGE_SIDE, drawShape(label, rng)) : encodeWav(tone(label, rng), AUDIO.sampleRate));
    }
  });
}

/** The word-vector table: every caption word with a seeded 12-d vector, as `word v1 … v12` lines. */
function vocabularyText(rng: Rng): string {
  const words = [...new Set([...Object.values(CLASS_WORDS).flat(), ...SHARED_WORDS])];
  return `${words.map((w) => `${w} ${Array.from({ length: WORD_DIM }, () => (rng() * 2 - 1).toFixed(4)).join(' ')}`).join('\n')}\n`;
}

function dataLines(split: string, modalities: readonly Modality[]): string[] {
  return [
    `  ${split}:`,
    ...modalities.map((m) =>
      m === 'text' ? `    text: { path: data/${split}/text/text.csv, textColumn: text, labelColumn: label }` : `    ${m}: data/${split}/${m}`,
    ),
  ];
}

function taskYaml(id: string, modalities: readonly Modality[], rounds: number): string {
  const encoder: Record<Modality, string[]> = {
    image: [
      '    image:',
      '      path: encoders/image # a folder holding model.json and the weight files it names',
      `      adapters: [${EXAMPLE_ADAPTERS.image.join(', ')}] # Dense or 1×1 Conv2D layers that take LoRA adapters`,
      '      # Images are resized to height × width, scaled to [0, 1], then normalised per channel as (x − mean) / std.',
      `      input: { height: ${IMAGE_SIDE}, width: ${IMAGE_SIDE}, channels: 3, mean: [0.3, 0.3, 0.3], std: [0.3, 0.3, 0.3] }`,
    ],
    text: [
      '    text:',
      '      path: encoders/text # its input is the mean of the text’s word vectors',
      `      adapters: [${EXAMPLE_ADAPTERS.text.join(', ')}]`,
      '      input: { maxTokens: 12 } # words kept per text (unknown words are dropped)',
      '      vocabulary: vocabulary.txt # GloVe-style lines: word v1 … vd',
    ],
    audio: [
      '    audio:',
      '      path: encoders/audio # its input is a [frames, numMels] log-mel spectrogram',
      `      adapters: [${EXAMPLE_ADAPTERS.audio.join(', ')}]`,
      `      input: { sampleRate: ${AUDIO.sampleRate}, clipSamples: ${AUDIO.clipSamples}, frameLength: ${AUDIO.frameLength}, hopLength: ${AUDIO.hopLength}, fftLength: ${AUDIO.fftLength}, numMels: ${AUDIO.numMels} }`,
    ],
  };
  return [
    '# A custom Chorus task: the researcher’s own frozen encoders, classes and server-side data.',
    '# Paths are relative to this file. Check the folder with `pnpm task check <folder>`; serve it with',
    '# `pnpm start --task <folder>`. Volunteers choose their own files on the join page.',
    `id: ${id}`,
    'name: Shapes (an example custom task)',
    '# Class names in id order; class folders and label columns of every data file use these names.',
    `classes: [${EXAMPLE_CLASSES.join(', ')}]`,
    'dataset:',
    '  name: shapes',
    `  modalities: [${modalities.join(', ')}]`,
    '  # The server’s data: probe examples score each update for trust (and train FLTrust’s root update);',
    '  # test examples evaluate the global model after every round.',
    ...dataLines('probe', modalities),
    ...dataLines('test', modalities),
    'model:',
    '  base: custom # the encoders below; `chorus-digits-v1` is the built-in demo base',
    '  encoders:',
    ...modalities.flatMap((m) => encoder[m]),
    '  adapterRank: 4',
    '  adapterAlpha: 8',
    '  namConcepts: 6 # concepts per modality the NAM head reads',
    'strategy:',
    '  name: fedmm-x # trust-aware aggregation (FedMM-X) around FedAvg',
    `rounds: ${rounds}`,
    'clientsPerRound: 2',
    'minClients: 2',
    'roundDeadlineMs: 120000',
    'localEpochs: 2',
    'batchSize: 16',
    'learningRate: 0.01',
    'maxUpdateBytes: 4000000',
    'evaluation:',
    '  probeExamples: 40',
    '  testExamples: 100',
    '',
  ].join('\n');
}

/** Writes the example task folder under `dir` (see the module comment); returns where everything went. */
export async function writeExampleTask(dir: string, options: ExampleTaskOptions = {}): Promise<ExampleTask> {
  const id = options.id ?? 'shapes';
  const modalities = options.modalities ?? ['image', 'text'];
  const seed = options.seed ?? 7;
  const perClass = { probe: options.perClass?.probe ?? 12, test: options.perClass?.test ?? 20, client: options.perClass?.client ?? 10 };
  const numClients = options.numClients ?? 4;
  mkdirSync(dir, { recursive: true });
  for (const [i, m] of modalities.entries()) {
    const encoder = buildExampleEncoder(m, seed * 100 + i * 10);
    try {
      await encoder.save(fileSystemHandler(join(dir, 'encoders', m)));
    } finally {
      encoder.dispose();
    }
  }
  if (modalities.includes('text')) writeFileSync(join(dir, 'vocabulary.txt'), vocabularyText(createRng(seed)));
  const rng = createRng(seed + 1);
  for (const m of modalities) {
    writeExamples(join(dir, 'data', 'probe', m), m, perClass.probe, rng);
    writeExamples(join(dir, 'data', 'test', m), m, perClass.test, rng);
  }
  const clientDirs: string[] = [];
  const clientModalities: Modality[] = [];
  for (let i = 0; i < numClients; i++) {
    const m = modalities[i % modalities.length]!;
    const clientDir = join(dir, 'clients', String(i));
    writeExamples(join(clientDir, m), m, perClass.client, rng);
    clientDirs.push(clientDir);
    clientModalities.push(m);
  }
  const taskFile = join(dir, 'task.yaml');
  writeFileSync(taskFile, taskYaml(id, modalities, options.rounds ?? 5));
  return { dir, taskFile, clientDirs, clientModalities };
}
