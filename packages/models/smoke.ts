import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
for (const b of ['cpu', 'wasm']) {
  const ok = await tf.setBackend(b);
  console.log(b, ok, tf.getBackend());
  try {
    const x = tf.randomNormal([16000]);
    const s = tf.signal.stft(x as tf.Tensor1D, 400, 160, 512);
    console.log(s.shape, s.dtype);
    const m = tf.abs(s); console.log(m.shape, m.dtype);
    const t0 = performance.now();
    for (let i = 0; i < 32; i++) tf.tidy(() => tf.abs(tf.signal.stft(x as tf.Tensor1D, 400, 160, 512)).dataSync());
    console.log('32 stft ms', performance.now() - t0);
    const e = tf.einsum('bij,ijk->bik', tf.ones([2,3,4]), tf.ones([3,4,5]));
    console.log(e.shape);
  } catch (e) { console.log('ERR', String(e).slice(0, 300)); }
}
