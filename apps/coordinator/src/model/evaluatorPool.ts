/**
 * Several evaluator processes for one task, so a round's trust probe uses several cores: the
 * candidates of `probeRound` and `probeCandidates` are split into contiguous parts, one per
 * process, and everything else (the evaluation of each new global, FLTrust's root update, exports,
 * the split edge) is asked of the first process alone.
 *
 * Every process builds the same model from the same task and seed, and a candidate's outputs do
 * not depend on the candidates probed with it (passes are padded to a fixed size: packages/models
 * cachedProbe.ts), so a round's outcomes are the same bits whichever process probed each candidate.
 * The pool checks at start that every process reports the same initial parameters and probe labels.
 */
import { CoordinatorError } from '../errors.js';
import type { Parameters, Tensor } from '@chorus/fl-core';
import type { TaskConfig } from '@chorus/protocol';
import type { ExportedArtifacts } from './taskModel.js';
import type { EvaluatorProcessOptions, ProbeOutcome, RoundProbe, TaskEvaluator } from './taskEvaluator.js';
import { EvaluatorProcess } from './taskEvaluator.js';

/** Contiguous parts of `items`, one per worker, as even as `granule`-sized blocks allow (empty parts dropped). */
export function splitEvenly<T>(items: readonly T[], parts: number, granule: number): T[][] {
  const blocks = Math.ceil(items.length / granule);
  const out: T[][] = [];
  let start = 0;
  for (let p = 0; p < parts && start < items.length; p++) {
    const take = Math.ceil((blocks - Math.floor(start / granule)) / (parts - p)) * granule;
    out.push(items.slice(start, start + take));
    start += take;
  }
  return out;
}

/** Candidates per part's block: a whole number of the evaluator's requests (its default probe batch). */
const GRANULE = 8;

/** A {@link TaskEvaluator} over several evaluator processes; see the module comment. */
export class EvaluatorPool implements TaskEvaluator {
  private constructor(private readonly members: readonly EvaluatorProcess[]) {}

  /** Starts `size` evaluator processes for `task` (at least 2); rejects when any fails or they disagree. */
  static async start(task: TaskConfig, size: number, options: EvaluatorProcessOptions = {}): Promise<EvaluatorPool> {
    if (!Number.isInteger(size) || size < 2) throw new CoordinatorError('EVALUATOR_ERROR', `an evaluator pool needs at least 2 processes, got ${size}`);
    const started = await Promise.allSettled(Array.from({ length: size }, () => EvaluatorProcess.start(task, options)));
    const members = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await Promise.all(members.map((m) => m.close()));
      throw failure.reason;
    }
    const [first, ...rest] = members;
    const reference = JSON.stringify(first!.initialParameters().map((t) => [t.name, t.shape, Array.from(t.values)]));
    for (const m of rest) {
      const same =
        JSON.stringify(m.initialParameters().map((t) => [t.name, t.shape, Array.from(t.values)])) === reference &&
        m.probeLabels.length === first!.probeLabels.length &&
        m.probeLabels.every((label, i) => label === first!.probeLabels[i]);
      if (!same) {
        await Promise.all(members.map((x) => x.close()));
        throw new CoordinatorError('EVALUATOR_ERROR', 'the evaluator processes built different models from the same task');
      }
    }
    return new EvaluatorPool(members);
  }

  private get first(): EvaluatorProcess {
    return this.members[0]!;
  }

  /** Number of processes. */
  get size(): number {
    return this.members.length;
  }

  /** Process ids of the members now running (null for one between a death and its restart). */
  get pids(): (number | null)[] {
    return this.members.map((m) => m.pid);
  }

  get modalities(): EvaluatorProcess['modalities'] {
    return this.first.modalities;
  }

  get probeLabels(): Int32Array {
    return this.first.probeLabels;
  }

  get split(): EvaluatorProcess['split'] {
    return this.first.split;
  }

  initialParameters(): Tensor[] {
    return this.first.initialParameters();
  }

  async probeRound(global: Parameters, deltas: readonly Parameters[]): Promise<RoundProbe> {
    // The first process also scores the global (the baseline), so it takes the first part.
    const [own = [], ...others] = splitEvenly(deltas, this.members.length, GRANULE);
    const [round, ...parts] = await Promise.all([
      this.first.probeRound(global, own),
      ...others.map((part, i) => this.members[i + 1]!.probeCandidates(global, part)),
    ]);
    return { baseline: round.baseline, candidates: [...round.candidates, ...parts.flat()] };
  }

  async probeCandidates(global: Parameters, deltas: readonly Parameters[]): Promise<ProbeOutcome[]> {
    const parts = splitEvenly(deltas, this.members.length, GRANULE);
    return (await Promise.all(parts.map((part, i) => this.members[i]!.probeCandidates(global, part)))).flat();
  }

  evaluate(parameters: Parameters): Promise<Record<string, number>> {
    return this.first.evaluate(parameters);
  }

  rootUpdate(global: Parameters): Promise<Tensor[] | null> {
    return this.first.rootUpdate(global);
  }

  exportMerged(parameters: Parameters): Promise<ExportedArtifacts> {
    return this.first.exportMerged(parameters);
  }

  exportAdapters(parameters: Parameters): Promise<ExportedArtifacts> {
    return this.first.exportAdapters(parameters);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }

  async suspend(): Promise<void> {
    await Promise.all(this.members.map((m) => m.suspend()));
  }

  async prepare(): Promise<void> {
    await Promise.all(this.members.map((m) => m.prepare()));
  }
}
