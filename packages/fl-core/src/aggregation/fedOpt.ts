/** Adaptive server optimizers FedAdam, FedYogi and FedAdagrad — Reddi, Charles, Zaheer et al. 2021, arXiv:2003.00295. */
import { checkLength, checkOption } from './validate.js';

/** First and second moment estimates, one value per parameter. */
export interface FedOptState {
  readonly m: Float32Array;
  readonly v: Float32Array;
}

/** Hyper-parameters of the adaptive server optimizers (the paper's Algorithm 2). */
export interface FedOptOptions {
  /** η, the server learning rate; default 0.1. */
  readonly serverLearningRate?: number;
  /** β₁, the first-moment decay in [0, 1); default 0.9. */
  readonly beta1?: number;
  /** β₂, the second-moment decay in [0, 1) (unused by FedAdagrad); default 0.99. */
  readonly beta2?: number;
  /** τ, the degree of adaptivity (> 0); default 1e-3. The second moment starts at τ². */
  readonly tau?: number;
}

/** The step to add to the global model and the state to carry to the next round. */
export interface FedOptResult {
  readonly step: Float32Array;
  readonly state: FedOptState;
}

/** Which second-moment rule to apply. */
export type FedOptKind = 'adam' | 'yogi' | 'adagrad';

/** Starting state for `length` parameters: m = 0 and v = τ² (the paper's v₋₁ ≥ τ²). */
export function initialFedOptState(length: number, tau = 1e-3): FedOptState {
  checkOption('initialFedOptState', 'length', length, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  checkOption('initialFedOptState', 'tau', tau, (v) => v > 0, 'finite and > 0');
  return { m: new Float32Array(length), v: new Float32Array(length).fill(tau * tau) };
}

/**
 * One adaptive server step on the pseudo-gradient Δ (the averaged client delta):
 * m ← β₁m + (1−β₁)Δ; v by the kind's rule; step = η·m/(√v + τ). `state` null starts from
 * {@link initialFedOptState}. Returns new vectors; throws `PARAMS_MISMATCH` or `AGG_BAD_CONFIG`;
 * never mutates its input.
 */
export function fedOpt(kind: FedOptKind, pseudoGradient: Float32Array, state: FedOptState | null, options: FedOptOptions = {}): FedOptResult {
  const fn = `fedOpt(${kind})`;
  const { serverLearningRate = 0.1, beta1 = 0.9, beta2 = 0.99, tau = 1e-3 } = options;
  checkOption(fn, 'serverLearningRate', serverLearningRate, (v) => v > 0, 'finite and > 0');
  checkOption(fn, 'beta1', beta1, (v) => v >= 0 && v < 1, 'in [0, 1)');
  checkOption(fn, 'beta2', beta2, (v) => v >= 0 && v < 1, 'in [0, 1)');
  checkOption(fn, 'tau', tau, (v) => v > 0, 'finite and > 0');
  const length = pseudoGradient.length;
  const current = state ?? initialFedOptState(length, tau);
  checkLength(fn, 'state.m', current.m, length);
  checkLength(fn, 'state.v', current.v, length);

  const m = new Float32Array(length);
  const v = new Float32Array(length);
  const step = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const g = pseudoGradient[i]!;
    const g2 = g * g;
    m[i] = beta1 * current.m[i]! + (1 - beta1) * g;
    const vPrev = current.v[i]!;
    if (kind === 'adam') v[i] = beta2 * vPrev + (1 - beta2) * g2;
    else if (kind === 'yogi') v[i] = vPrev - (1 - beta2) * g2 * Math.sign(vPrev - g2);
    else v[i] = vPrev + g2;
    // Computed from the stored float32 moments so that a resumed run steps identically.
    step[i] = (serverLearningRate * m[i]!) / (Math.sqrt(v[i]!) + tau);
  }
  return { step, state: { m, v } };
}

/** FedAdam: v ← β₂v + (1−β₂)Δ². See {@link fedOpt}. */
export function fedAdam(pseudoGradient: Float32Array, state: FedOptState | null, options?: FedOptOptions): FedOptResult {
  return fedOpt('adam', pseudoGradient, state, options);
}

/** FedYogi: v ← v − (1−β₂)Δ²·sign(v − Δ²). See {@link fedOpt}. */
export function fedYogi(pseudoGradient: Float32Array, state: FedOptState | null, options?: FedOptOptions): FedOptResult {
  return fedOpt('yogi', pseudoGradient, state, options);
}

/** FedAdagrad: v ← v + Δ². See {@link fedOpt}. */
export function fedAdagrad(pseudoGradient: Float32Array, state: FedOptState | null, options?: FedOptOptions): FedOptResult {
  return fedOpt('adagrad', pseudoGradient, state, options);
}
