/**
 * A task's quotas of new identities counted in Redis, so every node of a cluster draws on the same
 * buckets: a task admits its `burst` of new identities however many nodes serve it.
 *
 * Each bucket is one hash (`tokens`, `at`: the level and when it was last brought up to date, in
 * Redis's milliseconds) updated by one Lua script, so a check and a take over the task's bucket and
 * the address's are one atomic step: when two nodes ask for the last place at once, one gets it.
 * The refill is `TokenBucket`'s (security/rateLimit.ts: capacity `burst`, `perHour / 3600` tokens a second, a clock
 * that steps backwards mints nothing), on Redis's clock (`TIME`) so the nodes' clocks need not
 * agree. A bucket lives only until it would be full again (its TTL): a full bucket and no bucket
 * are the same, so per-address keys do not pile up. The buckets persist with Redis, so restarting
 * every node does not refill them.
 */
import type { Redis } from 'ioredis';
import type { TaskConfig } from '@chorus/protocol';
import { IDENTITY_REFUSALS, identityBuckets } from '../security/admission.js';
import type { IdentityQuota, Refusal } from '../security/admission.js';
import type { TokenBucketOptions } from '../security/rateLimit.js';
import { clusterKeys } from './replicatedStore.js';

// KEYS: the buckets. ARGV[1]: 'check', 'take' or 'give'; then each bucket's capacity and refill per ms.
// Returns 0 (allowed, and done unless 'check'), or the 1-based index of the first empty bucket (nothing changed).
const BUCKETS_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local mode = ARGV[1]
local levels, stamps = {}, {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local level, at = capacity, now
  if state[1] and state[2] then
    local before = tonumber(state[2])
    level = math.min(capacity, tonumber(state[1]) + math.max(0, now - before) * rate)
    at = math.max(before, now)
  end
  if mode ~= 'give' and level < 1 then return i end
  levels[i], stamps[i] = level, at
end
if mode == 'check' then return 0 end
local step = 1
if mode == 'take' then step = -1 end
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local level = math.min(capacity, levels[i] + step)
  if level >= capacity then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'tokens', string.format('%.17g', level), 'at', string.format('%.17g', stamps[i]))
    redis.call('PEXPIRE', key, string.format('%.0f', math.ceil((capacity - level) / rate)))
  end
end
return 0
`;

type Mode = 'check' | 'take' | 'give';

interface BucketCommands {
  chorusIdentityBuckets(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
}

/** Registers the bucket script on a connection (idempotent). */
function commands(redis: Redis): BucketCommands {
  const r = redis as Redis & Partial<BucketCommands>;
  // No numberOfKeys: a call names one bucket or two, and passes the count first.
  if (!r.chorusIdentityBuckets) redis.defineCommand('chorusIdentityBuckets', { lua: BUCKETS_SCRIPT });
  return r as unknown as BucketCommands;
}

/** Options of {@link RedisIdentityLimiter}. */
export interface RedisIdentityLimiterOptions {
  /** The cluster's command connection. */
  readonly redis: Redis;
  /** The cluster's key prefix (`chorus:` by default). */
  readonly prefix: string;
  readonly taskId: string;
  readonly admission: TaskConfig['admission'];
}

/** {@link IdentityQuota} in Redis: one task's quotas shared by every node of a cluster (see the module comment). */
export class RedisIdentityLimiter implements IdentityQuota {
  private readonly redis: Redis;
  private readonly keys: ReturnType<typeof clusterKeys>;
  private readonly taskId: string;
  private readonly perTask: TokenBucketOptions | null;
  private readonly perAddress: TokenBucketOptions | null;

  constructor(options: RedisIdentityLimiterOptions) {
    this.redis = options.redis;
    this.keys = clusterKeys(options.prefix);
    this.taskId = options.taskId;
    ({ perTask: this.perTask, perAddress: this.perAddress } = identityBuckets(options.admission));
    commands(options.redis);
  }

  check(address: string, openLink: boolean): Promise<Refusal | null> {
    return this.run('check', address, openLink);
  }

  take(address: string, openLink: boolean): Promise<Refusal | null> {
    return this.run('take', address, openLink);
  }

  async giveBack(address: string, openLink: boolean): Promise<void> {
    await this.run('give', address, openLink);
  }

  private async run(mode: Mode, address: string, openLink: boolean): Promise<Refusal | null> {
    const buckets: { key: string; options: TokenBucketOptions; refusal: Refusal }[] = [];
    if (this.perTask) buckets.push({ key: this.keys.identities(this.taskId), options: this.perTask, refusal: IDENTITY_REFUSALS.task });
    if (openLink && this.perAddress)
      buckets.push({ key: this.keys.identities(this.taskId, address), options: this.perAddress, refusal: IDENTITY_REFUSALS.address });
    if (buckets.length === 0) return null;
    const empty = await commands(this.redis).chorusIdentityBuckets(
      buckets.length,
      ...buckets.map((b) => b.key),
      mode,
      ...buckets.flatMap((b) => [b.options.capacity, b.options.refillPerSecond / 1000]),
    );
    if (empty === 0) return null;
    const bucket = buckets[empty - 1];
    if (!bucket) throw new Error(`RedisIdentityLimiter: the bucket script answered ${empty} for ${buckets.length} buckets`);
    return bucket.refusal;
  }
}
