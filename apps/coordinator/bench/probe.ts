/**
 * Trust-probe benchmark (not a test): how fast one evaluator scores FedMM-X candidates (global + Δ_k)
 * of the demo task (tasks/demo-digits.yaml: image + text + audio, 64 probe examples, LoRA r = 4) on
 * the WASM backend. The candidates are the initial global plus seeded random deltas over every
 * adapter tensor. Prints progress lines, then as its LAST line one JSON object:
 *
 * Each figure is measured twice: with every candidate changing every adapter tensor (the plain keys),
 * and with candidates that hold modality sets mixed as in FedMM-X's experiments (`--modality-kinds`,
 * default `fedmmx`: image / text / audio / image+text / image+text+audio at 0.2 each, dealt as the
 * headless clients deal them; the `_mixed` keys): a
 * client without a modality sends no delta for its group, and the cache computes each encoder's
 * embeddings once for every candidate that leaves it out.
 *
 *   probe_candidates_per_s         — candidates per second through one evaluator process
 *                                    (EvaluatorProcess.probeRound of the global and the deltas, as a
 *                                    round asks it: codec, IPC, cached probe), median of the timed reps;
 *   probe_ms_per_candidate         — 1000 / that;
 *   probe_ms_per_candidate_in_process — TaskModel.probeCandidates of the same candidates in this
 *                                    process (the probe set's frozen activations cached, several
 *                                    candidates per pass);
 *   probe_ms_per_candidate_one_per_pass — the same with one candidate per pass (the cache alone);
 *   probe_ms_per_candidate_baseline — TaskModel.probeOneByOne, the whole model per candidate (the
 *                                    path before the cache), in this process, in the same run;
 *   probe_speedup                  — baseline ÷ in-process;
 *   probe_cache_build_ms           — building the cache (once per evaluator, on its first probe);
 *   eval_ms                        — TaskModel.evaluate of one global on the test subset (overall and
 *                                    each modality alone) over the test set's cached frozen activations,
 *                                    median of the timed reps; eval_ms_uncached, the whole model run once
 *                                    overall and once per modality (TaskModel.evaluateUncached, the path
 *                                    before the cache), same run; eval_first_ms, the first evaluation,
 *                                    which builds that cache; eval_cache_mb, what the cache keeps.
 *
 * Usage: pnpm bench:probe [--candidates N] [--reps N] [--baseline N] [--modality-kinds fedmmx|image+text=0.5,…]
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRng, groupOf } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { parse as parseYaml } from 'yaml';
import { candidateParameters } from '../src/engine/serverMeasurements.js';
import { EvaluatorProcess } from '../src/model/taskEvaluator.js';
import { TaskModel } from '../src/model/taskModel.js';
import { parseTask } from '../src/task/loadTask.js';
import { dealModalities, modalityKindsOption } from './modalityKinds.js';

const { values: args } = parseArgs({
  options: {
    candidates: { type: 'string', default: '100' },
    reps: { type: 'string', default: '3' },
    baseline: { type: 'string', default: '12' },
    'modality-kinds': { type: 'string', default: 'fedmmx' },
  },
});
/** Modality sets and their shares (`fedmmx`, or the headless clients' syntax). */
const KINDS = modalityKindsOption(args['modality-kinds']);
const NUM_CANDIDATES = Number(args.candidates);
const REPS = Number(args.reps);
const BASELINE_CANDIDATES = Number(args.baseline);

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const demo = parseYaml(readFileSync(join(packageRoot, 'tasks', 'demo-digits.yaml'), 'utf8')) as Record<string, unknown>;
const task = parseTask({ ...demo, id: 'bench-probe' }, 'demo-digits.yaml');

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round2 = (x: number) => Number(x.toFixed(2));

/** `count` seeded deltas over every tensor of `global`, of the size a round of local training gives. */
function randomDeltas(global: readonly Tensor[], count: number, seed: number): Tensor[][] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => global.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map(() => 0.02 * (rng() * 2 - 1)) })));
}

/**
 * `deltas` as clients holding the modality sets {@link KINDS} deals them send them: without the
 * tensors of the modalities' groups they lack (`<modality>/…`); the shared groups stay.
 */
function withModalityKinds(deltas: readonly Tensor[][], modalities: readonly string[]): Tensor[][] {
  const held = dealModalities(KINDS, deltas.length, 7);
  return deltas.map((delta, i) =>
    delta.filter((t) => {
      const group = groupOf(t.name);
      return !modalities.includes(group) || (held[i]! as readonly string[]).includes(group);
    }),
  );
}

/** The global, then global + Δ for each of `deltas` (formed as the coordinator forms candidates). */
function candidatesOf(global: readonly Tensor[], deltas: readonly Tensor[][]): Tensor[][] {
  return [[...global], ...deltas.map((d) => candidateParameters(global, d))];
}

/**
 * Median ms per candidate of `run(rep)` over repetitions 1…`reps` of `count` candidates, after one
 * warm-up (rep 0). Each repetition gets its own candidates, as each round does: the cache keeps the
 * last few adapter sets' embeddings, so the same candidates again would cost less.
 */
function timed(reps: number, count: number, run: (rep: number) => void): number {
  run(0);
  const ms: number[] = [];
  for (let r = 1; r <= reps; r++) {
    const started = performance.now();
    run(r);
    ms.push((performance.now() - started) / count);
  }
  return median(ms);
}

async function main(): Promise<void> {
  const model = await TaskModel.create(task);
  const onePerPass = await TaskModel.create(task, { candidatesPerProbePass: 1 });
  try {
    const global = model.initialParameters();
    // One round of deltas per repetition (rep 0: the warm-up).
    const rounds = Array.from({ length: REPS + 1 }, (_, r) => randomDeltas(global, NUM_CANDIDATES, 2024 + r));
    const mixedRounds = rounds.map((deltas) => withModalityKinds(deltas, model.modalities));
    const candidatesOfRound = rounds.map((deltas) => candidatesOf(global, deltas));
    const mixedOfRound = mixedRounds.map((deltas) => candidatesOf(global, deltas));
    const candidates = candidatesOfRound[0]!;
    const deltas = rounds[0]!;
    console.log(`demo task: ${task.evaluation.probeExamples} probe examples, ${model.modalities.join(' + ')}, ${candidates.length} candidates`);

    let started = performance.now();
    model.probeCandidates(candidates.slice(0, 1));
    const buildMs = performance.now() - started;
    onePerPass.probeCandidates(candidates.slice(0, 1));

    const inProcess = timed(REPS, candidates.length, (r) => model.probeCandidates(candidatesOfRound[r]!));
    const inProcessMixed = timed(REPS, candidates.length, (r) => model.probeCandidates(mixedOfRound[r]!));
    const single = timed(REPS, candidates.length, (r) => onePerPass.probeCandidates(candidatesOfRound[r]!));
    const few = candidates.slice(0, BASELINE_CANDIDATES);
    const baseline = timed(Math.max(1, REPS - 1), few.length, () => model.probeOneByOne(few));
    console.log(`in this process, candidates holding mixed modality sets: ${inProcessMixed.toFixed(2)} ms per candidate`);
    console.log(
      `in this process: ${inProcess.toFixed(2)} ms per candidate cached (${single.toFixed(2)} with one per pass), ${baseline.toFixed(2)} ms running the whole model per candidate (${few.length} candidates); cache built in ${buildMs.toFixed(0)} ms`,
    );

    started = performance.now();
    model.evaluate(candidates[1]!);
    const evalFirstMs = performance.now() - started;
    // A new global each time, as after each round: the cache keeps the last adapters' embeddings, so the same one again would cost less.
    let next = 2;
    const evalMs = timed(REPS, 1, () => model.evaluate(candidates[next++]!));
    const evalUncachedMs = timed(Math.max(1, REPS - 1), 1, () => model.evaluateUncached(candidates[2]!));
    const evalCacheMb = model.evaluationCacheBytes / 2 ** 20;
    console.log(
      `evaluation of a global on ${task.evaluation.testExamples} test examples: ${evalMs.toFixed(1)} ms cached, ${evalUncachedMs.toFixed(1)} ms running the whole model; first (builds the cache of ${evalCacheMb.toFixed(1)} MB) ${evalFirstMs.toFixed(0)} ms`,
    );

    const evaluator = await EvaluatorProcess.start(task);
    const perRound: number[] = [];
    const perRoundMixed: number[] = [];
    try {
      // The first round builds the evaluator's cache.
      await evaluator.probeRound(global, rounds[0]!);
      for (let r = 1; r <= REPS; r++) {
        for (const [sent, times] of [
          [rounds[r]!, perRound],
          [mixedRounds[r]!, perRoundMixed],
        ] as const) {
          started = performance.now();
          const round = await evaluator.probeRound(global, sent);
          times.push(performance.now() - started);
          if (round.candidates.some((o) => !o.ok)) throw new Error('a candidate could not be probed');
        }
      }
    } finally {
      await evaluator.close();
    }
    const roundMs = median(perRound);
    const perSecond = (candidates.length / roundMs) * 1000;
    const perSecondMixed = (candidates.length / median(perRoundMixed)) * 1000;
    console.log(
      `evaluator process: probeRound of the global + ${deltas.length} candidates in ${roundMs.toFixed(0)} ms (${perRound.map((x) => x.toFixed(0)).join(', ')}): ${perSecond.toFixed(1)} candidates/s; ${perSecondMixed.toFixed(1)} with mixed modality sets`,
    );
    console.log(
      JSON.stringify({
        probe_candidates_per_s: Number(perSecond.toFixed(1)),
        probe_ms_per_candidate: round2(1000 / perSecond),
        probe_ms_per_candidate_in_process: round2(inProcess),
        probe_candidates_per_s_mixed: Number(perSecondMixed.toFixed(1)),
        probe_ms_per_candidate_mixed: round2(1000 / perSecondMixed),
        probe_ms_per_candidate_in_process_mixed: round2(inProcessMixed),
        probe_ms_per_candidate_one_per_pass: round2(single),
        probe_ms_per_candidate_baseline: round2(baseline),
        probe_speedup: Number((baseline / inProcess).toFixed(1)),
        probe_cache_build_ms: Math.round(buildMs),
        probe_round_ms: Math.round(roundMs),
        candidates: candidates.length,
        baseline_candidates: few.length,
        probe_examples: task.evaluation.probeExamples,
        eval_ms: Number(evalMs.toFixed(1)),
        eval_ms_uncached: Number(evalUncachedMs.toFixed(1)),
        eval_first_ms: Math.round(evalFirstMs),
        eval_cache_mb: Number(evalCacheMb.toFixed(1)),
        test_examples: task.evaluation.testExamples,
        reps: REPS,
      }),
    );
  } finally {
    model.dispose();
    onePerPass.dispose();
  }
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
