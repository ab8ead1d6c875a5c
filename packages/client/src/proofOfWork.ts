/**
 * The client side of the coordinator's proof-of-work for new identities (see `@chorus/protocol`'s
 * `proofOfWork.ts`): ask the connection for a challenge and find a nonce. Hashing uses Web Crypto
 * (`crypto.subtle`), present in browsers and in Node ≥ 20, so the tab and the headless client run
 * the same code; digests are computed in batches, since each Web Crypto call is a promise. A page
 * served over plain http (no secure context, no `crypto.subtle`) hashes with the protocol's
 * TypeScript SHA-256 instead.
 */
import { PROTOCOL_VERSION, proofInput, sha256, solvesChallenge } from '@chorus/protocol';
import type { Ack, ChallengeResult } from '@chorus/protocol';
import type { ClientSocket } from './connection.js';
import { ClientError } from './errors.js';

/** Nonces hashed per batch of concurrent Web Crypto calls. */
const BATCH = 512;

/** Options of {@link solveChallenge}. */
export interface SolveOptions {
  /** Give up after this many hashes (default 2^30); throws `CLIENT_TIMEOUT`. */
  readonly maxAttempts?: number;
  /** Called between batches; return true to stop (throws `CLIENT_CLOSED`). */
  readonly cancelled?: () => boolean;
  /** false: hash with the TypeScript SHA-256 even where Web Crypto exists (tests). */
  readonly webCrypto?: boolean;
}

/** The smallest decimal nonce whose SHA-256(challenge ‖ nonce) has `difficulty` leading zero bits. */
export async function solveChallenge(challenge: string, difficulty: number, options: SolveOptions = {}): Promise<string> {
  if (!(Number.isInteger(difficulty) && difficulty >= 0 && difficulty <= 64)) {
    throw new ClientError('CLIENT_BAD_CONFIG', `solveChallenge: difficulty must be an integer in [0, 64], got ${difficulty}`);
  }
  const maxAttempts = options.maxAttempts ?? 2 ** 30;
  const subtle = options.webCrypto === false ? undefined : globalThis.crypto?.subtle;
  const digest = subtle
    ? async (input: Uint8Array): Promise<ArrayBuffer> => subtle.digest('SHA-256', input as Uint8Array<ArrayBuffer>)
    : (input: Uint8Array): Uint8Array => sha256(input);
  for (let start = 0; start < maxAttempts; start += BATCH) {
    if (options.cancelled?.()) throw new ClientError('CLIENT_CLOSED', 'proof of work cancelled');
    const count = Math.min(BATCH, maxAttempts - start);
    const digests = await Promise.all(Array.from({ length: count }, (_, i) => digest(proofInput(challenge, String(start + i)))));
    // The first solving nonce of the batch, so the answer does not depend on which promise settles first.
    const hit = digests.findIndex((d) => solvesChallenge(new Uint8Array(d), difficulty));
    if (hit >= 0) return String(start + hit);
  }
  throw new ClientError('CLIENT_TIMEOUT', `no proof of work found in ${maxAttempts} attempts (difficulty ${difficulty})`);
}

/**
 * Asks the connection for a challenge and solves it; resolves with the `proof` a new identity's
 * `hello` carries, or undefined when the task asks for no work. Rejects with a `ClientError`.
 */
export async function earnProof(
  socket: ClientSocket,
  options: SolveOptions & { readonly ackTimeoutMs?: number } = {},
): Promise<{ challenge: string; nonce: string } | undefined> {
  let res: Ack<ChallengeResult>;
  try {
    res = await socket.timeout(options.ackTimeoutMs ?? 10_000).emitWithAck('challenge', { type: 'challenge', protocolVersion: PROTOCOL_VERSION });
  } catch {
    throw new ClientError('CLIENT_TIMEOUT', 'challenge was not acknowledged');
  }
  if (!res.ok) throw new ClientError('CLIENT_HELLO_REFUSED', res.error.message, res.error.code);
  if (res.difficulty === 0) return undefined;
  return { challenge: res.challenge, nonce: await solveChallenge(res.challenge, res.difficulty, options) };
}
