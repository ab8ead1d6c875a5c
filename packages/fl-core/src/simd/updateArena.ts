/**
 * An update arena: rows for n client updates of one known layout, in WebAssembly memory the FedAvg
 * kernel reads in place (FedAvg: McMahan et al. 2017, arXiv:1602.05629). The codec decodes each
 * message straight into the next free row, so aggregation needs no staged copy of the updates.
 *
 * Memory: where WebAssembly SIMD runs, the arena owns one linear memory with the arena kernel
 * module instantiated on it: [0, ARENA_SCRATCH_BYTES) holds the kernel's float64 block sums, then
 * rows at a fixed stride. Growing that memory detaches every view of it, so views are derived from
 * the current buffer on each use and {@link UpdateArena.row} hands out a fresh one. Elsewhere
 * (no WebAssembly, no SIMD, or `kernel: 'scalar'`) each row is a plain Float32Array and FedAvg runs
 * the scalar kernel.
 *
 * Invariants: rows [0, count) hold complete, finite updates. A row only counts once its whole
 * message has been validated and written, and the caller's own checks (`accept`) have passed; a
 * rejected message leaves count and every counted row unchanged, so its row is the next one used.
 * A partial message's row holds zeros where it sent nothing, never an earlier update's values.
 */
import type { DecodedIntoHeader, DecodeLimits } from '../codec/codec.js';
import { decodeUpdateInto } from '../codec/codec.js';
import { FlCoreError } from '../errors.js';
import type { Layout } from '../params.js';
import { FEDAVG_BLOCK } from './kernelBytes.js';
import { createArenaKernels } from './kernels.js';
import type { ArenaKernels } from './kernels.js';

/** Bytes at the start of an arena's memory for the kernel's float64 block sums. */
export const ARENA_SCRATCH_BYTES = FEDAVG_BLOCK * 8;

/**
 * Bytes added to each row beyond a whole number of 4 KiB pages: two cache lines, so the eight rows
 * one kernel pass streams from start at different L1 sets instead of all in one.
 */
const ROW_SKEW_BYTES = 128;
const PAGE = 4096;

/** How an arena is sized and which kernel it uses. */
export interface UpdateArenaOptions {
  /** Layout of every row (see `layoutOf`): the tensors each update must carry and their flat offsets. */
  readonly layout: Layout;
  /** Rows reserved up front (an integer ≥ 1); the arena grows past it when more updates arrive. */
  readonly capacity: number;
  /** `'auto'` (default): WebAssembly SIMD where available; `'scalar'`: plain arrays and the scalar kernel. */
  readonly kernel?: 'auto' | 'scalar';
}

/** A decoded update's header, the layout tensors it carried and the arena row it was written to. */
export interface ArenaDecoded extends DecodedIntoHeader {
  readonly row: number;
}

/** Options of {@link UpdateArena.decode}. */
export interface ArenaDecodeOptions {
  /**
   * Accept a message that carries only some of the layout's tensors (see `DecodeIntoTarget.partial`);
   * the rest of its row is zeroed. Default false: every tensor.
   */
  readonly partial?: boolean;
  /**
   * The caller's own checks (header fields, norms, …), run on the written row before it counts.
   * Whatever it throws propagates, and the row stays free: count is unchanged and the next decode
   * reuses it. `values` is the row (a view, valid until the arena grows).
   */
  readonly accept?: (decoded: ArenaDecoded, values: Float32Array) => void;
}

/** Rows of client updates of one layout, ready for {@link fedAvgArena}-style aggregation in place. */
export interface UpdateArena {
  readonly layout: Layout;
  /** Values per row (`layout.size`). */
  readonly numParams: number;
  /** Rows filled so far. */
  readonly count: number;
  /** Rows that fit before the arena must grow. */
  readonly capacity: number;
  /** True when rows live in WebAssembly memory and FedAvg runs the SIMD kernel on them. */
  readonly simd: boolean;
  /** Row k (< count) as a view; a view taken before the arena grows is detached (SIMD) afterwards, so take a fresh one. */
  row(k: number): Float32Array;
  /**
   * Decodes one message into the next row (see `decodeUpdateInto`), runs `options.accept` on it, and
   * only then counts it; on any error, the codec's or accept's, count and every counted row are
   * unchanged (capacity may have grown).
   */
  decode(bytes: Uint8Array, limits: DecodeLimits, options?: ArenaDecodeOptions): ArenaDecoded;
  /** Copies one flat update into the next row; throws `PARAMS_MISMATCH` / `PARAMS_NON_FINITE` and changes nothing on bad input. */
  append(values: Float32Array): number;
  /** Makes room for `rows` rows in all, growing now rather than during a later decode. */
  reserve(rows: number): void;
  /** Forgets every row and keeps the memory for the next round. */
  clear(): void;
}

/** What {@link fedAvgArena} needs beyond the public view: the kernels and where the rows are. */
export interface ArenaInternals {
  /** Null on the scalar path. */
  readonly kernels: ArenaKernels | null;
  /** Byte address of row k in the kernels' memory (SIMD path). */
  rowAddress(k: number): number;
}

const internals = new WeakMap<UpdateArena, ArenaInternals>();

/** The kernel-side view of an arena made by {@link createUpdateArena} (package-internal). */
export function arenaInternals(arena: UpdateArena): ArenaInternals {
  const found = internals.get(arena);
  if (found === undefined) throw new FlCoreError('AGG_BAD_CONFIG', 'update arena: not made by createUpdateArena');
  return found;
}

function checkRowCount(what: string, rows: number): void {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new FlCoreError('AGG_BAD_CONFIG', `update arena: ${what} must be an integer ≥ 1, got ${rows}`);
}

// A row is the layout's tensors back to back, so offsets must follow on from each other.
function checkLayoutTiles(layout: Layout): void {
  let next = 0;
  for (let k = 0; k < layout.names.length; k++) {
    const shape = layout.shapes[k];
    if (shape === undefined || layout.offsets[k] !== next)
      throw new FlCoreError('AGG_BAD_CONFIG', `update arena: layout entry ${k} does not start where the previous one ends`);
    next += shape.reduce((a, d) => a * d, 1);
  }
  if (next !== layout.size) throw new FlCoreError('AGG_BAD_CONFIG', `update arena: layout tensors hold ${next} values, its size says ${layout.size}`);
}

// A row is reused round after round, so tensors a partial message did not carry are cleared.
function zeroUnsent(layout: Layout, values: Float32Array, sent: readonly number[]): void {
  const carried = new Set(sent);
  for (let k = 0; k < layout.names.length; k++) {
    if (carried.has(k)) continue;
    const start = layout.offsets[k]!;
    const end = k + 1 < layout.offsets.length ? layout.offsets[k + 1]! : layout.size;
    values.fill(0, start, end);
  }
}

/** Creates an arena for updates of `options.layout`; throws `AGG_BAD_CONFIG` for a bad capacity, kernel or layout. */
export function createUpdateArena(options: UpdateArenaOptions): UpdateArena {
  const { layout } = options;
  checkRowCount('capacity', options.capacity);
  const kernel = options.kernel ?? 'auto';
  if (kernel !== 'auto' && kernel !== 'scalar')
    throw new FlCoreError('AGG_BAD_CONFIG', `update arena: kernel must be 'auto' or 'scalar', got ${String(kernel)}`);
  const numParams = layout.size;
  if (!Number.isSafeInteger(numParams) || numParams < 1)
    throw new FlCoreError('AGG_BAD_CONFIG', `update arena: layout size must be an integer ≥ 1, got ${numParams}`);
  checkLayoutTiles(layout);
  const rowStride = Math.ceil((numParams * 4) / PAGE) * PAGE + ROW_SKEW_BYTES;
  const bytesFor = (rows: number): number => ARENA_SCRATCH_BYTES + rows * rowStride;

  let capacity = options.capacity;
  const kernels = kernel === 'auto' ? createArenaKernels(bytesFor(capacity)) : null;
  const plainRows: Float32Array[] = [];
  let count = 0;

  const rowAddress = (k: number): number => ARENA_SCRATCH_BYTES + k * rowStride;
  // Derived from the current buffer on every call: a grow in between detaches older views.
  const rowView = (k: number): Float32Array => {
    if (kernels === null) {
      let row = plainRows[k];
      if (row === undefined) {
        row = new Float32Array(numParams);
        plainRows[k] = row;
      }
      return row;
    }
    return new Float32Array(kernels.buffer(), rowAddress(k), numParams);
  };

  const reserve = (rows: number): void => {
    checkRowCount('rows', rows);
    if (rows <= capacity) return;
    if (kernels !== null && !kernels.reserve(bytesFor(rows))) {
      throw new FlCoreError(
        'AGG_BAD_CONFIG',
        `update arena: cannot grow to ${rows} rows of ${numParams} values (${bytesFor(rows)} bytes of WebAssembly memory)`,
      );
    }
    capacity = rows;
  };
  // Half again, not double: one more row of a large model is hundreds of megabytes once doubled.
  const nextRow = (): number => {
    if (count === capacity) reserve(capacity + Math.max(1, Math.ceil(capacity / 2)));
    return count;
  };

  const arena: UpdateArena = {
    layout,
    numParams,
    get count() {
      return count;
    },
    get capacity() {
      return capacity;
    },
    simd: kernels !== null,
    row(k) {
      if (!Number.isInteger(k) || k < 0 || k >= count) throw new FlCoreError('AGG_BAD_CONFIG', `update arena: row ${k} is not one of the ${count} filled`);
      return rowView(k);
    },
    decode(bytes, limits, options = {}) {
      const k = nextRow();
      const partial = options.partial === true;
      // The target is a free row: whatever happens before count++ leaves it free.
      const values = rowView(k);
      // scratch: a free row holds nothing to keep, so values are checked where they land.
      const header = decodeUpdateInto(bytes, limits, { layout, out: values, partial, scratch: true });
      if (partial && header.tensorIndices.length < layout.names.length) zeroUnsent(layout, values, header.tensorIndices);
      const decoded: ArenaDecoded = { ...header, row: k };
      options.accept?.(decoded, values);
      count++;
      return decoded;
    },
    append(values) {
      if (!(values instanceof Float32Array) || values.length !== numParams) {
        throw new FlCoreError(
          'PARAMS_MISMATCH',
          `update arena: append needs a Float32Array of ${numParams} values, got ${values instanceof Float32Array ? values.length : typeof values}`,
        );
      }
      for (let i = 0; i < values.length; i++) {
        if (values[i]! - values[i]! !== 0) throw new FlCoreError('PARAMS_NON_FINITE', `update arena: value ${i} is ${values[i]}`);
      }
      const k = nextRow();
      rowView(k).set(values);
      count++;
      return k;
    },
    reserve,
    clear() {
      count = 0;
    },
  };
  internals.set(arena, { kernels, rowAddress });
  return arena;
}
