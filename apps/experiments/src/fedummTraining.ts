/**
 * Measuring outside the coordinator for the FedUMM section (Su et al. 2026, arXiv:2601.15390,
 * Tables 3 and 4): the weights each training mode trains and the real size of an update as
 * fl-core's codec encodes it. Training itself (LoRA or full fine-tuning, mixed batches over the
 * union of the clients' data) is centralized.ts's `trainOnUnion`.
 */
import { encodeUpdate } from '@chorus/fl-core';
import type { Tensor, UpdateEncoding } from '@chorus/fl-core';
import type { MultimodalModel } from '@chorus/models';
import type { TrainingMode } from './centralized.js';

/** Every weight `mode` trains, as named copies: the exchanged adapters and head, or the base encoders' weights and the head. */
export function trainedParameters(model: MultimodalModel, mode: TrainingMode): Tensor[] {
  const head = model.adapterParameters().filter((t) => !t.name.endsWith('/lora_a') && !t.name.endsWith('/lora_b'));
  if (mode === 'adapters') return model.adapterParameters();
  const base = model.baseVariables().map((v, i) => ({ name: `base/${i}/${v.name}`, shape: [...v.shape], values: new Float32Array(v.dataSync()) }));
  return [...base, ...head];
}

/** Bytes of `tensors` as one client's update message in `encoding` (what the runtime uploads). */
export function encodedBytes(tensors: readonly Tensor[], encoding: UpdateEncoding): number {
  return encodeUpdate({ kind: 'delta', taskId: 'fedumm', round: 1, clientId: 'client-0', encoding, tensors: [...tensors] }).byteLength;
}

/** Middle value of `values` (mean of the two middle ones for an even count); NaN when empty. */
export function medianOf(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
