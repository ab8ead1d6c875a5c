import type { Shard } from './args.js';
import type { RunCache } from './runCache.js';
import type { VerifySpec } from './verify.js';

/**
 * What every experiment section returns to the report: its Markdown, its figures, its raw numbers
 * and the sanity checks `--quick` asserts in CI.
 */

/** One figure, written next to the report as `file` (SVG text). */
export interface Figure {
  /** File name under the results folder, e.g. `trust-over-rounds.svg`. */
  readonly file: string;
  readonly svg: string;
}

/** One sanity check: `ok` false fails `pnpm experiments --quick`. */
export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** A section of the report. */
export interface SectionResult {
  /** Stable id, also the name of its raw-results file (`raw/<id>.json`). */
  readonly id: string;
  readonly title: string;
  /** Markdown body (tables, reading of the figures); figures are referenced by file name. */
  readonly markdown: string;
  readonly figures: readonly Figure[];
  /** Every measured number behind the tables, with the task settings and seeds that produced it. */
  readonly raw: unknown;
  readonly checks: readonly Check[];
  /** The seeds the section used, when fewer than the invocation's (the report's seed column shows these). */
  readonly seeds?: readonly number[];
  /** Wall-clock time the section took. */
  readonly durationMs: number;
}

/** What a section is given. */
export interface ExperimentContext {
  /** Reduced grid for CI (the whole quick report in ≤ 10 minutes on 2 cores). */
  readonly quick: boolean;
  /** Seeds every configuration is repeated over (≥ 3 in the full mode). */
  readonly seeds: readonly number[];
  /** Progress lines for the terminal. */
  readonly log: (line: string) => void;
  /** Finished runs kept between invocations (absent: none); a section that uses it reruns only the missing cells. */
  readonly cache?: RunCache;
  /** Run only this part of the grid's missing cells (absent: all); the cells of the other parts are taken from the cache when there. */
  readonly shard?: Shard;
}

/** One section the CLI can run. */
export interface SectionEntry {
  readonly id: string;
  readonly run: (ctx: ExperimentContext) => Promise<SectionResult>;
  /** Measured minutes of its quick grid on 2 cores: sections start longest first, so `--jobs 2` ends soonest (absent: 0). */
  readonly quickMinutes?: number;
  /** How `--verify` recomputes its stored runs (absent: the section keeps none). */
  readonly verify?: VerifySpec;
}
