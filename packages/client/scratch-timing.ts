import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { MultimodalModel, TextEmbedder, buildImageEncoder, buildTextEncoder } from '@chorus/models';
import { loadBuiltin, loadBuiltinEmbeddings } from '@chorus/datasets/node';

const backend = process.argv[2] ?? 'wasm';
await tf.setBackend(backend); await tf.ready();
let t = performance.now();
const train = await loadBuiltin('digits', 'train');
console.log('load train', performance.now() - t, train.samples.length);
t = performance.now();
const emb = await loadBuiltinEmbeddings();
console.log('load emb', performance.now() - t, emb.dim);
const embedder = new TextEmbedder(emb.vectors, emb.dim);
t = performance.now();
const image = buildImageEncoder({ inputShape: [28, 28, 1], filters: [32, 64], pointwiseFilters: 64, hiddenUnits: 256, embeddingDim: 64, seed: 0 });
const text = buildTextEncoder({ inputDim: 100, hiddenUnits: 256, embeddingDim: 64, seed: 10 });
console.log('build bases', performance.now() - t);
for (const mods of [['image'], ['text'], ['image', 'text']] as const) {
  t = performance.now();
  const model = new MultimodalModel({ numClasses: 10, encoders: Object.fromEntries(mods.map((m) => [m, { base: m === 'image' ? image : text }])), textEmbedder: embedder, learningRate: 0.01 });
  console.log(mods.join('+'), 'build model', performance.now() - t);
  const n = 32;
  const s = train.samples.slice(0, n);
  const px = new Float32Array(n * 784); s.forEach((x, i) => x.image.forEach((v, j) => (px[i * 784 + j] = v / 255)));
  const ids = new Int32Array(n * 16); s.forEach((x, i) => x.caption.slice(0, 16).forEach((v, j) => (ids[i * 16 + j] = v)));
  const batch = { image: mods.includes('image' as never) ? tf.tensor4d(px, [n, 28, 28, 1]) : undefined, text: mods.includes('text' as never) ? tf.tensor2d(ids, [n, 16], 'int32') : undefined, labels: tf.tensor1d(Int32Array.from(s, (x) => x.label), 'int32') };
  for (const k of Object.keys(batch) as (keyof typeof batch)[]) if (!batch[k]) delete batch[k];
  model.trainStep(batch);
  t = performance.now();
  for (let i = 0; i < 10; i++) model.trainStep(batch);
  console.log(mods.join('+'), 'step ms', (performance.now() - t) / 10);
  t = performance.now();
  model.evaluate([batch]);
  console.log('eval ms', performance.now() - t);
  t = performance.now(); const p = model.adapterParameters(); console.log('params', p.length, p.reduce((a, x) => a + x.values.length, 0), performance.now() - t);
  model.dispose(); tf.dispose(Object.values(batch));
}
console.log('tensors', tf.memory().numTensors);
