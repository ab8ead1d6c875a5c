/**
 * The adversarial behaviours of adversarial.ts in a FedAFD round, where a client uploads its
 * representations of the public batch instead of a weight delta (what SED's weights must see
 * through; "FedAFD: Multimodal Federated Learning via Adversarial Fusion and Distillation", §3.3):
 *
 * - gaussian-noise: z + σ·N(0, 1) per coordinate (σ = 1 on unit rows: close to random rows);
 * - scaling: factor·z (same directions, inflated norms);
 * - sign-flip (and delayed-sign-flip once it attacks): −z; ipm: −ε·z;
 * - free-rider: skips training and sends back the global representations of its own modalities;
 * - label-flip: acts on training (the round's `labelMap`) and uploads its representations as they are;
 * - alie has no representation form (it needs weight deltas) and is refused.
 *
 * Pure: inputs are never mutated; the noise comes from `rng`.
 */
import { gaussian } from '@chorus/fl-core';
import type { Rng } from '@chorus/fl-core';
import type { Modality, RepresentationArrays } from '@chorus/models';
import { checkBehaviour } from '../adversarial.js';
import type { AdversarialBehaviour } from '../adversarial.js';
import { ClientError } from '../errors.js';

/**
 * The representations `behaviour` uploads instead of the honest `representations` (see the module
 * comment); `globalPublic` is what a free-rider copies, for the modalities of `representations`.
 * Throws `CLIENT_BAD_CONFIG` for alie or a bad parameter, `CLIENT_BAD_ROUND` when a free-rider's
 * global representations lack one of its modalities.
 */
export function attackRepresentations(
  representations: RepresentationArrays,
  behaviour: AdversarialBehaviour | null,
  rng: Rng,
  globalPublic: RepresentationArrays = {},
): RepresentationArrays {
  if (behaviour !== null) checkBehaviour(behaviour);
  const map = (f: (v: number) => number): RepresentationArrays =>
    Object.fromEntries((Object.entries(representations) as [Modality, Float32Array][]).map(([m, values]) => [m, values.map(f)]));
  switch (behaviour?.kind) {
    case undefined:
    case 'label-flip':
      return map((v) => v);
    case 'gaussian-noise':
      return map((v) => v + behaviour.sigma * gaussian(rng));
    case 'scaling':
      return map((v) => v * behaviour.factor);
    case 'sign-flip':
    case 'delayed-sign-flip':
      return map((v) => -v);
    case 'ipm':
      return map((v) => -behaviour.epsilon * v);
    case 'free-rider':
      return Object.fromEntries(
        (Object.keys(representations) as Modality[]).map((m) => {
          const global = globalPublic[m];
          if (!global) throw new ClientError('CLIENT_BAD_ROUND', `free-rider: no global '${m}' representations to copy`);
          return [m, global.slice()];
        }),
      );
    case 'alie':
      throw new ClientError('CLIENT_BAD_CONFIG', 'alie attacks weight deltas and has no form in a representation round');
  }
}
