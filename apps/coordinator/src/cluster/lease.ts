/**
 * Which node leads a task's rounds: whoever holds the task's lease key in Redis.
 *
 * The lease value is `<nodeId>:<fencing token>`, the token a counter that grows with every
 * acquisition, so each term of leadership has a value no other term had. The holder renews it every
 * `ttlMs / 3`; a node that does not hold it tries to take it as often. When the holder dies or is cut
 * off from Redis, the key expires after at most `ttlMs` and another node takes it within one more
 * try: failover is bounded by `ttlMs + ttlMs / 3` plus the new leader's start-up.
 *
 * Only Redis says a holder lost its lease: a renewal answered "not yours" (another node took it), or
 * a renewal left unanswered for `ttlMs` (this node is cut off from Redis, so the key has lapsed
 * there and another node may hold it). A holder whose event loop was busy for longer than the TTL
 * (a large round's aggregation) therefore does not step down on its own clock: its next renewal
 * finds the key still its own, or — if it lapsed and *no other node took the lease in between* (the
 * fencing counter still holds this term's token) — sets it again and goes on in the same term.
 * Writes are fenced by the same rule (replicatedStore.ts), so the log stays right however a
 * holder's clock or scheduler stalls.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Lua: true when `value` (`node:token`) holds the lease at `leaseKey`, restoring a lapsed key when no
 * other term began since (the fencing counter at `fenceKey` is still this value's token).
 */
export const HOLDS_LEASE_LUA = `
local function holds(leaseKey, fenceKey, value, ttl)
  local current = redis.call('GET', leaseKey)
  if current == value then return true end
  if current then return false end
  local token = string.match(value, ':(%d+)$')
  if token and redis.call('GET', fenceKey) == token then
    redis.call('SET', leaseKey, value, 'PX', ttl)
    return true
  end
  return false
end
`;

const ACQUIRE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
`;
const RENEW_SCRIPT = `${HOLDS_LEASE_LUA}
if holds(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface LeaseCommands {
  chorusLeaseAcquire(key: string, fenceKey: string, nodeId: string, ttlMs: number): Promise<[number, string]>;
  chorusLeaseRenew(key: string, fenceKey: string, value: string, ttlMs: number): Promise<number>;
  chorusLeaseRelease(key: string, value: string): Promise<number>;
}

/** Registers the lease scripts on a connection (idempotent). */
function commands(redis: Redis): LeaseCommands {
  const r = redis as Redis & Partial<LeaseCommands>;
  if (!r.chorusLeaseAcquire) {
    redis.defineCommand('chorusLeaseAcquire', { numberOfKeys: 2, lua: ACQUIRE_SCRIPT });
    redis.defineCommand('chorusLeaseRenew', { numberOfKeys: 2, lua: RENEW_SCRIPT });
    redis.defineCommand('chorusLeaseRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  }
  return r as unknown as LeaseCommands;
}

/** The node id in a lease value. */
export function leaseHolder(value: string): string {
  return value.slice(0, value.lastIndexOf(':'));
}

/** Options of {@link TaskLease}. */
export interface TaskLeaseOptions {
  readonly redis: Redis;
  readonly key: string;
  readonly fenceKey: string;
  readonly nodeId: string;
  /** How long the key lives without a renewal (default 3,000 ms). */
  readonly ttlMs?: number;
  readonly logger: Logger;
  /** This node took the lease; `value` is what its fenced writes carry. */
  readonly onAcquired: (value: string) => void;
  /** This node no longer holds the lease (renewal refused, or overdue). */
  readonly onLost: (reason: string) => void;
}

/** One task's lease as seen from one node; see the module comment. */
export class TaskLease {
  private readonly ttlMs: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private inFlight = false;
  private held: string | null = null;
  /** When the request in flight was sent (monotonic ms). */
  private sentAt = 0;
  /** The lease value last seen in Redis (this node's or another's), null when none. */
  private seen: string | null = null;

  constructor(private readonly options: TaskLeaseOptions) {
    this.ttlMs = options.ttlMs ?? 3000;
    commands(options.redis);
  }

  /** This node's lease value while it leads, else null. */
  get value(): string | null {
    return this.held;
  }

  /** The node that held the lease when last seen (this one while it leads), or null. */
  get holder(): string | null {
    if (this.held) return this.options.nodeId;
    return this.seen === null ? null : leaseHolder(this.seen);
  }

  /** Reads the holder from Redis now (a node whose relay to the last seen holder failed asks again). */
  async refreshHolder(): Promise<string | null> {
    if (this.held) return this.options.nodeId;
    this.seen = await this.options.redis.get(this.options.key);
    return this.holder;
  }

  /** Starts trying to take (or keep) the lease. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.tick();
  }

  /** Stops, and gives the lease up if held so another node can take it at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const held = this.held;
    if (held) {
      this.lose('released');
      await commands(this.options.redis)
        .chorusLeaseRelease(this.options.key, held)
        .catch(() => 0);
    }
  }

  /** Gives up leading at once (a fenced write was refused: another node holds the lease); taking it again is tried as usual. */
  relinquish(reason: string): void {
    this.lose(reason);
  }

  private tick(): void {
    const now = performance.now();
    if (this.inFlight) {
      // Unanswered for the TTL: cut off from Redis. Decided after pending I/O (setImmediate), so an
      // answer that arrived while the event loop was busy is read first.
      if (this.held && now - this.sentAt > this.ttlMs) {
        const held = this.held;
        const sentAt = this.sentAt;
        setImmediate(() => {
          if (this.inFlight && this.held === held && this.sentAt === sentAt) this.lose('no answer from Redis within the lease time');
        });
      }
      return;
    }
    this.inFlight = true;
    this.sentAt = now;
    const { redis, key, fenceKey, nodeId, logger } = this.options;
    const c = commands(redis);
    const held = this.held;
    const request = held
      ? c.chorusLeaseRenew(key, fenceKey, held, this.ttlMs).then((ok) => {
          if (this.held !== held) return;
          if (ok !== 1) this.lose('lease taken by another node');
        })
      : c.chorusLeaseAcquire(key, fenceKey, nodeId, this.ttlMs).then(([got, value]) => {
          this.seen = value;
          if (got !== 1 || !this.timer) {
            // Taken after stop(): give it straight back.
            if (got === 1) void c.chorusLeaseRelease(key, value).catch(() => 0);
            return;
          }
          this.held = value;
          logger.info({ lease: key, value }, 'lease acquired');
          this.options.onAcquired(value);
        });
    request
      .catch((err: unknown) => logger.debug({ err, lease: key }, 'lease request failed'))
      .finally(() => {
        this.inFlight = false;
      });
  }

  private lose(reason: string): void {
    if (!this.held) return;
    this.options.logger.warn({ lease: this.options.key, value: this.held, reason }, 'lease lost');
    this.held = null;
    this.seen = null;
    this.options.onLost(reason);
  }
}
