/// <reference types="node" />
/**
 * Aggregation throughput on 100 updates × 1,000,000 parameters (400 MB of float32).
 *
 * Prints one line per measurement and, as its last line, one JSON object:
 *   fedavg_vs_memcpy        FedAvg throughput ÷ throughput of copying every update into one
 *                           reused 4 MB buffer (Float32Array.set) in the same run (goal ≥ 0.5).
 *                           FedAvg here is the path the coordinator would use: fedAvgArena over
 *                           an update arena the messages were already decoded into (decoding is
 *                           work the coordinator does for every update anyway; it is timed apart)
 *   fedavg_vs_memcpy_best   the same from the fastest repetition of each (least disturbed by load)
 *   fedavg_with_decode_vs_memcpy
 *                           the same with decoding all messages into the arena inside the time
 *   fedavg_staged_vs_memcpy fedAvg on ordinary Float32Arrays, which copies blocks into WebAssembly
 *                           memory on the way (the only path before the arena)
 *   fedavg_vs_concat_copy   the arena figure against copying every update into one 400 MB buffer
 *   median_vs_fedavg        median time ÷ staged FedAvg time, both on ordinary Float32Arrays (goal ≤ 8)
 *   trimmed_mean_vs_fedavg  trimmed mean (β = 0.1) time ÷ staged FedAvg time (goal ≤ 8)
 *   median_vs_fedavg_arena, trimmed_mean_vs_fedavg_arena
 *                           the same two against the arena FedAvg
 *   krum_ms_100x1m          Multi-Krum (f = 10, m = 50) time in ms
 *   simd                    whether fedAvg / median / trimmedMean ran their WebAssembly SIMD kernels
 *   arena_simd              whether the arena lives in WebAssembly memory (else the scalar path)
 *   fedavg_scalar_vs_memcpy, median_scalar_vs_fedavg, trimmed_mean_scalar_vs_fedavg
 *                           the same figures for the scalar JavaScript kernels (the fallback)
 *   exact_sum_vs_fedavg     ExactSum (the exact, order-free sum behind partial sums across
 *                           coordinator nodes: each update added, then the mean read) time ÷ the
 *                           scalar float64 FedAvg's time; exact_sum_ms its time
 *   decode_arena_ms, decode_fresh_ms
 *                           decoding the 100 fp32 messages into the arena, and with decodeUpdate
 *                           into fresh arrays (what the coordinator does today)
 * The median and the trimmed mean are timed through their public functions on ordinary
 * Float32Arrays, so the copy of each update into WebAssembly memory that their SIMD kernels need is
 * part of the time.
 * Every figure is the median of several repetitions; timed runs are interleaved so that load on
 * a shared machine hits all of them alike.
 *
 * Run: npx pnpm@10.34.8 bench:aggregate   (env BENCH_PARAMS / BENCH_CLIENTS / BENCH_REPS to shrink it)
 */
import { createRng } from '../src/rng.js';
import { decodeUpdate, encodeUpdate } from '../src/codec/codec.js';
import { fedAvg, fedAvgScalar } from '../src/aggregation/fedAvg.js';
import { fedAvgArena } from '../src/aggregation/fedAvgArena.js';
import { ExactSum } from '../src/aggregation/exactSum.js';
import { krum } from '../src/aggregation/krum.js';
import { median, medianScalar } from '../src/aggregation/median.js';
import { trimmedMean, trimmedMeanScalar } from '../src/aggregation/trimmedMean.js';
import { wasmSimdAvailable } from '../src/simd/kernels.js';
import { createUpdateArena } from '../src/simd/updateArena.js';

const numParams = Number(process.env.BENCH_PARAMS ?? 1_000_000);
const numClients = Number(process.env.BENCH_CLIENTS ?? 100);
const reps = Number(process.env.BENCH_REPS ?? 5);
const krumReps = Math.max(1, Math.min(3, reps));

function mid(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

let sink = 0;
function time(fn: () => Float32Array | { aggregate: Float32Array } | { tensors: { values: Float32Array }[] }): number {
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  // Use the result so the work cannot be optimised away.
  sink += ('aggregate' in out ? out.aggregate : 'tensors' in out ? out.tensors[0]!.values : out)[0]!;
  return ms;
}

const rng = createRng(2024);
console.log(`generating ${numClients} updates × ${numParams.toLocaleString('en')} parameters …`);
const updates = Array.from({ length: numClients }, () => {
  const u = new Float32Array(numParams);
  // Client-specific offset plus noise: realistic spread for the order statistics.
  const offset = (rng() - 0.5) * 0.1;
  for (let i = 0; i < numParams; i++) u[i] = offset + (rng() - 0.5) * 0.02;
  return u;
});
const weights = updates.map(() => 1 + Math.floor(rng() * 1000));
const hotBuffer = new Float32Array(numParams);
const concatBuffer = new Float32Array(numClients * numParams);

// The messages the coordinator would receive, and the arena it would decode them into.
const layout = { names: ['w'], shapes: [[numParams]], offsets: [0], size: numParams };
const messages = updates.map((u, k) =>
  encodeUpdate({ kind: 'delta', taskId: 'bench', round: 1, clientId: `c${k}`, encoding: 'fp32', tensors: [{ name: 'w', shape: [numParams], values: u }] }),
);
const limits = { maxBytes: numParams * 4 + 1024 };
const arena = createUpdateArena({ layout, capacity: numClients });
const decodeIntoArena = () => {
  arena.clear();
  for (const bytes of messages) arena.decode(bytes, limits);
  return arena.row(0);
};
const decodeFresh = () => {
  let last = decodeUpdate(messages[0]!, limits);
  for (let k = 1; k < numClients; k++) last = decodeUpdate(messages[k]!, limits);
  return last;
};

const copyHot = () => {
  for (const u of updates) hotBuffer.set(u);
  return hotBuffer;
};
// The weights are whole example counts, as an exact sum needs.
const exactMean = () => {
  const sum = new ExactSum(numParams);
  for (let k = 0; k < numClients; k++) sum.add(updates[k]!, weights[k]!);
  return sum.quotient(weights.reduce((a, b) => a + b, 0));
};
const copyConcat = () => {
  for (let k = 0; k < numClients; k++) concatBuffer.set(updates[k]!, k * numParams);
  return concatBuffer;
};

// Warm-up: let the JIT compile every kernel and fault in every page before timing.
copyHot();
copyConcat();
fedAvg(updates, weights);
fedAvgScalar(updates, weights);
exactMean();
decodeFresh();
decodeIntoArena();
fedAvgArena(arena, weights);
median(updates.slice(0, 8).map((u) => u.subarray(0, 100_000)));
medianScalar(updates.slice(0, 8).map((u) => u.subarray(0, 100_000)));
trimmedMean(
  updates.slice(0, 8).map((u) => u.subarray(0, 100_000)),
  0.1,
);
trimmedMeanScalar(
  updates.slice(0, 8).map((u) => u.subarray(0, 100_000)),
  0.1,
);

const t = {
  copyHot: [] as number[],
  copyConcat: [] as number[],
  fedAvg: [] as number[],
  fedAvgArena: [] as number[],
  decodeArena: [] as number[],
  decodeFresh: [] as number[],
  fedAvgScalar: [] as number[],
  exact: [] as number[],
  median: [] as number[],
  medianScalar: [] as number[],
  trimmed: [] as number[],
  trimmedScalar: [] as number[],
};
// FedAvg and the copies take tens of milliseconds, so they get more repetitions of their own, each
// FedAvg right after a copy, so that a burst of load from other processes hits both.
const fedReps = Math.max(15, 3 * reps);
for (let r = 0; r < fedReps; r++) {
  t.copyHot.push(time(copyHot));
  t.fedAvgArena.push(time(() => fedAvgArena(arena, weights)));
  t.copyConcat.push(time(copyConcat));
  t.fedAvg.push(time(() => fedAvg(updates, weights)));
}
console.log(
  `fedAvg, ${fedReps} repetitions: copy(4 MB buffer) ${t.copyHot.map((x) => x.toFixed(1)).join(' ')} ms\n` +
    `  fedAvg(arena) ${t.fedAvgArena.map((x) => x.toFixed(1)).join(' ')} ms\n` +
    `  fedAvg(staged) ${t.fedAvg.map((x) => x.toFixed(1)).join(' ')} ms`,
);
for (let r = 0; r < reps; r++) {
  t.decodeArena.push(time(decodeIntoArena));
  t.decodeFresh.push(time(decodeFresh));
  t.median.push(time(() => median(updates)));
  t.trimmed.push(time(() => trimmedMean(updates, 0.1)));
  t.fedAvgScalar.push(time(() => fedAvgScalar(updates, weights)));
  t.exact.push(time(exactMean));
  t.medianScalar.push(time(() => medianScalar(updates)));
  t.trimmedScalar.push(time(() => trimmedMeanScalar(updates, 0.1)));
  console.log(
    `rep ${r + 1}/${reps}: decode into arena ${t.decodeArena.at(-1)!.toFixed(1)} ms, decodeUpdate ${t.decodeFresh.at(-1)!.toFixed(1)} ms, median ${t.median.at(-1)!.toFixed(1)} ms, trimmedMean ${t.trimmed.at(-1)!.toFixed(1)} ms, ` +
      `scalar fedAvg ${t.fedAvgScalar.at(-1)!.toFixed(1)} ms, exact sum ${t.exact.at(-1)!.toFixed(1)} ms, scalar median ${t.medianScalar.at(-1)!.toFixed(1)} ms, scalar trimmedMean ${t.trimmedScalar.at(-1)!.toFixed(1)} ms`,
  );
}
const krumTimes: number[] = [];
const numByzantine = Math.max(0, Math.min(10, Math.floor((numClients - 3) / 2)));
for (let r = 0; r < krumReps; r++) {
  krumTimes.push(time(() => krum(updates, { numByzantine, numToKeep: Math.max(1, Math.floor(numClients / 2)) })));
  console.log(`multi-krum rep ${r + 1}/${krumReps}: ${krumTimes.at(-1)!.toFixed(1)} ms`);
}

const bytes = numClients * numParams * 4;
const ms = {
  copyHot: mid(t.copyHot),
  copyConcat: mid(t.copyConcat),
  fedAvg: mid(t.fedAvg),
  fedAvgArena: mid(t.fedAvgArena),
  decodeArena: mid(t.decodeArena),
  decodeFresh: mid(t.decodeFresh),
  fedAvgScalar: mid(t.fedAvgScalar),
  exact: mid(t.exact),
  median: mid(t.median),
  medianScalar: mid(t.medianScalar),
  trimmed: mid(t.trimmed),
  trimmedScalar: mid(t.trimmedScalar),
  krum: mid(krumTimes),
};
const gbps = (m: number) => (bytes / 1e9 / (m / 1e3)).toFixed(2);
console.log(
  `medians: copy(4 MB) ${ms.copyHot.toFixed(1)} ms (${gbps(ms.copyHot)} GB/s), copy(concat) ${ms.copyConcat.toFixed(1)} ms (${gbps(ms.copyConcat)} GB/s)`,
);
console.log(
  `         fedAvg(arena) ${ms.fedAvgArena.toFixed(1)} ms (${gbps(ms.fedAvgArena)} GB/s), decode into arena ${ms.decodeArena.toFixed(1)} ms, decodeUpdate ${ms.decodeFresh.toFixed(1)} ms`,
);
console.log(
  `         fedAvg(staged) ${ms.fedAvg.toFixed(1)} ms (${gbps(ms.fedAvg)} GB/s), median ${ms.median.toFixed(1)} ms, trimmedMean ${ms.trimmed.toFixed(1)} ms, multi-krum ${ms.krum.toFixed(1)} ms`,
);
console.log(
  `         scalar kernels: fedAvg ${ms.fedAvgScalar.toFixed(1)} ms, median ${ms.medianScalar.toFixed(1)} ms, trimmedMean ${ms.trimmedScalar.toFixed(1)} ms; SIMD kernels ${wasmSimdAvailable() ? 'on' : 'unavailable'}`,
);

if (Number.isNaN(sink)) console.log('(a result held NaN)');
const round3 = (x: number) => Math.round(x * 1000) / 1000;
console.log(
  JSON.stringify({
    num_clients: numClients,
    num_params: numParams,
    reps,
    fedavg_reps: fedReps,
    fedavg_vs_memcpy: round3(ms.copyHot / ms.fedAvgArena),
    fedavg_vs_concat_copy: round3(ms.copyConcat / ms.fedAvgArena),
    median_vs_fedavg: round3(ms.median / ms.fedAvg),
    trimmed_mean_vs_fedavg: round3(ms.trimmed / ms.fedAvg),
    krum_ms_100x1m: Math.round(ms.krum),
    simd: wasmSimdAvailable(),
    arena_simd: arena.simd,
    fedavg_vs_memcpy_best: round3(Math.min(...t.copyHot) / Math.min(...t.fedAvgArena)),
    fedavg_with_decode_vs_memcpy: round3(ms.copyHot / (ms.decodeArena + ms.fedAvgArena)),
    fedavg_staged_vs_memcpy: round3(ms.copyHot / ms.fedAvg),
    median_vs_fedavg_arena: round3(ms.median / ms.fedAvgArena),
    trimmed_mean_vs_fedavg_arena: round3(ms.trimmed / ms.fedAvgArena),
    fedavg_scalar_vs_memcpy: round3(ms.copyHot / ms.fedAvgScalar),
    median_scalar_vs_fedavg: round3(ms.medianScalar / ms.fedAvg),
    trimmed_mean_scalar_vs_fedavg: round3(ms.trimmedScalar / ms.fedAvg),
    exact_sum_vs_fedavg: round3(ms.exact / ms.fedAvgScalar),
    exact_sum_ms: round3(ms.exact),
    fedavg_ms: round3(ms.fedAvgArena),
    fedavg_staged_ms: round3(ms.fedAvg),
    decode_arena_ms: round3(ms.decodeArena),
    decode_fresh_ms: round3(ms.decodeFresh),
    memcpy_ms: round3(ms.copyHot),
    median_ms: round3(ms.median),
    median_scalar_ms: round3(ms.medianScalar),
    trimmed_mean_ms: round3(ms.trimmed),
  }),
);
