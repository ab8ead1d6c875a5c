/** FedAvgM, FedAvg with server momentum — Hsu, Qi, Brown 2019, arXiv:1909.06335. */
import { checkLength, checkOption } from './validate.js';

/** Options of {@link fedAvgM}. */
export interface FedAvgMOptions {
  /** β, the server momentum in [0, 1). */
  readonly serverMomentum: number;
  /** η, the server learning rate; default 1 (plain FedAvg when β = 0). */
  readonly serverLearningRate?: number;
}

/** The step to add to the global model and the momentum to carry to the next round. */
export interface FedAvgMResult {
  readonly step: Float32Array;
  readonly momentum: Float32Array;
}

/**
 * Server momentum over an averaged delta Δ (e.g. {@link fedAvg} of the client deltas):
 * v ← β·v + Δ and step = η·v. `momentum` null means v = 0 (the first round). Returns new vectors;
 * throws `PARAMS_MISMATCH` or `AGG_BAD_CONFIG`; never mutates its input.
 */
export function fedAvgM(averageDelta: Float32Array, momentum: Float32Array | null, options: FedAvgMOptions): FedAvgMResult {
  const { serverMomentum, serverLearningRate = 1 } = options;
  checkOption('fedAvgM', 'serverMomentum', serverMomentum, (v) => v >= 0 && v < 1, 'in [0, 1)');
  checkOption('fedAvgM', 'serverLearningRate', serverLearningRate, (v) => v > 0, 'finite and > 0');
  const length = averageDelta.length;
  if (momentum) checkLength('fedAvgM', 'momentum', momentum, length);
  const nextMomentum = new Float32Array(length);
  const step = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const v = (momentum ? serverMomentum * momentum[i]! : 0) + averageDelta[i]!;
    nextMomentum[i] = v;
    // Scale the stored float32 momentum so that a resumed run (which only has the stored value) steps identically.
    step[i] = serverLearningRate * nextMomentum[i]!;
  }
  return { step, momentum: nextMomentum };
}
