/**
 * A tiny split task for this folder's tests: image and audio as 5-feature vectors on frozen dense
 * bases, c = 4 concepts, K = 2 classes, d = 8 fused features, and an in-process edge
 * (`EdgeSteps` over `EdgeFusion`) behind a `SplitLink`.
 */
import * as tf from '@tensorflow/tfjs';
import { encodeUpdate, groupOf } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { EdgeFusion, EdgeSteps, SplitDevice } from '@chorus/models';
import type { Modality, SplitLink } from '@chorus/models';
import { PROTOCOL_VERSION, roundStartSchema } from '@chorus/protocol';
import type { ParsedRoundStart, SplitRoundConfig } from '@chorus/protocol';
import { ArrayDataset } from '../dataset.js';
import { modelForRequest } from '../models.js';
import type { ModelFactory, ModelRequest } from '../models.js';

export const TINY_SPLIT = {
  task: 'split-task',
  features: 5,
  concepts: 4,
  classes: 2,
  fusedDim: 8,
  rank: 2,
  hidden: 4,
  modalities: ['image', 'audio'] as Modality[],
};

/** A frozen two-layer dense encoder of a 5-feature vector (stands in for a pretrained one). */
function denseBase(name: string, seed: number): tf.Sequential {
  const base = tf.sequential({ name });
  base.add(
    tf.layers.dense({
      name: 'hidden',
      inputShape: [TINY_SPLIT.features],
      units: 8,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
      biasInitializer: tf.initializers.constant({ value: 0.1 }),
    }),
  );
  base.add(tf.layers.dense({ name: 'embedding', units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
  return base;
}

/** A model factory over frozen dense image and audio bases, built at once (so they are not counted as a round's tensors). */
export function tinySplitFactory(): ModelFactory {
  const bases = { image: denseBase('image_base', 1), audio: denseBase('audio_base', 3) };
  return {
    modalities: TINY_SPLIT.modalities,
    create(request: ModelRequest) {
      const encoders = Object.fromEntries(request.modalities.map((m) => [m, { base: bases[m as 'image' | 'audio'], targets: ['hidden', 'embedding'] }]));
      return Promise.resolve(modelForRequest(request, { encoders, adapterAlpha: request.adapterAlpha ?? 4 }));
    },
    dispose() {
      bases.image.dispose();
      bases.audio.dispose();
    },
  };
}

/** `n` labelled examples holding `modalities`; the label is 1 exactly when the first image feature is positive. */
export function tinySplitData(n: number, seed: number, modalities: readonly Modality[] = TINY_SPLIT.modalities): ArrayDataset {
  const f = TINY_SPLIT.features;
  const image = Float32Array.from({ length: n * f }, (_, i) => Math.sin(7.3 * i + seed));
  const audio = Float32Array.from({ length: n * f }, (_, i) => Math.cos(3.1 * i + 2 * seed));
  const labels = Int32Array.from({ length: n }, (_, i) => (image[i * f]! > 0 ? 1 : 0));
  return new ArrayDataset(labels, {
    ...(modalities.includes('image') ? { image: { values: image, shape: [n, f] } } : {}),
    ...(modalities.includes('audio') ? { audio: { values: audio, shape: [n, f] } } : {}),
  });
}

/** The edge of the tiny task (modalities in the device model's order). */
export function tinyEdge(): EdgeFusion {
  return new EdgeFusion({ modalities: TINY_SPLIT.modalities, tokenDim: TINY_SPLIT.concepts, modelDim: TINY_SPLIT.fusedDim, seed: 3, learningRate: 0.01 });
}

/** The initial global model of the tiny split task: the device's tensors (with the task head) and the edge's `edge/*`. */
export async function tinySplitGlobal(models: ModelFactory, edge: EdgeFusion): Promise<Tensor[]> {
  const model = await models.create({
    modalities: TINY_SPLIT.modalities,
    numClasses: TINY_SPLIT.classes,
    adapterRank: TINY_SPLIT.rank,
    namConcepts: TINY_SPLIT.concepts,
    namHiddenUnits: TINY_SPLIT.hidden,
    learningRate: 0.01,
    seed: 9,
  });
  const device = new SplitDevice({ model, fusedDim: TINY_SPLIT.fusedDim, seed: 4 });
  try {
    // LoRA B starts at zero; nudge it so the adapters already change something.
    const params = device.parameters().map((t) => (t.name.endsWith('/lora_b') ? { ...t, values: t.values.map((_, i) => 0.01 * ((i % 5) - 2)) } : t));
    return [...params, ...edge.parameters()];
  } finally {
    device.dispose();
    model.dispose();
  }
}

/** The edge's own tensors of a global model. */
export function edgeTensors(global: readonly Tensor[]): Tensor[] {
  return global.filter((t) => groupOf(t.name) === 'edge');
}

/** A split section with no noise, fp32 both ways. */
export function splitSection(overrides: Partial<SplitRoundConfig> = {}): SplitRoundConfig {
  return {
    fusedDim: TINY_SPLIT.fusedDim,
    localHeadWeight: 0.5,
    activations: { clipNorm: 5, noiseMultiplier: 0, encoding: 'fp32' },
    gradients: { clipNorm: 5, noiseMultiplier: 0, encoding: 'fp32' },
    returnEncoding: 'fp32',
    stepTimeoutMs: 1000,
    ...overrides,
  };
}

/** The round start a coordinator would send for a split round over `global` (a weight round when `split` is null). */
export async function splitRoundStart(global: readonly Tensor[], split: SplitRoundConfig | null, serverRound = 2): Promise<ParsedRoundStart> {
  const bytes = encodeUpdate({ kind: 'model', taskId: TINY_SPLIT.task, round: serverRound - 1, clientId: '', encoding: 'fp32', tensors: [...global] });
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes)));
  return roundStartSchema.parse({
    type: 'round-start',
    protocolVersion: PROTOCOL_VERSION,
    taskId: TINY_SPLIT.task,
    roundId: `${TINY_SPLIT.task}.r${serverRound}.a1`,
    serverRound,
    attempt: 1,
    deadlineAt: 0,
    config: {
      localEpochs: 2,
      batchSize: 4,
      learningRate: 0.01,
      uploadEncoding: 'fp32',
      maxUpdateBytes: 1 << 22,
      normBound: 10,
      head: 'nam',
      adapterAlpha: 4,
      strategy: {},
      ...(split ? { split } : {}),
    },
    globalHash: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
    global: bytes,
  });
}

/** The edge's step sessions over `edge`, with a clock that never lets a forward expire. */
export function tinyEdgeSteps(edge: EdgeFusion): EdgeSteps {
  return new EdgeSteps(edge, { taskId: TINY_SPLIT.task, returnEncoding: 'fp32', maxBatch: 64, stepTimeoutMs: 60_000, now: () => 0 });
}

/** A link straight into `steps` for `clientId` in attempt `roundId` (the edge's refusals reject, as its FlCoreErrors). */
export function inProcessLink(steps: EdgeSteps, roundId: string, clientId: string): SplitLink {
  return {
    forward: (step, batchSize, payload) => Promise.resolve().then(() => steps.forward({ roundId, clientId, step, batchSize, payload })),
    backward: (step, batchSize, payload) => Promise.resolve().then(() => steps.backward({ roundId, clientId, step, batchSize, payload })),
  };
}
