import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { LogMelFrontend, MultimodalModel, TextEmbedder } from '@chorus/models';
import { DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL, buildDigitsEncoders } from '../../../packages/models/src/demo.js';
import { loadBuiltin, loadBuiltinEmbeddings } from '@chorus/datasets/node';
let t = performance.now();
const lap = (s: string) => { const n = performance.now(); console.log(s, (n - t).toFixed(0), 'ms', 'rss', (process.memoryUsage().rss/1e6).toFixed(0)); t = n; };
await tf.setBackend('wasm'); await tf.ready(); lap('wasm ready');
const emb = await loadBuiltinEmbeddings(); lap('embeddings ' + emb.dim);
const pub = await loadBuiltin('digits', 'public'); lap('public ' + pub.samples.length);
const embedder = new TextEmbedder(emb.vectors, emb.dim);
const bases = buildDigitsEncoders(0); lap('encoders');
const model = new MultimodalModel({ numClasses: 10, encoders: { image: { base: bases.image }, text: { base: bases.text }, audio: { base: bases.audio } }, textEmbedder: embedder, conceptDim: 8, loraRank: 4, loraAlpha: 8 });
lap('model');
const n = 64;
const s = pub.samples.slice(0, n);
const img = new Float32Array(n * 784); s.forEach((x, i) => x.image.forEach((v, j) => (img[i * 784 + j] = v / 255)));
const ids = new Int32Array(n * 16); s.forEach((x, i) => x.caption.slice(0, 16).forEach((v, j) => (ids[i * 16 + j] = v)));
const pcm = new Float32Array(n * DIGITS_AUDIO_SAMPLES); s.forEach((x, i) => { const L = Math.min(x.audio.length, DIGITS_AUDIO_SAMPLES); for (let j = 0; j < L; j++) pcm[i * DIGITS_AUDIO_SAMPLES + j] = x.audio[j]! / 32768; });
const fe = new LogMelFrontend(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL);
const mel = tf.tidy(() => fe.compute(tf.tensor2d(pcm, [n, DIGITS_AUDIO_SAMPLES]))); lap('logmel');
const batch = { image: tf.tensor4d(img, [n, 28, 28, 1]), text: tf.tensor2d(ids, [n, 16], 'int32'), audio: mel };
for (let r = 0; r < 5; r++) { tf.tidy(() => { const f = model.forward(batch); tf.softmax(f.logits).dataSync(); f.perModalityLogits.dataSync(); }); lap('forward 64'); }
for (const m of ['image','text','audio'] as const) { tf.tidy(() => { model.forward({ [m]: batch[m] }).logits.dataSync(); }); lap('forward ' + m); }
const p = model.adapterParameters(); lap('params ' + p.length + ' ' + p.reduce((a, x) => a + x.values.length, 0));
model.setAdapterParameters(p); lap('set');
console.log(tf.memory().numTensors);
