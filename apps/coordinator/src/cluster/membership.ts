/**
 * Who is connected where: each node's joined clients of each task, kept in Redis for the task's
 * leader, which makes its waiting room the clients of every live node (server.ts's reconciliation).
 *
 * A node keeps, per task, a hash of its joined clients (`<prefix>members:<task>:<node>`, client id
 * → capabilities as JSON) and a log of the joins and leaves since the hash was last written whole
 * (`…:<node>:log`); each join or leave updates both and bumps the node's version
 * (`<prefix>members:<task>`, node → version) in one MULTI. Writing the hash whole (before the node
 * serves the task, after Redis comes back, or when the log grows past {@link LOG_LIMIT}) empties
 * the log and gives the node a new epoch (`<prefix>members:<task>:epochs`). The leader reads the
 * versions and epochs, and from a node whose version moved it reads only the log entries it has
 * not applied, or the whole hash after a new epoch: a reconciliation costs it the changes since
 * the last one, however many clients are connected. (socket.io's `fetchSockets` sent every socket
 * of every node, with its handshake, to the leader at every reconciliation.)
 *
 * A node counts as live while it listens on its relay channel (`<prefix>node:<node>`, relay.ts):
 * Redis drops a dead connection's subscriptions at once, so a killed node's clients leave the
 * waiting room at the next reconciliation. A leader deletes the records of a node that is not
 * live and has not announced itself for {@link PRUNE_AFTER_MS} (cluster.ts's node registry), so
 * records of nodes gone for good do not pile up.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { capabilitiesSchema } from '@chorus/protocol';
import type { Capabilities } from '@chorus/protocol';
import { clusterKeys } from './replicatedStore.js';

/** How long a node that is not live must have been silent in the node registry before its records are deleted. */
export const PRUNE_AFTER_MS = 60_000;

/** Log entries past which a node writes its hash whole again (and empties its log). */
export const LOG_LIMIT = 10_000;

/** Redis keys of the membership of one task. */
function memberKeys(prefix: string, taskId: string) {
  return {
    versions: `${prefix}members:${taskId}`,
    epochs: `${prefix}members:${taskId}:epochs`,
    of: (nodeId: string) => `${prefix}members:${taskId}:${nodeId}`,
    log: (nodeId: string) => `${prefix}members:${taskId}:${nodeId}:log`,
  };
}

/** A log entry: a join with its capabilities, or a leave. */
type LogEntry = readonly ['+', string, Capabilities] | readonly ['-', string];

const clientIdSchema = z.string().min(1);
const logEntrySchema = z.union([z.tuple([z.literal('+'), clientIdSchema, capabilitiesSchema]), z.tuple([z.literal('-'), clientIdSchema])]);

/** `json` read as `schema`, or null when it is not JSON or does not match. */
function parsed<T>(schema: z.ZodType<T>, json: string): T | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const result = schema.safeParse(value);
  return result.success ? result.data : null;
}

/** One node's writes of its joined clients. */
export class Membership {
  /**
   * @param localMembers this node's joined clients of a task, written whole when the task's log
   *   grows past `logLimit` entries (default {@link LOG_LIMIT}).
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly localMembers: (taskId: string) => ReadonlyMap<string, Capabilities>,
    private readonly logLimit = LOG_LIMIT,
  ) {}

  /** Records that `clientId` joined `taskId` on this node (written in order with this node's other membership writes). */
  add(taskId: string, clientId: string, capabilities: Capabilities): Promise<unknown> {
    const keys = memberKeys(this.prefix, taskId);
    const entry: LogEntry = ['+', clientId, capabilities];
    return this.logged(
      taskId,
      this.redis.multi().hset(keys.of(this.nodeId), clientId, JSON.stringify(capabilities)).rpush(keys.log(this.nodeId), JSON.stringify(entry)),
    );
  }

  /** Records that `clientId` left `taskId` on this node. */
  remove(taskId: string, clientId: string): Promise<unknown> {
    const keys = memberKeys(this.prefix, taskId);
    const entry: LogEntry = ['-', clientId];
    return this.logged(taskId, this.redis.multi().hdel(keys.of(this.nodeId), clientId).rpush(keys.log(this.nodeId), JSON.stringify(entry)));
  }

  /** Replaces this node's record of `taskId` with `members` (empty: before the node serves the task), in a new epoch with an empty log. */
  replace(taskId: string, members: ReadonlyMap<string, Capabilities>): Promise<unknown> {
    const keys = memberKeys(this.prefix, taskId);
    const tx = this.redis.multi().del(keys.of(this.nodeId)).del(keys.log(this.nodeId));
    if (members.size > 0) tx.hset(keys.of(this.nodeId), Object.fromEntries([...members].map(([id, c]) => [id, JSON.stringify(c)])));
    return tx.hset(keys.epochs, this.nodeId, randomBytes(6).toString('hex')).hincrby(keys.versions, this.nodeId, 1).exec();
  }

  /** Bumps the version with a join's or leave's writes; writes the hash whole once the log is long. */
  private async logged(taskId: string, tx: ReturnType<Redis['multi']>): Promise<void> {
    const results = await tx.hincrby(memberKeys(this.prefix, taskId).versions, this.nodeId, 1).exec();
    const logLength = Number(results?.[1]?.[1] ?? 0);
    if (logLength > this.logLimit) await this.replace(taskId, this.localMembers(taskId));
  }
}

/** What changed in a leader's view since its last read. */
export interface MemberChanges {
  /** Clients that came to a live node, with their capabilities. */
  readonly joined: readonly (readonly [string, Capabilities])[];
  /** Clients that no live node holds any more. */
  readonly left: readonly string[];
  /** Every client joined on a live node (a client on two nodes at once: the last capabilities read). */
  readonly members: ReadonlyMap<string, Capabilities>;
  /**
   * Records this read could not use (not JSON, or not a join, a leave or capabilities as the
   * protocol has them): a log entry makes the view read that node's hash whole instead, and a
   * client whose hash field is malformed counts as not joined there.
   */
  readonly malformed: number;
}

/** What the view knows of one node. */
interface NodeRecord {
  readonly epoch: string;
  /** The node's version when its log was empty in this epoch: it is up to date at base + applied. */
  readonly base: number;
  applied: number;
  readonly members: Map<string, Capabilities>;
}

/** A task leader's view of every live node's joined clients, read incrementally. */
export class MemberView {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly present = new Map<string, Capabilities>();
  /** On how many live nodes each present client is. */
  private readonly refs = new Map<string, number>();
  /** The clients touched since the last read, and whether each was present then. */
  private before = new Map<string, boolean>();
  /** Malformed records met during the current read. */
  private malformed = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly taskId: string,
  ) {}

  /** Reads what changed on every node since the last read (the first read: every member, as joined). */
  async read(): Promise<MemberChanges> {
    this.malformed = 0;
    const keys = memberKeys(this.prefix, this.taskId);
    const [versionsReply, epochsReply] = (await this.redis.multi().hgetall(keys.versions).hgetall(keys.epochs).exec()) ?? [];
    const versions = (versionsReply?.[1] ?? {}) as Record<string, string>;
    const epochs = (epochsReply?.[1] ?? {}) as Record<string, string>;
    const ids = Object.keys(versions);
    const listening =
      ids.length === 0 ? [] : ((await this.redis.call('PUBSUB', 'NUMSUB', ...ids.map((id) => clusterKeys(this.prefix).node(id)))) as (string | number)[]);
    const dead: string[] = [];
    for (const [i, nodeId] of ids.entries()) {
      if (Number(listening[2 * i + 1]) === 0) {
        dead.push(nodeId);
        this.forget(nodeId);
        continue;
      }
      const known = this.nodes.get(nodeId);
      const version = Number(versions[nodeId]);
      if (known && known.epoch === (epochs[nodeId] ?? '')) {
        if (known.base + known.applied < version) await this.readLog(nodeId, known);
      } else await this.readWhole(nodeId);
    }
    // A node whose records were deleted (pruned by an earlier leader) while this view held them.
    for (const nodeId of [...this.nodes.keys()]) if (!(nodeId in versions)) this.forget(nodeId);
    if (dead.length > 0) await this.prune(keys, dead);
    const joined: [string, Capabilities][] = [];
    const left: string[] = [];
    for (const [clientId, was] of this.before) {
      const now = this.present.get(clientId);
      if (now && !was) joined.push([clientId, now]);
      else if (!now && was) left.push(clientId);
    }
    this.before = new Map();
    return { joined, left, members: this.present, malformed: this.malformed };
  }

  /**
   * Applies the node's log entries after those applied. A malformed entry leaves the node's state
   * unknown from the log, so its hash is read whole instead (the entries after it included).
   */
  private async readLog(nodeId: string, known: NodeRecord): Promise<void> {
    const raw = await this.redis.lrange(memberKeys(this.prefix, this.taskId).log(nodeId), known.applied, -1);
    const entries = raw.map((json) => parsed<LogEntry>(logEntrySchema, json));
    const bad = entries.filter((e) => e === null).length;
    if (bad > 0) {
      this.malformed += bad;
      await this.readWhole(nodeId);
      return;
    }
    for (const entry of entries as LogEntry[]) {
      if (entry[0] === '+') this.add(known, entry[1], entry[2]);
      else this.remove(known, entry[1]);
    }
    known.applied += entries.length;
  }

  /** Reads the node's hash, log length, version and epoch together, and moves its members to what the hash holds. */
  private async readWhole(nodeId: string): Promise<void> {
    const keys = memberKeys(this.prefix, this.taskId);
    const replies =
      (await this.redis.multi().hgetall(keys.of(nodeId)).llen(keys.log(nodeId)).hget(keys.versions, nodeId).hget(keys.epochs, nodeId).exec()) ?? [];
    const [hash, logLength, version, epoch] = replies.map((r) => r[1]) as [Record<string, string>, number, string | null, string | null];
    const record: NodeRecord = {
      epoch: epoch ?? '',
      base: Number(version ?? 0) - logLength,
      applied: logLength,
      members: this.nodes.get(nodeId)?.members ?? new Map(),
    };
    const held = new Map<string, Capabilities>();
    for (const [clientId, json] of Object.entries(hash)) {
      const capabilities = parsed<Capabilities>(capabilitiesSchema, json);
      if (capabilities) held.set(clientId, capabilities);
      else this.malformed++;
    }
    for (const clientId of [...record.members.keys()]) if (!held.has(clientId)) this.remove(record, clientId);
    for (const [clientId, capabilities] of held) this.add(record, clientId, capabilities);
    this.nodes.set(nodeId, record);
  }

  private add(node: NodeRecord, clientId: string, capabilities: Capabilities): void {
    if (!this.before.has(clientId)) this.before.set(clientId, this.present.has(clientId));
    if (!node.members.has(clientId)) this.refs.set(clientId, (this.refs.get(clientId) ?? 0) + 1);
    node.members.set(clientId, capabilities);
    this.present.set(clientId, capabilities);
  }

  private remove(node: NodeRecord, clientId: string): void {
    if (!node.members.has(clientId)) return;
    if (!this.before.has(clientId)) this.before.set(clientId, this.present.has(clientId));
    node.members.delete(clientId);
    const refs = (this.refs.get(clientId) ?? 1) - 1;
    if (refs > 0) {
      this.refs.set(clientId, refs);
      return;
    }
    this.refs.delete(clientId);
    this.present.delete(clientId);
  }

  /** Drops a node's members (it died, or its records are gone). */
  private forget(nodeId: string): void {
    const known = this.nodes.get(nodeId);
    if (!known) return;
    for (const clientId of [...known.members.keys()]) this.remove(known, clientId);
    this.nodes.delete(nodeId);
  }

  /** Deletes the records of the dead nodes silent in the node registry for longer than {@link PRUNE_AFTER_MS}. */
  private async prune(keys: ReturnType<typeof memberKeys>, dead: readonly string[]): Promise<void> {
    const announced = await this.redis.hmget(clusterKeys(this.prefix).nodes, ...dead);
    const now = Date.now();
    for (const [i, nodeId] of dead.entries()) {
      const json = announced[i];
      const seenAt = json ? Number((JSON.parse(json) as { seenAt?: unknown }).seenAt) : NaN;
      if (Number.isFinite(seenAt) && now - seenAt <= PRUNE_AFTER_MS) continue;
      await this.redis.multi().del(keys.of(nodeId)).del(keys.log(nodeId)).hdel(keys.versions, nodeId).hdel(keys.epochs, nodeId).exec();
    }
  }
}
