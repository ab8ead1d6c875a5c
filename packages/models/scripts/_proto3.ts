import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
const backend = process.argv[2] ?? 'wasm';
await tf.setBackend(backend);
function slicePatches(x: tf.Tensor4D, k: number): tf.Tensor4D {
  const p = (k - 1) / 2;
  const [n, h, w, c] = x.shape;
  const padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
  const parts: tf.Tensor4D[] = [];
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) parts.push(tf.slice(padded, [0, i, j, 0], [n, h, w, c]));
  return tf.concat(parts, 3);
}
function oneHot(c: number, k: number): tf.Tensor4D {
  const v = new Float32Array(k * k * c * k * k * c);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) for (let ch = 0; ch < c; ch++) { const out = (i * k + j) * c + ch; v[((i * k + j) * c + ch) * (k * k * c) + out] = 1; }
  return tf.tensor4d(v, [k, k, c, k * k * c]);
}
const N = 32, H = 14, C = 32, F = 64, K = 3;
const x = tf.variable(tf.randomNormal([N, H, H, C]));
const kernel = tf.variable(tf.randomNormal([K, K, C, F], 0, 0.1));
const eye = oneHot(C, K);
const mm = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.customGrad((a: tf.Tensor, b: tf.Tensor, save: (t: tf.Tensor[]) => void) => { save([a, b]); return { value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), gradFunc: (dy: tf.Tensor, s: tf.Tensor[]) => [tf.matMul(dy as tf.Tensor2D, tf.transpose(s[1]!) as tf.Tensor2D), tf.matMul(tf.transpose(s[0]!) as tf.Tensor2D, dy as tf.Tensor2D)] }; })(a, b) as tf.Tensor2D;
const variants: Record<string, () => tf.Tensor> = {
  slices: () => tf.reshape(tf.matMul(tf.reshape(slicePatches(x as unknown as tf.Tensor4D, K), [-1, K * K * C]), tf.reshape(kernel, [-1, F])), [N, H, H, F]),
  slicesFastMM: () => tf.reshape(mm(tf.reshape(slicePatches(x as unknown as tf.Tensor4D, K), [-1, K * K * C]) as tf.Tensor2D, tf.reshape(kernel, [-1, F]) as tf.Tensor2D), [N, H, H, F]),
  onehot: () => tf.reshape(tf.matMul(tf.reshape(tf.conv2d(x as unknown as tf.Tensor4D, eye, 1, 'same'), [-1, K * K * C]), tf.reshape(kernel, [-1, F])), [N, H, H, F]),
  onehotFastMM: () => tf.reshape(mm(tf.reshape(tf.conv2d(x as unknown as tf.Tensor4D, eye, 1, 'same'), [-1, K * K * C]) as tf.Tensor2D, tf.reshape(kernel, [-1, F]) as tf.Tensor2D), [N, H, H, F]),
  native: () => tf.conv2d(x as unknown as tf.Tensor4D, kernel as unknown as tf.Tensor4D, 1, 'same'),
};
for (const [name, f] of Object.entries(variants)) {
  try {
    const step = () => tf.tidy(() => { const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(f())) as tf.Scalar, [x, kernel]); value.dataSync(); Object.values(grads).forEach((g) => tf.sum(g).dataSync()); });
    step();
    const t0 = performance.now(); for (let i = 0; i < 10; i++) step();
    const fw = performance.now(); for (let i = 0; i < 10; i++) tf.tidy(() => tf.sum(f()).dataSync());
    console.log(backend, name, 'fwd+bwd', ((fw - t0) / 10).toFixed(1), 'ms; fwd', ((performance.now() - fw) / 10).toFixed(1), 'ms');
  } catch (e) { console.log(name, 'failed', (e as Error).message.slice(0, 100)); }
}
for (const name of ['slicesFastMM', 'onehotFastMM']) {
const f = variants[name]!;
const info = await tf.profile(() => tf.tidy(() => { const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(f())) as tf.Scalar, [x, kernel]); value.dataSync(); Object.values(grads).forEach((g) => tf.sum(g).dataSync()); }));
const agg = new Map<string, number>();
for (const k of info.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log(name, [...agg].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k}:${v.toFixed(1)}`).join(' '));
}
