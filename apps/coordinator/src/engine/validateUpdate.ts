/**
 * Validation of one uploaded update before anything is aggregated. Checks run cheapest first and
 * each failure maps to one protocol code; nothing here mutates the global model or the input.
 *
 *   UPDATE_TOO_LARGE   over the task's byte limit (before decoding), or the codec's tensor or element limit
 *   UPDATE_MALFORMED   not a valid codec message, or a header that is not this client's delta for this round
 *   UPDATE_NON_FINITE  NaN or ±Infinity anywhere (the codec refuses them while decoding), or a norm that overflows
 *   UPDATE_SHAPE       a tensor the global lacks, a different shape, a group the client does not hold
 *                      (a modality it did not advertise, or a server-only group such as a split task's `edge`),
 *                      or a group sent only in part
 *   UPDATE_NORM        ‖delta‖₂ above the task's norm bound
 *
 * Order: the codec's checks (size limits, structure, checksum, tensor names and shapes against the
 * global, values), then the header, the groups, the norm. An update is decoded once, into one flat
 * row in the global's layout — the next free row of `expect.arena` when one is given, else a fresh
 * array — and the returned tensors are views of that row. The codec sums the squares while it checks
 * the values, so the norm costs no second pass. An arena row counts only once every check has
 * passed, so a refused upload leaves it free for the next one.
 */
import { decodeUpdateInto, groupOf, isFlCoreError, layoutOf } from '@chorus/fl-core';
import type { DecodeLimits, Layout, Parameters, Tensor, UpdateArena } from '@chorus/fl-core';
import { MODALITIES, ProtocolError } from '@chorus/protocol';
import { CoordinatorError } from '../errors.js';

/** What an update is checked against. */
export interface UpdateExpectations {
  readonly taskId: string;
  readonly serverRound: number;
  readonly clientId: string;
  /** Modalities the client advertised; their groups (and every non-modality group) may be sent. */
  readonly modalities: readonly string[];
  readonly global: Parameters;
  readonly maxUpdateBytes: number;
  readonly normBound: number | null;
  /** Groups of the global only the server trains (a split task's `edge`); an update touching one is refused. */
  readonly serverGroups?: readonly string[];
  /** CRC-32 the codec verifies with (the coordinator passes `fastCrc32`); fl-core's portable one by default. */
  readonly crc32?: (bytes: Uint8Array) => number;
  /**
   * Decode into this arena's next free row instead of a fresh array. Its layout must be the global's
   * (`layoutOf(global)`: same names, shapes and order; `CONFIG_INVALID` otherwise). When the arena is
   * full the update goes to a fresh array instead (no `row`): growing a WebAssembly arena would
   * detach the views handed out earlier in the round, so reserve a row per selected client up front.
   */
  readonly arena?: UpdateArena;
}

/** A validated update. */
export interface ValidUpdate {
  /** The tensors sent, in message order: views of one flat row in the global's layout (the arena row when `row` is set). */
  readonly delta: Tensor[];
  readonly norm: number;
  /**
   * The arena row holding the whole update (tensors not sent are zero there), when it was decoded
   * into `expect.arena`; absent when it was decoded into a fresh array.
   */
  readonly row?: number;
}

const MODALITY_GROUPS: ReadonlySet<string> = new Set(MODALITIES);

/** What the checks need to know about one global model, computed once per global (each round has one). */
interface GlobalIndex {
  readonly layout: Layout;
  readonly groupOfIndex: readonly string[];
  readonly tensorsPerGroup: ReadonlyMap<string, number>;
  readonly numElements: number;
}

const globalIndexes = new WeakMap<Parameters, GlobalIndex>();

function indexGlobal(global: Parameters): GlobalIndex {
  let index = globalIndexes.get(global);
  if (index !== undefined) return index;
  const groupOfIndex = global.map((t) => groupOf(t.name));
  const tensorsPerGroup = new Map<string, number>();
  for (const g of groupOfIndex) tensorsPerGroup.set(g, (tensorsPerGroup.get(g) ?? 0) + 1);
  index = {
    // One layout object per global: the codec indexes a layout once and reuses it for every upload.
    layout: layoutOf(global),
    groupOfIndex,
    tensorsPerGroup,
    numElements: global.reduce((n, t) => n + t.values.length, 0),
  };
  globalIndexes.set(global, index);
  return index;
}

/** Decodes and checks `bytes`; throws a {@link ProtocolError} with the first failing check's code. */
export function validateUpdate(bytes: Uint8Array, expect: UpdateExpectations): ValidUpdate {
  if (bytes.byteLength > expect.maxUpdateBytes) {
    throw new ProtocolError('UPDATE_TOO_LARGE', `update is ${bytes.byteLength} bytes, limit is ${expect.maxUpdateBytes}`);
  }
  const index = indexGlobal(expect.global);
  const limits: DecodeLimits = {
    maxBytes: expect.maxUpdateBytes,
    maxTensors: expect.global.length,
    maxElements: index.numElements,
    ...(expect.crc32 ? { crc32: expect.crc32 } : {}),
  };
  const { arena } = expect;
  try {
    if (arena !== undefined && arena.count < arena.capacity) {
      checkArenaLayout(arena, index.layout);
      let valid: ValidUpdate | undefined;
      // accept runs before the row counts: a refusal thrown there leaves the row free.
      const { row } = arena.decode(bytes, limits, { partial: true, accept: (header, values) => (valid = accept(header, values, expect, index)) });
      return { ...valid!, row };
    }
    const values = new Float32Array(index.layout.size);
    // scratch: the array is new, so values may be checked where they land (one pass, norm included).
    return accept(decodeUpdateInto(bytes, limits, { layout: index.layout, out: values, partial: true, scratch: true }), values, expect, index);
  } catch (err) {
    if (err instanceof ProtocolError || !isFlCoreError(err)) throw err;
    if (err.code === 'CODEC_TOO_LARGE') throw new ProtocolError('UPDATE_TOO_LARGE', err.message);
    if (err.code === 'CODEC_NON_FINITE') throw new ProtocolError('UPDATE_NON_FINITE', err.message);
    // A tensor the global lacks, or one of another shape.
    if (err.code === 'PARAMS_MISMATCH') throw new ProtocolError('UPDATE_SHAPE', err.message);
    throw new ProtocolError('UPDATE_MALFORMED', err.message);
  }
}

/** The checks after decoding: header, groups, norm; the delta as views of `values`, the decoded row. */
function accept(decoded: DecodedRow, values: Float32Array, expect: UpdateExpectations, index: GlobalIndex): ValidUpdate {
  checkHeader(decoded, expect);
  checkGroups(decoded.tensorIndices, expect, index);
  const norm = checkNorm(decoded.sumOfSquares, expect);
  const { offsets } = index.layout;
  const delta = decoded.tensorIndices.map((k): Tensor => {
    const g = expect.global[k]!;
    return { name: g.name, shape: g.shape, values: values.subarray(offsets[k]!, offsets[k]! + g.values.length) };
  });
  return { delta, norm };
}

/** What the codec reports of a message decoded into a row (`DecodedIntoHeader`). */
interface DecodedRow {
  readonly kind: string;
  readonly taskId: string;
  readonly round: number;
  readonly clientId: string;
  readonly tensorIndices: readonly number[];
  readonly sumOfSquares: number;
}

function checkHeader(decoded: DecodedRow, expect: UpdateExpectations): void {
  if (decoded.kind !== 'delta') throw new ProtocolError('UPDATE_MALFORMED', `expected a delta, got a ${decoded.kind}`);
  if (decoded.taskId !== expect.taskId) throw new ProtocolError('UPDATE_MALFORMED', `update is for task '${decoded.taskId}'`);
  if (decoded.round !== expect.serverRound)
    throw new ProtocolError('UPDATE_MALFORMED', `update is for round ${decoded.round}, the open round is ${expect.serverRound}`);
  if (decoded.clientId !== expect.clientId) throw new ProtocolError('UPDATE_MALFORMED', 'update names another client');
}

/** `sent`: global index of each tensor sent (names are unique, the codec checked). */
function checkGroups(sent: readonly number[], expect: UpdateExpectations, index: GlobalIndex): void {
  if (sent.length === 0) throw new ProtocolError('UPDATE_SHAPE', 'update holds no tensors');
  const sentPerGroup = new Map<string, number>();
  for (const k of sent) {
    const group = index.groupOfIndex[k]!;
    if (expect.serverGroups?.includes(group))
      throw new ProtocolError('UPDATE_SHAPE', `'${expect.global[k]!.name}' belongs to group '${group}', which only the server trains`);
    if (MODALITY_GROUPS.has(group) && !expect.modalities.includes(group)) {
      throw new ProtocolError('UPDATE_SHAPE', `'${expect.global[k]!.name}' belongs to modality '${group}', which this client does not hold`);
    }
    sentPerGroup.set(group, (sentPerGroup.get(group) ?? 0) + 1);
  }
  // A group is aggregated as one vector, so a client sends all of its tensors or none.
  for (const [group, count] of sentPerGroup) {
    const expected = index.tensorsPerGroup.get(group)!;
    if (count !== expected) throw new ProtocolError('UPDATE_SHAPE', `group '${group}' sent ${count} of its ${expected} tensors`);
  }
}

// `sumOfSquares` is the codec's Σ x² (float64) over the update, finite since every value is: the
// codec refuses NaN and ±Infinity, and a float32 squared cannot overflow a float64 sum.
function checkNorm(sumOfSquares: number, expect: UpdateExpectations): number {
  const norm = Math.sqrt(sumOfSquares);
  if (!Number.isFinite(norm)) throw new ProtocolError('UPDATE_NON_FINITE', 'update norm overflows');
  if (expect.normBound !== null && norm > expect.normBound) {
    throw new ProtocolError('UPDATE_NORM', `update norm ${norm.toPrecision(4)} exceeds the bound ${expect.normBound}`);
  }
  return norm;
}

// The layout each arena was last checked against: one comparison per round (per global), not per upload.
const arenaChecked = new WeakMap<UpdateArena, Layout>();

function checkArenaLayout(arena: UpdateArena, want: Layout): void {
  if (arenaChecked.get(arena) === want) return;
  const { layout } = arena;
  const same =
    layout.size === want.size &&
    layout.names.length === want.names.length &&
    want.names.every(
      (name, k) =>
        layout.names[k] === name &&
        layout.offsets[k] === want.offsets[k] &&
        layout.shapes[k]!.length === want.shapes[k]!.length &&
        want.shapes[k]!.every((d, i) => layout.shapes[k]![i] === d),
    );
  if (!same) throw new CoordinatorError('CONFIG_INVALID', 'validateUpdate: the arena’s layout is not the global model’s (build it with layoutOf(global))');
  arenaChecked.set(arena, want);
}
