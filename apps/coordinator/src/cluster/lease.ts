/**
 * Which node leads a task's rounds: whoever holds the task's lease key in Redis.
 *
 * The lease value is `<nodeId>:<fencing token>`, the token a counter that grows with every
 * acquisition, so each term of leadership has a value no other term had. The holder renews it every
 * `ttlMs / 3`; a node that does not hold it tries to take it as often. When the holder dies or is cut
 * off from Redis, the key expires after at most `ttlMs` and another node takes it within one more
 * try: failover is bounded by `ttlMs + ttlMs / 3` plus the new leader's start-up.
 *
 * A holder that cannot renew treats the lease as lost once `ttlMs` minus a safety margin has passed
 * since the last renewal it *sent* (Redis started the key's timer no earlier than that), so it stops
 * leading before anyone else can start. Its writes are fenced as well (replicatedStore.ts), which
 * keeps the log right even if its clock or scheduler stalls.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

const ACQUIRE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
`;
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
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
  chorusLeaseRenew(key: string, value: string, ttlMs: number): Promise<number>;
  chorusLeaseRelease(key: string, value: string): Promise<number>;
}

/** Registers the lease scripts on a connection (idempotent). */
function commands(redis: Redis): LeaseCommands {
  const r = redis as Redis & Partial<LeaseCommands>;
  if (!r.chorusLeaseAcquire) {
    redis.defineCommand('chorusLeaseAcquire', { numberOfKeys: 2, lua: ACQUIRE_SCRIPT });
    redis.defineCommand('chorusLeaseRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT });
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
  /** When the holder must consider the lease gone without a successful renewal (monotonic ms). */
  private validUntil = 0;
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
    if (this.held && now > this.validUntil) this.lose('lease not renewed in time');
    if (this.inFlight) return;
    this.inFlight = true;
    const sentAt = now;
    const { redis, key, fenceKey, nodeId, logger } = this.options;
    const c = commands(redis);
    const held = this.held;
    const request = held
      ? c.chorusLeaseRenew(key, held, this.ttlMs).then((ok) => {
          if (this.held !== held) return;
          if (ok === 1) this.validUntil = sentAt + this.ttlMs * 0.8;
          else this.lose('lease taken by another node');
        })
      : c.chorusLeaseAcquire(key, fenceKey, nodeId, this.ttlMs).then(([got, value]) => {
          this.seen = value;
          if (got !== 1 || !this.timer) {
            // Taken after stop(): give it straight back.
            if (got === 1) void c.chorusLeaseRelease(key, value).catch(() => 0);
            return;
          }
          this.held = value;
          this.validUntil = sentAt + this.ttlMs * 0.8;
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
