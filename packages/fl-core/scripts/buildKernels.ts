/// <reference types="node" />
/* eslint-disable no-restricted-imports -- a build script: it writes the generated kernel module to disk */
/**
 * Generates the WebAssembly SIMD aggregation kernels: writes the text form to src/simd/kernels.wat,
 * medianKernel.wat and arenaKernel.wat (for review) and the bytes, hex-encoded, to src/simd/kernelBytes.ts (what fl-core ships).
 * The kernels are unrolled by hand-written templates below, so the .wat is generated too.
 *
 * Run after changing this file: npx pnpm@10.34.8 --filter @chorus/fl-core build:kernels
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

/**
 * Coordinates per FedAvg block; a staged row is 16 KiB, eight rows plus the float64 sums 160 KiB.
 * Measured against 2,048 and 8,192: smaller blocks pay more per-call and subarray overhead, larger
 * ones ran 30% slower (median) on the shared machine, where another process competes for L2.
 */
const FEDAVG_BLOCK = 4096;
/**
 * Bytes between staged FedAvg rows: a row plus one cache line, so that the eight rows a pass reads
 * do not all map to the same L1 set. A constant, so each row's load uses an immediate offset and
 * the loop advances one index instead of eight pointers (measured: about 1.4× faster than pointers).
 */
const FEDAVG_ROW_STRIDE = FEDAVG_BLOCK * 4 + 64;
/** Updates summed per FedAvg pass. Sixteen spill registers and ran slower (measured). */
const FEDAVG_ROWS_PER_PASS = 8;
/** List sizes of the trimmed-mean extreme passes; any cut is a sum of these (largest first). */
const TRIM_LIST_SIZES = [8, 4, 2, 1];

const SWAP_HALVES = 'i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7';

/** Balanced add tree over `terms`, so the products do not wait on each other. */
function addTree(terms: string[], op: string): string {
  let level = terms;
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(`(${op} ${level[i]} ${level[i + 1]})`);
    if (level.length % 2) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/**
 * acc[j] (f64) += Σ_r w_r · row_r[j] over eight staged rows, j < count rounded up to 4. Products and
 * their sum are float32 (one rounding each, a depth-3 tree), the running sum is float64: about half
 * the instructions of an all-float64 kernel.
 */
function weightedSum8(): string {
  const rows = [...Array(FEDAVG_ROWS_PER_PASS).keys()];
  const params = rows.map((r) => `(param $w${r} f32)`).join(' ');
  const locals = rows.map((r) => `(local $s${r} v128)`).join(' ');
  const splats = rows.map((r) => `    (local.set $s${r} (f32x4.splat (local.get $w${r})))`).join('\n');
  const products = rows.map((r) => `(f32x4.mul (local.get $s${r}) (v128.load offset=${r * FEDAVG_ROW_STRIDE} (local.get $j)))`);
  return `
  ;; acc[i] += w0·row0[i] + … + w7·row7[i]; rows at $rows + r·${FEDAVG_ROW_STRIDE}; i < count rounded up to 4.
  (func (export "weightedSum8") (param $acc i32) (param $rows i32) ${params} (param $count i32)
    (local $j i32) (local $end i32) (local $t v128) ${locals}
${splats}
    (local.set $j (local.get $rows))
    (local.set $end (i32.add (local.get $rows) (i32.shl (i32.and (i32.add (local.get $count) (i32.const 3)) (i32.const -4)) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
      (local.set $t ${addTree(products, 'f32x4.add')})
      (v128.store (local.get $acc) (f64x2.add (v128.load (local.get $acc)) (f64x2.promote_low_f32x4 (local.get $t))))
      (v128.store offset=16 (local.get $acc)
        (f64x2.add (v128.load offset=16 (local.get $acc)) (f64x2.promote_low_f32x4 (${SWAP_HALVES} (local.get $t) (local.get $t)))))
      (local.set $acc (i32.add (local.get $acc) (i32.const 32)))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $next))))`;
}

/**
 * The arena form of {@link weightedSum8}: the eight rows are anywhere in memory (an update arena's
 * rows are whole updates, megabytes apart), so each load adds its row's base to one shared index.
 * Same arithmetic as the staged kernel, so the same error bound.
 */
function weightedSumRows8(): string {
  const rows = [...Array(FEDAVG_ROWS_PER_PASS).keys()];
  const pointers = rows.map((r) => `(param $p${r} i32)`).join(' ');
  const params = rows.map((r) => `(param $w${r} f32)`).join(' ');
  const locals = rows.map((r) => `(local $s${r} v128)`).join(' ');
  const splats = rows.map((r) => `    (local.set $s${r} (f32x4.splat (local.get $w${r})))`).join('\n');
  const products = rows.map((r) => `(f32x4.mul (local.get $s${r}) (v128.load (i32.add (local.get $p${r}) (local.get $j))))`);
  return `
  ;; acc[i] += w0·row0[i] + … + w7·row7[i]; rows at $p0 … $p7; i < count rounded up to 4.
  (func (export "weightedSumRows8") (param $acc i32) ${pointers} ${params} (param $count i32)
    (local $j i32) (local $end i32) (local $t v128) ${locals}
${splats}
    (local.set $end (i32.shl (i32.and (i32.add (local.get $count) (i32.const 3)) (i32.const -4)) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
      (local.set $t ${addTree(products, 'f32x4.add')})
      (v128.store (local.get $acc) (f64x2.add (v128.load (local.get $acc)) (f64x2.promote_low_f32x4 (local.get $t))))
      (v128.store offset=16 (local.get $acc)
        (f64x2.add (v128.load offset=16 (local.get $acc)) (f64x2.promote_low_f32x4 (${SWAP_HALVES} (local.get $t) (local.get $t)))))
      (local.set $acc (i32.add (local.get $acc) (i32.const 32)))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $next))))`;
}

/** acc[j] (f64) += w · row[j] in float64, for the updates left over after the passes of eight. */
function weightedSum1(): string {
  return `
  ;; acc[i] += w·row[i] in float64; i < count rounded up to 4.
  (func (export "weightedSum1") (param $acc i32) (param $row i32) (param $w f64) (param $count i32)
    (local $end i32) (local $s v128) (local $x v128)
    (local.set $s (f64x2.splat (local.get $w)))
    (local.set $end (i32.add (local.get $row) (i32.shl (i32.and (i32.add (local.get $count) (i32.const 3)) (i32.const -4)) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $row) (local.get $end)))
      (local.set $x (v128.load (local.get $row)))
      (v128.store (local.get $acc) (f64x2.add (v128.load (local.get $acc)) (f64x2.mul (local.get $s) (f64x2.promote_low_f32x4 (local.get $x)))))
      (v128.store offset=16 (local.get $acc)
        (f64x2.add (v128.load offset=16 (local.get $acc)) (f64x2.mul (local.get $s) (f64x2.promote_low_f32x4 (${SWAP_HALVES} (local.get $x) (local.get $x))))))
      (local.set $acc (i32.add (local.get $acc) (i32.const 32)))
      (local.set $row (i32.add (local.get $row) (i32.const 16)))
      (br $next))))`;
}

/**
 * One extreme pass of the trimmed mean, four coordinates per lane group. Streams `rows` values of
 * each group through a sorted list of `size` registers that keeps the largest (or smallest) seen so
 * far; each value pushed out of the list is written to row k − size of `dst`. Afterwards the list
 * holds the `size` extremes and `dst` the other rows − size values, each value exactly once (ties
 * included), so chained passes peel the cut from each end without counting. The first `size`
 * pushes only evict the ±∞ sentinels and are not written.
 */
function extremePass(size: number, keep: 'Largest' | 'Smallest'): string {
  const [keepOp, passOp, sentinel] = keep === 'Largest' ? ['f32x4.pmax', 'f32x4.pmin', '-inf'] : ['f32x4.pmin', 'f32x4.pmax', 'inf'];
  const slots = [...Array(size).keys()];
  const locals = slots.map((i) => `(local $t${i} v128)`).join(' ');
  const init = slots.map((i) => `(local.set $t${i} (local.get $sentinel))`).join(' ');
  // pmin/pmax are one instruction each on x86; plain min/max add NaN and ±0 fix-ups, and the
  // inputs are finite by contract.
  const insert = slots
    .map(
      (i) =>
        `(local.set $x (local.get $t${i})) (local.set $t${i} (${keepOp} (local.get $x) (local.get $v))) (local.set $v (${passOp} (local.get $x) (local.get $v)))`,
    )
    .join('\n          ');
  return `
  ;; Keeps the ${size} ${keep.toLowerCase()} of each lane's column; the rest go to $dst in arrival order.
  (func (export "keep${keep}${size}") (param $src i32) (param $dst i32) (param $stride i32) (param $rows i32) (param $groups i32)
    (local $g i32) (local $k i32) (local $p i32) (local $q i32) (local $v v128) (local $x v128) (local $sentinel v128) ${locals}
    (local.set $sentinel (f32x4.splat (f32.const ${sentinel})))
    (block $groupsDone (loop $nextGroup
      (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
      ${init}
      (local.set $p (i32.add (local.get $src) (i32.shl (local.get $g) (i32.const 4))))
      (local.set $q (i32.add (local.get $dst) (i32.shl (local.get $g) (i32.const 4))))
      (local.set $k (i32.const 0))
      (loop $fill
        (local.set $v (v128.load (local.get $p)))
          ${insert}
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (br_if $fill (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (i32.const ${size}))))
      (block $rowsDone (loop $nextRow
        (br_if $rowsDone (i32.ge_u (local.get $k) (local.get $rows)))
        (local.set $v (v128.load (local.get $p)))
          ${insert}
        (v128.store (local.get $q) (local.get $v))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (local.set $q (i32.add (local.get $q) (local.get $stride)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $nextRow)))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (br $nextGroup))))`;
}

/** out[j] = float32(inv · Σ_k src_k[j]) with the sum in float64, four coordinates per lane group. */
function scaledColumnSum(): string {
  return `
  ;; out[4g … 4g+3] = inv · Σ_k src[k·stride + 16g …], summed in float64.
  (func (export "scaledColumnSum") (param $src i32) (param $stride i32) (param $rows i32) (param $groups i32) (param $inv f64) (param $out i32)
    (local $g i32) (local $k i32) (local $p i32) (local $x v128) (local $lo v128) (local $hi v128) (local $s v128)
    (local.set $s (f64x2.splat (local.get $inv)))
    (block $groupsDone (loop $nextGroup
      (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
      (local.set $p (i32.add (local.get $src) (i32.shl (local.get $g) (i32.const 4))))
      (local.set $lo (v128.const i64x2 0 0))
      (local.set $hi (v128.const i64x2 0 0))
      (local.set $k (local.get $rows))
      (loop $nextRow
        (local.set $x (v128.load (local.get $p)))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.promote_low_f32x4 (local.get $x))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.promote_low_f32x4 (${SWAP_HALVES} (local.get $x) (local.get $x)))))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (br_if $nextRow (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
      (v128.store (i32.add (local.get $out) (i32.shl (local.get $g) (i32.const 4)))
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.mul (local.get $lo) (local.get $s)))
          (f32x4.demote_f64x2_zero (f64x2.mul (local.get $hi) (local.get $s)))))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (br $nextGroup))))`;
}

/**
 * Lane groups (of four coordinates) one median kernel pass works on together. A scratch row holds
 * one f32x4 per group, so each network call is amortised over this many groups; measured on
 * 100 × 1,000,000: one group per call took 2.4× as long as four, eight and sixteen were no faster.
 */
const MEDIAN_TILE_GROUPS = 4;
/** Scratch bytes per row of one median tile. */
const MEDIAN_ROW = 16 * MEDIAN_TILE_GROUPS;
/** Rows per sorted half the median kernel supports: 16, 32 or 64, so it covers 1 to 128 updates. */
const MEDIAN_MAX_HALF = 64;

/**
 * A 16-input sorting network of 60 compare-exchanges and depth 10, the smallest size known (first
 * reached by Green, 1969; Knuth, TAOCP 3 §5.3.4), against 63 for Batcher's. Checked below by the
 * 0-1 principle, so a mistyped pair fails the build.
 */
const SORT16_NETWORK: readonly (readonly [number, number])[] = [
  [0, 13],
  [1, 12],
  [2, 15],
  [3, 14],
  [4, 8],
  [5, 6],
  [7, 11],
  [9, 10],
  [0, 5],
  [1, 7],
  [2, 9],
  [3, 4],
  [6, 13],
  [8, 14],
  [10, 15],
  [11, 12],
  [0, 1],
  [2, 3],
  [4, 5],
  [6, 8],
  [7, 9],
  [10, 11],
  [12, 13],
  [14, 15],
  [0, 2],
  [1, 3],
  [4, 10],
  [5, 11],
  [6, 7],
  [8, 9],
  [12, 14],
  [13, 15],
  [1, 2],
  [3, 12],
  [4, 6],
  [5, 7],
  [8, 10],
  [9, 11],
  [13, 14],
  [1, 4],
  [2, 6],
  [5, 8],
  [7, 10],
  [9, 13],
  [11, 14],
  [2, 4],
  [3, 6],
  [9, 12],
  [11, 13],
  [3, 5],
  [6, 8],
  [7, 9],
  [10, 12],
  [3, 4],
  [5, 6],
  [7, 8],
  [9, 10],
  [11, 12],
  [6, 7],
  [8, 9],
];
/** The three layers (distance 4, 2, 1) that sort a bitonic sequence of eight. */
const BITONIC8_FIRST_LAYER: readonly (readonly [number, number])[] = [
  [0, 4],
  [1, 5],
  [2, 6],
  [3, 7],
];
const BITONIC8_LAST_LAYERS: readonly (readonly [number, number])[] = [
  [0, 2],
  [1, 3],
  [4, 6],
  [5, 7],
  [0, 1],
  [2, 3],
  [4, 5],
  [6, 7],
];

/** Throws unless `network` sorts every 0/1 input of `size` accepted by `admit` (the 0-1 principle). */
function checkNetwork(name: string, network: readonly (readonly [number, number])[], size: number, admit: (bits: number[]) => boolean): void {
  for (let mask = 0; mask < 1 << size; mask++) {
    const bits = Array.from({ length: size }, (_, i) => (mask >> i) & 1);
    if (!admit(bits)) continue;
    for (const [a, b] of network) {
      if (bits[a]! > bits[b]!) [bits[a], bits[b]] = [bits[b]!, bits[a]!];
    }
    for (let i = 1; i < size; i++) if (bits[i - 1]! > bits[i]!) throw new Error(`${name} does not sort input ${mask.toString(2)}`);
  }
}

/** A 0/1 sequence is bitonic when it changes value at most twice, cyclically at most twice. */
const isBitonic = (bits: number[]): boolean => bits.filter((b, i) => i > 0 && b !== bits[i - 1]).length <= 2;

checkNetwork('SORT16_NETWORK', SORT16_NETWORK, 16, () => true);
checkNetwork('BITONIC8', [...BITONIC8_FIRST_LAYER, ...BITONIC8_LAST_LAYERS], 8, isBitonic);

/**
 * Compare-exchange of locals $x<a> and $x<b> (min to a), in stack form to keep the module small.
 * pmax takes its operands swapped: on equal values pmin returns its first operand and pmax(b, a)
 * its first, so the pair keeps both values (±0 included) instead of duplicating one.
 */
const exchange = ([a, b]: readonly [number, number]): string =>
  `local.get $x${a} local.get $x${b} f32x4.pmin local.get $x${b} local.get $x${a} f32x4.pmax local.set $x${b} local.set $x${a}`;

const vectorLocals = (count: number): string => Array.from({ length: count }, (_, i) => `(local $x${i} v128)`).join(' ');

/**
 * Sorts 16 rows for each of the tile's lane groups: loads row i from $src + i·$stride, stores the
 * i-th smallest at $dst + i·$dstStride (a negative stride stores it descending).
 */
function sort16(): string {
  const rows = [...Array(16).keys()];
  const step = (ptr: string, stride: string, i: number): string => (i === 0 ? '' : `local.get ${ptr} local.get ${stride} i32.add local.set ${ptr} `);
  return `
  ;; Sorts 16 rows of each lane group of a tile (60 compare-exchanges); rows from $src + i·$stride to $dst + i·$dstStride.
  (func $sort16 (param $src i32) (param $stride i32) (param $dst i32) (param $dstStride i32) (local $g i32) (local $p i32) ${vectorLocals(16)}
    (loop $group
      (local.set $p (local.get $src))
      ${rows.map((i) => `${step('$p', '$stride', i)}local.get $p v128.load local.set $x${i}`).join('\n      ')}
      ${SORT16_NETWORK.map(exchange).join('\n      ')}
      (local.set $p (local.get $dst))
      ${rows.map((i) => `${step('$p', '$dstStride', i)}local.get $p local.get $x${i} v128.store`).join('\n      ')}
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (br_if $group (i32.lt_u (local.tee $g (i32.add (local.get $g) (i32.const 1))) (i32.const ${MEDIAN_TILE_GROUPS})))))`;
}

/**
 * Sorts a bitonic sequence of eight rows in place, for each lane group of a tile: rows 0-3 at
 * $p + i·$s, rows 4-7 at $q + i·$t (negative strides read a run backwards, which turns a descending
 * half-cleaner into this ascending one). With $full = 0 the distance-4 layer is skipped, which
 * sorts two bitonic sequences of four instead.
 */
function bitonic8(): string {
  const rows = [...Array(8).keys()];
  const addr = (i: number): string =>
    i < 4 ? `(i32.add (local.get $p) (i32.mul (local.get $s) (i32.const ${i})))` : `(i32.add (local.get $q) (i32.mul (local.get $t) (i32.const ${i - 4})))`;
  return `
  ;; Bitonic merge of eight rows in place (rows 0-3 at $p + i·$s, 4-7 at $q + i·$t); $full = 0 skips the first layer.
  (func $bitonic8 (param $p i32) (param $s i32) (param $q i32) (param $t i32) (param $full i32)
    (local $g i32) ${rows.map((i) => `(local $a${i} i32)`).join(' ')} ${vectorLocals(8)}
    ${rows.map((i) => `(local.set $a${i} ${addr(i)})`).join('\n    ')}
    (loop $group
      ${rows.map((i) => `(local.set $x${i} (v128.load (i32.add (local.get $a${i}) (local.get $g))))`).join('\n      ')}
      (if (local.get $full) (then
        ${BITONIC8_FIRST_LAYER.map(exchange).join('\n        ')}))
      ${BITONIC8_LAST_LAYERS.map(exchange).join('\n      ')}
      ${rows.map((i) => `(v128.store (i32.add (local.get $a${i}) (local.get $g)) (local.get $x${i}))`).join('\n      ')}
      (br_if $group (i32.lt_u (local.tee $g (i32.add (local.get $g) (i32.const 16))) (i32.const ${MEDIAN_ROW})))))`;
}

/**
 * Bitonic sort of one half ($half = 16, 32 or 64 rows, staged at $src + i·$stride) into scratch rows
 * $x + i·${MEDIAN_ROW}, ascending. The rows form an 8-column grid: merge layers at distance ≥ 8 stay
 * inside a column (rows c, c+8, …) and those at distance 4, 2, 1 inside a block of eight rows, so
 * every layer runs in registers on eight rows at a time. Runs alternate ascending and descending as
 * bitonic sort needs; a descending run is an ascending network on rows read backwards.
 */
function sortHalf(): string {
  const row = (expr: string): string => `(i32.add (local.get $x) (i32.mul ${expr} (i32.const ${MEDIAN_ROW})))`;
  const plus = (v: string, c: number): string => `(i32.add (local.get ${v}) (i32.const ${c}))`;
  return `
  ;; Sorts $half staged rows ($src + i·$stride) into scratch rows $x + i·${MEDIAN_ROW}, ascending.
  (func $sortHalf (param $src i32) (param $stride i32) (param $x i32) (param $half i32) (local $b i32) (local $s i32) (local $c i32) (local $r i32)
    ;; Runs of 16, alternately ascending and descending.
    (loop $runs
      (if (i32.and (local.get $b) (i32.const 16))
        (then (call $sort16 (local.get $src) (local.get $stride) ${row(plus('$b', 15))} (i32.const ${-MEDIAN_ROW})))
        (else (call $sort16 (local.get $src) (local.get $stride) ${row('(local.get $b)')} (i32.const ${MEDIAN_ROW}))))
      (local.set $src (i32.add (local.get $src) (i32.shl (local.get $stride) (i32.const 4))))
      (br_if $runs (i32.lt_u (local.tee $b (i32.add (local.get $b) (i32.const 16))) (local.get $half))))
    ;; Merge runs of $s into runs of 2·$s, descending where bit 2·$s of the row index is set.
    (local.set $s (i32.const 16))
    (block $sorted (loop $level
      (br_if $sorted (i32.ge_u (local.get $s) (local.get $half)))
      (local.set $c (i32.const 0))
      (loop $columns
        (if (i32.eq (local.get $s) (i32.const 32))
          ;; Distances 32, 16, 8: the column's eight rows, the last merge, all ascending.
          (then (call $bitonic8 ${row('(local.get $c)')} (i32.const ${8 * MEDIAN_ROW}) ${row(plus('$c', 32))} (i32.const ${8 * MEDIAN_ROW}) (i32.const 1)))
          (else (if (i32.eq (local.get $half) (i32.const 32))
            ;; Distances 16, 8 on columns of four, the last merge: two columns per call.
            (then
              (call $bitonic8 ${row('(local.get $c)')} (i32.const ${8 * MEDIAN_ROW}) ${row(plus('$c', 1))} (i32.const ${8 * MEDIAN_ROW}) (i32.const 0))
              (local.set $c (i32.add (local.get $c) (i32.const 1))))
            ;; Distances 16, 8 in a column of eight: rows 0-3 ascending, rows 4-7 descending (read backwards).
            (else (call $bitonic8 ${row('(local.get $c)')} (i32.const ${8 * MEDIAN_ROW}) ${row(plus('$c', 56))} (i32.const ${-8 * MEDIAN_ROW}) (i32.const 0))))))
        (br_if $columns (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 1))) (i32.const 8))))
      ;; Distances 4, 2, 1 in each block of eight rows.
      (local.set $r (i32.const 0))
      (loop $blocks
        (if (i32.and (local.get $r) (i32.shl (local.get $s) (i32.const 1)))
          (then (call $bitonic8 ${row(plus('$r', 7))} (i32.const ${-MEDIAN_ROW}) ${row(plus('$r', 3))} (i32.const ${-MEDIAN_ROW}) (i32.const 1)))
          (else (call $bitonic8 ${row('(local.get $r)')} (i32.const ${MEDIAN_ROW}) ${row(plus('$r', 4))} (i32.const ${MEDIAN_ROW}) (i32.const 1))))
        (br_if $blocks (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 8))) (local.get $half))))
      (local.set $s (i32.shl (local.get $s) (i32.const 1)))
      (br $level))))`;
}

/**
 * The $k-th smallest (1-based) of two ascending halves A and B of $half rows, for each lane group:
 * min over i of max(A[i−1], B[k−1−i]) (any k values split as i from A and k−i from B have a largest
 * value at least the k-th smallest, and the true split attains it). Row −1 of both holds −∞.
 */
function kthSmallest(): string {
  return `
  ;; dst = k-th smallest of halves $a, $b (ascending, −∞ in row −1), per lane group: min_i max(A[i−1], B[k−1−i]).
  (func $kthSmallest (param $a i32) (param $b i32) (param $half i32) (param $k i32) (param $dst i32)
    (local $first i32) (local $terms i32) (local $pa i32) (local $pb i32) (local $left i32) (local $g i32) (local $acc v128)
    (local.set $first (select (i32.sub (local.get $k) (local.get $half)) (i32.const 0) (i32.gt_s (local.get $k) (local.get $half))))
    (local.set $terms (i32.add (i32.sub (select (local.get $half) (local.get $k) (i32.gt_s (local.get $k) (local.get $half))) (local.get $first)) (i32.const 1)))
    (loop $group
      (local.set $pa (i32.add (i32.add (local.get $a) (local.get $g)) (i32.mul (i32.sub (local.get $first) (i32.const 1)) (i32.const ${MEDIAN_ROW}))))
      (local.set $pb (i32.add (i32.add (local.get $b) (local.get $g)) (i32.mul (i32.sub (i32.sub (local.get $k) (i32.const 1)) (local.get $first)) (i32.const ${MEDIAN_ROW}))))
      (local.set $acc (v128.const f32x4 inf inf inf inf))
      (local.set $left (local.get $terms))
      (loop $term
        (local.set $acc (f32x4.pmin (local.get $acc) (f32x4.pmax (v128.load (local.get $pa)) (v128.load (local.get $pb)))))
        (local.set $pa (i32.add (local.get $pa) (i32.const ${MEDIAN_ROW})))
        (local.set $pb (i32.sub (local.get $pb) (i32.const ${MEDIAN_ROW})))
        (br_if $term (local.tee $left (i32.sub (local.get $left) (i32.const 1)))))
      (v128.store (i32.add (local.get $dst) (local.get $g)) (local.get $acc))
      (br_if $group (i32.lt_u (local.tee $g (i32.add (local.get $g) (i32.const 16))) (i32.const ${MEDIAN_ROW})))))`;
}

/**
 * Column medians of a staged block: rows 0 … 2·$half − 1 at $src + r·$stride (rows past the
 * update count hold +∞), $groups lane groups, rank $k (1-based) or, when $even, the mean of ranks
 * $k and $k + 1 taken in float64 as the scalar kernel does; a zero comes out as +0. Scratch: 2·$half + 3 rows of ${MEDIAN_ROW} bytes,
 * whose rows 0 and $half + 1 the caller fills with −∞.
 */
function medianColumns(): string {
  const half = (x: string): string =>
    `(f64x2.mul (f64x2.add (f64x2.promote_low_f32x4 ${x.replaceAll('$v', '$lo')}) (f64x2.promote_low_f32x4 ${x.replaceAll('$v', '$hi')})) (f64x2.splat (f64.const 0.5)))`;
  return `
  ;; out = per-coordinate median of 2·$half staged rows (+∞ past the updates), one tile of ${MEDIAN_TILE_GROUPS} lane groups at a time.
  (func (export "medianColumns") (param $src i32) (param $stride i32) (param $groups i32) (param $half i32) (param $k i32) (param $even i32) (param $scratch i32) (param $out i32)
    (local $a i32) (local $b i32) (local $upper i32) (local $g i32) (local $j i32) (local $lo v128) (local $hi v128)
    (local.set $a (i32.add (local.get $scratch) (i32.const ${MEDIAN_ROW})))
    (local.set $b (i32.add (local.get $a) (i32.mul (i32.add (local.get $half) (i32.const 1)) (i32.const ${MEDIAN_ROW}))))
    (local.set $upper (i32.add (local.get $b) (i32.mul (local.get $half) (i32.const ${MEDIAN_ROW}))))
    (block $done (loop $tile
      (br_if $done (i32.ge_u (local.get $g) (local.get $groups)))
      (call $sortHalf (local.get $src) (local.get $stride) (local.get $a) (local.get $half))
      (call $sortHalf (i32.add (local.get $src) (i32.mul (local.get $half) (local.get $stride))) (local.get $stride) (local.get $b) (local.get $half))
      (call $kthSmallest (local.get $a) (local.get $b) (local.get $half) (local.get $k) (local.get $out))
      (if (local.get $even) (then
        (call $kthSmallest (local.get $a) (local.get $b) (local.get $half) (i32.add (local.get $k) (i32.const 1)) (local.get $upper))))
      (local.set $j (i32.const 0))
      (loop $finish
        (local.set $lo (v128.load (i32.add (local.get $out) (local.get $j))))
        (if (local.get $even) (then
          (local.set $hi (v128.load (i32.add (local.get $upper) (local.get $j))))
          (local.set $lo (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero ${half('(local.get $v)')})
            (f32x4.demote_f64x2_zero ${half(`(${SWAP_HALVES} (local.get $v) (local.get $v))`)})))))
        ;; Adding +0 turns −0 into +0 and changes nothing else, so the result does not depend on
        ;; which of several tied zeros the network moved to the middle.
        (v128.store (i32.add (local.get $out) (local.get $j)) (f32x4.add (local.get $lo) (v128.const f32x4 0 0 0 0)))
        (br_if $finish (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.const ${MEDIAN_ROW}))))
      (local.set $out (i32.add (local.get $out) (i32.const ${MEDIAN_ROW})))
      (local.set $src (i32.add (local.get $src) (i32.const ${MEDIAN_ROW})))
      (local.set $g (i32.add (local.get $g) (i32.const ${MEDIAN_TILE_GROUPS})))
      (br $tile))))`;
}

/** The median module: kept apart from the others so that each stays under the 4 KiB sync-compile limit. */
function medianModuleText(): string {
  return [
    ';; Generated by packages/fl-core/scripts/buildKernels.ts — edit that file, not this one.',
    ';; Coordinate-wise median kernel over float32 data in the imported memory; all addresses in bytes, 16-aligned.',
    '(module',
    '  (import "env" "memory" (memory 1))',
    sort16(),
    bitonic8(),
    sortHalf(),
    kthSmallest(),
    medianColumns(),
    ')',
    '',
  ].join('\n');
}

/**
 * The update-arena module: FedAvg over rows that already sit in its memory. Its own module so that
 * an arena can instantiate it on a memory of its own (which the arena may grow and later drop)
 * without the trimmed-mean passes it does not use.
 */
function arenaModuleText(): string {
  return [
    ';; Generated by packages/fl-core/scripts/buildKernels.ts — edit that file, not this one.',
    ';; FedAvg kernels over the rows of an update arena in the imported memory; all addresses in bytes, 16-aligned.',
    '(module',
    '  (import "env" "memory" (memory 1))',
    weightedSumRows8(),
    weightedSum1(),
    ')',
    '',
  ].join('\n');
}

function moduleText(): string {
  const passes = TRIM_LIST_SIZES.flatMap((size) => [extremePass(size, 'Largest'), extremePass(size, 'Smallest')]);
  return [
    ';; Generated by packages/fl-core/scripts/buildKernels.ts — edit that file, not this one.',
    ';; Aggregation kernels over float32 data in the imported memory; all addresses in bytes, 16-aligned.',
    '(module',
    '  (import "env" "memory" (memory 1))',
    weightedSum8(),
    weightedSum1(),
    ...passes,
    scaledColumnSum(),
    ')',
    '',
  ].join('\n');
}

/** Browsers refuse synchronous compiles of larger modules on the main thread. */
const SYNC_COMPILE_LIMIT = 4096;

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', 'src', 'simd');
const wabt = await wabtInit();

/** Compiles `text`, checks the size limit, writes it for review to `watName`; returns the bytes as hex lines. */
function compile(watName: string, text: string): { size: number; hexLines: string } {
  const parsed = wabt.parseWat(watName, text, { simd: true });
  parsed.validate();
  const { buffer } = parsed.toBinary({});
  parsed.destroy();
  if (buffer.length >= SYNC_COMPILE_LIMIT) throw new Error(`${watName}: ${buffer.length} bytes, over the ${SYNC_COMPILE_LIMIT}-byte sync-compile limit`);
  const hex = Buffer.from(buffer).toString('hex');
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 120) lines.push(`  '${hex.slice(i, i + 120)}'`);
  writeFileSync(join(outDir, watName), text);
  return { size: buffer.length, hexLines: lines.join(' +\n') };
}

const main = compile('kernels.wat', moduleText());
const median = compile('medianKernel.wat', medianModuleText());
const arena = compile('arenaKernel.wat', arenaModuleText());
writeFileSync(
  join(outDir, 'kernelBytes.ts'),
  [
    '// Generated by packages/fl-core/scripts/buildKernels.ts from the templates it also writes to kernels.wat,',
    '// medianKernel.wat and arenaKernel.wat. Do not edit: change the script and run `npx pnpm@10.34.8 --filter @chorus/fl-core build:kernels`.',
    '',
    '/** Coordinates per FedAvg block (one staged row). */',
    `export const FEDAVG_BLOCK = ${FEDAVG_BLOCK};`,
    '/** Bytes between staged FedAvg rows, baked into the kernel as load offsets. */',
    `export const FEDAVG_ROW_STRIDE = ${FEDAVG_ROW_STRIDE};`,
    '/** Rows summed by one `weightedSum8` call. */',
    `export const FEDAVG_ROWS_PER_PASS = ${FEDAVG_ROWS_PER_PASS};`,
    '/** List sizes of the `keepLargest<N>` / `keepSmallest<N>` passes, largest first. */',
    `export const TRIM_LIST_SIZES: readonly number[] = [${TRIM_LIST_SIZES.join(', ')}];`,
    `/** The module (${main.size} bytes), hex-encoded. */`,
    'export const KERNEL_WASM_HEX =',
    main.hexLines + ';',
    '',
    '/** Lane groups (four coordinates each) the median kernel sorts together; blocks are whole tiles. */',
    `export const MEDIAN_TILE_GROUPS = ${MEDIAN_TILE_GROUPS};`,
    '/** Largest half the median kernel sorts (rows); it covers up to twice as many updates. */',
    `export const MEDIAN_MAX_HALF = ${MEDIAN_MAX_HALF};`,
    `/** The median module (${median.size} bytes), hex-encoded; separate so that each module stays under 4 KiB. */`,
    'export const MEDIAN_WASM_HEX =',
    median.hexLines + ';',
    '',
    `/** The update-arena module (${arena.size} bytes), hex-encoded; instantiated once per arena, on the arena's own memory. */`,
    'export const ARENA_WASM_HEX =',
    arena.hexLines + ';',
    '',
  ].join('\n'),
);
console.log(`wrote ${main.size} + ${median.size} + ${arena.size} bytes of WebAssembly to ${outDir}`);
