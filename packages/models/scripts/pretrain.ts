/**
 * Pretrains the demo's base encoders centrally on *public* data only — the digits public split,
 * disjoint from every client's train/test data (FedAFD's public set), plus, for the image encoder
 * with --fashion, Fashion-MNIST's public split as ten extra classes — and writes them under
 * packages/models/weights/digits/ as plain TF.js LayersModels (model.json + weights.bin, weights
 * stored as float16; TF.js dequantises on load).
 *
 * Each encoder is trained with a temporary linear softmax head that is discarded afterwards, on
 * the wasm backend (the encoders' convolutions are PortableConv2D, whose gradients run there).
 * 10% of the digits public split (seeded) is held out to report validation accuracy per epoch;
 * epochs are fixed by the command line, never chosen on test data. The digits *test* split is read
 * once, after training, to report each encoder's accuracy through its pretraining head.
 * Everything random (initialisers, the hold-out, batch order, image shifts) follows --seed, so a
 * run is reproducible on the same backend.
 *
 * Usage: pnpm --filter @chorus/models pretrain [--seed S] [--epochs-image N] [--epochs-text N]
 *        [--epochs-audio N] [--fashion] [--limit N] [--out DIR] [--only image,text,audio]
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { MODALITIES, createRng, shuffled, type Rng } from '@chorus/fl-core';
import { float32ToFloat16BitsSaturating, type DigitsSample } from '@chorus/datasets';
import { loadBuiltin, loadBuiltinEmbeddings } from '@chorus/datasets/node';
import { LogMelFrontend, TextEmbedder, crossEntropyLoss, maskedMeanPool, toStandardModel, type Modality } from '../src/index.js';
import { DIGITS_AUDIO_SAMPLES, DIGITS_CAPTION_TOKENS, DIGITS_LOG_MEL, DIGITS_NUM_CLASSES, buildDigitsEncoder } from '../src/demo.js';
import { DIGITS_BASE_PARTS } from '../src/pretrained.js';
import { fileSystemHandler } from '../src/node.js';

const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const num = (name: string, fallback: number): number => {
  const raw = argValue(name);
  const value = raw === undefined ? fallback : Number(raw);
  if (Number.isNaN(value) || value < 0) throw new Error(`${name} must be a number ≥ 0, got ${raw}`);
  return value;
};
const SEED = num('--seed', 0);
const EPOCHS: Record<Modality, number> = { image: num('--epochs-image', 30), text: num('--epochs-text', 150), audio: num('--epochs-audio', 40) };
const LIMIT = num('--limit', Number.POSITIVE_INFINITY);
const WITH_FASHION = process.argv.includes('--fashion');
const ONLY = (argValue('--only')?.split(',') ?? [...MODALITIES]) as Modality[];
const OUT_DIR = argValue('--out') ?? fileURLToPath(new URL('../weights/digits/', import.meta.url));
const BATCH = 32;
const LEARNING_RATE = 1e-3;
const MAX_SHIFT = 2;

/** A save handler that stores float32 weights as float16 (TF.js `quantization: {dtype: 'float16'}`). */
function float16Handler(inner: tf.io.IOHandler): tf.io.IOHandler {
  return {
    async save(artifacts) {
      const source = new Float32Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData!));
      const half = new Uint16Array(source.length);
      for (let i = 0; i < source.length; i++) half[i] = float32ToFloat16BitsSaturating(source[i]!);
      const specs = (artifacts.weightSpecs ?? []).map((s) => ({ ...s, quantization: { dtype: 'float16' as const } }));
      return inner.save!({ ...artifacts, weightSpecs: specs, weightData: half.buffer });
    },
  };
}

/** Features of one split for one modality, with labels. */
interface Data {
  features: tf.Tensor;
  labels: Int32Array;
}

/** Each image shifted by its own offset in [−MAX_SHIFT, MAX_SHIFT]² (zero fill), a cheap guard against overfitting 450 images. */
function shiftImages(images: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w] = images.shape;
    const padded = tf.pad(images, [
      [0, 0],
      [MAX_SHIFT, MAX_SHIFT],
      [MAX_SHIFT, MAX_SHIFT],
      [0, 0],
    ]);
    const pick = (): number => Math.floor(rng() * (2 * MAX_SHIFT + 1));
    return tf.concat(Array.from({ length: n }, (_, i) => tf.slice(padded, [i, pick(), pick(), 0], [1, h, w, 1])));
  });
}

function accuracy(classifier: tf.LayersModel, data: Data): number {
  let correct = 0;
  for (let start = 0; start < data.labels.length; start += 256) {
    const end = Math.min(data.labels.length, start + 256);
    correct += tf.tidy(() => {
      const logits = classifier.apply(data.features.slice(start, end - start)) as tf.Tensor;
      return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.tensor1d(data.labels.subarray(start, end), 'int32')), 'int32')).dataSync()[0]!;
    });
  }
  return correct / data.labels.length;
}

interface FitReport {
  modality: Modality;
  epochs: number;
  trainExamples: number;
  validationExamples: number;
  validationAccuracy: number[];
  testAccuracy: number;
  seconds: number;
}

/** Trains `encoder` + a linear head on `train`, reporting validation accuracy per epoch, then test accuracy once. */
function fit(modality: Modality, encoder: tf.Sequential, numClasses: number, train: Data, validation: Data, test: Data): FitReport {
  const start = performance.now();
  const rng = createRng(SEED * 1000 + 7);
  const head = tf.layers.dense({ name: 'pretrain_head', units: numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: SEED + 99 }) });
  const classifier = tf.sequential({ layers: [encoder, head] });
  const optimizer = tf.train.adam(LEARNING_RATE);
  const variables = classifier.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = train.labels.length;
  const validationAccuracy: number[] = [];
  for (let epoch = 0; epoch < EPOCHS[modality]; epoch++) {
    const order = shuffled(
      rng,
      Array.from({ length: n }, (_, i) => i),
    );
    let lossSum = 0;
    for (let b = 0; b < n; b += BATCH) {
      const idx = order.slice(b, b + BATCH);
      const cost = tf.tidy(() => {
        let x = tf.gather(train.features, tf.tensor1d(idx, 'int32'));
        if (modality === 'image') x = shiftImages(x as tf.Tensor4D, rng);
        const y = tf.tensor1d(
          idx.map((i) => train.labels[i]!),
          'int32',
        );
        return optimizer.minimize(() => crossEntropyLoss(classifier.apply(x) as tf.Tensor, y), true, variables)!;
      });
      lossSum += cost.dataSync()[0]! * idx.length;
      cost.dispose();
    }
    validationAccuracy.push(accuracy(classifier, validation));
    console.log(
      `${modality} epoch ${epoch + 1}/${EPOCHS[modality]}: train loss ${(lossSum / n).toFixed(4)}, validation accuracy ${validationAccuracy.at(-1)!.toFixed(3)} (${((performance.now() - start) / 1000).toFixed(0)} s)`,
    );
  }
  const testAccuracy = accuracy(classifier, test);
  console.log(`${modality}: digits test accuracy through the pretraining head ${testAccuracy.toFixed(4)} (${test.labels.length} examples)`);
  optimizer.dispose();
  head.dispose();
  return {
    modality,
    epochs: EPOCHS[modality],
    trainExamples: n,
    validationExamples: validation.labels.length,
    validationAccuracy,
    testAccuracy,
    seconds: (performance.now() - start) / 1000,
  };
}

async function save(modality: Modality, encoder: tf.Sequential, report: FitReport, dataNote: string): Promise<void> {
  const plain = toStandardModel(encoder, { merge: false, name: `${modality}_encoder` });
  const inner = fileSystemHandler(join(OUT_DIR, DIGITS_BASE_PARTS[modality]));
  const handler = float16Handler({
    save: (artifacts) =>
      inner.save!({
        ...artifacts,
        userDefinedMetadata: {
          pretraining: {
            seed: SEED,
            data: dataNote,
            epochs: report.epochs,
            batchSize: BATCH,
            learningRate: LEARNING_RATE,
            backend: tf.getBackend(),
            digitsTestAccuracy: Number(report.testAccuracy.toFixed(4)),
            seconds: Math.round(report.seconds),
          },
        },
      }),
  });
  await plain.save(handler);
  plain.dispose();
}

/** Slices of the split (train part, held-out part) by a seeded permutation. */
function holdOut<T>(samples: readonly T[], fraction: number): { train: T[]; validation: T[] } {
  const order = shuffled(
    createRng(SEED + 12345),
    samples.map((_, i) => i),
  );
  const cut = Math.round(samples.length * fraction);
  return { validation: order.slice(0, cut).map((i) => samples[i]!), train: order.slice(cut).map((i) => samples[i]!) };
}

function images(samples: readonly { image: Uint8Array }[]): tf.Tensor4D {
  const values = new Float32Array(samples.length * 784);
  samples.forEach((s, i) => s.image.forEach((v, j) => (values[i * 784 + j] = v / 255)));
  return tf.tensor4d(values, [samples.length, 28, 28, 1]);
}

function labelsOf(samples: readonly { label: number }[], offset = 0): Int32Array {
  return Int32Array.from(samples, (s) => s.label + offset);
}

async function main(): Promise<void> {
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
  await tf.ready();
  const publicSplit = (await loadBuiltin('digits', 'public')).samples.slice(0, Math.min(501, LIMIT));
  const testSplit = (await loadBuiltin('digits', 'test')).samples.slice(0, Math.min(1501, LIMIT));
  const { train, validation } = holdOut(publicSplit, 0.1);
  console.log(
    `digits/public: ${train.length} train + ${validation.length} validation examples (never client data); digits/test: ${testSplit.length} for the final report; seed ${SEED}; backend ${tf.getBackend()}`,
  );
  const reports: FitReport[] = [];

  if (ONLY.includes('image')) {
    let trainImages = images(train);
    let trainLabels = labelsOf(train);
    let dataNote = `digits/public (${train.length} train, ${validation.length} held out)`;
    if (WITH_FASHION) {
      const fashion = (await loadBuiltin('fashion', 'public')).samples.slice(0, Math.min(1000, LIMIT));
      trainImages = tf.concat([trainImages, images(fashion)]);
      trainLabels = Int32Array.from([...trainLabels, ...labelsOf(fashion, DIGITS_NUM_CLASSES)]);
      dataNote += ` + fashion/public (${fashion.length}, as classes 10–19)`;
    }
    const encoder = buildDigitsEncoder('image', SEED);
    const report = fit(
      'image',
      encoder,
      WITH_FASHION ? 2 * DIGITS_NUM_CLASSES : DIGITS_NUM_CLASSES,
      { features: trainImages, labels: trainLabels },
      { features: images(validation), labels: labelsOf(validation) },
      { features: images(testSplit), labels: labelsOf(testSplit) },
    );
    await save('image', encoder, report, dataNote);
    reports.push(report);
  }

  if (ONLY.includes('text')) {
    const embeddings = await loadBuiltinEmbeddings();
    const embedder = new TextEmbedder(embeddings.vectors, embeddings.dim);
    const pooled = (samples: readonly DigitsSample[]): tf.Tensor =>
      tf.tidy(() => {
        const ids = new Int32Array(samples.length * DIGITS_CAPTION_TOKENS);
        samples.forEach((s, i) => s.caption.slice(0, DIGITS_CAPTION_TOKENS).forEach((v, j) => (ids[i * DIGITS_CAPTION_TOKENS + j] = v)));
        const idTensor = tf.tensor2d(ids, [samples.length, DIGITS_CAPTION_TOKENS], 'int32');
        return maskedMeanPool(embedder.embed(idTensor), idTensor);
      });
    const encoder = buildDigitsEncoder('text', SEED);
    const report = fit(
      'text',
      encoder,
      DIGITS_NUM_CLASSES,
      { features: pooled(train), labels: labelsOf(train) },
      { features: pooled(validation), labels: labelsOf(validation) },
      { features: pooled(testSplit), labels: labelsOf(testSplit) },
    );
    await save('text', encoder, report, `digits/public captions (${train.length} train, ${validation.length} held out), mean-pooled GloVe`);
    reports.push(report);
    embedder.dispose();
  }

  if (ONLY.includes('audio')) {
    const frontend = new LogMelFrontend(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL);
    // Clips are cropped or zero-padded to 1 s, the same rule clients apply.
    const logMel = (samples: readonly DigitsSample[]): tf.Tensor => {
      const parts: tf.Tensor[] = [];
      for (let b = 0; b < samples.length; b += 64) {
        const chunk = samples.slice(b, b + 64);
        const pcm = new Float32Array(chunk.length * DIGITS_AUDIO_SAMPLES);
        chunk.forEach((s, i) => {
          const len = Math.min(s.audio.length, DIGITS_AUDIO_SAMPLES);
          for (let j = 0; j < len; j++) pcm[i * DIGITS_AUDIO_SAMPLES + j] = s.audio[j]! / 32768;
        });
        parts.push(tf.tidy(() => frontend.compute(tf.tensor2d(pcm, [chunk.length, DIGITS_AUDIO_SAMPLES]))));
      }
      const all = tf.concat(parts);
      tf.dispose(parts);
      return all;
    };
    const encoder = buildDigitsEncoder('audio', SEED);
    const report = fit(
      'audio',
      encoder,
      DIGITS_NUM_CLASSES,
      { features: logMel(train), labels: labelsOf(train) },
      { features: logMel(validation), labels: labelsOf(validation) },
      { features: logMel(testSplit), labels: labelsOf(testSplit) },
    );
    await save('audio', encoder, report, `digits/public speech (${train.length} train, ${validation.length} held out; 6 speakers, none in the test split)`);
    reports.push(report);
    frontend.dispose();
  }

  const summary = {
    seed: SEED,
    fashion: WITH_FASHION,
    batchSize: BATCH,
    learningRate: LEARNING_RATE,
    reports: reports.map((r) => ({ ...r, validationAccuracy: r.validationAccuracy.map((a) => Number(a.toFixed(4))), seconds: Math.round(r.seconds) })),
  };
  await writeFile(join(OUT_DIR, 'pretraining.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(JSON.stringify(summary));
  console.log(`saved under ${OUT_DIR}`);
}

await main();
