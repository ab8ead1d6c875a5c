/**
 * The explanation viewer (`/explain`): pick an own image, WAV or text file, type a text, or take a
 * built-in digits sample (image + caption + spoken digit), run the model and every explanation in
 * this tab, and render the panels. The weights are an untrained seeded initialisation until the
 * client runtime brings the coordinator's global model; the page says so.
 */
import { useEffect, useState, type ReactNode } from 'react';
import { sourceFromFile } from '@chorus/datasets';
import { BackendPanel } from '../components/BackendPanel.js';
import { NUM_CLASSES, buildViewerModel, type ViewerModel } from '../explain/demoModel.js';
import { explainSample, type ExplanationView, type ViewerSample } from '../explain/explainSample.js';
import { AudioPanel, ImageSaliencyPanel, MetricsPanel, ModalityAttributionPanel, PredictionPanel, ShapeFunctionsPanel, TermsPanel, TextTokensPanel } from '../explain/Panels.js';
import { sampleFromDigits, sampleFromFile, textInput } from '../explain/samples.js';
import { loadDemoData, type DemoData } from '../lib/builtinData.js';
import { describeError } from '../lib/errors.js';
import { useBackend } from '../lib/useBackend.js';

type Setup = { status: 'waiting' } | { status: 'ready'; viewer: ViewerModel; demo: DemoData | null; demoError: string | null } | { status: 'failed'; error: string };
type Result = { status: 'idle' } | { status: 'running'; source: string } | { status: 'done'; view: ExplanationView; ms: number } | { status: 'failed'; error: string };

/** Lets the browser paint the "computing" state before the synchronous model work starts. */
const nextFrame = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/** `/explain` */
export default function ExplainPage({ search }: { search: string }): ReactNode {
  const backend = useBackend(search);
  const [setup, setSetup] = useState<Setup>({ status: 'waiting' });
  const [result, setResult] = useState<Result>({ status: 'idle' });
  const [text, setText] = useState('seven apples on the table');
  const [demoIndex, setDemoIndex] = useState(0);

  useEffect(() => {
    if (backend.status !== 'ready') return;
    let live = true;
    let built: ViewerModel | null = null;
    void (async () => {
      let demo: DemoData | null = null;
      let demoError: string | null = null;
      try {
        demo = await loadDemoData();
      } catch (err) {
        demoError = describeError(err);
      }
      if (!live) return;
      try {
        built = buildViewerModel(demo?.embeddings ?? null);
        setSetup({ status: 'ready', viewer: built, demo, demoError });
      } catch (err) {
        setSetup({ status: 'failed', error: describeError(err) });
      }
    })();
    return () => {
      live = false;
      built?.dispose();
    };
  }, [backend.status]);

  const classNames = setup.status === 'ready' && setup.demo ? setup.demo.digitsTest.classes : Array.from({ length: NUM_CLASSES }, (_, k) => String(k));

  const run = async (make: () => Promise<ViewerSample>, label: string): Promise<void> => {
    if (setup.status !== 'ready') return;
    setResult({ status: 'running', source: label });
    try {
      const sample = await make();
      await nextFrame();
      const started = performance.now();
      const view = explainSample(setup.viewer, sample, classNames);
      setResult({ status: 'done', view, ms: performance.now() - started });
    } catch (err) {
      setResult({ status: 'failed', error: describeError(err) });
    }
  };

  const ready = setup.status === 'ready';
  const embeddings = ready ? (setup.demo?.embeddings ?? null) : null;
  const demo = ready ? setup.demo : null;
  const numDemo = demo ? demo.digitsTest.numExamples : 0;

  return (
    <div className="page">
      <h1>Explanation viewer</h1>
      <p className="warning" data-testid="model-provenance">
        {ready ? `This is an ${setup.viewer.provenance}.` : 'Untrained model: random initialisation until the client runtime downloads the global model.'} Its predictions show how the explanations work, not what a trained
        model has learned. Comparing the local model with the current global one needs the client runtime and is not available yet.
      </p>
      <div className="grid two">
        <section className="panel" aria-labelledby="pick-title" data-testid="sample-picker">
          <h2 id="pick-title">Pick a sample</h2>
          {setup.status === 'waiting' && <p role="status">Preparing the model once the backend is chosen…</p>}
          {setup.status === 'failed' && (
            <p role="alert" className="error">
              The model could not be built: {setup.error}
            </p>
          )}
          {ready && setup.demoError && (
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
                  if (file) void run(() => sampleFromFile(sourceFromFile(file), embeddings), file.name);
                  e.currentTarget.value = '';
                }}
              />
            </label>
            <label className="block">
              Text
              <textarea rows={2} value={text} onChange={(e) => setText(e.currentTarget.value)} data-testid="explain-text" disabled={embeddings === null} />
            </label>
            <button type="button" onClick={() => void run(() => Promise.resolve({ source: 'typed text', text: textInput(text, embeddings!) }), 'typed text')} disabled={embeddings === null} data-testid="explain-text-button">
              Explain this text
            </button>
            {numDemo > 0 && (
              <div className="inline">
                <label>
                  Digits test sample #{' '}
                  <input type="number" min={0} max={numDemo - 1} value={demoIndex} onChange={(e) => setDemoIndex(Math.min(numDemo - 1, Math.max(0, Math.trunc(Number(e.currentTarget.value) || 0))))} data-testid="demo-index" />
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
          <div aria-live="polite" data-testid="explain-status" data-state={result.status}>
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
      {result.status === 'done' && (
        <div className="grid panels" data-testid="explanation">
          <PredictionPanel view={result.view} />
          <ModalityAttributionPanel view={result.view} />
          <MetricsPanel view={result.view} />
          <ImageSaliencyPanel view={result.view} />
          <TextTokensPanel view={result.view} />
          <AudioPanel view={result.view} />
          <TermsPanel view={result.view} />
          <ShapeFunctionsPanel view={result.view} />
        </div>
      )}
    </div>
  );
}
