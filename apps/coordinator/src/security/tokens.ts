/**
 * Secrets: join tokens, the admin token and per-client secrets. Only SHA-256 digests are stored;
 * comparisons run in constant time over fixed-length digests so neither the content nor the length of
 * a guess leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh 256-bit secret as URL-safe base64 (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A fresh pseudonymous id: 128 random bits, hex, with a readable prefix. */
export function generateId(prefix: string): string {
  return `${prefix}-${randomBytes(16).toString('hex')}`;
}

/**
 * An id in {@link generateId}'s format derived from `parts` (128 bits of their SHA-256): the same
 * parts always give the same id. For runs that must replay exactly (simulations); such an id is a
 * name, not a credential — a client still proves itself with the secret issued for it.
 */
export function derivedId(prefix: string, parts: readonly (string | number)[]): string {
  // JSON keeps the parts apart: ['a', 'bc'] and ['ab', 'c'] differ.
  return `${prefix}-${createHash('sha256').update(JSON.stringify(parts), 'utf8').digest('hex').slice(0, 32)}`;
}

/** SHA-256 of a secret, hex; what the store keeps instead of the secret. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `candidate` equals the secret whose {@link hashToken} digest is `expectedHash`, in constant time. */
export function tokenMatchesHash(candidate: string, expectedHash: string): boolean {
  const a = Buffer.from(hashToken(candidate), 'hex');
  const b = Buffer.from(expectedHash, 'hex');
  // Digests of well-formed hashes are always 32 bytes; a malformed stored hash never matches.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time equality of two secrets of any lengths (compares their digests). */
export function tokensEqual(candidate: string, expected: string): boolean {
  return tokenMatchesHash(candidate, hashToken(expected));
}
