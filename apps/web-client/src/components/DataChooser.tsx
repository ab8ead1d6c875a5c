/**
 * The volunteer's data chooser: drag and drop (files or whole folders) or a folder / file picker,
 * loaded in the tab by the datasets package's loaders, then a summary of what loaded per class and
 * every file or row that was skipped, named, with its reason.
 */
import { useId, useState, type ReactNode } from 'react';
import type { SourceFile } from '@chorus/datasets';
import { MODALITIES } from '@chorus/fl-core';
import { describeError } from '../lib/errors.js';
import { FileDropZone } from './FileDropZone.js';
import { DEMO_IMAGE_TARGET, loadOwnData, type DataSpec, type DataSummary } from '../lib/ownData.js';

type Modality = DataSpec['modality'];

const HELP: Record<Modality, string> = {
  image: 'PNG or JPEG images in one folder per class (for example 3/img001.png). Images are turned grey and resized to 28×28.',
  text: 'CSV or JSONL files with a text column and a label column.',
  audio: 'WAV files in one folder per class (for example yes/clip01.wav). Clips are mixed to mono at 16 kHz.',
};

type State = { status: 'idle' } | { status: 'loading'; numFiles: number } | { status: 'done'; summary: DataSummary } | { status: 'failed'; error: string };

/** Chooser + summary; `onLoaded` receives each successful load (the runtime trains on it later). */
export function DataChooser({ classNames, onLoaded }: { classNames?: readonly string[]; onLoaded?: (summary: DataSummary) => void }): ReactNode {
  const id = useId();
  const [modality, setModality] = useState<Modality>('image');
  const [textColumn, setTextColumn] = useState('text');
  const [labelColumn, setLabelColumn] = useState('label');
  const [state, setState] = useState<State>({ status: 'idle' });

  const spec = (): DataSpec => {
    const names = classNames ? { classNames } : {};
    if (modality === 'image') return { modality, target: DEMO_IMAGE_TARGET, ...names };
    if (modality === 'text') return { modality, textColumn, labelColumn, ...names };
    return { modality, ...names };
  };

  const load = async (files: SourceFile[]): Promise<void> => {
    setState({ status: 'loading', numFiles: files.length });
    try {
      const summary = await loadOwnData(files, spec());
      setState({ status: 'done', summary });
      onLoaded?.(summary);
    } catch (err) {
      setState({ status: 'failed', error: describeError(err) });
    }
  };

  return (
    <section className="panel" aria-labelledby={`${id}-title`} data-testid="data-chooser">
      <h2 id={`${id}-title`}>Your data</h2>
      <fieldset className="inline">
        <legend>Kind of data</legend>
        {MODALITIES.map((m) => (
          <label key={m}>
            <input type="radio" name={`${id}-modality`} value={m} checked={modality === m} onChange={() => setModality(m)} /> {m}
          </label>
        ))}
      </fieldset>
      <p className="note">{HELP[modality]}</p>
      {modality === 'text' && (
        <div className="inline">
          <label>
            Text column <input value={textColumn} onChange={(e) => setTextColumn(e.currentTarget.value)} size={10} />
          </label>
          <label>
            Label column <input value={labelColumn} onChange={(e) => setLabelColumn(e.currentTarget.value)} size={10} />
          </label>
        </div>
      )}
      <FileDropZone onFiles={(files) => void load(files)} onError={(error) => setState({ status: 'failed', error })} />
      <div aria-live="polite">
        {state.status === 'loading' && <p role="status">Reading {state.numFiles} files in this tab…</p>}
        {state.status === 'failed' && (
          <p role="alert" className="error">
            Nothing was loaded: {state.error}
          </p>
        )}
        {state.status === 'done' && <DataSummaryView summary={state.summary} />}
      </div>
    </section>
  );
}

/** What loaded per class and what was skipped, each skipped file by name with its code and reason. */
export function DataSummaryView({ summary }: { summary: Omit<DataSummary, 'loaded'> }): ReactNode {
  return (
    <div className="summary" data-testid="data-summary" data-loaded={summary.numLoaded} data-skipped={summary.skipped.length}>
      <p>
        <strong>{summary.numLoaded}</strong> {summary.modality} sample{summary.numLoaded === 1 ? '' : 's'} loaded from {summary.numFiles} file
        {summary.numFiles === 1 ? '' : 's'}
        {summary.skipped.length > 0 ? `; ${summary.skipped.length} skipped` : ''}. They stay in this tab.
      </p>
      {summary.numLoaded > 0 && (
        <table className="data-table compact">
          <caption>Samples per class</caption>
          <thead>
            <tr>
              <th scope="col">Class</th>
              <th scope="col" className="num">
                Samples
              </th>
            </tr>
          </thead>
          <tbody>
            {summary.classNames.map((name, i) => (
              <tr key={name} data-testid={`class-${name}`}>
                <th scope="row">{name}</th>
                <td className="num">{summary.perClass[i]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {summary.skipped.length > 0 && (
        <>
          <h3>Skipped</h3>
          <ul className="skipped" data-testid="skipped-list">
            {summary.skipped.map((s, i) => (
              <li key={`${s.path}-${i}`} data-testid="skipped-item" data-path={s.path} data-code={s.code}>
                <code>{s.path}</code> <span className="badge">{s.code}</span> {s.message.startsWith(s.path) ? s.message.slice(s.path.length + 2) : s.message}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
