import { describe, expect, it } from 'vitest';
import { KeyedRateLimiter, TokenBucket } from './rateLimit.js';
import { generateId, generateToken, hashToken, tokenMatchesHash, tokensEqual } from './tokens.js';

describe('TokenBucket', () => {
  it('allows a burst of `capacity`, then refills at the given rate on the injected clock', () => {
    // Arrange
    let now = 1000;
    const bucket = new TokenBucket({ capacity: 3, refillPerSecond: 2 }, () => now);
    // Act
    const burst = [bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()];
    now += 499; // 0.998 tokens: not yet one
    const early = bucket.tryTake();
    now += 1; // 1 token
    const onTime = bucket.tryTake();
    now += 10_000;
    const afterLongIdle = [bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()];
    // Assert
    expect(burst).toEqual([true, true, true, false]);
    expect(early).toBe(false);
    expect(onTime).toBe(true);
    expect(afterLongIdle).toEqual([true, true, true, false]);
  });

  it('mints nothing when the clock steps backwards', () => {
    let now = 5000;
    const bucket = new TokenBucket({ capacity: 1, refillPerSecond: 1 }, () => now);
    bucket.tryTake();
    now = 0;
    expect(bucket.tryTake()).toBe(false);
    now = 999;
    expect(bucket.tryTake()).toBe(false);
  });

  it('refuses nonsense settings', () => {
    expect(() => new TokenBucket({ capacity: 0, refillPerSecond: 1 }, () => 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ capacity: 1, refillPerSecond: 0 }, () => 0)).toThrow(RangeError);
  });
});

describe('KeyedRateLimiter', () => {
  it('limits keys independently and forgets full buckets on sweep', () => {
    // Arrange
    let now = 0;
    const limiter = new KeyedRateLimiter({ capacity: 1, refillPerSecond: 1 }, () => now);
    // Act
    const first = [limiter.tryTake('a'), limiter.tryTake('a'), limiter.tryTake('b')];
    now += 1000;
    limiter.sweep();
    // Assert
    expect(first).toEqual([true, false, true]);
    expect(limiter.size).toBe(0);
  });
});

describe('tokens', () => {
  it('generates distinct 256-bit tokens and prefixed 128-bit ids', () => {
    const a = generateToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateToken()).not.toBe(a);
    expect(generateId('c')).toMatch(/^c-[0-9a-f]{32}$/);
  });

  it('matches a secret against its hash only', () => {
    const hash = hashToken('s3cret');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(tokenMatchesHash('s3cret', hash)).toBe(true);
    expect(tokenMatchesHash('s3cre', hash)).toBe(false);
    expect(tokenMatchesHash('s3cret', 'not-a-hash')).toBe(false);
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
  });
});
