/**
 * Validation of one uploaded update before anything is aggregated. Checks run cheapest first and
 * each failure maps to one protocol code; nothing here mutates the global model or the input.
 *
 *   UPDATE_TOO_LARGE   over the task's byte limit (before decoding), or the codec's element limit
 *   UPDATE_MALFORMED   not a valid codec message, or a header that is not this client's delta for this round
 *   UPDATE_NON_FINITE  NaN or ±Infinity anywhere
 *   UPDATE_SHAPE       a tensor the global lacks, a different shape, a group the client does not hold,
 *                      or a group sent only in part
 *   UPDATE_NORM        ‖delta‖₂ above the task's norm bound
 */
import { allFinite, decodeUpdate, groupOf, isFlCoreError, squaredNorm } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import { ProtocolError } from '@chorus/protocol';
import { MODALITIES } from '@chorus/protocol';

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
}

/** A validated update. */
export interface ValidUpdate {
  readonly delta: Tensor[];
  readonly norm: number;
}

const MODALITY_GROUPS: ReadonlySet<string> = new Set(MODALITIES);

/** Decodes and checks `bytes`; throws a {@link ProtocolError} with the first failing check's code. */
export function validateUpdate(bytes: Uint8Array, expect: UpdateExpectations): ValidUpdate {
  if (bytes.byteLength > expect.maxUpdateBytes) {
    throw new ProtocolError('UPDATE_TOO_LARGE', `update is ${bytes.byteLength} bytes, limit is ${expect.maxUpdateBytes}`);
  }
  let maxElements = 0;
  for (const t of expect.global) maxElements += t.values.length;
  let decoded;
  try {
    decoded = decodeUpdate(bytes, { maxBytes: expect.maxUpdateBytes, maxTensors: expect.global.length, maxElements });
  } catch (err) {
    if (isFlCoreError(err, 'CODEC_TOO_LARGE')) throw new ProtocolError('UPDATE_TOO_LARGE', err.message);
    if (isFlCoreError(err, 'CODEC_NON_FINITE')) throw new ProtocolError('UPDATE_NON_FINITE', err.message);
    if (isFlCoreError(err)) throw new ProtocolError('UPDATE_MALFORMED', err.message);
    throw err;
  }
  if (decoded.kind !== 'delta') throw new ProtocolError('UPDATE_MALFORMED', `expected a delta, got a ${decoded.kind}`);
  if (decoded.taskId !== expect.taskId) throw new ProtocolError('UPDATE_MALFORMED', `update is for task '${decoded.taskId}'`);
  if (decoded.round !== expect.serverRound) throw new ProtocolError('UPDATE_MALFORMED', `update is for round ${decoded.round}, the open round is ${expect.serverRound}`);
  if (decoded.clientId !== expect.clientId) throw new ProtocolError('UPDATE_MALFORMED', 'update names another client');
  if (decoded.tensors.length === 0) throw new ProtocolError('UPDATE_SHAPE', 'update holds no tensors');

  checkLayout(decoded.tensors, expect);

  let sq = 0;
  for (const t of decoded.tensors) {
    if (!allFinite(t.values)) throw new ProtocolError('UPDATE_NON_FINITE', `'${t.name}' holds NaN or Infinity`);
    sq += squaredNorm(t.values);
  }
  const norm = Math.sqrt(sq);
  if (!Number.isFinite(norm)) throw new ProtocolError('UPDATE_NON_FINITE', 'update norm overflows');
  if (expect.normBound !== null && norm > expect.normBound) {
    throw new ProtocolError('UPDATE_NORM', `update norm ${norm.toPrecision(4)} exceeds the bound ${expect.normBound}`);
  }
  return { delta: decoded.tensors, norm };
}

function checkLayout(tensors: readonly Tensor[], expect: UpdateExpectations): void {
  const globalByName = new Map(expect.global.map((t) => [t.name, t]));
  const held = new Set(expect.modalities);
  const sentPerGroup = new Map<string, number>();
  for (const t of tensors) {
    const g = globalByName.get(t.name);
    if (!g) throw new ProtocolError('UPDATE_SHAPE', `unexpected tensor '${t.name}'`);
    if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) {
      throw new ProtocolError('UPDATE_SHAPE', `'${t.name}' has shape [${t.shape.join(',')}], expected [${g.shape.join(',')}]`);
    }
    const group = groupOf(t.name);
    if (MODALITY_GROUPS.has(group) && !held.has(group)) {
      throw new ProtocolError('UPDATE_SHAPE', `'${t.name}' belongs to modality '${group}', which this client does not hold`);
    }
    sentPerGroup.set(group, (sentPerGroup.get(group) ?? 0) + 1);
  }
  // A group is aggregated as one vector, so a client sends all of its tensors or none.
  for (const [group, sent] of sentPerGroup) {
    const expected = expect.global.filter((t) => groupOf(t.name) === group).length;
    if (sent !== expected) throw new ProtocolError('UPDATE_SHAPE', `group '${group}' sent ${sent} of its ${expected} tensors`);
  }
}
