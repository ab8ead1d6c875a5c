/**
 * Pathological non-IID shards — McMahan, Moore, Ramage, Hampson & Agüera y Arcas 2017, arXiv:1602.05629.
 *
 * Sort the samples by label (ties by index), cut the sorted list into numClients·shardsPerClient
 * contiguous shards of near-equal size, shuffle the shards and deal shardsPerClient to each client,
 * so each client sees about shardsPerClient classes.
 */
import { shuffled, type Rng } from '../rng.js';
import { badConfig, checkInteger, indicesByLabel, range, sortClients, type ClientPartition } from './common.js';

/** Options of {@link shardPartition}. */
export interface ShardPartitionOptions {
  /** Number of clients (≥ 1). */
  readonly numClients: number;
  /** Shards dealt to each client (≥ 1); McMahan et al. use 2. */
  readonly shardsPerClient: number;
}

/** Sort-and-shard partition of the samples whose labels are given. */
export function shardPartition(rng: Rng, labels: ArrayLike<number>, options: ShardPartitionOptions): ClientPartition {
  const fn = 'shardPartition';
  const { numClients, shardsPerClient } = options;
  checkInteger(fn, 'numClients', numClients, 1);
  checkInteger(fn, 'shardsPerClient', shardsPerClient, 1);
  const numShards = numClients * shardsPerClient;
  if (numShards > labels.length) badConfig(fn, `${numShards} shards need at least as many samples, got ${labels.length}`);
  const sorted = indicesByLabel(fn, labels).flat();
  const order = shuffled(rng, range(numShards));
  const clients: number[][] = Array.from({ length: numClients }, () => []);
  order.forEach((shard, position) => {
    const start = Math.floor((shard * sorted.length) / numShards);
    const end = Math.floor(((shard + 1) * sorted.length) / numShards);
    const client = clients[Math.floor(position / shardsPerClient)]!;
    for (let i = start; i < end; i++) client.push(sorted[i]!);
  });
  return sortClients(clients);
}
