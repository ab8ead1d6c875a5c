/**
 * DP-FedAvg with user-level differential privacy — McMahan, Ramage, Talwar & Zhang 2018, arXiv:1710.06963.
 *
 * Each client's update Δ_k is clipped to L2 norm S over all of its tensors together:
 * Δ̃_k = Δ_k · min(1, S/‖Δ_k‖). The server releases
 *
 *   Δ = (Σ_k Δ̃_k) / (qW) + N(0, σ² I),   σ = z·S/(qW),
 *
 * where z is the noise multiplier and qW the expected number of clients per round (uniform client
 * weights w_k = 1, so W is the client population and q the sampling rate).
 *
 * Denominator: this is the paper's fixed-denominator estimator f̃_f. Dividing by the expected count
 * rather than the number that actually reported keeps one client's influence at most S/(qW)
 * whatever the round's turnout, so the sensitivity — and the noise — is the same every round and
 * the RDP accountant's sampled Gaussian analysis with noise multiplier z applies as is. The
 * paper's adaptive alternative f̃_c (divide by max(qW_min, Σ w_k)) tracks turnout but has
 * sensitivity 2S/(qW_min), doubling the noise; it is not implemented. Weighting clients by example
 * counts is deliberately absent too: it would raise the sensitivity of heavy clients.
 *
 * Partial-modality clients: with a `template` (the global model's tensors), an update may omit
 * tensors (an image-only client sends no `text/…`); an omitted tensor counts as a zero delta, which
 * is exactly what the fixed denominator assumes, and noise is still added to every template tensor
 * so the release does not reveal which groups were present.
 *
 * Account each round with `recordRounds(accountant, { samplingRate: q, noiseMultiplier: z })`.
 */
import { FlCoreError } from '../errors.js';
import { assertFinite, assertSameLayout, clipFactor, numElements, parametersNorm, type Parameters, type Tensor } from '../params.js';
import { gaussian, type Rng } from '../rng.js';

/** Options of {@link dpFedAvg}. */
export interface DpFedAvgOptions {
  /** Clipping norm S > 0 applied to each client's whole update. */
  readonly clipNorm: number;
  /** Noise multiplier z ≥ 0: noise std divided by the per-client sensitivity S/(qW). */
  readonly noiseMultiplier: number;
  /** Expected clients per round qW > 0 (sampling rate × population): the fixed denominator. */
  readonly expectedClientsPerRound: number;
  /** Names and shapes of the released update; when given, updates may omit tensors (zero deltas). */
  readonly template?: Parameters;
}

/** What {@link dpFedAvg} releases, plus per-client diagnostics that stay on the server. */
export interface DpFedAvgResult {
  /** The noised average update, in the template's (or the first update's) tensor order. */
  readonly update: Tensor[];
  /** Standard deviation σ = z·S/(qW) of the Gaussian noise added to every coordinate. */
  readonly noiseStd: number;
  /** ‖Δ_k‖₂ of each update before clipping, in input order. */
  readonly updateNorms: number[];
  /** How many updates were scaled down by clipping. */
  readonly numClipped: number;
}

function bad(fn: string, message: string): never {
  throw new FlCoreError('PRIVACY_BAD_CONFIG', `${fn}: ${message}`);
}

function checkClipNorm(fn: string, clipNorm: number): void {
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) bad(fn, `clipNorm must be a finite number > 0, got ${clipNorm}`);
}

/** Noise standard deviation z·S/(qW) that {@link dpFedAvg} adds for the given options. */
export function dpFedAvgNoiseStd(options: DpFedAvgOptions): number {
  const fn = 'dpFedAvgNoiseStd';
  checkClipNorm(fn, options.clipNorm);
  const { noiseMultiplier: z, expectedClientsPerRound: expected } = options;
  if (!(z >= 0 && Number.isFinite(z))) bad(fn, `noiseMultiplier must be a finite number ≥ 0, got ${z}`);
  if (!(expected > 0 && Number.isFinite(expected))) bad(fn, `expectedClientsPerRound must be a finite number > 0, got ${expected}`);
  return (z * options.clipNorm) / expected;
}

function checkAgainstTemplate(template: Parameters, update: Parameters, k: number): void {
  const shapes = new Map(template.map((t) => [t.name, t.shape.join(',')]));
  const seen = new Set<string>();
  for (const t of update) {
    const shape = shapes.get(t.name);
    if (shape === undefined) throw new FlCoreError('PARAMS_MISMATCH', `dpFedAvg: update ${k} has tensor '${t.name}' that the template lacks`);
    if (shape !== t.shape.join(','))
      throw new FlCoreError('PARAMS_MISMATCH', `dpFedAvg: update ${k} '${t.name}' has shape [${t.shape.join(',')}], template [${shape}]`);
    if (seen.has(t.name)) throw new FlCoreError('PARAMS_MISMATCH', `dpFedAvg: update ${k} sends '${t.name}' twice`);
    seen.add(t.name);
  }
}

/**
 * One DP-FedAvg aggregation: clip each update to `clipNorm`, sum, divide by the expected client
 * count and add Gaussian noise drawn from `rng`. Inputs are not mutated; every check runs before
 * any noise is drawn. With a template and no updates, the release is noise alone (a round nobody
 * joined must still look like any other).
 */
export function dpFedAvg(rng: Rng, updates: readonly Parameters[], options: DpFedAvgOptions): DpFedAvgResult {
  const noiseStd = dpFedAvgNoiseStd(options);
  const template = options.template ?? updates[0];
  if (template === undefined) throw new FlCoreError('AGG_NO_UPDATES', 'dpFedAvg: no updates and no template to shape the release');
  if (new Set(template.map((t) => t.name)).size !== template.length) throw new FlCoreError('PARAMS_MISMATCH', 'dpFedAvg: tensor names repeat');
  updates.forEach((u, k) => {
    if (options.template) checkAgainstTemplate(options.template, u, k);
    else assertSameLayout(template, u, `dpFedAvg update ${k}`);
    assertFinite(u, `dpFedAvg update ${k}`);
  });

  const sums = new Map(template.map((t) => [t.name, new Float64Array(numElements(t.shape))]));
  const updateNorms: number[] = [];
  let numClipped = 0;
  for (const u of updates) {
    // Clipped while summing (params.ts's clip would copy every update first).
    const norm = parametersNorm(u);
    const scale = clipFactor(norm, options.clipNorm);
    if (scale < 1) numClipped++;
    updateNorms.push(norm);
    for (const t of u) {
      const sum = sums.get(t.name)!;
      for (let i = 0; i < sum.length; i++) sum[i]! += t.values[i]! * scale;
    }
  }

  const expected = options.expectedClientsPerRound;
  const update = template.map((t) => {
    const sum = sums.get(t.name)!;
    const values = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) values[i] = sum[i]! / expected + (noiseStd > 0 ? noiseStd * gaussian(rng) : 0);
    return { name: t.name, shape: [...t.shape], values };
  });
  return { update, noiseStd, updateNorms, numClipped };
}
