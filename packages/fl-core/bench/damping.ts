/// <reference types="node" />
/**
 * What similarity damping (FoolsGold, `SimilarityDamping`, on by default in a task's admission
 * section) adds to a round: 100 clients × 1,000,000 parameters aggregated by FedAvg, with and
 * without damping, after `seen` clients have histories (100, 1,000, 3,000).
 *
 * Prints one line per measurement and, as its last line, one JSON object:
 *   fedavg_round_ms              FedAvg's aggregateFit alone on the round (the baseline, same run)
 *   damping_round_ms_<seen>      SimilarityDamping(FedAvg)'s aggregateFit on the same round, with
 *                                the cosines of unchanged histories kept from the round before
 *   damping_vs_fedavg_<seen>     the ratio of the two
 *   damping_close_ms_<seen>      the same round's aggregateFit when every result was shown to
 *                                `observeFit` as it arrived (what the coordinator does): the round's
 *                                close, with the sketches and the cosines against the committed
 *                                histories already computed (the same bits, checked)
 *   damping_arrival_ms_<seen>    that `observeFit`, per result: work done while the round waits
 *   damping_restart_close_ms_<seen>, damping_restart_arrival_ms_<seen>  the first round after an
 *                                import (a restart, a new leader) when its uploads are shown to
 *                                `observeFit` as they arrive: they rebuild the kept cosines a share
 *                                at a time (the arrival figure is per upload), and then the close
 *   damping_recompute_ms_<seen>  the same round with no cosine kept (every pair of histories
 *                                recomputed, as each round did before the cosines were kept, and
 *                                as the first round after a restart does)
 *   damping_sketch_ms            of each damped round, sketching the 100 updates (twice each: the
 *                                round's sketch and the history's), measured alone
 *   damping_state_mb_<seen>      the JSON of the exported state after that round (the histories travel
 *                                with every checkpoint)
 *   damping_export_ms_<seen>     exportState after a round (what each checkpoint costs: the histories
 *                                the round changed are encoded, the others' text kept), and
 *   damping_import_ms_<seen>     importState of that state (a restart, a new leader)
 * Past the default bound on the histories kept (DEFAULT_MAX_HISTORIES, 1,000), each round forgets the
 * clients seen least recently, so `<seen>` 3000 keeps 1,000 after its first round; the figures
 * `_<seen>_uncapped` are the same rounds with every history kept (`maxHistories: null`).
 * Every figure is the median of BENCH_REPS repetitions (default 3), interleaved.
 *
 * Run: npx pnpm@10.34.8 bench:damping   (env BENCH_PARAMS / BENCH_CLIENTS / BENCH_REPS / BENCH_SEEN to shrink it)
 */
import { createRng, gaussian } from '../src/rng.js';
import { tensor } from '../src/params.js';
import type { Parameters } from '../src/params.js';
import { FedAvg } from '../src/strategy/fedAvg.js';
import { DEFAULT_MAX_HISTORIES, SimilarityDamping, addSketch } from '../src/strategy/similarityDamping.js';
import type { SimilarityDampingOptions } from '../src/strategy/similarityDamping.js';
import type { FitResult, StrategyState } from '../src/strategy/types.js';

const numParams = Number(process.env.BENCH_PARAMS ?? 1_000_000);
const numClients = Number(process.env.BENCH_CLIENTS ?? 100);
const reps = Number(process.env.BENCH_REPS ?? 3);
const seenCounts = (process.env.BENCH_SEEN ?? '100,1000,3000').split(',').map(Number);
const sketchSize = 1024;

const mid = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round1 = (x: number): number => Math.round(x * 10) / 10;

const rng = createRng(2026);
console.log(`generating ${numClients} updates × ${numParams.toLocaleString('en')} parameters …`);
const global: Parameters = [tensor('w', [numParams], new Float32Array(numParams))];
/** A round's results: each client its own direction plus noise (honest clients, none damped). */
const roundOf = (r: number): FitResult[] =>
  Array.from({ length: numClients }, (_, k) => {
    const v = new Float32Array(numParams);
    const offset = (rng() - 0.5) * 0.1;
    for (let i = 0; i < numParams; i++) v[i] = offset + (rng() - 0.5) * 0.02;
    return { clientId: `c${k}`, numExamples: 10 + ((k * 7 + r) % 50), delta: [tensor('w', [numParams], v)] };
  });
const rounds = Array.from({ length: reps }, (_, r) => roundOf(r));

/** The state of a damping strategy that has seen `seen` clients (c0… among them), each with a random history. */
function stateWith(seen: number): StrategyState {
  const base = new SimilarityDamping(new FedAvg(), { sketchSize }).exportState();
  const h = createRng(seen);
  const histories = Array.from({ length: seen }, (_, k) => [`c${k}`, Array.from({ length: sketchSize }, () => gaussian(h))] as [string, number[]]);
  histories.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { ...base, json: { ...base.json, roundsAggregated: 1, lastServerRound: 1, extra: { sketchSize, excluded: [], histories } } };
}

const timed = (fn: () => unknown): number => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};

const out: Record<string, number> = {};
const fedavgMs: number[] = [];
const sketchMs: number[] = [];
/** Measures the rounds after `seen` clients have histories, under `options`; `tag` names the figures. */
function measureSeen(seen: number, options: SimilarityDampingOptions, tag: string): void {
  // The cached strategy: one round first (it computes every pair once, as after a restart), then the timed rounds.
  const cached = new SimilarityDamping(new FedAvg(), { sketchSize, ...options });
  cached.importState(stateWith(seen));
  const first = roundOf(99);
  cached.aggregateFit(2, global, first, []);
  // The same strategy in the same state, shown each result as it arrives.
  const arriving = new SimilarityDamping(new FedAvg(), { sketchSize, ...options });
  arriving.importState(stateWith(seen));
  arriving.aggregateFit(2, global, first, []);
  // What a checkpoint carries: the state as the strategy exports it.
  out[`damping_state_mb_${tag}`] = Math.round(JSON.stringify(cached.exportState().json).length / 1e4) / 100;
  const exported: number[] = [];
  const restartArrival: number[] = [];
  const restartClose: number[] = [];
  const imported: number[] = [];
  const damped: number[] = [];
  const closed: number[] = [];
  const arrival: number[] = [];
  const recompute: number[] = [];
  for (let r = 0; r < reps; r++) {
    const results = rounds[r]!;
    fedavgMs.push(timed(() => new FedAvg().aggregateFit(3 + r, global, results, [])));
    let plain: ReturnType<SimilarityDamping['aggregateFit']> = null;
    damped.push(timed(() => (plain = cached.aggregateFit(3 + r, global, results, []))));
    arrival.push(timed(() => results.forEach((x) => arriving.observeFit(3 + r, global, x))) / results.length);
    let early: ReturnType<SimilarityDamping['aggregateFit']> = null;
    closed.push(timed(() => (early = arriving.aggregateFit(3 + r, global, results, []))));
    const bits = (o: typeof plain) => Buffer.from((o as unknown as { parameters: { values: Float32Array }[] }).parameters[0]!.values.buffer);
    if (!bits(early).equals(bits(plain))) throw new Error('observing results as they arrive changed the aggregate');
    let state: StrategyState | null = null;
    exported.push(timed(() => (state = cached.exportState())));
    const fresh = new SimilarityDamping(new FedAvg(), { sketchSize, ...options });
    imported.push(timed(() => fresh.importState(state!)));
    // A restart whose first round sees its uploads arrive: they rebuild the kept cosines a share at a time.
    const restarted = new SimilarityDamping(new FedAvg(), { sketchSize, ...options });
    restarted.importState(state!);
    restartArrival.push(timed(() => results.forEach((x) => restarted.observeFit(3 + r, global, x))) / results.length);
    restartClose.push(timed(() => restarted.aggregateFit(3 + r, global, results, [])));
    recompute.push(timed(() => fresh.aggregateFit(3 + r, global, results, [])));
    sketchMs.push(
      timed(() => {
        for (const x of results) {
          addSketch(new Float32Array(sketchSize), x.delta);
          addSketch(new Float32Array(sketchSize), x.delta);
        }
      }),
    );
  }
  out[`damping_round_ms_${tag}`] = round1(mid(damped));
  out[`damping_close_ms_${tag}`] = round1(mid(closed));
  out[`damping_export_ms_${tag}`] = round1(mid(exported));
  out[`damping_restart_close_ms_${tag}`] = round1(mid(restartClose));
  out[`damping_restart_arrival_ms_${tag}`] = round1(mid(restartArrival));
  out[`damping_import_ms_${tag}`] = round1(mid(imported));
  out[`damping_arrival_ms_${tag}`] = Math.round(mid(arrival) * 100) / 100;
  out[`damping_recompute_ms_${tag}`] = round1(mid(recompute));
  console.log(
    `${seen} clients seen${options.maxHistories === null ? ', no bound on the histories kept' : ''}: damped round ${out[`damping_round_ms_${tag}`]} ms (its close ${out[`damping_close_ms_${tag}`]} ms after ${out[`damping_arrival_ms_${tag}`]} ms per arrival), every pair recomputed ${out[`damping_recompute_ms_${tag}`]} ms (after a restart with arrivals: close ${out[`damping_restart_close_ms_${tag}`]} ms after ${out[`damping_restart_arrival_ms_${tag}`]} ms per arrival), state ${out[`damping_state_mb_${tag}`]} MB (export ${out[`damping_export_ms_${tag}`]} ms, import ${out[`damping_import_ms_${tag}`]} ms)`,
  );
}
const tags: string[] = [];
for (const seen of seenCounts) {
  measureSeen(seen, {}, `${seen}`);
  tags.push(`${seen}`);
  // Past the default bound, the same rounds with every history kept: what the bound saves.
  if (seen > DEFAULT_MAX_HISTORIES) {
    measureSeen(seen, { maxHistories: null }, `${seen}_uncapped`);
    tags.push(`${seen}_uncapped`);
  }
}
out['fedavg_round_ms'] = round1(mid(fedavgMs));
out['damping_sketch_ms'] = round1(mid(sketchMs));
for (const tag of tags) out[`damping_vs_fedavg_${tag}`] = Math.round((out[`damping_round_ms_${tag}`]! / out['fedavg_round_ms']!) * 100) / 100;
console.log(`FedAvg alone ${out['fedavg_round_ms']} ms; sketching the round's updates ${out['damping_sketch_ms']} ms`);
console.log(JSON.stringify({ clients: numClients, params: numParams, sketch_size: sketchSize, ...out }));
