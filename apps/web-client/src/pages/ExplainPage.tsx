/**
 * The explanation viewer (`/explain`, optionally `?task=…&token=…` as in a join link): pick an own
 * image, WAV or text file, type a text, or take a built-in digits sample (image + caption + spoken
 * digit), run the model and every explanation in this tab, and render the panels. The model is the
 * task's current global one on the pretrained base, or — clearly labelled — the base with fresh
 * adapters when no global model is available; when this browser has volunteered, its local model
 * explains the same sample beside it.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { sourceFromFile } from '@chorus/datasets';
import { BackendPanel } from '../components/BackendPanel.js';
import { comparisonRows, restrictSample } from '../explain/compare.js';
import { NUM_CLASSES, describeProvenance, type ViewerModel } from '../explain/demoModel.js';
import { explainSample, type ExplanationView, type ViewerSample } from '../explain/explainSample.js';
import { loadViewer, viewerParams, type ViewerSetup } from '../explain/loadViewer.js';
import { timePhase } from '../explain/phases.js';
import { prepareBackend, warmUp } from '../explain/warmUp.js';
import {
  AudioPanel,
  ImageSaliencyPanel,
  MetricsPanel,
  ModalityAttributionPanel,
  PredictionPanel,
  ShapeFunctionsPanel,
  TermsPanel,
  TextTokensPanel,
} from '../explain/Panels.js';
import { sampleFromDigits, sampleFromFile, sampleFromTaskFile, taskTextInput, textInput } from '../explain/samples.js';
import { loadDemoData, type DemoData } from '../lib/builtinData.js';
import { describeError } from '../lib/errors.js';
import { useBackend } from '../lib/useBackend.js';

type Setup =
  { status: 'waiting' } | { status: 'ready'; viewer: ViewerSetup; demo: DemoData | null; demoError: string | null } | { status: 'failed'; error: string };
/** The local model's side of one explanation: its view (with the modalities it could not read), or why there is none. */
type LocalSide = { view: ExplanationView; dropped: readonly string[] } | { note: string } | null;
type Result =
  | { status: 'idle' }
  | { status: 'running'; source: string }
  | { status: 'done'; view: ExplanationView; local: LocalSide; ms: number }
  | { status: 'failed'; error: string };

/** The local model's explanation of `sample`, restricted to the modalities that model was trained on. */
async function explainLocal(local: ViewerModel, sample: ViewerSample, classNames: readonly string[]): Promise<LocalSide> {
  const { sample: kept, dropped } = restrictSample(sample, local.modalities);
  if (kept === null) return { note: `the local model was trained on ${local.modalities.join(' and ')} only; this sample has none of them` };
  return { view: await explainSample(local, kept, classNames), dropped };
}

/** Class names when the built-in samples could not be loaded. */
const defaultClassNames: readonly string[] = Array.from({ length: NUM_CLASSES }, (_, k) => String(k));

/** The backend warm-up after the models load (see warmUp.ts). */
type Warm = { status: 'cold' } | { status: 'warming' } | { status: 'warm'; ms: number } | { status: 'failed'; error: string };

/** Lets the browser paint the "computing" state before the model work, which runs synchronously up to its first read, starts. */
const nextFrame = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/** `/explain` */
export default function ExplainPage({ search }: { search: string }): ReactNode {
  const backend = useBackend(search);
  const [setup, setSetup] = useState<Setup>({ status: 'waiting' });
  const [result, setResult] = useState<Result>({ status: 'idle' });
  const [text, setText] = useState('seven apples on the table');
  const [demoIndex, setDemoIndex] = useState(0);
  const [side, setSide] = useState<'global' | 'local'>('global');
  const latestRun = useRef(0);
  const [warm, setWarm] = useState<Warm>({ status: 'cold' });
  /** The running (or finished) warm-up; it never rejects. */
  const warming = useRef<Promise<void> | null>(null);
  const { taskId, token } = viewerParams(search);

  useEffect(() => {
    if (backend.status !== 'ready') return;
    let live = true;
    let built: ViewerSetup | null = null;
    void (async () => {
      prepareBackend();
      let demo: DemoData | null = null;
      let demoError: string | null = null;
      try {
        demo = await timePhase('demo-data', loadDemoData);
      } catch (err) {
        demoError = describeError(err);
      }
      if (!live) return;
      try {
        const embeddings = demo?.embeddings ?? null;
        const loaded = await timePhase('model-load', () => loadViewer({ origin: location.origin, taskId, token, embeddings }));
        if (!live) return loaded.dispose();
        built = loaded;
        setSetup({ status: 'ready', viewer: loaded, demo, demoError });
        // Compile every kernel of an explanation now, while the researcher picks a sample.
        const names = loaded.global.classNames ?? (demo ? demo.digitsTest.classes : defaultClassNames);
        setWarm({ status: 'warming' });
        warming.current = timePhase('warm-up', () => warmUp([loaded.global, ...(loaded.local ? [loaded.local] : [])], names)).then(
          (ms) => {
            if (live) setWarm({ status: 'warm', ms });
          },
          (err: unknown) => {
            if (live) setWarm({ status: 'failed', error: describeError(err) });
          },
        );
      } catch (err) {
        if (live) setSetup({ status: 'failed', error: describeError(err) });
      }
    })();
    return () => {
      live = false;
      const models = built;
      // The warm-up may still be running on these models: release them once it is done.
      void (warming.current ?? Promise.resolve()).finally(() => models?.dispose());
      warming.current = null;
    };
  }, [backend.status, taskId, token]);

  // A custom task names its own classes; the demo's come with its built-in samples.
  const classNames =
    setup.status === 'ready' ? (setup.viewer.global.classNames ?? (setup.demo ? setup.demo.digitsTest.classes : defaultClassNames)) : defaultClassNames;

  const run = async (make: () => Promise<ViewerSample>, label: string): Promise<void> => {
    if (setup.status !== 'ready') return;
    // Explanations now yield while reading, so a later pick can finish first: only the latest is shown.
    const id = ++latestRun.current;
    const show = (next: Result): void => {
      if (id === latestRun.current) setResult(next);
    };
    show({ status: 'running', source: label });
    try {
      const sample = await make();
      await nextFrame();
      const started = performance.now();
      // A click during the warm-up waits for it (its time counts): both at once would only be slower.
      await warming.current;
      const view = await explainSample(setup.viewer.global, sample, classNames);
      const local = setup.viewer.local ? await explainLocal(setup.viewer.local, sample, classNames) : null;
      show({ status: 'done', view, local, ms: performance.now() - started });
    } catch (err) {
      show({ status: 'failed', error: describeError(err) });
    }
  };

  const ready = setup.status === 'ready';
  const taskModel = ready && setup.viewer.global.provenance.base === 'task' ? setup.viewer.global : null;
  const embeddings = ready && !taskModel ? (setup.demo?.embeddings ?? null) : null;
  const demo = ready && !taskModel ? setup.demo : null;
  const canType = taskModel ? taskModel.vocabulary !== null : embeddings !== null;
  const typed = (): ViewerSample['text'] =>
    taskModel ? taskTextInput(text, taskModel.vocabulary!, taskModel.inputs.textTokens) : textInput(text, embeddings!);
  const numDemo = demo ? demo.digitsTest.numExamples : 0;

  return (
    <div className="page">
      <h1>Explanation viewer</h1>
      <ProvenancePanel setup={setup} />
      <div className="grid two">
        <section className="panel" aria-labelledby="pick-title" data-testid="sample-picker">
          <h2 id="pick-title">Pick a sample</h2>
          {setup.status === 'waiting' && <p role="status">Preparing the model once the backend is chosen…</p>}
          {setup.status === 'failed' && (
            <p role="alert" className="error">
              The model could not be built: {setup.error}
            </p>
          )}
          {taskModel && (
            <p className="note" data-testid="task-classes" data-classes={classNames.join(',')}>
              Task {viewerParams(search).taskId}: {classNames.join(', ')}, from {taskModel.modalities.join(', ')}. Choose one of your own files to explain.
            </p>
          )}
          {ready && !taskModel && setup.demoError && (
            <p className="warning">
              Built-in samples and the word-embedding table could not be loaded ({setup.demoError}); images and audio still work, text does not.
            </p>
          )}
          <fieldset disabled={!ready}>
            <label className="block">
              Own file (.png, .jpg, .wav, .txt)
              <input
                type="file"
                accept=".png,.jpg,.jpeg,.wav,.txt"
                data-testid="explain-file"
                onChange={(e) => {
                  const file = e.currentTarget.files?.[0];
                  if (file)
                    void run(
                      () => (taskModel ? sampleFromTaskFile(sourceFromFile(file), taskModel) : sampleFromFile(sourceFromFile(file), embeddings)),
                      file.name,
                    );
                  e.currentTarget.value = '';
                }}
              />
            </label>
            <label className="block">
              Text
              <textarea rows={2} value={text} onChange={(e) => setText(e.currentTarget.value)} data-testid="explain-text" disabled={!canType} />
            </label>
            <button
              type="button"
              onClick={() => void run(() => Promise.resolve({ source: 'typed text', text: typed()! }), 'typed text')}
              disabled={!canType}
              data-testid="explain-text-button"
            >
              Explain this text
            </button>
            {numDemo > 0 && (
              <div className="inline">
                <label>
                  Digits test sample #{' '}
                  <input
                    type="number"
                    min={0}
                    max={numDemo - 1}
                    value={demoIndex}
                    onChange={(e) => setDemoIndex(Math.min(numDemo - 1, Math.max(0, Math.trunc(Number(e.currentTarget.value) || 0))))}
                    data-testid="demo-index"
                  />
                </label>
                <button
                  type="button"
                  data-testid="explain-demo"
                  onClick={() =>
                    void run(async () => {
                      const [sample] = await demo!.digitsTest.read([demoIndex]);
                      return sampleFromDigits(sample!, embeddings, 'test');
                    }, `digits #${demoIndex}`)
                  }
                >
                  Explain built-in sample (image + caption + speech)
                </button>
              </div>
            )}
          </fieldset>
          <p className="note" data-testid="warm-up" data-status={warm.status}>
            {warm.status === 'warming' && 'Preparing the backend: compiling its kernels with a first explanation in the background…'}
            {warm.status === 'warm' && `Backend prepared in ${(warm.ms / 1000).toFixed(1)} s; explanations now run at full speed.`}
            {warm.status === 'failed' && `Preparing the backend failed (${warm.error}); explanations still run, the first one more slowly.`}
          </p>
          <div aria-live="polite" data-testid="explain-status" data-state={result.status} data-ms={result.status === 'done' ? result.ms.toFixed(1) : undefined}>
            {result.status === 'running' && <p role="status">Explaining {result.source}…</p>}
            {result.status === 'failed' && (
              <p role="alert" className="error" data-testid="explain-error">
                {result.error}
              </p>
            )}
            {result.status === 'done' && (
              <p>
                Explained <strong data-testid="explain-source">{result.view.source}</strong> in {(result.ms / 1000).toFixed(2)} s.
              </p>
            )}
          </div>
        </section>
        <BackendPanel state={backend} />
      </div>
      {result.status === 'done' && <ComparisonPanel result={result} side={side} onSide={setSide} />}
      {result.status === 'done' && <ExplanationPanels view={side === 'local' && result.local && 'view' in result.local ? result.local.view : result.view} />}
    </div>
  );
}

/** Which weights the viewer runs: the global model (or the fallback) and this browser's local model. */
function ProvenancePanel({ setup }: { setup: Setup }): ReactNode {
  if (setup.status !== 'ready') {
    return (
      <p className="note" data-testid="model-provenance" data-kind="loading">
        Loading the model: the pretrained base and the task's current global adapters…
      </p>
    );
  }
  const { global, local, localNote } = setup.viewer;
  const adapters = global.provenance.adapters;
  const fallback = adapters.kind !== 'global' || global.provenance.base === 'fresh';
  return (
    <div className={fallback ? 'warning' : 'panel'} aria-label="model weights">
      <p
        data-testid="model-provenance"
        data-kind={adapters.kind}
        data-base={global.provenance.base}
        data-round={adapters.kind === 'global' ? adapters.serverRound : undefined}
      >
        <strong>Model:</strong> {describeProvenance(global.provenance)}.
        {adapters.kind === 'fresh' && ' Its predictions show how the explanations work, not what a trained model has learned.'}
      </p>
      <p data-testid="local-provenance" data-kind={local ? 'local' : 'none'}>
        <strong>Local model:</strong>{' '}
        {local ? `${describeProvenance(local.provenance)}; it explains every sample beside the global one.` : `none — ${localNote ?? 'not available'}.`}
      </p>
    </div>
  );
}

/** The same sample under the global and the local model, row by row, and the switch choosing whose panels show below. */
function ComparisonPanel({
  result,
  side,
  onSide,
}: {
  result: Extract<Result, { status: 'done' }>;
  side: 'global' | 'local';
  onSide: (side: 'global' | 'local') => void;
}): ReactNode {
  const local = result.local;
  if (local === null) return null;
  if (!('view' in local)) {
    return (
      <p className="note" data-testid="comparison-note">
        Local model: {local.note}.
      </p>
    );
  }
  const rows = comparisonRows(result.view, local.view);
  return (
    <section className="panel" data-testid="comparison" aria-labelledby="compare-title">
      <h2 id="compare-title">Local vs global</h2>
      {local.dropped.length > 0 && <p className="note">The local model never trained on {local.dropped.join(' or ')}, so it sees this sample without it.</p>}
      <table className="data-table compact">
        <thead>
          <tr>
            <th scope="col">Same sample</th>
            <th scope="col">Global model</th>
            <th scope="col">Local model</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.label} data-testid="comparison-row" data-label={r.label} data-differs={r.differs}>
              <th scope="row">{r.label}</th>
              <td className="num">{r.global}</td>
              <td className="num">{r.local}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <fieldset className="inline" data-testid="panels-side">
        <legend>Panels below show</legend>
        {(['global', 'local'] as const).map((s) => (
          <label key={s}>
            <input type="radio" name="panels-side" value={s} checked={side === s} onChange={() => onSide(s)} /> the {s} model
          </label>
        ))}
      </fieldset>
    </section>
  );
}

/** Every explanation panel of one view. */
function ExplanationPanels({ view }: { view: ExplanationView }): ReactNode {
  return (
    <div className="grid panels" data-testid="explanation" data-model={view.provenance.adapters.kind}>
      <PredictionPanel view={view} />
      <ModalityAttributionPanel view={view} />
      <MetricsPanel view={view} />
      <ImageSaliencyPanel view={view} />
      <TextTokensPanel view={view} />
      <AudioPanel view={view} />
      <TermsPanel view={view} />
      <ShapeFunctionsPanel view={view} />
    </div>
  );
}
