/**
 * A volunteer's own files, loaded in the tab through the datasets package's loaders, and the summary
 * the data chooser shows: how many samples loaded per class, and every file (or row) left out with
 * its code and reason. The samples stay in memory here for the client runtime; nothing is uploaded.
 */
import { loadAudioFolder, loadImageFolder, loadTextFiles } from '@chorus/datasets';
import type { AudioSample, ImageSample, ImageTarget, Modality, Skipped, SourceFile, TextSample } from '@chorus/datasets';

/** The demo task's image shape (28×28 grey, floats in [0, 1]). */
export const DEMO_IMAGE_TARGET: ImageTarget = { height: 28, width: 28, channels: 1, dtype: 'float32' };

/** What to load and how; `classNames` fixes label ids when the task names its classes. */
export type DataSpec =
  | { readonly modality: 'image'; readonly target: ImageTarget; readonly classNames?: readonly string[] }
  | { readonly modality: 'text'; readonly textColumn: string | number; readonly labelColumn: string | number; readonly classNames?: readonly string[] }
  | { readonly modality: 'audio'; readonly classNames?: readonly string[] };

/** Loaded samples of one modality. */
export type LoadedSamples =
  | { readonly modality: 'image'; readonly samples: readonly ImageSample[] }
  | { readonly modality: 'text'; readonly samples: readonly TextSample[] }
  | { readonly modality: 'audio'; readonly samples: readonly AudioSample[] };

/** What the data chooser reports after a load. */
export interface DataSummary {
  readonly modality: Modality;
  /** Files offered (after the loader's own clutter filter, so `.DS_Store` does not count). */
  readonly numFiles: number;
  readonly numLoaded: number;
  readonly classNames: readonly string[];
  /** Loaded samples per class id. */
  readonly perClass: readonly number[];
  /** Every file or row left out, with its coded reason, in the order the loader met them. */
  readonly skipped: readonly Skipped[];
  readonly loaded: LoadedSamples;
}

function perClassCounts(labels: readonly number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const label of labels) if (label >= 0 && label < numClasses) counts[label]!++;
  return counts;
}

/** Loads `files` as `spec` says and summarises the result; a bad file is skipped and reported, never fatal. */
export async function loadOwnData(files: readonly SourceFile[], spec: DataSpec): Promise<DataSummary> {
  const classNames = spec.classNames;
  let loaded: LoadedSamples;
  let names: string[];
  let skipped: Skipped[];
  if (spec.modality === 'image') {
    const result = await loadImageFolder(files, { target: spec.target, ...(classNames ? { classNames } : {}) });
    loaded = { modality: 'image', samples: result.samples };
    names = result.classNames;
    skipped = result.skipped;
  } else if (spec.modality === 'text') {
    const result = await loadTextFiles(files, { textColumn: spec.textColumn, labelColumn: spec.labelColumn, ...(classNames ? { classNames } : {}) });
    loaded = { modality: 'text', samples: result.samples };
    names = result.classNames;
    skipped = result.skipped;
  } else {
    const result = await loadAudioFolder(files, classNames ? { classNames } : {});
    loaded = { modality: 'audio', samples: result.samples };
    names = result.classNames;
    skipped = result.skipped;
  }
  const labels = loaded.samples.map((s) => s.label);
  return {
    modality: spec.modality,
    numFiles: files.length,
    numLoaded: loaded.samples.length,
    classNames: names,
    perClass: perClassCounts(labels, names.length),
    skipped,
    loaded,
  };
}
