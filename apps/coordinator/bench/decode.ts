/**
 * Upload decoding at scale (not a test): 100 fp32 updates of 1,000,000 parameters, validated as the
 * coordinator validates uploads. bench/coordinator.ts runs it in a process of its own; it also runs
 * alone. Prints progress, then as its LAST line one JSON object (medians over BENCH_REPS runs, ms):
 *
 *   decode_ms_100x1m                validateUpdate into an update arena with Node's CRC-32 (fastCrc32):
 *                                   checksum, header, names and shapes, finiteness, groups and norm,
 *                                   each update decoded once, straight into its arena row;
 *   decode_ms_100x1m_arena_codec    the codec's part of it alone (UpdateArena.decode, fastCrc32);
 *   decode_ms_100x1m_baseline       decodeUpdate with fl-core's portable CRC-32 into fresh arrays —
 *                                   what decoding cost before the arena and the native CRC;
 *   validate_ms_100x1m_fresh        validateUpdate without an arena, with fastCrc32: each update
 *                                   decoded once into a fresh array of its own;
 *   crc_ms_100x1m_native / _portable   the checksum alone over the 100 messages.
 *
 *   BENCH_PARAMS=1000000 BENCH_CLIENTS=100 BENCH_REPS=5 tsx bench/decode.ts
 */
import { createRng, createUpdateArena, crc32, decodeUpdate, encodeUpdate, layoutOf, tensor } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { fastCrc32, nativeCrc32Available } from '../src/codec/fastCrc32.js';
import { validateUpdate } from '../src/engine/validateUpdate.js';
import type { UpdateExpectations } from '../src/engine/validateUpdate.js';

const numParams = Number(process.env['BENCH_PARAMS'] ?? 1_000_000);
const numClients = Number(process.env['BENCH_CLIENTS'] ?? 100);
const reps = Number(process.env['BENCH_REPS'] ?? 5);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// Four tensors, one per group, as an adapter layout has: three modalities and the shared head.
const quarter = Math.floor(numParams / 4);
const global: Tensor[] = [
  tensor('image/lora', [quarter]),
  tensor('text/lora', [quarter]),
  tensor('audio/lora', [quarter]),
  tensor('fusion/head', [numParams - 3 * quarter]),
];
const rng = createRng(12);
console.log(`encoding ${numClients} fp32 updates × ${numParams.toLocaleString('en')} parameters …`);
const messages = Array.from({ length: numClients }, (_, k) => {
  const tensors = global.map((g) => {
    const values = new Float32Array(g.values.length);
    for (let i = 0; i < values.length; i++) values[i] = (rng() - 0.5) * 0.002;
    return { name: g.name, shape: [...g.shape], values };
  });
  // Client ids of different lengths put payloads at different alignments, as real uploads do.
  return encodeUpdate({ kind: 'delta', taskId: 'bench', round: 1, clientId: `client-${k}`, encoding: 'fp32', tensors }, { crc32: fastCrc32 });
});
const maxUpdateBytes = Math.max(...messages.map((m) => m.byteLength));
const expectFor = (k: number): UpdateExpectations => ({
  taskId: 'bench',
  serverRound: 1,
  clientId: `client-${k}`,
  modalities: ['image', 'text', 'audio'],
  global,
  maxUpdateBytes,
  normBound: null,
});
const arena = createUpdateArena({ layout: layoutOf(global), capacity: numClients });

let sink = 0;
const runs = {
  validateArena: () => {
    arena.clear();
    messages.forEach((m, k) => (sink += validateUpdate(m, { ...expectFor(k), arena, crc32: fastCrc32 }).norm));
  },
  arenaCodec: () => {
    arena.clear();
    for (const m of messages) sink += arena.decode(m, { maxBytes: maxUpdateBytes, crc32: fastCrc32 }).sumOfSquares;
  },
  decodeBaseline: () => {
    for (const m of messages) sink += decodeUpdate(m, { maxBytes: maxUpdateBytes }).tensors.length;
  },
  validateFresh: () => {
    messages.forEach((m, k) => (sink += validateUpdate(m, { ...expectFor(k), crc32: fastCrc32 }).norm));
  },
  crcNative: () => {
    for (const m of messages) sink += fastCrc32(m);
  },
  crcPortable: () => {
    for (const m of messages) sink += crc32(m);
  },
};
type RunName = keyof typeof runs;
const times = Object.fromEntries(Object.keys(runs).map((k) => [k, [] as number[]])) as Record<RunName, number[]>;

// One untimed pass of each: JIT, and every arena page faulted in.
for (const run of Object.values(runs)) run();
for (let r = 0; r < reps; r++) {
  for (const [name, run] of Object.entries(runs) as [RunName, () => void][]) {
    const started = performance.now();
    run();
    times[name].push(performance.now() - started);
  }
  console.log(`rep ${r + 1}/${reps}: ${(Object.keys(runs) as RunName[]).map((n) => `${n} ${times[n].at(-1)!.toFixed(1)} ms`).join(', ')}`);
}
const ms = (name: RunName) => Number(median(times[name]).toFixed(1));
console.log(`(sink ${sink.toFixed(3)})`);
console.log(
  JSON.stringify({
    decode_ms_100x1m: ms('validateArena'),
    decode_ms_100x1m_arena_codec: ms('arenaCodec'),
    decode_ms_100x1m_baseline: ms('decodeBaseline'),
    validate_ms_100x1m_fresh: ms('validateFresh'),
    crc_ms_100x1m_native: ms('crcNative'),
    crc_ms_100x1m_portable: ms('crcPortable'),
    native_crc32: nativeCrc32Available,
    arena_simd: arena.simd,
    num_params: numParams,
    num_clients: numClients,
    reps,
  }),
);
