/**
 * Labelled audio: WAV files in class folders (`<class>/<clip>.wav`, as in Speech Commands), or a
 * folder of WAVs with a labels CSV naming each file's class (as in ESC-50's `meta/esc50.csv`).
 * Every clip comes back mono at one sample rate (wav.ts); a bad clip is skipped, the rest load.
 */

import { DatasetError, skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import { classIndex, loadClassFolders, sortedClassNames } from './labels.js';
import { resample } from './resample.js';
import { DEFAULT_MAX_FILE_BYTES, decodeUtf8, fileMatcher, isClutter, readSource } from './source.js';
import type { SourceFile } from './source.js';
import { checkTextColumns, parseTextTable } from './textTable.js';
import { TARGET_SAMPLE_RATE, decodeWav, mixToMono } from './wav.js';

/** Options shared by the audio loaders. */
export interface AudioOptions {
  /** The task's classes, in id order; clips with other labels are skipped as LOADER_BAD_LABEL. */
  readonly classNames?: readonly string[];
  /** Output sample rate in Hz. Default {@link TARGET_SAMPLE_RATE}. */
  readonly sampleRate?: number;
  /** Files larger than this are skipped unread. Default {@link DEFAULT_MAX_FILE_BYTES}. */
  readonly maxFileBytes?: number;
}

/** One loaded clip. */
export interface AudioSample {
  readonly path: string;
  readonly label: number;
  /** Mono samples in [-1, 1] at the result's `sampleRate`. */
  readonly samples: Float32Array;
}

/** What the audio loaders hand back. */
export interface LoadedAudio {
  readonly samples: AudioSample[];
  readonly classNames: string[];
  readonly sampleRate: number;
  readonly skipped: Skipped[];
}

/** Reads one WAV file and brings it to mono at `sampleRate`; throws a DatasetError on any problem. */
export async function loadWavFile(
  file: SourceFile,
  sampleRate: number = TARGET_SAMPLE_RATE,
  maxFileBytes: number = DEFAULT_MAX_FILE_BYTES,
): Promise<Float32Array> {
  const decoded = decodeWav(await readSource(file, maxFileBytes));
  return resample(mixToMono(decoded.channels), decoded.sampleRate, sampleRate);
}

function checkRate(sampleRate: number): void {
  if (!Number.isInteger(sampleRate) || sampleRate < 1000 || sampleRate > 384_000) {
    throw new DatasetError('LOADER_BAD_CONFIG', `sampleRate must be an integer in 1000‥384000 Hz, got ${sampleRate}`);
  }
}

/** Loads WAV clips from class folders: the label is the name of the folder directly holding the file. */
export async function loadAudioFolder(files: readonly SourceFile[], options: AudioOptions = {}): Promise<LoadedAudio> {
  const sampleRate = options.sampleRate ?? TARGET_SAMPLE_RATE;
  checkRate(sampleRate);
  const loaded = await loadClassFolders(files, options.classNames, async (file) => ({ samples: await loadWavFile(file, sampleRate, options.maxFileBytes) }));
  return { ...loaded, sampleRate };
}

/** Options for {@link loadLabelledAudio}. */
export interface LabelledAudioOptions extends AudioOptions {
  /** Labels-CSV column holding the file name (header name, or 0-based index without a header). */
  readonly fileColumn: string | number;
  /** Labels-CSV column holding the class name. */
  readonly labelColumn: string | number;
  /** Whether the labels CSV has a header row. Default true. */
  readonly header?: boolean;
}

/**
 * Loads the WAVs a labels CSV lists. A row whose file is not among `audioFiles` is skipped as
 * LOADER_MISSING; audio files the CSV does not list are ignored. A labels file that cannot be
 * read at all is reported in `skipped` and nothing loads.
 */
export async function loadLabelledAudio(labelsFile: SourceFile, audioFiles: readonly SourceFile[], options: LabelledAudioOptions): Promise<LoadedAudio> {
  const sampleRate = options.sampleRate ?? TARGET_SAMPLE_RATE;
  checkRate(sampleRate);
  const tableOptions = { textColumn: options.fileColumn, labelColumn: options.labelColumn, header: options.header ?? true, format: 'csv' as const };
  checkTextColumns(tableOptions);
  let rows;
  const skipped: Skipped[] = [];
  try {
    const parsed = parseTextTable(decodeUtf8(await readSource(labelsFile, DEFAULT_MAX_FILE_BYTES)), labelsFile.path, tableOptions);
    rows = parsed.rows;
    skipped.push(...parsed.skipped);
  } catch (err) {
    return { samples: [], classNames: options.classNames ? [...options.classNames] : [], sampleRate, skipped: [skippedFrom(labelsFile.path, err)] };
  }
  const named = rows.filter((r) => r.text.trim() !== '' && r.labelName.trim() !== '');
  for (const r of rows) if (!named.includes(r)) skipped.push({ path: r.path, code: 'LOADER_BAD_LABEL', message: `${r.path}: file name or label is empty` });
  const classNames = options.classNames ? [...options.classNames] : sortedClassNames(named.map((r) => r.labelName.trim()));
  const ids = classIndex(classNames);
  const find = fileMatcher(audioFiles.filter((f) => !isClutter(f.path)));
  const samples: AudioSample[] = [];
  for (const row of named) {
    const name = row.text.trim();
    const file = find(name);
    const label = ids.get(row.labelName.trim());
    if (label === undefined) {
      skipped.push({
        path: row.path,
        code: 'LOADER_BAD_LABEL',
        message: `${row.path}: label ${JSON.stringify(row.labelName)} is not one of the task's classes`,
      });
    } else if (file === undefined) {
      skipped.push({ path: name, code: 'LOADER_MISSING', message: `${name}: listed at ${row.path} but not among the files given (or ambiguous)` });
    } else {
      try {
        samples.push({ path: file.path, label, samples: await loadWavFile(file, sampleRate, options.maxFileBytes) });
      } catch (err) {
        skipped.push(skippedFrom(file.path, err));
      }
    }
  }
  return { samples, classNames, sampleRate, skipped };
}
