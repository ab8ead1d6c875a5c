/**
 * TF.js in the tab: registers the WebGPU and WASM backends next to the built-in WebGL and CPU ones,
 * points the WASM backend at the binaries the build ships under /tfjs-wasm/, and runs the measured
 * backend trial of `@chorus/models`. The trial's winner is then checked on a product with a known
 * answer, because a backend can initialise and still compute garbage (broken drivers, SwiftShader
 * quirks); a wrong answer is reported, never silently used.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend, type BackendChoice } from '@chorus/models';
import type { BackendName } from './backendQuery.js';

(globalThis as unknown as { __tf: unknown }).__tf = tf; // DEBUG
setWasmPaths(`${import.meta.env.BASE_URL}tfjs-wasm/`);

/** The trial's outcome plus the known-answer check of the winner. */
export interface BackendOutcome extends BackendChoice {
  /** [[1,2],[3,4]]·[[5,6],[7,8]] as the chosen backend computed it. */
  readonly check: number[];
  /** Whether {@link BackendOutcome.check} equals [19, 22, 43, 50]. */
  readonly verified: boolean;
  /** Wall time of the whole trial in milliseconds. */
  readonly trialMs: number;
}

const EXPECTED = [19, 22, 43, 50];

/** Times every candidate (about `trialMs` each), activates the fastest and verifies it. */
export async function chooseBackend(candidates: readonly BackendName[], trialMs = 200): Promise<BackendOutcome> {
  const started = performance.now();
  const choice = await selectBackend(candidates, { trialMs });
  const product = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
  const check = Array.from(await product.data());
  product.dispose();
  const verified = check.length === EXPECTED.length && check.every((v, i) => Math.abs(v - EXPECTED[i]!) < 1e-3);
  return { ...choice, check, verified, trialMs: performance.now() - started };
}

/** The backend TF.js is using now. */
export function activeBackend(): string {
  return tf.getBackend();
}
