/**
 * The demo task's adapter tensors as its model defines them (LoRA on two layers per encoder, concept
 * projections, the NAM head: 37 tensors, 11,778 values for tasks/demo-digits.yaml), built from fresh
 * encoders on TF.js's CPU backend. The benchmark serves these as the initial global of a task without
 * a server-side model, so its clients upload what real clients of the demo upload, while TF.js stays
 * out of the measured coordinator process.
 */
import * as tf from '@tensorflow/tfjs';
import { MultimodalModel, TextEmbedder, buildDigitsEncoders } from '@chorus/models';
import type { Tensor } from '@chorus/fl-core';
import type { TaskConfig } from '@chorus/protocol';
import { DIGITS_BASE_SEED } from '../src/model/digitsArchitecture.js';

// The text encoder reads 100-d GloVe vectors; a stand-in table of that width gives the same adapters.
const GLOVE_DIM = 100;

/** Initial adapters of `task`'s model (its modalities, rank, α, concepts, head and seed). */
export async function demoAdapters(task: TaskConfig): Promise<Tensor[]> {
  await tf.setBackend('cpu');
  const encoders = buildDigitsEncoders(DIGITS_BASE_SEED);
  const modalities = task.dataset.modalities as (keyof typeof encoders)[];
  const model = new MultimodalModel({
    numClasses: 10,
    encoders: Object.fromEntries(modalities.map((m) => [m, { base: encoders[m] }])),
    ...(modalities.includes('text') ? { textEmbedder: new TextEmbedder(new Float32Array(4 * GLOVE_DIM), GLOVE_DIM) } : {}),
    conceptDim: task.model.namConcepts,
    head: task.model.head,
    loraRank: task.model.adapterRank,
    loraAlpha: task.model.adapterAlpha,
    learningRate: task.learningRate,
    seed: task.seed,
  });
  try {
    return model.adapterParameters();
  } finally {
    model.dispose();
  }
}
