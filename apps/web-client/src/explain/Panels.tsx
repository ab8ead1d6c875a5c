/**
 * The explanation viewer's panels, each a function of one typed {@link ExplanationView}: prediction
 * and confidence, per-modality attribution, NAM term contributions (Agarwal et al. 2021,
 * arXiv:2004.13912), shape-function plots, image saliency, highlighted text tokens, audio waveform
 * and spectrogram with attribution over time, and FedMM-X's EC and FS (Balija 2025, arXiv:2503.19564).
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Bar, BarChart, CartesianGrid, Cell, Line, LineChart, ReferenceDot, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatNumber, formatPercent } from '../lib/format.js';
import { MODALITY_COLOURS, divergingRgba } from '../lib/palette.js';
import { drawSaliency, drawSpectrogram, drawWaveform } from './canvas.js';
import type { ExplanationView } from './explainSample.js';
import { normaliseSigned } from './signal.js';

type View = { view: ExplanationView };

const className = (view: ExplanationView, k: number): string => view.classNames[k] ?? `class ${k}`;

/** Predicted class, its probability, and every class's probability. */
export function PredictionPanel({ view }: View): ReactNode {
  const order = view.probabilities.map((p, k) => ({ p, k })).sort((a, b) => b.p - a.p);
  return (
    <section className="panel" data-testid="panel-prediction" aria-labelledby="pred-title">
      <h2 id="pred-title">Prediction</h2>
      <p className="big">
        <strong data-testid="predicted-class">{className(view, view.predicted)}</strong> with confidence{' '}
        <strong data-testid="confidence">{formatPercent(view.confidence)}</strong>
        {view.label !== null && <span className="note"> (true class: {className(view, view.label)})</span>}
      </p>
      <ol className="prob-list">
        {order.map(({ p, k }) => (
          <li key={k}>
            <span className="prob-name">{className(view, k)}</span>
            <span className="prob-bar" style={{ width: `${Math.max(0.5, p * 100)}%` }} />
            <span className="prob-value">{formatPercent(p)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

/** Share of the decision each modality carries, as one stacked bar. */
export function ModalityAttributionPanel({ view }: View): ReactNode {
  return (
    <section className="panel" data-testid="panel-modality" aria-labelledby="modality-title">
      <h2 id="modality-title">Per-modality attribution</h2>
      <div className="stacked-bar" role="img" aria-label={view.modalities.map((m, i) => `${m} ${formatPercent(view.modalityAttribution[i] ?? 0)}`).join(', ')}>
        {view.modalities.map((m, i) =>
          view.present[i] && (view.modalityAttribution[i] ?? 0) > 0 ? (
            <span key={m} style={{ width: `${(view.modalityAttribution[i] ?? 0) * 100}%`, background: MODALITY_COLOURS[m] }} title={m} />
          ) : null,
        )}
      </div>
      <ul className="legend">
        {view.modalities.map((m, i) => (
          <li key={m}>
            <span className="swatch" style={{ background: MODALITY_COLOURS[m] }} /> {m}:{' '}
            {view.present[i] ? formatPercent(view.modalityAttribution[i] ?? 0) : 'absent from this sample'}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The strongest NAM terms' contributions to the predicted class's logit. */
export function TermsPanel({ view }: View): ReactNode {
  const data = view.terms.slice(0, 12).map((t) => ({ name: t.name, contribution: t.contribution, modality: t.modality }));
  return (
    <section className="panel" data-testid="panel-terms" aria-labelledby="terms-title">
      <h2 id="terms-title">NAM term contributions</h2>
      <p className="note">
        logit({className(view, view.predicted)}) = β ({formatNumber(view.bias)}) + Σ f<sub>m,i</sub>(z<sub>m,i</sub>); the {data.length} largest of{' '}
        {view.terms.length} terms:
      </p>
      <ResponsiveContainer width="100%" height={Math.max(160, data.length * 22 + 40)}>
        <BarChart data={data} layout="vertical" margin={{ top: 4, right: 16, bottom: 4, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis type="number" tickFormatter={(v: number) => v.toFixed(2)} />
          <YAxis type="category" dataKey="name" width={80} interval={0} tick={{ fontSize: 12 }} />
          <Tooltip formatter={(v) => Number(v).toFixed(4)} />
          <ReferenceLine x={0} stroke="#444" />
          <Bar dataKey="contribution" isAnimationActive={false}>
            {data.map((d) => (
              <Cell key={d.name} fill={MODALITY_COLOURS[d.modality]} fillOpacity={d.contribution >= 0 ? 1 : 0.45} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </section>
  );
}

/** Shape functions f(z) of the strongest terms for the predicted class, with this sample's z marked. */
export function ShapeFunctionsPanel({ view }: View): ReactNode {
  return (
    <section className="panel wide" data-testid="panel-shapes" aria-labelledby="shapes-title">
      <h2 id="shapes-title">Shape functions</h2>
      <p className="note">Each term's contribution to “{className(view, view.predicted)}” as a function of its concept value; the dot is this sample.</p>
      <div className="small-multiples">
        {view.shapeCurves.map((curve) => {
          const data = curve.grid.map((z, i) => ({ z, f: curve.values[i] }));
          const at = curve.values[nearest(curve.grid, curve.concept)] ?? 0;
          return (
            <figure key={curve.name} className="mini-chart">
              <figcaption>{curve.name}</figcaption>
              <ResponsiveContainer width="100%" height={130}>
                <LineChart data={data} margin={{ top: 6, right: 8, bottom: 0, left: -18 }}>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis dataKey="z" type="number" domain={[-1, 1]} ticks={[-1, 0, 1]} />
                  <YAxis tickFormatter={(v: number) => v.toFixed(1)} />
                  <Line dataKey="f" stroke={MODALITY_COLOURS[curve.name.split('/')[0] ?? ''] ?? '#333'} dot={false} isAnimationActive={false} />
                  <ReferenceDot x={curve.grid[nearest(curve.grid, curve.concept)]} y={at} r={4} fill="#D55E00" stroke="none" />
                </LineChart>
              </ResponsiveContainer>
            </figure>
          );
        })}
      </div>
    </section>
  );
}

function nearest(grid: readonly number[], value: number): number {
  let best = 0;
  for (let i = 1; i < grid.length; i++) if (Math.abs(grid[i]! - value) < Math.abs(grid[best]! - value)) best = i;
  return best;
}

/** The image with gradient × input saliency overlaid on a canvas. */
export function ImageSaliencyPanel({ view }: View): ReactNode {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [overlay, setOverlay] = useState(true);
  const image = view.image;
  useEffect(() => {
    if (canvas.current && image) drawSaliency(canvas.current, image.pixels, image.saliency, image, 224, overlay);
  }, [image, overlay]);
  if (!image) return null;
  return (
    <section className="panel" data-testid="panel-image" aria-labelledby="image-title">
      <h2 id="image-title">Image saliency</h2>
      <canvas
        ref={canvas}
        role="img"
        aria-label="the image with saliency overlaid: red pixels push toward the predicted class, blue ones away"
        data-testid="saliency-canvas"
      />
      <label className="check">
        <input type="checkbox" checked={overlay} onChange={(e) => setOverlay(e.currentTarget.checked)} /> Show saliency overlay
      </label>
    </section>
  );
}

/** The text's tokens, each tinted by its saliency. */
export function TextTokensPanel({ view }: View): ReactNode {
  const text = view.text;
  if (!text) return null;
  const heat = normaliseSigned(text.saliency);
  return (
    <section className="panel" data-testid="panel-text" aria-labelledby="text-title">
      <h2 id="text-title">Text tokens</h2>
      <p className="tokens">
        {text.words.map((word, i) => {
          if (word === '') return null;
          const [r, g, b, a] = divergingRgba(heat[i] ?? 0);
          return (
            <span
              key={i}
              className="token"
              data-testid="token"
              style={{ background: `rgba(${r}, ${g}, ${b}, ${(a / 255) * 0.6})` }}
              title={`saliency ${formatNumber(text.saliency[i] ?? 0, 4)}`}
            >
              {word}
            </span>
          );
        })}
      </p>
      <p className="note">
        Red tokens push toward the predicted class, blue ones away;{' '}
        {view.provenance.base === 'task' ? "words missing from the task's vocabulary are left out." : 'unknown words use the shared unknown-word vector.'}
      </p>
    </section>
  );
}

/** Waveform, log-mel spectrogram and attribution over time. */
export function AudioPanel({ view }: View): ReactNode {
  const wave = useRef<HTMLCanvasElement>(null);
  const spec = useRef<HTMLCanvasElement>(null);
  const audio = view.audio;
  useEffect(() => {
    if (!audio) return;
    if (wave.current) drawWaveform(wave.current, audio.samples, 480, 80);
    if (spec.current) drawSpectrogram(spec.current, audio.logMel, audio.numFrames, audio.numMels, audio.saliency, 480, 120);
  }, [audio]);
  if (!audio) return null;
  return (
    <section className="panel" data-testid="panel-audio" aria-labelledby="audio-title">
      <h2 id="audio-title">Audio</h2>
      <p className="note">
        {(audio.samples.length / audio.sampleRate).toFixed(2)} s at {audio.sampleRate / 1000} kHz; {audio.numFrames} frames × {audio.numMels} mel bands. The
        strip under the spectrogram is the attribution over time.
      </p>
      <canvas ref={wave} role="img" aria-label="waveform" data-testid="waveform-canvas" />
      <canvas ref={spec} role="img" aria-label="log-mel spectrogram with attribution over time below it" data-testid="spectrogram-canvas" />
    </section>
  );
}

/** Explanation Consistency between present modalities and the Faithfulness Score. */
export function MetricsPanel({ view }: View): ReactNode {
  return (
    <section className="panel" data-testid="panel-metrics" aria-labelledby="metrics-title">
      <h2 id="metrics-title">EC and FS</h2>
      <dl className="facts">
        <dt>Explanation consistency (EC)</dt>
        <dd data-testid="ec" data-text={view.consistency.map((c) => `${c.a}–${c.b}: ${formatNumber(c.value)}`).join('; ')}>
          {view.consistency.length === 0 ? (
            'needs two modalities of one input; this sample has one'
          ) : (
            <ul className="plain">
              {view.consistency.map((c) => (
                <li key={`${c.a}-${c.b}`}>
                  {c.a}–{c.b}: {formatNumber(c.value)}
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Faithfulness (FS, deleting k = {view.faithfulnessK} % of the input)</dt>
        <dd data-testid="fs">{formatNumber(view.faithfulness, 4)}</dd>
      </dl>
      <p className="note">
        EC: cosine between two modalities' class-space contributions, each centred over the classes (an offset the softmax ignores does not count). FS: drop in
        p(predicted) when the top-k terms are removed, minus the drop for k random terms.
      </p>
    </section>
  );
}
