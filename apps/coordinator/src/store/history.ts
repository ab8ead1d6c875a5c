/**
 * Reads of a task's round, upload, metrics and trust records over every round, whichever store
 * holds them: from the store's {@link StoreHistory} where it keeps one (a cluster node's replica
 * keeps only the latest rounds), else from the store's lists.
 */
import type { CoordinatorStore, RoundMetricsRecord, RoundRecord, TrustRecord, UpdateRecord } from './types.js';

/** Every attempt of the run (absent: the current one), by round then attempt. */
export function readRounds(store: CoordinatorStore, taskId: string, run?: number): Promise<RoundRecord[]> {
  return store.history ? store.history.rounds(taskId, run) : Promise.resolve(store.listRounds(taskId, run));
}

/** Upload records of the run (absent: the current one), of one round or all, in the order written. */
export function readUpdates(store: CoordinatorStore, taskId: string, serverRound?: number, run?: number): Promise<UpdateRecord[]> {
  return store.history ? store.history.updates(taskId, serverRound, run) : Promise.resolve(store.listUpdates(taskId, serverRound, run));
}

/** Metrics of the run's (absent: the current run's) committed rounds, by round. */
export function readMetrics(store: CoordinatorStore, taskId: string, run?: number): Promise<RoundMetricsRecord[]> {
  return store.history ? store.history.metrics(taskId, run) : Promise.resolve(store.listMetrics(taskId, run));
}

/** Trust records of the run (absent: the current one), in the order written. */
export function readTrust(store: CoordinatorStore, taskId: string, run?: number): Promise<TrustRecord[]> {
  return store.history ? store.history.trust(taskId, run) : Promise.resolve(store.listTrust(taskId, run));
}
