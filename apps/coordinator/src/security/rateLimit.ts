/**
 * Token-bucket rate limiting. A bucket holds up to `capacity` tokens and refills at
 * `refillPerSecond`; each action takes one. The clock is passed in so tests can drive time.
 */

/** Milliseconds since some fixed origin. */
export type Clock = () => number;

/** Settings of a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Burst size: actions allowed at once from a full bucket (≥ 1). */
  readonly capacity: number;
  /** Sustained rate in actions per second (> 0). */
  readonly refillPerSecond: number;
}

/** One bucket; two numbers of state, so one per connection costs nothing. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly options: TokenBucketOptions,
    private readonly now: Clock,
  ) {
    if (!(options.capacity >= 1) || !(options.refillPerSecond > 0)) {
      throw new RangeError(`TokenBucket: capacity must be ≥ 1 and refillPerSecond > 0, got ${options.capacity}, ${options.refillPerSecond}`);
    }
    this.tokens = options.capacity;
    this.updatedAt = now();
  }

  /** Takes one token when available; false (and no change) when the bucket is empty. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Returns one token (an action that took one did not happen after all); never above capacity. */
  giveBack(): void {
    this.refill();
    this.tokens = Math.min(this.options.capacity, this.tokens + 1);
  }

  /** True when a token is available now; takes nothing. */
  canTake(): boolean {
    this.refill();
    return this.tokens >= 1;
  }

  /** True when the bucket is full again, i.e. keeping it is pointless. */
  isFull(): boolean {
    this.refill();
    return this.tokens >= this.options.capacity;
  }

  private refill(): void {
    const t = this.now();
    // A clock that steps backwards must not mint tokens.
    const elapsed = Math.max(0, t - this.updatedAt);
    this.updatedAt = Math.max(this.updatedAt, t);
    this.tokens = Math.min(this.options.capacity, this.tokens + (elapsed * this.options.refillPerSecond) / 1000);
  }
}

/**
 * Buckets by key (e.g. remote address for connection attempts). Full buckets are dropped on each
 * sweep so memory stays proportional to the keys active recently, not to every key ever seen.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private takesSinceSweep = 0;

  constructor(
    private readonly options: TokenBucketOptions,
    private readonly now: Clock,
    private readonly sweepEvery = 1024,
  ) {}

  /** Takes one token from `key`'s bucket; false when it is empty. */
  tryTake(key: string): boolean {
    if (++this.takesSinceSweep >= this.sweepEvery) this.sweep();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.options, this.now);
      this.buckets.set(key, bucket);
    }
    return bucket.tryTake();
  }

  /** Returns one token to `key`'s bucket (an unseen or swept key's bucket is full already). */
  giveBack(key: string): void {
    this.buckets.get(key)?.giveBack();
  }

  /** True when `key`'s bucket has a token now; takes nothing (an unseen key has a full bucket). */
  canTake(key: string): boolean {
    return this.buckets.get(key)?.canTake() ?? true;
  }

  /** Number of keys currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  /** Forgets every full bucket. */
  sweep(): void {
    this.takesSinceSweep = 0;
    for (const [key, bucket] of this.buckets) if (bucket.isFull()) this.buckets.delete(key);
  }
}
