/**
 * The benchmarks' `--modality-kinds`: which modality sets clients (or candidates) hold, in the
 * headless clients' syntax (`image+text=0.4,image=0.6`, parsed by the client CLI's own parser) or
 * `fedmmx`, the mix of FedMM-X's experiments. Sets are dealt by fl-core's
 * `assignModalitiesByFractions` (largest remainder, seeded order), as the headless clients deal them.
 */
import { assignModalitiesByFractions, createRng } from '@chorus/fl-core';
import type { Modality, ModalityKindShare } from '@chorus/fl-core';
import { parseModalityKinds } from '@chorus/client/node';

/** FedMM-X's experiments' mix (apps/experiments fedmmx.ts `modalityKinds`). */
export const FEDMMX_MODALITY_KINDS = 'image=0.2,text=0.2,audio=0.2,image+text=0.2,image+text+audio=0.2';

/** `--modality-kinds`' value: `fedmmx` or the clients' syntax; throws `CLIENT_BAD_CONFIG` for a malformed one. */
export function modalityKindsOption(text: string): ModalityKindShare[] {
  return parseModalityKinds(text === 'fedmmx' ? FEDMMX_MODALITY_KINDS : text);
}

/** The modality set of each of `count` clients, dealt from `kinds` with the seed `seed`. */
export function dealModalities(kinds: readonly ModalityKindShare[], count: number, seed: number): Modality[][] {
  return assignModalitiesByFractions(createRng(seed), count, kinds);
}
