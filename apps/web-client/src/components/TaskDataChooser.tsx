/**
 * The data chooser of a custom task: the task's classes and the modalities it wants, then the
 * volunteer's own files of one modality (dropped, or picked as a folder or files), loaded in the tab
 * under the task's input spec, with what loaded per class and every file that does not fit, named,
 * with its reason. Nothing is uploaded.
 */
import { useId, useState, type ReactNode } from 'react';
import { loadOwnTaskData, type OwnTaskData } from '@chorus/client';
import type { SourceFile } from '@chorus/datasets';
import type { Vocabulary } from '@chorus/models';
import type { Modality, TaskSpec } from '@chorus/protocol';
import { describeError } from '../lib/errors.js';
import { FileDropZone } from './FileDropZone.js';
import { DataSummaryView } from './DataChooser.js';

/** Own files loaded for a custom task, with how many files were offered. */
export interface LoadedTaskData extends OwnTaskData {
  readonly numFiles: number;
}

/** What each modality's files must look like under `spec`. */
export function taskDataHelp(spec: TaskSpec, modality: Modality): string {
  const example = spec.classes[0] ?? 'class';
  if (modality === 'image') {
    const i = spec.inputs?.image;
    return `PNG or JPEG images in one folder per class (for example ${example}/img001.png). Images are resized to ${i?.height}×${i?.width} ${i?.channels === 1 ? 'grey' : 'RGB'}.`;
  }
  if (modality === 'text') return `CSV or JSONL files with a "text" column and a "label" column holding the class names (for example "${example}").`;
  const a = spec.inputs?.audio;
  return `WAV files in one folder per class (for example ${example}/clip01.wav). Clips are mixed to mono at ${a?.sampleRate} Hz and cut to ${a ? (a.clipSamples / a.sampleRate).toFixed(2) : '?'} s.`;
}

type State = { status: 'idle' } | { status: 'loading'; numFiles: number } | { status: 'done'; data: LoadedTaskData } | { status: 'failed'; error: string };

/** Chooser + summary for a custom task; `onLoaded` receives each successful load. */
export function TaskDataChooser({
  spec,
  vocabulary,
  onLoaded,
}: {
  spec: TaskSpec;
  /** The task's word-vector table (text only); loaded on demand. */
  vocabulary: () => Promise<Vocabulary | null>;
  onLoaded: (data: LoadedTaskData) => void;
}): ReactNode {
  const id = useId();
  const [modality, setModality] = useState<Modality>(spec.modalities[0]!);
  const [state, setState] = useState<State>({ status: 'idle' });

  const load = async (files: SourceFile[]): Promise<void> => {
    setState({ status: 'loading', numFiles: files.length });
    try {
      const own = await loadOwnTaskData(spec, modality, files, modality === 'text' ? await vocabulary() : null);
      const data = { ...own, numFiles: files.length };
      setState({ status: 'done', data });
      onLoaded(data);
    } catch (err) {
      setState({ status: 'failed', error: describeError(err) });
    }
  };

  return (
    <section className="panel" aria-labelledby={`${id}-title`} data-testid="task-data-chooser">
      <h2 id={`${id}-title`}>Your data for this task</h2>
      <p>
        This task learns to tell apart{' '}
        <span data-testid="task-classes" data-classes={spec.classes.join(',')}>
          {spec.classes.join(', ')}
        </span>{' '}
        from <span data-testid="task-modalities">{spec.modalities.join(', ')}</span>.
      </p>
      <fieldset className="inline">
        <legend>Kind of data</legend>
        {spec.modalities.map((m) => (
          <label key={m}>
            <input type="radio" name={`${id}-modality`} value={m} checked={modality === m} onChange={() => setModality(m)} data-testid={`task-modality-${m}`} />{' '}
            {m}
          </label>
        ))}
      </fieldset>
      <p className="note">{taskDataHelp(spec, modality)}</p>
      <FileDropZone onFiles={(files) => void load(files)} onError={(error) => setState({ status: 'failed', error })} testIdPrefix="task-" />
      <div aria-live="polite">
        {state.status === 'loading' && <p role="status">Reading {state.numFiles} files in this tab…</p>}
        {state.status === 'failed' && (
          <p role="alert" className="error" data-testid="task-data-error">
            Nothing was loaded: {state.error}
          </p>
        )}
        {state.status === 'done' && (
          <DataSummaryView
            summary={{
              modality: state.data.modality,
              numFiles: state.data.numFiles,
              numLoaded: state.data.dataset.numExamples,
              classNames: spec.classes,
              perClass: state.data.perClass,
              skipped: state.data.skipped,
            }}
          />
        )}
      </div>
    </section>
  );
}
