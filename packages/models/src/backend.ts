/**
 * Backend choice by measurement. TF.js picks a backend by static priority; on many machines WASM
 * beats WebGL for small models, and WebGPU may be registered but unusable. `selectBackend` runs the
 * same short trial (a frozen 3×3 convolution and a trainable dense layer, the shape of an adapter
 * training step) on each candidate that initialises — `tf.setBackend`'s boolean is checked, never
 * assumed — and keeps the fastest, reporting every figure it measured.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkPositive } from './errors.js';

/** One backend's measurement. */
export interface BackendTrial {
  backend: string;
  /** False when `tf.setBackend` returned false or threw. */
  available: boolean;
  /** Trial iterations per second (0 when unavailable). */
  opsPerSecond: number;
  /** Why it is unavailable, when it is. */
  error?: string;
}

/** The chosen backend, now active, and every trial. */
export interface BackendChoice {
  backend: string;
  trials: BackendTrial[];
  /** Human-readable justification, e.g. "wasm: 412 it/s (cpu: 35 it/s; webgpu: unavailable)". */
  reason: string;
}

/**
 * One trial iteration: a frozen 3×3 convolution forward and a trainable dense layer forward and
 * backward — the shape of an adapter training step, which never needs the convolution kernel's
 * gradient (WASM has no Conv2DBackpropFilter). Results are read with `await data()`: a synchronous
 * `dataSync()` can lose the WebGPU device in some browsers and leave it returning zeros.
 */
async function trialStep(x: tf.Tensor4D, kernel: tf.Tensor4D, dense: tf.Variable): Promise<void> {
  const { value, grads } = tf.variableGrads(() => {
    const h = tf.relu(tf.conv2d(x, kernel, 1, 'same'));
    const flat = tf.reshape(h, [x.shape[0], -1]) as tf.Tensor2D;
    return tf.mean(tf.square(tf.matMul(flat, dense as tf.Tensor2D))) as tf.Scalar;
  }, [dense]);
  const outputs = [value, ...Object.values(grads)];
  try {
    await Promise.all(outputs.map((t) => t.data()));
  } finally {
    tf.dispose(outputs);
  }
}

/** Times each candidate for about `trialMs` and activates the fastest; throws `MODELS_BACKEND_UNAVAILABLE` if none initialises. */
export async function selectBackend(candidates: readonly string[], options: { trialMs?: number; now?: () => number } = {}): Promise<BackendChoice> {
  const trialMs = checkPositive('selectBackend', 'trialMs', options.trialMs ?? 200);
  const now = options.now ?? (() => performance.now());
  const registered = new Set(Object.keys(tf.engine().registryFactory));
  const trials: BackendTrial[] = [];
  for (const backend of candidates) {
    if (!registered.has(backend)) {
      trials.push({ backend, available: false, opsPerSecond: 0, error: 'not registered' });
      continue;
    }
    let ok = false;
    try {
      ok = await tf.setBackend(backend);
      if (ok) await tf.ready();
    } catch (err) {
      trials.push({ backend, available: false, opsPerSecond: 0, error: (err as Error).message });
      continue;
    }
    if (!ok || tf.getBackend() !== backend) {
      trials.push({ backend, available: false, opsPerSecond: 0, error: 'setBackend returned false' });
      continue;
    }
    const x = tf.randomUniform([8, 16, 16, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    const kernel = tf.randomNormal([3, 3, 4, 8], 0, 0.1, 'float32', 2) as tf.Tensor4D;
    const dense = tf.variable(tf.randomNormal([16 * 16 * 8, 32], 0, 0.01, 'float32', 3));
    try {
      await trialStep(x, kernel, dense); // warm-up: shader compilation and wasm initialisation are not the steady state
      let iterations = 0;
      const start = now();
      let elapsed = 0;
      while (elapsed < trialMs) {
        await trialStep(x, kernel, dense);
        iterations++;
        elapsed = now() - start;
      }
      trials.push({ backend, available: true, opsPerSecond: (iterations * 1000) / Math.max(elapsed, 1e-9) });
    } catch (err) {
      trials.push({ backend, available: false, opsPerSecond: 0, error: (err as Error).message });
    } finally {
      tf.dispose([x, kernel, dense]);
    }
  }
  const usable = trials.filter((t) => t.available);
  if (usable.length === 0) {
    throw new ModelsError(
      'MODELS_BACKEND_UNAVAILABLE',
      `selectBackend: none of ${candidates.join(', ')} initialised (${trials.map((t) => `${t.backend}: ${t.error}`).join('; ')})`,
    );
  }
  const best = usable.reduce((a, b) => (b.opsPerSecond > a.opsPerSecond ? b : a));
  if (!(await tf.setBackend(best.backend))) throw new ModelsError('MODELS_BACKEND_UNAVAILABLE', `selectBackend: '${best.backend}' stopped initialising`);
  const others = trials.filter((t) => t !== best).map((t) => (t.available ? `${t.backend}: ${t.opsPerSecond.toFixed(1)} it/s` : `${t.backend}: unavailable`));
  return { backend: best.backend, trials, reason: `${best.backend}: ${best.opsPerSecond.toFixed(1)} it/s${others.length ? ` (${others.join('; ')})` : ''}` };
}
