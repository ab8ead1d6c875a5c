/**
 * Adversarial client behaviours for robustness experiments, applied openly to what a client uploads
 * (each one seeded, so a run is reproducible):
 *
 * - sign-flip: uploads −Δ (the reversed-gradient attack of Fang et al. 2020, arXiv:1911.11815);
 * - scaling: uploads factor·Δ (model-replacement boosting, Bagdasaryan et al. 2020, arXiv:1807.00459);
 * - gaussian-noise: uploads Δ + N(0, σ²) per coordinate;
 * - label-flip: trains on labels mapped through a fixed seeded derangement (Tolpegin et al. 2020,
 *   arXiv:2007.08432), so every label is wrong and the upload is an honest step on poisoned data;
 * - free-rider: skips training and uploads a zero update (Lin et al. 2019, arXiv:1911.12560).
 *
 * The functions are pure: they never mutate their input.
 */
import { FlCoreError, createRng, gaussian, shuffled } from '@chorus/fl-core';
import type { Parameters, Rng, Tensor } from '@chorus/fl-core';
import { ClientError } from './errors.js';

/** Names of the behaviours, as the CLI spells them. */
export const ADVERSARIAL_KINDS = ['sign-flip', 'scaling', 'gaussian-noise', 'label-flip', 'free-rider'] as const;
/** One of {@link ADVERSARIAL_KINDS}. */
export type AdversarialKind = (typeof ADVERSARIAL_KINDS)[number];

/** A behaviour and its parameter. */
export type AdversarialBehaviour =
  | { readonly kind: 'sign-flip' }
  | { readonly kind: 'scaling'; readonly factor: number }
  | { readonly kind: 'gaussian-noise'; readonly sigma: number }
  | { readonly kind: 'label-flip' }
  | { readonly kind: 'free-rider' };

/** Default parameter of the behaviours that take one. */
export const DEFAULT_SCALING_FACTOR = 10;
/** Default σ of gaussian-noise. */
export const DEFAULT_NOISE_SIGMA = 1;

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
 * returns `delta` as it is). `rng` draws the noise of gaussian-noise.
 */
export function attackUpdate(delta: Parameters, behaviour: AdversarialBehaviour | null, rng: Rng): Tensor[] {
  const copy = (t: Tensor, f: (v: number) => number): Tensor => ({ name: t.name, shape: [...t.shape], values: t.values.map(f) });
  if (behaviour === null) return delta.map((t) => copy(t, (v) => v));
  checkBehaviour(behaviour);
  switch (behaviour.kind) {
    case 'sign-flip':
      return delta.map((t) => copy(t, (v) => -v));
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

/** Parses `KIND:FRACTION[:PARAM]` (PARAM: scaling's factor, gaussian-noise's σ); throws `CLIENT_BAD_CONFIG`. */
export function parseAdversarialSpec(text: string): AdversarialSpec {
  const parts = text.split(':');
  const [kind, fractionText, paramText, ...rest] = parts;
  const bad = (why: string): ClientError =>
    new ClientError('CLIENT_BAD_CONFIG', `--adversarial '${text}': ${why} (expected KIND:FRACTION[:PARAM], KIND one of ${ADVERSARIAL_KINDS.join(', ')})`);
  if (rest.length > 0 || kind === undefined) throw bad('too many fields');
  if (!(ADVERSARIAL_KINDS as readonly string[]).includes(kind)) throw bad(`unknown kind '${kind}'`);
  const fraction = fractionText === undefined || fractionText === '' ? NaN : Number(fractionText);
  if (!(fraction >= 0 && fraction <= 1)) throw bad('FRACTION must be a number in [0, 1]');
  const takesParam = kind === 'scaling' || kind === 'gaussian-noise';
  if (paramText !== undefined && !takesParam) throw bad(`${kind} takes no parameter`);
  const param = paramText === undefined || paramText === '' ? undefined : Number(paramText);
  if (param !== undefined && !Number.isFinite(param)) throw bad(`PARAM must be a number, got '${paramText}'`);
  let behaviour: AdversarialBehaviour;
  if (kind === 'scaling') behaviour = { kind, factor: param ?? DEFAULT_SCALING_FACTOR };
  else if (kind === 'gaussian-noise') behaviour = { kind, sigma: param ?? DEFAULT_NOISE_SIGMA };
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
 * taken yet, chosen by a seeded shuffle; the rest are honest (null). Throws `CLIENT_BAD_CONFIG` when
 * the fractions add up to more clients than there are.
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
    for (let j = 0; j < counts[i]!; j++) out[order[next++]!] = s.behaviour;
  });
  return out;
}
