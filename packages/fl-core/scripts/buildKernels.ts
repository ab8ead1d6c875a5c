/// <reference types="node" />
/* eslint-disable no-restricted-imports -- a build script: it writes the generated kernel module to disk */
/**
 * Generates the WebAssembly SIMD aggregation kernels: writes the text form to src/simd/kernels.wat
 * (for review) and the bytes, hex-encoded, to src/simd/kernelBytes.ts (what fl-core ships).
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
    .map((i) => `(local.set $x (local.get $t${i})) (local.set $t${i} (${keepOp} (local.get $x) (local.get $v))) (local.set $v (${passOp} (local.get $x) (local.get $v)))`)
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

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', 'src', 'simd');
const text = moduleText();
const wabt = await wabtInit();
const parsed = wabt.parseWat('kernels.wat', text, { simd: true });
parsed.validate();
const { buffer } = parsed.toBinary({});
parsed.destroy();
const hex = Buffer.from(buffer).toString('hex');
const lines: string[] = [];
for (let i = 0; i < hex.length; i += 120) lines.push(`  '${hex.slice(i, i + 120)}'`);
writeFileSync(join(outDir, 'kernels.wat'), text);
writeFileSync(
  join(outDir, 'kernelBytes.ts'),
  [
    '// Generated by packages/fl-core/scripts/buildKernels.ts from the template it also writes to kernels.wat.',
    '// Do not edit: change the script and run `npx pnpm@10.34.8 --filter @chorus/fl-core build:kernels`.',
    '',
    '/** Coordinates per FedAvg block (one staged row). */',
    `export const FEDAVG_BLOCK = ${FEDAVG_BLOCK};`,
    '/** Bytes between staged FedAvg rows, baked into the kernel as load offsets. */',
    `export const FEDAVG_ROW_STRIDE = ${FEDAVG_ROW_STRIDE};`,
    '/** Rows summed by one `weightedSum8` call. */',
    `export const FEDAVG_ROWS_PER_PASS = ${FEDAVG_ROWS_PER_PASS};`,
    '/** List sizes of the `keepLargest<N>` / `keepSmallest<N>` passes, largest first. */',
    `export const TRIM_LIST_SIZES: readonly number[] = [${TRIM_LIST_SIZES.join(', ')}];`,
    `/** The module (${buffer.length} bytes), hex-encoded. */`,
    'export const KERNEL_WASM_HEX =',
    lines.join(' +\n') + ';',
    '',
  ].join('\n'),
);
console.log(`wrote ${buffer.length} bytes of WebAssembly to ${outDir}`);
