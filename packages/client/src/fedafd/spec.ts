/**
 * A FedAFD client model's spec from what a round asks of it ("FedAFD: Multimodal Federated Learning
 * via Adversarial Fusion and Distillation", §3.2, §4.1): the strategy's client coefficients (fl-core
 * `ClientCoefficients`, carried in the round config's `representation` section) switch BAA (Eq. 1–2,
 * weight λ_adv; 0 is the "w/o BAA" ablation, the baselines and LOCAL), GFF (Eq. 3–6; off for
 * "w/o GFF", the baselines and LOCAL) and the baselines' local distillation towards the global public
 * representations (FedMD, FedGEMS, FedET, FedMKD; weight λ_dis, 0 for FedAFD and LOCAL) on the kind
 * and architecture the client was assigned:
 *
 *   strategy                         useBaa  useGff  localDistillationWeight
 *   fedafd                           true    true    0
 *   fedafd, adversarialWeight 0      false   true    0
 *   fedafd, fusion false             true    false   0
 *   fedafd, sed false                true    true    0     (SED is the server's side only)
 *   fedmd, fedgems, fedet, fedmkd    false   false   the strategy's (default 0.4)
 *   local                            false   false   0     (a step needs no public data)
 */
import type { ClientCoefficients } from '@chorus/fl-core';
import type { FedAfdClientSpec } from '@chorus/models';
import { ClientError } from '../errors.js';
import type { FedAfdAssignment } from './clientData.js';

/** Spec fields a round's coefficients decide; everything else comes from the task (sizes, seed, learning rate). */
export type FedAfdSpecBase = Omit<Partial<FedAfdClientSpec>, 'kind' | 'arch' | 'adversarialWeight' | 'useBaa' | 'useGff' | 'localDistillationWeight'>;

/**
 * The spec of `assignment`'s model under `coefficients`, with the task's other fields from `base`.
 * Throws `CLIENT_BAD_CONFIG` for a weight that is not a finite number ≥ 0 or a `fusion` that is not
 * a boolean.
 */
export function fedAfdClientSpec(
  assignment: Pick<FedAfdAssignment, 'kind' | 'arch'>,
  coefficients: ClientCoefficients,
  base: FedAfdSpecBase = {},
): FedAfdClientSpec {
  const weight = (name: keyof ClientCoefficients): number => {
    const v: unknown = coefficients[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new ClientError('CLIENT_BAD_CONFIG', `representation.${name} must be a finite number ≥ 0, got ${JSON.stringify(v)}`);
    return v;
  };
  const adversarialWeight = weight('adversarialWeight');
  const localDistillationWeight = weight('localDistillationWeight');
  const { fusion } = coefficients;
  if (typeof fusion !== 'boolean') throw new ClientError('CLIENT_BAD_CONFIG', `representation.fusion must be true or false, got ${JSON.stringify(fusion)}`);
  return { ...base, kind: assignment.kind, arch: assignment.arch, adversarialWeight, useBaa: adversarialWeight > 0, useGff: fusion, localDistillationWeight };
}
