/**
 * Hyperparameter choice on validation data: every method's candidates (a small documented grid of
 * learning rates, and of FedProx μ and FedMM-X λ₁ where the method has them) are each trained with
 * the tuning seeds and scored on the validation subset; the candidate with the highest mean
 * validation score is chosen (ties: the first in grid order) before any test number is read. The
 * tuning seeds are disjoint from the evaluation seeds, so the runs reported on test are never the
 * runs a choice was made on. Every candidate's scores are kept, so the report shows the whole grid.
 */
import { ExperimentsError } from './errors.js';
import { markdownTable, meanStd } from './stats.js';
import type { SeededValue } from './stats.js';

/** The values a run is configured with; μ and λ₁ only where the method has them. */
export interface Hyperparameters {
  readonly learningRate: number;
  /** FedProx's proximal weight μ. */
  readonly proximalMu?: number;
  /** FedMM-X's L_modal weight λ₁. */
  readonly modalWeight?: number;
  /** FedMM-X's L_intp weight λ₂. */
  readonly interpretabilityWeight?: number;
}

/** The documented grid a section tunes over. */
export interface TuningGrid {
  readonly learningRates: readonly number[];
  readonly proximalMus: readonly number[];
  readonly modalWeights: readonly number[];
  readonly interpretabilityWeights: readonly number[];
}

/** Which of a grid's optional hyperparameters a method tunes (the learning rate always). */
export interface TunedFields {
  readonly proximalMu?: boolean;
  readonly modalWeight?: boolean;
  readonly interpretabilityWeight?: boolean;
}

/** Every candidate of `grid` for a method tuning the learning rate and, when asked, μ, λ₁ and λ₂ (learning rate outermost). */
export function gridCandidates(grid: TuningGrid, tunes: TunedFields = {}): Hyperparameters[] {
  const check = (field: string, values: readonly number[]): void => {
    if (values.length === 0 || values.some((v) => !(Number.isFinite(v) && v >= 0)) || new Set(values).size !== values.length)
      throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `gridCandidates: ${field} must be distinct finite values ≥ 0, got [${values.join(', ')}]`);
  };
  check('learningRates', grid.learningRates);
  if (grid.learningRates.some((v) => v === 0)) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'gridCandidates: a learning rate of 0 trains nothing');
  if (tunes.proximalMu) check('proximalMus', grid.proximalMus);
  if (tunes.modalWeight) check('modalWeights', grid.modalWeights);
  if (tunes.interpretabilityWeight) check('interpretabilityWeights', grid.interpretabilityWeights);
  const out: Hyperparameters[] = [];
  for (const learningRate of grid.learningRates)
    for (const proximalMu of tunes.proximalMu ? grid.proximalMus : [undefined])
      for (const modalWeight of tunes.modalWeight ? grid.modalWeights : [undefined])
        for (const interpretabilityWeight of tunes.interpretabilityWeight ? grid.interpretabilityWeights : [undefined])
          out.push({
            learningRate,
            ...(proximalMu === undefined ? {} : { proximalMu }),
            ...(modalWeight === undefined ? {} : { modalWeight }),
            ...(interpretabilityWeight === undefined ? {} : { interpretabilityWeight }),
          });
  return out;
}

/** One candidate's validation scores, one per tuning seed, and their mean. */
export interface CandidateScore {
  readonly hyperparameters: Hyperparameters;
  readonly scores: readonly SeededValue[];
  readonly mean: number;
}

/** What tuning one method found: the whole grid and the choice. */
export interface TuningRecord {
  readonly method: string;
  readonly candidates: readonly CandidateScore[];
  readonly chosen: Hyperparameters;
  /** Mean validation score of the chosen candidate. */
  readonly validationScore: number;
}

/**
 * The candidate with the highest mean validation score (ties: the first in grid order). A candidate
 * with a non-finite score on any tuning seed (a run that did not finish all its rounds, or diverged)
 * has a NaN mean and is never chosen: averaging only its finished runs would favour an unstable
 * setting. Throws `EXPERIMENTS_BAD_INPUT` when no candidate has a finite mean.
 */
export function chooseOnValidation(method: string, scored: readonly { hyperparameters: Hyperparameters; scores: readonly SeededValue[] }[]): TuningRecord {
  const candidates = scored.map((c) => ({
    ...c,
    mean: c.scores.every((s) => Number.isFinite(s.value)) ? meanStd(c.scores.map((s) => s.value)).mean : Number.NaN,
  }));
  let best: CandidateScore | undefined;
  for (const c of candidates) if (Number.isFinite(c.mean) && (best === undefined || c.mean > best.mean)) best = c;
  if (best === undefined) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `chooseOnValidation: no candidate of ${method} has a validation score`);
  return { method, candidates, chosen: best.hyperparameters, validationScore: best.mean };
}

/** The record of a one-candidate grid: that candidate, chosen without a validation run (no scores, a NaN mean). */
export function onlyCandidate(method: string, hyperparameters: Hyperparameters): TuningRecord {
  return { method, candidates: [{ hyperparameters, scores: [], mean: Number.NaN }], chosen: hyperparameters, validationScore: Number.NaN };
}

/**
 * Trains and scores every candidate with every tuning seed through `score` (in order), then chooses.
 * A grid of one candidate leaves nothing to choose: it is chosen without a validation run (the quick
 * grids' case), and `score` is not called.
 */
export async function tuneOnValidation(
  method: string,
  candidates: readonly Hyperparameters[],
  tuningSeeds: readonly number[],
  score: (hyperparameters: Hyperparameters, seed: number) => Promise<number>,
): Promise<TuningRecord> {
  if (tuningSeeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', `tuneOnValidation: ${method} needs at least one tuning seed`);
  if (candidates.length === 1) return onlyCandidate(method, candidates[0]!);
  const scored: { hyperparameters: Hyperparameters; scores: SeededValue[] }[] = [];
  for (const hyperparameters of candidates) {
    const scores: SeededValue[] = [];
    for (const seed of tuningSeeds) scores.push({ seed, value: await score(hyperparameters, seed) });
    scored.push({ hyperparameters, scores });
  }
  return chooseOnValidation(method, scored);
}

/** Throws `EXPERIMENTS_BAD_INPUT` when a tuning seed is also an evaluation seed (the test runs would then be tuning runs). */
export function checkDisjointSeeds(tuningSeeds: readonly number[], evaluationSeeds: readonly number[]): void {
  const shared = tuningSeeds.filter((s) => evaluationSeeds.includes(s));
  if (tuningSeeds.length === 0) throw new ExperimentsError('EXPERIMENTS_BAD_INPUT', 'tuning needs at least one tuning seed');
  if (shared.length > 0)
    throw new ExperimentsError(
      'EXPERIMENTS_BAD_INPUT',
      `seeds ${shared.join(', ')} are both tuning and evaluation seeds; choose evaluation seeds outside ${tuningSeeds.join(', ')}`,
    );
}

/** True when `a` and `b` hold the same values (also after a JSON round trip, unlike `===`). */
export function sameHyperparameters(a: Hyperparameters, b: Hyperparameters): boolean {
  return (
    a.learningRate === b.learningRate &&
    a.proximalMu === b.proximalMu &&
    a.modalWeight === b.modalWeight &&
    a.interpretabilityWeight === b.interpretabilityWeight
  );
}

/** `lr 0.01, μ 0.1, λ₁ 0.5, λ₂ 0.1` (the fields the candidate has). */
export function formatHyperparameters(h: Hyperparameters): string {
  return [
    `lr ${h.learningRate}`,
    ...(h.proximalMu === undefined ? [] : [`μ ${h.proximalMu}`]),
    ...(h.modalWeight === undefined ? [] : [`λ₁ ${h.modalWeight}`]),
    ...(h.interpretabilityWeight === undefined ? [] : [`λ₂ ${h.interpretabilityWeight}`]),
  ].join(', ');
}

/** The tuning table of the report: per method, every candidate's mean validation score (×`scale`), the chosen one in bold. */
export function tuningTable(records: readonly (TuningRecord & { readonly label: string })[], options: { scale?: number; digits?: number } = {}): string {
  const scale = options.scale ?? 100;
  const digits = options.digits ?? 1;
  return markdownTable(
    ['Method', 'chosen', 'validation score of each candidate (mean over tuning seeds)'],
    records.map((r) => [
      r.label,
      formatHyperparameters(r.chosen),
      r.candidates
        .map((c) => {
          const failed = c.scores.filter((s) => !Number.isFinite(s.value)).map((s) => s.seed);
          const score =
            c.scores.length === 0
              ? 'the only candidate (no validation run)'
              : Number.isFinite(c.mean)
                ? (c.mean * scale).toFixed(digits)
                : failed.length > 0
                  ? `— (no score on tuning seed${failed.length > 1 ? 's' : ''} ${failed.join(', ')}: the run did not finish; not eligible)`
                  : '—';
          const text = `${formatHyperparameters(c.hyperparameters)}: ${score}`;
          return sameHyperparameters(c.hyperparameters, r.chosen) ? `**${text}**` : text;
        })
        .join('; '),
    ]),
  );
}
