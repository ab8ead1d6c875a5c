/**
 * How a global model and a strategy's state become bytes in the store and back: fl-core codec
 * messages of kind `model` in fp32 (lossless, so a resumed run continues from bit-identical
 * weights), hashed with SHA-256.
 */
import { createHash } from 'node:crypto';
import { decodeUpdate, encodeUpdate } from '@chorus/fl-core';
import type { Parameters, StrategyState, Tensor } from '@chorus/fl-core';
import { fastCrc32 } from '../codec/fastCrc32.js';
import type { StoredStrategyState } from '../store/types.js';

/** SHA-256 of bytes, hex, computed synchronously (node:crypto; datasets' `sha256Hex` is the asynchronous WebCrypto one). */
export function sha256HexSync(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Encodes a global model as codec bytes (kind: model, fp32: lossless, so resume is byte-identical). */
export function encodeGlobal(taskId: string, serverRound: number, tensors: Parameters): Uint8Array {
  return encodeUpdate({ kind: 'model', taskId, round: serverRound, clientId: '', encoding: 'fp32', tensors }, { crc32: fastCrc32 });
}

/** Decodes a stored global model; throws the codec's `FlCoreError` when the bytes are not one. */
export function decodeGlobal(bytes: Uint8Array): Tensor[] {
  return decodeUpdate(bytes, { maxBytes: bytes.byteLength, crc32: fastCrc32 }).tensors;
}

/** A strategy's exported state as the store keeps it: JSON text plus codec bytes of its tensors. */
export function encodeStrategyState(taskId: string, serverRound: number, state: StrategyState): StoredStrategyState {
  return { json: JSON.stringify(state.json), tensorBytes: encodeGlobal(taskId, serverRound, state.tensors) };
}

/** The exported state back from the store; the strategy's `importState` validates it. */
export function decodeStrategyState(stored: StoredStrategyState): StrategyState {
  return { json: JSON.parse(stored.json) as StrategyState['json'], tensors: decodeGlobal(stored.tensorBytes) };
}
