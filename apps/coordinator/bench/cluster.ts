/**
 * Cluster benchmark (not a test): coordinator nodes as separate processes on one redis-server
 * (src/testing/clusterFixture.ts, src/testing/redisServer.ts), clients in processes of their own
 * (bench/clusterSwarm.ts). Prints progress lines, then as its LAST line one JSON object:
 *
 *   max_clients_single_node — the baseline: one coordinator on SQLite, no Redis, the same harness;
 *   max_clients_{1,2,3}_nodes — most clients connected across 1, 2 and 3 nodes (spread evenly)
 *                      while FedAvg rounds of 200 run, with every node's RSS ≤ 300 MB; clients are
 *                      added in steps of --step, and after each step two rounds must complete;
 *                      `capacity_capped_at` says where the ramp stopped when no node reached the
 *                      limit (the client processes share this machine's 2 cores). Each step's line
 *                      gives every node's RSS and which node leads. The clients upload at once
 *                      (rounds back to back) unless --train-ms makes each wait that long after a
 *                      round start, as a client training locally would (`capacity_train_ms`);
 *   rss_mb_per_node_at_max_{k}_nodes — the largest node RSS at that point;
 *   round_s_600_fedmmx_{1,3}_nodes — median seconds from a round's start to its commit, the demo
 *                      task as shipped (FedMM-X trust, its real model probing every candidate in
 *                      the leader's evaluator), 600 clients per round;
 *   critical_path_ms_100_fedmmx — median over rounds of: last accepted upload received → the next
 *                      round opened, as the store recorded them (ms resolution), 100 clients, 1 node;
 *   probe_candidates_per_s — 1000 / the rounds' median `probeMsPerCandidate` (the leader's evaluator);
 *   leader_failover_s — leader SIGKILLed mid-task → the new leader's first write in the log (its
 *                      engine started from the last commit), with the default lease of 10 s
 *                      (expect TTL + TTL/3 at most); median of 3. The capacity and FedMM-X runs use
 *                      a 3 s lease. The FedMM-X rounds' clients send distinct seeded Gaussian deltas
 *                      (σ 0.01), the capacity runs' one constant delta.
 *
 * Connections come from one address, so the nodes' per-address connection limit is lifted here.
 *
 * --arrival-ab also runs the 3-node FedMM-X round with the nodes' probe on arrival off and then on,
 * adding `round_s_600_fedmmx_3_nodes_arrival_{off,on}`.
 *
 * --partial-ab runs FedAvg rounds on the demo model (no trust, no probation): 3 nodes relaying every
 * update to the leader, against 3 nodes each summing its own clients (`exactSum`, partial sums to
 * the leader), then 1 node with float and with exact sums, adding
 * `round_s_600_fedavg_{3_nodes_relayed,3_nodes_partial_sums,1_node_float,1_node_exact}` and the
 * matching `critical_path_ms_…` (last upload in → next round open), and for 3 nodes
 * `redis_in_kb_per_round_…`: the bytes Redis received per round (the log's writes, and the uploads
 * relayed to the leader or the nodes' partial sums), from its INFO counters.
 *
 * --capacity-nodes picks the capacity runs (default `single,1,2,3`).
 *
 * --hold K:N holds N clients on K nodes for --hold-s seconds (default 120), the capacity runs' task
 * and cadence, printing every node's RSS and the rounds completed every 10 s: what grows with the
 * rounds run rather than the clients held (`hold_rss_mb_…`, each node's readings), and what Redis
 * took in and sent out per round meanwhile (`hold_redis_{in,out}_kb_per_round`, from its INFO
 * counters: the log's writes and the nodes' reads of it, with the relayed uploads).
 *
 * Usage: pnpm bench:cluster [--quick] [--max N] [--step N] [--train-ms MS] [--capacity-nodes LIST] [--hold K:N] [--hold-s S] [--skip-capacity] [--skip-fedmmx] [--skip-failover] [--arrival-ab] [--partial-ab]
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { leaseHolder } from '../src/cluster/lease.js';
import { ReplicatedStore, clusterKeys, decodeEntry } from '../src/cluster/replicatedStore.js';
import { ADMIN_TOKEN, JOIN_TOKEN, NodeProcess } from '../src/testing/clusterFixture.js';
import type { NodeConfig } from '../src/testing/clusterFixture.js';
import { RedisServer } from '../src/testing/redisServer.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    max: { type: 'string', default: '6000' },
    step: { type: 'string', default: '750' },
    'skip-capacity': { type: 'boolean', default: false },
    'skip-fedmmx': { type: 'boolean', default: false },
    'skip-failover': { type: 'boolean', default: false },
    'arrival-ab': { type: 'boolean', default: false },
    'partial-ab': { type: 'boolean', default: false },
    hold: { type: 'string' },
    'hold-s': { type: 'string', default: '120' },
    'capacity-nodes': { type: 'string', default: 'single,1,2,3' },
    'train-ms': { type: 'string', default: '0' },
  },
});
const quick = values.quick;
const maxClients = quick ? 600 : Number(values.max);
const step = quick ? 300 : Number(values.step);
const trainMs = Number(values['train-ms']);
/** Refuses a flag's value that is not what the flag takes. */
function badFlag(message: string): never {
  process.stderr.write(`bench:cluster: ${message}\n`);
  process.exit(2);
}
if (!Number.isInteger(trainMs) || trainMs < 0) badFlag(`--train-ms must be an integer >= 0, got '${values['train-ms']}'`);
const capacityNodes = values['capacity-nodes'].split(',');
for (const k of capacityNodes) if (!['single', '1', '2', '3'].includes(k)) badFlag(`--capacity-nodes takes single,1,2,3 (comma-separated), got '${k}'`);
const hold = values.hold === undefined ? null : /^([1-9]\d*):([1-9]\d*)$/.exec(values.hold);
if (values.hold !== undefined && !hold) badFlag(`--hold takes K:N (nodes:clients, both integers >= 1), got '${values.hold}'`);
const holdS = Number(values['hold-s']);
if (!Number.isInteger(holdS) || holdS < 10) badFlag(`--hold-s must be an integer >= 10, got '${values['hold-s']}'`);
const DEMO_TASK = fileURLToPath(new URL('../tasks/demo-digits.yaml', import.meta.url));
const silent = pino({ level: 'silent' });
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** RSS of a live process in MB; NaN once it has exited. */
function rssMb(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return NaN;
  }
  const m = /VmRSS:\s+(\d+)/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A process of clients (bench/clusterSwarm.ts). */
class Swarm {
  private constructor(private readonly child: ChildProcess) {}
  /**
   * `noise`: each client's delta is seeded Gaussian noise of that σ (distinct candidates); absent,
   * one constant delta from all. `trainMs`: how long each client waits before it uploads.
   */
  static async start(urls: readonly string[], taskId: string, options: { readonly noise?: number; readonly trainMs?: number } = {}): Promise<Swarm> {
    const { noise, trainMs } = options;
    const config = {
      urls,
      taskId,
      token: JOIN_TOKEN,
      modalities: ['image', 'text', 'audio'],
      ...(noise === undefined ? {} : { noise, seed: 1 }),
      ...(trainMs ? { trainMs } : {}),
    };
    const child = fork(fileURLToPath(new URL('./clusterSwarm.ts', import.meta.url)), [], {
      execArgv: process.execArgv,
      env: { ...process.env, CHORUS_SWARM_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    return new Swarm(child);
  }
  add(n: number): Promise<{ connected: number; failed: number; firstError?: string }> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as { connected: number; failed: number; firstError?: string }));
      this.child.send({ add: n });
    });
  }
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

interface Cluster {
  readonly redis: RedisServer;
  readonly nodes: NodeProcess[];
  readonly store: ReplicatedStore;
  readonly conn: Redis;
  close(): Promise<void>;
}

const OPEN_LIMITS = { connections: { capacity: 1_000_000, refillPerSecond: 1_000_000 } };

async function startCluster(k: number, config: Omit<NodeConfig, 'redisUrl' | 'nodeId'>): Promise<Cluster> {
  const redis = await RedisServer.start();
  const nodes: NodeProcess[] = [];
  for (let i = 0; i < k; i++) nodes.push(await NodeProcess.spawn({ rateLimits: OPEN_LIMITS, ...config, redisUrl: redis.url, nodeId: `node${i + 1}` }));
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const reader = new Redis(redis.url, { maxRetriesPerRequest: null });
  const store = await ReplicatedStore.open({ redis: conn, reader, nodeId: 'bench', logger: silent });
  return {
    redis,
    nodes,
    store,
    conn,
    async close() {
      store.close();
      conn.disconnect();
      reader.disconnect();
      for (const n of nodes) await n.kill('SIGKILL');
      await redis.stop();
    },
  };
}

async function completed(c: Cluster, taskId: string, single = false): Promise<number> {
  if (single) {
    // No log to read: the node's own admin API.
    const res = await fetch(`${c.nodes[0]!.url}/api/tasks`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const body = (await res.json()) as { tasks: { engine: { completedRounds: number } | null }[] };
    return body.tasks[0]?.engine?.completedRounds ?? 0;
  }
  await c.store.sync();
  return c.store.latestCheckpoint(taskId)?.serverRound ?? 0;
}

async function waitRounds(c: Cluster, taskId: string, rounds: number, timeoutMs: number, single = false): Promise<boolean> {
  const start = await completed(c, taskId, single);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await completed(c, taskId, single)) >= start + rounds) return true;
    await sleep(200);
  }
  return false;
}

/** Clients k nodes (or one single node on SQLite) hold with rounds of 200 running and every node ≤ 300 MB. */
async function capacity(k: number, single = false): Promise<{ max: number; rss: number }> {
  const c = await startCluster(k, {
    single,
    task: {
      rounds: 10_000,
      clientsPerRound: 200,
      minClients: 100,
      roundDeadlineMs: 60_000,
      dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
    },
    leaseTtlMs: 3000,
    reconcileMs: Number(process.env['EXP_RECONCILE_MS'] ?? 1000),
  });
  const swarms: Swarm[] = [];
  let best = { max: 0, rss: 0 };
  try {
    let connected = 0;
    while (connected < maxClients) {
      // One client process per 2,000 clients keeps each under its own event-loop limit.
      if (swarms.length * 2000 <= connected)
        swarms.push(
          await Swarm.start(
            c.nodes.map((n) => n.url),
            'cluster',
            { trainMs },
          ),
        );
      const got = await swarms.at(-1)!.add(step);
      connected += step - got.failed;
      const ok = await waitRounds(c, 'cluster', 2, 120_000, single);
      // A node that exited (e.g. its heap reached its cap) ends the ramp: the step before is its capacity.
      const each = c.nodes.map((n) => rssMb(n.child.pid!));
      const exited = c.nodes.filter((n, i) => n.child.exitCode !== null || n.child.signalCode !== null || Number.isNaN(each[i]));
      if (exited.length > 0) {
        say(
          `capacity ${single ? 'single node (SQLite)' : `${k} node(s)`}: ${connected} clients, ${exited.map((n) => `${n.nodeId} exited (${n.child.exitCode ?? n.child.signalCode ?? 'gone'})`).join(', ')}`,
        );
        break;
      }
      const rss = Math.max(...each);
      const leader = single ? null : leaseHolder((await c.conn.get(clusterKeys('chorus:').lease('cluster'))) ?? '');
      const perNode = c.nodes.map((n, i) => `${n.nodeId}${n.nodeId === leader ? ' (leader)' : ''} ${each[i]!.toFixed(0)}`).join(', ');
      say(
        `capacity ${single ? 'single node (SQLite)' : `${k} node(s)`}: ${connected} clients, max node RSS ${rss.toFixed(0)} MB [${perNode}], rounds ${ok ? 'ok' : 'stalled'}${got.failed ? `, ${got.failed} refused (${got.firstError})` : ''}`,
      );
      if (!ok || rss > 300 || got.failed > 0) break;
      best = { max: connected, rss };
    }
  } finally {
    for (const s of swarms) s.kill();
    await c.close();
  }
  return best;
}

/**
 * Rounds of `clients` clients with the demo model: median round seconds, critical path and probe
 * rate. The demo's FedMM-X strategy unless `strategy` (and `probationRounds`) replace it.
 */
async function demoRounds(
  k: number,
  clients: number,
  rounds: number,
  probeOnArrival = true,
  strategy?: { readonly strategy: Record<string, unknown>; readonly probationRounds: number },
): Promise<{ roundS: number; criticalMs: number; probePerS: number; redisInKbPerRound: number }> {
  const c = await startCluster(k, {
    probeOnArrival,
    taskFile: DEMO_TASK,
    task: {
      ...(strategy ? { strategy: strategy.strategy } : {}),
      id: 'cluster',
      rounds: rounds + 1,
      clientsPerRound: clients,
      minClients: clients,
      waitingRoomMs: 0,
      // A lost upload (a leader hand-over) costs a retry, not a long wait.
      roundDeadlineMs: 60_000,
      runs: 'once',
      // Every client comes from this machine's one address, without proof of work.
      admission: {
        newIdentitiesPerAddress: null,
        newIdentitiesPerTask: null,
        proofOfWorkBits: 0,
        // The figures measure aggregation and probing as they were recorded before damping became a
        // default; damping needs every update at the leader, so it would also turn partial sums off.
        similarityDamping: false,
        ...(strategy ? { probationRounds: strategy.probationRounds } : {}),
      },
    },
    leaseTtlMs: 3000,
    reconcileMs: 500,
    relayTimeoutMs: 120_000,
  });
  // FedMM-X's rounds get distinct deltas (σ 0.01, as bench:coordinator's clients): identical candidates would share one probe pass.
  const swarm = await Swarm.start(
    c.nodes.map((n) => n.url),
    'cluster',
    strategy ? {} : { noise: 0.01 },
  );
  try {
    const redisIn = async (): Promise<number> => Number(/total_net_input_bytes:(\d+)/.exec(await c.conn.info('stats'))![1]);
    const joined = await swarm.add(clients);
    const inBefore = await redisIn();
    if (joined.failed > 0) throw new Error(`${k} node(s): ${joined.failed} clients refused (${joined.firstError})`);
    const ok = await waitRounds(c, 'cluster', rounds + 1, 600_000);
    if (!ok) throw new Error(`${k} node(s): rounds did not complete`);
    // Everything written to Redis while the rounds ran: the log's writes, and the uploads relayed (or the partial sums).
    const redisInKbPerRound = ((await redisIn()) - inBefore) / 1024 / (rounds + 1);
    const roundRecords = c.store.listRounds('cluster').filter((r) => r.status === 'completed');
    const updates = c.store.listUpdates('cluster');
    const metrics = c.store.listMetrics('cluster');
    // Round 1 includes the evaluator's start and is left out.
    const timed = roundRecords.filter((r) => r.serverRound >= 2);
    const roundS = median(timed.map((r) => (r.endedAt! - r.startedAt) / 1000));
    const critical = timed.map((r) => {
      const lastIn = Math.max(...updates.filter((u) => u.serverRound === r.serverRound - 1 && u.status === 'accepted').map((u) => u.receivedAt));
      return r.startedAt - lastIn;
    });
    const probe = median(metrics.filter((m) => m.serverRound >= 2).map((m) => m.metrics['probeMsPerCandidate'] ?? NaN));
    return { roundS, criticalMs: median(critical), probePerS: 1000 / probe, redisInKbPerRound };
  } finally {
    swarm.kill();
    await c.close();
  }
}

/** Leader SIGKILLed → the new leader's first entry in the log. */
async function failover(): Promise<number> {
  const c = await startCluster(3, {
    task: { rounds: 10_000, clientsPerRound: 12, minClients: 6, roundDeadlineMs: 10_000 },
    reconcileMs: 250,
  });
  const swarm = await Swarm.start(
    c.nodes.map((n) => n.url),
    'cluster',
  );
  try {
    await swarm.add(24);
    await waitRounds(c, 'cluster', 2, 60_000);
    const value = (await c.conn.get(clusterKeys('chorus:').lease('cluster')))!;
    const leader = leaseHolder(value);
    const lastId = ((await c.conn.xrevrange(clusterKeys('chorus:').log, '+', '-', 'COUNT', 1)) as [string, string[]][])[0]![0];
    const killed = Date.now();
    await c.nodes.find((n) => n.nodeId === leader)!.kill('SIGKILL');
    for (;;) {
      const after = (await c.conn.xrange(clusterKeys('chorus:').log, `(${lastId}`, '+')) as [string, string[]][];
      const first = after.map(([, f]) => decodeEntry(f[1]!)).find((e) => e.node !== leader && e.method !== 'createClient' && e.method !== 'touchClient');
      if (first) return (Date.now() - killed) / 1000;
      if (Date.now() - killed > 30_000) throw new Error('no new leader within 30 s');
      await sleep(20);
    }
  } finally {
    swarm.kill();
    await c.close();
  }
}

const result: Record<string, number | boolean | string | null> = { machine: '2-core CPU, WASM backend for the model' };
if (!values['skip-capacity']) {
  const which = capacityNodes;
  if (which.includes('single')) {
    const baseline = await capacity(1, true);
    result['max_clients_single_node'] = baseline.max;
    result['rss_mb_at_max_single_node'] = Math.round(baseline.rss);
  }
  for (const k of [1, 2, 3].filter((n) => which.includes(String(n)))) {
    const { max, rss } = await capacity(k);
    result[`max_clients_${k}_nodes`] = max;
    result[`rss_mb_per_node_at_max_${k}_nodes`] = Math.round(rss);
  }
  result['capacity_capped_at'] = maxClients;
  result['capacity_train_ms'] = trainMs;
}
if (!values['skip-fedmmx']) {
  const perRound = quick ? 100 : 600;
  const one = await demoRounds(1, perRound, quick ? 2 : 3);
  say(`fedmmx 1 node, ${perRound} clients: ${one.roundS.toFixed(1)} s/round, probe ${one.probePerS.toFixed(0)} candidates/s`);
  result[`round_s_${perRound}_fedmmx_1_nodes`] = one.roundS;
  result['probe_candidates_per_s'] = Math.round(one.probePerS);
  // Reported as null, with the reason, when the rounds did not complete (the run goes on to the next figure).
  const three = await demoRounds(3, perRound, quick ? 2 : 3).catch((err: unknown) => {
    say(`fedmmx 3 nodes: ${(err as Error).message}`);
    result[`round_s_${perRound}_fedmmx_3_nodes_error`] = (err as Error).message;
    return null;
  });
  if (three) say(`fedmmx 3 nodes, ${perRound} clients: ${three.roundS.toFixed(1)} s/round`);
  result[`round_s_${perRound}_fedmmx_3_nodes`] = three?.roundS ?? null;
  const hundred = quick ? one : await demoRounds(1, 100, 3);
  result['critical_path_ms_100_fedmmx'] = hundred.criticalMs;
}
if (values['arrival-ab']) {
  // The 3-node FedMM-X round with the nodes' probe on arrival off, then on (the default), in one run.
  const perRound = quick ? 100 : 600;
  for (const onArrival of [false, true]) {
    const r = await demoRounds(3, perRound, quick ? 2 : 3, onArrival).catch((err: unknown) => {
      say(`fedmmx 3 nodes, probe on arrival ${onArrival ? 'on' : 'off'}: ${(err as Error).message}`);
      return null;
    });
    if (r) say(`fedmmx 3 nodes, ${perRound} clients, probe on arrival ${onArrival ? 'on' : 'off'}: ${r.roundS.toFixed(1)} s/round`);
    result[`round_s_${perRound}_fedmmx_3_nodes_arrival_${onArrival ? 'on' : 'off'}`] = r?.roundS ?? null;
  }
}
if (hold) {
  // `--hold K:N`: K nodes hold N clients (the capacity runs' task and cadence) for --hold-s seconds;
  // every node's RSS and the rounds completed every 10 s show what grows with time, not clients.
  const [k, n] = [Number(hold[1]), Number(hold[2])];
  const c = await startCluster(k, {
    task: {
      rounds: 100_000,
      clientsPerRound: 200,
      minClients: 100,
      roundDeadlineMs: 60_000,
      dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
    },
    leaseTtlMs: 3000,
    reconcileMs: 1000,
  });
  const swarms: Swarm[] = [];
  try {
    for (let added = 0; added < n; added += 2000) {
      const swarm = await Swarm.start(
        c.nodes.map((x) => x.url),
        'cluster',
        { trainMs },
      );
      swarms.push(swarm);
      await swarm.add(Math.min(2000, n - added));
    }
    const rss: Record<string, number[]> = {};
    const net = async (): Promise<{ rounds: number; inBytes: number; outBytes: number }> => {
      const stats = await c.conn.info('stats');
      const counter = (name: string): number => Number(new RegExp(`${name}:(\\d+)`).exec(stats)![1]);
      return { rounds: await completed(c, 'cluster'), inBytes: counter('total_net_input_bytes'), outBytes: counter('total_net_output_bytes') };
    };
    const netBefore = await net();
    for (let t = 10; t <= holdS; t += 10) {
      await sleep(10_000);
      const leader = leaseHolder((await c.conn.get(clusterKeys('chorus:').lease('cluster'))) ?? '');
      const each = c.nodes.map((x) => rssMb(x.child.pid!));
      c.nodes.forEach((x, i) => (rss[x.nodeId] ??= []).push(Math.round(each[i]!)));
      say(
        `hold ${k} node(s), ${n} clients, ${t} s, round ${await completed(c, 'cluster')}: ${c.nodes.map((x, i) => `${x.nodeId}${x.nodeId === leader ? ' (leader)' : ''} ${each[i]!.toFixed(0)}`).join(', ')}`,
      );
    }
    result[`hold_rss_mb_${k}_nodes_${n}_clients`] = JSON.stringify(rss);
    const netAfter = await net();
    const perRound = (bytes: number): number | null =>
      netAfter.rounds > netBefore.rounds ? Math.round(bytes / 1024 / (netAfter.rounds - netBefore.rounds)) : null;
    result['hold_redis_in_kb_per_round'] = perRound(netAfter.inBytes - netBefore.inBytes);
    result['hold_redis_out_kb_per_round'] = perRound(netAfter.outBytes - netBefore.outBytes);
    say(`hold: Redis took in ${result['hold_redis_in_kb_per_round']} KB and sent ${result['hold_redis_out_kb_per_round']} KB per round`);
    result['hold_rounds'] = netAfter.rounds;
  } finally {
    for (const s of swarms) s.kill();
    await c.close();
  }
}
if (values['partial-ab']) {
  // FedAvg on the demo model, 3 nodes: every update relayed to the leader (float sums) against each
  // node summing its own clients (exact sums, partial sums to the leader), then one node for each.
  const perRound = quick ? 100 : 600;
  for (const [k, exactSum] of [
    [3, false],
    [3, true],
    [1, false],
    [1, true],
  ] as const) {
    const r = await demoRounds(k, perRound, quick ? 2 : 3, true, { strategy: { name: 'fedavg', exactSum }, probationRounds: 0 }).catch((err: unknown) => {
      say(`fedavg ${k} node(s), exactSum ${exactSum}: ${(err as Error).message}`);
      return null;
    });
    const name = `${perRound}_fedavg_${k === 1 ? `1_node_${exactSum ? 'exact' : 'float'}` : `${k}_nodes_${exactSum ? 'partial_sums' : 'relayed'}`}`;
    if (r) say(`fedavg ${k} node(s), ${perRound} clients, exactSum ${exactSum}: ${r.roundS.toFixed(2)} s/round, critical path ${r.criticalMs} ms`);
    result[`round_s_${name}`] = r?.roundS ?? null;
    result[`critical_path_ms_${name}`] = r?.criticalMs ?? null;
    if (k > 1) result[`redis_in_kb_per_round_${name}`] = r ? Math.round(r.redisInKbPerRound) : null;
  }
}
if (!values['skip-failover']) {
  const failovers: number[] = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) failovers.push(await failover());
  say(`failover: ${failovers.map((s) => s.toFixed(2)).join(', ')} s`);
  result['leader_failover_s'] = median(failovers);
}
say(JSON.stringify(result));
process.exit(0);
