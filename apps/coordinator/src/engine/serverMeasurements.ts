/**
 * What only the server can measure before a round's strategy runs (FedMM-X, Balija 2025,
 * arXiv:2503.19564): every candidate model global + Δ_k evaluated on the server's probe set, the
 * current global model's probe probabilities (the loss baseline), and the server's root update. The
 * measurements reach the fl-core strategy as each result's `signals` and as the trust and FLTrust
 * strategies' round context; the strategy itself is then called by the engine, unchanged.
 * Nothing a client reported enters trust: `signals` are overwritten, never merged.
 *
 * The measurements come from a {@link TaskEvaluator} (by default a separate evaluator process), so
 * with a model the measurer returns a promise and the event loop stays free while candidates are
 * probed; without one it stays synchronous. A candidate the evaluator could not probe is left out
 * of the round as a failure with code `PROBE_FAILED` (its update is never trusted unmeasured); an
 * evaluator that fails outright rejects the promise, which the engine counts as a failed attempt.
 */
import { PROBE_SIGNAL, add } from '@chorus/fl-core';
import type { FitFailure, FitResult, Parameters, Tensor } from '@chorus/fl-core';
// Type-only: TF.js is loaded only by the evaluator (or by callers that build a model in process).
import type { ProbeOutcome, TaskEvaluator } from '../model/taskEvaluator.js';
import type { BuiltStrategy } from '../strategy/fromConfig.js';

/** `global` with the tensors of `delta` added: the candidate model of one client's update. */
export function candidateParameters(global: Parameters, delta: Parameters): Tensor[] {
  const byName = new Map(delta.map((t) => [t.name, t]));
  return global.map((g) => {
    const d = byName.get(g.name);
    if (!d) return g;
    return { name: g.name, shape: g.shape, values: add(new Float32Array(g.values.length), g.values, d.values) };
  });
}

/** A round's results and failures after the server's measurements, and what measuring took. */
export interface RoundMeasurement {
  readonly results: readonly FitResult[];
  readonly failures: readonly FitFailure[];
  /** Figures stored under their own names with the round (probe and root-update times). */
  readonly serverMetrics: Readonly<Record<string, number>>;
}

/** Measures one round before its strategy runs; see the module comment. */
export type RoundMeasurer = (
  serverRound: number,
  global: Parameters,
  results: readonly FitResult[],
  failures: readonly FitFailure[],
) => RoundMeasurement | Promise<RoundMeasurement>;

/** Results as clients sent them, without any signal a client might have smuggled in. */
function plain(results: readonly FitResult[]): FitResult[] {
  return results.map((r) => ({ clientId: r.clientId, numExamples: r.numExamples, delta: r.delta, ...(r.metrics ? { metrics: r.metrics } : {}) }));
}

/**
 * Probe outcomes measured elsewhere: a cluster node probes the uploads its own clients sent, with
 * the same model and the same global, before passing them to the task's leader. Takes (and
 * forgets) the outcome of a client's upload in the round being measured, if one was measured.
 */
export type PreProbed = (clientId: string) => ProbeOutcome | undefined;

/** The measurer of a task's strategy: synchronous without a model, through the evaluator with one. */
export function createRoundMeasurer(built: BuiltStrategy, model: TaskEvaluator | null, preProbed?: PreProbed): RoundMeasurer {
  if (model === null) {
    return (serverRound, _global, results, failures) => {
      // Without a model there is no root data (FlTrust then refuses the round, which the engine retries and logs) and no probe.
      for (const t of built.trust) t.setRoundContext(serverRound, {});
      return { results: plain(results), failures, serverMetrics: {} };
    };
  }
  return async (serverRound, global, results, failures) => {
    const serverMetrics: Record<string, number> = {};
    let rootUpdate: Parameters | undefined;
    if (built.needsRootUpdate) {
      const started = performance.now();
      rootUpdate = (await model.rootUpdate(global)) ?? undefined;
      serverMetrics['rootUpdateMs'] = performance.now() - started;
      if (rootUpdate) for (const s of built.rootUpdate) s.setRootUpdate(serverRound, rootUpdate);
    }
    let fed: FitResult[] = plain(results);
    const lost: FitFailure[] = [];
    if (built.trust.length > 0) {
      const started = performance.now();
      // Candidates probed where they arrived are not probed again; the rest (and the baseline) are, here.
      const given = fed.map((r) => preProbed?.(r.clientId));
      const missing = fed.filter((_, i) => given[i] === undefined);
      const probe = await model.probeRound(
        global,
        missing.map((r) => r.delta),
      );
      let next = 0;
      const outcomes = given.map((o) => o ?? probe.candidates[next++]);
      const kept: FitResult[] = [];
      fed.forEach((r, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) {
          const outputs = { probabilities: outcome.probabilities, ...(outcome.explanations ? { explanations: outcome.explanations } : {}) };
          kept.push({ ...r, signals: { [PROBE_SIGNAL]: outputs } });
        } else {
          lost.push({ clientId: r.clientId, code: 'PROBE_FAILED', message: outcome ? `${outcome.error.code}: ${outcome.error.message}` : 'no probe outcome' });
        }
      });
      fed = kept;
      const probeMs = performance.now() - started;
      serverMetrics['probeMs'] = probeMs;
      // The baseline is one more evaluation of the same size.
      serverMetrics['probeMsPerCandidate'] = probeMs / (missing.length + 1);
      if (missing.length < given.length) serverMetrics['numProbedElsewhere'] = given.length - missing.length;
      serverMetrics['probeExamples'] = model.probeLabels.length;
      if (lost.length > 0) serverMetrics['numProbeFailed'] = lost.length;
      for (const t of built.trust)
        t.setRoundContext(serverRound, {
          probe: { labels: model.probeLabels, baselineProbabilities: probe.baseline.probabilities },
          ...(rootUpdate ? { rootUpdate } : {}),
        });
    }
    return { results: fed, failures: lost.length > 0 ? [...failures, ...lost] : failures, serverMetrics };
  };
}
