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
import type { ArrivalMeasurement } from './arrivalProbe.js';
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
 * A probe outcome measured before the round closed, with the same model and the same global:
 * `elsewhere`, by the cluster node the upload arrived at before it passed the upload to the task's
 * leader (cluster/localProbe.ts); `arrival`, by this node's evaluator as the upload arrived
 * (arrivalProbe.ts), perhaps still under way. `undefined`: not measured after all (probe it here).
 */
export type PreProbe =
  { readonly where: 'elsewhere'; readonly outcome: ProbeOutcome } | { readonly where: 'arrival'; readonly measured: Promise<ArrivalMeasurement | undefined> };

/** Takes (and forgets) what was measured of a client's upload in the round being measured, if anything. */
export type PreProbed = (clientId: string) => PreProbe | undefined;

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
      // Candidates probed where or as they arrived are not probed again; the rest (and the baseline) are, here.
      const pre = fed.map((r) => preProbed?.(r.clientId));
      const arrived = await Promise.all(pre.map((p) => (p?.where === 'arrival' ? p.measured : undefined)));
      const given = pre.map((p, i) => (p?.where === 'elsewhere' ? p.outcome : arrived[i]?.outcome));
      const missing = fed.filter((_, i) => given[i] === undefined);
      const ownStarted = performance.now();
      const probe = await model.probeRound(
        global,
        missing.map((r) => r.delta),
      );
      const ownMs = performance.now() - ownStarted;
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
      // From the round's close: what of the probe was left on its critical path.
      serverMetrics['probeMs'] = performance.now() - started;
      // This node's evaluator time per candidate, on arrival and here (the baseline is one more candidate).
      const onArrival = arrived.filter((a) => a !== undefined);
      serverMetrics['probeMsPerCandidate'] = (ownMs + onArrival.reduce((sum, a) => sum + a.ms, 0)) / (missing.length + 1 + onArrival.length);
      const elsewhere = pre.filter((p) => p?.where === 'elsewhere').length;
      if (elsewhere > 0) serverMetrics['numProbedElsewhere'] = elsewhere;
      if (onArrival.length > 0) serverMetrics['numProbedOnArrival'] = onArrival.length;
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
