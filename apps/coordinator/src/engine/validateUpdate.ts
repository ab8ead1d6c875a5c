/**
 * Validation of one uploaded update before anything is aggregated. Checks run cheapest first and
 * each failure maps to one protocol code; nothing here mutates the global model or the input.
 *
 *   UPDATE_TOO_LARGE   over the task's byte limit (before decoding), or the codec's tensor or element limit
 *   UPDATE_MALFORMED   not a valid codec message, or a header that is not this client's delta for this round
 *   UPDATE_NON_FINITE  NaN or ±Infinity anywhere (the codec refuses them while decoding), or a norm that overflows
 *   UPDATE_SHAPE       a tensor the global lacks, a different shape, a group the client does not hold,
 *                      or a group sent only in part
 *   UPDATE_NORM        ‖delta‖₂ above the task's norm bound
 *
 * With `expect.arena` the update is decoded once, straight into the arena's next free row, and the
 * returned tensors are views of that row; the row counts only once every check above has passed, so a
 * refused upload leaves it free for the next one. Each fault alone gets the same code on both paths;
 * a message with several faults may be refused for another of them on the arena path, where the
 * codec matches tensor names and shapes before it reads values and before the header is compared.
 */
import { decodeUpdate, groupOf, isFlCoreError, layoutOf, squaredNorm } from '@chorus/fl-core';
import type { DecodeLimits, Parameters, Tensor, UpdateArena } from '@chorus/fl-core';
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
  /** CRC-32 the codec verifies with (the coordinator passes `fastCrc32`); fl-core's portable one by default. */
  readonly crc32?: (bytes: Uint8Array) => number;
  /**
   * Decode into this arena's next free row instead of fresh arrays. Its layout must be the global's
   * (`layoutOf(global)`: same names, shapes and order; `CONFIG_INVALID` otherwise). When the arena is
   * full the update is decoded into fresh arrays instead (no `row`): growing a WebAssembly arena would
   * detach the views handed out earlier in the round, so reserve a row per selected client up front.
   */
  readonly arena?: UpdateArena;
}

/** A validated update. */
export interface ValidUpdate {
  /** The tensors sent, in message order; views of the arena row when `row` is set. */
  readonly delta: Tensor[];
  readonly norm: number;
  /**
   * The arena row holding the whole update (tensors not sent are zero there), when it was decoded
   * into `expect.arena`; absent when it was decoded into fresh arrays.
   */
  readonly row?: number;
}

const MODALITY_GROUPS: ReadonlySet<string> = new Set(MODALITIES);

/** What the checks need to know about one global model, computed once per global (each round has one). */
interface GlobalIndex {
  readonly indexByName: ReadonlyMap<string, number>;
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
    indexByName: new Map(global.map((t, i) => [t.name, i])),
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
    if (arena !== undefined && arena.count < arena.capacity) return validateIntoArena(bytes, expect, index, limits, arena);
    return validateFresh(bytes, expect, index, limits);
  } catch (err) {
    if (err instanceof ProtocolError || !isFlCoreError(err)) throw err;
    if (err.code === 'CODEC_TOO_LARGE') throw new ProtocolError('UPDATE_TOO_LARGE', err.message);
    if (err.code === 'CODEC_NON_FINITE') throw new ProtocolError('UPDATE_NON_FINITE', err.message);
    // Only decodeUpdateInto matches names and shapes: a tensor the global lacks or of another shape.
    if (err.code === 'PARAMS_MISMATCH') throw new ProtocolError('UPDATE_SHAPE', err.message);
    throw new ProtocolError('UPDATE_MALFORMED', err.message);
  }
}

function validateFresh(bytes: Uint8Array, expect: UpdateExpectations, index: GlobalIndex, limits: DecodeLimits): ValidUpdate {
  const decoded = decodeUpdate(bytes, limits);
  checkHeader(decoded, expect);
  const sent: number[] = [];
  for (const t of decoded.tensors) {
    const k = index.indexByName.get(t.name);
    if (k === undefined) throw new ProtocolError('UPDATE_SHAPE', `unexpected tensor '${t.name}'`);
    const g = expect.global[k]!;
    if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) {
      throw new ProtocolError('UPDATE_SHAPE', `'${t.name}' has shape [${t.shape.join(',')}], expected [${g.shape.join(',')}]`);
    }
    sent.push(k);
  }
  checkGroups(sent, expect, index);
  let sq = 0;
  for (const t of decoded.tensors) sq += squaredNorm(t.values);
  return { delta: decoded.tensors, norm: checkNorm(sq, expect) };
}

function validateIntoArena(bytes: Uint8Array, expect: UpdateExpectations, index: GlobalIndex, limits: DecodeLimits, arena: UpdateArena): ValidUpdate {
  checkArenaLayout(arena, expect.global);
  const { layout } = arena;
  let delta: Tensor[] = [];
  let norm = 0;
  const decoded = arena.decode(bytes, limits, {
    partial: true,
    // Runs before the row counts: a refusal thrown here leaves the row free.
    accept: (header, row) => {
      checkHeader(header, expect);
      checkGroups(header.tensorIndices, expect, index);
      delta = header.tensorIndices.map((k) => {
        const offset = layout.offsets[k]!;
        const g = expect.global[k]!;
        return { name: g.name, shape: [...g.shape], values: row.subarray(offset, offset + g.values.length) };
      });
      // The codec summed the squares while checking the values: no second pass over the row.
      norm = checkNorm(header.sumOfSquares, expect);
    },
  });
  return { delta, norm, row: decoded.row };
}

interface Header {
  readonly kind: string;
  readonly taskId: string;
  readonly round: number;
  readonly clientId: string;
}

function checkHeader(decoded: Header, expect: UpdateExpectations): void {
  if (decoded.kind !== 'delta') throw new ProtocolError('UPDATE_MALFORMED', `expected a delta, got a ${decoded.kind}`);
  if (decoded.taskId !== expect.taskId) throw new ProtocolError('UPDATE_MALFORMED', `update is for task '${decoded.taskId}'`);
  if (decoded.round !== expect.serverRound) throw new ProtocolError('UPDATE_MALFORMED', `update is for round ${decoded.round}, the open round is ${expect.serverRound}`);
  if (decoded.clientId !== expect.clientId) throw new ProtocolError('UPDATE_MALFORMED', 'update names another client');
}

/** `sent`: global index of each tensor sent (names are unique, the codec checked). */
function checkGroups(sent: readonly number[], expect: UpdateExpectations, index: GlobalIndex): void {
  if (sent.length === 0) throw new ProtocolError('UPDATE_SHAPE', 'update holds no tensors');
  const sentPerGroup = new Map<string, number>();
  for (const k of sent) {
    const group = index.groupOfIndex[k]!;
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

// Values are finite here: the codec refuses NaN and ±Infinity in fp32/fp16 payloads, and int8 values
// are q · scale with a scale it checked cannot overflow. `sumOfSquares` is Σ x² over the update.
function checkNorm(sumOfSquares: number, expect: UpdateExpectations): number {
  const norm = Math.sqrt(sumOfSquares);
  if (!Number.isFinite(norm)) throw new ProtocolError('UPDATE_NON_FINITE', 'update norm overflows');
  if (expect.normBound !== null && norm > expect.normBound) {
    throw new ProtocolError('UPDATE_NORM', `update norm ${norm.toPrecision(4)} exceeds the bound ${expect.normBound}`);
  }
  return norm;
}

// The global each arena was last checked against: one comparison per round, not per upload.
const arenaChecked = new WeakMap<UpdateArena, Parameters>();

function checkArenaLayout(arena: UpdateArena, global: Parameters): void {
  if (arenaChecked.get(arena) === global) return;
  const want = layoutOf(global);
  const { layout } = arena;
  const same =
    layout.size === want.size &&
    layout.names.length === want.names.length &&
    want.names.every((name, k) => layout.names[k] === name && layout.offsets[k] === want.offsets[k] && layout.shapes[k]!.length === want.shapes[k]!.length && want.shapes[k]!.every((d, i) => layout.shapes[k]![i] === d));
  if (!same) throw new CoordinatorError('CONFIG_INVALID', 'validateUpdate: the arena’s layout is not the global model’s (build it with layoutOf(global))');
  arenaChecked.set(arena, global);
}
