/**
 * A FedAFD client model's spec from what a round asks of it ("FedAFD: Multimodal Federated Learning
 * via Adversarial Fusion and Distillation", §3.2, §4.1): the strategy's client coefficients (fl-core
 * `ClientCoefficients`, carried in the round config's `representation` section) switch BAA (Eq. 1–2,
 * weight λ_adv; 0 is the "w/o BAA" ablation and LOCAL) and GFF (Eq. 3–6; off for "w/o GFF" and
 * LOCAL) on the kind and architecture the client was assigned.
 *
 * The baselines' local distillation towards the global representations (FedMD, FedGEMS, FedET,
 * FedMKD) has no term in the client models yet, so a positive `localDistillationWeight` is refused
 * rather than silently trained without.
 */
import type { ClientCoefficients } from '@chorus/fl-core';
import type { FedAfdClientSpec } from '@chorus/models';
import { ClientError } from '../errors.js';
import type { FedAfdAssignment } from './clientData.js';

/** Spec fields a round's coefficients decide; everything else comes from the task (sizes, seed, learning rate). */
export type FedAfdSpecBase = Omit<Partial<FedAfdClientSpec>, 'kind' | 'arch' | 'adversarialWeight' | 'useBaa' | 'useGff'>;

/**
 * The spec of `assignment`'s model under `coefficients`, with the task's other fields from `base`.
 * Throws `CLIENT_BAD_CONFIG` for a coefficient that is not a finite number ≥ 0 (or a boolean
 * `fusion`), and for a positive `localDistillationWeight` (see the module comment).
 */
export function fedAfdClientSpec(
  assignment: Pick<FedAfdAssignment, 'kind' | 'arch'>,
  coefficients: ClientCoefficients,
  base: FedAfdSpecBase = {},
): FedAfdClientSpec {
  const { adversarialWeight, fusion, localDistillationWeight } = coefficients;
  const weight = (name: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new ClientError('CLIENT_BAD_CONFIG', `representation.${name} must be a finite number ≥ 0, got ${JSON.stringify(v)}`);
    return v;
  };
  weight('adversarialWeight', adversarialWeight);
  if (weight('localDistillationWeight', localDistillationWeight) > 0)
    throw new ClientError(
      'CLIENT_BAD_CONFIG',
      `representation.localDistillationWeight ${localDistillationWeight}: the FedAFD client models have no local distillation term`,
    );
  if (typeof fusion !== 'boolean') throw new ClientError('CLIENT_BAD_CONFIG', `representation.fusion must be true or false, got ${JSON.stringify(fusion)}`);
  return { ...base, kind: assignment.kind, arch: assignment.arch, adversarialWeight, useBaa: adversarialWeight > 0, useGff: fusion };
}
