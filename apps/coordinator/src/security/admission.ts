/**
 * The price of a new identity on an open task (the Sybil defence at the door): a hashcash-style
 * proof of work per identity (Back 2002) and token buckets of new identities per source address and
 * per task. Every check here is side-effect free until the identity is actually stored, so a refused
 * `hello` changes nothing: {@link IdentityLimiter.check} only looks, {@link IdentityLimiter.take}
 * charges once the store accepted the identity. The buckets live in memory: a restarted
 * coordinator starts with full ones.
 */
import { createHash, randomBytes } from 'node:crypto';
import { proofInput, solvesChallenge } from '@chorus/protocol';
import type { ProtocolErrorCode } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';
import { KeyedRateLimiter, TokenBucket } from './rateLimit.js';
import type { Clock } from './rateLimit.js';

/** How long an issued challenge may be answered. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

/** A challenge issued to one connection. */
export interface IssuedChallenge {
  readonly value: string;
  readonly difficulty: number;
  readonly expiresAt: number;
}

/** A refusal: a protocol code and a short message. */
export interface Refusal {
  readonly code: ProtocolErrorCode;
  readonly message: string;
}

/** A fresh random challenge (128 bits, URL-safe base64) at `difficulty`, valid for {@link CHALLENGE_TTL_MS}. */
export function issueChallenge(difficulty: number, now: number): IssuedChallenge {
  return { value: randomBytes(16).toString('base64url'), difficulty, expiresAt: now + CHALLENGE_TTL_MS };
}

/**
 * Why `proof` does not pay for a new identity, or null when it does: it must answer `issued` (the
 * challenge this connection holds), before it expires, with SHA-256(challenge ‖ nonce) starting
 * with `issued.difficulty` zero bits.
 */
export function checkProof(issued: IssuedChallenge | undefined, proof: { challenge: string; nonce: string } | undefined, now: number): Refusal | null {
  if (issued === undefined || issued.difficulty === 0) {
    return issued === undefined ? { code: 'PROOF_REQUIRED', message: 'a new identity needs proof of work: send challenge, then hello with proof' } : null;
  }
  if (proof === undefined) return { code: 'PROOF_REQUIRED', message: `a new identity needs proof of work (${issued.difficulty} bits): hello with proof` };
  if (proof.challenge !== issued.value) return { code: 'PROOF_INVALID', message: 'the proof answers another challenge' };
  if (now > issued.expiresAt) return { code: 'PROOF_INVALID', message: 'the challenge expired; ask for a new one' };
  const digest = new Uint8Array(createHash('sha256').update(proofInput(proof.challenge, proof.nonce)).digest());
  if (!solvesChallenge(digest, issued.difficulty)) return { code: 'PROOF_INVALID', message: `the nonce does not give ${issued.difficulty} leading zero bits` };
  return null;
}

/** Token-bucket options from a task's `{burst, perHour}`. */
function bucketOf(limit: { burst: number; perHour: number }): { capacity: number; refillPerSecond: number } {
  return { capacity: limit.burst, refillPerSecond: limit.perHour / 3600 };
}

/**
 * New identities one task may issue: a bucket for the task and one per source address (the
 * latter only for the open link: an invitation's quota already prices its identities).
 */
export class IdentityLimiter {
  private readonly perTask: TokenBucket | null;
  private readonly perAddress: KeyedRateLimiter | null;

  constructor(admission: TaskConfig['admission'], now: Clock) {
    this.perTask = admission.newIdentitiesPerTask ? new TokenBucket(bucketOf(admission.newIdentitiesPerTask), now) : null;
    this.perAddress = admission.newIdentitiesPerAddress ? new KeyedRateLimiter(bucketOf(admission.newIdentitiesPerAddress), now) : null;
  }

  /** Why a new identity from `address` is refused now, or null; takes nothing. */
  check(address: string, openLink: boolean): Refusal | null {
    if (this.perTask && !this.perTask.canTake()) return { code: 'IDENTITY_LIMIT', message: 'the task admits no more new identities for now; try again later' };
    if (openLink && this.perAddress && !this.perAddress.canTake(address)) {
      return { code: 'IDENTITY_LIMIT', message: 'no more new identities from this address for now; try again later' };
    }
    return null;
  }

  /** Charges one new identity (after {@link check} passed and the identity was stored). */
  take(address: string, openLink: boolean): void {
    this.perTask?.tryTake();
    if (openLink) this.perAddress?.tryTake(address);
  }
}
