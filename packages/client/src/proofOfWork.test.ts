import { createHash } from 'node:crypto';
import { leadingZeroBits, proofInput, sha256, solvesChallenge } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { solveChallenge } from './proofOfWork.js';
import { isClientError } from './errors.js';

const sha = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());

describe('leadingZeroBits', () => {
  it('counts zero bits from the most significant end', () => {
    expect(leadingZeroBits(new Uint8Array([0xff]))).toBe(0);
    expect(leadingZeroBits(new Uint8Array([0x00, 0x10]))).toBe(11);
    expect(leadingZeroBits(new Uint8Array([0x01, 0x00]))).toBe(7);
    expect(leadingZeroBits(new Uint8Array([0, 0]))).toBe(16);
  });
});

describe('sha256 (the fallback without Web Crypto)', () => {
  it('matches node:crypto on empty, short, block-boundary and multi-block inputs', () => {
    for (const length of [0, 3, 55, 56, 63, 64, 65, 200]) {
      const input = new Uint8Array(length).map((_, i) => (i * 31 + 7) & 0xff);
      expect(Buffer.from(sha256(input)).toString('hex')).toBe(Buffer.from(sha(input)).toString('hex'));
    }
  });
});

describe('solveChallenge', () => {
  it('finds the same nonce with the fallback hash as with Web Crypto', async () => {
    expect(await solveChallenge('xyz', 9, { webCrypto: false })).toBe(await solveChallenge('xyz', 9));
  });

  it('finds the smallest nonce whose node:crypto digest has the asked zero bits', async () => {
    // Act
    const nonce = await solveChallenge('abc', 10);
    // Assert: the coordinator's check (node:crypto) accepts it, and no smaller nonce would do.
    expect(solvesChallenge(sha(proofInput('abc', nonce)), 10)).toBe(true);
    for (let n = 0; n < Number(nonce); n++) expect(solvesChallenge(sha(proofInput('abc', String(n))), 10)).toBe(false);
  });

  it('returns nonce 0 at difficulty 0 and refuses a nonsense difficulty or a hopeless budget', async () => {
    expect(await solveChallenge('x', 0)).toBe('0');
    await expect(solveChallenge('x', -1)).rejects.toSatisfy((e) => isClientError(e) && e.code === 'CLIENT_BAD_CONFIG');
    await expect(solveChallenge('x', 40, { maxAttempts: 100 })).rejects.toSatisfy((e) => isClientError(e) && e.code === 'CLIENT_TIMEOUT');
  });
});
