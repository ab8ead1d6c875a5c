/**
 * The global model a round started from, as a cluster node that does not lead the task holds it:
 * the checkpoint of the round before, from this node's replica of the store (synced once when it is
 * not there yet), and uploads checked against it there. Rounds are sequential, so the last one
 * decoded is kept.
 */
import type { Parameters } from '@chorus/fl-core';
import type { ParsedUpdate, TaskConfig } from '@chorus/protocol';
import { fastCrc32 } from '../codec/fastCrc32.js';
import { decodeGlobal } from '../engine/checkpoint.js';
import { validateUpdate } from '../engine/validateUpdate.js';
import type { ValidUpdate } from '../engine/validateUpdate.js';
import type { StoredStrategyState } from '../store/types.js';
import type { ReplicatedStore } from './replicatedStore.js';

/** A decoded global model, the hash of its checkpoint, and the strategy's state stored with it. */
export interface ReplicaGlobalModel {
  readonly sha256: string;
  readonly tensors: Parameters;
  readonly strategyState: StoredStrategyState | null;
}

/** One task's round globals on this node; see the module comment. */
export class ReplicaGlobal {
  private cached: ReplicaGlobalModel | null = null;

  constructor(
    private readonly taskId: string,
    private readonly store: Pick<ReplicatedStore, 'getCheckpoint' | 'sync'>,
  ) {}

  /**
   * A task's upload arriving at this node, checked and decoded as the leader would against the
   * global its round started from; null when this node's replica lacks that global or the upload
   * fails a check (the leader then judges it whole).
   */
  async validate(
    task: TaskConfig,
    clientId: string,
    update: ParsedUpdate,
    modalities: readonly string[],
  ): Promise<{ readonly global: ReplicaGlobalModel; readonly valid: ValidUpdate } | null> {
    const global = await this.of(update.serverRound);
    if (!global) return null;
    try {
      const valid = validateUpdate(update.update, {
        taskId: task.id,
        serverRound: update.serverRound,
        clientId,
        modalities,
        global: global.tensors,
        maxUpdateBytes: task.maxUpdateBytes,
        normBound: task.normBound,
        crc32: fastCrc32,
      });
      return { global, valid };
    } catch {
      return null;
    }
  }

  /** The global round `serverRound` started from, or null when this node's replica does not hold it. */
  async of(serverRound: number): Promise<ReplicaGlobalModel | null> {
    let checkpoint = this.store.getCheckpoint(this.taskId, serverRound - 1);
    if (!checkpoint) {
      await this.store.sync();
      checkpoint = this.store.getCheckpoint(this.taskId, serverRound - 1);
    }
    if (!checkpoint) return null;
    if (this.cached?.sha256 !== checkpoint.sha256)
      this.cached = { sha256: checkpoint.sha256, tensors: decodeGlobal(checkpoint.bytes), strategyState: checkpoint.strategyState };
    return this.cached;
  }
}
