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
 * there and another node may hold it).
 *
 * A held lease is renewed from the main thread and also from a worker thread with a Redis
 * connection of its own, so a leader whose event loop is busy for longer than the TTL (a large
 * round's aggregation and probing, with other nodes and their evaluators sharing the cores) keeps
 * its lease while other nodes compete for it. The main thread sends the worker a heartbeat at every tick; a worker that has not heard
 * one for `stallMs` (default: 30 s or 3 × the TTL, whichever is longer) stops renewing, so a wedged
 * leader is replaced within `stallMs + ttlMs + ttlMs / 3`. Taking the lease stays on the main thread:
 * a node too busy to lead does not take a task. Should a holder's key lapse anyway, its next renewal
 * sets it again in the same term when *no other node took the lease in between* (the fencing
 * counter still holds this term's token). Writes are fenced by the same rule (replicatedStore.ts),
 * so the log stays right however a holder's clock or scheduler stalls.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
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

/** How long a leader's event loop may stall before its lease stops being renewed, by default: 30 s or 3 × the TTL, whichever is longer. */
export function defaultStallMs(ttlMs: number): number {
  return Math.max(30_000, 3 * ttlMs);
}

/** Lua: takes the lease when nobody holds it (a new fencing token); returns `{taken, current value}`. */
export const ACQUIRE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
`;
/** Lua: keeps `value`'s lease for another TTL; 1 when held. */
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
  /** How long the main thread may go without a heartbeat before renewals stop (default max(30 s, 3 × ttlMs)). */
  readonly stallMs?: number;
  readonly logger: Logger;
  /** This node took the lease; `value` is what its fenced writes carry. */
  readonly onAcquired: (value: string) => void;
  /** This node no longer holds the lease (renewal refused, or overdue). */
  readonly onLost: (reason: string) => void;
}

/**
 * The renewer's code, run as a worker thread (plain CommonJS, so it needs no TypeScript loader): it
 * renews the value it was told to hold every `ttlMs / 3` while the main thread's heartbeats keep
 * coming. It decides nothing: a renewal Redis refuses ends its renewals of that value, one left
 * unanswered for the TTL is abandoned, and the main thread's own renewals tell it the lease is lost.
 */
const RENEWER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ioredis = require(workerData.ioredis);
const Redis = ioredis.default || ioredis;
const { key, fenceKey, ttlMs, stallMs, renewLua, connection } = workerData;
const redis = new Redis({ ...connection, maxRetriesPerRequest: null });
redis.on('error', () => undefined);
redis.once('ready', () => parentPort.postMessage({ type: 'ready' }));
redis.defineCommand('chorusLeaseRenew', { numberOfKeys: 2, lua: renewLua });
let held = null;
let lastBeat = performance.now();
let request = 0;
let inFlight = false;
let sentAt = 0;
const timer = setInterval(() => {
  if (held === null) return;
  const now = performance.now();
  if (inFlight) {
    if (now - sentAt > ttlMs) {
      inFlight = false;
      request += 1;
    }
    return;
  }
  // The main thread has stalled for too long: the lease is left to lapse.
  if (now - lastBeat > stallMs) return;
  const value = held;
  const id = ++request;
  inFlight = true;
  sentAt = now;
  redis
    .chorusLeaseRenew(key, fenceKey, value, ttlMs)
    .then((ok) => {
      if (request === id && held === value && ok !== 1) held = null;
    })
    .catch(() => undefined)
    .finally(() => {
      if (request === id) inFlight = false;
    });
}, Math.max(50, Math.floor(ttlMs / 3)));
parentPort.on('message', (message) => {
  if (message.type === 'beat') lastBeat = performance.now();
  else if (message.type === 'hold') {
    held = message.value;
    lastBeat = performance.now();
    inFlight = false;
    request += 1;
  } else if (message.type === 'stop') {
    clearInterval(timer);
    held = null;
    redis.quit().catch(() => undefined).finally(() => parentPort.postMessage({ type: 'stopped' }));
  }
});
`;

/** What the renewer posts. */
type RenewerMessage = { readonly type: 'ready' } | { readonly type: 'stopped' };

const IOREDIS_ENTRY = createRequire(import.meta.url).resolve('ioredis');

/** One task's lease as seen from one node; see the module comment. */
export class TaskLease {
  private readonly ttlMs: number;
  private readonly stallMs: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private inFlight = false;
  private held: string | null = null;
  /** When the request in flight was sent (monotonic ms). */
  private sentAt = 0;
  /** The lease value last seen in Redis (this node's or another's), null when none. */
  private seen: string | null = null;
  private renewer: Worker | null = null;
  private markReady: () => void = () => undefined;
  private readonly ready = new Promise<void>((resolve) => (this.markReady = resolve));

  constructor(private readonly options: TaskLeaseOptions) {
    this.ttlMs = options.ttlMs ?? 3000;
    this.stallMs = options.stallMs ?? defaultStallMs(this.ttlMs);
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

  /** Resolves once the worker thread's renewals can run (its Redis connection is up): from then on a busy event loop keeps the lease. */
  renewerReady(): Promise<void> {
    return this.ready;
  }

  /** Starts trying to take (or keep) the lease. */
  start(): void {
    if (this.timer) return;
    this.startRenewer();
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.tick();
  }

  /** Stops, and gives the lease up if held so another node can take it at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const held = this.held;
    if (held) this.lose('released');
    await this.stopRenewer();
    if (held) {
      await commands(this.options.redis)
        .chorusLeaseRelease(this.options.key, held)
        .catch(() => 0);
    }
  }

  /** Gives up leading at once (a fenced write was refused: another node holds the lease); taking it again is tried as usual. */
  relinquish(reason: string): void {
    this.lose(reason);
  }

  private startRenewer(): void {
    const { host, port, path, db, username, password, family } = this.options.redis.options;
    const renewer = new Worker(RENEWER_SOURCE, {
      eval: true,
      // The renewer holds one connection and a timer: a small heap saves the leader about 7 MB of
      // RSS against V8's defaults (measured with ioredis loaded, as here).
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      workerData: {
        ioredis: IOREDIS_ENTRY,
        key: this.options.key,
        fenceKey: this.options.fenceKey,
        ttlMs: this.ttlMs,
        stallMs: this.stallMs,
        renewLua: RENEW_SCRIPT,
        connection: { host, port, path, db, username, password, family },
      },
    });
    renewer.unref();
    renewer.on('message', (message: RenewerMessage) => {
      if (message.type === 'ready') this.markReady();
    });
    renewer.on('error', (err) => {
      this.options.logger.error({ err, lease: this.options.key }, 'the lease renewer failed');
      if (this.renewer !== renewer) return;
      this.renewer = null;
      this.lose('the lease renewer failed');
      if (this.timer) this.startRenewer();
    });
    this.renewer = renewer;
  }

  private async stopRenewer(): Promise<void> {
    const renewer = this.renewer;
    if (!renewer) return;
    this.renewer = null;
    await new Promise<void>((resolve) => {
      const done = setTimeout(resolve, 1000);
      renewer.on('message', (message: RenewerMessage) => {
        if (message.type !== 'stopped') return;
        clearTimeout(done);
        resolve();
      });
      renewer.postMessage({ type: 'stop' });
    });
    await renewer.terminate();
  }

  private tick(): void {
    const now = performance.now();
    // The renewer keeps the lease while these heartbeats come, however long this thread is busy between them.
    if (this.held) this.renewer?.postMessage({ type: 'beat' });
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
    const { redis, key, fenceKey, logger } = this.options;
    const c = commands(redis);
    const held = this.held;
    // This thread renews too (the renewer may still be starting, or have failed); both are the same idempotent script.
    const request = held
      ? c.chorusLeaseRenew(key, fenceKey, held, this.ttlMs).then((ok) => {
          if (this.held !== held) return;
          if (ok !== 1) this.lose('lease taken by another node');
        })
      : this.acquire(c);
    request
      .catch((err: unknown) => logger.debug({ err, lease: key }, 'lease request failed'))
      .finally(() => {
        this.inFlight = false;
      });
  }

  private acquire(c: LeaseCommands): Promise<void> {
    const { key, fenceKey, nodeId, logger } = this.options;
    return c.chorusLeaseAcquire(key, fenceKey, nodeId, this.ttlMs).then(([got, value]) => {
      this.seen = value;
      if (got !== 1 || !this.timer) {
        // Taken after stop(): give it straight back.
        if (got === 1) void c.chorusLeaseRelease(key, value).catch(() => 0);
        return;
      }
      this.held = value;
      this.renewer?.postMessage({ type: 'hold', value });
      logger.info({ lease: key, value }, 'lease acquired');
      this.options.onAcquired(value);
    });
  }

  private lose(reason: string): void {
    if (!this.held) return;
    this.options.logger.warn({ lease: this.options.key, value: this.held, reason }, 'lease lost');
    this.held = null;
    this.seen = null;
    this.renewer?.postMessage({ type: 'hold', value: null });
    this.options.onLost(reason);
  }
}
