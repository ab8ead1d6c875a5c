/** FLTrust: trust-scored, norm-rescaled aggregation against a server root update — Cao, Fang, Liu, Gong 2021, arXiv:2012.13995. */
import { cosineSimilarity, norm } from '../params.js';
import { checkLength, checkUpdates } from './validate.js';

/** What {@link flTrust} computed. */
export interface FlTrustResult {
  /** Σ TS_i · (‖g₀‖/‖g_i‖) g_i / Σ TS_i, or all zeros when no update has positive trust. */
  readonly aggregate: Float32Array;
  /** TS_i = ReLU(cos(g_i, g₀)) per update; 0 for an all-zero update. */
  readonly trustScores: readonly number[];
}

/**
 * FLTrust: each update's trust is the ReLU of its cosine similarity to the server's root update,
 * each update is rescaled to the root update's norm (so a large update cannot dominate), and the
 * result is the trust-weighted mean. With no positively trusted update the result is zero, i.e. the
 * model does not move. Throws `AGG_NO_UPDATES` or `PARAMS_MISMATCH`; never mutates its input.
 */
export function flTrust(updates: readonly Float32Array[], rootUpdate: Float32Array): FlTrustResult {
  const length = checkUpdates('flTrust', updates);
  checkLength('flTrust', 'rootUpdate', rootUpdate, length);
  const rootNorm = norm(rootUpdate);

  const trustScores: number[] = [];
  const coefficients: number[] = [];
  let totalTrust = 0;
  for (const g of updates) {
    // cosineSimilarity is 0 when either vector is all zeros, so gNorm is positive wherever trust is.
    const trust = Math.max(0, cosineSimilarity(g, rootUpdate));
    const gNorm = trust === 0 ? 0 : norm(g);
    trustScores.push(trust);
    // Trust and the norm rescaling fold into one coefficient per update.
    coefficients.push(trust === 0 ? 0 : (trust * rootNorm) / gNorm);
    totalTrust += trust;
  }

  const aggregate = new Float32Array(length);
  if (totalTrust === 0) return { aggregate, trustScores };
  const acc = new Float64Array(length);
  for (let k = 0; k < updates.length; k++) {
    const c = coefficients[k]! / totalTrust;
    if (c === 0) continue;
    const g = updates[k]!;
    for (let i = 0; i < length; i++) acc[i] = acc[i]! + c * g[i]!;
  }
  for (let i = 0; i < length; i++) aggregate[i] = acc[i]!;
  return { aggregate, trustScores };
}
