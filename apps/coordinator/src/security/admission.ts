/**
 * The price of a new identity on an open task (the Sybil defence at the door): a hashcash-style
 * proof of work per identity (Back 2002) and token buckets of new identities per source address and
 * per task. A refused `hello` changes nothing: {@link IdentityQuota.check} only looks,
 * {@link IdentityQuota.take} takes a place from every bucket at once or from none, and
 * {@link IdentityQuota.giveBack} returns it when the store then refuses the identity. One node keeps
 * the buckets in memory ({@link IdentityLimiter}: a restarted coordinator starts with full ones); a
 * cluster keeps them in Redis so its nodes share one quota (cluster/redisIdentityLimiter.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { proofInput, solvesChallenge } from '@chorus/protocol';
import type { ProtocolErrorCode } from '@chorus/protocol';
import type { TaskConfig } from '@chorus/protocol';
import { KeyedRateLimiter, TokenBucket } from './rateLimit.js';
import type { Clock, TokenBucketOptions } from './rateLimit.js';

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

/** Why a new identity is refused when the task's bucket, or the address's, is empty. */
export const IDENTITY_REFUSALS = {
  task: { code: 'IDENTITY_LIMIT', message: 'the task admits no more new identities for now; try again later' },
  address: { code: 'IDENTITY_LIMIT', message: 'no more new identities from this address for now; try again later' },
} as const satisfies Record<string, Refusal>;

/** A task's identity buckets as token-bucket options (`{burst, perHour}` → capacity, refill per second); null where the task sets none. */
export function identityBuckets(admission: TaskConfig['admission']): { perTask: TokenBucketOptions | null; perAddress: TokenBucketOptions | null } {
  const bucketOf = (limit: { burst: number; perHour: number } | null): TokenBucketOptions | null =>
    limit ? { capacity: limit.burst, refillPerSecond: limit.perHour / 3600 } : null;
  return { perTask: bucketOf(admission.newIdentitiesPerTask), perAddress: bucketOf(admission.newIdentitiesPerAddress) };
}

/**
 * The quotas of new identities of one task: a bucket for the task and one per source address (the
 * latter only for the open link: an invitation's quota already prices its identities). Asynchronous
 * because a cluster's buckets are in Redis; the in-memory one answers at once.
 */
export interface IdentityQuota {
  /** Why a new identity from `address` is refused now, or null; takes nothing. */
  check(address: string, openLink: boolean): Promise<Refusal | null>;
  /** Takes one place from every bucket that applies, or from none and says why: atomic, so the last place goes to one identity only. */
  take(address: string, openLink: boolean): Promise<Refusal | null>;
  /** Returns the places a successful {@link take} took (the identity was not stored after all). */
  giveBack(address: string, openLink: boolean): Promise<void>;
}

/** {@link IdentityQuota} in this process's memory: a single node's quotas. */
export class IdentityLimiter implements IdentityQuota {
  private readonly perTask: TokenBucket | null;
  private readonly perAddress: KeyedRateLimiter | null;

  constructor(admission: TaskConfig['admission'], now: Clock) {
    const { perTask, perAddress } = identityBuckets(admission);
    this.perTask = perTask ? new TokenBucket(perTask, now) : null;
    this.perAddress = perAddress ? new KeyedRateLimiter(perAddress, now) : null;
  }

  check(address: string, openLink: boolean): Promise<Refusal | null> {
    return Promise.resolve(this.refusal(address, openLink));
  }

  // Synchronous up to the returned promise, so no other take runs between the check and the take.
  take(address: string, openLink: boolean): Promise<Refusal | null> {
    const refusal = this.refusal(address, openLink);
    if (refusal === null) {
      this.perTask?.tryTake();
      if (openLink) this.perAddress?.tryTake(address);
    }
    return Promise.resolve(refusal);
  }

  giveBack(address: string, openLink: boolean): Promise<void> {
    this.perTask?.giveBack();
    if (openLink) this.perAddress?.giveBack(address);
    return Promise.resolve();
  }

  private refusal(address: string, openLink: boolean): Refusal | null {
    if (this.perTask && !this.perTask.canTake()) return IDENTITY_REFUSALS.task;
    if (openLink && this.perAddress && !this.perAddress.canTake(address)) return IDENTITY_REFUSALS.address;
    return null;
  }
}
