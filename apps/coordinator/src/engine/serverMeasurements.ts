/**
 * The {@link Aggregator} the coordinator runs for a task: the fl-core strategy built from the task
 * file, fed each round with what only the server can measure (FedMM-X, Balija 2025,
 * arXiv:2503.19564): every candidate model global + Δ_k evaluated on the server's probe set, the
 * current global model's probe probabilities (the loss baseline), and FLTrust's root update.
 * Nothing a client reported enters trust: `signals` are overwritten, never merged.
 *
 * It also reports, beside the strategy's own figures, the trust scores T_k of the round, the ε spent
 * by DP wrappers, and how long probing took per candidate.
 *
 * The measurements come from a {@link TaskEvaluator} (by default a separate evaluator process), so
 * with a model `aggregateFit` returns a promise and the event loop stays free while candidates are
 * probed; without one it stays synchronous. A candidate the evaluator could not probe is left out
 * of the round as a failure with code `PROBE_FAILED` (its update is never trusted unmeasured); an
 * evaluator that fails outright rejects the promise, which the engine counts as a failed attempt.
 */
import { PROBE_SIGNAL } from '@chorus/fl-core';
import type { Parameters, StrategyState } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
// Type-only: TF.js is loaded only by the evaluator (or by callers that build a model in process).
import type { TaskEvaluator } from '../model/taskEvaluator.js';
import type { BuiltStrategy } from '../strategy/fromConfig.js';
import type { AggregateOutcome, Aggregator, AggregatorState, FitFailure, FitResult, SyncAggregator } from './aggregator.js';

/** Prefix of the per-client trust entries fl-core's TrustWeighting adds to its metrics. */
const TRUST_METRIC = 'trust:';

/** `global` with the tensors of `delta` added: the candidate model of one client's update. */
export function candidateParameters(global: Parameters, delta: Parameters): Tensor[] {
  const byName = new Map(delta.map((t) => [t.name, t]));
  return global.map((g) => {
    const d = byName.get(g.name);
    if (!d) return g;
    const values = new Float32Array(g.values.length);
    for (let i = 0; i < values.length; i++) values[i] = g.values[i]! + d.values[i]!;
    return { name: g.name, shape: g.shape, values };
  });
}

/** What the server measured for a round before the strategy runs. */
interface RoundMeasurements {
  readonly fed: readonly FitResult[];
  readonly failures: readonly FitFailure[];
  readonly serverMetrics: Record<string, number>;
}

/** Wraps a built strategy (and the task's model, when there is one) as the engine's aggregator. */
export function createServerAggregator(built: BuiltStrategy, model: null): SyncAggregator;
/** Wraps a built strategy (and the task's model, when there is one) as the engine's aggregator. */
export function createServerAggregator(built: BuiltStrategy, model: TaskEvaluator | null): Aggregator;
export function createServerAggregator(built: BuiltStrategy, model: TaskEvaluator | null): Aggregator {
  const { strategy } = built;
  const plain = (results: readonly FitResult[]): FitResult[] =>
    results.map((r) => ({ clientId: r.clientId, numExamples: r.numExamples, delta: r.delta, ...(r.metrics ? { metrics: r.metrics } : {}) }));

  const measure = async (serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[], evaluator: TaskEvaluator): Promise<RoundMeasurements> => {
    const serverMetrics: Record<string, number> = {};
    let rootUpdate: Parameters | undefined;
    if (built.flTrust.length > 0) {
      const started = performance.now();
      rootUpdate = (await evaluator.rootUpdate(global)) ?? undefined;
      serverMetrics['rootUpdateMs'] = performance.now() - started;
      if (rootUpdate) for (const s of built.flTrust) s.setRootUpdate(serverRound, rootUpdate);
    }
    let fed: FitResult[] = plain(results);
    const lost: FitFailure[] = [];
    if (built.trust.length > 0) {
      const started = performance.now();
      const probe = await evaluator.probeRound(global, fed.map((r) => r.delta));
      const kept: FitResult[] = [];
      fed.forEach((r, i) => {
        const outcome = probe.candidates[i];
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
      serverMetrics['probeMsPerCandidate'] = probeMs / (results.length + 1);
      serverMetrics['probeExamples'] = evaluator.probeLabels.length;
      if (lost.length > 0) serverMetrics['numProbeFailed'] = lost.length;
      for (const t of built.trust) t.setRoundContext(serverRound, { probe: { labels: evaluator.probeLabels, baselineProbabilities: probe.baseline.probabilities }, ...(rootUpdate ? { rootUpdate } : {}) });
    }
    return { fed, failures: lost.length > 0 ? [...failures, ...lost] : failures, serverMetrics };
  };

  const finish = (serverRound: number, global: Parameters, m: RoundMeasurements): AggregateOutcome | null => {
    const { serverMetrics } = m;
    const out = strategy.aggregateFit(serverRound, global, m.fed, m.failures);
    if (!out) return null;
    const metrics: Record<string, number> = {};
    const trust: { clientId: string; trust: number }[] = [];
    for (const [key, value] of Object.entries(out.metrics)) {
      if (key.startsWith(TRUST_METRIC)) trust.push({ clientId: key.slice(TRUST_METRIC.length), trust: value });
      else metrics[key] = value;
    }
    const dp = built.privacy[0];
    if (dp) {
      serverMetrics['epsilon'] = dp.epsilon;
      if (typeof out.metrics['delta'] === 'number') serverMetrics['delta'] = out.metrics['delta'];
    }
    if (built.trust.length > 0) {
      // TrustWeighting reports zero-trust clients as rejected; those under minTrust are counted by the threshold inside it.
      serverMetrics['numUntrusted'] = out.rejected.filter((r) => r.code === 'UNTRUSTED').length + (out.metrics['numBelowMinTrust'] ?? 0);
    }
    return { parameters: out.parameters, metrics, serverMetrics, trust };
  };

  const state = {
    exportState(): AggregatorState {
      return strategy.exportState();
    },
    importState(state: AggregatorState): void {
      // The engine stores exactly what exportState produced, so the JSON half has the full fl-core shape.
      strategy.importState(state as StrategyState);
    },
  };
  if (model === null) {
    return {
      name: strategy.name,
      aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateOutcome | null {
        // Without a model there is no root data (FlTrust then refuses the round, which the engine retries and logs) and no probe.
        for (const t of built.trust) t.setRoundContext(serverRound, {});
        return finish(serverRound, global, { fed: plain(results), failures, serverMetrics: {} });
      },
      ...state,
    };
  }
  return {
    name: strategy.name,
    async aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): Promise<AggregateOutcome | null> {
      const measured = await measure(serverRound, global, results, failures, model);
      // Synchronous from here: the strategy's state changes in one step after every measurement is in.
      return finish(serverRound, global, measured);
    },
    ...state,
  };
}
