/**
 * Where each attempt's randomness comes from, and how many clients the waiting room waits for.
 * Sampling itself belongs to the task's fl-core strategy (`configureFit`): a fixed cohort with
 * over-selection by default, Poisson sampling under differential privacy.
 */
import { cohortSize, createRng } from '@chorus/fl-core';
import type { Rng } from '@chorus/fl-core';
import type { TaskConfig } from '@chorus/protocol';

/**
 * Generator for one attempt at one round. Each (task seed, round, attempt) has its own stream, so
 * a resumed coordinator makes the same choices for the same waiting room and no draw depends on
 * how many rounds ran before in-process. Attempt 0 is never an attempt: it is left for DP noise.
 */
export function roundRng(seed: number, serverRound: number, attempt: number): Rng {
  // Mix the three integers with distinct odd multipliers so nearby (round, attempt) pairs decorrelate.
  const mixed = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(serverRound >>> 0, 0x85ebca77) ^ Math.imul(attempt >>> 0, 0xc2b2ae3d)) >>> 0;
  return createRng(mixed);
}

/** Clients the waiting room waits for (up to `waitingRoomMs`) before a round opens: a full cohort. */
export function waitingRoomSize(task: Pick<TaskConfig, 'clientsPerRound' | 'overSelection'>): number {
  return cohortSize(Number.MAX_SAFE_INTEGER, { clientsPerRound: task.clientsPerRound, overSelection: task.overSelection }).invite;
}
