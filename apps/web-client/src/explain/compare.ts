/**
 * Local vs global: the same sample explained by this browser's local model and by the current
 * global one, side by side — prediction, confidence, per-modality attribution and the sample's
 * FedMM-X EC and FS (Balija 2025, arXiv:2503.19564) for each. Pure, on plain views.
 */
import { MODALITIES } from '@chorus/fl-core';
import type { Modality } from '@chorus/models';
import { formatNumber, formatPercent } from '../lib/format.js';
import type { ExplanationView, ViewerSample } from './explainSample.js';

/** `sample` cut to the modalities a model has, and what was cut; `sample` is null when nothing is left. */
export function restrictSample(
  sample: ViewerSample,
  modalities: readonly Modality[],
): { readonly sample: ViewerSample | null; readonly dropped: readonly Modality[] } {
  const given = MODALITIES.filter((m) => sample[m] !== undefined);
  const dropped = given.filter((m) => !modalities.includes(m));
  if (dropped.length === 0) return { sample, dropped };
  const kept: { -readonly [K in keyof ViewerSample]: ViewerSample[K] } = { ...sample };
  for (const m of dropped) delete kept[m];
  return { sample: given.length > dropped.length ? kept : null, dropped };
}

/** One line of the comparison table. */
export interface ComparisonRow {
  readonly label: string;
  readonly global: string;
  readonly local: string;
  /** Whether the two cells say different things (highlighted on the page). */
  readonly differs: boolean;
}

const className = (view: ExplanationView, k: number): string => view.classNames[k] ?? `class ${k}`;

function attribution(view: ExplanationView, m: Modality): string {
  const i = view.modalities.indexOf(m);
  if (i < 0) return 'not in this model';
  return view.present[i] ? formatPercent(view.modalityAttribution[i] ?? 0) : 'absent';
}

function consistency(view: ExplanationView, a: Modality, b: Modality): string {
  const c = view.consistency.find((x) => x.a === a && x.b === b);
  return c ? formatNumber(c.value) : '—';
}

/** The rows comparing two explanations of one sample: prediction, confidence, p(true class), attribution per modality, EC per pair, FS. */
export function comparisonRows(global: ExplanationView, local: ExplanationView): ComparisonRow[] {
  const row = (label: string, g: string, l: string): ComparisonRow => ({ label, global: g, local: l, differs: g !== l });
  const rows: ComparisonRow[] = [
    row('Prediction', className(global, global.predicted), className(local, local.predicted)),
    row('Confidence', formatPercent(global.confidence), formatPercent(local.confidence)),
  ];
  const label = global.label ?? local.label;
  if (label !== null) {
    rows.push(
      row(
        `p(true class ${className(global, label)})`,
        formatPercent(global.probabilities[label] ?? Number.NaN),
        formatPercent(local.probabilities[label] ?? Number.NaN),
      ),
    );
  }
  const modalities = MODALITIES.filter((m) => global.modalities.includes(m) || local.modalities.includes(m));
  for (const m of modalities) rows.push(row(`Attribution: ${m}`, attribution(global, m), attribution(local, m)));
  const pairs = [...global.consistency, ...local.consistency].map((c) => `${c.a}–${c.b}`);
  for (const pair of [...new Set(pairs)]) {
    const [a, b] = pair.split('–') as [Modality, Modality];
    rows.push(row(`EC ${pair}`, consistency(global, a, b), consistency(local, a, b)));
  }
  rows.push(
    row(
      'FS',
      `${formatNumber(global.faithfulness, 4)} (k = ${global.faithfulnessK} %)`,
      `${formatNumber(local.faithfulness, 4)} (k = ${local.faithfulnessK} %)`,
    ),
  );
  return rows;
}
