/**
 * Reads of a task's upload and trust records over every round, whichever store holds them: from
 * the store's {@link StoreHistory} where it keeps one (a cluster node's replica keeps only the
 * latest rounds), else from the store's lists.
 */
import type { CoordinatorStore, TrustRecord, UpdateRecord } from './types.js';

/** Upload records of the run (absent: the current one), of one round or all, in the order written. */
export function readUpdates(store: CoordinatorStore, taskId: string, serverRound?: number, run?: number): Promise<UpdateRecord[]> {
  return store.history ? store.history.updates(taskId, serverRound, run) : Promise.resolve(store.listUpdates(taskId, serverRound, run));
}

/** Trust records of the run (absent: the current one), in the order written. */
export function readTrust(store: CoordinatorStore, taskId: string, run?: number): Promise<TrustRecord[]> {
  return store.history ? store.history.trust(taskId, run) : Promise.resolve(store.listTrust(taskId, run));
}
