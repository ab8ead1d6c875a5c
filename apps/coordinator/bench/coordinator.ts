/**
 * Coordinator benchmark (not a test). Starts the coordinator as a separate process
 * (bench/coordinatorProcess.ts) and its clients in another (bench/benchClients.ts), so each
 * process's CPU is its own. The clients upload what real clients of the demo task upload: deltas
 * over the demo model's adapter tensors (37 tensors, 11,778 values; bench/demoAdapters.ts), encoded
 * as the task's `uploadEncoding` (fp16), with the metrics map packages/client reports. Prints
 * progress lines, then as its LAST line one JSON object:
 *
 *   critical_path_ms_100  — median over the timed rounds of: receipt of a round's last accepted
 *                           upload → the next round's start (the new global model) handed to the
 *                           last client's socket; measured inside the coordinator process at the
 *                           socket layer (see coordinatorProcess.ts), 100 clients, FedAvg;
 *   critical_path_ms_100_fedmmx — the same with the demo task as shipped: FedMM-X trust over FedAvg,
 *                           its real model in the evaluator process (a probe of the global and of
 *                           every candidate, and the evaluation of each new global model, both on
 *                           the critical path); with it `eval_ms_per_round` and `probe_ms_per_round`,
 *                           the medians of the `evalMs` and `probeMs` the coordinator stored for the
 *                           rounds whose ends those critical paths cover;
 *   coordinator_cpu_ms_per_round_100 — the coordinator process's process.cpuUsage() (user +
 *                           system) from the start of the first timed round to the start of the
 *                           round after the last, ÷ rounds;
 *   round_overhead_ms_100 — median over the same rounds of one round's start to the next's, as the
 *                           coordinator stored them (clients answer as soon as they have encoded);
 *   decode_ms_100x1m      — decoding 100 fp32 updates of 1 M parameters into an update arena with
 *                           the native CRC-32, through validateUpdate (bench/decode.ts, its own
 *                           process), with `decode_ms_100x1m_baseline` (decodeUpdate, portable
 *                           CRC-32, fresh arrays) from the same run beside it;
 *   rss_mb_total_fedavg_idle — RSS of the coordinator process plus every process under it (the
 *                           evaluator) for a FedAvg task read from a task file (the demo task with
 *                           `strategy: fedavg`), no clients, 5 s after it listens;
 *   max_clients           — most connected clients one coordinator process held, while running
 *                           rounds of 200, with its RSS ≤ 300 MB (connections are added in paced
 *                           steps; after each step at least two rounds must complete);
 *   rss_mb_at_max         — the coordinator's peak RSS during the rounds at max_clients.
 *
 * With --with-model, the capacity measurement runs a second time on a coordinator that serves the
 * demo task with its real model (bench/coordinatorProcess.ts `withModel`: TF.js on WASM, FedMM-X
 * probe of every candidate, evaluation of every new global model) and adds:
 *
 *   max_clients_with_model, rss_mb_at_max_with_model — as above, the coordinator process's RSS;
 *   evaluator_rss_mb, total_rss_mb — peak RSS of the evaluator process (which owns the model) and
 *                           peak of the two processes' sum, during the rounds at max_clients_with_model;
 *   rss_mb_idle_with_model, evaluator_rss_mb_idle — both once the model is built, no clients;
 *   event_loop_p99_ms_during_probe — the coordinator's event-loop delay while candidates are
 *                           probed (perf_hooks.monitorEventLoopDelay): the worst per-round p99 over
 *                           every round of the run; event_loop_max_ms_during_probe, the worst maximum.
 *
 * --model-only runs just that; --inline-model with either runs the model inside the coordinator
 * process instead (the layout before the evaluator process), for comparison. --skip-capacity leaves
 * out max_clients. --profile also records a V8 CPU profile of the coordinator over the timed rounds
 * and prints where its time went (bench/cpuProfileSummary.ts); the profiler's sampling adds a little
 * to the CPU figure of that run.
 *
 * --fedmmx-only measures just critical_path_ms_100_fedmmx. --probe-processes P[,P…] (default 1)
 * measures it with each number of evaluator processes sharing the probe (model/evaluatorPool.ts),
 * one after another in the same run, adding `critical_path_ms_100_fedmmx_probe_processes_P` and
 * `probe_ms_per_round_probe_processes_P` for each; the unsuffixed figures are the last P's.
 * --probe-on-arrival on,off (default on) also runs each P with the coordinator's probe on arrival
 * off (every candidate probed at the round's close), suffixing `_arrival_on` / `_arrival_off`.
 * --damping on,off (default on, the demo task's admission.similarityDamping) also runs each of those
 * with similarity damping off, suffixing `_damping_on` / `_damping_off`: what the default costs the
 * critical path.
 * --train-ms T (default 0) makes each of the FedMM-X clients wait a seeded uniform time in [0, T) ms
 * before each upload, as volunteers finish training at different times (with 0, every client
 * answers as soon as it has encoded: the worst case for the critical path).
 * --modality-kinds image=0.2,text=0.2,… gives the FedMM-X clients modality sets dealt by those
 * shares (bench/modalityKinds.ts; default: every client holds image, text and audio); a client uploads only the groups of
 * the modalities it holds, as packages/client does. `--modality-kinds fedmmx` is the mix of
 * FedMM-X's experiments (image, text, audio, image+text, image+text+audio at 0.2 each).
 *
 * Usage: pnpm bench:coordinator [--quick] [--rounds N] [--max N] [--step N] [--skip-capacity]
 *                               [--profile] [--with-model | --model-only | --fedmmx-only] [--inline-model]
 *                               [--probe-processes P[,P…]] [--probe-on-arrival on|off|on,off] [--train-ms T]
 *                               [--damping on|off|on,off] [--modality-kinds fedmmx|<set>=<share>,…]
 */
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeUpdate } from '@chorus/fl-core';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseTask } from '../src/task/loadTask.js';
import type { ClientsCommand, ClientsReply } from './benchClients.js';
import type { CoordinatorProcessConfig } from './coordinatorProcess.js';
import { formatSummary, summarize } from './cpuProfileSummary.js';
import type { CpuProfile } from './cpuProfileSummary.js';
import { demoAdapters } from './demoAdapters.js';
import { dealModalities, modalityKindsOption } from './modalityKinds.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    max: { type: 'string' },
    step: { type: 'string' },
    'skip-capacity': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'with-model': { type: 'boolean', default: false },
    'model-only': { type: 'boolean', default: false },
    'inline-model': { type: 'boolean', default: false },
    'fedmmx-only': { type: 'boolean', default: false },
    'probe-processes': { type: 'string', default: '1' },
    'probe-on-arrival': { type: 'string', default: 'on' },
    'train-ms': { type: 'string', default: '0' },
    damping: { type: 'string', default: 'on' },
    'modality-kinds': { type: 'string' },
  },
});
const QUICK = args.quick;
const TRAIN_MS = Number(args['train-ms']);
if (!Number.isFinite(TRAIN_MS) || TRAIN_MS < 0) throw new Error(`--train-ms: a number ≥ 0, got '${args['train-ms']}'`);
const MODALITY_KINDS = args['modality-kinds'] === undefined ? undefined : modalityKindsOption(args['modality-kinds']);

const PROBE_ON_ARRIVAL = args['probe-on-arrival'].split(',').map((a) => {
  if (a !== 'on' && a !== 'off') throw new Error(`--probe-on-arrival: on, off or on,off, got '${a}'`);
  return a === 'on';
});
const DAMPING = args.damping.split(',').map((a) => {
  if (a !== 'on' && a !== 'off') throw new Error(`--damping: on, off or on,off, got '${a}'`);
  return a === 'on';
});
const PROBE_PROCESSES = args['probe-processes'].split(',').map((p) => {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`--probe-processes: integers in [1, 16], got '${p}'`);
  return n;
});
const TIMED_ROUNDS = Number(args.rounds ?? (QUICK ? 5 : 15));
const WARMUP_ROUNDS = 2;
const RSS_LIMIT_MB = 300;
const MAX_TARGET = Number(args.max ?? (QUICK ? 400 : 3000));
const STEP = Number(args.step ?? (QUICK ? 200 : 250));
const ROUND_SIZE = QUICK ? 100 : 200;
const IDLE_SETTLE_MS = 5000;
const DEMO_TASK_FILE = join(packageRoot, 'tasks', 'demo-digits.yaml');

/** One round's probe as the coordinator process timed it (bench/coordinatorProcess.ts `BENCH_PROBE`). */
interface ProbeTiming {
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  readonly probeMs: number;
  readonly candidates: number;
}

/** A round start as the coordinator process reported it (`BENCH_ROUND`). */
interface RoundTiming {
  readonly serverRound: number;
  readonly clients: number;
  readonly cpuUs: number;
  readonly criticalPathMs: number | null;
  /** The critical path as [from, to] in µs on the clock of V8 CPU profiles. */
  readonly criticalPathUs: readonly [number, number] | null;
}

interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  readonly dir: string;
  /** Every probe timing the coordinator has printed so far. */
  readonly probes: ProbeTiming[];
  /** Every round start it has reported, by server round (a retried attempt replaces the earlier one). */
  readonly rounds: Map<number, RoundTiming>;
  readonly profiles: string[];
}

const running = new Set<ChildProcess>();
// However the benchmark ends, it leaves no coordinator or client process behind.
process.on('exit', () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
});

async function startChild(config: Omit<CoordinatorProcessConfig, 'dataDir' | 'rounds'> & { readonly dataDir?: string }): Promise<Child> {
  const dir = config.dataDir ?? mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const probes: ProbeTiming[] = [];
  const rounds = new Map<number, RoundTiming>();
  const profiles: string[] = [];
  const full: CoordinatorProcessConfig = { rounds: 100_000, ...config, dataDir: dir, inlineModel: args['inline-model'] };
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/coordinatorProcess.ts', JSON.stringify(full)], {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  const url = await new Promise<string>((resolvePromise, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const space = line.indexOf(' ');
        const tag = line.slice(0, space);
        const body = line.slice(space + 1);
        if (tag === 'BENCH_READY') resolvePromise((JSON.parse(body) as { url: string }).url);
        else if (tag === 'BENCH_PROBE') probes.push(JSON.parse(body) as ProbeTiming);
        else if (tag === 'BENCH_ROUND') {
          const r = JSON.parse(body) as RoundTiming;
          rounds.set(r.serverRound, r);
        } else if (tag === 'BENCH_PROFILE') profiles.push((JSON.parse(body) as { path: string }).path);
      }
    });
    child.once('exit', (code) => reject(new Error(`coordinator process exited with ${code}`)));
  });
  return { process: child, url, dir, probes, rounds, profiles };
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode === null) {
    child.process.kill('SIGTERM');
    await new Promise((r) => child.process.once('exit', r));
  }
  rmSync(child.dir, { recursive: true, force: true });
}

/** The client process: `connect(n)` adds n clients and resolves once all have joined. */
interface Clients {
  connect(count: number): Promise<number>;
  stats(): Promise<Extract<ClientsReply, { type: 'stats' }>>;
  close(): Promise<void>;
}

function startClients(url: string, seed: number, trainMs = 0, modalitiesOf?: readonly (readonly string[])[]): Clients {
  const config = { url, taskId: 'bench', token: 'bench-join', seed, trainMs, ...(modalitiesOf ? { modalitiesOf } : {}) };
  const child = fork(join(packageRoot, 'bench', 'benchClients.ts'), [JSON.stringify(config)], {
    cwd: packageRoot,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  running.add(child);
  const request = <T extends ClientsReply['type']>(command: ClientsCommand, answer: T): Promise<Extract<ClientsReply, { type: T }>> =>
    new Promise((resolvePromise, reject) => {
      const onMessage = (reply: ClientsReply): void => {
        if (reply.type !== answer && reply.type !== 'error') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (reply.type === 'error') reject(new Error(`clients: ${reply.message}`));
        else resolvePromise(reply as Extract<ClientsReply, { type: T }>);
      };
      const onExit = (code: number | null): void => reject(new Error(`client process exited with ${code}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(command);
    });
  return {
    connect: async (count) => (await request({ type: 'connect', count }, 'connected')).total,
    stats: () => request({ type: 'stats' }, 'stats'),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'close' } satisfies ClientsCommand);
      await exited;
    },
  };
}

/** Resident set size of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Ids of a process's children. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Summed RSS in MB of a process's children (the coordinator's evaluator; 0 when it has none). */
function childrenRssMb(pid: number): number {
  let total = 0;
  for (const id of childrenOf(pid)) {
    try {
      total += rssMb(id);
    } catch {
      // Exited between the listing and the read (an evaluator being restarted).
    }
  }
  return total;
}

/** RSS in MB of a process and every process under it. */
function treeRssMb(pid: number): number {
  let total = 0;
  try {
    total += rssMb(pid);
  } catch {
    return 0;
  }
  for (const id of childrenOf(pid)) total += treeRssMb(id);
  return total;
}

interface RoundRow {
  serverRound: number;
  status: string;
  startedAt: number;
}

async function rounds(url: string): Promise<RoundRow[]> {
  // A loaded machine resets the odd connection; three tries before the run is given up.
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${url}/api/tasks/bench/rounds`, { headers: { authorization: 'Bearer bench-admin' } });
      return ((await res.json()) as { rounds: RoundRow[] }).rounds;
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(1000);
    }
  }
}

async function completedRounds(url: string): Promise<number> {
  return (await rounds(url)).filter((r) => r.status === 'completed').length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForRounds(url: string, atLeast: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await completedRounds(url)) < atLeast) {
    if (Date.now() > until) throw new Error(`fewer than ${atLeast} rounds completed in ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Waits until the coordinator has reported the start of `serverRound`. */
async function waitForRoundStart(child: Child, serverRound: number, timeoutMs: number): Promise<RoundTiming> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = child.rounds.get(serverRound);
    if (r) return r;
    if (Date.now() > until) throw new Error(`round ${serverRound} did not start within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round1 = (x: number) => Number(x.toFixed(1));

/** The demo task's adapters as codec bytes in `dir`, for the coordinator process to serve. */
async function writeDemoGlobal(dir: string): Promise<{ path: string; tensors: number; values: number }> {
  const task = parseTask(parseYaml(readFileSync(DEMO_TASK_FILE, 'utf8')), 'demo-digits.yaml');
  const tensors = await demoAdapters(task);
  const path = join(dir, 'initial-global.bin');
  writeFileSync(path, encodeUpdate({ kind: 'model', taskId: 'bench', round: 0, clientId: '', encoding: 'fp32', tensors }));
  return { path, tensors: tensors.length, values: tensors.reduce((n, t) => n + t.values.length, 0) };
}

interface RoundFigures {
  criticalPathMs: number[];
  criticalPathWindows: (readonly [number, number])[];
  cpuMsPerRound: number;
  cycleMs: number[];
  profile: string | null;
  refused: Readonly<Record<string, number>>;
  /** The server's `evalMs` and `probeMs` of the rounds whose end the critical paths cover (with a model; empty without). */
  evalMs: number[];
  probeMs: number[];
}

/** The per-round metrics the coordinator stored for the bench task. */
async function roundMetricsOf(url: string): Promise<ReadonlyMap<number, Readonly<Record<string, number>>>> {
  const res = await fetch(`${url}/api/tasks/bench/metrics`, { headers: { authorization: 'Bearer bench-admin' } });
  const body = (await res.json()) as { metrics: { serverRound: number; metrics: Record<string, number> }[] };
  return new Map(body.metrics.map((m) => [m.serverRound, m.metrics]));
}

/** Rounds of 100 clients on the demo task: FedAvg over `initialGlobalFile` without a model, or (`initialGlobalFile` null) FedMM-X with its real evaluator. */
async function measureRounds(initialGlobalFile: string | null, probeProcesses = 1, probeOnArrival = true, similarityDamping = true): Promise<RoundFigures> {
  // Round 1 starts once all 100 clients have joined; rounds 1–2 warm up (JIT), then TIMED_ROUNDS.
  const first = WARMUP_ROUNDS + 1;
  const last = first + TIMED_ROUNDS - 1;
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const profilePath = join(tmpdir(), `chorus-coordinator-${process.pid}.cpuprofile`);
  const child = await startChild({
    dataDir: dir,
    clientsPerRound: 100,
    ...(initialGlobalFile === null ? { withModel: true, probeProcesses, probeOnArrival, similarityDamping } : { initialGlobalFile }),
    ...(args.profile ? { profileRounds: { fromRound: first, toRound: last + 1, path: profilePath } } : {}),
  });
  const modalitiesOf = initialGlobalFile === null && MODALITY_KINDS ? dealModalities(MODALITY_KINDS, 100, 1) : undefined;
  const clients = startClients(child.url, 1, initialGlobalFile === null ? TRAIN_MS : 0, modalitiesOf);
  try {
    await clients.connect(100);
    const start = await waitForRoundStart(child, first, 300_000);
    const end = await waitForRoundStart(child, last + 1, 600_000);
    const criticalPathMs: number[] = [];
    const criticalPathWindows: (readonly [number, number])[] = [];
    for (let r = first + 1; r <= last + 1; r++) {
      const timing = child.rounds.get(r);
      if (timing?.criticalPathMs == null || timing.criticalPathUs == null) continue;
      criticalPathMs.push(timing.criticalPathMs);
      criticalPathWindows.push(timing.criticalPathUs);
    }
    const startOf = new Map((await rounds(child.url)).filter((r) => r.status !== 'retry').map((r) => [r.serverRound, r.startedAt]));
    const cycleMs: number[] = [];
    for (let r = first; r <= last; r++) {
      const a = startOf.get(r);
      const b = startOf.get(r + 1);
      if (a !== undefined && b !== undefined) cycleMs.push(b - a);
    }
    if (args.profile) {
      const until = Date.now() + 30_000;
      while (child.profiles.length === 0 && Date.now() < until) await sleep(100);
    }
    const { refused } = await clients.stats();
    // The critical path measured at round r's start covers the end of round r − 1.
    const stored = await roundMetricsOf(child.url);
    const timedMetrics = Array.from({ length: TIMED_ROUNDS }, (_, i) => stored.get(first + i)).filter((m) => m !== undefined);
    return {
      criticalPathMs,
      criticalPathWindows,
      evalMs: timedMetrics.flatMap((m) => (m['evalMs'] === undefined ? [] : [m['evalMs']])),
      probeMs: timedMetrics.flatMap((m) => (m['probeMs'] === undefined ? [] : [m['probeMs']])),
      cpuMsPerRound: (end.cpuUs - start.cpuUs) / 1000 / TIMED_ROUNDS,
      cycleMs,
      profile: child.profiles[0] ?? null,
      refused,
    };
  } finally {
    await clients.close();
    await stopChild(child);
  }
}

interface CapacityStep {
  clients: number;
  /** Peak RSS of the coordinator process. */
  rssMb: number;
  /** Peak RSS of its evaluator process, and peak of the two summed (sampled together). */
  evaluatorRssMb: number;
  totalRssMb: number;
  secondsPerRound: number;
  /** Worst per-round p99 of the coordinator's event-loop delay while probing (with a model). */
  eventLoopP99Ms?: number;
}

interface Capacity {
  maxClients: number;
  rssAtMax: number;
  evaluatorRssAtMax: number;
  totalRssAtMax: number;
  rssIdle: number;
  evaluatorRssIdle: number;
  steps: CapacityStep[];
  probes: ProbeTiming[];
}

async function measureCapacity(withModel: boolean, initialGlobalFile: string): Promise<Capacity> {
  const child = await startChild({ clientsPerRound: ROUND_SIZE, withModel, ...(withModel ? {} : { initialGlobalFile }) });
  const pid = child.process.pid!;
  const rssIdle = rssMb(pid);
  const evaluatorRssIdle = childrenRssMb(pid);
  const clients = startClients(child.url, 2);
  let connected = 0;
  const steps: CapacityStep[] = [];
  let best = { maxClients: 0, rssAtMax: 0, evaluatorRssAtMax: 0, totalRssAtMax: 0 };
  try {
    while (connected < MAX_TARGET) {
      connected = await clients.connect(Math.min(STEP, MAX_TARGET - connected));
      if (connected < ROUND_SIZE) continue;
      // Sample RSS while at least two more rounds of ROUND_SIZE complete with this many clients connected.
      const target = (await completedRounds(child.url)) + 2;
      const firstProbe = child.probes.length;
      const peak = { coordinator: 0, evaluator: 0, total: 0 };
      const sample = (): void => {
        const c = rssMb(pid);
        const e = childrenRssMb(pid);
        peak.coordinator = Math.max(peak.coordinator, c);
        peak.evaluator = Math.max(peak.evaluator, e);
        peak.total = Math.max(peak.total, c + e);
      };
      sample();
      const startedAt = Date.now();
      const sampler = setInterval(sample, 100);
      try {
        await waitForRounds(child.url, target, withModel ? 600_000 : 120_000);
      } finally {
        clearInterval(sampler);
      }
      sample();
      const secondsPerRound = round1((Date.now() - startedAt) / 2000);
      const probes = child.probes.slice(firstProbe);
      const step: CapacityStep = {
        clients: connected,
        rssMb: round1(peak.coordinator),
        evaluatorRssMb: round1(peak.evaluator),
        totalRssMb: round1(peak.total),
        secondsPerRound,
        ...(probes.length > 0 ? { eventLoopP99Ms: Math.max(...probes.map((p) => p.p99Ms)) } : {}),
      };
      steps.push(step);
      const loop = step.eventLoopP99Ms === undefined ? '' : `; event-loop p99 while probing ${step.eventLoopP99Ms} ms`;
      console.log(
        `${withModel ? '[with model] ' : ''}${connected} clients connected: coordinator RSS peak ${step.rssMb} MB, evaluator ${step.evaluatorRssMb} MB, sum ${step.totalRssMb} MB over 2 rounds of ${ROUND_SIZE} (${secondsPerRound} s per round${loop})`,
      );
      if (peak.coordinator > RSS_LIMIT_MB) break;
      best = { maxClients: connected, rssAtMax: peak.coordinator, evaluatorRssAtMax: peak.evaluator, totalRssAtMax: peak.total };
    }
    return { ...best, rssIdle, evaluatorRssIdle, steps, probes: [...child.probes] };
  } finally {
    await clients.close();
    await stopChild(child);
  }
}

/** bench/decode.ts in a process of its own; its last line. */
async function measureDecode(): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/decode.ts'], {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_REPS: QUICK ? '3' : '7' },
  });
  running.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const lines = out.trim().split('\n');
  for (const line of lines.slice(0, -1)) console.log(`  ${line}`);
  if (code !== 0) throw new Error(`bench/decode.ts exited with ${code}`);
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

/** RSS of a coordinator (and its evaluator, if it starts one) serving a FedAvg task from a task file, no clients. */
async function measureIdleFedAvg(): Promise<{ totalMb: number; coordinatorMb: number; processes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const taskFile = join(dir, 'fedavg.yaml');
  const demo = parseYaml(readFileSync(DEMO_TASK_FILE, 'utf8')) as Record<string, unknown>;
  writeFileSync(taskFile, stringifyYaml({ ...demo, id: 'bench', strategy: { name: 'fedavg' } }));
  // The evaluator a task keeps between rounds is suspended after evaluatorIdleMs (30 s by default; 1 s here to keep the benchmark short).
  const child = await startChild({ dataDir: dir, clientsPerRound: 4, taskFile, evaluatorIdleMs: 1000 });
  try {
    await sleep(IDLE_SETTLE_MS);
    const pid = child.process.pid!;
    return { totalMb: treeRssMb(pid), coordinatorMb: rssMb(pid), processes: 1 + childrenOf(pid).length };
  } finally {
    await stopChild(child);
  }
}

/**
 * Runs one seeded simulation twice (6 headless clients, 3 sampled per round, 3 rounds of FedAvg)
 * and compares the global model's SHA-256 after every round.
 */
async function measureReproducibility(): Promise<{ identical: boolean; rounds: number; seconds: number }> {
  const { runSimulation } = await import('../src/cli/simulate.js');
  const task = parseTask(
    {
      id: 'repro',
      dataset: { name: 'digits', modalities: ['image', 'text'] },
      model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
      strategy: { name: 'fedavg' },
      evaluation: { probeExamples: 8, testExamples: 0 },
      rounds: 3,
      clientsPerRound: 3,
      minClients: 3,
      overSelection: 0,
      roundDeadlineMs: 120_000,
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.05,
      uploadEncoding: 'fp32',
      maxUpdateBytes: 1_048_576,
      seed: 11,
    },
    'repro',
  );
  const started = performance.now();
  const run = () =>
    runSimulation({
      task,
      numClients: 6,
      clientArgs: ['--seed', '5', '--iid', '--max-examples', '16', '--eval-examples', '0'],
      testExamples: 0,
      logLevel: 'error',
    });
  const a = await run();
  const b = await run();
  const hashes = (r: typeof a) => r.rounds.map((x) => x.globalHash);
  return {
    identical: a.rounds.length === task.rounds && JSON.stringify(hashes(a)) === JSON.stringify(hashes(b)),
    rounds: a.rounds.length,
    seconds: (performance.now() - started) / 1000,
  };
}

/** `critical_path_ms_100_fedmmx`: the 100-client round with the demo task's FedMM-X and its evaluator process. */
async function measureFedMmxRounds(): Promise<Record<string, unknown>> {
  const figures: Record<string, unknown> = {};
  for (const [processes, onArrival, damping] of PROBE_PROCESSES.flatMap((p) => PROBE_ON_ARRIVAL.flatMap((a) => DAMPING.map((d) => [p, a, d] as const)))) {
    const r = await measureRounds(null, processes, onArrival, damping);
    const criticalPath = median(r.criticalPathMs);
    const suffix = `probe_processes_${processes}${PROBE_ON_ARRIVAL.length > 1 ? `_arrival_${onArrival ? 'on' : 'off'}` : ''}${DAMPING.length > 1 ? `_damping_${damping ? 'on' : 'off'}` : ''}`;
    console.log(
      `${TIMED_ROUNDS} FedMM-X rounds of 100 clients, ${processes} evaluator process(es) probing, probe on arrival ${onArrival ? 'on' : 'off'}, similarity damping ${damping ? 'on' : 'off'} (probe of every candidate and evaluation of each new model in the evaluator): critical path median ${criticalPath.toFixed(1)} ms (${r.criticalPathMs.map((x) => x.toFixed(0)).join(', ')})`,
    );
    const medianOrNull = (xs: readonly number[]): number | null => (xs.length > 0 ? round1(median(xs)) : null);
    console.log(
      `server time per round: evaluation of the new global ${r.evalMs.map((x) => x.toFixed(0)).join(', ')} ms; probe ${r.probeMs.map((x) => x.toFixed(0)).join(', ')} ms`,
    );
    Object.assign(figures, {
      critical_path_ms_100_fedmmx: round1(criticalPath),
      critical_path_ms_100_fedmmx_max: round1(Math.max(...r.criticalPathMs)),
      eval_ms_per_round: medianOrNull(r.evalMs),
      probe_ms_per_round: medianOrNull(r.probeMs),
      [`critical_path_ms_100_fedmmx_${suffix}`]: round1(criticalPath),
      [`probe_ms_per_round_${suffix}`]: medianOrNull(r.probeMs),
    });
  }
  return figures;
}

async function main(): Promise<void> {
  const figures: Record<string, unknown> = {};
  if (args['fedmmx-only']) {
    Object.assign(figures, await measureFedMmxRounds(), { timed_rounds: TIMED_ROUNDS, train_ms: TRAIN_MS, modality_kinds: args['modality-kinds'] ?? 'all' });
  } else if (!args['model-only']) {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-layout-'));
    try {
      const layout = await writeDemoGlobal(dir);
      console.log(`demo adapter layout: ${layout.tensors} tensors, ${layout.values.toLocaleString('en')} values`);
      const r = await measureRounds(layout.path);
      const criticalPath = median(r.criticalPathMs);
      console.log(
        `${TIMED_ROUNDS} rounds of 100 clients: critical path median ${criticalPath.toFixed(1)} ms (${r.criticalPathMs.map((x) => x.toFixed(1)).join(', ')}); coordinator CPU ${r.cpuMsPerRound.toFixed(1)} ms per round; round cycle median ${median(r.cycleMs)} ms`,
      );
      if (Object.keys(r.refused).length > 0) console.log(`refused uploads: ${JSON.stringify(r.refused)}`);
      if (r.profile) {
        console.log(`CPU profile of the coordinator over the timed rounds: ${r.profile}`);
        const profile = JSON.parse(readFileSync(r.profile, 'utf8')) as CpuProfile;
        console.log(formatSummary(summarize(profile, TIMED_ROUNDS), TIMED_ROUNDS));
        console.log(
          `\nthe same, within the ${r.criticalPathWindows.length} critical paths only (receipt of the last accepted upload → next round start sent):`,
        );
        console.log(formatSummary(summarize(profile, r.criticalPathWindows.length, 25, r.criticalPathWindows), r.criticalPathWindows.length));
      }
      Object.assign(figures, {
        critical_path_ms_100: round1(criticalPath),
        coordinator_cpu_ms_per_round_100: round1(r.cpuMsPerRound),
        round_overhead_ms_100: median(r.cycleMs),
        timed_rounds: TIMED_ROUNDS,
        critical_path_ms_100_max: round1(Math.max(...r.criticalPathMs)),
        update_layout: { tensors: layout.tensors, values: layout.values },
      });
      Object.assign(figures, await measureFedMmxRounds());
      const decode = await measureDecode();
      console.log(
        `decode 100 × 1 M fp32: ${decode['decode_ms_100x1m']} ms into the arena with the native CRC-32, ${decode['decode_ms_100x1m_baseline']} ms with decodeUpdate and the portable CRC-32`,
      );
      Object.assign(figures, {
        decode_ms_100x1m: decode['decode_ms_100x1m'],
        decode_ms_100x1m_baseline: decode['decode_ms_100x1m_baseline'],
        decode_detail: decode,
      });
      const idle = await measureIdleFedAvg();
      console.log(
        `FedAvg task from a task file, no clients: ${idle.totalMb.toFixed(1)} MB in ${idle.processes} process(es) (coordinator ${idle.coordinatorMb.toFixed(1)} MB)`,
      );
      Object.assign(figures, {
        rss_mb_total_fedavg_idle: round1(idle.totalMb),
        rss_mb_coordinator_fedavg_idle: round1(idle.coordinatorMb),
        processes_fedavg_idle: idle.processes,
      });
      const repro = await measureReproducibility();
      console.log(
        `two runs of one seeded simulation: ${repro.rounds} rounds, global-model hashes ${repro.identical ? 'identical after every round' : 'DIFFER'} (${repro.seconds.toFixed(1)} s)`,
      );
      Object.assign(figures, { reproducible_runs: repro.identical });
      if (!args['skip-capacity']) {
        const capacity = await measureCapacity(false, layout.path);
        console.log(
          `max clients at RSS ≤ ${RSS_LIMIT_MB} MB: ${capacity.maxClients} (peak ${capacity.rssAtMax.toFixed(1)} MB); stopped at ${MAX_TARGET} or the limit`,
        );
        Object.assign(figures, { max_clients: capacity.maxClients, rss_mb_at_max: round1(capacity.rssAtMax), steps: capacity.steps });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (args['with-model'] || args['model-only']) {
    const capacity = await measureCapacity(true, '');
    const where = args['inline-model'] ? 'in the coordinator process' : 'in the evaluator process';
    console.log(
      `[with model ${where}] max clients at coordinator RSS ≤ ${RSS_LIMIT_MB} MB: ${capacity.maxClients} (peak ${capacity.rssAtMax.toFixed(1)} MB, evaluator ${capacity.evaluatorRssAtMax.toFixed(1)} MB, sum ${capacity.totalRssAtMax.toFixed(1)} MB; idle ${capacity.rssIdle.toFixed(1)} + ${capacity.evaluatorRssIdle.toFixed(1)} MB with the model built and no clients)`,
    );
    const p99s = capacity.probes.map((p) => p.p99Ms);
    Object.assign(figures, {
      model_in: args['inline-model'] ? 'coordinator-process' : 'evaluator-process',
      max_clients_with_model: capacity.maxClients,
      rss_mb_at_max_with_model: round1(capacity.rssAtMax),
      evaluator_rss_mb: round1(capacity.evaluatorRssAtMax),
      total_rss_mb: round1(capacity.totalRssAtMax),
      rss_mb_idle_with_model: round1(capacity.rssIdle),
      evaluator_rss_mb_idle: round1(capacity.evaluatorRssIdle),
      event_loop_p99_ms_during_probe: p99s.length > 0 ? Math.max(...p99s) : null,
      event_loop_p99_ms_during_probe_median: p99s.length > 0 ? median(p99s) : null,
      event_loop_max_ms_during_probe: p99s.length > 0 ? Math.max(...capacity.probes.map((p) => p.maxMs)) : null,
      probe_ms_per_candidate_median:
        p99s.length > 0 ? round1(median(capacity.probes.filter((p) => p.candidates > 0).map((p) => p.probeMs / (p.candidates + 1)))) : null,
      probe_rounds: p99s.length,
      steps_with_model: capacity.steps,
    });
  }
  console.log(JSON.stringify({ ...figures, rss_limit_mb: RSS_LIMIT_MB, client_cap: MAX_TARGET, round_size: ROUND_SIZE, quick: QUICK }));
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
