/**
 * Validation of one client's representation upload before the server uses it (FedAFD family:
 * "FedAFD: Multimodal Federated Learning via Adversarial Fusion and Distillation", §3.2.3 — clients
 * "generate the public data representations based on their own modality and transmit them").
 *
 * Checks run cheapest first; every refusal is an `FlCoreError` with one of these codes and nothing
 * else is ever thrown; the input bytes and tensors are never modified.
 *
 *   REP_TOO_LARGE    over `maxBytes` (before decoding), or more tensors or values than B × D for every
 *                    modality could need
 *   REP_MALFORMED    not a valid codec message (structure, checksum, encoding, a duplicate tensor name
 *                    in the bytes), or a header that is not this client's representations for this
 *                    task and round
 *   REP_NON_FINITE   NaN or ±Infinity anywhere
 *   REP_MODALITIES   a tensor not named rep/<modality>, a modality the sender does not hold, one of its
 *                    modalities missing, or a modality sent twice
 *   REP_SHAPE        a tensor whose shape is not [B, D] as the round asked
 *   REP_BAD_CONFIG   the expectations themselves are malformed (a caller bug, not bad input)
 *
 * The coordinator maps them onto its wire codes (`@chorus/protocol`'s `representationRefusalCode`): REP_TOO_LARGE → UPDATE_TOO_LARGE, REP_NON_FINITE →
 * UPDATE_NON_FINITE, REP_MODALITIES and REP_SHAPE → UPDATE_SHAPE, REP_MALFORMED → UPDATE_MALFORMED.
 */
import { decodeUpdate } from '../codec/codec.js';
import type { Crc32Function, UpdateEncoding } from '../codec/codec.js';
import { FlCoreError, isFlCoreError } from '../errors.js';
import type { FlCoreErrorCode } from '../errors.js';
import type { Tensor } from '../params.js';
import { MODALITIES } from '../partition/modality.js';
import type { Modality } from '../partition/modality.js';
import { MAX_PUBLIC_BATCH, MAX_REPRESENTATION_DIM, modalityOfRepresentationTensor, representationTensorName } from './names.js';
import { firstNonFinite } from './rows.js';
import type { RepresentationsByModality } from './types.js';

/** What an upload is checked against: the sender, the round, and the batch it was asked for. */
export interface RepresentationExpectations {
  readonly taskId: string;
  readonly serverRound: number;
  readonly clientId: string;
  /** The sender's own modalities (non-empty, no repeats): exactly these must come back. */
  readonly modalities: readonly Modality[];
  /** B: public samples the round asked for. */
  readonly numSamples: number;
  /** D: the representation dimension the round asked for. */
  readonly dim: number;
  /** Largest upload accepted, in bytes. */
  readonly maxBytes: number;
  /** CRC-32 the codec verifies with (e.g. a native one on a server); fl-core's portable one by default. */
  readonly crc32?: Crc32Function;
}

/** A validated upload. */
export interface ValidRepresentations {
  readonly clientId: string;
  /** The encoding it travelled in. */
  readonly encoding: UpdateEncoding;
  /** One B × D matrix per modality of the sender. */
  readonly representations: RepresentationsByModality;
}

function refuse(code: FlCoreErrorCode, message: string): never {
  throw new FlCoreError(code, `validateRepresentations: ${message}`);
}

function checkExpectations(expect: RepresentationExpectations): void {
  if (typeof expect !== 'object' || expect === null) refuse('REP_BAD_CONFIG', 'expectations are required');
  const { modalities, numSamples, dim, maxBytes, crc32 } = expect;
  if (typeof expect.taskId !== 'string' || typeof expect.clientId !== 'string') refuse('REP_BAD_CONFIG', 'taskId and clientId must be strings');
  if (!Number.isSafeInteger(expect.serverRound) || expect.serverRound < 0)
    refuse('REP_BAD_CONFIG', `serverRound must be a non-negative integer, got ${expect.serverRound}`);
  if (
    !Array.isArray(modalities) ||
    modalities.length === 0 ||
    new Set(modalities).size !== modalities.length ||
    !modalities.every((m) => MODALITIES.includes(m))
  )
    refuse('REP_BAD_CONFIG', `modalities must be distinct members of [${MODALITIES.join(', ')}], got ${String(modalities)}`);
  if (!Number.isSafeInteger(numSamples) || numSamples < 1 || numSamples > MAX_PUBLIC_BATCH)
    refuse('REP_BAD_CONFIG', `numSamples must be an integer in [1, ${MAX_PUBLIC_BATCH}], got ${numSamples}`);
  if (!Number.isSafeInteger(dim) || dim < 1 || dim > MAX_REPRESENTATION_DIM)
    refuse('REP_BAD_CONFIG', `dim must be an integer in [1, ${MAX_REPRESENTATION_DIM}], got ${dim}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) refuse('REP_BAD_CONFIG', `maxBytes must be a positive integer, got ${maxBytes}`);
  if (crc32 !== undefined && typeof crc32 !== 'function') refuse('REP_BAD_CONFIG', 'crc32 must be a function');
}

/**
 * Checks already-decoded tensors against the sender's modalities and the round's B × D, and returns
 * them by modality (the same arrays, unmodified). Throws `REP_MODALITIES`, `REP_SHAPE` or
 * `REP_NON_FINITE`; `REP_BAD_CONFIG` for malformed expectations.
 */
export function checkRepresentationTensors(tensors: readonly Tensor[], expect: RepresentationExpectations): RepresentationsByModality {
  checkExpectations(expect);
  if (!Array.isArray(tensors)) refuse('REP_MODALITIES', 'tensors must be an array');
  const { numSamples, dim } = expect;
  const out: Partial<Record<Modality, Float32Array>> = {};
  for (const t of tensors) {
    const name = typeof t === 'object' && t !== null ? t.name : undefined;
    const modality = typeof name === 'string' ? modalityOfRepresentationTensor(name) : null;
    if (modality === null) refuse('REP_MODALITIES', `tensor ${JSON.stringify(name) ?? String(name)} is not named rep/<modality>`);
    if (!expect.modalities.includes(modality)) refuse('REP_MODALITIES', `'${name}' is modality '${modality}', which client '${expect.clientId}' does not hold`);
    if (out[modality] !== undefined) refuse('REP_MODALITIES', `'${name}' is sent twice`);
    const shape: unknown = t.shape;
    if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== numSamples || shape[1] !== dim)
      refuse('REP_SHAPE', `'${name}' has shape [${Array.isArray(shape) ? shape.join(', ') : String(shape)}], the round asked for [${numSamples}, ${dim}]`);
    if (!(t.values instanceof Float32Array) || t.values.length !== numSamples * dim)
      refuse('REP_SHAPE', `'${name}' must hold ${numSamples * dim} float32 values for shape [${numSamples}, ${dim}]`);
    const bad = firstNonFinite(t.values);
    if (bad >= 0) refuse('REP_NON_FINITE', `'${name}'[${bad}] is ${t.values[bad]}`);
    out[modality] = t.values;
  }
  const missing = expect.modalities.filter((m) => out[m] === undefined);
  if (missing.length > 0) refuse('REP_MODALITIES', `missing ${missing.map(representationTensorName).join(', ')}`);
  return out;
}

/** Decodes and checks one upload (codec bytes of kind `representations`); see the file header for the codes. */
export function validateRepresentations(bytes: Uint8Array, expect: RepresentationExpectations): ValidRepresentations {
  checkExpectations(expect);
  if (!(bytes instanceof Uint8Array)) refuse('REP_MALFORMED', 'upload must be a Uint8Array');
  if (bytes.byteLength > expect.maxBytes) refuse('REP_TOO_LARGE', `upload is ${bytes.byteLength} bytes, limit is ${expect.maxBytes}`);
  let decoded;
  try {
    decoded = decodeUpdate(bytes, {
      maxBytes: expect.maxBytes,
      // Room for every modality, not just the sender's: a foreign one is then refused as REP_MODALITIES.
      maxTensors: MODALITIES.length,
      maxElements: MODALITIES.length * expect.numSamples * expect.dim,
      ...(expect.crc32 !== undefined ? { crc32: expect.crc32 } : {}),
    });
  } catch (err) {
    if (!isFlCoreError(err)) refuse('REP_MALFORMED', `undecodable upload (${err instanceof Error ? err.message : String(err)})`);
    if (err.code === 'CODEC_TOO_LARGE') refuse('REP_TOO_LARGE', err.message);
    if (err.code === 'CODEC_NON_FINITE') refuse('REP_NON_FINITE', err.message);
    refuse('REP_MALFORMED', err.message);
  }
  if (decoded.kind !== 'representations') refuse('REP_MALFORMED', `expected representations, got a ${decoded.kind}`);
  if (decoded.taskId !== expect.taskId) refuse('REP_MALFORMED', `upload is for task '${decoded.taskId}'`);
  if (decoded.round !== expect.serverRound) refuse('REP_MALFORMED', `upload is for round ${decoded.round}, the open round is ${expect.serverRound}`);
  if (decoded.clientId !== expect.clientId) refuse('REP_MALFORMED', 'upload names another client');
  return { clientId: decoded.clientId, encoding: decoded.encoding, representations: checkRepresentationTensors(decoded.tensors, expect) };
}
