/**
 * The initial global adapters of a task, as named tensors. LoRA (Hu et al. 2021, arXiv:2106.09685)
 * starts with A small and random and B zero, so the adapted model equals its frozen base at round 0;
 * the NAM head (Agarwal et al. 2021, arXiv:2004.13912) reads `namConcepts` concepts per modality
 * from a small random projection, and its output layer starts at zero. Tensor names carry the group as first path segment (`image/…`,
 * `fusion/…`) so groupwise aggregation and per-modality validation work on them. With the linear
 * head (the "without NAM" ablation) the output layer is named as the models package names it: one
 * [c, K] kernel block per modality (`image/linear/kernel`, in that modality's group, since only its
 * clients train it) and the shared bias `fusion/linear/bias`.
 *
 * A synthetic layout of the demo's sizes, for runs without a server-side model (tests and the
 * coordinator benchmark). Real tasks take their layout from the model itself (model/taskModel.ts).
 */
import { gaussian, tensor } from '@chorus/fl-core';
import type { Rng, Tensor } from '@chorus/fl-core';

/** Sizes the adapter layout depends on. */
export interface AdapterLayoutOptions {
  readonly modalities: readonly string[];
  readonly adapterRank: number;
  readonly namConcepts: number;
  /** Width of each frozen encoder's embedding (the adapted Dense layer's input and output). */
  readonly embeddingDim: number;
  readonly numClasses: number;
  /** Output layer: 'nam' (default; one fused [M·c, K] kernel here) or 'linear' (per-modality blocks). */
  readonly head?: 'nam' | 'linear';
}

/** Initial LoRA adapters and concept projection per modality plus a zero head, seeded by `rng`. */
export function initialAdapters(rng: Rng, options: AdapterLayoutOptions): Tensor[] {
  const { adapterRank: r, embeddingDim: d, namConcepts: c, numClasses: k } = options;
  const out: Tensor[] = [];
  // Kaiming-uniform-like scale for A, as in the LoRA reference implementation.
  const scaleA = 1 / Math.sqrt(d);
  for (const m of options.modalities) {
    const a = new Float32Array(r * d);
    for (let i = 0; i < a.length; i++) a[i] = gaussian(rng) * scaleA;
    out.push(tensor(`${m}/embed/lora_a`, [r, d], a));
    out.push(tensor(`${m}/embed/lora_b`, [d, r]));
    const concepts = new Float32Array(d * c);
    for (let i = 0; i < concepts.length; i++) concepts[i] = gaussian(rng) * scaleA;
    out.push(tensor(`${m}/concepts/kernel`, [d, c], concepts));
  }
  if (options.head === 'linear') {
    for (const m of options.modalities) out.push(tensor(`${m}/linear/kernel`, [c, k]));
    out.push(tensor('fusion/linear/bias', [k]));
    return out;
  }
  out.push(tensor('fusion/head/kernel', [options.modalities.length * c, k]));
  out.push(tensor('fusion/head/bias', [k]));
  return out;
}
