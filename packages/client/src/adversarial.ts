/**
 * Adversarial client behaviours for robustness experiments, applied openly to what a client uploads
 * (each one seeded, so a run is reproducible):
 *
 * - sign-flip: uploads −Δ (the reversed-gradient attack of Fang et al. 2020, arXiv:1911.11815);
 * - scaling: uploads factor·Δ (model-replacement boosting, Bagdasaryan et al. 2020, arXiv:1807.00459);
 * - gaussian-noise: uploads Δ + N(0, σ²) per coordinate;
 * - label-flip: trains on labels mapped through a fixed seeded derangement (Tolpegin et al. 2020,
 *   arXiv:2007.08432), so every label is wrong and the upload is an honest step on poisoned data;
 * - free-rider: skips training and uploads a zero update (Lin et al. 2019, arXiv:1911.12560);
 * - alie: "A Little Is Enough" (Baruch, Baruch, Goldberg 2019, arXiv:1902.06156): uploads
 *   mean − z·std of the honest updates, coordinate-wise, z from the paper's z_max
 *   ({@link alieZ}). Colluders cannot see the other clients' updates here, so each estimates mean
 *   and std from its own data: it trains honestly on `replicates` bootstrap resamples of it
 *   ({@link bootstrapDataset}, all drawn from the round's seeded generator) and takes the
 *   replicates' mean and sample std ({@link alieUpdate}). Bootstrap spread is the sampling spread
 *   of a client with this many examples from this client's distribution; it leaves out the
 *   clients' label skew, so it under-estimates the honest spread and the attack errs on the
 *   stealthy side;
 * - ipm: inner-product manipulation (Xie, Koyejo, Gupta 2020, arXiv:1903.03936): uploads −ε·Δ,
 *   the client's own honest Δ standing for the honest mean ({@link ipmUpdate}); small ε (the
 *   default 0.5) keeps the upload inside what defences accept, large ε (≫ 1) overpowers them;
 * - delayed-sign-flip: honest for server rounds 1…K (default 3), sign-flip from round K + 1 on
 *   ({@link behaviourInRound}): an attacker that first earns trust.
 *
 * The functions are pure: they never mutate their input.
 */
import { FlCoreError, createRng, gaussian, shuffled } from '@chorus/fl-core';
import type { Parameters, Rng, Tensor } from '@chorus/fl-core';
import type { LocalDataset } from './dataset.js';
import { ClientError } from './errors.js';

/** Names of the behaviours, as the CLI spells them. */
export const ADVERSARIAL_KINDS = ['sign-flip', 'scaling', 'gaussian-noise', 'label-flip', 'free-rider', 'alie', 'ipm', 'delayed-sign-flip'] as const;
/** One of {@link ADVERSARIAL_KINDS}. */
export type AdversarialKind = (typeof ADVERSARIAL_KINDS)[number];

/** A behaviour and its parameter. */
export type AdversarialBehaviour =
  | { readonly kind: 'sign-flip' }
  | { readonly kind: 'scaling'; readonly factor: number }
  | { readonly kind: 'gaussian-noise'; readonly sigma: number }
  | { readonly kind: 'label-flip' }
  | { readonly kind: 'free-rider' }
  /** z: null until {@link assignBehaviours} sets the paper's z_max for the number of clients and colluders. */
  | { readonly kind: 'alie'; readonly z: number | null; readonly replicates: number }
  | { readonly kind: 'ipm'; readonly epsilon: number }
  | { readonly kind: 'delayed-sign-flip'; readonly honestRounds: number };

/** Default parameter of the behaviours that take one. */
export const DEFAULT_SCALING_FACTOR = 10;
/** Default σ of gaussian-noise. */
export const DEFAULT_NOISE_SIGMA = 1;
/** Default bootstrap replicates of alie's estimate of the honest mean and std (each one a local training). */
export const DEFAULT_ALIE_REPLICATES = 4;
/** Default ε of ipm: small enough to pass distance- and median-based defences (the paper's evasive regime). */
export const DEFAULT_IPM_EPSILON = 0.5;
/** Default number of honest server rounds before delayed-sign-flip attacks. */
export const DEFAULT_HONEST_ROUNDS = 3;

/** Checks a behaviour's parameter; throws `CLIENT_BAD_CONFIG`. */
export function checkBehaviour(behaviour: AdversarialBehaviour): AdversarialBehaviour {
  switch (behaviour.kind) {
    case 'scaling':
      if (!Number.isFinite(behaviour.factor)) throw new ClientError('CLIENT_BAD_CONFIG', `scaling: factor must be finite, got ${behaviour.factor}`);
      return behaviour;
    case 'gaussian-noise':
      if (!(Number.isFinite(behaviour.sigma) && behaviour.sigma >= 0))
        throw new ClientError('CLIENT_BAD_CONFIG', `gaussian-noise: sigma must be ≥ 0, got ${behaviour.sigma}`);
      return behaviour;
    case 'alie':
      if (behaviour.z !== null && !(Number.isFinite(behaviour.z) && behaviour.z >= 0))
        throw new ClientError('CLIENT_BAD_CONFIG', `alie: z must be a finite number ≥ 0, got ${behaviour.z}`);
      if (!(Number.isInteger(behaviour.replicates) && behaviour.replicates >= 2))
        throw new ClientError('CLIENT_BAD_CONFIG', `alie: replicates must be an integer ≥ 2, got ${behaviour.replicates}`);
      return behaviour;
    case 'ipm':
      if (!(Number.isFinite(behaviour.epsilon) && behaviour.epsilon > 0))
        throw new ClientError('CLIENT_BAD_CONFIG', `ipm: epsilon must be a finite number > 0, got ${behaviour.epsilon}`);
      return behaviour;
    case 'delayed-sign-flip':
      if (!(Number.isSafeInteger(behaviour.honestRounds) && behaviour.honestRounds >= 0))
        throw new ClientError('CLIENT_BAD_CONFIG', `delayed-sign-flip: honestRounds must be an integer ≥ 0, got ${behaviour.honestRounds}`);
      return behaviour;
    case 'sign-flip':
    case 'label-flip':
    case 'free-rider':
      return behaviour;
    default:
      throw new ClientError('CLIENT_BAD_CONFIG', `unknown adversarial behaviour ${JSON.stringify((behaviour as { kind: unknown }).kind)}`);
  }
}

/**
 * The update `behaviour` uploads instead of the honest `delta` (label-flip acts on training and
 * returns `delta` as it is). `rng` draws the noise of gaussian-noise. delayed-sign-flip is
 * sign-flip here: whether it attacks in a round is {@link behaviourInRound}'s call, made before.
 * alie needs several honest deltas, not one: it throws `CLIENT_BAD_CONFIG` (use {@link alieUpdate}).
 */
export function attackUpdate(delta: Parameters, behaviour: AdversarialBehaviour | null, rng: Rng): Tensor[] {
  const copy = (t: Tensor, f: (v: number) => number): Tensor => ({ name: t.name, shape: [...t.shape], values: t.values.map(f) });
  if (behaviour === null) return delta.map((t) => copy(t, (v) => v));
  checkBehaviour(behaviour);
  switch (behaviour.kind) {
    case 'sign-flip':
    case 'delayed-sign-flip':
      return delta.map((t) => copy(t, (v) => -v));
    case 'ipm':
      return ipmUpdate(delta, behaviour.epsilon);
    case 'alie':
      throw new ClientError('CLIENT_BAD_CONFIG', 'attackUpdate: alie is computed from bootstrap replicates by alieUpdate, not from one delta');
    case 'scaling':
      return delta.map((t) => copy(t, (v) => v * behaviour.factor));
    case 'gaussian-noise':
      return delta.map((t) => copy(t, (v) => v + behaviour.sigma * gaussian(rng)));
    case 'free-rider':
      return delta.map((t) => ({ name: t.name, shape: [...t.shape], values: new Float32Array(t.values.length) }));
    case 'label-flip':
      return delta.map((t) => copy(t, (v) => v));
  }
}

/**
 * The behaviour a client shows in `serverRound` (rounds count from 1): delayed-sign-flip is honest
 * (null) up to its `honestRounds`-th round and sign-flip after; every other behaviour is itself.
 * A function of the round number alone, so a replayed or retried round behaves the same.
 */
export function behaviourInRound(behaviour: AdversarialBehaviour | null, serverRound: number): AdversarialBehaviour | null {
  if (behaviour?.kind !== 'delayed-sign-flip') return behaviour;
  return serverRound > behaviour.honestRounds ? { kind: 'sign-flip' } : null;
}

/** IPM's upload −ε·`meanEstimate` (Xie, Koyejo, Gupta 2020, arXiv:1903.03936): a negative inner product with the honest mean. */
export function ipmUpdate(meanEstimate: Parameters, epsilon: number): Tensor[] {
  if (!(Number.isFinite(epsilon) && epsilon > 0)) throw new ClientError('CLIENT_BAD_CONFIG', `ipmUpdate: epsilon must be a finite number > 0, got ${epsilon}`);
  return meanEstimate.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map((v) => -epsilon * v) }));
}

/**
 * Φ⁻¹(p), the standard normal quantile, by Acklam's rational approximation (relative error
 * < 1.2e-9). Throws `CLIENT_BAD_CONFIG` outside (0, 1).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new ClientError('CLIENT_BAD_CONFIG', `normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number): number =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  const low = 0.02425;
  if (p < low) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - low) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/**
 * ALIE's z_max for `numAttackers` colluders among `numClients` (Baruch et al. 2019, arXiv:1902.06156,
 * §3): s = ⌊n/2 + 1⌋ − m honest clients must be won over, z = Φ⁻¹((n − s)/n). s is kept ≥ 1 (with
 * a colluding majority the formula's Φ⁻¹(1) would be infinite) and z ≥ 0.
 */
export function alieZ(numClients: number, numAttackers: number): number {
  if (!(Number.isInteger(numClients) && numClients >= 1))
    throw new ClientError('CLIENT_BAD_CONFIG', `alieZ: numClients must be an integer ≥ 1, got ${numClients}`);
  if (!(Number.isInteger(numAttackers) && numAttackers >= 0 && numAttackers <= numClients))
    throw new ClientError('CLIENT_BAD_CONFIG', `alieZ: numAttackers must be an integer in [0, ${numClients}], got ${numAttackers}`);
  const s = Math.max(1, Math.floor(numClients / 2 + 1) - numAttackers);
  const p = (numClients - s) / numClients;
  return p <= 0.5 ? 0 : normalQuantile(p);
}

/**
 * Coordinate-wise mean and sample standard deviation (divisor K − 1) of K ≥ 2 updates with the
 * same names and shapes; throws `CLIENT_BAD_CONFIG` otherwise.
 */
export function coordinateMeanStd(updates: readonly Parameters[]): { mean: Tensor[]; std: Tensor[] } {
  const first = updates[0];
  if (first === undefined || updates.length < 2)
    throw new ClientError('CLIENT_BAD_CONFIG', `coordinateMeanStd: needs at least 2 updates, got ${updates.length}`);
  for (const u of updates) {
    if (u.length !== first.length || u.some((t, i) => t.name !== first[i]!.name || t.values.length !== first[i]!.values.length))
      throw new ClientError('CLIENT_BAD_CONFIG', 'coordinateMeanStd: updates differ in their tensors');
  }
  const k = updates.length;
  const mean: Tensor[] = [];
  const std: Tensor[] = [];
  first.forEach((t, i) => {
    const m = new Float64Array(t.values.length);
    for (const u of updates) u[i]!.values.forEach((v, j) => (m[j]! += v / k));
    const ss = new Float64Array(t.values.length);
    for (const u of updates) u[i]!.values.forEach((v, j) => (ss[j]! += (v - m[j]!) ** 2));
    mean.push({ name: t.name, shape: [...t.shape], values: Float32Array.from(m) });
    std.push({ name: t.name, shape: [...t.shape], values: Float32Array.from(ss, (v) => Math.sqrt(v / (k - 1))) });
  });
  return { mean, std };
}

/** ALIE's upload mean − z·std, coordinate-wise, from honest `replicates` (see {@link coordinateMeanStd}). */
export function alieUpdate(replicates: readonly Parameters[], z: number): Tensor[] {
  if (!(Number.isFinite(z) && z >= 0)) throw new ClientError('CLIENT_BAD_CONFIG', `alieUpdate: z must be a finite number ≥ 0, got ${z}`);
  const { mean, std } = coordinateMeanStd(replicates);
  return mean.map((t, i) => ({ name: t.name, shape: t.shape, values: t.values.map((v, j) => v - z * std[i]!.values[j]!) }));
}

/** `dataset` resampled with replacement: as many examples, drawn uniformly by `rng` (one bootstrap replicate). */
export function bootstrapDataset(dataset: LocalDataset, rng: Rng): LocalDataset {
  const picks = Array.from({ length: dataset.numExamples }, () => Math.min(dataset.numExamples - 1, Math.floor(rng() * dataset.numExamples)));
  return {
    modalities: dataset.modalities,
    numExamples: picks.length,
    labels: Int32Array.from(picks, (i) => dataset.labels[i]!),
    read: (indices) => dataset.read(indices.map((i) => picks[i]!)),
  };
}

/** A seeded derangement of [0, numClasses): a bijection that moves every label. */
export function labelPermutation(numClasses: number, rng: Rng): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 2)
    throw new FlCoreError('PARTITION_BAD_CONFIG', `labelPermutation: numClasses must be an integer ≥ 2, got ${numClasses}`);
  // Rotating a random order by one position maps each label to the next in that cycle: never to itself.
  const order = shuffled(
    rng,
    Array.from({ length: numClasses }, (_, i) => i),
  );
  const map = new Int32Array(numClasses);
  for (let i = 0; i < numClasses; i++) map[order[i]!] = order[(i + 1) % numClasses]!;
  return map;
}

/** A behaviour given to a fraction of the clients, as in `sign-flip:0.2` or `scaling:0.1:-5`. */
export interface AdversarialSpec {
  readonly behaviour: AdversarialBehaviour;
  readonly fraction: number;
}

/**
 * Parses `KIND:FRACTION[:PARAM]` (PARAM: scaling's factor, gaussian-noise's σ, alie's z in place of
 * the paper's z_max, ipm's ε, delayed-sign-flip's honest rounds); throws `CLIENT_BAD_CONFIG`.
 */
export function parseAdversarialSpec(text: string): AdversarialSpec {
  const parts = text.split(':');
  const [kind, fractionText, paramText, ...rest] = parts;
  const bad = (why: string): ClientError =>
    new ClientError('CLIENT_BAD_CONFIG', `--adversarial '${text}': ${why} (expected KIND:FRACTION[:PARAM], KIND one of ${ADVERSARIAL_KINDS.join(', ')})`);
  if (rest.length > 0 || kind === undefined) throw bad('too many fields');
  if (!(ADVERSARIAL_KINDS as readonly string[]).includes(kind)) throw bad(`unknown kind '${kind}'`);
  const fraction = fractionText === undefined || fractionText === '' ? NaN : Number(fractionText);
  if (!(fraction >= 0 && fraction <= 1)) throw bad('FRACTION must be a number in [0, 1]');
  const takesParam = ['scaling', 'gaussian-noise', 'alie', 'ipm', 'delayed-sign-flip'].includes(kind);
  if (paramText !== undefined && !takesParam) throw bad(`${kind} takes no parameter`);
  const param = paramText === undefined || paramText === '' ? undefined : Number(paramText);
  if (param !== undefined && !Number.isFinite(param)) throw bad(`PARAM must be a number, got '${paramText}'`);
  let behaviour: AdversarialBehaviour;
  if (kind === 'scaling') behaviour = { kind, factor: param ?? DEFAULT_SCALING_FACTOR };
  else if (kind === 'gaussian-noise') behaviour = { kind, sigma: param ?? DEFAULT_NOISE_SIGMA };
  else if (kind === 'alie') behaviour = { kind, z: param ?? null, replicates: DEFAULT_ALIE_REPLICATES };
  else if (kind === 'ipm') behaviour = { kind, epsilon: param ?? DEFAULT_IPM_EPSILON };
  else if (kind === 'delayed-sign-flip') behaviour = { kind, honestRounds: param ?? DEFAULT_HONEST_ROUNDS };
  else behaviour = { kind: kind as 'sign-flip' | 'label-flip' | 'free-rider' };
  try {
    checkBehaviour(behaviour);
  } catch (err) {
    throw bad((err as Error).message);
  }
  return { behaviour, fraction };
}

/**
 * Which of `numClients` clients behave how: each spec takes round(fraction · numClients) clients not
 * taken yet, chosen by a seeded shuffle; the rest are honest (null). An alie spec without z gets
 * {@link alieZ}(numClients, its own count): its clients are the colluders. Throws
 * `CLIENT_BAD_CONFIG` when the fractions add up to more clients than there are.
 */
export function assignBehaviours(numClients: number, specs: readonly AdversarialSpec[], seed: number): (AdversarialBehaviour | null)[] {
  if (!Number.isInteger(numClients) || numClients < 0)
    throw new ClientError('CLIENT_BAD_CONFIG', `assignBehaviours: numClients must be a non-negative integer, got ${numClients}`);
  const counts = specs.map((s) => Math.round(s.fraction * numClients));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total > numClients) throw new ClientError('CLIENT_BAD_CONFIG', `adversarial fractions take ${total} of ${numClients} clients`);
  const order = shuffled(
    createRng(seed),
    Array.from({ length: numClients }, (_, i) => i),
  );
  const out: (AdversarialBehaviour | null)[] = new Array<AdversarialBehaviour | null>(numClients).fill(null);
  let next = 0;
  specs.forEach((s, i) => {
    const count = counts[i]!;
    const behaviour = s.behaviour.kind === 'alie' && s.behaviour.z === null && count > 0 ? { ...s.behaviour, z: alieZ(numClients, count) } : s.behaviour;
    for (let j = 0; j < count; j++) out[order[next++]!] = behaviour;
  });
  return out;
}
