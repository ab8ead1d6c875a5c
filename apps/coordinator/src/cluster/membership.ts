/**
 * Who is connected where: each node's joined clients of each task, kept in Redis for the task's
 * leader, which makes its waiting room the clients of every live node (server.ts's reconciliation).
 *
 * A node writes its joined clients of a task to the hash `<prefix>members:<task>:<node>` (client id
 * → capabilities as JSON) and, in the same MULTI, bumps its field of `<prefix>members:<task>` (node
 * → version). The leader reads the versions and re-reads only the hashes whose version moved, so a
 * steady cluster costs it two small commands a reconciliation, however many clients are connected.
 * (socket.io's `fetchSockets` sent every socket of every node, with its handshake, to the leader at
 * every reconciliation.) A node counts as live while it listens on its relay channel
 * (`<prefix>node:<node>`, relay.ts): Redis drops a dead connection's subscriptions at once, so a
 * killed node's clients leave the waiting room at the next reconciliation.
 *
 * A node clears its own hash of a task before it serves it (a restarted node of the same id leaves
 * nothing behind), and writes it whole again after its connection to Redis comes back (a write the
 * restarted Redis lost is made again). A leader deletes the record of a node that is not live and
 * has not announced itself for {@link PRUNE_AFTER_MS} (cluster.ts's node registry), so records of
 * nodes gone for good do not pile up.
 */
import type { Redis } from 'ioredis';
import type { Capabilities } from '@chorus/protocol';
import { clusterKeys } from './replicatedStore.js';

/** How long a node that is not live must have been silent in the node registry before its record is deleted. */
export const PRUNE_AFTER_MS = 60_000;

/** Redis keys of the membership of one task. */
function memberKeys(prefix: string, taskId: string) {
  return {
    versions: `${prefix}members:${taskId}`,
    of: (nodeId: string) => `${prefix}members:${taskId}:${nodeId}`,
  };
}

/** One node's writes of its joined clients. */
export class Membership {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
  ) {}

  /** Records that `clientId` joined `taskId` on this node (written in order with this node's other membership writes). */
  add(taskId: string, clientId: string, capabilities: Capabilities): Promise<unknown> {
    const keys = memberKeys(this.prefix, taskId);
    return this.redis.multi().hset(keys.of(this.nodeId), clientId, JSON.stringify(capabilities)).hincrby(keys.versions, this.nodeId, 1).exec();
  }

  /** Records that `clientId` left `taskId` on this node. */
  remove(taskId: string, clientId: string): Promise<unknown> {
    const keys = memberKeys(this.prefix, taskId);
    return this.redis.multi().hdel(keys.of(this.nodeId), clientId).hincrby(keys.versions, this.nodeId, 1).exec();
  }

  /** Replaces this node's record of `taskId` with `members` (empty: before the node serves the task). */
  replace(taskId: string, members: ReadonlyMap<string, Capabilities>): Promise<unknown> {
    const keys = memberKeys(this.prefix, taskId);
    const tx = this.redis.multi().del(keys.of(this.nodeId));
    if (members.size > 0) tx.hset(keys.of(this.nodeId), Object.fromEntries([...members].map(([id, c]) => [id, JSON.stringify(c)])));
    return tx.hincrby(keys.versions, this.nodeId, 1).exec();
  }
}

/** A task leader's view of every live node's joined clients. */
export class MemberView {
  /** Each node's members as last read, with the version they were read at. */
  private readonly nodes = new Map<string, { readonly version: string; readonly members: ReadonlyMap<string, Capabilities> }>();
  /** The live nodes' versions at the last read, and the members read then. */
  private last: { readonly state: string; readonly members: ReadonlyMap<string, Capabilities> } | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly taskId: string,
  ) {}

  /**
   * The clients joined on live nodes, each with its capabilities (a client on two nodes at once:
   * either's), and whether anything changed since the last read: every join and leave on any node
   * bumps its version, so an unchanged view means no member came or went (the last map is returned).
   */
  async read(): Promise<{ readonly members: ReadonlyMap<string, Capabilities>; readonly changed: boolean }> {
    const keys = memberKeys(this.prefix, this.taskId);
    const versions = await this.redis.hgetall(keys.versions);
    const ids = Object.keys(versions);
    const listening =
      ids.length === 0 ? [] : ((await this.redis.call('PUBSUB', 'NUMSUB', ...ids.map((id) => clusterKeys(this.prefix).node(id)))) as (string | number)[]);
    const live: string[] = [];
    const dead: string[] = [];
    for (const [i, nodeId] of ids.entries()) (Number(listening[2 * i + 1]) === 0 ? dead : live).push(nodeId);
    const state = live.map((id) => `${id}=${versions[id]}`).join(',');
    if (dead.length > 0) await this.prune(keys, dead);
    if (this.last && state === this.last.state) return { members: this.last.members, changed: false };
    for (const nodeId of dead) this.nodes.delete(nodeId);
    const present = new Map<string, Capabilities>();
    for (const nodeId of live) {
      const version = versions[nodeId]!;
      let members = this.nodes.get(nodeId)?.version === version ? this.nodes.get(nodeId)!.members : null;
      if (!members) {
        const read = new Map<string, Capabilities>();
        for (const [clientId, json] of Object.entries(await this.redis.hgetall(keys.of(nodeId)))) read.set(clientId, JSON.parse(json) as Capabilities);
        this.nodes.set(nodeId, { version, members: read });
        members = read;
      }
      for (const [clientId, capabilities] of members) present.set(clientId, capabilities);
    }
    this.last = { state, members: present };
    return { members: present, changed: true };
  }

  /** Deletes the records of the dead nodes silent in the node registry for longer than {@link PRUNE_AFTER_MS}. */
  private async prune(keys: ReturnType<typeof memberKeys>, dead: readonly string[]): Promise<void> {
    const announced = await this.redis.hmget(clusterKeys(this.prefix).nodes, ...dead);
    const now = Date.now();
    for (const [i, nodeId] of dead.entries()) {
      const json = announced[i];
      const seenAt = json ? Number((JSON.parse(json) as { seenAt?: unknown }).seenAt) : NaN;
      if (Number.isFinite(seenAt) && now - seenAt <= PRUNE_AFTER_MS) continue;
      await this.redis.multi().del(keys.of(nodeId)).hdel(keys.versions, nodeId).exec();
    }
  }
}
