/**
 * The model the explanation viewer runs in the tab: the demo task's architecture (28×28 image CNN,
 * GloVe-pooled text MLP, 1 s log-mel audio CNN, LoRA adapters, NAM head over 8 concepts per
 * modality, 10 classes), built with `@chorus/models`' API at the sizes of its `demo.ts`. Until the
 * client runtime downloads the coordinator's global model, the weights are a seeded random
 * initialisation and the page says so.
 */
import {
  LogMelFrontend,
  MultimodalModel,
  TextEmbedder,
  buildAudioEncoder,
  buildImageEncoder,
  buildTextEncoder,
  frameCount,
  type Modality,
} from '@chorus/models';
import type { Embeddings } from '@chorus/datasets';

/** Samples per clip fed to the log-mel front end (1 s at 16 kHz; shorter clips are zero-padded). */
export const AUDIO_SAMPLES = 16000;
/** Sample rate the audio encoder expects. */
export const AUDIO_SAMPLE_RATE = 16000;
/** Log-mel settings of the demo task (25 ms frames every 10 ms, 40 mel bands). */
export const LOG_MEL = { sampleRate: 16000, frameLength: 400, hopLength: 160, fftLength: 512, numMels: 40 } as const;
/** Tokens per text input. */
export const TEXT_TOKENS = 16;
/** Image side in pixels. */
export const IMAGE_SIDE = 28;
/** Classes of the demo task. */
export const NUM_CLASSES = 10;
const EMBEDDING_DIM = 64;

/** A model ready to explain, with the front ends its inputs need. */
export interface ViewerModel {
  readonly model: MultimodalModel;
  readonly logMel: LogMelFrontend;
  /** Null when the word-embedding table could not be fetched (the model then has no text encoder). */
  readonly embeddings: Embeddings | null;
  readonly modalities: readonly Modality[];
  /** Where the weights came from, shown on the page. */
  readonly provenance: string;
  /** Releases every tensor. */
  dispose(): void;
}

/** Builds the demo architecture with seeded random weights; text only when `embeddings` are given. */
export function buildViewerModel(embeddings: Embeddings | null, seed = 0): ViewerModel {
  const numFrames = frameCount(AUDIO_SAMPLES, LOG_MEL.frameLength, LOG_MEL.hopLength);
  const embedder = embeddings ? new TextEmbedder(embeddings.vectors, embeddings.dim) : null;
  const model = new MultimodalModel({
    numClasses: NUM_CLASSES,
    encoders: {
      image: { base: buildImageEncoder({ inputShape: [IMAGE_SIDE, IMAGE_SIDE, 1], filters: [32, 64], pointwiseFilters: 64, hiddenUnits: 256, embeddingDim: EMBEDDING_DIM, seed }) },
      ...(embeddings ? { text: { base: buildTextEncoder({ inputDim: embeddings.dim, hiddenUnits: 256, embeddingDim: EMBEDDING_DIM, seed: seed + 10 }) } } : {}),
      audio: {
        base: buildAudioEncoder({ numFrames, numMels: LOG_MEL.numMels, filters: [16, 32], pointwiseFilters: 8, hiddenUnits: 256, embeddingDim: EMBEDDING_DIM, seed: seed + 20 }),
      },
    },
    ...(embedder ? { textEmbedder: embedder } : {}),
    seed,
  });
  const logMel = new LogMelFrontend(AUDIO_SAMPLES, LOG_MEL);
  return {
    model,
    logMel,
    embeddings,
    modalities: model.modalities,
    provenance: `untrained model: random initialisation (seed ${seed}); the coordinator's global model replaces it once the client runtime joins a task`,
    dispose: () => {
      model.dispose();
      logMel.dispose();
      embedder?.dispose();
    },
  };
}
