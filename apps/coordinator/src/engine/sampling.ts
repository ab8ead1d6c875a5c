/**
 * Seeded client sampling with over-selection. Each attempt at each round draws from its own
 * generator, derived from (task seed, round, attempt), so a resumed coordinator makes the same
 * choices for the same waiting room and no draw depends on how many rounds ran before in-process.
 */
import { createRng, shuffled } from '@chorus/fl-core';
import type { Rng } from '@chorus/fl-core';

/** Generator for one attempt at one round. */
export function roundRng(seed: number, serverRound: number, attempt: number): Rng {
  // Mix the three integers with distinct odd multipliers so nearby (round, attempt) pairs decorrelate.
  const mixed = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(serverRound >>> 0, 0x85ebca77) ^ Math.imul(attempt >>> 0, 0xc2b2ae3d)) >>> 0;
  return createRng(mixed);
}

/** How many clients to invite and how many valid updates close the round early. */
export interface SelectionSize {
  /** Clients invited: clientsPerRound · (1 + overSelection), rounded up, at most those available. */
  readonly invite: number;
  /** Valid updates that close the round before its deadline. */
  readonly target: number;
}

/** Sizes of a round given the clients available. */
export function selectionSize(available: number, clientsPerRound: number, overSelection: number): SelectionSize {
  const invite = Math.min(available, Math.ceil(clientsPerRound * (1 + overSelection)));
  return { invite, target: Math.min(clientsPerRound, invite) };
}

/** `count` distinct ids drawn uniformly from `available` (order of `available` does not matter). */
export function sampleClients(rng: Rng, available: Iterable<string>, count: number): string[] {
  // Sorting first makes the draw depend on the set of ids only, not on join order.
  const ids = [...available].sort();
  return shuffled(rng, ids).slice(0, Math.max(0, Math.min(count, ids.length)));
}
