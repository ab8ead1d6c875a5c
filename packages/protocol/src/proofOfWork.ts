/**
 * Hashcash-style proof of work for new identities (Back 2002, "Hashcash — a denial of service
 * counter-measure"): the coordinator issues a random challenge, the client finds a decimal nonce so
 * that SHA-256(challenge ‖ nonce) starts with `difficulty` zero bits. Checking costs one hash;
 * solving costs 2^difficulty hashes on average, so each new identity has a price. Browser-safe:
 * the hashing itself is the caller's (Web Crypto in clients, node:crypto in the coordinator).
 */

/** Number of leading zero bits of `digest`. */
export function leadingZeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/** The bytes hashed for `nonce`: the UTF-8 string `challenge + nonce`. */
export function proofInput(challenge: string, nonce: string): Uint8Array {
  return new TextEncoder().encode(challenge + nonce);
}

/** True when `digest` (SHA-256 of {@link proofInput}) has at least `difficulty` leading zero bits. */
export function solvesChallenge(digest: Uint8Array, difficulty: number): boolean {
  return leadingZeroBits(digest) >= difficulty;
}
