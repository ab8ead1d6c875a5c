/**
 * TF.js in the tab: registers the WebGPU and WASM backends next to the built-in WebGL and CPU ones,
 * points the WASM backend at the binaries the build ships under /tfjs-wasm/, and runs the measured
 * backend trial of `@chorus/models`. The trial's winner is then checked on a product with a known
 * answer, read back asynchronously, because a backend can initialise, run the trial and still be
 * broken (a lost WebGPU device, a driver computing garbage). A winner that fails the check is
 * reported with the reason, and the trial is re-run without it while candidates remain.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend, type BackendChoice, type BackendTrial } from '@chorus/models';
import type { BackendName } from './backendQuery.js';

setWasmPaths(`${import.meta.env.BASE_URL}tfjs-wasm/`);

/** A backend that won a trial but failed the known-answer check. */
export interface RejectedBackend {
  readonly backend: string;
  readonly reason: string;
}

/** The trial's outcome plus the known-answer check of the winner. */
export interface BackendOutcome extends BackendChoice {
  /** [[1,2],[3,4]]·[[5,6],[7,8]] as the chosen backend computed it (empty when the read failed). */
  readonly check: number[];
  /** Whether {@link BackendOutcome.check} equals [19, 22, 43, 50]. */
  readonly verified: boolean;
  /** Winners of earlier trials that failed the check, in order. */
  readonly rejected: readonly RejectedBackend[];
  /** Wall time of the whole selection in milliseconds. */
  readonly trialMs: number;
}

const EXPECTED = [19, 22, 43, 50];
const CHECK_TIMEOUT_MS = 15_000;

async function knownAnswer(): Promise<{ values: number[]; error: string | null }> {
  let product: tf.Tensor | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // Creating the tensors is inside the try: a lost WebGPU device already fails on upload.
    product = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
    });
    const values = Array.from(await Promise.race([product.data(), timeout]));
    const ok = values.length === EXPECTED.length && values.every((v, i) => Math.abs(v - EXPECTED[i]!) < 1e-3);
    return { values, error: ok ? null : `computed [${values.join(', ')}] instead of [${EXPECTED.join(', ')}]` };
  } catch (err) {
    return { values: [], error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    product?.dispose();
  }
}

/**
 * Times every candidate (about `trialMs` each), activates the fastest and verifies it; a winner
 * that fails verification is dropped and the rest re-tried. Throws `MODELS_BACKEND_UNAVAILABLE`
 * when no candidate initialises; returns `verified: false` when every winner failed the check.
 */
export async function chooseBackend(candidates: readonly BackendName[], trialMs = 200): Promise<BackendOutcome> {
  const started = performance.now();
  const rejected: RejectedBackend[] = [];
  let remaining: string[] = [...candidates];
  let firstTrials: BackendTrial[] | null = null;
  for (;;) {
    const choice = await selectBackend(remaining, { trialMs });
    firstTrials ??= choice.trials;
    const { values, error } = await knownAnswer();
    const done = error === null || remaining.length === 1;
    if (error !== null) rejected.push({ backend: choice.backend, reason: error });
    if (done) {
      return { ...choice, trials: firstTrials, check: values, verified: error === null, rejected, trialMs: performance.now() - started };
    }
    remaining = remaining.filter((b) => b !== choice.backend);
  }
}
