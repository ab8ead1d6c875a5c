/**
 * Pretrains the demo's base encoders centrally on the digits *public* split — disjoint from every
 * client's train/test data (FedAFD's public set) — and writes them under packages/models/weights/
 * as TF.js LayersModels (model.json + weights.bin, weights stored as float16 to keep the shipped
 * files small; TF.js dequantises on load).
 *
 * Each encoder is trained with a temporary softmax layer on top that is discarded afterwards. Runs
 * on the cpu backend: wasm registers no Conv2DBackpropFilter kernel, so it cannot train
 * convolutions. Usage: pnpm --filter @chorus/models pretrain [--epochs N] [--limit N]
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { float32ToFloat16Bits } from '@chorus/datasets';
import { loadBuiltin, loadBuiltinEmbeddings } from '@chorus/datasets/node';
import { LogMelFrontend, TextEmbedder, maskedMeanPool, type Modality } from '../src/index.js';
import { DIGITS_AUDIO_SAMPLES, DIGITS_CAPTION_TOKENS, DIGITS_LOG_MEL, DIGITS_NUM_CLASSES, buildDigitsEncoders } from '../src/demo.js';
import { fileSystemHandler } from '../src/node.js';

const WEIGHTS_DIR = fileURLToPath(new URL('../weights/digits/', import.meta.url));
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const EPOCHS = arg('--epochs', 3);
const LIMIT = arg('--limit', Number.POSITIVE_INFINITY);

/** A save handler that stores float32 weights as float16 (TF.js `quantization: {dtype: 'float16'}`). */
function float16Handler(inner: tf.io.IOHandler): tf.io.IOHandler {
  return {
    async save(artifacts) {
      const source = new Float32Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData!));
      const half = new Uint16Array(source.length);
      for (let i = 0; i < source.length; i++) half[i] = float32ToFloat16Bits(source[i]!);
      const specs = (artifacts.weightSpecs ?? []).map((s) => ({ ...s, quantization: { dtype: 'float16' as const } }));
      return inner.save!({ ...artifacts, weightSpecs: specs, weightData: half.buffer });
    },
  };
}

async function fitAndSave(modality: Modality, encoder: tf.Sequential, features: tf.Tensor, labels: tf.Tensor): Promise<void> {
  const classifier = tf.sequential({ layers: [encoder, tf.layers.dense({ units: DIGITS_NUM_CLASSES, activation: 'softmax', name: 'pretrain_classifier' })] });
  classifier.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const history = await classifier.fit(features, labels, { epochs: EPOCHS, batchSize: 32, shuffle: true, validationSplit: 0.1, verbose: 0 });
  const acc = history.history['val_acc'] ?? history.history['val_accuracy'];
  console.log(`${modality}: validation accuracy per epoch ${JSON.stringify(acc?.map((a) => Number(Number(a).toFixed(3))))}`);
  await encoder.save(float16Handler(fileSystemHandler(join(WEIGHTS_DIR, `${modality}-base`))));
}

async function main(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend failed to initialise');
  const split = await loadBuiltin('digits', 'public');
  const samples = split.samples.slice(0, Math.min(split.samples.length, LIMIT));
  const n = samples.length;
  console.log(`digits/public: ${n} examples (never client data)`);
  const labels = tf.tensor1d(samples.map((s) => s.label), 'float32');
  const encoders = buildDigitsEncoders(0);

  const images = new Float32Array(n * 28 * 28);
  samples.forEach((s, i) => s.image.forEach((v, j) => (images[i * 784 + j] = v / 255)));
  await fitAndSave('image', encoders.image, tf.tensor4d(images, [n, 28, 28, 1]), labels);

  const embeddings = await loadBuiltinEmbeddings();
  const embedder = new TextEmbedder(embeddings.vectors, embeddings.dim);
  const ids = new Int32Array(n * DIGITS_CAPTION_TOKENS);
  samples.forEach((s, i) => s.caption.slice(0, DIGITS_CAPTION_TOKENS).forEach((v, j) => (ids[i * DIGITS_CAPTION_TOKENS + j] = v)));
  const idTensor = tf.tensor2d(ids, [n, DIGITS_CAPTION_TOKENS], 'int32');
  const pooled = maskedMeanPool(embedder.embed(idTensor), idTensor);
  await fitAndSave('text', encoders.text, pooled, labels);

  // Clips are cropped or zero-padded to 1 s, the same rule clients apply.
  const pcm = new Float32Array(n * DIGITS_AUDIO_SAMPLES);
  samples.forEach((s, i) => {
    const len = Math.min(s.audio.length, DIGITS_AUDIO_SAMPLES);
    for (let j = 0; j < len; j++) pcm[i * DIGITS_AUDIO_SAMPLES + j] = s.audio[j]! / 32768;
  });
  const frontend = new LogMelFrontend(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL);
  const logMel = tf.concat(
    Array.from({ length: Math.ceil(n / 64) }, (_, b) => tf.tidy(() => frontend.compute(tf.tensor2d(pcm.subarray(b * 64 * DIGITS_AUDIO_SAMPLES, Math.min(n, (b + 1) * 64) * DIGITS_AUDIO_SAMPLES), [Math.min(n, (b + 1) * 64) - b * 64, DIGITS_AUDIO_SAMPLES])))),
  );
  await fitAndSave('audio', encoders.audio, logMel, labels);
  console.log(`saved under ${WEIGHTS_DIR}`);
}

await main();
